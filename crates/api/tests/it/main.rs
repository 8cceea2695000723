//! The integration tests of `grantflow-api`, one binary (`cargo test -p grantflow-api --test it`)
//! with a module per topic.

use grantflow_testkit as support;

mod auth;
mod authz;
mod authz_matrix;
mod call_rules;
mod e2e;
mod errors;
mod fuzz_requests;
mod import_limits;
mod input_values;
mod limits;
mod n_plus_one;
mod programme;
mod programme_e2e;
mod review;
mod schema;
mod task_book;
mod ws;
