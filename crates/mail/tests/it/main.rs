//! The integration tests of `grantflow-mail`, one binary (`cargo test -p grantflow-mail --test it`)
//! with a module per topic.

mod common;

mod eml_folder_and_config;
mod harness;
mod rendering;
mod retry_schedule;
mod smtp_delivery;
mod smtp_session;
