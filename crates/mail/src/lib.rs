//! grantflow-mail
