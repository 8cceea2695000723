//! "What waits on me", kept current: the home page loads `static/live.js` (our own file,
//! allowed by the CSP's `script-src 'self'`; no inline script, nothing from elsewhere),
//! which subscribes to `myTasks` over `/graphql/ws` (graphql-transport-ws, same origin,
//! `connect-src 'self'`; the socket is authenticated by the session cookie, which the API
//! accepts from this site's pages only, see `grantflow_api::ws::SESSION_COOKIE`) and, on
//! each event, fetches the home page again and swaps the list in place (announced politely
//! to screen readers). When the socket fails it falls back to asking `/live` for a digest
//! of the list every 15 seconds. Without JavaScript the page works as before: reload.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantflow_api::AppState;
use serde_json::json;

use crate::pages::{Visit, fingerprint, waiting};

/// `{ "fingerprint": "…", "count": n }` of the viewer's waiting list; 401 when signed out.
pub(crate) async fn waiting_digest(State(app): State<AppState>, visit: Visit) -> Response {
    if visit.session.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match waiting(&visit, &app).await {
        Ok((_, items)) => {
            axum::Json(json!({ "fingerprint": fingerprint(&items), "count": items.len() }))
                .into_response()
        }
        // Signed out meanwhile (a redirect to the login page) or throttled.
        Err(r) if r.status().is_redirection() => StatusCode::UNAUTHORIZED.into_response(),
        Err(r) => r.status().into_response(),
    }
}

pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/live.js"),
    )
        .into_response()
}
