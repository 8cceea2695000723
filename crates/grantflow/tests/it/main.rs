//! The integration tests of `grantflow`, one binary (`cargo test -p grantflow --test it`)
//! with a module per topic.

mod audit_tamper;
mod cli;
mod scheduler_processes;
