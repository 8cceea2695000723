//! graphql-transport-ws over a real socket: the protocol's close codes, the token checked
//! again on every operation and before every event (4403 once it is revoked or expired,
//! also for a socket that only listens), and the rate limit shared with HTTP. On SQLite
//! and PostgreSQL. Every wait is for a message or a close frame, never for time.

use crate::support;

use std::time::Duration as StdDuration;

use chrono::Duration;
use futures::{SinkExt, StreamExt};
use grantflow_api::ApiSettings;
use serde_json::{Value, json};
use support::{Backend, TestApp, spawn_app, spawn_app_with, spawn_counting};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server said next.
#[derive(Debug, PartialEq)]
enum Frame {
    Msg(Value),
    Closed(u16, String),
}

struct Ws(Stream);

impl Ws {
    async fn open(app: &TestApp) -> Self {
        Self::open_with(app, Some("graphql-transport-ws")).await
    }

    async fn open_with(app: &TestApp, protocol: Option<&str>) -> Self {
        let mut req = format!("ws://{}/graphql/ws", app.addr)
            .into_client_request()
            .unwrap();
        if let Some(p) = protocol {
            req.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        Self(stream)
    }

    async fn send(&mut self, msg: Value) {
        self.send_text(&msg.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.0.send(Message::text(text)).await.unwrap();
    }

    async fn next(&mut self) -> Frame {
        loop {
            match self.0.next().await {
                Some(Ok(Message::Text(t))) => {
                    return Frame::Msg(serde_json::from_str(t.as_str()).unwrap());
                }
                Some(Ok(Message::Close(Some(f)))) => {
                    return Frame::Closed(f.code.into(), f.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return Frame::Closed(0, "closed without a code".into());
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The close code and reason; fails on any other message.
    async fn closed(&mut self) -> (u16, String) {
        match self.next().await {
            Frame::Closed(code, reason) => {
                assert!(reason.len() <= 123, "RFC 6455: {reason}");
                (code, reason)
            }
            Frame::Msg(m) => panic!("expected a close, got {m}"),
        }
    }

    async fn init(&mut self, token: &str) {
        self.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        assert_eq!(
            self.next().await,
            Frame::Msg(json!({ "type": "connection_ack" }))
        );
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// A query's one result (`next` then `complete`), or the `error` message.
    async fn run(&mut self, id: &str, query: &str) -> Value {
        self.subscribe(id, query, json!({})).await;
        let Frame::Msg(first) = self.next().await else {
            panic!("closed")
        };
        assert_eq!(first["id"], id);
        if first["type"] == "next" {
            assert_eq!(
                self.next().await,
                Frame::Msg(json!({ "type": "complete", "id": id }))
            );
        }
        first
    }
}

const TASKS: &str = "subscription { myTasks { change instance { id } } }";

async fn close_codes_follow_the_protocol(backend: Backend) {
    let app = spawn_app_with(
        backend,
        ApiSettings {
            ws_init_timeout: StdDuration::from_millis(200),
            ..ApiSettings::default()
        },
    )
    .await;
    let token = app.session_token("manager").await;

    // subscribe before connection_ack → 4401.
    let mut ws = Ws::open(&app).await;
    ws.subscribe("1", "{ viewer { username } }", json!({}))
        .await;
    assert_eq!(ws.closed().await, (4401, "Unauthorized".into()));

    // Not JSON, not an object, no type, an unknown type, a server-only type → 4400.
    for bad in [
        "not json",
        "[1, 2]",
        r#"{"id": "1"}"#,
        r#"{"type": "bogus"}"#,
        r#"{"type": "next", "id": "1", "payload": {}}"#,
    ] {
        let mut ws = Ws::open(&app).await;
        ws.send_text(bad).await;
        let (code, reason) = ws.closed().await;
        assert_eq!(code, 4400, "{bad}: {reason}");
        assert!(!reason.is_empty());
    }

    // A missing, unknown or malformed token → 4403.
    for payload in [
        json!({}),
        json!({ "Authorization": "Bearer gfs_junk" }),
        json!({ "Authorization": "Basic abc" }),
        json!({ "token": "" }),
    ] {
        let mut ws = Ws::open(&app).await;
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        assert_eq!(ws.closed().await, (4403, "Forbidden".into()), "{payload}");
    }

    // The upgrade request's Authorization header serves when the payload has no token.
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let mut ws = Ws(tokio_tungstenite::connect_async(req).await.unwrap().0);
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(
        ws.next().await,
        Frame::Msg(json!({ "type": "connection_ack" }))
    );

    // A second connection_init → 4429.
    let mut ws = Ws::open(&app).await;
    ws.init(&token).await;
    ws.send(json!({ "type": "connection_init", "payload": { "token": token } }))
        .await;
    assert_eq!(
        ws.closed().await,
        (4429, "Too many initialisation requests".into())
    );

    // The same id while its subscription runs → 4409.
    let mut ws = Ws::open(&app).await;
    ws.init(&token).await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next().await, Frame::Msg(json!({ "type": "pong" })));
    ws.subscribe("tasks", TASKS, json!({})).await;
    ws.subscribe("tasks", TASKS, json!({})).await;
    assert_eq!(
        ws.closed().await,
        (4409, "Subscriber for tasks already exists".into())
    );

    // A finished operation's id may be used again; `complete` ends a subscription.
    let mut ws = Ws::open(&app).await;
    ws.init(&token).await;
    for _ in 0..2 {
        let result = ws.run("q", "{ viewer { username } }").await;
        assert_eq!(result["payload"]["data"]["viewer"]["username"], "manager");
    }
    ws.subscribe("tasks", TASKS, json!({})).await;
    ws.send(json!({ "type": "complete", "id": "tasks" })).await;
    ws.subscribe("tasks", TASKS, json!({})).await;
    let result = ws.run("q", "{ viewer { username } }").await;
    assert_eq!(result["type"], "next", "{result}");

    // At most 100 operations run at once on a socket; the next is refused, not closed.
    for i in 0..99 {
        ws.subscribe(&format!("t{i}"), TASKS, json!({})).await;
    }
    let refused = ws.run("one-too-many", "{ viewer { username } }").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["reason"],
        "TOO_MANY_OPERATIONS"
    );
    for i in 0..99 {
        ws.send(json!({ "type": "complete", "id": format!("t{i}") }))
            .await;
    }

    // Errors before execution come as `error` messages, with codes, not as closes.
    let invalid = ws.run("bad", "{ nosuchfield }").await;
    assert_eq!(invalid["type"], "error", "{invalid}");
    assert_eq!(invalid["payload"][0]["extensions"]["code"], "BAD_REQUEST");

    // No connection_init in time → 4408.
    let mut ws = Ws::open(&app).await;
    assert_eq!(
        ws.closed().await,
        (4408, "Connection initialisation timeout".into())
    );

    // A client that does not speak graphql-transport-ws → 4406.
    let mut ws = Ws::open_with(&app, None).await;
    assert_eq!(ws.closed().await.0, 4406);
}

const LOGOUT: &str = "mutation { logout }";

/// Every way a token ends closes the sockets that use it, at once, even when they only
/// listen.
async fn revoked_tokens_close_their_sockets(backend: Backend) {
    let app = spawn_app(backend).await;
    type Revoke = fn(&TestApp, String, String) -> futures::future::BoxFuture<'_, ()>;
    let ways: [(&str, Revoke); 4] = [
        ("logout", |app, token, _other| {
            Box::pin(async move {
                app.ok(Some(&token), LOGOUT, json!({})).await;
            })
        }),
        ("revokeAllTokens", |app, _token, other| {
            Box::pin(async move {
                app.ok(Some(&other), "mutation { revokeAllTokens }", json!({}))
                    .await;
            })
        }),
        ("changePassword", |app, _token, other| {
            Box::pin(async move {
                app.ok(
                    Some(&other),
                    "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }",
                    json!({ "o": support::PASSWORD, "n": support::PASSWORD }),
                )
                .await;
            })
        }),
        ("deactivation", |app, _token, _other| {
            Box::pin(async move {
                let admin = app.session_token("admin").await;
                let id = app.user("city_gz").id.to_string();
                app.ok(
                    Some(&admin),
                    "mutation($id: ID!) { updateUser(id: $id, input: { active: false }) { id } }",
                    json!({ "id": id }),
                )
                .await;
            })
        }),
    ];
    for (name, revoke) in ways {
        let token = app.session_token("city_gz").await;
        let other = app.session_token("city_gz").await;
        let mut ws = Ws::open(&app).await;
        ws.init(&token).await;
        let r = ws.run("q", "{ viewer { username } }").await;
        assert_eq!(r["payload"]["data"]["viewer"]["username"], "city_gz");
        ws.subscribe("tasks", TASKS, json!({})).await;
        revoke(&app, token.clone(), other).await;
        assert_eq!(ws.closed().await, (4403, "Forbidden".into()), "{name}");
    }
}

/// Expiry on the injected clock, and a revocation this process did not make (another
/// server's, or a direct store write): the next operation, or the next event, finds it.
async fn every_operation_and_event_rechecks_the_token(backend: Backend) {
    let app = spawn_app(backend).await;

    // Expired between two operations.
    let token = app.session_token("manager").await;
    let mut ws = Ws::open(&app).await;
    ws.init(&token).await;
    assert_eq!(ws.run("1", "{ viewer { username } }").await["type"], "next");
    app.clock.advance(Duration::hours(13));
    ws.subscribe("2", "{ viewer { username } }", json!({}))
        .await;
    assert_eq!(ws.closed().await, (4403, "Forbidden".into()));

    // Revoked behind the server's back while a subscription waits for events.
    let token = app.session_token("manager").await;
    let applicant = app.session_token("applicant_a").await;
    let instance = app
        .create_instance("applicant_a", "funded-project", None, None, "订阅项目")
        .await;
    let mut ws = Ws::open(&app).await;
    ws.init(&token).await;
    ws.subscribe(
        "events",
        "subscription($id: ID!) { instanceEvents(instanceId: $id) { kind event } }",
        json!({ "id": instance.id.to_string() }),
    )
    .await;
    let Frame::Msg(current) = ws.next().await else {
        panic!("closed")
    };
    assert_eq!(
        current["payload"]["data"]["instanceEvents"]["kind"],
        "CURRENT"
    );
    let record = app
        .services
        .store
        .find_token(&grantflow_api::auth::token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    app.services
        .store
        .revoke_token(record.id, app.services.now())
        .await
        .unwrap();
    let submitted = app
        .gql(
            Some(&applicant),
            &format!(
                r#"mutation($id: ID!) {{ transition(instanceId: $id, event: "submit", expectedVersion: 0, input: {{
                    project_name: "订阅", budget: "100000",
                    indicators: [{{ category: "output_quantity", name: "培训场次", unit: "场", target: 5, direction: "higher_is_better", weight: 1 }}, {{ category: "effect_social", name: "受益企业", unit: "家", target: 20 }}],
                    application_files: [{{ name: "a.pdf", sha256: "{}", size: 10 }}]
                }}) {{ instance {{ version }} }} }}"#,
                "b".repeat(64)
            ),
            json!({ "id": instance.id.to_string() }),
        )
        .await;
    assert!(submitted.get("errors").is_none(), "{submitted}");
    assert_eq!(
        ws.closed().await,
        (4403, "Forbidden".into()),
        "the event is not delivered to a revoked token"
    );
}

/// Operations on a socket are counted in the same bucket as the user's HTTP requests.
async fn sockets_share_the_rate_limit(backend: Backend) {
    let app = spawn_app_with(
        backend,
        ApiSettings {
            rate_limit_per_minute: 3,
            ..ApiSettings::default()
        },
    )
    .await;
    let token = app.session_token("auditor").await;
    let mut ws = Ws::open(&app).await;
    ws.init(&token).await;
    for i in 0..3 {
        let r = ws.run(&i.to_string(), "{ viewer { username } }").await;
        assert_eq!(r["type"], "next", "{r}");
    }
    let limited = ws.run("4", "{ viewer { username } }").await;
    assert_eq!(limited["type"], "error", "{limited}");
    assert_eq!(limited["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(
        limited["payload"][0]["extensions"]["retryAfterSeconds"], 60,
        "{limited}"
    );
    let http = app
        .gql(Some(&token), "{ viewer { username } }", json!({}))
        .await;
    assert_eq!(support::error_code(&http), "RATE_LIMITED", "{http}");
    // A new minute on the injected clock opens the bucket again, on both transports.
    app.clock.advance(Duration::seconds(60));
    let r = ws.run("5", "{ viewer { username } }").await;
    assert_eq!(r["payload"]["data"]["viewer"]["username"], "auditor");
}

/// A query on a socket meets the request timeout like one over HTTP: the store never
/// answers, the timeout ends the operation (the wait is for that answer, not for time).
async fn socket_operations_meet_the_request_timeout(backend: Backend) {
    let (app, counting) = spawn_counting(
        backend,
        ApiSettings {
            timeout: StdDuration::from_millis(300),
            ..ApiSettings::default()
        },
    )
    .await;
    let token = app.session_token("manager").await;
    let mut ws = Ws::open(&app).await;
    ws.init(&token).await;
    counting.hang_on("list_tokens");
    let timed_out = ws.run("slow", "{ myTokens { id } }").await;
    assert_eq!(timed_out["type"], "error", "{timed_out}");
    assert_eq!(timed_out["payload"][0]["extensions"]["code"], "TIMEOUT");
    // The socket goes on serving.
    let r = ws.run("fast", "{ viewer { username } }").await;
    assert_eq!(r["payload"]["data"]["viewer"]["username"], "manager");
    // Over HTTP the same query ends with 408.
    let resp = app
        .http
        .post(app.url())
        .bearer_auth(&token)
        .json(&json!({ "query": "{ myTokens { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 408);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");
}

use grantflow_testkit::on_both_backends;

on_both_backends!(
    close_codes_follow_the_protocol,
    revoked_tokens_close_their_sockets,
    every_operation_and_event_rechecks_the_token,
    sockets_share_the_rate_limit,
    socket_operations_meet_the_request_timeout,
);
