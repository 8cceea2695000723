//! The integration tests of `grantflow-store-sqlite`, one binary (`cargo test -p grantflow-store-sqlite --test it`)
//! with a module per topic.

mod conformance;
mod writer_queue;
