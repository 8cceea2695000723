//! The conformance suite every backend passes (feature `conformance`).
//!
//! Each test is a `pub async fn(Arc<dyn Store>, &dyn Harness)` run on a fresh, migrated
//! database. A backend's `tests/conformance.rs` invokes [`conformance_suite!`] with a
//! factory `async fn() -> (Arc<dyn Store>, H)` where `H: Harness` also owns the database
//! (dropping it removes the database), which generates one `#[tokio::test]` per test.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{
    Actor, Command, EngineError, Snapshot, initial_schedule, plan_transition,
};
use grantflow_domain::schedule::TimerKind;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    Applied, DeliveryOutcome, ExtendDeadline, Instance, InstanceFilter, NewInstance,
    NewOrganisation, NewOutboxMessage, NewToken, NewUser, NotifyPref, OrgKind, Organisation,
    OutboxStatus, PageRequest, PlannedChange, Role, SortKey, SortOrder, Store, StoreError,
    TimerStatus, TransitionRequest, User, UserPatch, Visibility, WorkflowRecord, audit,
};

/// What a backend's test support provides besides the store.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Edit one history record behind the store's back (a raw `UPDATE history SET reason`,
    /// lifting whatever protects the table).
    async fn tamper_history(&self, instance_id: Uuid, seq: i64);
    /// A plain `UPDATE history …` through the backend's driver, as a careless tool would
    /// issue it: the number of rows changed, or the database's refusal.
    async fn raw_update_history(&self, instance_id: Uuid, seq: i64) -> Result<u64, String>;
}

/// Generate one `#[tokio::test]` per conformance test. `$factory` is an
/// `async fn() -> (Arc<dyn Store>, H)` with `H: Harness`; each test gets a fresh database.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            migrate_is_idempotent,
            orgs_users_and_roles,
            tokens,
            reset_tokens,
            workflow_definitions,
            create_instance_with_timers,
            transition_happy_path,
            conflict_names_current_version,
            idempotent_replay,
            engine_refusal_writes_nothing,
            engine_refusal_still_spends_the_timer,
            timers_replaced_on_leaving_a_state,
            timeout_transition_consumes_its_timer,
            notifications_reach_the_right_recipients,
            claim_due_timers_and_leases,
            concurrent_claims_never_overlap,
            outbox_claim_and_finish,
            enqueue_deduplicates_by_key,
            record_tick_once,
            list_filters,
            list_visibility,
            list_sorting_and_keyset_pagination,
            extend_deadline,
            migrate_instance_to_a_new_version,
            history_chain_verifies,
            race_fifty_writers,
            tamper_is_detected,
            history_is_append_only,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, harness) = $factory().await;
                $crate::conformance::$name(store, &harness).await;
            }
        )*
    };
}

// ------------------------------------------------------------------ fixtures

const FUNDED_PROJECT: &str = include_str!("../../../workflows/funded-project.toml");

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

async fn org(
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

fn new_user(username: &str, org: Option<&Organisation>, roles: &[Role]) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: format!("{username} 用户"),
        email: format!("{username}@example.org"),
        org_id: org.map(|o| o.id),
        roles: roles.to_vec(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${username}"),
        lang: "zh-CN".into(),
    }
}

async fn user(
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
    let data = json!({ "call_id": "2024-call", "closing_date": "2024-06-29" });
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
        }
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
            })
            .await
    }
}

/// Fire an event that must succeed.
async fn ok(store: &dyn Store, fire: Fire<'_>) -> Instance {
    let event = fire.event.to_string();
    match fire.run(store).await {
        Ok(applied) => applied.instance,
        Err(e) => panic!("`{event}` should succeed, got {e:?}"),
    }
}

fn message(key: &str, at: DateTime<Utc>) -> NewOutboxMessage {
    NewOutboxMessage {
        idempotency_key: key.into(),
        recipient_user_id: None,
        to_address: "someone@example.org".into(),
        to_name: "某人".into(),
        template: "digest".into(),
        lang: "zh-CN".into(),
        context: json!({ "count": 3 }),
        instance_id: None,
        kind: "digest".into(),
        not_before: at,
    }
}

fn page(first: u32, sort: SortKey, order: SortOrder) -> PageRequest {
    PageRequest {
        first,
        after: None,
        sort,
        order,
    }
}

async fn all_ids(store: &dyn Store, visibility: &Visibility, filter: &InstanceFilter) -> Vec<Uuid> {
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

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

// ------------------------------------------------------------------ tests

pub async fn migrate_is_idempotent(store: Arc<dyn Store>, _h: &dyn Harness) {
    store
        .migrate()
        .await
        .expect("migrating again changes nothing");
    store.ping().await.expect("ping");
    assert!(matches!(store.backend(), "sqlite" | "postgres"));
}

pub async fn orgs_users_and_roles(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    // Organisations: hierarchy, lookups, duplicates.
    assert_eq!(s.get_org(w.unit.id).await.unwrap(), w.unit);
    assert_eq!(w.unit.parent_id, Some(w.city.id));
    let mut got = s
        .get_orgs(&[w.city.id, w.unit.id, Uuid::now_v7()])
        .await
        .unwrap();
    got.sort_by_key(|o| o.id);
    let mut want = vec![w.city.clone(), w.unit.clone()];
    want.sort_by_key(|o| o.id);
    assert_eq!(got, want, "unknown ids are left out");
    let all = s.list_orgs().await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(
        all[0].kind,
        OrgKind::Province,
        "the province is listed first"
    );
    let dup = s
        .create_org(NewOrganisation {
            name: w.unit.name.clone(),
            kind: OrgKind::Unit,
            parent_id: Some(w.city.id),
        })
        .await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Duplicate {
                what: "organisation",
                ..
            })
        ),
        "{dup:?}"
    );
    let orphan = s
        .create_org(NewOrganisation {
            name: "无上级单位".into(),
            kind: OrgKind::Unit,
            parent_id: Some(Uuid::now_v7()),
        })
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );
    assert!(matches!(
        s.get_org(Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Users: lookups by id, name and e-mail (case-insensitive), with roles.
    assert_eq!(s.get_user(w.applicant.id).await.unwrap(), w.applicant);
    assert_eq!(w.applicant.roles, vec![Role::Applicant]);
    assert!(w.applicant.active);
    assert_eq!(w.applicant.notify_pref, NotifyPref::Immediate);
    let (found, hash) = s
        .find_user_by_username("manager")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found, w.manager);
    assert!(
        hash.ends_with("$manager"),
        "the stored password hash comes back"
    );
    assert!(s.find_user_by_username("nobody").await.unwrap().is_none());
    assert_eq!(
        s.find_user_by_email("MANAGER@Example.org").await.unwrap(),
        Some(w.manager.clone())
    );
    let some = s.get_users(&[w.expert.id, w.admin.id]).await.unwrap();
    assert_eq!(some.len(), 2);
    assert_eq!(s.list_users().await.unwrap().len(), 10);
    assert!(matches!(
        s.get_user(Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Duplicates: username, and e-mail whatever its case.
    let mut same_name = new_user("applicant", Some(&w.unit), &[]);
    same_name.email = "another@example.org".into();
    let e = s.create_user(same_name).await;
    assert!(
        matches!(&e, Err(StoreError::Duplicate { what: "username", value }) if value == "applicant"),
        "{e:?}"
    );
    let mut same_mail = new_user("someone_else", None, &[]);
    same_mail.email = "Applicant@EXAMPLE.org".into();
    let e = s.create_user(same_mail).await;
    assert!(
        matches!(e, Err(StoreError::Duplicate { what: "email", .. })),
        "{e:?}"
    );

    // Patch: roles replaced, other fields kept.
    let patched = s
        .update_user(
            w.expert.id,
            UserPatch {
                display_name: Some("王专家".into()),
                roles: Some(vec![Role::Expert, Role::Auditor]),
                lang: Some("en".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.display_name, "王专家");
    assert_eq!(patched.roles, vec![Role::Expert, Role::Auditor]);
    assert_eq!(patched.lang, "en");
    assert_eq!(patched.email, w.expert.email);
    assert_eq!(s.get_user(w.expert.id).await.unwrap(), patched);
    let e = s
        .update_user(
            w.expert.id,
            UserPatch {
                email: Some(w.admin.email.clone()),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(e, Err(StoreError::Duplicate { what: "email", .. })),
        "{e:?}"
    );

    // Role queries: active users only, optionally within organisations.
    let applicants = s.users_with_role(Role::Applicant, None).await.unwrap();
    assert_eq!(applicants.len(), 4);
    let in_unit = s
        .users_with_role(Role::Applicant, Some(&[w.unit.id]))
        .await
        .unwrap();
    let names: HashSet<_> = in_unit.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, HashSet::from(["applicant", "applicant2"]));
    s.update_user(
        w.applicant_digest.id,
        UserPatch {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let in_unit = s
        .users_with_role(Role::Applicant, Some(&[w.unit.id]))
        .await
        .unwrap();
    assert_eq!(in_unit.len(), 1, "deactivated users are left out");
    assert!(
        s.users_with_role(Role::Applicant, Some(&[]))
            .await
            .unwrap()
            .is_empty()
    );

    s.set_password_hash(w.applicant.id, "new-hash")
        .await
        .unwrap();
    let (_, hash) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(hash, "new-hash");
    assert!(matches!(
        s.set_password_hash(Uuid::now_v7(), "x").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn tokens(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let now = Utc::now();
    let session = s
        .create_token(NewToken {
            user_id: w.applicant.id,
            token_hash: "a".repeat(64),
            kind: "session".into(),
            name: None,
            scopes: vec![],
            expires_at: Some(now + chrono::Duration::hours(8)),
        })
        .await
        .unwrap();
    let api = s
        .create_token(NewToken {
            user_id: w.applicant.id,
            token_hash: "b".repeat(64),
            kind: "api".into(),
            name: Some("reporting".into()),
            scopes: vec!["instances:read".into()],
            expires_at: None,
        })
        .await
        .unwrap();
    let found = s
        .find_token(&"b".repeat(64))
        .await
        .unwrap()
        .expect("found by hash");
    assert_eq!(found, api);
    assert_eq!(found.scopes, vec!["instances:read".to_string()]);
    assert!(s.find_token(&"c".repeat(64)).await.unwrap().is_none());
    let dup = s
        .create_token(NewToken {
            user_id: w.manager.id,
            token_hash: "a".repeat(64),
            kind: "session".into(),
            name: None,
            scopes: vec![],
            expires_at: None,
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
    assert_eq!(s.list_tokens(w.applicant.id).await.unwrap().len(), 2);

    s.revoke_token(session.id, now).await.unwrap();
    let revoked = s.find_token(&"a".repeat(64)).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(matches!(
        s.revoke_token(Uuid::now_v7(), now).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.revoke_user_tokens(w.applicant.id, now).await.unwrap(),
        1,
        "only the live one"
    );
    assert!(
        s.list_tokens(w.applicant.id)
            .await
            .unwrap()
            .iter()
            .all(|t| t.revoked_at.is_some())
    );
    assert_eq!(s.revoke_user_tokens(w.applicant.id, now).await.unwrap(), 0);
}

pub async fn reset_tokens(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let now = Utc::now();
    for hash in ["s1", "s2"] {
        s.create_token(NewToken {
            user_id: w.applicant.id,
            token_hash: hash.into(),
            kind: "session".into(),
            name: None,
            scopes: vec![],
            expires_at: None,
        })
        .await
        .unwrap();
    }
    s.create_reset_token(
        w.applicant.id,
        "expired",
        now - chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    s.create_reset_token(w.applicant.id, "good", now + chrono::Duration::hours(1))
        .await
        .unwrap();
    for bad in ["unknown", "expired"] {
        assert!(matches!(
            s.check_reset_token(bad, now).await,
            Err(StoreError::InvalidToken)
        ));
    }
    assert_eq!(
        s.check_reset_token("good", now).await.unwrap(),
        w.applicant.id,
        "checking does not consume"
    );
    assert_eq!(
        s.check_reset_token("good", now).await.unwrap(),
        w.applicant.id
    );
    assert!(matches!(
        s.consume_reset_token("unknown", now, "h").await,
        Err(StoreError::InvalidToken)
    ));
    assert!(matches!(
        s.consume_reset_token("expired", now, "h").await,
        Err(StoreError::InvalidToken)
    ));
    let (_, before) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_ne!(
        before, "new-password-hash",
        "a refused token changes nothing"
    );
    let user = s
        .consume_reset_token("good", now, "new-password-hash")
        .await
        .unwrap();
    assert_eq!(user, w.applicant.id);
    let (_, after) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(after, "new-password-hash");
    let tokens = s.list_tokens(w.applicant.id).await.unwrap();
    assert!(
        tokens.iter().all(|t| t.revoked_at.is_some()),
        "every session ends with a reset"
    );
    assert!(
        matches!(
            s.consume_reset_token("good", now, "again").await,
            Err(StoreError::InvalidToken)
        ),
        "a reset token is single use"
    );
    let (_, still) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(still, "new-password-hash");
    assert!(matches!(
        s.check_reset_token("good", now).await,
        Err(StoreError::InvalidToken)
    ));
    // A password change keeps the session that made it and ends every other one.
    let mut ids = Vec::new();
    for hash in ["c1", "c2", "c3"] {
        let t = s
            .create_token(NewToken {
                user_id: w.applicant.id,
                token_hash: hash.into(),
                kind: "session".into(),
                name: None,
                scopes: vec![],
                expires_at: None,
            })
            .await
            .unwrap();
        ids.push(t.id);
    }
    let revoked = s
        .change_password(w.applicant.id, "changed-hash", ids[0], now)
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    let (_, changed) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(changed, "changed-hash");
    for t in s.list_tokens(w.applicant.id).await.unwrap() {
        if ids.contains(&t.id) {
            assert_eq!(t.revoked_at.is_none(), t.id == ids[0], "{:?}", t.id);
        }
    }
}

pub async fn workflow_definitions(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let wf = funded_project();
    let record = WorkflowRecord {
        workflow_id: wf.def.id.clone(),
        version: wf.def.version,
        hash: wf.hash.clone(),
        definition: serde_json::to_value(&wf.def).unwrap(),
        created_at: t(0),
    };
    s.save_workflow(record.clone()).await.unwrap();
    s.save_workflow(record.clone())
        .await
        .expect("the same content again is fine");
    let changed = s
        .save_workflow(WorkflowRecord {
            hash: "f".repeat(64),
            ..record.clone()
        })
        .await;
    match changed {
        Err(StoreError::DefinitionChanged {
            workflow_id,
            version,
            stored,
        }) => {
            assert_eq!(workflow_id, "funded-project");
            assert_eq!(version, wf.def.version);
            assert_eq!(stored, wf.hash);
        }
        other => panic!("a changed released version is refused, got {other:?}"),
    }
    s.save_workflow(WorkflowRecord {
        version: 2,
        hash: "f".repeat(64),
        ..record.clone()
    })
    .await
    .expect("a new version is fine");
    let list = s.list_workflows().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], record, "the definition comes back as stored");
}

pub async fn create_instance_with_timers(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "专利导航项目", t(0)).await;
    assert_eq!(inst.version, 0);
    assert_eq!(inst.state, "drafting");
    assert_eq!(
        inst.city_id,
        Some(w.city.id),
        "a unit's instances belong to its city"
    );
    assert_eq!(inst.last_hash, grantflow_domain::audit::GENESIS_HASH);
    assert_eq!(
        inst.due_at,
        Some(Utc.with_ymd_and_hms(2024, 6, 29, 16, 0, 0).unwrap())
    );
    assert_eq!(
        s.get_instance(inst.id).await.unwrap(),
        inst,
        "read back as created"
    );
    assert_eq!(
        s.get_instances(&[inst.id]).await.unwrap(),
        vec![inst.clone()]
    );
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let keys: Vec<_> = timers.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "reminder:7d",
            "reminder:3d",
            "reminder:1d",
            "due",
            "timeout"
        ]
    );
    assert!(
        timers
            .iter()
            .all(|t| t.status == TimerStatus::Pending && t.state_entry == 0)
    );
    let timeout = timers.iter().find(|t| t.key == "timeout").unwrap();
    assert_eq!(timeout.kind, TimerKind::Timeout);
    assert_eq!(timeout.event.as_deref(), Some("application_closed"));
    assert_eq!(s.pending_timer_count().await.unwrap(), 5);
    assert_eq!(s.next_timer_at().await.unwrap(), Some(timers[0].fire_at));
    assert!(s.history(inst.id).await.unwrap().is_empty());
    assert!(matches!(
        s.get_instance(Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));

    // A city's own instance belongs to that city; the province's to none.
    let by_city = new_application(s, &wf, &w.city, &w.city_user, "市局项目", t(0)).await;
    assert_eq!(by_city.city_id, Some(w.city.id));
    let by_province = new_application(s, &wf, &w.province, &w.manager, "省局项目", t(0)).await;
    assert_eq!(by_province.city_id, None);
    // Due-soon listing for digests: non-final instances due by then.
    let due = s
        .instances_due_before(Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap())
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    assert!(s.instances_due_before(t(0)).await.unwrap().is_empty());
}

/// Walk one application from drafting to execution through the real workflow.
pub async fn transition_happy_path(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "专利导航项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    let city = actor(&w.city_user, "city");
    let manager = actor(&w.manager, "manager");

    let inst = ok(
        s,
        Fire::new(&wf, &inst, applicant.clone(), "submit", t(1)).input(submit_input()),
    )
    .await;
    assert_eq!((inst.state.as_str(), inst.version), ("city_review", 1));
    assert_eq!(
        inst.data["budget"], "300000.00",
        "the engine's normalised data is stored"
    );
    let inst = ok(
        s,
        Fire::new(&wf, &inst, city, "recommend", t(2)).input(json!({"city_opinion": "同意推荐"})),
    )
    .await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "pass_formal_check", t(3)),
    )
    .await;
    assert_eq!(inst.stage, "expert_review");
    // The review result guards read is stored with the instance.
    s.set_review_result(inst.id, json!({ "count": 3, "total": 78.5 }))
        .await
        .unwrap();
    let inst = s.get_instance(inst.id).await.unwrap();
    assert_eq!(inst.review["total"], 78.5);
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "conclude_review", t(4)),
    )
    .await;
    assert_eq!(inst.state, "decision");
    // 先有预算再有执行: approval needs a budget line (the guard reads `budget`).
    s.add_budget_line(crate::programme::BudgetLine {
        id: Uuid::now_v7(),
        instance_id: inst.id,
        year: 2024,
        subject: "项目经费".into(),
        amount: grantflow_domain::Money::from_yuan(250_000).unwrap(),
        source: "省级财政专项资金".into(),
        created_by: w.manager.id,
        created_at: t(4),
    })
    .await
    .unwrap();
    let inst = s.get_instance(inst.id).await.unwrap();
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "approve", t(5)).input(json!({
            "approved_budget": "250000",
            "budget_line_id": "2024-IP-017",
            "targets_approved": true
        })),
    )
    .await;
    assert_eq!(inst.state, "publicity");
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "publicity_ended", t(6)),
    )
    .await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, applicant, "submit_task_book", t(7)).input(json!({
            "task_book": { "name": "任务书.pdf", "sha256": "cd".repeat(32), "size": 1024 },
            "milestones": "2024年12月完成中期，2025年6月验收",
            "execution_end": "2025-06-30"
        })),
    )
    .await;
    let inst = ok(s, Fire::new(&wf, &inst, manager, "sign_task_book", t(8))).await;
    assert_eq!(
        (inst.state.as_str(), inst.stage.as_str(), inst.version),
        ("execution", "execution", 8)
    );
    assert_eq!(
        inst.due_at,
        Some(Utc.with_ymd_and_hms(2025, 6, 30, 16, 0, 0).unwrap())
    );
    assert_eq!(
        s.get_instance(inst.id).await.unwrap(),
        inst,
        "what apply returns is what is stored"
    );

    let history = s.history(inst.id).await.unwrap();
    let events: Vec<_> = history.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "submit",
            "recommend",
            "pass_formal_check",
            "conclude_review",
            "approve",
            "publicity_ended",
            "submit_task_book",
            "sign_task_book"
        ]
    );
    assert_eq!(history[0].seq, 1);
    assert_eq!(history[0].from_state, "drafting");
    assert_eq!(history[0].to_state, "city_review");
    assert_eq!(history[0].at, t(1));
    assert_eq!(history[0].input["budget"], "300000.00");
    assert_eq!(history[7].hash, inst.last_hash);
    grantflow_domain::audit::verify_chain(&history).expect("the chain read back verifies");
    let report = audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");

    // Execution timers belong to the last state entry; everything earlier is cancelled.
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    for t in &timers {
        if t.state_entry == 8 {
            assert_eq!(t.status, TimerStatus::Pending, "{t:?}");
            assert_eq!(t.state, "execution");
        } else {
            assert_eq!(t.status, TimerStatus::Cancelled, "{t:?}");
        }
    }
    assert!(
        timers
            .iter()
            .any(|t| t.state_entry == 8 && t.key == "escalation:0")
    );
}

pub async fn conflict_names_current_version(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    ok(
        s,
        Fire::new(&wf, &inst, applicant.clone(), "submit", t(1)).input(submit_input()),
    )
    .await;
    let stale = Fire::new(&wf, &inst, applicant, "withdraw", t(2))
        .run(s)
        .await;
    match stale {
        Err(StoreError::Conflict {
            current_version,
            expected_version,
        }) => assert_eq!((current_version, expected_version), (1, 0)),
        other => panic!("a stale version is refused with the current one, got {other:?}"),
    }
    assert_eq!(s.get_instance(inst.id).await.unwrap().state, "city_review");
    assert_eq!(s.history(inst.id).await.unwrap().len(), 1);
    let missing = Fire {
        instance_id: Uuid::now_v7(),
        ..Fire::new(
            &wf,
            &inst,
            actor(&w.applicant, "applicant"),
            "withdraw",
            t(2),
        )
    }
    .run(s)
    .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn idempotent_replay(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    let first = Fire::new(&wf, &inst, applicant.clone(), "submit", t(1))
        .input(submit_input())
        .key("req-1")
        .run(s)
        .await
        .unwrap();
    assert!(!first.replayed);
    let outbox_before = s.list_outbox(None, Some(inst.id), 100).await.unwrap().len();
    // A retry of the same request (the client never saw the answer) returns the first
    // result, even though the instance has moved on.
    let again = Fire::new(&wf, &inst, applicant.clone(), "submit", t(9))
        .input(submit_input())
        .key("req-1")
        .run(s)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.instance, first.instance);
    assert_eq!(again.record, first.record);
    assert_eq!(
        s.history(inst.id).await.unwrap().len(),
        1,
        "nothing was applied twice"
    );
    assert_eq!(
        s.list_outbox(None, Some(inst.id), 100).await.unwrap().len(),
        outbox_before
    );
    // The same key for a different request is a client bug.
    let reused = Fire::new(&wf, &inst, applicant, "withdraw", t(2))
        .key("req-1")
        .run(s)
        .await;
    assert!(
        matches!(&reused, Err(StoreError::IdempotencyMismatch { key }) if key == "req-1"),
        "{reused:?}"
    );
    // Keys are scoped by actor: another user's `req-1` is a different key.
    let city = ok(
        s,
        Fire::new(
            &wf,
            &first.instance,
            actor(&w.city_user, "city"),
            "recommend",
            t(3),
        )
        .key("req-1"),
    )
    .await;
    assert_eq!(city.version, 2);
    assert_eq!(s.history(inst.id).await.unwrap().len(), 2);
}

pub async fn engine_refusal_writes_nothing(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let timers_before = s.timers_for_instance(inst.id).await.unwrap();
    // A manager may not submit for the unit.
    let refused = Fire::new(&wf, &inst, actor(&w.manager, "manager"), "submit", t(1))
        .input(submit_input())
        .key("k")
        .run(s)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Engine(EngineError::RoleNotAllowed { .. }))
        ),
        "{refused:?}"
    );
    // Missing required input.
    let refused = Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
        .key("k2")
        .run(s)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Engine(EngineError::InvalidInput { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(s.get_instance(inst.id).await.unwrap(), inst);
    assert!(s.history(inst.id).await.unwrap().is_empty());
    assert_eq!(s.timers_for_instance(inst.id).await.unwrap(), timers_before);
    assert!(s.list_outbox(None, None, 100).await.unwrap().is_empty());
    // The refused request did not consume its idempotency key.
    let applied = Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
        .input(submit_input())
        .key("k2")
        .run(s)
        .await
        .unwrap();
    assert!(!applied.replayed);
}

pub async fn engine_refusal_still_spends_the_timer(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let timeout = s
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.key == "timeout")
        .unwrap();
    let claimed = s
        .claim_due_timers(timeout.fire_at, 10, Duration::from_secs(60))
        .await
        .unwrap();
    let claim = claimed
        .iter()
        .find(|c| c.timer.id == timeout.id)
        .expect("the timeout is due");
    // The planner refuses (here: the wrong role), as it does when a person moved the
    // instance first.
    let refused = Fire {
        complete_timer: Some((claim.timer.id, claim.token)),
        ..Fire::new(
            &wf,
            &inst,
            actor(&w.applicant, "applicant"),
            "application_closed",
            timeout.fire_at,
        )
        .expect(None)
    }
    .run(s)
    .await;
    assert!(matches!(refused, Err(StoreError::Engine(_))), "{refused:?}");
    assert!(
        s.history(inst.id).await.unwrap().is_empty(),
        "nothing of the transition is written"
    );
    let after = s.timers_for_instance(inst.id).await.unwrap();
    let spent = after.iter().find(|t| t.id == timeout.id).unwrap();
    assert_eq!(
        spent.status,
        TimerStatus::Done,
        "the timer does not fire again"
    );
    assert!(spent.fired_at.is_some());
    let reclaim = s
        .claim_due_timers(
            timeout.fire_at + chrono::Duration::hours(1),
            10,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(reclaim.iter().all(|c| c.timer.id != timeout.id));
}

pub async fn timers_replaced_on_leaving_a_state(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let drafting: Vec<_> = timers.iter().filter(|t| t.state_entry == 0).collect();
    let review: Vec<_> = timers.iter().filter(|t| t.state_entry == 1).collect();
    assert_eq!(drafting.len(), 5);
    assert!(
        drafting.iter().all(|t| t.status == TimerStatus::Cancelled),
        "{drafting:?}"
    );
    let keys: HashSet<_> = review.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        HashSet::from([
            "reminder:2wd",
            "reminder:1wd",
            "due",
            "overdue:1",
            "overdue:2",
            "overdue:3",
            "escalation:0"
        ])
    );
    assert!(
        review
            .iter()
            .all(|t| t.status == TimerStatus::Pending && t.state == "city_review")
    );
    let escalation = review.iter().find(|t| t.key == "escalation:0").unwrap();
    assert_eq!(escalation.notify, vec!["manager".to_string()]);
    assert_eq!(escalation.due_at, inst.due_at);
    assert_eq!(s.pending_timer_count().await.unwrap(), 7);
    // Returned to drafting: the review timers go, the drafting deadline comes back.
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.city_user, "city"), "city_return", t(2))
            .reason("预算明细不全"),
    )
    .await;
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    assert!(
        timers
            .iter()
            .filter(|t| t.state_entry == 1)
            .all(|t| t.status == TimerStatus::Cancelled)
    );
    let back: Vec<_> = timers.iter().filter(|t| t.state_entry == 2).collect();
    assert_eq!(back.len(), 5);
    assert!(
        back.iter()
            .all(|t| t.status == TimerStatus::Pending && t.state == "drafting")
    );
}

pub async fn timeout_transition_consumes_its_timer(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let due_at = inst.due_at.unwrap();
    let claimed = s
        .claim_due_timers(due_at, 10, Duration::from_secs(60))
        .await
        .unwrap();
    // Everything in the drafting ladder is due by then.
    assert_eq!(claimed.len(), 5);
    let timeout = claimed
        .iter()
        .find(|c| c.timer.kind == TimerKind::Timeout)
        .unwrap();
    let applied = Fire {
        complete_timer: Some((timeout.timer.id, timeout.token)),
        ..Fire::new(
            &wf,
            &inst,
            grantflow_domain::engine::Actor::scheduler(),
            "application_closed",
            due_at,
        )
        .expect(None)
    }
    .run(s)
    .await
    .unwrap();
    assert_eq!(applied.instance.state, "not_submitted");
    assert!(applied.instance.is_final);
    assert_eq!(applied.record.actor_id, "scheduler");
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let spent = timers.iter().find(|t| t.id == timeout.timer.id).unwrap();
    assert_eq!(spent.status, TimerStatus::Done);
    assert_eq!(spent.fired_at, Some(due_at));
    assert!(
        timers
            .iter()
            .filter(|t| t.id != timeout.timer.id)
            .all(|t| t.status == TimerStatus::Cancelled),
        "the other claimed reminders of the state are cancelled: {timers:?}"
    );
    // The reminder claims held by another scheduler can no longer complete.
    let reminder = claimed
        .iter()
        .find(|c| c.timer.kind == TimerKind::Reminder)
        .unwrap();
    assert!(
        !s.complete_timer(reminder.timer.id, reminder.token, vec![], due_at)
            .await
            .unwrap()
    );
    assert_eq!(s.pending_timer_count().await.unwrap(), 0);
    assert_eq!(s.next_timer_at().await.unwrap(), None);
}

pub async fn notifications_reach_the_right_recipients(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "专利导航项目", t(0)).await;
    // `submit` notifies the city bureau of the unit's city only.
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let out = s.list_outbox(None, Some(inst.id), 100).await.unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    let m = &out[0];
    assert_eq!(m.recipient_user_id, Some(w.city_user.id));
    assert_eq!(m.to_address, w.city_user.email);
    assert_eq!(m.to_name, w.city_user.display_name);
    assert_eq!(m.template, "notification");
    assert_eq!(m.lang, "zh-CN");
    assert_eq!(m.status, OutboxStatus::Pending);
    assert_eq!(m.kind, "notification");
    assert_eq!(m.next_attempt_at, t(1));
    assert_eq!(m.context["instance_title"], "专利导航项目");
    assert_eq!(
        m.context["recipient_name"],
        w.city_user.display_name.as_str()
    );
    assert_eq!(m.context["lang"], "zh-CN");
    assert_eq!(
        m.idempotency_key,
        crate::notification_key(inst.id, 1, "notification", w.city_user.id)
    );
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.city_user, "city"), "recommend", t(2)),
    )
    .await;
    // `reject` notifies the unit's applicants and the city: not the digest-only applicant,
    // not another unit's applicant, not another city.
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.manager, "manager"), "reject", t(3))
            .reason("不符合申报条件"),
    )
    .await;
    let v3: Vec<_> = s
        .list_outbox(None, Some(inst.id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.idempotency_key.contains(&format!(":{}:", inst.version)))
        .collect();
    let to: HashSet<_> = v3.iter().map(|m| m.recipient_user_id.unwrap()).collect();
    assert_eq!(to, HashSet::from([w.applicant.id, w.city_user.id]));
    // Expert recipients are the assigned experts.
    s.assign_expert(inst.id, w.expert.id).await.unwrap();
    s.assign_expert(inst.id, w.expert.id)
        .await
        .expect("assigning twice is harmless");
    assert!(s.is_assigned_expert(inst.id, w.expert.id).await.unwrap());
    assert!(!s.is_assigned_expert(inst.id, w.expert_b.id).await.unwrap());
    let unknown = Uuid::now_v7();
    assert_eq!(
        s.assigned_instances(w.expert.id, &[unknown, inst.id, inst.id])
            .await
            .unwrap(),
        vec![inst.id],
        "the assigned ones among the ids, each once"
    );
    assert!(
        s.assigned_instances(w.expert_b.id, &[inst.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.assigned_instances(w.expert.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let r = s
        .recipients(&inst, &["expert".into(), "admin".into(), "manager".into()])
        .await
        .unwrap();
    let ids: HashSet<_> = r.iter().map(|u| u.id).collect();
    assert_eq!(ids, HashSet::from([w.expert.id, w.admin.id, w.manager.id]));
    let r = s.recipients(&inst, &["applicant".into()]).await.unwrap();
    let ids: HashSet<_> = r.iter().map(|u| u.id).collect();
    assert_eq!(
        ids,
        HashSet::from([w.applicant.id, w.applicant_digest.id]),
        "recipients() does not filter by preference"
    );
    assert!(
        s.recipients(&inst, &["scheduler".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let _ = (&w.other_applicant, &w.other_city_user, &w.applicant_b);
}

pub async fn claim_due_timers_and_leases(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let first = &timers[0]; // reminder:7d
    let lease = Duration::from_secs(300);
    assert!(
        s.claim_due_timers(first.fire_at - chrono::Duration::seconds(1), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let c1 = s.claim_due_timers(first.fire_at, 10, lease).await.unwrap();
    assert_eq!(c1.len(), 1, "only what is due");
    assert_eq!(c1[0].timer.id, first.id);
    assert_eq!(c1[0].timer.status, TimerStatus::Claimed);
    assert!(
        s.claim_due_timers(first.fire_at, 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "held by the lease"
    );
    // The first claimer stalls; after its lease another one takes over with a new token.
    let later = first.fire_at + chrono::Duration::seconds(301);
    let c2 = s.claim_due_timers(later, 10, lease).await.unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].timer.id, first.id);
    assert!(c2[0].token > c1[0].token, "a new fencing token");
    let msg = message("reminder-1", later);
    assert!(
        !s.complete_timer(first.id, c1[0].token, vec![msg.clone()], later)
            .await
            .unwrap(),
        "a stale token is refused"
    );
    assert!(
        s.list_outbox(None, None, 10).await.unwrap().is_empty(),
        "and enqueues nothing"
    );
    assert!(
        s.complete_timer(first.id, c2[0].token, vec![msg], later)
            .await
            .unwrap()
    );
    assert_eq!(s.list_outbox(None, None, 10).await.unwrap().len(), 1);
    assert!(
        !s.complete_timer(first.id, c2[0].token, vec![], later)
            .await
            .unwrap(),
        "done once"
    );
    let done = s
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == first.id)
        .unwrap();
    assert_eq!(done.status, TimerStatus::Done);
    assert_eq!(done.fired_at, Some(later));
    // The limit is respected, earliest first.
    let end = inst.due_at.unwrap() + chrono::Duration::days(1);
    let some = s.claim_due_timers(end, 2, lease).await.unwrap();
    assert_eq!(some.len(), 2);
    assert_eq!(some[0].timer.key, "reminder:3d");
    assert_eq!(some[1].timer.key, "reminder:1d");
    assert_eq!(s.claim_due_timers(end, 10, lease).await.unwrap().len(), 2);
}

/// Several schedulers claiming at once: every due timer and message is claimed exactly
/// once between them.
pub async fn concurrent_claims_never_overlap(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let wf = funded_project();
    for k in 0..6 {
        new_application(
            store.as_ref(),
            &wf,
            &w.unit,
            &w.applicant,
            &format!("项目 {k}"),
            t(0),
        )
        .await;
    }
    let messages: Vec<_> = (0..30).map(|k| message(&format!("m{k}"), t(0))).collect();
    store.enqueue(messages).await.unwrap();
    // Everything of the drafting ladders is due by the closing day's end: 6 × 5 timers.
    let at = Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut timers = Vec::new();
            let mut messages = Vec::new();
            loop {
                let t = store
                    .claim_due_timers(at, 3, Duration::from_secs(600))
                    .await
                    .unwrap();
                let m = store
                    .claim_outbox(at, 3, Duration::from_secs(600))
                    .await
                    .unwrap();
                if t.is_empty() && m.is_empty() {
                    break;
                }
                timers.extend(t.into_iter().map(|c| c.timer.id));
                messages.extend(m.into_iter().map(|c| c.message.id));
            }
            (timers, messages)
        }));
    }
    let mut timers = Vec::new();
    let mut messages = Vec::new();
    for task in futures::future::join_all(tasks).await {
        let (t, m) = task.expect("claimer");
        timers.extend(t);
        messages.extend(m);
    }
    let distinct: HashSet<_> = timers.iter().collect();
    assert_eq!(
        (timers.len(), distinct.len()),
        (30, 30),
        "each timer claimed once"
    );
    let distinct: HashSet<_> = messages.iter().collect();
    assert_eq!(
        (messages.len(), distinct.len()),
        (30, 30),
        "each message claimed once"
    );
}

pub async fn outbox_claim_and_finish(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let now = t(0);
    let lease = Duration::from_secs(60);
    let n = s
        .enqueue(vec![
            message("a", now),
            message("b", now),
            message("later", now + chrono::Duration::hours(1)),
        ])
        .await
        .unwrap();
    assert_eq!(n, 3);
    let claimed = s.claim_outbox(now, 10, lease).await.unwrap();
    let keys: Vec<_> = claimed
        .iter()
        .map(|c| c.message.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), 2, "only messages due now: {keys:?}");
    assert!(
        claimed
            .iter()
            .all(|c| c.message.status == OutboxStatus::Sending && c.message.attempts == 1)
    );
    assert!(
        s.claim_outbox(now, 10, lease).await.unwrap().is_empty(),
        "held by the lease"
    );
    let (a, b) = (&claimed[0], &claimed[1]);
    assert!(
        s.finish_delivery(a.message.id, a.token, DeliveryOutcome::Sent, now)
            .await
            .unwrap()
    );
    assert!(
        !s.finish_delivery(a.message.id, a.token, DeliveryOutcome::Sent, now)
            .await
            .unwrap(),
        "finished once"
    );
    let retry_at = now + chrono::Duration::minutes(10);
    assert!(
        s.finish_delivery(
            b.message.id,
            b.token,
            DeliveryOutcome::Retry {
                next_attempt_at: retry_at,
                error: "421 try later".into()
            },
            now,
        )
        .await
        .unwrap()
    );
    let sent = s
        .list_outbox(Some(OutboxStatus::Sent), None, 10)
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].sent_at, Some(now));
    let pending = s
        .list_outbox(Some(OutboxStatus::Pending), None, 10)
        .await
        .unwrap();
    let retried = pending.iter().find(|m| m.id == b.message.id).unwrap();
    assert_eq!(retried.next_attempt_at, retry_at);
    assert_eq!(retried.last_error.as_deref(), Some("421 try later"));
    assert!(
        s.claim_outbox(now + chrono::Duration::minutes(5), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.claim_outbox(retry_at, 10, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message.attempts, 2);
    // A sender that stalls past its lease loses the message to the next one.
    let stolen = s
        .claim_outbox(retry_at + chrono::Duration::seconds(61), 10, lease)
        .await
        .unwrap();
    assert_eq!(stolen.len(), 1);
    assert!(stolen[0].token > again[0].token);
    assert!(
        !s.finish_delivery(
            again[0].message.id,
            again[0].token,
            DeliveryOutcome::Sent,
            retry_at
        )
        .await
        .unwrap()
    );
    assert!(
        s.finish_delivery(
            stolen[0].message.id,
            stolen[0].token,
            DeliveryOutcome::Dead {
                error: "550 no such user".into()
            },
            retry_at
        )
        .await
        .unwrap()
    );
    let dead = s
        .list_outbox(Some(OutboxStatus::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(dead[0].attempts, 3);
    assert!(
        s.claim_outbox(now + chrono::Duration::days(1), 10, lease)
            .await
            .unwrap()
            .iter()
            .all(|c| c.message.idempotency_key == "later")
    );
}

pub async fn enqueue_deduplicates_by_key(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let now = t(0);
    assert_eq!(
        s.enqueue(vec![message("x", now), message("y", now)])
            .await
            .unwrap(),
        2
    );
    let mut changed = message("x", now);
    changed.to_address = "other@example.org".into();
    assert_eq!(
        s.enqueue(vec![changed, message("z", now)]).await.unwrap(),
        1
    );
    let all = s.list_outbox(None, None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    let x = all.iter().find(|m| m.idempotency_key == "x").unwrap();
    assert_eq!(
        x.to_address, "someone@example.org",
        "the first message is kept"
    );
    assert_eq!(x.context, json!({ "count": 3 }));
    assert_eq!(
        s.list_outbox(None, None, 2).await.unwrap().len(),
        2,
        "limit"
    );
}

pub async fn record_tick_once(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let tick = t(0);
    assert_eq!(s.last_tick("digest").await.unwrap(), None);
    assert!(
        s.record_tick("digest", tick, vec![message("digest:1", tick)])
            .await
            .unwrap()
    );
    assert!(
        !s.record_tick("digest", tick, vec![message("digest:1b", tick)])
            .await
            .unwrap(),
        "another process ran it"
    );
    assert_eq!(
        s.list_outbox(None, None, 10).await.unwrap().len(),
        1,
        "its messages are not enqueued"
    );
    assert!(
        s.record_tick("digest", tick + chrono::Duration::days(1), vec![])
            .await
            .unwrap()
    );
    assert!(
        s.record_tick("escalations", tick, vec![]).await.unwrap(),
        "ticks are per schedule"
    );
    assert_eq!(
        s.last_tick("digest").await.unwrap(),
        Some(tick + chrono::Duration::days(1))
    );
}

pub async fn list_filters(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let alpha = new_application(s, &wf, &w.unit, &w.applicant, "Alpha 专利导航", t(0)).await;
    let beta = new_application(s, &wf, &w.unit_b, &w.applicant_b, "beta 商标品牌", t(1)).await;
    let gamma = new_application(
        s,
        &wf,
        &w.other_unit,
        &w.other_applicant,
        "gamma 100%_done",
        t(2),
    )
    .await;
    let beta = ok(
        s,
        Fire::new(
            &wf,
            &beta,
            actor(&w.applicant_b, "applicant"),
            "submit",
            t(3),
        )
        .input(submit_input()),
    )
    .await;
    let gamma = ok(
        s,
        Fire::new(
            &wf,
            &gamma,
            actor(&w.other_applicant, "applicant"),
            "withdraw",
            t(4),
        ),
    )
    .await;
    let child = s
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "change-request".into(),
            workflow_version: 1,
            state: "requested".into(),
            stage: "change".into(),
            data: json!({ "change": "延期三个月" }),
            parent_id: Some(alpha.id),
            org_id: w.unit.id,
            title: "变更申请".into(),
            created_by: w.applicant.id,
            created_at: t(5),
            due_at: Some(t(10)),
            timers: vec![],
        })
        .await
        .unwrap();
    let all = Visibility::All;
    let f = InstanceFilter::default();
    assert_eq!(
        sorted(all_ids(s, &all, &f).await),
        sorted(vec![alpha.id, beta.id, child.id]),
        "final ones are left out by default"
    );
    let with_final = InstanceFilter {
        include_final: true,
        ..Default::default()
    };
    assert_eq!(all_ids(s, &all, &with_final).await.len(), 4);
    let q = |f: InstanceFilter| InstanceFilter {
        include_final: true,
        ..f
    };
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                workflow_id: Some("change-request".into()),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert_eq!(
        sorted(
            all_ids(
                s,
                &all,
                &q(InstanceFilter {
                    states: vec!["city_review".into(), "withdrawn".into()],
                    ..Default::default()
                })
            )
            .await
        ),
        sorted(vec![beta.id, gamma.id])
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                stage: Some("closed".into()),
                ..Default::default()
            })
        )
        .await,
        vec![gamma.id]
    );
    assert_eq!(
        sorted(
            all_ids(
                s,
                &all,
                &q(InstanceFilter {
                    org_id: Some(w.unit.id),
                    ..Default::default()
                })
            )
            .await
        ),
        sorted(vec![alpha.id, child.id])
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                parent_id: Some(alpha.id),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    // Overdue at t(11): the child's deadline t(10) has passed; gamma is final.
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                overdue_at: Some(t(11)),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                overdue_at: Some(t(10)),
                ..Default::default()
            })
        )
        .await
        .is_empty(),
        "due at t(10) is not overdue at t(10)"
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                due_before: Some(t(10)),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert_eq!(
        sorted(
            all_ids(
                s,
                &all,
                &q(InstanceFilter {
                    due_after: Some(t(11)),
                    ..Default::default()
                })
            )
            .await
        ),
        sorted(vec![alpha.id, beta.id]),
        "gamma has no deadline once withdrawn"
    );
    // Text: case-insensitive in the title, also in the data; LIKE wildcards are literal.
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("ALPHA".into()),
                ..Default::default()
            })
        )
        .await,
        vec![alpha.id]
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("延期".into()),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("100%_".into()),
                ..Default::default()
            })
        )
        .await,
        vec![gamma.id]
    );
    assert!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("1%0".into()),
                ..Default::default()
            })
        )
        .await
        .is_empty()
    );
    // Filters combine.
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                org_id: Some(w.unit.id),
                workflow_id: Some("funded-project".into()),
                ..Default::default()
            })
        )
        .await,
        vec![alpha.id]
    );
}

pub async fn list_visibility(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let a = new_application(s, &wf, &w.unit, &w.applicant, "a", t(0)).await;
    let b = new_application(s, &wf, &w.unit_b, &w.applicant_b, "b", t(1)).await;
    let c = new_application(s, &wf, &w.other_unit, &w.other_applicant, "c", t(2)).await;
    s.assign_expert(b.id, w.expert.id).await.unwrap();
    s.assign_expert(c.id, w.expert.id).await.unwrap();
    s.assign_expert(a.id, w.expert_b.id).await.unwrap();
    let f = InstanceFilter::default();
    assert_eq!(
        sorted(all_ids(s, &Visibility::All, &f).await),
        sorted(vec![a.id, b.id, c.id])
    );
    assert_eq!(
        all_ids(s, &Visibility::Org(w.unit.id), &f).await,
        vec![a.id],
        "an applicant sees its own unit only"
    );
    assert_eq!(
        sorted(all_ids(s, &Visibility::City(w.city.id), &f).await),
        sorted(vec![a.id, b.id]),
        "a city sees its units"
    );
    assert_eq!(
        all_ids(s, &Visibility::City(w.other_city.id), &f).await,
        vec![c.id]
    );
    assert_eq!(
        sorted(all_ids(s, &Visibility::AssignedExpert(w.expert.id), &f).await),
        sorted(vec![b.id, c.id])
    );
    assert_eq!(
        all_ids(s, &Visibility::AssignedExpert(w.admin.id), &f).await,
        Vec::<Uuid>::new()
    );
    let nothing = s
        .list_instances(
            &Visibility::Nothing,
            &f,
            &page(10, SortKey::CreatedAt, SortOrder::Asc),
        )
        .await
        .unwrap();
    assert!(nothing.items.is_empty());
    assert_eq!(nothing.total_count, 0);
    assert!(!nothing.has_next_page);
    // Visibility and filters combine: an applicant filtering on another unit gets nothing.
    let other = InstanceFilter {
        org_id: Some(w.other_unit.id),
        ..Default::default()
    };
    assert!(
        all_ids(s, &Visibility::Org(w.unit.id), &other)
            .await
            .is_empty()
    );
    let _ = &w.province;
}

pub async fn list_sorting_and_keyset_pagination(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let mut made = Vec::new();
    for i in 0..23i64 {
        // Repeated titles and creation times, so that the id tie-break matters; some
        // instances have no deadline.
        let title = format!("project {:02}", i % 7);
        let inst = s
            .create_instance(NewInstance {
                id: Uuid::now_v7(),
                workflow_id: wf.def.id.clone(),
                workflow_version: wf.def.version,
                state: "drafting".into(),
                stage: "application".into(),
                data: json!({}),
                parent_id: None,
                org_id: w.unit.id,
                title,
                created_by: w.applicant.id,
                created_at: t(i % 5),
                due_at: if i % 4 == 0 {
                    None
                } else {
                    Some(t(100 + i % 6))
                },
                timers: vec![],
            })
            .await
            .unwrap();
        made.push(inst);
    }
    for sort in [
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
        SortKey::DueAt,
        SortKey::Title,
    ] {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let key = |i: &Instance| -> Option<String> {
                match sort {
                    SortKey::CreatedAt => Some(i.created_at.to_rfc3339()),
                    SortKey::UpdatedAt => Some(i.updated_at.to_rfc3339()),
                    SortKey::DueAt => i.due_at.map(|d| d.to_rfc3339()),
                    SortKey::Title => Some(i.title.clone()),
                }
            };
            let mut expected = made.clone();
            expected.sort_by(|a, b| {
                let (ka, kb) = (key(a), key(b));
                // Rows without a key come last in either direction.
                match (ka, kb) {
                    (None, None) => match order {
                        SortOrder::Asc => a.id.cmp(&b.id),
                        SortOrder::Desc => b.id.cmp(&a.id),
                    },
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => match order {
                        SortOrder::Asc => x.cmp(&y).then(a.id.cmp(&b.id)),
                        SortOrder::Desc => y.cmp(&x).then(b.id.cmp(&a.id)),
                    },
                }
            });
            let expected: Vec<Uuid> = expected.iter().map(|i| i.id).collect();
            let mut got = Vec::new();
            let mut request = page(5, sort, order);
            let mut pages = 0;
            loop {
                let p = s
                    .list_instances(&Visibility::All, &InstanceFilter::default(), &request)
                    .await
                    .unwrap();
                assert_eq!(p.total_count, 23);
                pages += 1;
                assert!(p.items.len() <= 5);
                got.extend(p.items.iter().map(|(i, _)| i.id));
                if !p.has_next_page {
                    break;
                }
                request.after = Some(
                    p.items
                        .last()
                        .expect("a page before the end is not empty")
                        .1
                        .clone(),
                );
                assert!(pages < 10, "pagination ends");
            }
            assert_eq!(pages, 5, "{sort:?} {order:?}");
            assert_eq!(
                got, expected,
                "{sort:?} {order:?}: every row once, in order"
            );
        }
    }
    // A page of one reports whether more follow.
    let p = s
        .list_instances(
            &Visibility::All,
            &InstanceFilter::default(),
            &page(23, SortKey::CreatedAt, SortOrder::Desc),
        )
        .await
        .unwrap();
    assert_eq!(p.items.len(), 23);
    assert!(!p.has_next_page);
}

/// Moving an instance to another workflow version is one audited event: the version
/// and state change, the old timers are cancelled, the new ones inserted, the chain holds.
pub async fn migrate_instance_to_a_new_version(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "迁移项目", t(0)).await;
    let old_timers = s.timers_for_instance(inst.id).await.unwrap();
    assert!(!old_timers.is_empty());
    let new_due = Utc.with_ymd_and_hms(2024, 7, 1, 16, 0, 0).unwrap();
    let timers = grantflow_domain::engine::reschedule_deadline(
        &wf,
        &inst.snapshot(),
        new_due,
        t(1),
        &WorkCalendar::builtin(),
    );
    let request = crate::MigrateInstance {
        instance_id: inst.id,
        expected_version: 0,
        from_workflow_version: 1,
        to_workflow_version: 2,
        to_state: "drafting".into(),
        to_stage: "application".into(),
        to_final: false,
        due_at: Some(new_due),
        timers: timers.clone(),
        actor_id: "operator".into(),
        actor_roles: vec!["admin".into()],
        reason: "2025 版流程".into(),
        at: t(1),
    };
    let wrong_version = s
        .migrate_instance(crate::MigrateInstance {
            from_workflow_version: 7,
            ..request.clone()
        })
        .await;
    assert!(
        matches!(wrong_version, Err(StoreError::Invalid(_))),
        "{wrong_version:?}"
    );
    let stale = s
        .migrate_instance(crate::MigrateInstance {
            expected_version: 5,
            ..request.clone()
        })
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                current_version: 0,
                ..
            })
        ),
        "{stale:?}"
    );
    let applied = s.migrate_instance(request).await.unwrap();
    assert_eq!(applied.instance.workflow_version, 2);
    assert_eq!(applied.instance.version, 1);
    assert_eq!(applied.record.event, "migrate_version");
    assert_eq!(applied.record.input["to_version"], 2);
    assert_eq!(s.get_instance(inst.id).await.unwrap(), applied.instance);
    let all = s.timers_for_instance(inst.id).await.unwrap();
    let pending: Vec<_> = all
        .iter()
        .filter(|t| t.status == TimerStatus::Pending)
        .collect();
    assert_eq!(pending.len(), timers.len());
    assert!(pending.iter().all(|t| t.state_entry == 1));
    assert_eq!(
        all.iter()
            .filter(|t| t.status == TimerStatus::Cancelled)
            .count(),
        old_timers.len()
    );
    let report = crate::audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");
}

pub async fn extend_deadline(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let new_due = Utc.with_ymd_and_hms(2024, 7, 5, 16, 0, 0).unwrap();
    let timers = grantflow_domain::engine::reschedule_deadline(
        &wf,
        &inst.snapshot(),
        new_due,
        t(1),
        &WorkCalendar::builtin(),
    );
    assert!(!timers.is_empty());
    let request = ExtendDeadline {
        instance_id: inst.id,
        expected_version: 0,
        new_due_at: new_due,
        timers: timers.clone(),
        actor_id: w.manager.id.to_string(),
        actor_roles: vec!["manager".into()],
        reason: "系统故障顺延".into(),
        at: t(1),
    };
    let stale = s
        .extend_deadline(ExtendDeadline {
            expected_version: 3,
            ..request.clone()
        })
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                current_version: 0,
                expected_version: 3
            })
        ),
        "{stale:?}"
    );
    let applied = s.extend_deadline(request).await.unwrap();
    assert_eq!(applied.instance.version, 1);
    assert_eq!(applied.instance.due_at, Some(new_due));
    assert_eq!(applied.instance.state, "drafting");
    assert_eq!(applied.record.event, "extend_deadline");
    assert_eq!(applied.record.reason.as_deref(), Some("系统故障顺延"));
    assert_eq!(s.get_instance(inst.id).await.unwrap(), applied.instance);
    let all = s.timers_for_instance(inst.id).await.unwrap();
    assert!(
        all.iter()
            .filter(|t| t.state_entry == 0)
            .all(|t| t.status == TimerStatus::Cancelled)
    );
    let fresh: Vec<_> = all
        .iter()
        .filter(|t| t.status == TimerStatus::Pending)
        .collect();
    assert_eq!(fresh.len(), timers.len());
    assert!(fresh.iter().all(|t| t.due_at == Some(new_due)));
    // The applicant can still submit before the new deadline (after the old one).
    let late = Utc.with_ymd_and_hms(2024, 7, 1, 2, 0, 0).unwrap();
    ok(
        s,
        Fire::new(
            &wf,
            &applied.instance,
            actor(&w.applicant, "applicant"),
            "submit",
            late,
        )
        .input(submit_input()),
    )
    .await;
    let report = audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");
}

pub async fn history_chain_verifies(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let empty = audit::verify_all(s).await.unwrap();
    assert!(empty.is_ok());
    assert_eq!(empty.instances_checked, 0);
    for k in 0..3 {
        let inst = new_application(s, &wf, &w.unit, &w.applicant, &format!("项目 {k}"), t(0)).await;
        let inst = ok(
            s,
            Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
                .input(submit_input()),
        )
        .await;
        if k > 0 {
            // Non-ASCII reasons and input survive the round trip byte for byte.
            ok(
                s,
                Fire::new(&wf, &inst, actor(&w.city_user, "city"), "city_return", t(2))
                    .reason("请补充「绩效目标」✓"),
            )
            .await;
        }
    }
    let report = audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.instances_checked, 3);
    assert_eq!(report.records_checked, 5);
}

pub async fn race_fifty_writers(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let wf = funded_project();
    let inst = new_application(store.as_ref(), &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    let mut tasks = Vec::new();
    for k in 0..50 {
        let store = store.clone();
        let wf = wf.clone();
        let inst = inst.clone();
        let applicant = applicant.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("race-{k}");
            Fire::new(&wf, &inst, applicant, "submit", t(1))
                .input(submit_input())
                .key(&key)
                .run(store.as_ref())
                .await
        }));
    }
    let mut applied = 0;
    let mut conflicts = 0;
    for task in futures::future::join_all(tasks).await {
        match task.expect("task") {
            Ok(a) => {
                applied += 1;
                assert_eq!(a.instance.version, 1);
            }
            Err(StoreError::Conflict {
                current_version: 1,
                expected_version: 0,
            }) => conflicts += 1,
            Err(e) => panic!("each writer either wins or sees a conflict, got {e:?}"),
        }
    }
    assert_eq!((applied, conflicts), (1, 49));
    assert_eq!(store.history(inst.id).await.unwrap().len(), 1);
    assert_eq!(store.get_instance(inst.id).await.unwrap().version, 1);
    let city_timers = store
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.state_entry == 1)
        .count();
    assert_eq!(city_timers, 7, "the new state's timers are scheduled once");
    assert_eq!(
        store
            .list_outbox(None, Some(inst.id), 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn tamper_is_detected(store: Arc<dyn Store>, h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let clean = new_application(s, &wf, &w.unit, &w.applicant, "未改动", t(0)).await;
    ok(
        s,
        Fire::new(
            &wf,
            &clean,
            actor(&w.applicant, "applicant"),
            "submit",
            t(1),
        )
        .input(submit_input()),
    )
    .await;
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "被篡改", t(0)).await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.city_user, "city"), "city_return", t(2)).reason("材料不全"),
    )
    .await;
    ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(3))
            .input(submit_input()),
    )
    .await;
    assert!(audit::verify_all(s).await.unwrap().is_ok());
    h.tamper_history(inst.id, 2).await;
    let report = audit::verify_all(s).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(
        report.failures.len(),
        1,
        "only the tampered instance: {report}"
    );
    let f = report.first_failure().unwrap();
    assert_eq!((f.instance_id, f.seq), (inst.id, 2), "{report}");
    assert!(f.what.contains("edited"), "{f}");
    assert!(report.to_string().contains(&inst.id.to_string()));
}

pub async fn history_is_append_only(store: Arc<dyn Store>, h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let refused = h.raw_update_history(inst.id, 1).await;
    assert!(
        matches!(&refused, Err(msg) if msg.contains("append-only")),
        "the database refuses edits to the history: {refused:?}"
    );
    assert!(audit::verify_all(s).await.unwrap().is_ok());
}
