//! Persistence of third-party evaluation (第三方绩效评价): which third-party institution a
//! project's evaluation is assigned to (with every assignment kept), and the evaluation it
//! records. Visibility follows the assignment: [`crate::Visibility::ThirdParty`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::StoreResult;

/// A project's evaluation assigned to an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationAssignment {
    pub instance_id: Uuid,
    pub org_id: Uuid,
    pub assigned_by: Uuid,
    pub assigned_at: DateTime<Utc>,
}

/// A third party's evaluation of a project (the latest one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThirdPartyEvaluation {
    pub instance_id: Uuid,
    pub org_id: Uuid,
    pub evaluator_id: Uuid,
    pub total: f64,
    pub grade: String,
    /// The scoring result (`grantflow_programme::evaluation::EvaluationResult`) and the
    /// outcomes it read.
    pub result: Value,
    pub evaluated_at: DateTime<Utc>,
}

#[async_trait]
pub trait ThirdPartyStore: Send + Sync {
    /// Assign (or reassign) the project's evaluation and append it to the history, in one
    /// transaction.
    async fn assign_evaluation(
        &self,
        assignment: EvaluationAssignment,
    ) -> StoreResult<EvaluationAssignment>;
    async fn evaluation_assignment(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Option<EvaluationAssignment>>;
    /// Every assignment of the project, oldest first.
    async fn evaluation_assignment_history(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Vec<EvaluationAssignment>>;
    /// Whether the project's evaluation is assigned to `org_id` now.
    async fn is_assigned_to_org(&self, instance_id: Uuid, org_id: Uuid) -> StoreResult<bool>;
    /// Store the third party's evaluation (replacing an earlier one of the project).
    async fn save_third_party_evaluation(
        &self,
        evaluation: ThirdPartyEvaluation,
    ) -> StoreResult<()>;
    async fn third_party_evaluation(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Option<ThirdPartyEvaluation>>;
}

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use uuid::Uuid;
}

/// Implements [`ThirdPartyStore`] for a wrapper type by delegating every method to its
/// field `$field`.
#[macro_export]
macro_rules! delegate_third_party_store {
    ($ty:ty, $field:ident) => {
        #[$crate::third_party::__private::async_trait]
        impl $crate::third_party::ThirdPartyStore for $ty {
            async fn assign_evaluation(
                &self,
                assignment: $crate::third_party::EvaluationAssignment,
            ) -> $crate::StoreResult<$crate::third_party::EvaluationAssignment> {
                self.$field.assign_evaluation(assignment).await
            }
            async fn evaluation_assignment(
                &self,
                instance_id: $crate::third_party::__private::Uuid,
            ) -> $crate::StoreResult<Option<$crate::third_party::EvaluationAssignment>> {
                self.$field.evaluation_assignment(instance_id).await
            }
            async fn evaluation_assignment_history(
                &self,
                instance_id: $crate::third_party::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::third_party::EvaluationAssignment>> {
                self.$field.evaluation_assignment_history(instance_id).await
            }
            async fn is_assigned_to_org(
                &self,
                instance_id: $crate::third_party::__private::Uuid,
                org_id: $crate::third_party::__private::Uuid,
            ) -> $crate::StoreResult<bool> {
                self.$field.is_assigned_to_org(instance_id, org_id).await
            }
            async fn save_third_party_evaluation(
                &self,
                evaluation: $crate::third_party::ThirdPartyEvaluation,
            ) -> $crate::StoreResult<()> {
                self.$field.save_third_party_evaluation(evaluation).await
            }
            async fn third_party_evaluation(
                &self,
                instance_id: $crate::third_party::__private::Uuid,
            ) -> $crate::StoreResult<Option<$crate::third_party::ThirdPartyEvaluation>> {
                self.$field.third_party_evaluation(instance_id).await
            }
        }
    };
}
