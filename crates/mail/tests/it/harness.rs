//! The SMTP test server harness itself, as other crates' tests will use it.

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    time::Duration,
};

use grantflow_mail::testkit::{SmtpTestServer, TestServerOptions};

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[test]
fn the_server_listens_until_stopped_and_again_on_the_same_port_after_restart() {
    let mut server = SmtpTestServer::start();
    let port = server.port();
    assert!(accepts_connections(port));
    server.stop();
    assert!(
        !accepts_connections(port),
        "a stopped server refuses connections"
    );
    server.restart();
    assert_eq!(server.port(), port);
    assert!(accepts_connections(port));
    assert!(server.received().is_empty());
}

#[test]
fn dropping_the_server_ends_its_process() {
    let server = SmtpTestServer::start();
    let port = server.port();
    drop(server);
    assert!(!accepts_connections(port));
}

#[test]
#[should_panic(expected = "was taken meanwhile")]
fn a_restart_on_a_port_someone_else_took_fails_loudly() {
    let mut server = SmtpTestServer::start();
    server.stop();
    let _squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, server.port())).unwrap();
    server.restart();
}

#[test]
#[should_panic(expected = "pip install -r tests/smtp/requirements.txt")]
fn a_missing_python_fails_with_install_instructions() {
    SmtpTestServer::start_with(TestServerOptions {
        python: Some("/nonexistent/python3".into()),
        ..TestServerOptions::default()
    });
}

#[test]
fn waiting_for_messages_that_never_come_fails_after_the_deadline() {
    let server = SmtpTestServer::start();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        server.wait_for_messages(1, Duration::from_millis(100))
    }));
    let message = outcome.unwrap_err();
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("expected 1 messages"), "{message}");
}
