//! The integration tests of `grantflow-api`, one binary (`cargo test -p grantflow-api --test it`)
//! with a module per topic.

use grantflow_testkit as support;

mod auth;
mod authz;
mod authz_matrix;
mod call_evaluation_rules;
mod call_rules;
mod document_cache;
mod e2e;
mod errors;
mod fuzz_requests;
mod import_limits;
mod input_values;
mod limits;
mod n_plus_one;
mod n_plus_one_programme;
mod programme;
mod programme_e2e;
mod public_objections;
mod review;
mod schema;
mod task_book;
mod third_party_evaluation;
mod transition_path;
mod user_directory;
mod ws;
mod ws_console_cookie;
