//! [`BulkLoader`] for every SQL backend: prepared instances and history records in
//! multi-row `INSERT`s inside one transaction (the fill of `grantflow bench scale`).

use grantflow_domain::audit::HistoryRecord;

use super::instances::{HISTORY_COLS, INSTANCE_COLS, history_args, instance_args};
use super::{Args, Dialect, Fail, R, SqlBackend};
use crate::bench_scale::BulkLoader;
use crate::{Instance, StoreResult};

/// Rows per statement: below SQLite's limit of 32,766 and PostgreSQL's of 65,535
/// parameters with 19 (instances) or 13 (history) columns.
const INSTANCE_ROWS: usize = 1000;
const HISTORY_ROWS: usize = 2000;

/// `INSERT INTO table (cols) VALUES (…), (…)` for `rows` rows of `width` placeholders.
fn multi_row(table: &str, cols: &str, rows: usize, width: usize) -> String {
    let values = (0..rows)
        .map(|r| {
            let row = (1..=width)
                .map(|c| format!("${}", r * width + c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO {table} ({cols}) VALUES {values}")
}

async fn bulk_load<D: Dialect>(
    pool: &super::Pools<D::DB>,
    instances: &[Instance],
    history: &[HistoryRecord],
) -> R<()> {
    let mut tx = D::begin_write(pool).await?;
    for chunk in instances.chunks(INSTANCE_ROWS) {
        let args = chunk.iter().fold(Args::new(), instance_args);
        let sql = multi_row("instances", INSTANCE_COLS, chunk.len(), 19);
        D::execute(&mut *tx, &sql, args).await?;
    }
    for chunk in history.chunks(HISTORY_ROWS) {
        let mut args = Args::new();
        for r in chunk {
            args = history_args(args, r)?;
        }
        let sql = multi_row("history", HISTORY_COLS, chunk.len(), 13);
        D::execute(&mut *tx, &sql, args).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait::async_trait]
impl<S: SqlBackend> BulkLoader for S {
    async fn bulk_load(
        &self,
        instances: &[Instance],
        history: &[HistoryRecord],
    ) -> StoreResult<()> {
        bulk_load::<S::D>(self.sql_pool(), instances, history)
            .await
            .map_err(Fail::store::<S::D>)
    }

    async fn analyze(&self) -> StoreResult<()> {
        let r: R<u64> = super::execute::<S::D>(self.sql_pool(), "ANALYZE", Args::new()).await;
        r.map(|_| ()).map_err(Fail::store::<S::D>)
    }

    async fn raw_list(&self, first: u32, count: bool) -> StoreResult<usize> {
        let pool = self.sql_pool();
        let r: R<usize> = async {
            if count {
                super::fetch_all::<S::D>(
                    pool,
                    "SELECT COUNT(*) AS n FROM instances i",
                    Args::new(),
                )
                .await?;
            }
            let rows = super::fetch_all::<S::D>(
                pool,
                &format!(
                    "SELECT {INSTANCE_COLS} FROM instances i \
                     ORDER BY i.created_at DESC, i.id DESC LIMIT $1"
                ),
                Args::new().int(i64::from(first) + 1),
            )
            .await?;
            Ok(rows.len().min(first as usize))
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }
}
