//! GraphQL over HTTP (the GraphQL-over-HTTP specification: `application/graphql-response+json`
//! and `application/json`, GET for queries, POST for everything), and health checks. The
//! WebSocket endpoint is `ws.rs`, GraphiQL `graphiql.rs`.

use std::net::SocketAddr;

use async_graphql::{BatchRequest, Request, Response, Variables};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use serde_json::{Value, json};
use tracing::Instrument as _;

use grantflow_domain::ErrorKind;

use crate::AppState;
use crate::auth;
use crate::context::RequestContext;
use crate::throttle;

/// 429 with `Retry-After`: the caller's bucket is full for `wait` more seconds.
pub(crate) fn rate_limited(media: MediaType, rid: &str, wait: u64) -> HttpResponse {
    let mut resp = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        media,
        "RATE_LIMITED",
        "请求过于频繁，请稍后再试 (rate limited)",
        rid,
    );
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The media type of a response, chosen from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaType {
    GraphqlResponse,
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// `None` when nothing acceptable is listed (406).
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    if accept.trim().is_empty() {
        return Some(MediaType::Json);
    }
    let types: Vec<String> = accept
        .split(',')
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    if types
        .iter()
        .any(|t| t == "application/graphql-response+json")
    {
        Some(MediaType::GraphqlResponse)
    } else if types
        .iter()
        .any(|t| t == "application/json" || t == "*/*" || t == "application/*")
    {
        Some(MediaType::Json)
    } else {
        None
    }
}

pub(crate) fn request_id(headers: &HeaderMap) -> String {
    crate::observe::request_id_of(headers)
}

/// A response carrying only request errors (no `data` entry).
pub(crate) fn error_response(
    status: StatusCode,
    media: MediaType,
    code: &str,
    message: &str,
    request_id: &str,
) -> HttpResponse {
    let body = json!({
        "errors": [{
            "message": message,
            "extensions": { "code": code, "requestId": request_id }
        }]
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    resp
}

/// Why a request is malformed.
pub(crate) struct BadRequest(pub(crate) String);

pub(crate) fn parse_params(object: &serde_json::Map<String, Value>) -> Result<Request, BadRequest> {
    let query = match object.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(_) => return Err(BadRequest("`query` must be a string".into())),
        None => return Err(BadRequest("missing `query`".into())),
    };
    let mut request = Request::new(query);
    match object.get("operationName") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name.clone()),
        Some(_) => return Err(BadRequest("`operationName` must be a string".into())),
    }
    match object.get("variables") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => {
            crate::nesting::check_json_value(v, crate::nesting::MAX_VARIABLES_DEPTH)
                .map_err(|e| BadRequest(e.to_string()))?;
            request = request.variables(Variables::from_json(v.clone()));
        }
        Some(_) => return Err(BadRequest("`variables` must be an object".into())),
    }
    match object.get("extensions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if let Ok(v) = async_graphql::Value::from_json(v.clone()) {
                    request.extensions.insert(k.clone(), v);
                }
            }
        }
        Some(_) => return Err(BadRequest("`extensions` must be an object".into())),
    }
    Ok(request)
}

fn parse_get(uri: &Uri) -> Result<Request, BadRequest> {
    let mut object = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let value = match k.as_ref() {
            "query" | "operationName" => Value::String(v.into_owned()),
            "variables" | "extensions" => {
                crate::nesting::check_json_text(v.as_bytes(), crate::nesting::MAX_VARIABLES_DEPTH)
                    .map_err(|e| BadRequest(e.to_string()))?;
                serde_json::from_str(&v).map_err(|_| BadRequest(format!("`{k}` must be JSON")))?
            }
            _ => continue,
        };
        object.insert(k.into_owned(), value);
    }
    parse_params(&object)
}

/// The type of the operation a request would run; `None` when the document does not
/// parse or does not say (errors that execution reports).
pub(crate) fn operation_type(
    request: &Request,
) -> Option<async_graphql::parser::types::OperationType> {
    // Refused, before parsing, by execution (nesting::NestingLimit): never parsed here.
    crate::nesting::check_document(&request.query).ok()?;
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    use async_graphql::parser::types::DocumentOperations;
    match (&doc.operations, &request.operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name.as_str()).map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The operation a GET request would run is a mutation or subscription.
fn is_not_query(request: &Request) -> bool {
    use async_graphql::parser::types::OperationType;
    matches!(
        operation_type(request),
        Some(OperationType::Mutation | OperationType::Subscription)
    )
}

enum Parsed {
    Single(Box<Request>),
    Batch(Vec<Request>),
}

fn content_type_ok(headers: &HeaderMap) -> Result<(), StatusCode> {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    };
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/json" && mime != "application/graphql+json" {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
            && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }
    Ok(())
}

fn parse_post(body: &[u8], max_batch: usize) -> Result<Parsed, BadRequest> {
    crate::nesting::check_json_text(body, crate::nesting::MAX_BODY_DEPTH)
        .map_err(|e| BadRequest(e.to_string()))?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| BadRequest("the body is not valid JSON".into()))?;
    match value {
        Value::Object(o) => Ok(Parsed::Single(Box::new(parse_params(&o)?))),
        Value::Array(items) => {
            if items.is_empty() || items.len() > max_batch {
                return Err(BadRequest(format!(
                    "a batch holds 1 to {max_batch} operations, not {}",
                    items.len()
                )));
            }
            items
                .iter()
                .map(|i| match i {
                    Value::Object(o) => parse_params(o),
                    _ => Err(BadRequest(
                        "each batched operation must be an object".into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Parsed::Batch)
        }
        _ => Err(BadRequest("the body must be a JSON object".into())),
    }
}

/// Every error gets a stable code; errors without one are either request errors
/// (BAD_REQUEST) or unexpected failures, whose message is masked (INTERNAL).
pub(crate) fn finish_errors(resp: &mut Response, request_id: &str) {
    for e in &mut resp.errors {
        let request_level = e.path.is_empty();
        let has_code = e
            .extensions
            .as_ref()
            .is_some_and(|x| x.get("code").is_some());
        let ext = e.extensions.get_or_insert_with(Default::default);
        if request_level {
            // Like the errors answered before execution: the request id goes along.
            ext.set("requestId", request_id);
        }
        if has_code {
            continue;
        }
        if request_level {
            ext.set("code", "BAD_REQUEST");
        } else {
            tracing::error!(request_id, error = %e.message, "unexpected resolver error");
            e.message = "服务器内部错误 (internal error)".into();
            ext.set("code", "INTERNAL");
            ext.set("requestId", request_id);
        }
    }
}

/// Parse and validation failures never reach execution: no field error has a path and
/// there is no data.
pub(crate) fn is_request_error(resp: &Response) -> bool {
    !resp.errors.is_empty()
        && resp.data == async_graphql::Value::Null
        && resp.errors.iter().all(|e| e.path.is_empty())
}

pub(crate) fn response_json(resp: &Response) -> Value {
    let mut v = serde_json::to_value(resp).unwrap_or_else(|_| json!({}));
    if is_request_error(resp)
        && let Value::Object(m) = &mut v
    {
        m.remove("data");
    }
    v
}

pub async fn graphql(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> HttpResponse {
    let rid = request_id(&headers);
    let Some(media) = negotiate(&headers) else {
        let mut r = error_response(
            StatusCode::NOT_ACCEPTABLE,
            MediaType::Json,
            "BAD_REQUEST",
            "请在 Accept 中接受 application/graphql-response+json 或 application/json (not acceptable)",
            &rid,
        );
        r.headers_mut().insert(
            "x-request-id",
            HeaderValue::from_str(&rid).unwrap_or(HeaderValue::from_static("-")),
        );
        return r;
    };
    let mut resp = match body {
        Ok(body) => {
            handle(
                &app,
                method,
                &headers,
                &uri,
                connect.map(|e| e.0),
                &body,
                media,
                &rid,
            )
            .await
        }
        Err(rejection) => error_response(
            rejection.status(),
            media,
            "BAD_REQUEST",
            &format!(
                "请求体过大或无法读取，上限为 {} 字节 (the request body is too large or unreadable; the limit is {} bytes)",
                app.settings.body_limit_bytes, app.settings.body_limit_bytes
            ),
            &rid,
        ),
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    app: &AppState,
    method: Method,
    headers: &HeaderMap,
    uri: &Uri,
    connect: Option<ConnectInfo<SocketAddr>>,
    body: &[u8],
    media: MediaType,
    rid: &str,
) -> HttpResponse {
    let bad = |msg: &str| error_response(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", msg, rid);
    let parsed = match method {
        Method::GET => match parse_get(uri) {
            Ok(r) => {
                if is_not_query(&r) {
                    let mut resp = error_response(
                        StatusCode::METHOD_NOT_ALLOWED,
                        media,
                        "BAD_REQUEST",
                        "变更操作须使用 POST (mutations must use POST)",
                        rid,
                    );
                    resp.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                    return resp;
                }
                Parsed::Single(Box::new(r))
            }
            Err(BadRequest(m)) => return bad(&m),
        },
        Method::POST => {
            if let Err(status) = content_type_ok(headers) {
                return error_response(
                    status,
                    media,
                    "BAD_REQUEST",
                    "Content-Type 须为 application/json (unsupported media type)",
                    rid,
                );
            }
            match parse_post(body, app.settings.max_batch) {
                Ok(p) => p,
                Err(BadRequest(m)) => return bad(&m),
            }
        }
        _ => {
            let mut resp = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                media,
                "BAD_REQUEST",
                "method not allowed",
                rid,
            );
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return resp;
        }
    };

    // Who is asking, and are they over their rate? The bucket is the user behind a valid
    // token, else the client address: an unknown bearer buys no bucket of its own.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
        .map(str::to_string);
    let viewer = match &token {
        Some(t) => match auth::resolve(app.services.store.as_ref(), t, app.services.now()).await {
            Ok(v) => v,
            Err(grantflow_store::StoreError::Unavailable(e)) => {
                tracing::warn!(request_id = rid, error = %e, "the database is unavailable");
                return unavailable(media, rid);
            }
            Err(e) => {
                tracing::error!(request_id = rid, error = %e, "resolving the bearer token failed");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    media,
                    "INTERNAL",
                    "服务器内部错误 (internal error)",
                    rid,
                );
            }
        },
        None => None,
    };
    let addr = throttle::client_addr(
        headers,
        connect.map(|ConnectInfo(a)| a.ip()),
        app.settings.trusted_proxy_hops,
    );
    let cost = match &parsed {
        Parsed::Single(_) => 1,
        Parsed::Batch(items) => u32::try_from(items.len()).unwrap_or(u32::MAX),
    };
    let key = throttle::principal_key(viewer.as_ref(), addr);
    if let Err(wait) = app.guards.rate.check(&key, cost, app.services.now()) {
        return rate_limited(media, rid, wait);
    }
    let make_ctx = || {
        RequestContext::new(
            app.services.clone(),
            app.settings.clone(),
            rid.to_string(),
            viewer.clone(),
        )
        .with_client_addr(addr)
    };

    let (status, body) = match parsed {
        Parsed::Single(request) => {
            let name = crate::observe::operation_name(&request);
            let started = std::time::Instant::now();
            let mut resp = app
                .schema
                .execute(request.data(make_ctx()))
                .instrument(crate::observe::operation_span(name.as_deref(), rid))
                .await;
            finish_errors(&mut resp, rid);
            crate::observe::observe_operation(name.as_deref(), &resp, started);
            let status = if is_unavailable(&resp) {
                StatusCode::SERVICE_UNAVAILABLE
            } else if media == MediaType::GraphqlResponse && is_request_error(&resp) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            (status, response_json(&resp))
        }
        Parsed::Batch(requests) => {
            let names: Vec<Option<String>> = requests
                .iter()
                .map(crate::observe::operation_name)
                .collect();
            let started = std::time::Instant::now();
            let batch =
                BatchRequest::Batch(requests.into_iter().map(|r| r.data(make_ctx())).collect());
            let resp = app.schema.execute_batch(batch).await;
            let items: Vec<Response> = match resp {
                async_graphql::BatchResponse::Single(r) => vec![r],
                async_graphql::BatchResponse::Batch(rs) => rs,
            };
            let body: Vec<Value> = items
                .into_iter()
                .zip(names)
                .map(|(mut r, name)| {
                    finish_errors(&mut r, rid);
                    crate::observe::observe_operation(name.as_deref(), &r, started);
                    response_json(&r)
                })
                .collect();
            (StatusCode::OK, Value::Array(body))
        }
    };
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    resp
}

/// Every error of the response says the database is unavailable (nothing was done).
fn is_unavailable(resp: &Response) -> bool {
    !resp.errors.is_empty()
        && resp.errors.iter().all(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| {
                    matches!(c, async_graphql::Value::String(s) if s == ErrorKind::Unavailable.as_str())
                })
        })
}

/// Status 503 with a GraphQL error coded `UNAVAILABLE` and `Retry-After`.
fn unavailable(media: MediaType, rid: &str) -> HttpResponse {
    let (zh, en) = ErrorKind::Unavailable.default_message();
    let mut resp = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        media,
        ErrorKind::Unavailable.as_str(),
        &format!("{zh} ({en})"),
        rid,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
pub async fn readyz(State(app): State<AppState>) -> HttpResponse {
    match app.services.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
}

/// Cuts a request off at the request timeout: its future (and the work pool job it waits
/// on) is dropped, and the client gets status 408 with a GraphQL error coded `TIMEOUT`.
pub async fn request_timeout(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> HttpResponse {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            serde_json::json!({ "errors": crate::error::timeout_errors(limit) }).to_string(),
        )
            .into_response(),
    }
}

/// Why an in-process operation was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRun {
    /// Over the rate limit; retry after this many seconds.
    RateLimited(u64),
    /// The store failed while resolving the token (logged with the request id).
    Internal,
}

/// Runs one GraphQL operation for a bearer token on the path an HTTP request takes: the
/// token is resolved, the rate limit counted for the same principal, and the schema (with
/// every limit, scope check and resolver rule) executes it; internal errors are masked.
/// The answer is the response JSON (`data`, `errors`). The console's one path.
pub async fn execute_as(
    app: &AppState,
    token: Option<&str>,
    addr: Option<std::net::IpAddr>,
    request: Request,
) -> Result<Value, NotRun> {
    let rid = uuid::Uuid::now_v7().to_string();
    let viewer = match token {
        Some(t) => auth::resolve(app.services.store.as_ref(), t, app.services.now())
            .await
            .map_err(|e| {
                tracing::error!(request_id = rid, error = %e, "resolving the session token failed");
                NotRun::Internal
            })?,
        None => None,
    };
    let key = throttle::principal_key(viewer.as_ref(), addr);
    app.guards
        .rate
        .check(&key, 1, app.services.now())
        .map_err(NotRun::RateLimited)?;
    let ctx = RequestContext::new(
        app.services.clone(),
        app.settings.clone(),
        rid.clone(),
        viewer,
    )
    .with_client_addr(addr);
    let mut resp = app.schema.execute(request.data(ctx)).await;
    finish_errors(&mut resp, &rid);
    Ok(response_json(&resp))
}
