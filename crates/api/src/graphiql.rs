//! GraphiQL, served from the binary (development mode only): the page, React and GraphiQL
//! are compiled in (`assets/graphiql/`, vendored from npm), so the page works on a
//! network without internet access, and its Content-Security-Policy allows nothing but
//! this server.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Only this server: scripts from files (no inline script, no eval), styles inline too
/// (GraphiQL sets style attributes), fonts and images from data: URLs (the CSS embeds its
/// fonts), requests only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Asset names carry their version, so they never change under a name: cached for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    cache: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql-3.8.3.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/graphiql.min.js"),
        cache: IMMUTABLE,
    },
    Asset {
        name: "graphiql-3.8.3.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/graphiql/graphiql.min.css"),
        cache: IMMUTABLE,
    },
    Asset {
        name: "react-18.3.1.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/react.production.min.js"),
        cache: IMMUTABLE,
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
        cache: IMMUTABLE,
    },
    // Ours, unversioned: revalidated.
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/init.js"),
        cache: "no-cache",
    },
];

const PAGE: &[u8] = include_bytes!("../assets/graphiql/page.html");

fn respond(content_type: &'static str, cache: &'static str, body: &'static [u8]) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `GET /graphiql`.
pub async fn page(State(app): State<AppState>) -> Response {
    if app.settings.production {
        return StatusCode::NOT_FOUND.into_response();
    }
    respond("text/html; charset=utf-8", "no-cache", PAGE)
}

/// `GET /graphiql/assets/{name}`.
pub async fn asset(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    if app.settings.production {
        return StatusCode::NOT_FOUND.into_response();
    }
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => respond(a.content_type, a.cache, a.body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
