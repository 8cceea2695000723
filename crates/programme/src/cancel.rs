//! Cooperative cancellation of CPU-heavy work (imports, duplicate detection, exports).
//!
//! The work runs on a blocking thread; when the request that asked for it times out or is
//! dropped, the caller raises the flag and the work stops at its next check instead of
//! running on for minutes. An optional deadline makes the work stop by itself too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A cancellation flag with an optional deadline. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

/// The work was cancelled (its request timed out or went away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the work was cancelled")
    }
}

impl std::error::Error for Cancelled {}

impl Cancel {
    /// A flag nobody has raised, without deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same flag, also raised by itself at `deadline`.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Raises the flag: every clone sees it at its next check.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// `Err(Cancelled)` once cancelled; what the work calls between steps.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag_and_a_past_deadline_cancels() {
        let c = Cancel::new();
        let other = c.clone();
        assert_eq!(other.check(), Ok(()));
        c.cancel();
        assert_eq!(other.check(), Err(Cancelled));
        let past = Cancel::new().with_deadline(Instant::now());
        assert!(past.is_cancelled());
    }
}
