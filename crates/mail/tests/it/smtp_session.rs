//! A batch of messages over one SMTP connection (`Mailer::session`), against the real
//! aiosmtpd relay: the relay numbers its connections, so each test counts them.

use std::collections::BTreeSet;

use crate::common::reminder_email;
use grantflow_mail::{
    DeliveryError, Lang, MailConfig, Mailer, message_id, testkit::SmtpTestServer,
};

fn mailer_for(server: &SmtpTestServer) -> Mailer {
    Mailer::from_config(&MailConfig::Smtp(server.smtp_config())).unwrap()
}

fn key(i: usize) -> String {
    format!("reminder:session-test:{i}")
}

/// The connection that carried each message, in arrival order, checking that every
/// message arrived exactly once.
fn connections_of(server: &SmtpTestServer, sent: usize) -> Vec<u64> {
    let received = server.received();
    let ids: BTreeSet<String> = received.iter().map(|m| m.message_id.clone()).collect();
    let expected: BTreeSet<String> = (0..sent).map(|i| message_id(&key(i))).collect();
    assert_eq!(ids, expected, "every message arrived");
    assert_eq!(received.len(), sent, "and each once");
    received.iter().map(|m| m.connection).collect()
}

#[tokio::test]
async fn a_batch_goes_over_one_connection_and_single_sends_use_one_each() {
    let server = SmtpTestServer::start();
    let mailer = mailer_for(&server);
    let mut session = mailer.session();
    for i in 0..5 {
        session
            .send(&reminder_email(&key(i), Lang::ZhCn))
            .await
            .unwrap();
    }
    assert_eq!(session.connections(), 1);
    session.close().await;
    assert_eq!(connections_of(&server, 5), [1, 1, 1, 1, 1]);

    for i in 5..8 {
        mailer
            .send(&reminder_email(&key(i), Lang::En))
            .await
            .unwrap();
    }
    assert_eq!(
        connections_of(&server, 8)[5..],
        [2, 3, 4],
        "a single send opens a connection of its own"
    );
}

#[tokio::test]
async fn a_relay_that_closes_after_two_messages_costs_a_reconnect_and_loses_nothing() {
    let mut server = SmtpTestServer::start();
    server.close_after(2);
    let mailer = mailer_for(&server);
    let mut session = mailer.session();
    for i in 0..5 {
        session
            .send(&reminder_email(&key(i), Lang::ZhCn))
            .await
            .unwrap();
    }
    assert_eq!(session.connections(), 3);
    session.close().await;
    assert_eq!(connections_of(&server, 5), [1, 1, 2, 2, 3]);
}

#[tokio::test]
async fn a_relay_restarted_between_two_messages_is_reached_on_a_fresh_connection() {
    let mut server = SmtpTestServer::start();
    let mailer = mailer_for(&server);
    let mut session = mailer.session();
    session
        .send(&reminder_email(&key(0), Lang::ZhCn))
        .await
        .unwrap();
    // The process is killed: the session's connection is dead.
    server.restart();
    session
        .send(&reminder_email(&key(1), Lang::ZhCn))
        .await
        .unwrap();
    assert_eq!(session.connections(), 2);
    session.close().await;
    // Connection numbers restart with the process.
    assert_eq!(connections_of(&server, 2), [1, 1]);
}

#[tokio::test]
async fn a_refused_message_fails_alone_and_the_batch_goes_on() {
    let mut server = SmtpTestServer::start();
    let mailer = mailer_for(&server);
    let mut session = mailer.session();
    session
        .send(&reminder_email(&key(0), Lang::ZhCn))
        .await
        .unwrap();
    server.fail_next(1, 451, "Try again later");
    let refused = session
        .send(&reminder_email(&key(1), Lang::ZhCn))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            DeliveryError::Transient {
                code: Some(451),
                ..
            }
        ),
        "{refused:?}"
    );
    session
        .send(&reminder_email(&key(1), Lang::ZhCn))
        .await
        .unwrap();
    // A failed exchange's connection is not reused: the retry came on a new one.
    assert_eq!(session.connections(), 2);
    session.close().await;
    assert_eq!(connections_of(&server, 2), [1, 2]);
}
