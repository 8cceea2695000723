//! The store conformance suite on PostgreSQL: each test on a new database, created on the
//! server named by `GRANTFLOW_TEST_POSTGRES_URL` and dropped afterwards.

use std::sync::Arc;

use grantflow_store::Store;
use grantflow_store_postgres::testing::TempPostgres;

async fn fresh() -> (Arc<dyn Store>, TempPostgres) {
    let db = TempPostgres::new().await;
    (db.shared(), db)
}

grantflow_store::conformance_suite!(fresh);
grantflow_store::programme_conformance_suite!(fresh);
grantflow_store::review_conformance_suite!(fresh);
