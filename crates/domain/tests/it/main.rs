//! The integration tests of `grantflow-domain`, one binary (`cargo test -p grantflow-domain --test it`)
//! with a module per topic.

mod diagram;
mod engine;
mod fuzz_workflow;
mod migrate;
mod properties;
mod schema;
mod shipped;
mod validation;
