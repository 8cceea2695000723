//! Several PostgreSQL hosts in one URL, as libpq takes them:
//! `postgres://user@db1:5432,db2:5432/grantflow?target_session_attrs=read-write`. The pool
//! connects to the first host that is a primary (not in recovery) and follows the primary
//! when it moves (a standby promoted by Patroni, CloudNativePG or an operator): while the
//! current host is unreachable or in recovery, the hosts are probed every second and the
//! pool's new connections go to the one that is now the primary.

use std::str::FromStr;
use std::time::Duration;

use grantflow_store::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection};

/// The hosts of a URL, each as its own connection options.
#[derive(Debug, Clone)]
pub struct Hosts {
    pub candidates: Vec<PgConnectOptions>,
    /// `target_session_attrs=read-write` (or `primary`): only a primary will do.
    pub read_write: bool,
}

impl Hosts {
    /// Whether the pool must find and follow the primary.
    pub fn follows_primary(&self) -> bool {
        self.candidates.len() > 1 || self.read_write
    }
}

fn invalid() -> StoreError {
    // The parse error may quote the URL, password included: say only that it is bad.
    StoreError::Invalid("the PostgreSQL URL is not valid".into())
}

/// Split `url` into one URL per host (the user, database and other parameters shared).
pub fn parse(url: &str) -> StoreResult<Hosts> {
    let url = url.trim();
    let scheme_end = url.find("://").ok_or_else(invalid)? + 3;
    let (scheme, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_list) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut read_write = false;
    let mut kept = Vec::new();
    for param in query.into_iter().flat_map(|q| q.split('&')) {
        match param.split_once('=') {
            Some(("target_session_attrs", v)) => {
                read_write = matches!(v, "read-write" | "primary");
            }
            _ if param.is_empty() => {}
            _ => kept.push(param),
        }
    }
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let candidates = host_list
        .split(',')
        .map(|host| {
            PgConnectOptions::from_str(&format!("{scheme}{userinfo}{host}{path}{query}"))
                .map(|o| o.application_name("grantflow"))
                .map_err(|_| invalid())
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Hosts {
        candidates,
        read_write,
    })
}

fn shown(o: &PgConnectOptions) -> String {
    format!("{}:{}", o.get_host(), o.get_port())
}

/// The first host that answers and is not in recovery.
pub async fn find_primary(candidates: &[PgConnectOptions]) -> Option<PgConnectOptions> {
    for candidate in candidates {
        let probe = async {
            let mut conn = candidate.connect().await?;
            let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await?;
            let _ = conn.close().await;
            Ok::<_, sqlx::Error>(standby)
        };
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(false)) => return Some(candidate.clone()),
            Ok(Ok(true)) => tracing::debug!(host = %shown(candidate), "a standby"),
            Ok(Err(e)) => tracing::debug!(host = %shown(candidate), error = %e, "not reachable"),
            Err(_) => tracing::debug!(host = %shown(candidate), "no answer"),
        }
    }
    None
}

/// Keep `pool` on the primary until the pool is closed.
pub async fn follow_primary(pool: PgPool, hosts: Hosts) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if pool.is_closed() {
            return;
        }
        let check = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(&pool);
        if let Ok(Ok(false)) = tokio::time::timeout(Duration::from_secs(2), check).await {
            continue;
        }
        let current = pool.connect_options();
        if let Some(primary) = find_primary(&hosts.candidates).await
            && (primary.get_host(), primary.get_port()) != (current.get_host(), current.get_port())
        {
            tracing::warn!(from = %shown(&current), to = %shown(&primary), "the PostgreSQL primary moved; following it");
            pool.set_connect_options(primary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_libpq_style_host_lists() {
        let hosts = parse(
            "postgres://app:s3cret@db1:5432,db2:5433/grantflow?sslmode=disable&target_session_attrs=read-write",
        )
        .unwrap();
        assert!(hosts.read_write && hosts.follows_primary());
        let shown: Vec<String> = hosts.candidates.iter().map(shown).collect();
        assert_eq!(shown, ["db1:5432", "db2:5433"]);
        assert_eq!(hosts.candidates[1].get_database(), Some("grantflow"));
        assert_eq!(hosts.candidates[1].get_username(), "app");

        let one = parse("postgres://app@db/grantflow").unwrap();
        assert!(!one.follows_primary());
        assert!(parse("not a url").is_err());
    }
}
