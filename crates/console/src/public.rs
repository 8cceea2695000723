//! 公示 in public, without logging in: the list of projects under publicity
//! (`/public/publicity`) and the objection form (`/public/objection/{id}`). Both run the
//! API's public operations in-process with no session (`publicityList`,
//! `submitPublicObjection`), so the same limits hold: the per-address objection limit,
//! the field limits, NOT_FOUND for a project not under publicity.
//!
//! CSRF for an anonymous post: a double-submit cookie (`gf_csrf`, as before login) must
//! come back in the form, whatever session the browser has. The form's body is limited
//! ([`FORM_BYTES`], a 413 before anything is parsed). Its own templates are parsed here,
//! apart from the console's list.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use grantflow_api::AppState;
use grantflow_api::http::{NotRun, execute_as};
use minijinja::{Environment, context};
use serde_json::{Value, json};

use crate::i18n::{text, texts};
use crate::pages::{Visit, error_code, error_message};
use crate::session::{self, LOGIN_CSRF, cookie};

/// The largest objection form accepted (the reason's 4000 characters, URL-encoded, and
/// the other fields fit).
pub const FORM_BYTES: usize = 64 * 1024;

/// The body limit of the objection form's route.
pub fn form_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(FORM_BYTES)
}

const LIST: &str = "{ publicityList { instanceId title unit catalogueItem catalogueItemName amount publicityStart publicityEnd } }";
const SUBMIT: &str = "mutation($input: PublicObjectionInput!) { submitPublicObjection(input: $input) { id submittedAt } }";

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            (
                "public_publicity.html",
                include_str!("../templates/public_publicity.html"),
            ),
            (
                "public_objection.html",
                include_str!("../templates/public_objection.html"),
            ),
        ] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "console template does not parse");
            }
        }
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> Response {
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "rendering a public page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "服务器内部错误 (internal error)",
            )
                .into_response()
        }
    }
}

/// Runs a public operation with no session, counted for the client's address.
async fn run_anonymous(
    app: &AppState,
    visit: &Visit,
    addr: Option<std::net::IpAddr>,
    query: &str,
    variables: Value,
) -> Result<Value, Response> {
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables));
    match execute_as(app, None, addr, request).await {
        Ok(answer) => Ok(answer),
        Err(NotRun::RateLimited(_)) => Err(visit.message(
            StatusCode::TOO_MANY_REQUESTS,
            "error",
            text(visit.lang, "rate_limited"),
        )),
        Err(NotRun::Internal) => Err(visit.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            text(visit.lang, "error"),
        )),
    }
}

fn client(
    app: &AppState,
    headers: &HeaderMap,
    addr: Option<SocketAddr>,
) -> Option<std::net::IpAddr> {
    grantflow_api::throttle::client_addr(
        headers,
        addr.map(|a| a.ip()),
        app.settings.trusted_proxy_hops,
    )
}

async fn project(
    app: &AppState,
    visit: &Visit,
    addr: Option<std::net::IpAddr>,
    id: &str,
) -> Result<Option<Value>, Response> {
    let answer = run_anonymous(app, visit, addr, LIST, json!({})).await?;
    Ok(answer["data"]["publicityList"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["instanceId"] == id))
        .cloned())
}

/// `GET /public/publicity`: the projects under publicity.
pub(crate) async fn publicity(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let addr = addr.map(|a| a.0.0);
    let visit = Visit::new(&app, &headers, &uri, addr);
    let answer =
        match run_anonymous(&app, &visit, client(&app, &headers, addr), LIST, json!({})).await {
            Ok(a) => a,
            Err(r) => return r,
        };
    if answer.get("errors").is_some() {
        return visit.refusal(&answer);
    }
    render(
        "public_publicity.html",
        context! {
            lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.token, viewer => Value::Null,
            projects => answer["data"]["publicityList"].clone(),
        },
    )
}

/// The objection form's token: the double-submit cookie, set when missing.
fn form_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, LOGIN_CSRF) {
        Some(t) => (t, false),
        None => (session::random_token(), true),
    }
}

fn objection_page(
    visit: &Visit,
    id: &str,
    project: &Value,
    form_csrf: &str,
    form: Option<&ObjectionForm>,
    error: Option<&str>,
    done: Option<&str>,
) -> Response {
    render(
        "public_objection.html",
        context! {
            lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.token, viewer => Value::Null, id => id, project => project,
            form_csrf => form_csrf, error => error, done => done,
            name => form.map(|f| f.name.as_str()).unwrap_or_default(),
            contact => form.map(|f| f.contact.as_str()).unwrap_or_default(),
            reason => form.map(|f| f.reason.as_str()).unwrap_or_default(),
        },
    )
}

/// `GET /public/objection/{id}`: the form for a project under publicity (else 404).
pub(crate) async fn objection_form(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let addr = addr.map(|a| a.0.0);
    let visit = Visit::new(&app, &headers, &uri, addr);
    let found = match project(&app, &visit, client(&app, &headers, addr), &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(found) = found else {
        return visit.not_found();
    };
    let (token, fresh) = form_token(&headers);
    let mut page = objection_page(&visit, &id, &found, &token, None, None, None);
    if fresh {
        page.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(LOGIN_CSRF, &token, 3600, visit.secure),
        );
    }
    page
}

#[derive(serde::Deserialize)]
pub(crate) struct ObjectionForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    reason: String,
}

/// `POST /public/objection/{id}`: submits the objection without a session.
pub(crate) async fn submit_objection(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<ObjectionForm>,
) -> Response {
    let addr = addr.map(|a| a.0.0);
    let visit = Visit::new(&app, &headers, &uri, addr);
    // Double submit: the form's token must be the cookie's, whatever session there is.
    let form_csrf = cookie(&headers, LOGIN_CSRF);
    if !form_csrf
        .as_deref()
        .zip(form.csrf.as_deref())
        .is_some_and(|(c, f)| session::same(c, f))
    {
        return visit.message(StatusCode::FORBIDDEN, "error", text(visit.lang, "csrf"));
    }
    let form_csrf = form_csrf.unwrap_or_default();
    let ip = client(&app, &headers, addr);
    let found = match project(&app, &visit, ip, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(found) = found else {
        return visit.not_found();
    };
    let answer = match run_anonymous(
        &app,
        &visit,
        ip,
        SUBMIT,
        json!({ "input": { "instanceId": id, "name": form.name, "contact": form.contact, "reason": form.reason } }),
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(receipt) = answer["data"]["submitPublicObjection"]["id"].as_str() {
        return objection_page(&visit, &id, &found, &form_csrf, None, None, Some(receipt));
    }
    let status = match error_code(&answer) {
        Some("RATE_LIMITED") => StatusCode::TOO_MANY_REQUESTS,
        Some("NOT_FOUND") => return visit.not_found(),
        _ => StatusCode::BAD_REQUEST,
    };
    let mut message = error_message(&answer, visit.lang);
    let fields: Vec<String> = answer["errors"][0]["extensions"]["details"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["field"].as_str().unwrap_or_default(),
                        e["code"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !fields.is_empty() {
        message = format!("{message} ({})", fields.join("; "));
    }
    (
        status,
        objection_page(
            &visit,
            &id,
            &found,
            &form_csrf,
            Some(&form),
            Some(message.as_str()),
            None,
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_public_templates_parse() {
        for name in ["public_publicity.html", "public_objection.html"] {
            super::templates()
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
