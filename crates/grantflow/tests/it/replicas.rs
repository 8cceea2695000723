//! Replicas that see each other: three `grantflow serve` processes on one PostgreSQL
//! database. Subscribers on every replica receive a transition made through the third;
//! when a replica's listening connection is killed, its subscribers are told to resync
//! and later transitions reach them again.

use crate::support;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Server, graphql, login, write_config};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const EVENTS: &str = "subscription($id: ID!) { instanceEvents(instanceId: $id) { kind version event fromState toState } }";

/// A graphql-transport-ws connection, acknowledged, subscribed to the instance's events;
/// returns after the CURRENT message (from then on no change is missed).
async fn subscribe(server: &Server, token: &str, instance: &str) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", server.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": { "token": token } }).to_string(),
        ))
        .await
        .unwrap();
    let ack = next_message(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
        .send(Message::text(
            json!({ "type": "subscribe", "id": "e", "payload": { "query": EVENTS, "variables": { "id": instance } } })
                .to_string(),
        ))
        .await
        .unwrap();
    let current = next_event(&mut socket).await;
    assert_eq!(current["kind"], "CURRENT", "{current}");
    socket
}

async fn next_message(socket: &mut Socket) -> Value {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn next_event(socket: &mut Socket) -> Value {
    let message = next_message(socket).await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["instanceEvents"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_replica_sees_a_transition_made_through_another() {
    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &db.url(),
        &format!(
            "[mail]\ntransport = \"eml_folder\"\ndir = \"{}\"\n",
            dir.path().join("mail").display()
        ),
    );
    let first = Server::start(&config, &["--demo"], &[]);
    let second = Server::start(&config, &[], &[]);
    let third = Server::start(&config, &[], &[]);
    let unit = login(&first.url(""), "unit_gz").await;

    let created = graphql(
        &third.url(""),
        Some(&unit),
        "mutation($c: ID!) { createInstance(input: { workflowId: \"funded-project\", title: \"三副本测试\", \
         callId: $c, catalogueItem: \"2022-2-1-5\" }) { id } }",
        json!({ "c": support::open_call(&first.url(""), &unit).await }),
    )
    .await;
    let id = created["data"]["createInstance"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();

    let mut on_first = subscribe(&first, &unit, &id).await;
    let mut on_second = subscribe(&second, &unit, &id).await;
    let mut on_third = subscribe(&third, &unit, &id).await;

    let submitted = graphql(
        &third.url(""),
        Some(&unit),
        "mutation($id: ID!) { transition(instanceId: $id, event: \"submit\", expectedVersion: 0, input: { \
         project_name: \"三副本\", budget: \"300000.00\", \
         indicators: [{ category: \"output_quantity\", name: \"调解案件数\", unit: \"件\", target: 200, direction: \"higher_is_better\", weight: 1 }, { category: \"effect_social\", name: \"当事人满意度\", unit: \"%\", target: 90, direction: \"higher_is_better\", weight: 1 }], \
         application_files: [{ name: \"申报书.pdf\", sha256: \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", size: 20480 }] \
         }) { instance { version state { id } } } }",
        json!({ "id": id }),
    )
    .await;
    assert!(submitted.get("errors").is_none(), "{submitted}");
    let version = submitted["data"]["transition"]["instance"]["version"].clone();
    for socket in [&mut on_first, &mut on_second, &mut on_third] {
        let event = next_event(socket).await;
        assert_eq!(event["kind"], "TRANSITION", "{event}");
        assert_eq!(event["event"], "submit", "{event}");
        assert_eq!(event["version"], version, "{event}");
    }

    // Kill the first replica's listening connection: it reconnects, and its subscriber
    // hears that events may have been missed, with the instance's current state.
    let killed = grantflow_store_postgres::testing::terminate_listeners(&db.store, &db.name).await;
    assert_eq!(killed, 3, "one listener per replica");
    let resync = next_event(&mut on_first).await;
    assert_eq!(resync["kind"], "RESYNC", "{resync}");
    assert_eq!(resync["version"], version, "{resync}");

    // And it hears the others again.
    let city = login(&first.url(""), "city_gz").await;
    let recommended = graphql(
        &third.url(""),
        Some(&city),
        "mutation($id: ID!, $v: Int!) { transition(instanceId: $id, event: \"recommend\", expectedVersion: $v, \
         input: { city_opinion: \"同意推荐\" }) { instance { version } } }",
        json!({ "id": id, "v": version }),
    )
    .await;
    assert!(recommended.get("errors").is_none(), "{recommended}");
    let event = next_event(&mut on_first).await;
    assert_eq!(event["event"], "recommend", "{event}");
}
