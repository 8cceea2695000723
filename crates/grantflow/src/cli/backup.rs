//! `grantflow backup`, `grantflow restore` and `grantflow copy`.
//!
//! - SQLite: `backup --to FILE` writes an online, consistent copy (`VACUUM INTO`) while
//!   the server runs; `restore --from FILE` checks a backup (its hash chains) and makes it
//!   the configured database file, which must not exist yet.
//! - PostgreSQL: use `pg_dump` / `pg_restore` (printed by both commands).
//! - `copy --from sqlite://… --to postgres://…` moves a whole deployment into an empty
//!   PostgreSQL database and verifies every hash chain on arrival.

use std::path::{Path, PathBuf};

use anyhow::Context;
use grantflow_store::Store;
use grantflow_store_postgres::PostgresStore;
use grantflow_store_sqlite::SqliteStore;
use secrecy::ExposeSecret;

use crate::config::{Config, redact_url};
use crate::store::{is_postgres, open_url};

/// How PostgreSQL deployments are backed up and restored.
pub const PG_DUMP_HELP: &str = "\
PostgreSQL is backed up with its own tools, while grantflow runs:
  pg_dump --format=custom --file=grantflow-$(date +%F).dump \"$DATABASE_URL\"
and restored into a new, empty database (then start grantflow on it):
  createdb grantflow_restored
  pg_restore --no-owner --dbname=postgres://…/grantflow_restored grantflow-….dump
  grantflow audit verify   # every hash chain, on the restored database";

fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a sqlite: URL")?;
    let path = path.split('?').next().unwrap_or(path);
    anyhow::ensure!(
        !path.is_empty() && !path.contains(":memory:"),
        "an in-memory database has nothing to back up"
    );
    Ok(PathBuf::from(path))
}

/// `grantflow backup --to FILE`.
pub async fn backup(config: &Config, to: &Path) -> anyhow::Result<i32> {
    let url = config.database_url.expose_secret();
    if is_postgres(url) {
        eprintln!("{PG_DUMP_HELP}");
        return Ok(2);
    }
    let store = SqliteStore::connect(url)
        .await
        .with_context(|| format!("opening {}", redact_url(url)))?;
    store
        .backup_into(to)
        .await
        .with_context(|| format!("backing up into {}", to.display()))?;
    let report = verify(&format!("sqlite://{}", to.display())).await?;
    println!(
        "backup written to {}: {} instances, {} history records, every hash chain verified",
        to.display(),
        report.instances_checked,
        report.records_checked
    );
    Ok(0)
}

async fn verify(url: &str) -> anyhow::Result<grantflow_store::audit::AuditReport> {
    let store = SqliteStore::connect(url).await?;
    let report = grantflow_store::audit::verify_all(&store).await?;
    anyhow::ensure!(report.is_ok(), "the hash chains do not verify:\n{report}");
    Ok(report)
}

/// `grantflow restore --from FILE`: the backup becomes the configured SQLite database.
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<i32> {
    let url = config.database_url.expose_secret();
    if is_postgres(url) {
        eprintln!("{PG_DUMP_HELP}");
        return Ok(2);
    }
    let target = sqlite_path(url)?;
    anyhow::ensure!(
        !target.exists(),
        "{} exists: stop grantflow and move the current database aside first (restore never overwrites)",
        target.display()
    );
    anyhow::ensure!(from.exists(), "{} does not exist", from.display());
    let backup = SqliteStore::connect(&format!("sqlite://{}", from.display())).await?;
    let report = grantflow_store::audit::verify_all(&backup).await?;
    anyhow::ensure!(
        report.is_ok(),
        "the backup's hash chains do not verify:\n{report}"
    );
    backup
        .backup_into(&target)
        .await
        .with_context(|| format!("restoring into {}", target.display()))?;
    // Migrate (a backup from an older version) and check once more on the restored file.
    let restored = open_url(url, config).await?;
    let report = grantflow_store::audit::verify_all(restored.as_ref()).await?;
    anyhow::ensure!(
        report.is_ok(),
        "the restored hash chains do not verify:\n{report}"
    );
    println!(
        "restored {} from {}: {} instances, {} history records, every hash chain verified",
        target.display(),
        from.display(),
        report.instances_checked,
        report.records_checked
    );
    Ok(0)
}

/// `grantflow copy --from sqlite://… --to postgres://…`.
pub async fn copy(config: &Config, from: &str, to: &str) -> anyhow::Result<i32> {
    anyhow::ensure!(
        from.starts_with("sqlite:") && is_postgres(to),
        "copy moves a deployment from SQLite to PostgreSQL: --from sqlite://FILE --to postgres://…"
    );
    let source_path = sqlite_path(from)?;
    anyhow::ensure!(
        source_path.exists(),
        "{} does not exist",
        source_path.display()
    );
    // Both at the latest migration, so that their tables match.
    let source = SqliteStore::connect(from)
        .await
        .with_context(|| format!("opening {from}"))?;
    source.migrate().await?;
    let before = grantflow_store::audit::verify_all(&source).await?;
    anyhow::ensure!(
        before.is_ok(),
        "the source's hash chains do not verify; nothing copied:\n{before}"
    );
    open_url(to, config).await?;
    let target = PostgresStore::connect(to)
        .await
        .with_context(|| format!("connecting to {}", redact_url(to)))?;
    let counts = grantflow_store_postgres::import::import_sqlite(source.pool(), &target)
        .await
        .context("copying")?;
    println!("| table | rows in SQLite | rows in PostgreSQL |");
    println!("| --- | ---: | ---: |");
    let mut equal = true;
    for c in &counts {
        println!("| {} | {} | {} |", c.table, c.source, c.target);
        equal &= c.source == c.target;
    }
    let after = grantflow_store::audit::verify_all(&target).await?;
    println!("{after}");
    if !equal || !after.is_ok() || after.records_checked != before.records_checked {
        eprintln!("the copy does not match its source");
        return Ok(1);
    }
    println!(
        "copied {} tables into {}; {} instances and {} history records, every hash chain verified",
        counts.len(),
        redact_url(to),
        after.instances_checked,
        after.records_checked
    );
    Ok(0)
}
