//! The integration tests of `grantflow-review`, one binary (`cargo test -p grantflow-review --test it`)
//! with a module per topic.

mod acceptance_round;
mod assignment_properties;
