//! The programme part of the API: calls and their catalogue, demand import,
//! duplicates and merges, exports, budgets and spending, indicator actuals, performance
//! evaluation, call summaries and the province's reports. [`ProgrammeQuery`] and [`ProgrammeMutation`] are merged
//! into the roots.
//!
//! Authorisation is the instances': a project or demand the viewer may not see is
//! NOT_FOUND; lists and summaries only count what the viewer may see. Refusals are
//! INVALID_INPUT with `details.reason` (BUDGET_LINE_MISSING, BUDGET_EXCEEDED, NOT_APPROVED,
//! IMPORT_REJECTED with `details.rows` …).

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::input::FieldError;
use grantflow_domain::{Lang, Money};
use grantflow_programme::UserFacing;
use grantflow_programme::catalogue::Catalogue;
use grantflow_programme::evaluation::{Achievement, EvaluationResult};
use grantflow_programme::import::ImportMode;
use grantflow_programme::indicator::Checkpoint;
use grantflow_programme::similarity::DuplicateReason;
use grantflow_service::programme::{
    ActualInput, BudgetView, CallExecutionView, DemandImport, ExportFile, ExportFormat, Judgement,
    OpenCall,
};
use grantflow_store::programme::{
    ActualRecord, BudgetLine, Call, CallCategory, CallItem, CallPolicyArea, CallStatus,
    DemandMerge, EvaluationRecord, SpendingRecord,
};
use uuid::Uuid;

use crate::auth::scope;
use crate::context::{rc, service_err, viewer_with_scope};
use crate::error::ApiError;
use crate::query::InstanceFilterInput;
use crate::types::{InstanceGql, parse_id};

mod funding;
mod mutation;
mod query;
mod reports;
mod rules;
mod third_party;
mod types;

pub use self::funding::*;
pub use self::mutation::*;
pub use self::query::*;
pub use self::reports::*;
pub use self::rules::*;
pub use self::third_party::*;
pub use self::types::*;

/// Largest uploaded workbook, before base64 (the request body limit applies too).
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;

fn money(text: &str, field: &str) -> Result<Money, ApiError> {
    let shown: String = text.chars().take(40).collect();
    // "300000", "300000.00", "30万元", "30万" or "500元".
    Money::parse_with_unit(text).map_err(|e| {
        let (zh, en) = match e {
            grantflow_domain::money::MoneyError::Overflow(_) => (
                format!("「{shown}」超过金额上限 1000000000000.00 元"),
                format!("`{shown}` exceeds the largest amount, 1000000000000.00 yuan"),
            ),
            _ => (
                format!("「{shown}」不是金额（元，最多两位小数；或注明万元，如“30万元”）"),
                format!("`{shown}` is not an amount of yuan (at most 2 decimals; or say 万元, e.g. \"30万元\")"),
            ),
        };
        ApiError::invalid(&[FieldError::new(field, e.code(), zh, en)])
    })
}

fn opt_id(id: &Option<ID>, what: &str) -> Result<Option<Uuid>, ApiError> {
    id.as_ref().map(|i| parse_id(i, what)).transpose()
}
