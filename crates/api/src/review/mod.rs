//! Expert review over GraphQL.
//!
//! Experts: `myReviews` (their queue with deadlines), `reviewForm` (the rubric; the
//! application only after declaring no conflict, redacted in blind rounds; other experts'
//! scores, numbered, only after submitting their own), `declareNoConflict`,
//! `declareConflict`, `decline`, `submitScores` (INVALID_INPUT with `details.fields` per
//! criterion) and `justifyScores`. Managers: `expertPool`, `upsertExpertProfile`,
//! `recordCollaboration`, `assignReviewers`, `autoAssign`, `reassign`, `reopenReview`,
//! `reviewRound`, `ranking` and `rankingXlsx`. Applicants: `requestReviewExclusions`.
//!
//! Mutations need the `review` scope on API tokens; queries the `read` scope. An
//! assignment of someone else is NOT_FOUND.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::model::{Aggregation, ReviewRoundDef};
use grantflow_review::aggregate::{ReviewResult, Stats};
use grantflow_review::lifecycle::AssignmentState;
use grantflow_review::scoring::{CriterionScore, ScoreSheet};
use grantflow_service::review::{
    Departure, PoolEntry, ProfileUpdate, QueueItem, ReviewServiceError, Reviews, redact_instance,
    sees_only_as_reviewer,
};
use grantflow_store::review::{AssignmentRecord, Collaboration, ExpertProfile, Submission};
use grantflow_store::{Instance, Role, User};
use serde_json::Value;

use crate::auth::scope;
use crate::context::{rc, viewer_with_scope};
use crate::error::ApiError;
use crate::loaders::{LoadError, OrgId, StoreLoader, UserId};
use crate::types::{I18nText, InstanceGql, OrganisationGql, UserGql, parse_id};

mod blindness;
mod mutation;
mod query;
mod types;

pub use self::blindness::*;
pub use self::mutation::*;
pub use self::query::*;
pub use self::types::*;

fn reviews(ctx: &Context<'_>) -> Reviews {
    rc(ctx).services.reviews()
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "called as `map_err(|e| review_err(ctx, e))`"
)]
fn review_err(ctx: &Context<'_>, e: ReviewServiceError) -> async_graphql::Error {
    ApiError::user_facing(&e, &rc(ctx).request_id).into()
}

fn internal(ctx: &Context<'_>, e: impl std::fmt::Display) -> async_graphql::Error {
    crate::error::ApiError::internal(&rc(ctx).request_id, &e).into()
}

async fn load_user(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<UserGql>> {
    let user = rc(ctx)
        .loader
        .load_one(UserId(id))
        .await
        .map_err(|e| internal(ctx, e))?;
    Ok(user.map(UserGql))
}

fn state_title(state: &str) -> I18nText {
    let title = serde_json::from_value::<AssignmentState>(Value::from(state))
        .map(grantflow_review::lifecycle::AssignmentState::title)
        .unwrap_or_else(|_| grantflow_domain::model::I18nText::new(state, state));
    (&title).into()
}

fn aggregation_name(a: Aggregation) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
