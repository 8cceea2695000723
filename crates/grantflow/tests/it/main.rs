//! The integration tests of `grantflow`, one binary (`cargo test -p grantflow --test it`)
//! with a module per topic.

mod audit_tamper;
mod cli;
mod copy;
mod demo_report;
mod metrics;
mod pg_failover;
mod pg_restart;
mod reminder_burst;
mod replicas;
mod scheduler_crash;
mod scheduler_processes;
mod shutdown;
mod support;
mod telemetry;
