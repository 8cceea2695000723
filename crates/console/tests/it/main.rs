//! The console's integration tests (one binary; see grantflow-testkit).

mod handlers;
mod programme_pages;
mod public_pages;
mod report_pages;
