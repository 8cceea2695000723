//! Who may see which instance. Every lookup by id goes through [`can_see`]; lists are
//! filtered by [`visibility_for`] in the query itself, and a transition by [`scopes_for`]
//! on the row it locks (the same SQL condition as the lists').

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

/// Every scope of instances `user` may see, one per role that shows instances: the
/// union is what [`can_see`] answers (a transition's store checks it on the locked row,
/// `grantflow_store::Requester`). Empty: nothing.
pub fn scopes_for(user: &User) -> Vec<Visibility> {
    if !user.active {
        return Vec::new();
    }
    if user.has_role(Role::Manager) || user.has_role(Role::Auditor) {
        return vec![Visibility::All];
    }
    let mut scopes = Vec::new();
    if let Some(org) = user.org_id {
        if user.has_role(Role::City) {
            scopes.push(Visibility::City(org));
        }
        if user.has_role(Role::Applicant) {
            scopes.push(Visibility::Org(org));
        }
    }
    if user.has_role(Role::Expert) {
        scopes.push(Visibility::AssignedExpert(user.id));
    }
    if let Some(org) = user.org_id
        && user.has_role(Role::ThirdPartyEvaluator)
    {
        scopes.push(Visibility::ThirdParty(org));
    }
    scopes
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use grantflow_store::NotifyPref;
    use serde_json::Value;
    use uuid::Uuid;

    /// Whether `scopes` show `instance`, for the scopes decided by the row alone.
    fn shows(scopes: &[Visibility], instance: &Instance) -> Option<bool> {
        let mut undecided = false;
        for scope in scopes {
            match scope {
                Visibility::All => return Some(true),
                Visibility::Org(org) if *org == instance.org_id => return Some(true),
                Visibility::City(city) if Some(*city) == instance.city_id => return Some(true),
                Visibility::AssignedExpert(_) | Visibility::ThirdParty(_) => undecided = true,
                _ => {}
            }
        }
        if undecided { None } else { Some(false) }
    }

    /// `scopes_for` (a transition's check on the locked row) answers what `can_see` does,
    /// for every set of roles, active or not, on an instance of the user's unit, of
    /// another unit of the user's city, and of another city.
    #[test]
    fn scopes_agree_with_can_see() {
        let (own, city, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let instance = |org_id: Uuid, city_id: Option<Uuid>| Instance {
            id: Uuid::now_v7(),
            workflow_id: "funded-project".into(),
            workflow_version: 1,
            state: "drafting".into(),
            stage: "application".into(),
            is_final: false,
            data: Value::Null,
            version: 0,
            parent_id: None,
            org_id,
            city_id,
            title: String::new(),
            created_by: Uuid::now_v7(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            due_at: None,
            review: Value::Null,
            last_hash: String::new(),
            budget: Value::Null,
        };
        let instances = [
            instance(own, Some(city)),
            instance(other, Some(own)),
            instance(other, Some(other)),
            instance(other, None),
        ];
        for mask in 0..(1u32 << Role::ALL.len()) {
            let roles: Vec<Role> = Role::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, r)| r)
                .collect();
            for active in [true, false] {
                for org_id in [Some(own), None] {
                    let user = User {
                        id: Uuid::now_v7(),
                        username: "u".into(),
                        display_name: "u".into(),
                        email: "u@example.org".into(),
                        org_id,
                        roles: roles.clone(),
                        lang: grantflow_store::Lang::ZhCn,
                        notify_pref: NotifyPref::default(),
                        active,
                        created_at: Utc::now(),
                    };
                    let scopes = scopes_for(&user);
                    for i in &instances {
                        assert_eq!(
                            shows(&scopes, i),
                            decided_without_store(&user, i),
                            "{roles:?}, active {active}, org {org_id:?}: {scopes:?}"
                        );
                    }
                    // What is left to the store is asked of the same assignments.
                    assert_eq!(
                        scopes.contains(&Visibility::AssignedExpert(user.id)),
                        active
                            && user.has_role(Role::Expert)
                            && !user.has_role(Role::Manager)
                            && !user.has_role(Role::Auditor)
                    );
                }
            }
        }
    }
}
