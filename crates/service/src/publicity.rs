//! 公示 in public: the list of projects under publicity that anyone may read (only what a
//! 公示 publishes: project, unit, catalogue item, amount, the publicity period), objections
//! the public raises without an account, and the manager's resolution of each. While an
//! objection on a project is open, approval does not continue: the events in
//! [`BLOCKED_WHILE_OBJECTED`] are refused (`OBJECTION_UNRESOLVED`), the scheduler's
//! `publicity_ended` timeout included (the timer is spent; the manager ends the publicity
//! once every objection is resolved).

use chrono::{Duration, NaiveDate};
use grantflow_domain::calendar::local_date;
use grantflow_domain::input::FieldError;
use grantflow_store::public::{ObjectionEvent, ObjectionStatus, PublicObjection, ResolveObjection};
use grantflow_store::{Instance, InstanceFilter, PageRequest, Role, SortKey, SortOrder, User};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::programme::{PROJECT_WORKFLOW, Refusal, RefusalReason};
use crate::{ServiceError, ServiceResult, Services};

/// The states of `funded-project` in which a project is under publicity (公示中).
pub const PUBLICITY_STATES: [&str; 2] = ["publicity", "objection_review"];
/// Events refused while an objection on the project is open.
pub const BLOCKED_WHILE_OBJECTED: [&str; 2] = ["publicity_ended", "dismiss_objection"];
/// At most this many projects are listed (the oldest approvals first).
pub const PUBLICITY_LIST_MAX: usize = 1000;
/// Limits of an objection's fields, in characters (checked on the byte length first, so
/// nothing larger is ever copied or counted).
pub const NAME_MAX_CHARS: usize = 100;
pub const CONTACT_MAX_CHARS: usize = 200;
pub const REASON_MAX_CHARS: usize = 4000;
/// The manager's reason for a resolution.
pub const RESOLUTION_MAX_CHARS: usize = 4000;
/// Objections listed for managers at most.
pub const OBJECTIONS_LIST_MAX: u32 = 1000;

/// Refused while an objection is open (`details.openObjections`).
pub const OBJECTION_UNRESOLVED: &str = "OBJECTION_UNRESOLVED";
/// The objection was resolved already.
pub const OBJECTION_ALREADY_RESOLVED: &str = "OBJECTION_ALREADY_RESOLVED";

/// One project of the public list: what a 公示 publishes, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicityEntry {
    /// The project, for the objection form.
    pub instance_id: Uuid,
    pub title: String,
    /// The unit (承担单位).
    pub unit: String,
    /// The catalogue item's id and name.
    pub catalogue_item: Option<String>,
    pub catalogue_item_name: Option<String>,
    /// The approved funding in yuan (`"300000.00"`).
    pub amount: Option<String>,
    pub publicity_start: Option<NaiveDate>,
    pub publicity_end: Option<NaiveDate>,
}

/// An objection as the public submits it.
#[derive(Debug, Clone)]
pub struct NewPublicObjection {
    pub instance_id: Uuid,
    pub name: String,
    pub contact: String,
    pub reason: String,
}

/// A field of at most `max` characters, not empty: checked on the byte length before the
/// characters are counted.
fn bounded<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, FieldError> {
    let too_long = || {
        FieldError::new(
            field,
            "TOO_LONG",
            format!("不能超过 {max} 个字符"),
            format!("at most {max} characters"),
        )
    };
    // A UTF-8 character is at most 4 bytes: beyond 4 × max it cannot fit.
    if value.len() > max.saturating_mul(4) {
        return Err(too_long());
    }
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(
            field,
            "REQUIRED",
            "不能为空",
            "must not be empty",
        ));
    }
    if value.chars().count() > max {
        return Err(too_long());
    }
    Ok(value)
}

fn check_all(fields: &[(&str, &str, usize)]) -> ServiceResult<Vec<String>> {
    let mut errors = Vec::new();
    let mut values = Vec::new();
    for (field, value, max) in fields {
        match bounded(field, value, *max) {
            Ok(v) => values.push(v.to_string()),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

fn date_of(data: &Value, key: &str) -> Option<NaiveDate> {
    data.get(key)?.as_str()?.get(..10)?.parse().ok()
}

/// The last day of publicity: the running deadline while in `publicity` (due at 24:00 of
/// its last day), otherwise the approval date plus the call's publicity days.
fn publicity_end(instance: &Instance) -> Option<NaiveDate> {
    if instance.state == "publicity"
        && let Some(due) = instance.due_at
    {
        return Some(local_date(due - Duration::seconds(1)));
    }
    let days = instance
        .data
        .get("publicity_days")
        .and_then(Value::as_i64)
        .unwrap_or(7)
        .clamp(0, 3660);
    date_of(&instance.data, "approved_on").map(|d| d + Duration::days(days))
}

fn require(user: &User, roles: &[Role]) -> ServiceResult<()> {
    if user.active && roles.iter().any(|r| user.has_role(*r)) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

impl Services {
    /// The projects under publicity, for anyone (no account): the oldest approvals first.
    pub async fn publicity_list(&self) -> ServiceResult<Vec<PublicityEntry>> {
        let filter = InstanceFilter {
            workflow_id: Some(PROJECT_WORKFLOW.to_string()),
            states: PUBLICITY_STATES.iter().map(ToString::to_string).collect(),
            ..Default::default()
        };
        let mut instances = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_instances(
                    &grantflow_store::Visibility::All,
                    &filter,
                    &PageRequest {
                        first: 100,
                        after: after.clone(),
                        sort: SortKey::CreatedAt,
                        order: SortOrder::Asc,
                        with_total: true,
                    },
                )
                .await?;
            after = page.items.last().map(|(_, c)| c.clone());
            instances.extend(page.items.into_iter().map(|(i, _)| i));
            if !page.has_next_page || instances.len() >= PUBLICITY_LIST_MAX {
                break;
            }
        }
        instances.truncate(PUBLICITY_LIST_MAX);
        let mut org_ids: Vec<Uuid> = instances.iter().map(|i| i.org_id).collect();
        org_ids.sort_unstable();
        org_ids.dedup();
        let orgs = self.store.get_orgs(&org_ids).await?;
        let mut calls = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(instances.len());
        for i in &instances {
            let item = i
                .data
                .get("catalogue_item")
                .and_then(Value::as_str)
                .map(str::to_string);
            let call_id = i
                .data
                .get("call_id")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok());
            let mut item_name = None;
            if let (Some(call_id), Some(item)) = (call_id, &item) {
                if let std::collections::hash_map::Entry::Vacant(slot) = calls.entry(call_id) {
                    let call = match self.store.get_call(call_id).await {
                        Ok(c) => Some(c),
                        Err(grantflow_store::StoreError::NotFound { .. }) => None,
                        Err(e) => return Err(e.into()),
                    };
                    slot.insert(call);
                }
                item_name = calls
                    .get(&call_id)
                    .and_then(Option::as_ref)
                    .and_then(|c| c.items().find(|(_, _, it)| &it.item_id == item))
                    .map(|(_, _, it)| it.name.clone());
            }
            out.push(PublicityEntry {
                instance_id: i.id,
                title: i.title.clone(),
                unit: orgs
                    .iter()
                    .find(|o| o.id == i.org_id)
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                catalogue_item: item,
                catalogue_item_name: item_name,
                amount: i
                    .data
                    .get("approved_budget")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                publicity_start: date_of(&i.data, "approved_on"),
                publicity_end: publicity_end(i),
            });
        }
        Ok(out)
    }

    /// An objection of the public (no account): the fields are checked (limits on the
    /// byte length first), and it is stored only while the project is under publicity; any
    /// other project, or none, is NOT_FOUND.
    pub async fn submit_public_objection(
        &self,
        new: NewPublicObjection,
    ) -> ServiceResult<PublicObjection> {
        let values = check_all(&[
            ("name", &new.name, NAME_MAX_CHARS),
            ("contact", &new.contact, CONTACT_MAX_CHARS),
            ("reason", &new.reason, REASON_MAX_CHARS),
        ])?;
        let [name, contact, reason]: [String; 3] = values
            .try_into()
            .map_err(|_| ServiceError::NotFound("fields".into()))?;
        let states: Vec<String> = PUBLICITY_STATES.iter().map(ToString::to_string).collect();
        self.store
            .submit_objection(
                PublicObjection {
                    id: Uuid::now_v7(),
                    instance_id: new.instance_id,
                    name,
                    contact,
                    reason,
                    submitted_at: self.now(),
                    status: ObjectionStatus::Open,
                    resolution: None,
                    resolved_by: None,
                    resolved_at: None,
                },
                PROJECT_WORKFLOW,
                &states,
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound("project under publicity".into()))
    }

    /// Objections for managers and auditors: of one project or all, open only or all.
    pub async fn public_objections(
        &self,
        user: &User,
        instance_id: Option<Uuid>,
        open_only: bool,
    ) -> ServiceResult<Vec<PublicObjection>> {
        require(user, &[Role::Manager, Role::Auditor])?;
        Ok(self
            .store
            .objections(instance_id, open_only, OBJECTIONS_LIST_MAX)
            .await?)
    }

    /// The steps of an objection (managers and auditors).
    pub async fn public_objection_history(
        &self,
        user: &User,
        objection_id: Uuid,
    ) -> ServiceResult<Vec<ObjectionEvent>> {
        require(user, &[Role::Manager, Role::Auditor])?;
        Ok(self.store.objection_history(objection_id).await?)
    }

    /// A manager upholds or dismisses an open objection with a reason; the step is kept.
    pub async fn resolve_public_objection(
        &self,
        user: &User,
        objection_id: Uuid,
        outcome: ObjectionStatus,
        reason: &str,
    ) -> ServiceResult<PublicObjection> {
        require(user, &[Role::Manager])?;
        let [reason]: [String; 1] = check_all(&[("reason", reason, RESOLUTION_MAX_CHARS)])?
            .try_into()
            .map_err(|_| ServiceError::NotFound("reason".into()))?;
        if outcome == ObjectionStatus::Open {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "outcome",
                "INVALID_VALUE",
                "须为异议成立或不成立",
                "must be upheld or dismissed",
            )]));
        }
        let existing = self.store.get_objection(objection_id).await?;
        let resolved = self
            .store
            .resolve_objection(ResolveObjection {
                objection_id,
                outcome,
                reason,
                resolved_by: user.id,
                at: self.now(),
            })
            .await?;
        resolved.ok_or_else(|| {
            ServiceError::Refused(Box::new(
                Refusal::new(
                    RefusalReason::Rule(OBJECTION_ALREADY_RESOLVED),
                    "该异议已处理",
                    "the objection was resolved already",
                )
                .with_details(json!({ "objectionId": existing.id })),
            ))
        })
    }
}

/// Whether `event` continues approval and so waits until every public objection on the
/// project is resolved. The store counts the open objections inside the transition's
/// transaction, under the instance's lock (`TransitionRequest::refuse_while_objected`),
/// so one submitted just before the transition is never missed. Decided by the event
/// alone (the instance is read only inside the transaction): objections are stored only
/// for funded projects under publicity, so for any other instance the count is zero.
pub(crate) fn held_by_objections(event: &str) -> bool {
    BLOCKED_WHILE_OBJECTED.contains(&event)
}

/// The refusal of an event held by open objections (`OBJECTION_UNRESOLVED`,
/// `details.openObjections`).
pub(crate) fn objection_unresolved(open: i64) -> Refusal {
    Refusal::new(
        RefusalReason::Rule(OBJECTION_UNRESOLVED),
        format!("公示异议尚未处理完毕（{open} 件），不能继续立项"),
        format!("{open} public objection(s) not yet resolved: approval cannot continue"),
    )
    .with_details(json!({ "openObjections": open }))
}
