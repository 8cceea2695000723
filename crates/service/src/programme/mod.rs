//! The programme around the workflows: yearly calls and their catalogue, demands
//! (`demand-collection` instances of a call) imported from the 需求征集表, duplicates and
//! merges, budgets and spending (先有预算再有执行、没有预算不得支出), indicator actuals, the
//! performance evaluation, call summaries, the province's reports and exports.
//!
//! The rules are `grantflow-programme`'s; this module reads and writes through the store
//! and fires workflow events through [`Services::fire`], like every other change.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use grantflow_domain::calendar::local_date;
use grantflow_domain::engine::{self, Snapshot};
use grantflow_domain::input::FieldError;
use grantflow_domain::{Lang, Money};
use grantflow_programme::UserFacing;
use grantflow_programme::budget::{ProjectLedger, call_execution};
use grantflow_programme::catalogue::{
    ApplicantKind, Catalogue, CatalogueCategory, CatalogueItem, Category, Part, PolicyArea,
};
use grantflow_programme::demand::{Demand, DemandOrigin};
use grantflow_programme::evaluation::{
    Achievement, CallSummary, EvaluationInput, EvaluationMethod, EvaluationResult, Outcome,
    evaluate, summarize_call,
};
use grantflow_programme::export::{
    Sheet, Table, call_summary_sheet, demand_sheet, evaluation_sheet, indicator_score_sheet,
    write_csv, write_xlsx,
};
use grantflow_programme::import::{
    BudgetUnit, ImportLimits, ImportMode, ImportOptions, import_demands,
};
use grantflow_programme::indicator::{
    ChangeRequestRef, ChangeRequestStatus, Checkpoint, Direction, Indicator, IndicatorCategory,
    IndicatorSet, IndicatorSetStatus, IndicatorValue,
};
use grantflow_programme::rules::CallRules;
use grantflow_programme::similarity::{
    DuplicateReason, MergedDemand, SimilarityConfig, SimilarityScores, SimilarityWeights,
    demand_similarity, find_duplicates_within,
};
use grantflow_store::programme::{
    ActualRecord, BudgetLine, Call, CallCategory, CallItem, CallPolicyArea, DemandMerge,
    EvaluationRecord, IndicatorScoreRecord, NewCall, NewSpending, SpendingRecord, SpendingRefusal,
};
use grantflow_store::{
    Applied, Instance, InstanceFilter, NewInstance, OrgKind, PageRequest, Role, SortKey, SortOrder,
    StoreError, User,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{FireEvent, ServiceError, ServiceResult, Services, can_see, visibility_for};

mod applications;
mod budgets;
mod calls;
mod change_requests;
mod conversions;
mod demands;
mod evaluation;
mod funding;
mod indicators;
mod refusal;
mod reports;
mod results;
mod rules;
mod third_party;

pub use self::applications::{SERVICE_OWNED_FIELDS, SUBMISSION_EVENTS, is_call_bound};
pub use self::conversions::*;
pub use self::funding::*;
pub use self::refusal::*;
pub use self::reports::*;
pub use self::results::*;
pub use self::rules::*;
pub use self::third_party::*;

pub const DEMAND_WORKFLOW: &str = "demand-collection";
pub const PROJECT_WORKFLOW: &str = "funded-project";
pub const CHANGE_WORKFLOW: &str = "change-request";

fn refused<T>(r: Refusal) -> ServiceResult<T> {
    Err(ServiceError::Refused(Box::new(r)))
}

fn invalid<T>(field: &str, zh: &str, en: &str) -> ServiceResult<T> {
    Err(ServiceError::Invalid(vec![FieldError::new(
        field,
        "INVALID_VALUE",
        zh,
        en,
    )]))
}

fn require_role(user: &User, roles: &[Role]) -> ServiceResult<()> {
    if user.active && roles.iter().any(|r| user.has_role(*r)) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}
