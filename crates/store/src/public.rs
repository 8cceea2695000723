//! Persistence of 公示 in public: objections raised by the public (no account) against a
//! project under publicity, and the manager's resolution of each, with every step kept in
//! an append-only history. Plain Rust types; the rules (who may, which states, limits)
//! live in the service.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreResult;

/// Where an objection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionStatus {
    /// Submitted, not yet resolved: approval may not continue.
    Open,
    /// 异议成立.
    Upheld,
    /// 异议不成立.
    Dismissed,
}

impl ObjectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectionStatus::Open => "open",
            ObjectionStatus::Upheld => "upheld",
            ObjectionStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<ObjectionStatus> {
        match s {
            "open" => Some(ObjectionStatus::Open),
            "upheld" => Some(ObjectionStatus::Upheld),
            "dismissed" => Some(ObjectionStatus::Dismissed),
            _ => None,
        }
    }
}

/// An objection of the public against a project under publicity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicObjection {
    pub id: Uuid,
    pub instance_id: Uuid,
    /// The objector's name (姓名或单位名称).
    pub name: String,
    /// How to reach them (phone or e-mail).
    pub contact: String,
    /// 异议理由.
    pub reason: String,
    pub submitted_at: DateTime<Utc>,
    pub status: ObjectionStatus,
    /// The manager's reason for upholding or dismissing.
    pub resolution: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One step of an objection: `submitted`, `upheld` or `dismissed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectionEvent {
    pub id: Uuid,
    pub objection_id: Uuid,
    pub action: String,
    pub reason: Option<String>,
    /// The manager (none for the public's submission).
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// A manager's resolution of an open objection.
#[derive(Debug, Clone)]
pub struct ResolveObjection {
    pub objection_id: Uuid,
    /// `Upheld` or `Dismissed`.
    pub outcome: ObjectionStatus,
    pub reason: String,
    pub resolved_by: Uuid,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait PublicStore: Send + Sync {
    /// Store a new objection (status `open`) and its `submitted` history step in one
    /// transaction, if its instance is of `workflow_id` and in one of `states` (read under
    /// the instance's lock); `None` otherwise, and nothing is written.
    async fn submit_objection(
        &self,
        objection: PublicObjection,
        workflow_id: &str,
        states: &[String],
    ) -> StoreResult<Option<PublicObjection>>;
    async fn get_objection(&self, id: Uuid) -> StoreResult<PublicObjection>;
    /// Objections, newest first, at most `limit`: of one instance or of all, open only or
    /// every status.
    async fn objections(
        &self,
        instance_id: Option<Uuid>,
        open_only: bool,
        limit: u32,
    ) -> StoreResult<Vec<PublicObjection>>;
    /// How many objections on `instance_id` are still open.
    async fn open_objection_count(&self, instance_id: Uuid) -> StoreResult<i64>;
    /// Resolve an open objection and append the step, in one transaction; `None` when it
    /// is no longer open (nothing is written).
    async fn resolve_objection(
        &self,
        resolve: ResolveObjection,
    ) -> StoreResult<Option<PublicObjection>>;
    /// The steps of an objection, oldest first.
    async fn objection_history(&self, objection_id: Uuid) -> StoreResult<Vec<ObjectionEvent>>;
}

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use uuid::Uuid;
}

/// Implements [`PublicStore`] for a wrapper type by delegating every method to its field
/// `$field`.
#[macro_export]
macro_rules! delegate_public_store {
    ($ty:ty, $field:ident) => {
        #[$crate::public::__private::async_trait]
        impl $crate::public::PublicStore for $ty {
            async fn submit_objection(
                &self,
                objection: $crate::public::PublicObjection,
                workflow_id: &str,
                states: &[String],
            ) -> $crate::StoreResult<Option<$crate::public::PublicObjection>> {
                self.$field
                    .submit_objection(objection, workflow_id, states)
                    .await
            }
            async fn get_objection(
                &self,
                id: $crate::public::__private::Uuid,
            ) -> $crate::StoreResult<$crate::public::PublicObjection> {
                self.$field.get_objection(id).await
            }
            async fn objections(
                &self,
                instance_id: Option<$crate::public::__private::Uuid>,
                open_only: bool,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::public::PublicObjection>> {
                self.$field.objections(instance_id, open_only, limit).await
            }
            async fn open_objection_count(
                &self,
                instance_id: $crate::public::__private::Uuid,
            ) -> $crate::StoreResult<i64> {
                self.$field.open_objection_count(instance_id).await
            }
            async fn resolve_objection(
                &self,
                resolve: $crate::public::ResolveObjection,
            ) -> $crate::StoreResult<Option<$crate::public::PublicObjection>> {
                self.$field.resolve_objection(resolve).await
            }
            async fn objection_history(
                &self,
                objection_id: $crate::public::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::public::ObjectionEvent>> {
                self.$field.objection_history(objection_id).await
            }
        }
    };
}
