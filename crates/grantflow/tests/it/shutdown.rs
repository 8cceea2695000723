//! Graceful shutdown of `grantflow serve`, as a process: SIGTERM arrives while requests are
//! in flight (each known to be inside the server: it answered `100 Continue`, which hyper
//! sends when the handler starts reading the body), a WebSocket is open and the scheduler
//! is in the middle of a delivery (the SMTP server accepted its connection and never
//! answers). The requests complete, the socket gets a close frame with 1001, the process
//! exits 0, and no timer or message is left claimed. On both backends.

use crate::support;

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use grantflow_store::{OutboxStatus, Store, TimerStatus};
use serde_json::json;
use support::{HANG_GUARD, Server, login, write_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// An SMTP "server" that accepts connections and never says a word: a delivery that
/// reaches it hangs, its message claimed. Each accepted connection is sent on the channel
/// (and kept open by the receiver).
fn silent_smtp() -> (u16, std::sync::mpsc::Receiver<std::net::TcpStream>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            if tx.send(stream).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// A GraphQL POST whose headers are sent and whose body is not: returns once the server
/// answered `100 Continue`, i.e. the request is inside the handler.
async fn request_in_flight(addr: &str, token: &str, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed"
        );
        got.push(byte[0]);
    }
    let got = String::from_utf8(got).unwrap();
    assert!(got.starts_with("HTTP/1.1 100"), "{got}");
    stream
}

async fn open_store(url: &str) -> Arc<dyn Store> {
    if url.starts_with("sqlite:") {
        Arc::new(
            grantflow_store_sqlite::SqliteStore::connect(url)
                .await
                .unwrap(),
        )
    } else {
        Arc::new(
            grantflow_store_postgres::PostgresStore::connect(url)
                .await
                .unwrap(),
        )
    }
}

async fn sigterm_during_load(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (smtp_port, smtp) = silent_smtp();
    let config = write_config(
        dir.path(),
        database_url,
        &format!(
            r#"shutdown_grace_secs = 5
[mail]
transport = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = {{ name = "grantflow", address = "noreply@grantflow.test" }}
timeout_secs = 600
"#
        ),
    );
    let mut server = Server::start(&config, &["--demo"], &[]);
    let base = server.url("");
    let token = login(&base, "unit_gz").await;

    // The scheduler is delivering the demo's notifications: it holds claims now.
    let _smtp_connection = smtp
        .recv_timeout(HANG_GUARD)
        .expect("the scheduler connects to the SMTP server");

    // A subscriber.
    let mut ws_request = format!("ws://{}/graphql/ws", server.addr)
        .into_client_request()
        .unwrap();
    ws_request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_request).await.unwrap();
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": { "token": token } }).to_string(),
        ))
        .await
        .unwrap();
    let ack = socket.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");

    // Requests inside the server.
    let body = json!({ "query": "{ viewer { username } instances(first: 20) { totalCount } }" })
        .to_string();
    let mut in_flight = Vec::new();
    for _ in 0..4 {
        in_flight.push(request_in_flight(&server.addr, &token, &body).await);
    }

    server.signal("TERM");
    server.wait_line(|l| l.starts_with("grantflow: shutting down"));

    // The socket is closed with a proper close frame.
    let close = loop {
        match socket.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        u16::from(close.expect("a close frame with a code").code),
        1001
    );

    // Every request in flight completes.
    for mut stream in in_flight {
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let json_body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let value: serde_json::Value = serde_json::from_str(json_body.trim()).unwrap_or_else(|e| {
            // A chunked body: take the JSON object inside.
            let start = json_body
                .find('{')
                .unwrap_or_else(|| panic!("{e}: {answer}"));
            let end = json_body.rfind('}').unwrap();
            serde_json::from_str(&json_body[start..=end]).unwrap()
        });
        assert_eq!(value["data"]["viewer"]["username"], "unit_gz", "{value}");
        assert!(value.get("errors").is_none(), "{value}");
    }

    let (status, stderr) = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("the scheduler's batch was cut off"),
        "the stalled delivery outlived the grace period: {stderr}"
    );

    // No lease left held: nothing claimed, nothing sending.
    let store = open_store(database_url).await;
    let sending = store
        .list_outbox(Some(OutboxStatus::Sending), None, 10_000)
        .await
        .unwrap();
    assert!(sending.is_empty(), "messages left claimed: {sending:?}");
    let pending = store
        .list_outbox(Some(OutboxStatus::Pending), None, 10_000)
        .await
        .unwrap();
    assert!(
        !pending.is_empty(),
        "the interrupted messages are pending again"
    );
    assert!(
        pending.iter().all(|m| m.attempts == 0),
        "an interrupted attempt is not counted: {pending:?}"
    );
    for id in store.instance_ids().await.unwrap() {
        for timer in store.timers_for_instance(id).await.unwrap() {
            assert_ne!(timer.status, TimerStatus::Claimed, "{timer:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sigterm_during_load(&format!("sqlite://{}", dir.path().join("g.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_on_postgres() {
    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    sigterm_during_load(&db.url()).await;
}
