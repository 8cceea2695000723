//! Who may ask how often: the request rate limit per principal (the authenticated user,
//! otherwise the client address) and the login throttle per account and per address.
//! Both run on the injected clock, so tests move time instead of sleeping, and both are
//! in memory: per server process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::auth::Viewer;

/// The bucket a request is counted in: the user behind a valid token, otherwise the
/// client's address. A bearer value that resolves to no one is never a key of its own, so
/// sending a fresh random token per request buys no fresh bucket.
/// The client's address: the connection's peer, or, behind `hops` trusted reverse proxies,
/// the address the outermost of them saw — the `hops`-th entry of `X-Forwarded-For`
/// counted from the right (each proxy appends the address it was connected from). Entries
/// further left were written by the client and are ignored; a header with too few entries
/// falls back to the peer.
pub fn client_addr(
    headers: &axum::http::HeaderMap,
    peer: Option<IpAddr>,
    hops: u8,
) -> Option<IpAddr> {
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    forwarded
        .len()
        .checked_sub(usize::from(hops))
        .and_then(|i| forwarded[i].parse().ok())
        .or(peer)
}

pub fn principal_key(viewer: Option<&Viewer>, addr: Option<IpAddr>) -> String {
    match (viewer, addr) {
        (Some(v), _) => format!("user:{}", v.user.id),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "anonymous".to_string(),
    }
}

/// Whole seconds until `until`, at least 1 (a `Retry-After` of 0 invites a busy loop).
fn seconds_until(now: DateTime<Utc>, until: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

/// Keys are dropped once the map grows past this and their state has run out, so a flood
/// of addresses cannot grow memory without bound.
const PRUNE_ABOVE: usize = 10_000;

/// A fixed window per key: at most `limit` operations in each window that starts with the
/// key's first operation.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (DateTime<Utc>, u32)>>,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::seconds(60))
    }

    /// At most `limit` operations per key in each `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count `cost` operations (a batch counts each of its operations) for `key` at `now`;
    /// `Err(seconds)` to wait when that goes over the limit.
    pub fn check(&self, key: &str, cost: u32, now: DateTime<Utc>) -> Result<(), u64> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > PRUNE_ABOVE {
            let window = self.window;
            windows.retain(|_, (start, _)| now - *start < window);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0));
        if now - entry.0 >= self.window || now < entry.0 {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(cost);
        if entry.1 <= self.limit {
            Ok(())
        } else {
            Err(seconds_until(now, entry.0 + self.window))
        }
    }
}

/// Failed logins of one account or address, and until when it is locked.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

/// How many failures a key may have before it is locked, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// Failures allowed before the first lock.
    pub free_failures: u32,
    /// The first lock; each further failure doubles it …
    pub first_lock: Duration,
    /// … up to this.
    pub max_lock: Duration,
    /// Failures older than this (with no newer one) are forgotten.
    pub forget_after: Duration,
}

/// 5 failures per account, then 30 s, 60 s, 120 s … locks up to 15 minutes.
pub const ACCOUNT_POLICY: LoginPolicy = LoginPolicy {
    free_failures: 5,
    first_lock: Duration::seconds(30),
    max_lock: Duration::minutes(15),
    forget_after: Duration::minutes(15),
};

/// 20 failures per client address (over every account it tries), then the same backoff.
pub const ADDRESS_POLICY: LoginPolicy = LoginPolicy {
    free_failures: 20,
    first_lock: Duration::seconds(30),
    max_lock: Duration::minutes(15),
    forget_after: Duration::minutes(15),
};

/// Login attempts per account and per client address. Every attempt is counted as a
/// failure *before* the password is checked (a success then clears the account), so that
/// 300 attempts in one request — 30 aliased `login` fields × 10 batched operations — or
/// in 300 parallel requests meet the lock after the allowed few, and the locked attempts
/// cost no argon2 work at all.
pub struct LoginThrottle {
    account: LoginPolicy,
    address: LoginPolicy,
    keys: Mutex<HashMap<String, Failures>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(ACCOUNT_POLICY, ADDRESS_POLICY)
    }
}

impl LoginThrottle {
    pub fn new(account: LoginPolicy, address: LoginPolicy) -> Self {
        Self {
            account,
            address,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, addr: Option<IpAddr>) -> (String, Option<String>) {
        (
            format!("account:{}", username.trim().to_lowercase()),
            addr.map(|a| format!("address:{a}")),
        )
    }

    /// Start an attempt: `Err(seconds)` while the account or the address is locked;
    /// otherwise the attempt is counted as a failure until [`LoginThrottle::succeeded`].
    pub fn begin(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<(), u64> {
        let (account, address) = Self::keys(username, addr);
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() > PRUNE_ABOVE {
            let forget = self.account.forget_after.max(self.address.forget_after);
            keys.retain(|_, f| now - f.last < forget || f.locked_until.is_some_and(|u| u > now));
        }
        let mut wait = None;
        let mut pairs = vec![(account, self.account)];
        if let Some(a) = address {
            pairs.push((a, self.address));
        }
        for (key, _) in &pairs {
            if let Some(until) = keys.get(key).and_then(|f| f.locked_until)
                && until > now
            {
                wait = wait.max(Some(seconds_until(now, until)));
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for (key, policy) in pairs {
            let f = keys.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now - f.last >= policy.forget_after {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            if f.count >= policy.free_failures {
                let doublings = (f.count - policy.free_failures).min(16);
                let lock = (policy.first_lock * (1 << doublings)).min(policy.max_lock);
                f.locked_until = Some(now + lock);
            }
        }
        Ok(())
    }

    /// The password was right: the account starts afresh, and the address gets back the
    /// failure [`LoginThrottle::begin`] counted in advance (so an office behind one
    /// address is not locked by its own successful logins; its failures still count).
    pub fn succeeded(&self, username: &str, addr: Option<IpAddr>) {
        let (account, address) = Self::keys(username, addr);
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.remove(&account);
        if let Some(f) = address.and_then(|a| keys.get_mut(&a)) {
            f.count = f.count.saturating_sub(1);
            if f.count < self.address.free_failures {
                f.locked_until = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_address_the_outermost_trusted_proxy_saw() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(
            client_addr(&h, Some(peer), 0),
            Some(peer),
            "no trusted proxy"
        );
        assert_eq!(client_addr(&h, Some(peer), 1), "203.0.113.7".parse().ok());
        assert_eq!(client_addr(&h, Some(peer), 2), "6.6.6.6".parse().ok());
        assert_eq!(
            client_addr(&h, Some(peer), 3),
            Some(peer),
            "too few entries"
        );
        h.insert("x-forwarded-for", "not-an-address".parse().unwrap());
        assert_eq!(client_addr(&h, Some(peer), 1), Some(peer));
        assert_eq!(
            client_addr(&axum::http::HeaderMap::new(), Some(peer), 1),
            Some(peer)
        );
    }

    fn t0() -> DateTime<Utc> {
        "2024-06-03T02:00:00Z".parse().unwrap()
    }

    #[test]
    fn rate_limit_per_key_and_window() {
        let rl = RateLimiter::per_minute(3);
        let now = t0();
        assert!(rl.check("a", 1, now).is_ok() && rl.check("a", 2, now).is_ok());
        assert_eq!(rl.check("a", 1, now + Duration::seconds(15)), Err(45));
        assert!(
            rl.check("b", 3, now).is_ok(),
            "other keys are counted apart"
        );
        assert!(
            rl.check("b", 1, now).is_err(),
            "a batch counts each operation"
        );
        assert!(
            rl.check("a", 1, now + Duration::seconds(60)).is_ok(),
            "a new window"
        );
    }

    #[test]
    fn an_account_locks_after_five_failures_with_doubling_backoff() {
        let th = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = t0();
        for _ in 0..5 {
            assert!(th.begin("Manager", Some(ip), now).is_ok());
        }
        assert_eq!(th.begin("manager ", Some(ip), now), Err(30));
        let later = now + Duration::seconds(30);
        assert!(th.begin("manager", Some(ip), later).is_ok());
        assert_eq!(
            th.begin("manager", Some(ip), later),
            Err(60),
            "the next lock is twice as long"
        );
        th.succeeded("manager", Some(ip));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(th.begin("manager", Some(other), later).is_ok());
    }

    #[test]
    fn an_address_locks_after_twenty_failures_over_any_accounts() {
        let th = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = t0();
        for i in 0..20 {
            assert!(th.begin(&format!("user{i}"), Some(ip), now).is_ok());
        }
        assert!(th.begin("someone", Some(ip), now).is_err());
        assert!(th.begin("someone", None, now).is_ok());
    }

    #[test]
    fn successful_logins_do_not_lock_an_address() {
        let th = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = t0();
        for i in 0..100 {
            let user = format!("user{i}");
            assert!(th.begin(&user, Some(ip), now).is_ok(), "login {i}");
            th.succeeded(&user, Some(ip));
        }
    }

    #[test]
    fn backoff_is_capped() {
        let th = LoginThrottle::default();
        let mut now = t0();
        for _ in 0..40 {
            if let Err(w) = th.begin("x", None, now) {
                assert!(w <= 15 * 60);
                now += Duration::seconds(w as i64);
            }
        }
    }
}
