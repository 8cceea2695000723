//! grantflow-store-sqlite
