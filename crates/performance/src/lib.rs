//! grantflow-performance
