//! grantflow-store-postgres
