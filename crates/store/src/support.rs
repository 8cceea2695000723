//! Backend-neutral pieces every backend needs in the same form, so that SQLite and
//! PostgreSQL cannot drift apart: which outbox rows a notification becomes, how a title
//! search is escaped, how a transition's history record is built.

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_domain::engine::TransitionPlan;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Instance, NewOutboxMessage, NotifyPref, User, notification_key};

/// The outbox rows for one notification of a transition: one per recipient who wants
/// immediate mail, keyed so that a retried transition cannot enqueue twice.
pub fn notification_messages(
    instance: &Instance,
    template: &str,
    context: &Value,
    recipients: &[User],
    at: DateTime<Utc>,
) -> Vec<NewOutboxMessage> {
    let mut seen = HashSet::new();
    recipients
        .iter()
        .filter(|u| u.active && u.notify_pref == NotifyPref::Immediate)
        .filter(|u| seen.insert(u.id))
        .map(|u| {
            let mut ctx = match context {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                other => {
                    let mut m = Map::new();
                    m.insert("context".into(), other.clone());
                    m
                }
            };
            ctx.insert("recipient_name".into(), Value::from(u.display_name.clone()));
            ctx.insert("lang".into(), Value::from(u.lang.tag()));
            NewOutboxMessage {
                idempotency_key: notification_key(instance.id, instance.version, template, u.id),
                recipient_user_id: Some(u.id),
                to_address: u.email.clone(),
                to_name: u.display_name.clone(),
                template: template.to_string(),
                lang: u.lang,
                context: Value::Object(ctx),
                instance_id: Some(instance.id),
                kind: "notification".to_string(),
                not_before: at,
            }
        })
        .collect()
}

/// The instance after `plan`, as the store writes it.
pub fn instance_after(before: &Instance, plan: &TransitionPlan, last_hash: &str) -> Instance {
    let at = plan.at.trunc_subsecs(6);
    Instance {
        state: plan.to.clone(),
        stage: plan.stage_to.clone(),
        is_final: plan.is_final,
        data: plan.data.clone(),
        version: plan.new_version,
        updated_at: at,
        due_at: plan.deadline.map(|d| d.due_at.trunc_subsecs(6)),
        last_hash: last_hash.to_string(),
        ..before.clone()
    }
}

/// The sealed history record of `plan` applied to `before`.
pub fn history_record(before: &Instance, plan: &TransitionPlan) -> HistoryRecord {
    HistoryRecord {
        instance_id: before.id.to_string(),
        seq: plan.new_version,
        at: plan.at.trunc_subsecs(6),
        actor_id: plan.actor.id.clone(),
        actor_roles: plan.actor.roles.clone(),
        event: plan.event.clone(),
        from_state: plan.from.clone(),
        to_state: plan.to.clone(),
        input: plan.input.clone(),
        reason: plan.reason.clone(),
        data_hash: Some(grantflow_domain::audit::data_hash(&plan.data)),
        prev_hash: String::new(),
        hash: String::new(),
    }
    .seal(&before.last_hash)
}

/// A `LIKE` pattern matching `text` anywhere, with `\` as the escape character.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The city an instance of an organisation belongs to: a unit's parent city, a city
/// itself, none for the province (or a unit directly under the province).
pub fn city_of(
    org_kind: crate::OrgKind,
    org_id: Uuid,
    parent: Option<(Uuid, crate::OrgKind)>,
) -> Option<Uuid> {
    match (org_kind, parent) {
        (crate::OrgKind::Unit, Some((p, crate::OrgKind::City))) => Some(p),
        (crate::OrgKind::City, _) => Some(org_id),
        _ => None,
    }
}

/// Reject a plan that does not continue from the instance as read.
pub fn check_plan(before: &Instance, plan: &TransitionPlan) -> Result<(), crate::StoreError> {
    if plan.new_version != before.version + 1 || plan.from != before.state {
        return Err(crate::StoreError::Invalid(format!(
            "the plan goes from `{}` at version {} but the instance is in `{}` at version {}",
            plan.from,
            plan.new_version - 1,
            before.state,
            before.version
        )));
    }
    Ok(())
}

/// The history record of a deadline extension: a self-transition named
/// `extend_deadline` whose input is the new due time.
pub fn extension_record(
    before: &Instance,
    request: &crate::ExtendDeadline,
    at: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> HistoryRecord {
    HistoryRecord {
        instance_id: before.id.to_string(),
        seq: before.version + 1,
        at,
        actor_id: request.actor_id.clone(),
        actor_roles: request.actor_roles.clone(),
        event: "extend_deadline".to_string(),
        from_state: before.state.clone(),
        to_state: before.state.clone(),
        input: serde_json::json!({
            "due_at": due_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "previous_due_at": before
                .due_at
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        }),
        reason: Some(request.reason.clone()),
        data_hash: Some(grantflow_domain::audit::data_hash(&before.data)),
        prev_hash: String::new(),
        hash: String::new(),
    }
    .seal(&before.last_hash)
}

/// The history record of a move to another workflow version.
pub fn migration_record(
    before: &Instance,
    request: &crate::MigrateInstance,
    at: DateTime<Utc>,
) -> HistoryRecord {
    HistoryRecord {
        instance_id: before.id.to_string(),
        seq: before.version + 1,
        at,
        actor_id: request.actor_id.clone(),
        actor_roles: request.actor_roles.clone(),
        event: "migrate_version".to_string(),
        from_state: before.state.clone(),
        to_state: request.to_state.clone(),
        input: serde_json::json!({
            "from_version": request.from_workflow_version,
            "to_version": request.to_workflow_version,
        }),
        reason: Some(request.reason.clone()),
        data_hash: Some(grantflow_domain::audit::data_hash(&before.data)),
        prev_hash: String::new(),
        hash: String::new(),
    }
    .seal(&before.last_hash)
}
