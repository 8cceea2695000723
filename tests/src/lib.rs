//! grantflow-tests
