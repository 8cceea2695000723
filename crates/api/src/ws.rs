//! The graphql-transport-ws protocol (the `graphql-ws` library's PROTOCOL.md), served by
//! grantflow itself so that every operation on a socket meets the same rules as over
//! HTTP:
//!
//! - the token from `connection_init` is checked again (revoked? expired on the injected
//!   clock? user deactivated?) on every `subscribe`, before every event a subscription
//!   delivers, and at once when the user's credentials change in this process (logout,
//!   revocation, password change or reset, deactivation); a token no longer valid closes
//!   the socket with 4403;
//! - every `subscribe` is counted by the same rate limit as an HTTP request (same
//!   bucket), and queries and mutations run under the same request timeout;
//! - the protocol's close codes: 4400 for a malformed message, 4401 for `subscribe`
//!   before `connection_ack`, 4403 for a missing, bad or revoked token, 4408 when no
//!   `connection_init` arrives in time, 4409 for a duplicate operation id, 4429 for a
//!   second `connection_init`, and RFC 6455's 1001 (going away) when the server shuts down; every close reason is cut to the 123 bytes RFC 6455 allows.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use async_graphql::Request;
use async_graphql::parser::types::OperationType;
use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response as HttpResponse;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::AppState;
use crate::auth::{self, Viewer};
use crate::context::RequestContext;
use crate::http::{self, BadRequest, MediaType};
use crate::throttle;

pub const PROTOCOL: &str = "graphql-transport-ws";

/// The web console's session cookie (the same opaque token the API issues). A socket
/// opened by a console page of this site (its `Origin` is the request's `Host`) is
/// authenticated by it when `connection_init` carries no token, so the page needs no
/// token of its own (the cookie stays HttpOnly). Another site's page gets no such
/// fallback: cross-site WebSocket hijacking finds a socket without a viewer (4403).
pub const SESSION_COOKIE: &str = "gf_session";

/// RFC 6455 allows 123 bytes of reason in a close frame (125 less the code); clients drop
/// frames with more.
pub const MAX_CLOSE_REASON: usize = 123;

/// Operation ids are echoed in close reasons and messages: keep them short.
const MAX_ID_BYTES: usize = 64;

/// Operations running at once on one socket (each subscription holds a task and a place
/// in the event feed); more are refused with an `error` message.
pub const MAX_OPERATIONS: usize = 100;

/// Why the server closes a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
    fn bad(reason: &str) -> Self {
        Self::new(4400, reason)
    }
    fn forbidden() -> Self {
        Self::new(4403, "Forbidden")
    }

    /// The close frame; the one place a reason is cut to [`MAX_CLOSE_REASON`] bytes (on a
    /// character boundary).
    pub fn frame(&self) -> CloseFrame {
        CloseFrame {
            code: self.code,
            reason: truncate(&self.reason, MAX_CLOSE_REASON).into(),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `GET /graphql/ws`.
pub async fn upgrade(
    State(app): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> HttpResponse {
    let addr = throttle::client_addr(
        &headers,
        connect.map(|Extension(ConnectInfo(a))| a.ip()),
        app.settings.trusted_proxy_hops,
    );
    // Clients that can set headers may authenticate the upgrade instead of the payload.
    let header_token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
        .map(str::to_string)
        .or_else(|| same_origin_session(&headers));
    // Opening sockets is counted like a request by the client address.
    let key = throttle::principal_key(None, addr);
    if let Err(wait) = app.guards.rate.check(&key, 1, app.services.now()) {
        return http::rate_limited(MediaType::Json, &http::request_id(&headers), wait);
    }
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(app.settings.body_limit_bytes)
        .on_upgrade(move |socket| async move {
            let speaks_protocol = socket
                .protocol()
                .is_some_and(|p| p.as_bytes() == PROTOCOL.as_bytes());
            Connection::new(app, addr, header_token)
                .run(socket, speaks_protocol)
                .await;
        })
}

/// What operation tasks hand to the connection's writer.
enum Out {
    Send(Value),
    /// The operation's last message (`complete` or `error`): its id is free again before
    /// the client hears of it, so the client may reuse the id at once.
    Finish(String, u64, Option<Value>),
    Close(Close),
}

struct Connection {
    app: AppState,
    addr: Option<IpAddr>,
    /// The upgrade request's bearer token, used when `connection_init` carries none.
    header_token: Option<String>,
    init_received: bool,
    /// The bearer token and who it stood for when last checked; set by the ack.
    session: Option<(String, Viewer)>,
    /// Running operations by id, with a generation to tell a finished one from its
    /// successor under the same id.
    operations: HashMap<String, (u64, tokio::task::AbortHandle)>,
    generation: u64,
    out_tx: mpsc::Sender<Out>,
    out_rx: Option<mpsc::Receiver<Out>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for (_, (_, task)) in self.operations.drain() {
            task.abort();
        }
    }
}

impl Connection {
    fn new(app: AppState, addr: Option<IpAddr>, header_token: Option<String>) -> Self {
        // Bounded: a slow reader slows its subscriptions instead of filling memory.
        let (out_tx, out_rx) = mpsc::channel(64);
        Self {
            app,
            addr,
            header_token,
            init_received: false,
            session: None,
            operations: HashMap::new(),
            generation: 0,
            out_tx,
            out_rx: Some(out_rx),
        }
    }

    async fn run(mut self, socket: WebSocket, speaks_protocol: bool) {
        let (mut sink, mut stream) = socket.split();
        if !speaks_protocol {
            let close = Close::new(4406, "Subprotocol not acceptable");
            let _ = sink.send(Message::Close(Some(close.frame()))).await;
            return;
        }
        let mut out_rx = self.out_rx.take().expect("the receiver, once");
        let mut revocations = self.app.guards.revocations.subscribe();
        let mut shutdown = self.app.guards.shutdown.subscribe();
        let init_timeout = tokio::time::sleep(self.app.settings.ws_init_timeout);
        tokio::pin!(init_timeout);
        let close = loop {
            tokio::select! {
                Ok(()) = shutdown.changed() => {
                    if *shutdown.borrow_and_update() {
                        break Some(Close::new(1001, "Server shutting down"));
                    }
                }
                () = &mut init_timeout, if !self.init_received => {
                    break Some(Close::new(4408, "Connection initialisation timeout"));
                }
                incoming = stream.next() => {
                    let text = match incoming {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Binary(_))) => break Some(Close::bad("Binary messages are not supported")),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    };
                    match self.on_message(text.as_str()).await {
                        Ok(Some(reply)) => {
                            if sink.send(Message::text(reply.to_string())).await.is_err() {
                                break None;
                            }
                        }
                        Ok(None) => {}
                        Err(close) => break Some(close),
                    }
                }
                Some(out) = out_rx.recv() => match out {
                    Out::Send(msg) => {
                        if sink.send(Message::text(msg.to_string())).await.is_err() {
                            break None;
                        }
                    }
                    Out::Finish(id, generation, last) => {
                        if self.operations.get(&id).is_some_and(|(g, _)| *g == generation) {
                            self.operations.remove(&id);
                        }
                        if let Some(msg) = last
                            && sink.send(Message::text(msg.to_string())).await.is_err()
                        {
                            break None;
                        }
                    }
                    Out::Close(close) => break Some(close),
                },
                changed = revocations.recv(), if self.session.is_some() => {
                    let ours = match changed {
                        Ok(user) => self.session.as_ref().is_some_and(|(_, v)| v.user.id == user),
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => false,
                    };
                    if ours && let Err(close) = self.recheck().await {
                        break Some(close);
                    }
                }
            }
        };
        // Stop every operation before saying goodbye: nothing is sent after the close.
        for (_, (_, task)) in self.operations.drain() {
            task.abort();
        }
        if let Some(close) = close {
            tracing::debug!(code = close.code, reason = %close.reason, "closing a WebSocket");
            let _ = sink.send(Message::Close(Some(close.frame()))).await;
        }
    }

    /// The token is still valid (re-read from the store, on the injected clock): the
    /// viewer with fresh roles; otherwise close with 4403.
    async fn recheck(&mut self) -> Result<Viewer, Close> {
        let Some((token, _)) = &self.session else {
            return Err(Close::new(4401, "Unauthorized"));
        };
        let viewer = still_valid(&self.app, token).await?;
        if let Some((_, v)) = &mut self.session {
            *v = viewer.clone();
        }
        Ok(viewer)
    }

    /// Handle one client message: a reply to send, or the reason to close.
    async fn on_message(&mut self, text: &str) -> Result<Option<Value>, Close> {
        let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
            return Err(Close::bad("Invalid message received"));
        };
        let Some(kind) = msg.get("type").and_then(Value::as_str) else {
            return Err(Close::bad("Invalid message received"));
        };
        match kind {
            "connection_init" => {
                if self.init_received {
                    return Err(Close::new(4429, "Too many initialisation requests"));
                }
                self.init_received = true;
                let payload = match msg.get("payload") {
                    None | Some(Value::Null) => serde_json::Map::new(),
                    Some(Value::Object(p)) => p.clone(),
                    Some(_) => return Err(Close::bad("Invalid connection_init payload")),
                };
                let token = token_of(&payload)
                    .or_else(|| self.header_token.clone())
                    .ok_or_else(Close::forbidden)?;
                let viewer = still_valid(&self.app, &token).await?;
                self.session = Some((token, viewer));
                Ok(Some(json!({ "type": "connection_ack" })))
            }
            "ping" => Ok(Some(match msg.get("payload") {
                Some(p @ Value::Object(_)) => json!({ "type": "pong", "payload": p }),
                _ => json!({ "type": "pong" }),
            })),
            "pong" => Ok(None),
            "subscribe" => {
                let id = operation_id(&msg)?;
                let Some(Value::Object(payload)) = msg.get("payload") else {
                    return Err(Close::bad("Invalid subscribe payload"));
                };
                if self.session.is_none() {
                    return Err(Close::new(4401, "Unauthorized"));
                }
                if self.operations.contains_key(&id) {
                    return Err(Close::new(
                        4409,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                let viewer = self.recheck().await?;
                if self.operations.len() >= MAX_OPERATIONS {
                    return Ok(Some(error_message(&id, too_many_operations_error())));
                }
                let key = throttle::principal_key(Some(&viewer), self.addr);
                let now = self.app.services.now();
                if let Err(wait) = self.app.guards.rate.check(&key, 1, now) {
                    return Ok(Some(error_message(&id, rate_limited_error(wait))));
                }
                let request = match http::parse_params(payload) {
                    Ok(r) => r,
                    Err(BadRequest(m)) => {
                        return Ok(Some(error_message(&id, bad_request_error(&m))));
                    }
                };
                self.start(id, request, viewer);
                Ok(None)
            }
            "complete" => {
                let id = operation_id(&msg)?;
                if let Some((_, task)) = self.operations.remove(&id) {
                    task.abort();
                }
                Ok(None)
            }
            _ => Err(Close::bad("Invalid message received")),
        }
    }

    fn start(&mut self, id: String, request: Request, viewer: Viewer) {
        self.generation += 1;
        let generation = self.generation;
        let token = self
            .session
            .as_ref()
            .map(|(t, _)| t.clone())
            .unwrap_or_default();
        let op = Operation {
            app: self.app.clone(),
            addr: self.addr,
            id: id.clone(),
            token,
            out: self.out_tx.clone(),
        };
        let task = tokio::spawn(async move {
            let last = op.run(request, viewer).await;
            let _ = op
                .out
                .send(Out::Finish(op.id.clone(), generation, last))
                .await;
        });
        self.operations
            .insert(id, (generation, task.abort_handle()));
    }
}

/// The console's session cookie of an upgrade request whose `Origin` is this site (its
/// scheme aside, the origin's authority equals the `Host` header); `None` for any other
/// origin, or none.
fn same_origin_session(headers: &HeaderMap) -> Option<String> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header(axum::http::header::HOST)?;
    let origin = header(axum::http::header::ORIGIN)?;
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    if !authority.eq_ignore_ascii_case(host) {
        return None;
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The bearer token of a `connection_init` payload: `{"Authorization": "Bearer …"}` (any
/// case) or `{"token": "…"}`. (Failing that, the upgrade request's `Authorization`.)
fn token_of(payload: &serde_json::Map<String, Value>) -> Option<String> {
    payload
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str())
        .and_then(auth::bearer)
        .or_else(|| payload.get("token").and_then(Value::as_str))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn operation_id(msg: &serde_json::Map<String, Value>) -> Result<String, Close> {
    match msg.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.len() <= MAX_ID_BYTES => Ok(id.to_string()),
        Some(id) if id.len() > MAX_ID_BYTES => Err(Close::bad("Operation id too long")),
        _ => Err(Close::bad("Invalid message received")),
    }
}

/// The viewer behind `token` now, or 4403.
async fn still_valid(app: &AppState, token: &str) -> Result<Viewer, Close> {
    match auth::resolve(app.services.store.as_ref(), token, app.services.now()).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(Close::forbidden()),
        Err(e) => {
            tracing::error!(error = %e, "re-checking a WebSocket's token failed");
            Err(Close::new(1011, "Internal error"))
        }
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "takes the errors it wraps, as `json!` callers build them"
)]
fn error_message(id: &str, errors: Value) -> Value {
    json!({ "type": "error", "id": id, "payload": errors })
}

fn rate_limited_error(wait: u64) -> Value {
    json!([{
        "message": "请求过于频繁，请稍后再试 (rate limited)",
        "extensions": { "code": "RATE_LIMITED", "retryAfterSeconds": wait }
    }])
}

fn too_many_operations_error() -> Value {
    json!([{
        "message": format!("每个连接最多同时运行 {MAX_OPERATIONS} 个操作 (at most {MAX_OPERATIONS} operations may run at once on one connection)"),
        "extensions": { "code": "BAD_REQUEST", "reason": "TOO_MANY_OPERATIONS" }
    }])
}

fn bad_request_error(message: &str) -> Value {
    json!([{ "message": message, "extensions": { "code": "BAD_REQUEST" } }])
}

/// One operation of a socket.
struct Operation {
    app: AppState,
    addr: Option<IpAddr>,
    id: String,
    token: String,
    out: mpsc::Sender<Out>,
}

impl Operation {
    /// Run the operation; the last message to send (`complete` or `error`), none when
    /// the socket is closing.
    async fn run(&self, request: Request, viewer: Viewer) -> Option<Value> {
        let rid = uuid::Uuid::new_v4().to_string();
        let streaming = http::operation_type(&request) == Some(OperationType::Subscription);
        let context = RequestContext::new(
            self.app.services.clone(),
            self.app.settings.clone(),
            rid.clone(),
            Some(viewer),
        )
        .with_client_addr(self.addr);
        if streaming {
            // A subscription lives long: every event reads fresh records.
            context.loader.enable_all_cache(false);
        }
        let mut responses = self.app.schema.execute_stream(request.data(context));
        if !streaming {
            // Queries and mutations: one response, under the request timeout.
            let timeout = self.app.settings.timeout;
            let Ok(first) = tokio::time::timeout(timeout, responses.next()).await else {
                return Some(error_message(
                    &self.id,
                    crate::error::timeout_errors(timeout),
                ));
            };
            if let Some(resp) = first {
                return self.deliver(resp, &rid, true).await;
            }
            return Some(self.complete());
        }
        let mut first = true;
        while let Some(resp) = responses.next().await {
            // Before every event: is the token still good? (Also catches expiry on the
            // injected clock and revocations made by another server process.)
            if !first && let Err(close) = still_valid(&self.app, &self.token).await {
                let _ = self.out.send(Out::Close(close)).await;
                return None;
            }
            first = false;
            if let Some(last) = self.deliver(resp, &rid, false).await {
                return Some(last);
            }
        }
        Some(self.complete())
    }

    /// Send one response as `next`, or return the message that ends the operation: the
    /// `error` message when the request never ran (parse or validation errors), or
    /// `complete` after the only response of a query (`last`).
    async fn deliver(
        &self,
        mut resp: async_graphql::Response,
        rid: &str,
        last: bool,
    ) -> Option<Value> {
        http::finish_errors(&mut resp, rid);
        if http::is_request_error(&resp) {
            let errors = serde_json::to_value(&resp.errors).unwrap_or_else(|_| json!([]));
            return Some(error_message(&self.id, errors));
        }
        let next = json!({ "type": "next", "id": self.id, "payload": http::response_json(&resp) });
        if self.out.send(Out::Send(next)).await.is_err() {
            return None;
        }
        last.then(|| self.complete())
    }

    fn complete(&self) -> Value {
        json!({ "type": "complete", "id": self.id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_to_123_bytes_on_a_character_boundary() {
        let id = "订".repeat(60);
        let close = Close::new(4409, format!("Subscriber for {id} already exists"));
        let frame = close.frame();
        assert!(frame.reason.as_str().len() <= MAX_CLOSE_REASON);
        assert!(frame.reason.as_str().starts_with("Subscriber for 订"));
        assert_eq!(truncate("short", 123), "short");
    }
}
