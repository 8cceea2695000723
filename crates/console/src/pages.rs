//! Handlers: each runs GraphQL documents as the signed-in user and renders a template.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use grantflow_api::AppState;
use grantflow_api::http::{NotRun, execute_as};
use minijinja::context;
use serde_json::{Value, json};

use crate::Page;
use crate::i18n::{Lang, text, texts};
use crate::session::{self, LANG, LOGIN_CSRF, SESSION, cookie, csrf_for_session, csrf_ok};

const LIST: &str = r#"query($first: Int!, $final: Boolean) {
  viewer { id username displayName roles }
  instances(first: $first, filter: { includeFinal: $final }, sort: { field: DUE_AT, direction: ASC }) {
    edges { node { id title dueAt overdue state { title { zhCn en } } availableTransitions { available } } }
  }
}"#;

const INSTANCE: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  instance(id: $id) {
    id title version dueAt overdue data
    state { title { zhCn en } } stage { title { zhCn en } }
    history { at event fromState toState reason }
    timers(pendingOnly: true) { kind fireAt }
    availableTransitions {
      event title { zhCn en } available reasonRequired
      input { name type required title { zhCn en } options }
      unavailableReason { code message { zhCn en } }
    }
  }
}"#;

const FIRE: &str = r#"mutation($id: ID!, $event: String!, $v: Int!, $input: JSON, $reason: String) {
  transition(instanceId: $id, event: $event, expectedVersion: $v, input: $input, reason: $reason) { instance { id } }
}"#;

/// What every request of the console knows about itself.
pub(crate) struct Visit {
    pub(crate) lang: Lang,
    pub(crate) session: Option<String>,
    addr: Option<std::net::IpAddr>,
    pub(crate) path: String,
    secure: bool,
}

impl Visit {
    pub(crate) fn new(
        app: &AppState,
        headers: &HeaderMap,
        uri: &Uri,
        addr: Option<SocketAddr>,
    ) -> Self {
        Self {
            lang: Lang::from_cookie(cookie(headers, LANG).as_deref()),
            session: cookie(headers, SESSION),
            addr: grantflow_api::throttle::client_addr(
                headers,
                addr.map(|a| a.ip()),
                app.settings.trusted_proxy_hops,
            ),
            path: uri.path().to_string(),
            secure: app.settings.production,
        }
    }

    /// The login page, for a visitor without a session.
    pub(crate) fn login_needed(&self) -> Option<Response> {
        self.session
            .is_none()
            .then(|| Redirect::to("/login").into_response())
    }

    /// The 403 page, for a posted form whose CSRF token is wrong or missing ([`csrf_ok`]).
    pub(crate) fn form_refused(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Option<Response> {
        (!csrf_ok(headers, token))
            .then(|| self.message(StatusCode::FORBIDDEN, "error", text(self.lang, "csrf")))
    }

    pub(crate) fn csrf(&self, headers: &HeaderMap) -> String {
        match &self.session {
            Some(s) => csrf_for_session(s),
            None => cookie(headers, LOGIN_CSRF).unwrap_or_default(),
        }
    }

    /// Runs a document as the visitor; `Err` is the response to give instead (the login
    /// page when signed out, a rate-limit or error page).
    pub(crate) async fn run(
        &self,
        app: &AppState,
        query: &str,
        variables: Value,
    ) -> Result<Value, Response> {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        match execute_as(app, self.session.as_deref(), self.addr, request).await {
            Ok(answer) => {
                if error_code(&answer) == Some("UNAUTHENTICATED") {
                    return Err(Redirect::to("/login").into_response());
                }
                Ok(answer)
            }
            Err(NotRun::RateLimited(_)) => Err(self.message(
                StatusCode::TOO_MANY_REQUESTS,
                "error",
                text(self.lang, "rate_limited"),
            )),
            Err(NotRun::Internal) => Err(self.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error",
                text(self.lang, "error"),
            )),
        }
    }

    pub(crate) fn message(&self, status: StatusCode, heading: &str, message: &str) -> Response {
        let page = Page::render(
            "message.html",
            context! {
                lang => self.lang.code(), tr => texts(self.lang), path => self.path,
                heading => text(self.lang, heading), message => message,
            },
        );
        (status, page).into_response()
    }

    pub(crate) fn i18n(&self, text: &Value) -> String {
        text[self.lang.graphql_key()]
            .as_str()
            .or_else(|| text["zh-CN"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// A time in China Standard Time, to the minute.
    pub(crate) fn time(&self, value: &Value) -> Option<String> {
        chrono_like(value.as_str()?)
    }
}

/// `2024-06-28T16:00:00Z` → `2024-06-28 24:00`: China Standard Time (UTC+8, no daylight
/// saving since 1991), to the minute. Midnight is shown as 24:00 of the day before, the
/// way a deadline "by the end of 28 June" is read.
fn chrono_like(rfc3339: &str) -> Option<String> {
    use chrono::Timelike;
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    let local = t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600)?);
    if local.hour() == 0 && local.minute() == 0 {
        let day = local.date_naive().pred_opt()?;
        return Some(format!("{} 24:00", day.format("%Y-%m-%d")));
    }
    Some(local.format("%Y-%m-%d %H:%M").to_string())
}

pub(crate) fn error_code(answer: &Value) -> Option<&str> {
    answer["errors"][0]["extensions"]["code"].as_str()
}

pub(crate) fn error_message(answer: &Value, lang: Lang) -> String {
    let ext = &answer["errors"][0]["extensions"];
    let key = if lang == Lang::En {
        "messageEn"
    } else {
        "messageZh"
    };
    ext[key]
        .as_str()
        .or_else(|| answer["errors"][0]["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

// ------------------------------------------------------------------ login

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    csrf: Option<String>,
    username: String,
    password: String,
}

pub(crate) async fn login_form(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, None);
    let token = cookie(&headers, LOGIN_CSRF).unwrap_or_else(session::random_token);
    let mut page = Page::render(
        "login.html",
        context! {
            lang => visit.lang.code(), tr => texts(visit.lang), path => visit.path,
            csrf => token, username => "",
        },
    );
    page.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_CSRF, &token, 3600, visit.secure),
    );
    page
}

pub(crate) async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let mut visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    // The login form is checked against its own cookie, whatever session the browser has.
    let login_csrf = cookie(&headers, LOGIN_CSRF);
    if !login_csrf
        .as_deref()
        .zip(form.csrf.as_deref())
        .is_some_and(|(c, f)| session::same(c, f))
    {
        return visit.message(StatusCode::FORBIDDEN, "error", text(visit.lang, "csrf"));
    }
    visit.session = None;
    let answer = match visit
        .run(
            &app,
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt } }",
            json!({ "u": form.username, "p": form.password }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(token) = answer["data"]["login"]["token"].as_str() else {
        let error = match error_code(&answer) {
            Some("RATE_LIMITED") => error_message(&answer, visit.lang),
            _ => text(visit.lang, "login_failed").to_string(),
        };
        let page = Page::render(
            "login.html",
            context! {
                lang => visit.lang.code(), tr => texts(visit.lang), path => visit.path,
                csrf => login_csrf, username => form.username, error => error,
            },
        );
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    let ttl = app.settings.session_ttl_hours.saturating_mul(3600);
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION, token, ttl, visit.secure),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_CSRF, "", 0, visit.secure),
    );
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

pub(crate) async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    if let Some(refused) = visit.form_refused(&headers, form.csrf.as_deref()) {
        return refused;
    }
    // Revokes the token in the store: the cookie is worthless from now on, everywhere.
    if visit.session.is_some() {
        let _ = visit.run(&app, "mutation { logout }", json!({})).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION, "", 0, visit.secure),
    );
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct LangForm {
    csrf: Option<String>,
    lang: String,
    next: Option<String>,
}

pub(crate) async fn set_lang(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<LangForm>,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, None);
    if let Some(refused) = visit.form_refused(&headers, form.csrf.as_deref()) {
        return refused;
    }
    let lang = if form.lang == "en" { "en" } else { "zh-CN" };
    // Only a path of this site: never an open redirect.
    let next = form
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut r = Redirect::to(&next).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LANG, lang, 365 * 24 * 3600, visit.secure),
    );
    r
}

// ------------------------------------------------------------------ lists

struct ListItem {
    id: String,
    title: String,
    state: String,
    due: Option<String>,
    overdue: bool,
    waits: bool,
}

async fn list_items(
    visit: &Visit,
    app: &AppState,
    first: i64,
    final_too: bool,
) -> Result<(Value, Vec<ListItem>), Response> {
    let answer = visit
        .run(app, LIST, json!({ "first": first, "final": final_too }))
        .await?;
    let items = answer["data"]["instances"]["edges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let n = &e["node"];
            ListItem {
                id: n["id"].as_str().unwrap_or_default().to_string(),
                title: n["title"].as_str().unwrap_or_default().to_string(),
                state: visit.i18n(&n["state"]["title"]),
                due: visit.time(&n["dueAt"]),
                overdue: n["overdue"].as_bool().unwrap_or(false),
                waits: n["availableTransitions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t["available"] == true)),
            }
        })
        .collect();
    Ok((answer["data"]["viewer"].clone(), items))
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "takes the viewer its caller read for this page"
)]
fn list_page(
    visit: &Visit,
    headers: &HeaderMap,
    viewer: Value,
    heading: &str,
    empty: &str,
    items: &[ListItem],
) -> Response {
    let items: Vec<Value> = items
        .iter()
        .map(|i| json!({ "id": i.id, "title": i.title, "state": i.state, "due": i.due, "overdue": i.overdue }))
        .collect();
    Page::render(
        "list.html",
        context! {
            lang => visit.lang.code(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.csrf(headers), viewer => viewer,
            heading => text(visit.lang, heading), empty => text(visit.lang, empty), items => items,
        },
    )
}

/// What waits on the viewer: instances where one of their actions is available now,
/// overdue first, then the soonest deadline.
pub(crate) async fn home(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let (viewer, mut items) = match list_items(&visit, &app, 50, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    items.retain(|i| i.waits);
    items.sort_by_key(|i| (!i.overdue, i.due.is_none()));
    list_page(&visit, &headers, viewer, "home", "nothing_waits", &items)
}

pub(crate) async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    if let Some(login) = visit.login_needed() {
        return login;
    }
    match list_items(&visit, &app, 50, true).await {
        Ok((viewer, items)) => list_page(
            &visit,
            &headers,
            viewer,
            "instances",
            "nothing_waits",
            &items,
        ),
        Err(r) => r,
    }
}

// ------------------------------------------------------------------ one instance

/// An input field of an action, as the form shows it.
fn form_field(
    visit: &Visit,
    f: &Value,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Value {
    let name = f["name"].as_str().unwrap_or_default();
    let ty = f["type"].as_str().unwrap_or("text");
    let title = {
        let t = visit.i18n(&f["title"]);
        if t.is_empty() { name.to_string() } else { t }
    };
    let (html_type, hint, multiline) = match ty {
        "integer" => ("number", "", false),
        "date" => ("date", "", false),
        "money" => (
            "text",
            if visit.lang == Lang::En {
                "yuan, e.g. 250000.00"
            } else {
                "单位：元，例如 250000.00"
            },
            false,
        ),
        "indicators" | "file" | "files" => ("text", "JSON", true),
        "text" => ("text", "", true),
        _ => ("text", "", false),
    };
    json!({
        "name": name, "type": ty, "title": title, "required": f["required"],
        "options": f["options"], "html_type": html_type, "hint": hint, "multiline": multiline,
        "value": values.get(name).cloned().unwrap_or_default(),
        "error": errors.get(name),
    })
}

/// A form the API refused: its event, the message, what was typed, and the message of
/// each field at fault.
struct Refused<'a> {
    event: &'a str,
    message: String,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
}

async fn instance_page(
    visit: &Visit,
    app: &AppState,
    headers: &HeaderMap,
    id: &str,
    failed: Option<Refused<'_>>,
) -> Response {
    let answer = match visit.run(app, INSTANCE, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let i = &answer["data"]["instance"];
    if !i.is_object() {
        return match error_code(&answer) {
            Some("NOT_FOUND") | Some("INVALID_INPUT") => visit.message(
                StatusCode::NOT_FOUND,
                "error",
                text(visit.lang, "not_found"),
            ),
            _ => visit.message(
                StatusCode::BAD_REQUEST,
                "error",
                &error_message(&answer, visit.lang),
            ),
        };
    }
    let empty = BTreeMap::new();
    let transitions = i["availableTransitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let actions: Vec<Value> = transitions
        .iter()
        .map(|t| {
            let event = t["event"].as_str().unwrap_or_default();
            let (error, values, errors) = match &failed {
                Some(r) if r.event == event => (Some(r.message.clone()), &r.values, &r.errors),
                _ => (None, &empty, &empty),
            };
            let fields: Vec<Value> = t["input"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|f| form_field(visit, f, values, errors))
                .collect();
            json!({
                "event": event, "title": visit.i18n(&t["title"]), "available": t["available"],
                "reason_required": t["reasonRequired"], "fields": fields, "error": error,
            })
        })
        .collect();
    let unavailable: Vec<Value> = transitions
        .iter()
        .filter(|t| t["available"] != true)
        .map(|t| json!({ "title": visit.i18n(&t["title"]), "why": visit.i18n(&t["unavailableReason"]["message"]) }))
        .collect();
    let history: Vec<Value> = i["history"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|h| json!({ "at": visit.time(&h["at"]), "event": h["event"], "from": h["fromState"], "to": h["toState"], "reason": h["reason"] }))
        .collect();
    let timers: Vec<Value> = i["timers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| json!({ "kind": t["kind"], "fire_at": visit.time(&t["fireAt"]) }))
        .collect();
    let instance = json!({
        "id": i["id"], "title": i["title"], "version": i["version"],
        "state": visit.i18n(&i["state"]["title"]), "stage": visit.i18n(&i["stage"]["title"]),
        "due": visit.time(&i["dueAt"]), "overdue": i["overdue"],
        "data": serde_json::to_string_pretty(&i["data"]).unwrap_or_default(),
    });
    let page = Page::render(
        "instance.html",
        context! {
            lang => visit.lang.code(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.csrf(headers), viewer => answer["data"]["viewer"].clone(),
            instance => instance, actions => actions, unavailable => unavailable,
            history => history, timers => timers,
        },
    );
    if failed.is_some() {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

pub(crate) async fn instance(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    if let Some(login) = visit.login_needed() {
        return login;
    }
    instance_page(&visit, &app, &headers, &id, None).await
}

/// Fires an action from its form. The form's fields arrive as `input.<name>`; each is
/// converted by its declared type, and the API's refusals come back next to the fields.
pub(crate) async fn fire(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let mut visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    visit.path = format!("/instances/{id}");
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(refused) = visit.form_refused(&headers, get("csrf")) {
        return refused;
    }
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let event = get("event").unwrap_or_default().to_string();
    let version: i64 = get("version").and_then(|v| v.parse().ok()).unwrap_or(-1);
    let values: BTreeMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("input.")?.to_string(), v.clone())))
        .collect();
    let input: serde_json::Map<String, Value> = values
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| {
            (
                k.clone(),
                typed(get(&format!("type.{k}")).unwrap_or("text"), v),
            )
        })
        .collect();
    let reason = get("reason").filter(|r| !r.trim().is_empty());
    let answer = match visit
        .run(
            &app,
            FIRE,
            json!({ "id": id, "event": event, "v": version, "input": input, "reason": reason }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["data"]["transition"].is_object() {
        return Redirect::to(&format!("/instances/{id}")).into_response();
    }
    let field_errors: BTreeMap<String, String> =
        answer["errors"][0]["extensions"]["details"]["fields"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| {
                let field = f["field"].as_str()?;
                let field = field.strip_prefix("input.").unwrap_or(field).to_string();
                let msg = &f["message"];
                let text = if visit.lang == Lang::En {
                    msg["en"].as_str()
                } else {
                    msg["zh-CN"].as_str().or(msg["zhCn"].as_str())
                };
                Some((field, text.unwrap_or_default().to_string()))
            })
            .collect();
    let message = error_message(&answer, visit.lang);
    instance_page(
        &visit,
        &app,
        &headers,
        &id,
        Some(Refused {
            event: &event,
            message,
            values,
            errors: field_errors,
        }),
    )
    .await
}

/// A form value as JSON by its declared type: integers and booleans as themselves,
/// indicator tables and file references parsed from their JSON, everything else as text
/// (money too: the API reads amounts exactly from text). The API checks every value.
fn typed(ty: &str, value: &str) -> Value {
    let v = value.trim();
    let parsed = match ty {
        "integer" => v.parse::<i64>().ok().map(Value::from),
        "boolean" => v.parse::<bool>().ok().map(Value::from),
        "indicators" | "file" | "files" => serde_json::from_str(v).ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| json!(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_in_china_standard_time() {
        assert_eq!(
            chrono_like("2024-06-28T16:00:00Z").as_deref(),
            Some("2024-06-28 24:00")
        );
        assert_eq!(
            chrono_like("2024-12-31T20:30:00.5Z").as_deref(),
            Some("2025-01-01 04:30")
        );
        assert_eq!(
            chrono_like("2024-02-28T17:00:00Z").as_deref(),
            Some("2024-02-29 01:00")
        );
        assert_eq!(
            chrono_like("2024-02-29T16:00:00Z").as_deref(),
            Some("2024-02-29 24:00")
        );
        assert_eq!(chrono_like("not a time"), None);
    }

    #[test]
    fn form_values_take_their_declared_types() {
        assert_eq!(typed("integer", "42"), json!(42));
        assert_eq!(typed("boolean", "true"), json!(true));
        assert_eq!(typed("indicators", "[{\"a\":1}]"), json!([{ "a": 1 }]));
        assert_eq!(typed("money", "250000"), json!("250000"));
        assert_eq!(typed("text", "12"), json!("12"));
        assert_eq!(
            typed("integer", "twelve"),
            json!("twelve"),
            "left for the API to refuse"
        );
    }
}
