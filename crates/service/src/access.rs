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
    Visibility::Nothing
}

/// Whether `user` may see `instance`. A user holding several roles sees the union.
pub async fn can_see(store: &dyn Store, user: &User, instance: &Instance) -> StoreResult<bool> {
    if !user.active {
        return Ok(false);
    }
    if user.has_role(Role::Manager) || user.has_role(Role::Auditor) {
        return Ok(true);
    }
    if user.has_role(Role::City) && user.org_id.is_some() && instance.city_id == user.org_id {
        return Ok(true);
    }
    if user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id) {
        return Ok(true);
    }
    if user.has_role(Role::Expert) {
        return store.is_assigned_expert(instance.id, user.id).await;
    }
    Ok(false)
}
