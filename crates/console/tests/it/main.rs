//! The console's integration tests (one binary; see grantflow-testkit).

mod handlers;
mod public_pages;
mod report_pages;
