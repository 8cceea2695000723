//! grantflow-api
