//! The web console's pages open `/graphql/ws` without a token of their own: the socket
//! is authenticated by the console's session cookie, but only when the upgrade comes from
//! a page of this site (`Origin` = `Host`). Another site's page, or a request without an
//! origin, gets no viewer from the cookie (4403), so cross-site WebSocket hijacking finds
//! nothing. On SQLite and PostgreSQL; every wait is for a message or a close frame.

use crate::support;

use futures::{SinkExt, StreamExt};
use grantflow_api::ws::SESSION_COOKIE;
use serde_json::{Value, json};
use support::{Backend, spawn_app};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Opens a socket with the session cookie and `origin`, sends `connection_init` without
/// a payload and returns the first answer: a message, or the close code.
async fn first_answer(
    addr: std::net::SocketAddr,
    token: &str,
    origin: Option<&str>,
) -> Result<(Value, Value), u16> {
    let mut req = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    h.insert(
        "cookie",
        HeaderValue::from_str(&format!("gf_lang=zh-CN; {SESSION_COOKIE}={token}")).unwrap(),
    );
    if let Some(o) = origin {
        h.insert("origin", HeaderValue::from_str(o).unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({ "type": "connection_init" }).to_string(),
    ))
    .await
    .unwrap();
    let mut answers = Vec::new();
    while answers.len() < 2 {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "connection_ack" {
                    ws.send(Message::text(
                        json!({ "type": "subscribe", "id": "1", "payload": { "query": "{ viewer { username } }" } }).to_string(),
                    ))
                    .await
                    .unwrap();
                }
                answers.push(v);
            }
            Some(Ok(Message::Close(Some(f)))) => return Err(f.code.into()),
            Some(Ok(_)) => continue,
            _ => return Err(0),
        }
    }
    Ok((answers.remove(0), answers.remove(0)))
}

async fn a_console_page_of_this_site_opens_the_socket_with_its_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.session_token("manager").await;
    let here = format!("http://{}", app.addr);

    let (ack, viewer) = first_answer(app.addr, &token, Some(&here))
        .await
        .expect("acknowledged");
    assert_eq!(ack, json!({ "type": "connection_ack" }));
    assert_eq!(viewer["type"], "next", "{viewer}");
    assert_eq!(
        viewer["payload"]["data"]["viewer"]["username"], "manager",
        "{viewer}"
    );

    // Another site's page, or no origin at all: the cookie does not count.
    for origin in [
        Some("http://evil.example"),
        Some(&*format!("http://{}.evil.example", app.addr.ip())),
        None,
    ] {
        assert_eq!(
            first_answer(app.addr, &token, origin).await,
            Err(4403),
            "{origin:?}"
        );
    }
    // A revoked session is refused like a revoked bearer token.
    let http = reqwest::Client::new();
    let out: Value = http
        .post(format!("{here}/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "mutation { logout }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out["data"]["logout"], true, "{out}");
    assert_eq!(first_answer(app.addr, &token, Some(&here)).await, Err(4403));
}

use grantflow_testkit::on_both_backends;

on_both_backends!(a_console_page_of_this_site_opens_the_socket_with_its_cookie);
