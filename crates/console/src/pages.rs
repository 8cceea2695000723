//! Handlers: each runs GraphQL documents as the signed-in user and renders a template.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use grantflow_api::AppState;
use grantflow_api::http::{NotRun, execute_as};
use minijinja::context;
use serde_json::{Value, json};

use crate::Page;
use crate::i18n::{Lang, graphql_key, lang_from_cookie, text, texts};
use crate::session::{self, LANG, LOGIN_CSRF, SESSION, cookie, csrf_for_session, csrf_ok};

const LIST: &str = r#"query($first: Int!, $final: Boolean) {
  viewer { id username displayName roles }
  instances(first: $first, filter: { includeFinal: $final }, sort: { field: DUE_AT, direction: ASC }) {
    edges { node { id title dueAt overdue state { title { zhCn en } } availableTransitions { available } } }
  }
}"#;

/// What every request of the console knows about itself.
pub(crate) struct Visit {
    pub(crate) lang: Lang,
    pub(crate) session: Option<String>,
    addr: Option<std::net::IpAddr>,
    pub(crate) path: String,
    pub(crate) secure: bool,
    /// The form token for this visitor's pages.
    pub(crate) token: String,
    /// Whether the request's CSRF cookie/session matches a posted token (see [`Visit::refused`]).
    headers: HeaderMap,
}

/// Handlers take a `Visit` as an argument: language, session, address and form token.
impl axum::extract::FromRequestParts<AppState> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self::new(app, &parts.headers, &parts.uri, addr))
    }
}

impl Visit {
    pub(crate) fn new(
        app: &AppState,
        headers: &HeaderMap,
        uri: &Uri,
        addr: Option<SocketAddr>,
    ) -> Self {
        Self {
            lang: lang_from_cookie(cookie(headers, LANG).as_deref()),
            session: cookie(headers, SESSION),
            addr: grantflow_api::throttle::client_addr(
                headers,
                addr.map(|a| a.ip()),
                app.settings.trusted_proxy_hops,
            ),
            path: uri.path().to_string(),
            secure: app.settings.production,
            token: match cookie(headers, SESSION) {
                Some(s) => csrf_for_session(&s),
                None => cookie(headers, LOGIN_CSRF).unwrap_or_default(),
            },
            headers: headers.clone(),
        }
    }

    /// The 403 page when a posted form's CSRF token is wrong or missing, else the login
    /// page when signed out.
    pub(crate) fn refused(&self, token: Option<&str>) -> Option<Response> {
        self.form_refused(&self.headers, token)
            .or_else(|| self.login_needed())
    }

    /// The CSRF check alone (forms used signed out: forgotten password).
    pub(crate) fn form_refused_only(&self, token: Option<&str>) -> Option<Response> {
        self.form_refused(&self.headers, token)
    }

    /// Before login: a fresh form token and its cookie, if the visitor has none yet.
    pub(crate) fn pre_login_token(&mut self) -> Option<axum::http::HeaderValue> {
        if !self.token.is_empty() {
            return None;
        }
        self.token = session::random_token();
        Some(session::set_cookie(
            LOGIN_CSRF,
            &self.token,
            3600,
            self.secure,
        ))
    }

    /// Renders `name` with the context every page has (language, texts, path, form
    /// token, viewer) and `extra`.
    pub(crate) fn page(&self, name: &str, viewer: &Value, extra: minijinja::Value) -> Response {
        Page::render(
            name,
            context! {
                lang => self.lang.tag(), tr => texts(self.lang), path => self.path,
                csrf => self.token, viewer => viewer, ..extra
            },
        )
    }

    /// The 404 page.
    pub(crate) fn not_found(&self) -> Response {
        self.message(StatusCode::NOT_FOUND, "error", text(self.lang, "not_found"))
    }

    /// The page for a refused operation: its message, 400 (404 for NOT_FOUND, 403 for
    /// FORBIDDEN).
    pub(crate) fn refusal(&self, answer: &Value) -> Response {
        // Any part of the page naming something the viewer may not see makes it a 404,
        // whatever order the errors came in.
        let not_found = answer["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["extensions"]["code"] == "NOT_FOUND"));
        if not_found {
            return self.not_found();
        }
        let status = match error_code(answer) {
            Some("FORBIDDEN") => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut message = error_message(answer, self.lang);
        if message.is_empty() {
            message = text(self.lang, "error").to_string();
        }
        self.message(status, "error", &message)
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
                lang => self.lang.tag(), tr => texts(self.lang), path => self.path,
                heading => text(self.lang, heading), message => message,
            },
        );
        (status, page).into_response()
    }

    pub(crate) fn i18n(&self, text: &Value) -> String {
        text[graphql_key(self.lang)]
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
            lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
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
                lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
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
    let lang = lang_from_cookie(Some(&form.lang));
    // Only a path of this site: never an open redirect.
    let next = form
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut r = Redirect::to(&next).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LANG, lang.tag(), 365 * 24 * 3600, visit.secure),
    );
    r
}

// ------------------------------------------------------------------ lists

pub(crate) struct ListItem {
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
    let rows: Vec<Value> = items
        .iter()
        .map(|i| json!({ "id": i.id, "title": i.title, "state": i.state, "due": i.due, "overdue": i.overdue }))
        .collect();
    Page::render(
        "list.html",
        context! {
            lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.csrf(headers), viewer => viewer,
            heading => text(visit.lang, heading), empty => text(visit.lang, empty),
            live => (heading == "home").then(|| fingerprint(items)), items => rows,
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
    let (viewer, items) = match waiting(&visit, &app).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    list_page(&visit, &headers, viewer, "home", "nothing_waits", &items)
}

/// The instances waiting on the viewer, overdue first, then the soonest deadline.
pub(crate) async fn waiting(
    visit: &Visit,
    app: &AppState,
) -> Result<(Value, Vec<ListItem>), Response> {
    let (viewer, mut items) = list_items(visit, app, 50, false).await?;
    items.retain(|i| i.waits);
    items.sort_by_key(|i| (!i.overdue, i.due.is_none()));
    Ok((viewer, items))
}

/// A short digest of what the list shows: it changes when anything on it does.
pub(crate) fn fingerprint(items: &[ListItem]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for i in items {
        h.update(format!(
            "{}\0{}\0{:?}\0{}\n",
            i.id, i.state, i.due, i.overdue
        ));
    }
    hex::encode(&h.finalize()[..8])
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
}
