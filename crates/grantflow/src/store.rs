//! Opening the store named by the database URL: `sqlite://…` (the embedded default) or
//! `postgres://…`. Migrations run on open.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use grantflow_store::Store;
use grantflow_store_postgres::listen::Heard;
use grantflow_store_postgres::{PostgresOptions, PostgresStore};
use grantflow_store_sqlite::SqliteStore;

use crate::config::{Config, redact_url};

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_url(
        secrecy::ExposeSecret::expose_secret(&config.database_url),
        config,
    )
    .await
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// On PostgreSQL, hear the other replicas: their committed transitions reach this
/// process's subscriptions and wake its scheduler; after the listening connection
/// reconnects, subscribers are told to resync. Returns once listening. SQLite serves one
/// process: nothing to hear.
pub async fn listen_for_replicas(
    config: &Config,
    services: grantflow_service::Services,
) -> anyhow::Result<()> {
    let url = secrecy::ExposeSecret::expose_secret(&config.database_url);
    if !is_postgres(url) {
        return Ok(());
    }
    let mut options = PostgresOptions::new(url);
    options.max_connections = 2;
    options.acquire_timeout = Duration::from_secs(config.postgres.acquire_timeout_secs);
    let store = PostgresStore::connect_with(options)
        .await
        .with_context(|| format!("connecting to {} to listen", redact_url(url)))?;
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(grantflow_store_postgres::listen::listen(
        store,
        move |heard| match heard {
            Heard::Listening { first: true } => {
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
            Heard::Listening { first: false } => services.resync(),
            Heard::Payload(payload) => services.heard(payload),
        },
    ));
    ready
        .await
        .context("the listener for other replicas stopped")?;
    Ok(())
}

pub async fn open_url(url: &str, config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let shown = redact_url(url);
    let store: Arc<dyn Store> = if is_postgres(url) {
        let mut options = PostgresOptions::new(url);
        options.max_connections = config.postgres.max_connections;
        options.acquire_timeout = Duration::from_secs(config.postgres.acquire_timeout_secs);
        Arc::new(
            PostgresStore::connect_with(options)
                .await
                .with_context(|| format!("connecting to {shown}"))?,
        )
    } else if url.starts_with("sqlite:") {
        Arc::new(
            SqliteStore::connect(url)
                .await
                .with_context(|| format!("opening {shown}"))?,
        )
    } else {
        anyhow::bail!("database URL `{shown}` must start with sqlite:// or postgres://");
    };
    store
        .migrate()
        .await
        .with_context(|| format!("migrating {shown}"))?;
    Ok(store)
}
