//! grantflow-store
