//! The grantflow domain: workflow definitions, their validation, the working-day
//! calendar and the pure engine that decides every transition. No I/O lives here.

pub mod audit;
pub mod calendar;
pub mod canonical;
pub mod dates;
pub mod diagnostic;
pub mod diagram;
pub mod duration;
pub mod engine;
pub mod error;
pub mod guard;
pub mod input;
pub mod migrate;
pub mod model;
pub mod money;
pub mod schedule;
pub mod schema;
pub mod source;
pub mod tasks;
mod validate;
pub mod workflow;

pub use duration::Span;
pub use error::{ErrorKind, UserFacing};
pub use model::*;
pub use money::Money;
pub use workflow::{CompiledWorkflow, LoadOutcome, Registry, load_str};

/// The built-in role of the scheduler, which fires timeouts.
pub const SCHEDULER_ROLE: &str = "scheduler";
