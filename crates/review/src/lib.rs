//! grantflow-review
