//! Authentication: argon2id passwords, opaque bearer tokens stored only as SHA-256 hashes,
//! with expiry and revocation; long-lived API tokens with scopes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use chrono::{DateTime, Utc};
use grantflow_store::{Role, Store, StoreResult, TokenRecord, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What an API token may do. Session tokens (from login) may do everything the user's
/// roles allow.
pub mod scope {
    /// Queries and subscriptions.
    pub const READ: &str = "read";
    /// Create instances, fire transitions, extend deadlines.
    pub const TRANSITION: &str = "transition";
    /// Expert review actions (declare conflicts, submit scores).
    pub const REVIEW: &str = "review";
    /// User and organisation administration.
    pub const ADMIN: &str = "admin";
    pub const ALL: [&str; 4] = [READ, TRANSITION, REVIEW, ADMIN];
}

pub const SESSION_PREFIX: &str = "gfs_";
pub const API_PREFIX: &str = "gfa_";
pub const RESET_PREFIX: &str = "gfr_";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub token: TokenRecord,
}

impl Viewer {
    pub fn has_role(&self, role: Role) -> bool {
        self.user.has_role(role)
    }

    /// Whether the credential allows an action of this scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.token.kind == "session" || self.token.scopes.iter().any(|s| s == scope)
    }
}

/// argon2id with the OWASP-recommended minimum parameters (19 MiB, 2 passes).
fn hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

pub fn hash_password(password: &str) -> String {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a valid salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing does not fail with valid parameters")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to compare against when the user does not exist, so that login takes the same
/// time either way and does not reveal which usernames exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("grantflow-dummy-password"))
}

/// Passwords: at least 10 characters, not all of one kind.
pub fn check_password_strength(password: &str) -> Result<(), (&'static str, &'static str)> {
    let n = password.chars().count();
    if n < 10 {
        return Err((
            "密码至少 10 位",
            "the password needs at least 10 characters",
        ));
    }
    if n > 256 {
        return Err((
            "密码不能超过 256 位",
            "the password may not exceed 256 characters",
        ));
    }
    let kinds = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Err((
            "密码须包含字母、数字或符号中的至少两类",
            "use at least two of: letters, digits, symbols",
        ));
    }
    Ok(())
}

/// A new random token with a recognisable prefix (so leaked tokens can be found by
/// secret scanners), and its hash for storage.
pub fn new_token(prefix: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Resolve a bearer token to a viewer: unknown, expired, revoked tokens and inactive users
/// give `None`.
pub async fn resolve(
    store: &dyn Store,
    bearer: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Viewer>> {
    let bearer = bearer.trim();
    if !(bearer.starts_with(SESSION_PREFIX) || bearer.starts_with(API_PREFIX)) || bearer.len() > 200
    {
        return Ok(None);
    }
    // Token and user in one statement.
    let Some((token, user)) = store.find_token_with_user(&token_hash(bearer)).await? else {
        return Ok(None);
    };
    if token.revoked_at.is_some() || token.expires_at.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    if !user.active {
        return Ok(None);
    }
    Ok(Some(Viewer { user, token }))
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, value) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_and_wrong_ones_fail() {
        let h = hash_password("Correct horse 42");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("Correct horse 42", &h));
        assert!(!verify_password("correct horse 42", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, ha) = new_token(SESSION_PREFIX);
        let (b, _) = new_token(SESSION_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("gfs_"));
        assert_eq!(ha, token_hash(&a));
        assert_eq!(ha.len(), 64);
        assert!(
            !ha.contains(&a[4..]),
            "the stored hash reveals nothing of the token"
        );
    }

    #[test]
    fn password_strength() {
        assert!(check_password_strength("short1").is_err());
        assert!(check_password_strength("alllowercaseletters").is_err());
        assert!(check_password_strength("lowercase and 123").is_ok());
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer("Bearer gfs_abc"), Some("gfs_abc"));
        assert_eq!(bearer("bearer  gfs_abc "), Some("gfs_abc"));
        assert_eq!(bearer("Basic xyz"), None);
    }
}
