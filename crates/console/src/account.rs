//! Everyone's own account: change the password, choose how deadline e-mails arrive, and
//! reset a forgotten password (the API's e-mailed one-time token: `/forgot` asks for
//! it, the e-mail's link opens `/reset-password`).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use minijinja::context;
use serde_json::{Value, json};

use crate::i18n::text;
use crate::pages::{Visit, error_code, error_message};

const ACCOUNT: &str =
    "{ viewer { id username displayName roles email notifyPref organisation { name } } }";

async fn account_page(
    visit: &Visit,
    app: &AppState,
    flash: Option<&str>,
    error: Option<String>,
) -> Response {
    let answer = match visit.run(app, ACCOUNT, json!({})).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let viewer = answer["data"]["viewer"].clone();
    let page = visit.page(
        "account.html",
        &viewer,
        context! { flash => flash.map(|f| text(visit.lang, f)), error => error },
    );
    if error.is_some() {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

pub(crate) async fn account(State(app): State<AppState>, visit: Visit) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    account_page(&visit, &app, None, None).await
}

#[derive(serde::Deserialize)]
pub(crate) struct PasswordForm {
    csrf: Option<String>,
    old: String,
    new: String,
    repeat: String,
}

pub(crate) async fn change_password(
    State(app): State<AppState>,
    mut visit: Visit,
    Form(form): Form<PasswordForm>,
) -> Response {
    visit.path = "/account".into();
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    if form.new != form.repeat {
        let e = text(visit.lang, "passwords_differ").to_string();
        return account_page(&visit, &app, None, Some(e)).await;
    }
    let answer = match visit
        .run(
            &app,
            "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }",
            json!({ "o": form.old, "n": form.new }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["data"]["changePassword"] == true {
        account_page(&visit, &app, Some("password_changed"), None).await
    } else {
        let e = error_message(&answer, visit.lang);
        account_page(&visit, &app, None, Some(e)).await
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct NotifyForm {
    csrf: Option<String>,
    preference: String,
}

pub(crate) async fn notifications(
    State(app): State<AppState>,
    mut visit: Visit,
    Form(form): Form<NotifyForm>,
) -> Response {
    visit.path = "/account".into();
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let answer = match visit
        .run(
            &app,
            "mutation($p: NotifyPref!) { setNotificationPreference(preference: $p) { id } }",
            json!({ "p": form.preference }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        account_page(&visit, &app, Some("saved"), None).await
    } else {
        let e = error_message(&answer, visit.lang);
        account_page(&visit, &app, None, Some(e)).await
    }
}

// ------------------------------------------------------------------ forgotten password

pub(crate) async fn forgot_form(mut visit: Visit) -> Response {
    let cookie = visit.pre_login_token();
    with_cookie(visit.page("forgot.html", &Value::Null, context! {}), cookie)
}

fn with_cookie(mut page: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(c) = cookie {
        page.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    page
}

#[derive(serde::Deserialize)]
pub(crate) struct ForgotForm {
    csrf: Option<String>,
    email: String,
}

/// Always the same answer, whether the address is known or not (as the API).
pub(crate) async fn forgot(
    State(app): State<AppState>,
    mut visit: Visit,
    Form(form): Form<ForgotForm>,
) -> Response {
    if let Some(r) = visit.form_refused_only(form.csrf.as_deref()) {
        return r;
    }
    visit.session = None;
    let answer = match visit
        .run(
            &app,
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": form.email }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if error_code(&answer).is_some() {
        let page = visit.page(
            "forgot.html",
            &Value::Null,
            context! { error => error_message(&answer, visit.lang) },
        );
        return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
    }
    visit.page("forgot.html", &Value::Null, context! { sent => true })
}

#[derive(serde::Deserialize)]
pub(crate) struct ResetQuery {
    token: Option<String>,
}

/// The page the e-mail's link opens; the one-time token goes into the form (and leaves
/// the address bar's history only as the link itself did: the page is `no-store` and its
/// referrer policy `same-origin`).
pub(crate) async fn reset_form(mut visit: Visit, Query(q): Query<ResetQuery>) -> Response {
    let cookie = visit.pre_login_token();
    let page = visit.page(
        "reset.html",
        &Value::Null,
        context! { token => q.token.unwrap_or_default() },
    );
    with_cookie(page, cookie)
}

#[derive(serde::Deserialize)]
pub(crate) struct ResetForm {
    csrf: Option<String>,
    token: String,
    new: String,
    repeat: String,
}

pub(crate) async fn reset(
    State(app): State<AppState>,
    mut visit: Visit,
    Form(form): Form<ResetForm>,
) -> Response {
    if let Some(r) = visit.form_refused_only(form.csrf.as_deref()) {
        return r;
    }
    visit.session = None;
    let refused = |visit: &Visit, e: String| {
        let page = visit.page(
            "reset.html",
            &Value::Null,
            context! { token => form.token, error => e },
        );
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    if form.new != form.repeat {
        return refused(&visit, text(visit.lang, "passwords_differ").to_string());
    }
    let answer = match visit
        .run(
            &app,
            "mutation($t: String!, $n: String!) { resetPassword(token: $t, newPassword: $n) }",
            json!({ "t": form.token.trim(), "n": form.new }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["data"]["resetPassword"] == true {
        return Redirect::to("/login").into_response();
    }
    refused(&visit, error_message(&answer, visit.lang))
}
