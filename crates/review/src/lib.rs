//! grantflow-review: the pure logic of expert review (专家评审).
//!
//! Nothing here does I/O, touches a database or is async: every function takes the data it
//! needs and returns a value, so the store and the GraphQL layer can call it and persist the
//! result. All record types are serde-serialisable.
//!
//! Modules, in the order a round uses them:
//! - [`expert`]: the expert pool (专家库), call categories and the review policy.
//! - [`conflict`]: applications as review sees them and conflict of interest (回避).
//! - [`assignment`]: manual and seeded automatic assignment of experts, and replacement.
//! - [`lifecycle`]: the state machine of one expert's assignment to one application.
//! - [`scoring`]: rubric checks, score validation and the 0–100 total.
//! - [`aggregate`]: statistics, aggregation, outliers and the [`ReviewResult`] guards read.
//! - [`ranking`]: ranking applications of a call, with tie-breaks.
//! - [`export`]: the ranking and round summary as an XLSX workbook.
//! - [`blind`]: what an expert may see.
//! - [`error`]: [`ReviewError`], with stable codes and zh-CN / en messages.

pub mod aggregate;
pub mod assignment;
pub mod blind;
pub mod conflict;
pub mod error;
pub mod expert;
pub mod export;
pub mod lifecycle;
pub mod ranking;
pub mod scoring;

pub use aggregate::{ReviewGuard, ReviewResult};
pub use error::{ErrorReport, ReviewError};

/// Identifier of an expert. It is the expert's person id, the same namespace as
/// [`conflict::Application::participant_ids`].
pub type ExpertId = String;
/// Identifier of an organisation (unit, 单位).
pub type OrgId = String;
/// Identifier of an application (申报).
pub type ApplicationId = String;
/// Identifier of a call (征集/申报批次).
pub type CallId = String;
/// Identifier of a person taking part in an application.
pub type PersonId = String;
/// Identifier of a review round, the key under `[reviews]` in the workflow file.
pub type RoundId = String;
/// Identifier of a rubric criterion ([`grantflow_domain::CriterionDef::id`]).
pub type CriterionId = String;

/// Rounds a computed score to 6 decimal places.
///
/// Weighted totals are sums of binary fractions (0.3 × …), so a total that is 70 on paper can
/// come out as 69.99999999999999; a guard `review.total >= 70` must not fail on that.
/// Scores are entered with at most a few decimals, so 6 places lose nothing real.
pub(crate) fn round6(value: f64) -> f64 {
    (value * 1_000_000.0).round() / 1_000_000.0
}
