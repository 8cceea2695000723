//! The store conformance suite on SQLite: each test on a new database file.

use std::sync::Arc;

use grantflow_store::Store;
use grantflow_store_sqlite::testing::TempSqlite;

async fn fresh() -> (Arc<dyn Store>, TempSqlite) {
    let db = TempSqlite::new().await;
    (db.shared(), db)
}

grantflow_store::conformance_suite!(fresh);
grantflow_store::programme_conformance_suite!(fresh);
grantflow_store::review_conformance_suite!(fresh);
