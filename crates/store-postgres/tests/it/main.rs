//! The integration tests of `grantflow-store-postgres`, one binary (`cargo test -p grantflow-store-postgres --test it`)
//! with a module per topic.

mod conformance;
