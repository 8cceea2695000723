//! GraphQL object types. Every field that reveals something checks the viewer.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::audit::HistoryRecord;
use grantflow_domain::engine::available_events;
use grantflow_domain::model::{FieldType, I18nText as DomainText, InputFieldDef};
use grantflow_service::Services;
use grantflow_store::{Instance, Organisation, OutboxMessage, Role, Timer, TokenRecord, User};
use uuid::Uuid;

use crate::context::{rc, viewer};
use crate::error::ApiError;
use crate::loaders::{Assignment, InstanceId, OrgId, UserId};

mod accounts;
mod instances;
mod tasks;
mod workflows;

pub use self::accounts::*;
pub use self::instances::*;
pub use self::tasks::*;
pub use self::workflows::*;

/// A text in Simplified Chinese and English.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "I18nText")]
pub struct I18nText {
    pub zh_cn: String,
    pub en: String,
}

impl From<&DomainText> for I18nText {
    fn from(t: &DomainText) -> Self {
        Self {
            zh_cn: t.zh_cn.clone(),
            en: t.en.clone(),
        }
    }
}

pub fn parse_id(id: &ID, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| {
        ApiError::invalid_field(
            what,
            &format!("「{}」不是有效的编号", id.as_str()),
            &format!("`{}` is not a valid id", id.as_str()),
        )
    })
}

fn internal(ctx: &Context<'_>, e: impl std::fmt::Display) -> async_graphql::Error {
    ApiError::internal(&rc(ctx).request_id, &e).into()
}
