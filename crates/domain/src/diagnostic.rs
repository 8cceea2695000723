//! Problems found in a workflow file, each with a stable code, a place and a hint.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Stable diagnostic codes. Tools and documentation refer to these; never renumber.
pub mod codes {
    pub const SYNTAX: &str = "WF_SYNTAX";
    pub const SHAPE: &str = "WF_SHAPE";
    pub const BAD_ID: &str = "WF_BAD_ID";
    pub const DUPLICATE_ID: &str = "WF_DUPLICATE_ID";
    pub const UNKNOWN_STATE: &str = "WF_UNKNOWN_STATE";
    pub const UNKNOWN_STAGE: &str = "WF_UNKNOWN_STAGE";
    pub const UNKNOWN_ROLE: &str = "WF_UNKNOWN_ROLE";
    pub const UNKNOWN_FIELD: &str = "WF_UNKNOWN_FIELD";
    pub const NO_INITIAL: &str = "WF_NO_INITIAL";
    pub const MANY_INITIAL: &str = "WF_MANY_INITIAL";
    pub const UNREACHABLE: &str = "WF_UNREACHABLE";
    pub const DEAD_END: &str = "WF_DEAD_END";
    pub const FINAL_HAS_EXIT: &str = "WF_FINAL_HAS_EXIT";
    pub const AMBIGUOUS_EVENT: &str = "WF_AMBIGUOUS_EVENT";
    pub const CEL_SYNTAX: &str = "WF_CEL_SYNTAX";
    pub const CEL_UNKNOWN_FIELD: &str = "WF_CEL_UNKNOWN_FIELD";
    pub const CEL_UNKNOWN_VARIABLE: &str = "WF_CEL_UNKNOWN_VARIABLE";
    pub const BAD_DURATION: &str = "WF_BAD_DURATION";
    pub const REMINDER_AFTER_DEADLINE: &str = "WF_REMINDER_AFTER_DEADLINE";
    pub const TIMEOUT_UNHANDLED: &str = "WF_TIMEOUT_UNHANDLED";
    pub const DEADLINE_SPEC: &str = "WF_DEADLINE_SPEC";
    pub const FIELD_TYPE: &str = "WF_FIELD_TYPE";
    pub const UNKNOWN_REVIEW: &str = "WF_UNKNOWN_REVIEW";
    pub const REVIEW_RUBRIC: &str = "WF_REVIEW_RUBRIC";
    pub const BAD_TIME: &str = "WF_BAD_TIME";
    pub const UNKNOWN_TIMER: &str = "WF_UNKNOWN_TIMER";
    pub const UNKNOWN_EVENT: &str = "WF_UNKNOWN_EVENT";

    /// Every code, in the order above.
    pub const ALL: [&str; 27] = [
        SYNTAX,
        SHAPE,
        BAD_ID,
        DUPLICATE_ID,
        UNKNOWN_STATE,
        UNKNOWN_STAGE,
        UNKNOWN_ROLE,
        UNKNOWN_FIELD,
        NO_INITIAL,
        MANY_INITIAL,
        UNREACHABLE,
        DEAD_END,
        FINAL_HAS_EXIT,
        AMBIGUOUS_EVENT,
        CEL_SYNTAX,
        CEL_UNKNOWN_FIELD,
        CEL_UNKNOWN_VARIABLE,
        BAD_DURATION,
        REMINDER_AFTER_DEADLINE,
        TIMEOUT_UNHANDLED,
        DEADLINE_SPEC,
        FIELD_TYPE,
        UNKNOWN_REVIEW,
        REVIEW_RUBRIC,
        BAD_TIME,
        UNKNOWN_TIMER,
        UNKNOWN_EVENT,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub file: String,
    /// 1-based line of the offending value.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Where in the document, e.g. `transitions[3].guard`.
    pub path: String,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}[{}]: {}",
            self.file, self.line, self.column, self.code, self.message
        )?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == Severity::Error)
}
