//! grantflow-scheduler
