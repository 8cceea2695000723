//! The web console: server-rendered pages for the people who are not programmers.
//!
//! Every page and every action runs GraphQL operations in-process through
//! [`grantflow_api::http::execute_as`], the path an HTTP request takes: the same token
//! store, rate limit, scopes, visibility rules and redaction. The console performs nothing
//! the API cannot, and an instance the viewer may not see is a 404 page.
//!
//! Plain forms and links that work without JavaScript, a strict Content-Security-Policy
//! (`default-src 'none'`, scripts only from this site: one small file of our own,
//! `static/live.js`, refreshes "what waits on me"), cookie sessions and CSRF tokens
//! ([`session`]).
//!
//! Adding a page: a GraphQL document in [`pages`], a handler there that renders a
//! template from `templates/` with [`Page::render`], and a route in [`router`].

mod account;
mod budget;
mod calls;
mod changes;
mod charts;
mod demands;
mod diagram;
mod evaluation;
mod experts;
mod forms;
mod funding_plan;
pub mod i18n;
mod instance;
mod live;
mod manage;
mod objections;
mod pages;
mod public;
mod refusals;
mod reports;
mod reviews;
pub mod session;
mod third_party;
mod upload;

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use grantflow_api::AppState;
use minijinja::Environment;

/// The console's routes, served by `grantflow serve` beside the API.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.timeout;
    Router::new()
        .route("/", get(pages::home))
        .route("/instances", get(pages::list))
        .route("/instances/{id}", get(instance::instance))
        .route("/instances/{id}/fire", post(instance::fire))
        .route("/instances/{id}/budget", get(budget::budget))
        .route(
            "/instances/{id}/evaluation",
            get(evaluation::evaluation).post(evaluation::evaluate),
        )
        .route("/instances/{id}/extend", post(instance::extend))
        .route("/instances/{id}/third-party", get(third_party::page))
        .route(
            "/instances/{id}/third-party/assign",
            post(third_party::assign),
        )
        .route(
            "/instances/{id}/third-party/record",
            post(third_party::record),
        )
        .route("/third-party", get(third_party::assigned))
        .route("/objections", get(objections::list))
        .route("/objections/{id}/resolve", post(objections::resolve))
        .route("/instances/{id}/change", post(changes::create))
        .route("/instances/{id}/budget/line", post(budget::add_line))
        .route("/instances/{id}/budget/spend", post(budget::spend))
        .route("/instances/{id}/budget/disburse", post(budget::disburse))
        .route("/reviews", get(reviews::my_reviews))
        .route("/reviews/{id}", get(reviews::review_form))
        .route("/reviews/{id}/act", post(reviews::act))
        .route("/calls", get(calls::list))
        .route(
            "/calls/open",
            post(calls::open).layer(axum::extract::DefaultBodyLimit::max(
                upload::CATALOGUE_BYTES + upload::FRAMING_BYTES,
            )),
        )
        .route("/calls/{id}", get(calls::call))
        .route("/calls/{id}/close", post(calls::close))
        .route("/calls/{id}/create", post(calls::create))
        .route("/calls/{id}/export", get(calls::export))
        .route(
            "/calls/{id}/import",
            post(demands::import).layer(demands::import_limit()),
        )
        .route("/calls/{id}/demands", get(demands::duplicates))
        .route("/calls/{id}/merge", post(demands::merge))
        .route("/calls/{id}/ranking", get(manage::ranking))
        .route("/rounds/{id}", get(manage::round))
        .route("/rounds/{id}/draw", post(manage::draw))
        .route("/rounds/{id}/assign", post(manage::assign))
        .route("/experts", get(experts::pool))
        .route("/experts/profile", post(experts::upsert))
        .route("/experts/collaboration", post(experts::collaboration))
        .route("/outbox", get(manage::outbox))
        .route("/account", get(account::account))
        .route("/account/password", post(account::change_password))
        .route("/account/notifications", post(account::notifications))
        .route("/forgot", get(account::forgot_form).post(account::forgot))
        .route(
            "/reset-password",
            get(account::reset_form).post(account::reset),
        )
        .route("/public/publicity", get(public::publicity))
        .route(
            "/public/objection/{id}",
            get(public::objection_form)
                .post(public::submit_objection)
                .layer(public::form_limit()),
        )
        .route("/reports", get(reports::report))
        .route("/reports/export", get(reports::export))
        .route(
            "/calls/{id}/funding",
            get(funding_plan::plan).post(funding_plan::save),
        )
        .route("/live", get(live::waiting_digest))
        .route("/static/live.js", get(live::script))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/lang", post(pages::set_lang))
        .route("/static/console.css", get(stylesheet))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            grantflow_api::http::request_timeout,
        ))
        .layer(axum::middleware::map_response(security_headers))
}

/// Pages are never cached and never framed; nothing but our own stylesheet loads.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
         img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/console.css"),
    )
        .into_response()
}

/// The templates, parsed once. HTML is auto-escaped (`.html` names).
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            ("login.html", include_str!("../templates/login.html")),
            ("list.html", include_str!("../templates/list.html")),
            ("instance.html", include_str!("../templates/instance.html")),
            ("message.html", include_str!("../templates/message.html")),
            ("reviews.html", include_str!("../templates/reviews.html")),
            ("review.html", include_str!("../templates/review.html")),
            ("account.html", include_str!("../templates/account.html")),
            ("budget.html", include_str!("../templates/budget.html")),
            (
                "evaluation.html",
                include_str!("../templates/evaluation.html"),
            ),
            (
                "objections.html",
                include_str!("../templates/objections.html"),
            ),
            (
                "third_party.html",
                include_str!("../templates/third_party.html"),
            ),
            (
                "third_party_list.html",
                include_str!("../templates/third_party_list.html"),
            ),
            ("forgot.html", include_str!("../templates/forgot.html")),
            ("reset.html", include_str!("../templates/reset.html")),
            ("calls.html", include_str!("../templates/calls.html")),
            ("call.html", include_str!("../templates/call.html")),
            (
                "duplicates.html",
                include_str!("../templates/duplicates.html"),
            ),
            ("round.html", include_str!("../templates/round.html")),
            ("ranking.html", include_str!("../templates/ranking.html")),
            ("outbox.html", include_str!("../templates/outbox.html")),
            ("experts.html", include_str!("../templates/experts.html")),
            ("reports.html", include_str!("../templates/reports.html")),
            ("funding.html", include_str!("../templates/funding.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                // A broken template is a bug of this crate, caught by its tests.
                tracing::error!(template = name, error = %e, "console template does not parse");
            }
        }
        env
    })
}

/// A rendered page.
pub(crate) struct Page;

impl Page {
    pub(crate) fn render(name: &str, ctx: minijinja::Value) -> Response {
        match templates().get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "rendering a console page failed");
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "服务器内部错误 (internal error)",
                )
                    .into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        let env = super::templates();
        for name in [
            "base.html",
            "login.html",
            "list.html",
            "instance.html",
            "message.html",
            "reviews.html",
            "review.html",
            "account.html",
            "budget.html",
            "evaluation.html",
            "objections.html",
            "third_party.html",
            "third_party_list.html",
            "forgot.html",
            "reset.html",
            "calls.html",
            "call.html",
            "duplicates.html",
            "round.html",
            "ranking.html",
            "outbox.html",
            "experts.html",
            "reports.html",
            "funding.html",
        ] {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
