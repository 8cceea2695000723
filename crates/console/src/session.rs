//! Cookies of the console: the session (the same opaque token the API issues, so logout,
//! expiry and revocation work exactly as for bearer tokens), the language, and CSRF
//! protection.
//!
//! CSRF: every form carries a token. Signed in, the token is a hash of the session token
//! (which the page's scripts cannot read: the cookie is HttpOnly), so a foreign site can
//! neither read nor forge it. Before login, a random value in a cookie must come back in
//! the form (double submit). Cookies are `SameSite=Lax` on top.

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};

/// The session cookie; the API's WebSocket reads it too (same-origin pages only).
pub const SESSION: &str = grantflow_api::ws::SESSION_COOKIE;
pub const LOGIN_CSRF: &str = "gf_csrf";
pub const LANG: &str = "gf_lang";

/// The value of cookie `name`, if the request sent one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value; `secure` in production (HTTPS behind the proxy).
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The form token of a signed-in session.
pub fn csrf_for_session(session: &str) -> String {
    hex::encode(Sha256::digest(format!("grantflow-console-csrf\0{session}")))
}

/// A fresh random value (login CSRF cookie).
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares without an early exit, so the time taken says nothing about the token.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether the form's token is the right one for the request.
pub fn csrf_ok(headers: &HeaderMap, form_token: Option<&str>) -> bool {
    let Some(form_token) = form_token else {
        return false;
    };
    match cookie(headers, SESSION) {
        Some(session) => same(form_token, &csrf_for_session(&session)),
        None => cookie(headers, LOGIN_CSRF).is_some_and(|c| same(form_token, &c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers("gf_lang=en; gf_session=gfs_abc; x=1");
        assert_eq!(cookie(&h, SESSION).as_deref(), Some("gfs_abc"));
        assert_eq!(cookie(&h, LANG).as_deref(), Some("en"));
        assert_eq!(cookie(&h, "gf"), None);
    }

    #[test]
    fn a_form_token_is_bound_to_its_session() {
        let h = headers("gf_session=gfs_abc");
        assert!(csrf_ok(&h, Some(&csrf_for_session("gfs_abc"))));
        assert!(!csrf_ok(&h, Some(&csrf_for_session("gfs_other"))));
        assert!(!csrf_ok(&h, None));
        let login = headers("gf_csrf=r4nd0m");
        assert!(csrf_ok(&login, Some("r4nd0m")));
        assert!(!csrf_ok(&login, Some("guess")));
        assert!(!csrf_ok(&HeaderMap::new(), Some("")));
    }
}
