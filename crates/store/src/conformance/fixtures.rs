//! Shared fixtures of the conformance suite: one province's organisations and users, the
//! shipped workflow, transition helpers.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{Actor, Command, Snapshot, initial_schedule, plan_transition};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    Applied, Instance, InstanceFilter, NewInstance, NewOrganisation, NewOutboxMessage, NewUser,
    NotifyPref, OrgKind, Organisation, PageRequest, PlannedChange, Role, SortKey, SortOrder, Store,
    StoreError, TransitionRequest, User, UserPatch, Visibility,
};

pub(crate) const FUNDED_PROJECT: &str = include_str!("../../../../workflows/funded-project.toml");

/// The shipped funded-project workflow.
pub fn funded_project() -> Arc<CompiledWorkflow> {
    let outcome = grantflow_domain::load_str("funded-project.toml", FUNDED_PROJECT);
    Arc::new(
        outcome
            .workflow
            .expect("workflows/funded-project.toml loads without errors"),
    )
}

/// 2024-06-03 10:00 in Shanghai, plus `hours`.
pub fn t(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 3, 2, 0, 0).unwrap() + chrono::Duration::hours(hours)
}

/// Organisations and users of one province with two cities.
pub struct World {
    pub province: Organisation,
    pub city: Organisation,
    pub unit: Organisation,
    pub unit_b: Organisation,
    pub other_city: Organisation,
    pub other_unit: Organisation,
    pub applicant: User,
    /// Same unit, wants only the digest.
    pub applicant_digest: User,
    pub applicant_b: User,
    pub other_applicant: User,
    pub city_user: User,
    pub other_city_user: User,
    pub manager: User,
    pub expert: User,
    pub expert_b: User,
    pub admin: User,
}

pub(crate) async fn org(
    store: &dyn Store,
    name: &str,
    kind: OrgKind,
    parent: Option<&Organisation>,
) -> Organisation {
    store
        .create_org(NewOrganisation {
            name: name.into(),
            kind,
            parent_id: parent.map(|p| p.id),
        })
        .await
        .expect("create organisation")
}

pub(crate) fn new_user(username: &str, org: Option<&Organisation>, roles: &[Role]) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: format!("{username} 用户"),
        email: format!("{username}@example.org"),
        org_id: org.map(|o| o.id),
        roles: roles.to_vec(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${username}"),
        lang: grantflow_domain::Lang::ZhCn,
    }
}

pub(crate) async fn user(
    store: &dyn Store,
    username: &str,
    org: Option<&Organisation>,
    roles: &[Role],
) -> User {
    store
        .create_user(new_user(username, org, roles))
        .await
        .expect("create user")
}

pub async fn world(store: &dyn Store) -> World {
    let province = org(
        store,
        "广东省市场监督管理局（知识产权局）",
        OrgKind::Province,
        None,
    )
    .await;
    let city = org(
        store,
        "广州市市场监督管理局",
        OrgKind::City,
        Some(&province),
    )
    .await;
    let other_city = org(
        store,
        "深圳市市场监督管理局",
        OrgKind::City,
        Some(&province),
    )
    .await;
    let unit = org(store, "广州某知识产权服务中心", OrgKind::Unit, Some(&city)).await;
    let unit_b = org(store, "广州某大学", OrgKind::Unit, Some(&city)).await;
    let other_unit = org(store, "深圳某企业", OrgKind::Unit, Some(&other_city)).await;
    let applicant = user(store, "applicant", Some(&unit), &[Role::Applicant]).await;
    let applicant_digest = user(store, "applicant2", Some(&unit), &[Role::Applicant]).await;
    let applicant_digest = store
        .update_user(
            applicant_digest.id,
            UserPatch {
                notify_pref: Some(NotifyPref::DigestOnly),
                ..Default::default()
            },
        )
        .await
        .expect("set digest preference");
    let applicant_b = user(store, "applicant_b", Some(&unit_b), &[Role::Applicant]).await;
    let other_applicant = user(
        store,
        "other_applicant",
        Some(&other_unit),
        &[Role::Applicant],
    )
    .await;
    let city_user = user(store, "city", Some(&city), &[Role::City]).await;
    let other_city_user = user(store, "other_city", Some(&other_city), &[Role::City]).await;
    let manager = user(store, "manager", Some(&province), &[Role::Manager]).await;
    let expert = user(store, "expert", None, &[Role::Expert]).await;
    let expert_b = user(store, "expert_b", None, &[Role::Expert]).await;
    let admin = user(store, "admin", Some(&province), &[Role::Admin]).await;
    World {
        province,
        city,
        unit,
        unit_b,
        other_city,
        other_unit,
        applicant,
        applicant_digest,
        applicant_b,
        other_applicant,
        city_user,
        other_city_user,
        manager,
        expert,
        expert_b,
        admin,
    }
}

pub fn actor(user: &User, role: &str) -> Actor {
    Actor {
        id: user.id.to_string(),
        roles: vec![role.to_string()],
        org: user.org_id.map(|o| o.to_string()),
    }
}

/// A new funded-project application of `unit`, in `drafting` with its deadline timers
/// (closing date 2024-06-29).
pub async fn new_application(
    store: &dyn Store,
    wf: &CompiledWorkflow,
    unit: &Organisation,
    created_by: &User,
    title: &str,
    created_at: DateTime<Utc>,
) -> Instance {
    let data = json!({
        "call_id": "2024-call", "closing_date": "2024-06-29", "forward_by": "2024-06-29",
        "applicant_kind": "unit", "part": "retained_provincial"
    });
    let snapshot = Snapshot::initial(wf, data.clone());
    let (deadline, timers) = initial_schedule(wf, &snapshot, created_at, &WorkCalendar::builtin());
    store
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: wf.def.id.clone(),
            workflow_version: wf.def.version,
            state: snapshot.state.clone(),
            stage: "application".into(),
            data,
            parent_id: None,
            org_id: unit.id,
            title: title.into(),
            created_by: created_by.id,
            created_at,
            due_at: deadline.map(|d| d.due_at),
            timers,
        })
        .await
        .expect("create instance")
}

/// A valid `submit` input.
pub fn submit_input() -> Value {
    json!({
        "project_name": "专利导航服务能力提升",
        "budget": "300000",
        "indicators": [
            { "name": "专利导航报告", "category": "output_quantity", "target": 3 },
            { "name": "服务企业数量", "category": "effect_economic", "target": 20 },
            { "name": "服务企业满意度", "category": "satisfaction", "target": 90 }
        ],
        "application_files": [
            { "name": "申报书.pdf", "sha256": "ab".repeat(32), "size": 20480 }
        ]
    })
}

/// Everything one `fire` call needs besides the store.
pub struct Fire<'a> {
    pub wf: &'a CompiledWorkflow,
    pub instance_id: Uuid,
    pub expected_version: Option<i64>,
    pub actor: Actor,
    pub event: &'a str,
    pub input: Value,
    pub reason: Option<&'a str>,
    pub now: DateTime<Utc>,
    pub idempotency_key: Option<&'a str>,
    pub complete_timer: Option<(Uuid, i64)>,
    /// Money written in the transition's transaction (an approval's claim, changed lines).
    pub money: Option<crate::funding::MoneyEffects>,
    /// Refused while a public objection on the instance is open.
    pub refuse_while_objected: bool,
    /// Who asks (`None`: the scheduler, who sees every instance).
    pub requester: Option<crate::Requester>,
}

impl<'a> Fire<'a> {
    pub fn new(
        wf: &'a CompiledWorkflow,
        instance: &Instance,
        actor: Actor,
        event: &'a str,
        now: DateTime<Utc>,
    ) -> Self {
        Fire {
            wf,
            instance_id: instance.id,
            expected_version: Some(instance.version),
            actor,
            event,
            input: json!({}),
            reason: None,
            now,
            idempotency_key: None,
            complete_timer: None,
            money: None,
            refuse_while_objected: false,
            requester: None,
        }
    }

    /// Fired by a person who sees the instances of `scopes`.
    pub fn seen_by(mut self, scopes: Vec<crate::Visibility>) -> Self {
        self.requester = Some(crate::Requester { scopes });
        self
    }

    pub fn money(mut self, money: crate::funding::MoneyEffects) -> Self {
        self.money = Some(money);
        self
    }

    pub fn held_by_objections(mut self) -> Self {
        self.refuse_while_objected = true;
        self
    }

    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn key(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    pub fn expect(mut self, version: Option<i64>) -> Self {
        self.expected_version = version;
        self
    }

    pub async fn run(self, store: &dyn Store) -> Result<Applied, StoreError> {
        let command = Command {
            event: self.event.to_string(),
            input: self.input.clone(),
            reason: self.reason.map(str::to_string),
        };
        let calendar = WorkCalendar::builtin();
        let wf = self.wf;
        let actor = self.actor.clone();
        let now = self.now;
        let planner = move |inst: &Instance| {
            plan_transition(wf, &inst.snapshot(), &actor, &command, now, &calendar).map(|plan| {
                PlannedChange {
                    notification_context: json!({
                        "instance_title": inst.title,
                        "event": plan.event,
                    }),
                    plan,
                }
            })
        };
        let request_hash = format!(
            "{}|{}|{:?}|{:?}",
            self.event, self.input, self.reason, self.expected_version
        );
        store
            .apply_transition(TransitionRequest {
                instance_id: self.instance_id,
                expected_version: self.expected_version,
                idempotency_key: self.idempotency_key.map(str::to_string),
                request_hash,
                actor_id: self.actor.id.clone(),
                planner: &planner,
                complete_timer: self.complete_timer,
                money: self.money,
                refuse_while_objected: self.refuse_while_objected,
                requester: self.requester,
            })
            .await
    }
}

/// Fire an event that must succeed.
pub(crate) async fn ok(store: &dyn Store, fire: Fire<'_>) -> Instance {
    let event = fire.event.to_string();
    match fire.run(store).await {
        Ok(applied) => applied.instance,
        Err(e) => panic!("`{event}` should succeed, got {e:?}"),
    }
}

pub fn message(key: &str, at: DateTime<Utc>) -> NewOutboxMessage {
    NewOutboxMessage {
        idempotency_key: key.into(),
        recipient_user_id: None,
        to_address: "someone@example.org".into(),
        to_name: "某人".into(),
        template: "digest".into(),
        lang: grantflow_domain::Lang::ZhCn,
        context: json!({ "count": 3 }),
        instance_id: None,
        kind: "digest".into(),
        not_before: at,
    }
}

pub(crate) fn page(first: u32, sort: SortKey, order: SortOrder) -> PageRequest {
    PageRequest {
        first,
        after: None,
        sort,
        order,
        with_total: true,
    }
}

pub(crate) async fn all_ids(
    store: &dyn Store,
    visibility: &Visibility,
    filter: &InstanceFilter,
) -> Vec<Uuid> {
    let p = store
        .list_instances(
            visibility,
            filter,
            &page(500, SortKey::CreatedAt, SortOrder::Asc),
        )
        .await
        .expect("list instances");
    assert_eq!(
        p.total_count as usize,
        p.items.len(),
        "total_count counts the same rows"
    );
    p.items.into_iter().map(|(i, _)| i.id).collect()
}

pub(crate) fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}
