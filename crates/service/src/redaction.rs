//! The one path by which an instance is shown to a viewer who reviews it in a blind
//! round (盲评): which instances are blind for a viewer, and how their title and data
//! look then. Every renderer of an instance (fields, lists, filters, exports, events,
//! history, review forms) asks here; none decides on its own.

use std::collections::HashSet;

use grantflow_review::blind::redact_identity;
use grantflow_store::{Instance, InstanceFilter, User};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::review::sees_only_as_reviewer;
use crate::{ServiceResult, Services};

/// Fields of instance data that identify the applicant; hidden from experts in blind
/// rounds (with their values scrubbed from the remaining text).
pub const IDENTITY_FIELDS: &[&str] = &[
    "applicant",
    "applicant_name",
    "applicant_org",
    "organisation",
    "organisation_name",
    "unit",
    "unit_name",
    "contact",
    "contact_name",
    "contact_phone",
    "contact_email",
    "email",
    "phone",
    "project_leader",
    "leader",
    "members",
    "participants",
    "participant_ids",
    "created_by",
];

/// Hides the applicant's identity in a title and data: the top-level data fields named in
/// [`IDENTITY_FIELDS`] are nulled (a nested key of the same name, such as an indicator's
/// `unit`, is not identity), and their values and the organisation's and creator's names
/// are scrubbed from every text.
pub fn redact_instance(instance: &Instance, org_name: &str, creator_name: &str) -> (String, Value) {
    let record = json!({
        "__applicant": org_name,
        "__creator": creator_name,
        "title": instance.title,
        "data": instance.data,
    });
    let paths: Vec<String> = IDENTITY_FIELDS
        .iter()
        .map(|f| format!("data.{f}"))
        .collect();
    let mut fields: Vec<&str> = paths.iter().map(String::as_str).collect();
    fields.extend(["__applicant", "__creator"]);
    let redacted = redact_identity(&record, &fields);
    (
        redacted["title"].as_str().unwrap_or_default().to_string(),
        redacted["data"].clone(),
    )
}

/// Whether `user` sees the unit's record (its previous grades) on `instance`: the province
/// (managers, auditors) and the city bureau of the unit's city do, never a reviewer of a
/// blind round (`blind`: the instance is among [`Services::blind_instance_ids`] of the
/// user), and nobody else — not the applicant, not an expert.
pub fn shows_unit_record(user: &User, instance: &Instance, blind: bool) -> bool {
    use grantflow_store::Role;
    if blind || !user.active {
        return false;
    }
    user.has_role(Role::Manager)
        || user.has_role(Role::Auditor)
        || (user.has_role(Role::City) && user.org_id.is_some() && user.org_id == instance.city_id)
}

/// `filter` with the rule that filters on the applicant or on text are no oracle over blind
/// projects: they never match an instance in `blind` (the viewer's blind reviews).
pub fn hide_identity(filter: &InstanceFilter, blind: &HashSet<Uuid>) -> InstanceFilter {
    let identity_filtered = filter.org_id.is_some() || filter.text.is_some();
    InstanceFilter {
        identity_hidden: if identity_filtered {
            blind.iter().copied().collect()
        } else {
            Vec::new()
        },
        ..filter.clone()
    }
}

impl Services {
    /// `filter` as `user` may apply it ([`hide_identity`]); asks the store for the
    /// viewer's blind reviews only when the filter names an applicant or a text.
    pub async fn filter_for(
        &self,
        user: &User,
        filter: &InstanceFilter,
    ) -> ServiceResult<InstanceFilter> {
        if filter.org_id.is_none() && filter.text.is_none() {
            return Ok(filter.clone());
        }
        Ok(hide_identity(filter, &self.blind_instance_ids(user).await?))
    }

    /// The instances that `user` sees only as a reviewer of a blind round, among all their
    /// review assignments (two store calls, whatever their number). Lists pass them as
    /// [`grantflow_store::InstanceFilter::identity_hidden`]; exports redact them.
    pub async fn blind_instance_ids(&self, user: &User) -> ServiceResult<HashSet<Uuid>> {
        if !user.has_role(grantflow_store::Role::Expert) {
            return Ok(HashSet::new());
        }
        let assignments = self.store.expert_queue(user.id, true).await?;
        let mut ids: Vec<Uuid> = assignments.iter().map(|a| a.instance_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let instances = self.store.get_instances(&ids).await?;
        let mut blind = HashSet::new();
        for instance in &instances {
            if !sees_only_as_reviewer(user, instance) {
                continue;
            }
            let Ok(wf) = self.workflow_of(instance) else {
                continue;
            };
            let is_blind = assignments.iter().any(|a| {
                a.instance_id == instance.id
                    && wf.def.reviews.get(&a.round_id).is_some_and(|r| r.blind)
            });
            if is_blind {
                blind.insert(instance.id);
            }
        }
        Ok(blind)
    }
}
