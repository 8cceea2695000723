//! The grantflow domain: workflow definitions, their validation, the working-day
//! calendar and the pure engine that decides every transition. No I/O lives here.

pub mod calendar;
pub mod diagnostic;
pub mod duration;
pub mod guard;
pub mod model;
pub mod money;
pub mod source;

pub use duration::Span;
pub use model::*;
pub use money::Money;

/// The built-in role of the scheduler, which fires timeouts.
pub const SCHEDULER_ROLE: &str = "scheduler";
