//! The integration tests of `grantflow-service`, one binary (`cargo test -p grantflow-service --test it`)
//! with a module per topic.

mod catalogue_paths;
mod evaluation_rules;
mod migrate;
mod money;
mod programme;
mod review;
