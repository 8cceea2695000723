//! The integration tests of `grantflow-scheduler`, one binary (`cargo test -p grantflow-scheduler --test it`)
//! with a module per topic.

mod common;

mod batches;
mod call_deadlines;
mod deadlines;
mod digests;
mod execution_tracking;
mod run_loop;
