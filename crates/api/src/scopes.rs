//! One gate for API-token scopes: every root field of a query or mutation passes through
//! it before its resolver runs, so no resolver can forget its check. Queries need `read`;
//! each mutation names its scope in [`mutation_scope`], and a mutation missing from that
//! table is refused (fail closed; a test keeps the table complete). Login sessions carry
//! every scope. Subscriptions check `read` in their resolvers (the gate sees only fields
//! that resolve to a value).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{PathSegment, ServerError, ServerResult, Value};

use crate::auth::scope;
use crate::context::RequestContext;
use crate::error::ApiError;

/// What a mutation needs. `Some(None)`: no scope (signing in or out, password reset by
/// e-mail); `None`: not listed, refused.
pub fn mutation_scope(field: &str) -> Option<Option<&'static str>> {
    Some(match field {
        "login" | "logout" | "requestPasswordReset" | "resetPassword" => None,
        // 公示异议: the public objects without an account.
        "submitPublicObjection" => None,
        // Account changes need a login session (checked by the resolvers); an API token
        // with `admin` is still no session.
        "revokeAllTokens"
        | "createApiToken"
        | "revokeApiToken"
        | "changePassword"
        | "setNotificationPreference" => Some(scope::ADMIN),
        "createOrganisation" | "createUser" | "updateUser" => Some(scope::ADMIN),
        "createInstance"
        | "transition"
        | "extendDeadline"
        | "openCall"
        | "closeCall"
        | "importDemands"
        | "submitDemands"
        | "mergeDemands"
        | "addBudgetLine"
        | "recordSpending"
        | "setFundingPlan"
        | "recordDisbursement"
        | "recordIndicatorActuals"
        | "evaluateProject"
        | "applyChangeRequest"
        | "requestReviewExclusions"
        | "resolvePublicObjection"
        | "assignEvaluation"
        | "recordThirdPartyEvaluation" => Some(scope::TRANSITION),
        "declareNoConflict"
        | "declareConflict"
        | "decline"
        | "submitScores"
        | "justifyScores"
        | "upsertExpertProfile"
        | "recordCollaboration"
        | "assignReviewers"
        | "autoAssign"
        | "reassign"
        | "reopenReview" => Some(scope::REVIEW),
        _ => return None,
    })
}

/// The scope a root field of `parent_type` needs; `Err` for an unlisted mutation.
fn required(parent_type: &str, field: &str) -> Result<Option<&'static str>, ()> {
    if field.starts_with("__") {
        return Ok(None); // __typename, and introspection (off in production).
    }
    match parent_type {
        "Mutation" => mutation_scope(field).ok_or(()),
        _ => Ok(Some(scope::READ)),
    }
}

pub struct ScopeGate;

impl ExtensionFactory for ScopeGate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Self)
    }
}

#[async_trait::async_trait]
impl Extension for ScopeGate {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_none() {
            let viewer = ctx
                .data_opt::<RequestContext>()
                .and_then(|r| r.viewer.as_ref());
            // Anonymous callers are the resolvers' business (UNAUTHENTICATED); only a
            // token's scopes are checked here.
            if let Some(v) = viewer {
                let refusal = match required(info.parent_type, info.name) {
                    Ok(Some(s)) if !v.has_scope(s) => Some(ApiError::forbidden().with_message(
                        format!("该令牌缺少权限范围「{s}」"),
                        format!("this token lacks the `{s}` scope"),
                    )),
                    Ok(_) => None,
                    Err(()) => Some(ApiError::forbidden()),
                };
                if let Some(e) = refusal {
                    let mut err: ServerError =
                        async_graphql::Error::from(e).into_server_error(info.field.name.pos);
                    err.path = vec![PathSegment::Field(
                        info.alias.unwrap_or(info.name).to_string(),
                    )];
                    return Err(err);
                }
            }
        }
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mutation of the schema is in the table: a new one cannot slip past the gate
    /// unnoticed (it would be refused to every token, sessions included).
    #[test]
    fn every_mutation_has_a_scope() {
        let schema = crate::build_schema(&crate::ApiSettings::default());
        let resp = futures::executor::block_on(
            schema.execute(r#"{ __type(name: "Mutation") { fields { name } } }"#),
        );
        let data = resp.data.into_json().expect("JSON");
        let fields: Vec<&str> = data["__type"]["fields"]
            .as_array()
            .expect("the Mutation type")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        assert!(fields.len() > 30, "{fields:?}");
        let missing: Vec<&&str> = fields
            .iter()
            .filter(|f| mutation_scope(f).is_none())
            .collect();
        assert!(missing.is_empty(), "mutations without a scope: {missing:?}");
    }
}
