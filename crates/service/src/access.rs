//! Who may see which instance. Every lookup by id goes through [`can_see`]; lists are
//! filtered by [`visibility_for`] in the query itself.

use grantflow_store::{Instance, Role, Store, StoreResult, User, Visibility};

/// The widest scope of instances a user may see.
pub fn visibility_for(user: &User) -> Visibility {
    if !user.active {
        return Visibility::Nothing;
    }
    if user.has_role(Role::Manager) || user.has_role(Role::Auditor) {
        return Visibility::All;
    }
    if user.has_role(Role::City)
        && let Some(org) = user.org_id
    {
        return Visibility::City(org);
    }
    if user.has_role(Role::Applicant)
        && let Some(org) = user.org_id
    {
        return Visibility::Org(org);
    }
    if user.has_role(Role::Expert) {
        return Visibility::AssignedExpert(user.id);
    }
    if user.has_role(Role::ThirdPartyEvaluator)
        && let Some(org) = user.org_id
    {
        return Visibility::ThirdParty(org);
    }
    Visibility::Nothing
}

/// What the rules decide without the store: `Some(visible)`, or `None` when it depends on
/// whether `user` is assigned to review `instance` (an expert with no other role that
/// shows it) or its evaluation is assigned to the user's third-party institution. A user
/// holding several roles sees the union.
pub fn decided_without_store(user: &User, instance: &Instance) -> Option<bool> {
    if !user.active {
        return Some(false);
    }
    if user.has_role(Role::Manager) || user.has_role(Role::Auditor) {
        return Some(true);
    }
    if user.has_role(Role::City) && user.org_id.is_some() && instance.city_id == user.org_id {
        return Some(true);
    }
    if user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id) {
        return Some(true);
    }
    if user.has_role(Role::Expert) {
        return None;
    }
    if user.has_role(Role::ThirdPartyEvaluator) && user.org_id.is_some() {
        return None;
    }
    Some(false)
}

/// Whether `user` may see `instance`. A user holding several roles sees the union.
pub async fn can_see(store: &dyn Store, user: &User, instance: &Instance) -> StoreResult<bool> {
    match decided_without_store(user, instance) {
        Some(visible) => Ok(visible),
        None => {
            if user.has_role(Role::Expert) && store.is_assigned_expert(instance.id, user.id).await?
            {
                return Ok(true);
            }
            match user.org_id {
                Some(org) if user.has_role(Role::ThirdPartyEvaluator) => {
                    store.is_assigned_to_org(instance.id, org).await
                }
                _ => Ok(false),
            }
        }
    }
}
