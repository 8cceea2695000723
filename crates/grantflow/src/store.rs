//! Opening the store named by the database URL: `sqlite://…` (the embedded default) or
//! `postgres://…`. Migrations run on open.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use grantflow_store::Store;
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

pub async fn open_url(url: &str, config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let shown = redact_url(url);
    let store: Arc<dyn Store> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
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
