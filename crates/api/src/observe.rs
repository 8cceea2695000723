//! What `/metrics` and the logs see of requests: HTTP latency by route and status,
//! GraphQL operation latency by operation name and outcome, and a request id on every
//! request's log span.
//!
//! Label values never grow without bound on client input: routes are the router's
//! patterns, outcomes are the API's error codes, and operation names (chosen by clients)
//! are admitted only when they are GraphQL names of at most 64 bytes, the first
//! [`MAX_OPERATION_NAMES`] distinct ones; any other is counted as `(other)`.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use async_graphql::Response;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response as HttpResponse;

/// Distinct operation names given their own series; later ones count as `(other)`.
pub const MAX_OPERATION_NAMES: usize = 200;

fn admitted() -> &'static Mutex<HashSet<String>> {
    static NAMES: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    NAMES.get_or_init(Mutex::default)
}

/// The label for a client's operation name.
pub fn operation_label(name: Option<&str>) -> String {
    let Some(name) = name else {
        return "(anonymous)".into();
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return "(other)".into();
    }
    let mut names = admitted().lock().unwrap_or_else(PoisonError::into_inner);
    if names.contains(name) || names.len() < MAX_OPERATION_NAMES {
        names.insert(name.to_string());
        name.to_string()
    } else {
        "(other)".into()
    }
}

/// The operation's name: the request's `operationName`, else the name of the document's
/// first operation when it has one (`mutation Submit(…) { … }`).
pub fn operation_name(request: &async_graphql::Request) -> Option<String> {
    if let Some(name) = &request.operation_name {
        return Some(name.clone());
    }
    let text = request.query.trim_start();
    let rest = ["query", "mutation", "subscription"]
        .iter()
        .find_map(|kind| text.strip_prefix(kind))?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(65)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// `ok`, or the code of the response's first error (`INVALID_INPUT`, `FORBIDDEN`, …).
pub fn outcome(resp: &Response) -> String {
    let Some(first) = resp.errors.first() else {
        return "ok".into();
    };
    let code = first
        .extensions
        .as_ref()
        .and_then(|x| x.get("code"))
        .and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.clone()),
            async_graphql::Value::Enum(n) => Some(n.to_string()),
            _ => None,
        });
    match code {
        Some(c) if c.len() <= 40 && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_') => c,
        _ => "ERROR".into(),
    }
}

/// Record one GraphQL operation.
pub fn observe_operation(name: Option<&str>, resp: &Response, started: Instant) {
    metrics::histogram!(
        "grantflow_graphql_operation_seconds",
        "operation" => operation_label(name),
        "outcome" => outcome(resp),
    )
    .record(started.elapsed().as_secs_f64());
}

/// Middleware: `grantflow_http_request_seconds{route, method, status}`.
pub async fn track_http(request: Request, next: Next) -> HttpResponse {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |p| p.as_str().to_string());
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        "grantflow_http_request_seconds",
        "route" => route,
        "method" => method,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// A valid request id from the client's `X-Request-Id`, or a new one.
pub fn request_id_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Middleware (outermost): every request carries a valid `X-Request-Id` from here on, so
/// the log span, the handler's error details and the response header name the same id.
pub async fn ensure_request_id(mut request: Request, next: Next) -> HttpResponse {
    let id = request_id_of(request.headers());
    if let Ok(v) = HeaderValue::from_str(&id) {
        request.headers_mut().insert("x-request-id", v);
    }
    next.run(request).await
}

/// The span of one GraphQL operation, inside its request's span: named
/// `graphql <operation>` for OpenTelemetry (`otel.name`), with the operation's name as
/// `graphql.operation.name` (OpenTelemetry's semantic convention); `anonymous` without one.
/// It repeats the request id, so that a JSON log line's innermost span still names it.
pub fn operation_span(name: Option<&str>, request_id: &str) -> tracing::Span {
    // A client names its operation: bounded like any other input.
    let name: String = name.unwrap_or("anonymous").chars().take(100).collect();
    tracing::info_span!(
        "graphql",
        otel.name = %format!("graphql {name}"),
        graphql.operation.name = %name,
        request_id = %request_id,
    )
}

/// The log span of a request: method, path and request id (JSON logs carry them on every
/// line written while the request runs).
pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}
