//! Application services shared by the GraphQL API and the scheduler: creating instances and
//! firing events through the one engine path (engine inside the store's transaction),
//! deadline extensions, visibility rules, the clock, and the live event feed.
//!
//! `Services` itself and its one engine path stay in this file (under 900 lines): creating
//! instances, firing events and timers, extending deadlines and migrating versions share
//! its private helpers; every capability's own methods live in their modules (`access`,
//! `programme/`, `review/`, `publicity`, …).

pub mod access;
pub mod clock;
mod error;
pub mod programme;
pub mod publicity;
pub mod redaction;
pub mod review;
pub mod work;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::calendar::{WorkCalendar, end_of_day};
use grantflow_domain::engine::{self, Actor, Command, EngineError, Snapshot};
use grantflow_domain::input::{FieldError, check_input};
use grantflow_domain::model::InputFieldDef;
use grantflow_domain::{CompiledWorkflow, Registry};
use grantflow_store::{
    Applied, ClaimedTimer, ExtendDeadline, Instance, NewInstance, PlannedChange, Requester, Store,
    StoreError, TransitionRequest, User,
};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use uuid::Uuid;

pub use access::{can_see, visibility_for};
pub use clock::{Clock, ManualClock, SystemClock};

/// A change to an instance, published to subscribers after it commits.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct InstanceEvent {
    pub instance_id: Uuid,
    pub workflow_id: String,
    pub version: i64,
    pub event: String,
    pub from_state: String,
    pub to_state: String,
    pub actor_id: String,
    pub at: DateTime<Utc>,
    pub org_id: Uuid,
    pub city_id: Option<Uuid>,
}

/// What the live feed carries.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A committed change, made by this process or (on PostgreSQL) announced by another.
    Instance(InstanceEvent),
    /// Changes may have been missed (the announcements between replicas were interrupted
    /// and are listened to again): subscribers re-read what they show.
    Resync,
}

/// An announcement between replicas: the event and the process that made it.
#[derive(Serialize, serde::Deserialize)]
struct Announcement {
    origin: Uuid,
    event: InstanceEvent,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(StoreError),
    #[error("you may not see or change this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A programme rule refused (no budget line, beyond the line, not approved, an
    /// import with bad rows …), with a stable reason code.
    #[error("{}", .0.message_en)]
    Refused(Box<programme::Refusal>),
}

/// A store error; a money rule's refusal becomes the programme refusal clients see.
impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Money(r) => Self::Refused(Box::new(programme::money_refusal(&r))),
            StoreError::ObjectionsOpen { open } => {
                Self::Refused(Box::new(publicity::objection_unresolved(open)))
            }
            other => Self::Store(other),
        }
    }
}

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        Self::Store(StoreError::Engine(e))
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Everything the API and the scheduler need.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub workflows: Arc<Registry>,
    pub calendar: Arc<WorkCalendar>,
    pub clock: Arc<dyn Clock>,
    /// Base URL of the web front end, for links in e-mails.
    pub public_url: Arc<str>,
    /// Where CPU-heavy work (imports, duplicate detection, exports) runs.
    pub work: Arc<work::WorkPool>,
    events: broadcast::Sender<LiveEvent>,
    /// This process, in announcements to the others (which skip their own).
    origin: Uuid,
}

/// Count a transition attempt in `grantflow_transitions_total{workflow, event, outcome}`.
/// The event is named only when the workflow defines it (clients choose the text), so the
/// series stay bounded by the loaded workflows. `wf` is the workflow the transition was
/// planned with; one refused before planning (a version conflict, a replay) is labelled
/// with the replayed instance's workflow or `(unknown)`; a missing or hidden instance is
/// not counted.
fn observe_transition(
    wf: Option<&CompiledWorkflow>,
    event: &str,
    result: &Result<Applied, StoreError>,
) {
    if matches!(result, Err(StoreError::NotFound { .. })) {
        return;
    }
    let (workflow, event) = match (wf, result) {
        (Some(wf), _) => (
            wf.def.id.clone(),
            if wf.def.transitions.iter().any(|t| t.event == event) {
                event.to_string()
            } else {
                "(unknown)".to_string()
            },
        ),
        (None, Ok(a)) => (a.instance.workflow_id.clone(), a.record.event.clone()),
        (None, Err(_)) => ("(unknown)".to_string(), "(unknown)".to_string()),
    };
    let outcome = match result {
        Ok(a) if a.replayed => "replayed",
        Ok(_) => "applied",
        Err(StoreError::Engine(_)) => "refused",
        Err(StoreError::Conflict { .. }) => "conflict",
        Err(StoreError::Unavailable(_)) => "unavailable",
        Err(_) => "error",
    };
    metrics::counter!(
        "grantflow_transitions_total",
        "workflow" => workflow,
        "event" => event,
        "outcome" => outcome,
    )
    .increment(1);
}

/// Who fires an event: a person, acting with their roles on the instance and seeing what
/// their roles show, or the scheduler, which sees every instance.
#[derive(Clone, Copy)]
enum Firer<'a> {
    User(&'a User),
    Scheduler,
}

impl<'a> Firer<'a> {
    fn actor_on(self, instance: &Instance) -> Actor {
        match self {
            Firer::User(user) => Services::actor_on(user, instance),
            Firer::Scheduler => Actor::scheduler(),
        }
    }

    fn actor_id(self) -> String {
        match self {
            Firer::User(user) => user.id.to_string(),
            Firer::Scheduler => Actor::scheduler().id,
        }
    }

    fn name(self) -> &'a str {
        match self {
            Firer::User(user) => &user.display_name,
            Firer::Scheduler => "系统定时任务 scheduler",
        }
    }

    fn requester(self) -> Option<Requester> {
        match self {
            Firer::User(user) => Some(Requester {
                scopes: access::scopes_for(user),
            }),
            Firer::Scheduler => None,
        }
    }
}

/// Whether firing `event` needs facts of other aggregates before the transaction, and so
/// the instance read first: a submission refused once its call is closed, and an event
/// that fixes funding (its claim names the call's catalogue category and city pool, an
/// approved change its budget lines). Every other event reads the instance only inside
/// its transaction.
fn reads_instance_first(event: &str) -> bool {
    programme::SUBMISSION_EVENTS.contains(&event) || programme::FUNDING_EVENTS.contains(&event)
}

/// Create an instance.
#[derive(Debug, Clone)]
pub struct CreateInstance {
    pub workflow_id: String,
    /// The unit it belongs to; applicants always create for their own unit.
    pub org_id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
    pub title: String,
    pub data: Value,
    /// The stored call an application or a demand belongs to (required for those
    /// workflows; the service fills the call's dates from it).
    pub call_id: Option<Uuid>,
    /// The catalogue item of the call an application is for.
    pub catalogue_item: Option<String>,
}

/// Fire an event.
#[derive(Debug, Clone)]
pub struct FireEvent {
    pub instance_id: Uuid,
    pub event: String,
    pub expected_version: i64,
    pub idempotency_key: Option<String>,
    pub input: Value,
    pub reason: Option<String>,
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        workflows: Arc<Registry>,
        calendar: Arc<WorkCalendar>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            store,
            workflows,
            calendar,
            clock,
            public_url: Arc::from("http://127.0.0.1:8080"),
            work: Arc::new(work::WorkPool::default()),
            events,
            origin: Uuid::new_v4(),
        }
    }

    /// Set the base URL used for links in e-mails.
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.public_url = Arc::from(url.trim_end_matches('/'));
        self
    }

    /// The link to an instance in e-mails.
    pub fn instance_link(&self, id: Uuid) -> String {
        format!("{}/instances/{id}", self.public_url)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Live instance events (after commit), of every replica on PostgreSQL.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    /// An announcement heard from the database (`grantflow serve`'s listener): another
    /// process's event goes to this process's subscribers; our own and unreadable ones
    /// are dropped.
    pub fn heard(&self, payload: &str) {
        match serde_json::from_str::<Announcement>(payload) {
            Ok(a) if a.origin != self.origin => {
                let _ = self.events.send(LiveEvent::Instance(a.event));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "an unreadable event announcement"),
        }
    }

    /// Tell subscribers that events may have been missed.
    pub fn resync(&self) {
        let _ = self.events.send(LiveEvent::Resync);
    }

    pub fn workflow_of(&self, instance: &Instance) -> ServiceResult<Arc<CompiledWorkflow>> {
        self.workflows
            .get(&instance.workflow_id, instance.workflow_version)
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "workflow {} version {}",
                    instance.workflow_id, instance.workflow_version
                ))
            })
    }

    pub fn actor_for(user: &User) -> Actor {
        Self::actor_with(user, |_| true)
    }

    /// `user` as the engine's actor, with the account roles `keep` holds for (the engine
    /// compares them with the workflow's role names).
    fn actor_with(user: &User, keep: impl Fn(grantflow_store::Role) -> bool) -> Actor {
        Actor {
            id: user.id.to_string(),
            roles: user
                .roles
                .iter()
                .filter(|r| keep(**r))
                .map(|r| r.as_str().to_string())
                .collect(),
            org: user.org_id.map(|o| o.to_string()),
        }
    }

    /// The actor `user` is on `instance`: one acts as the applicant only on one's own
    /// organisation's instances, and as the city bureau only on other organisations' in
    /// one's city (a city bureau never recommends or approves its own application).
    pub fn actor_on(user: &User, instance: &Instance) -> Actor {
        use grantflow_store::Role;
        let own = user.org_id == Some(instance.org_id);
        let city_of_it = user.org_id.is_some() && instance.city_id == user.org_id;
        Self::actor_with(user, |r| match r {
            Role::Applicant => own,
            Role::City => city_of_it && !own,
            _ => true,
        })
    }

    /// Save every loaded workflow definition (id, version, hash); a changed released
    /// version is refused by the store.
    pub async fn register_workflows(&self) -> ServiceResult<()> {
        for wf in self.workflows.all() {
            self.store
                .save_workflow(grantflow_store::WorkflowRecord {
                    workflow_id: wf.def.id.clone(),
                    version: wf.def.version,
                    hash: wf.hash.clone(),
                    definition: serde_json::to_value(&wf.def).unwrap_or(Value::Null),
                    created_at: self.now(),
                })
                .await?;
        }
        Ok(())
    }

    /// Start a new instance in the workflow's initial state, on its latest version.
    pub async fn create_instance(
        &self,
        user: &User,
        req: CreateInstance,
    ) -> ServiceResult<Instance> {
        let wf = self
            .workflows
            .latest(&req.workflow_id)
            .ok_or_else(|| ServiceError::NotFound(format!("workflow {}", req.workflow_id)))?;
        let is_manager = user.has_role(grantflow_store::Role::Manager);
        let org_id = match (req.org_id, user.org_id, is_manager) {
            (Some(org), _, true) => org,
            (Some(org), Some(own), false) if org == own => org,
            (Some(_), _, false) => return Err(ServiceError::Forbidden),
            (None, Some(own), _) => own,
            (None, None, _) => {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    "orgId",
                    "REQUIRED",
                    "必须指定所属单位",
                    "the organisation is required",
                )]));
            }
        };
        let initial = wf
            .def
            .initial_state()
            .ok_or_else(|| ServiceError::NotFound("initial state".into()))?;
        if !Self::actor_for(user).has_any_role(&initial.assignees) && !is_manager {
            return Err(ServiceError::Forbidden);
        }
        if let Some(parent) = req.parent_id {
            // A missing parent and one the user may not see answer alike: the answer must
            // not tell which instances exist.
            let parent = match self.store.get_instance(parent).await {
                Ok(p) => p,
                Err(StoreError::NotFound { .. }) => {
                    return Err(ServiceError::NotFound("parent instance".into()));
                }
                Err(e) => return Err(e.into()),
            };
            if !can_see(self.store.as_ref(), user, &parent).await? {
                return Err(ServiceError::NotFound("parent instance".into()));
            }
        }
        let mut data = self.check_initial_data(&wf, &req.data)?;
        if programme::is_call_bound(&wf.def.id) {
            let owned = self
                .call_bound_data(
                    &wf.def.id,
                    org_id,
                    req.call_id,
                    req.catalogue_item.as_deref(),
                    &req.data,
                )
                .await?;
            if let Value::Object(map) = &mut data {
                map.extend(owned);
            }
        }
        // Time limits, publicity days, pass mark and panel size are the call's.
        self.fill_call_rules(&wf, &mut data).await?;
        let title = req.title.trim().to_string();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "title",
                "INVALID_VALUE",
                "标题不能为空且不超过 200 字",
                "the title must be 1 to 200 characters",
            )]));
        }
        let now = self.now();
        let snapshot = Snapshot::initial(&wf, data);
        let (deadline, timers) = engine::initial_schedule(&wf, &snapshot, now, &self.calendar);
        let instance = self
            .store
            .create_instance(NewInstance {
                id: Uuid::now_v7(),
                workflow_id: wf.def.id.clone(),
                workflow_version: wf.def.version,
                state: initial.id.clone(),
                stage: initial.stage.clone(),
                data: snapshot.data,
                parent_id: req.parent_id,
                org_id,
                title,
                created_by: user.id,
                created_at: now,
                due_at: deadline.map(|d| d.due_at),
                timers,
            })
            .await?;
        Ok(instance)
    }

    /// Initial data is checked like an input whose every declared field is optional.
    fn check_initial_data(&self, wf: &CompiledWorkflow, data: &Value) -> ServiceResult<Value> {
        let declared: Vec<InputFieldDef> = wf
            .def
            .fields
            .keys()
            .map(|name| InputFieldDef {
                name: name.clone(),
                ty: None,
                required: false,
                title: None,
                options: vec![],
                max_length: None,
                min: None,
                max: None,
                transient: false,
            })
            .collect();
        let checked = check_input(&wf.def, &declared, data).map_err(ServiceError::Invalid)?;
        Ok(Value::Object(checked))
    }

    /// Fire an event as a user: the engine inside the store transaction, on the instance
    /// as locked there and only if the user may see it (else `NotFound`, as for a missing
    /// instance).
    pub async fn fire(&self, user: &User, req: FireEvent) -> ServiceResult<Applied> {
        let read_first = if reads_instance_first(&req.event) {
            let instance = self.store.get_instance(req.instance_id).await?;
            if !can_see(self.store.as_ref(), user, &instance).await? {
                // Do not reveal that the instance exists.
                return Err(ServiceError::NotFound("instance".into()));
            }
            self.check_call_open_for(&instance, &req.event).await?;
            Some(instance)
        } else {
            None
        };
        let applied = self
            .fire_as(Firer::User(user), read_first.as_ref(), req, None)
            .await?;
        // Boxed: the hook fires again (an approved change request moves its project).
        Box::pin(self.after_transition(user, &applied)).await;
        Ok(applied)
    }

    /// Fire a timeout (or named timer) event as the scheduler, consuming the timer.
    pub async fn fire_timer(&self, claimed: &ClaimedTimer) -> ServiceResult<Option<Applied>> {
        let Some(event) = claimed.timer.event.clone() else {
            return Ok(None);
        };
        let read_first = if reads_instance_first(&event) {
            Some(self.store.get_instance(claimed.timer.instance_id).await?)
        } else {
            None
        };
        let req = FireEvent {
            instance_id: claimed.timer.instance_id,
            event,
            // Not checked: the timer's transition applies to whatever version is current.
            expected_version: 0,
            idempotency_key: Some(format!("timer:{}", claimed.timer.id)),
            input: Value::Null,
            reason: None,
        };
        match self
            .fire_as(
                Firer::Scheduler,
                read_first.as_ref(),
                req,
                Some((claimed.timer.id, claimed.token)),
            )
            .await
        {
            Ok(applied) => Ok(Some(applied)),
            // An open public objection holds the publicity: the timeout is spent, and the
            // manager ends the publicity once every objection is resolved.
            Err(ServiceError::Refused(r))
                if r.reason.as_str() == publicity::OBJECTION_UNRESOLVED =>
            {
                tracing::info!(timer = %claimed.timer.id, reason = r.reason.as_str(), "timeout held by an open objection");
                Ok(None)
            }
            // The instance moved on (or the guard no longer holds): the timer is spent.
            Err(ServiceError::Store(StoreError::Engine(e))) => {
                tracing::info!(timer = %claimed.timer.id, error = %e, "timeout not applicable");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Run the engine inside the store's transaction, on the instance as locked there:
    /// its workflow, the firer's roles on it and the plan all come from that row.
    /// `read_first` is the instance as read before, for the events that need other
    /// aggregates' facts first ([`reads_instance_first`]).
    async fn fire_as(
        &self,
        firer: Firer<'_>,
        read_first: Option<&Instance>,
        req: FireEvent,
        complete_timer: Option<(Uuid, i64)>,
    ) -> ServiceResult<Applied> {
        let now = self.now();
        let command = Command {
            event: req.event.clone(),
            input: req.input.clone(),
            reason: req.reason.clone(),
        };
        let calendar = self.calendar.clone();
        // The workflow the (last) plan was made with, or the one the instance names when
        // it is not loaded.
        let planned_with: Mutex<Option<Result<Arc<CompiledWorkflow>, String>>> = Mutex::new(None);
        let planner = |current: &Instance| -> Result<PlannedChange, EngineError> {
            let Some(wf) = self
                .workflows
                .get(&current.workflow_id, current.workflow_version)
            else {
                *planned_with
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Err(format!(
                    "workflow {} version {}",
                    current.workflow_id, current.workflow_version
                )));
                // Replaced by `NotFound` below; an engine error spends a timer.
                return Err(EngineError::UndefinedState {
                    state: current.state.clone(),
                });
            };
            *planned_with
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Ok(wf.clone()));
            let actor = firer.actor_on(current);
            let plan = engine::plan_transition(
                &wf,
                &current.snapshot(),
                &actor,
                &command,
                now,
                &calendar,
            )?;
            let mut notification_context = notification_context(&wf, current, &plan);
            notification_context["actor"] = Value::from(firer.name());
            notification_context["link"] = Value::from(self.instance_link(current.id));
            Ok(PlannedChange {
                plan,
                notification_context,
            })
        };
        let money = match read_first {
            Some(instance) => self.money_effects(instance, &req.event, &req.input).await?,
            None => None,
        };
        let expected_version = if complete_timer.is_some() {
            None
        } else {
            Some(req.expected_version)
        };
        // The announcement to the other replicas is sent inside the transaction
        // (PostgreSQL), so that it cannot be lost between the commit and a crash.
        let announce = |applied: &Applied| self.announcement(applied);
        let result = self
            .store
            .apply_transition_announced(
                TransitionRequest {
                    instance_id: req.instance_id,
                    expected_version,
                    idempotency_key: req.idempotency_key.clone(),
                    request_hash: request_hash(&req),
                    actor_id: firer.actor_id(),
                    planner: &planner,
                    complete_timer,
                    money,
                    refuse_while_objected: publicity::held_by_objections(&req.event),
                    requester: firer.requester(),
                },
                &announce,
            )
            .await;
        let planned_with = planned_with
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(Err(missing)) = planned_with {
            return Err(ServiceError::NotFound(missing));
        }
        observe_transition(
            planned_with.as_ref().and_then(|w| w.as_deref().ok()),
            &req.event,
            &result,
        );
        let applied = result?;
        if !applied.replayed {
            tracing::info!(
                instance_id = %applied.instance.id,
                workflow = %applied.instance.workflow_id,
                event = %applied.record.event,
                from = %applied.record.from_state,
                to = %applied.record.to_state,
                version = applied.instance.version,
                "transition"
            );
            // Announced to the other replicas with the commit; this process's own.
            let _ = self
                .events
                .send(LiveEvent::Instance(Self::instance_event(&applied)));
        }
        Ok(applied)
    }

    fn instance_event(applied: &Applied) -> InstanceEvent {
        InstanceEvent {
            instance_id: applied.instance.id,
            workflow_id: applied.instance.workflow_id.clone(),
            version: applied.instance.version,
            event: applied.record.event.clone(),
            from_state: applied.record.from_state.clone(),
            to_state: applied.record.to_state.clone(),
            actor_id: applied.record.actor_id.clone(),
            at: applied.record.at,
            org_id: applied.instance.org_id,
            city_id: applied.instance.city_id,
        }
    }

    /// What the other replicas are told of a committed change (see [`Announcement`]).
    fn announcement(&self, applied: &Applied) -> Option<String> {
        serde_json::to_string(&Announcement {
            origin: self.origin,
            event: Self::instance_event(applied),
        })
        .ok()
    }

    /// To this process's subscribers, and announced to the other replicas (PostgreSQL).
    async fn publish(&self, applied: &Applied) {
        // This process's subscribers first (no subscriber is not an error).
        let _ = self
            .events
            .send(LiveEvent::Instance(Self::instance_event(applied)));
        if let Some(payload) = self.announcement(applied)
            && let Err(e) = self.store.announce(&payload).await
        {
            // The change is committed; other replicas' subscribers miss it (they resync
            // when their listener reconnects).
            tracing::warn!(error = %e, instance_id = %applied.instance.id, "cannot announce a transition");
        }
    }

    /// A manager moves the current state's deadline to the end of `new_due_date`, with a
    /// reason; pending reminders and the timeout are recomputed.
    pub async fn extend_deadline(
        &self,
        user: &User,
        instance_id: Uuid,
        expected_version: i64,
        new_due_date: NaiveDate,
        reason: &str,
    ) -> ServiceResult<Applied> {
        if !user.has_role(grantflow_store::Role::Manager) {
            return Err(ServiceError::Forbidden);
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "reason",
                "REQUIRED",
                "延期必须填写理由",
                "an extension needs a reason",
            )]));
        }
        grantflow_domain::dates::check_date(new_due_date)
            .map_err(|e| ServiceError::Invalid(vec![date_error("newDueDate", &e)]))?;
        let instance = self.store.get_instance(instance_id).await?;
        let wf = self.workflow_of(&instance)?;
        let now = self.now();
        let new_due_at = end_of_day(new_due_date);
        if new_due_at <= now {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "newDueDate",
                "IN_THE_PAST",
                "新的截止日期必须晚于当前时间",
                "the new due date must be in the future",
            )]));
        }
        let timers =
            engine::reschedule_deadline(&wf, &instance.snapshot(), new_due_at, now, &self.calendar);
        let applied = self
            .store
            .extend_deadline(ExtendDeadline {
                instance_id,
                expected_version,
                new_due_at,
                timers,
                actor_id: user.id.to_string(),
                actor_roles: user.roles.iter().map(|r| r.as_str().to_string()).collect(),
                reason: reason.to_string(),
                at: now,
            })
            .await?;
        self.publish(&applied).await;
        Ok(applied)
    }
}

/// What notification templates need to know about a transition.
pub fn notification_context(
    wf: &CompiledWorkflow,
    instance: &Instance,
    plan: &engine::TransitionPlan,
) -> Value {
    let def = &wf.def;
    let title_of = |state: &str| {
        def.state(state)
            .map(|s| s.title.clone())
            .unwrap_or_default()
    };
    let event_title = def
        .transitions
        .get(plan.transition_index)
        .map(|t| t.title.clone())
        .unwrap_or_default();
    // `project_name`, `event`, `occurred_at` and `reason` are what the `notification`
    // template shows; the rest is for other templates and for people reading the outbox.
    json!({
        "project_name": instance.title,
        "event": format!("{}（{}）", event_title.zh_cn, event_title.en),
        "occurred_at": plan.at,
        "instance_id": instance.id,
        "instance_title": instance.title,
        "workflow_title": def.title,
        "event_id": plan.event,
        "event_title": event_title,
        "from_state": plan.from,
        "from_title": title_of(&plan.from),
        "to_state": plan.to,
        "to_title": title_of(&plan.to),
        "reason": plan.reason,
        "at": plan.at,
        "due_at": plan.deadline.map(|d| d.due_at),
        // The deadline of the state being left: what a timeout notice says ran out.
        "previous_due_at": instance.due_at,
    })
}

/// A hash of what a request asks for, to tell a retry from a reused idempotency key.
pub fn request_hash(req: &FireEvent) -> String {
    let content = json!({
        "instance": req.instance_id,
        "event": req.event,
        "expected_version": req.expected_version,
        "input": req.input,
        "reason": req.reason,
    });
    hex::encode(Sha256::digest(
        grantflow_domain::canonical::to_string(&content).as_bytes(),
    ))
}

/// What happened (or would happen, in a dry run) to one instance moved to a new version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationOutcome {
    pub instance_id: Uuid,
    pub title: String,
    pub from_state: String,
    pub to_state: Option<String>,
    /// Why the instance cannot move (it stays on its version).
    pub refused: Option<String>,
}

impl Services {
    /// Move every instance of `workflow_id` on version `from` to version `to` along an
    /// explicit state mapping (identity for states whose id exists in both), validated by
    /// `grantflow_domain::migrate` first. Each instance moves in its own transaction and
    /// its history records the move. With `apply = false` nothing is written.
    #[allow(
        clippy::too_many_arguments,
        reason = "an operator command with that many knobs"
    )]
    pub async fn migrate_instances(
        &self,
        actor_id: &str,
        workflow_id: &str,
        from: u32,
        to: u32,
        mapping: &std::collections::BTreeMap<String, String>,
        reason: &str,
        apply: bool,
    ) -> ServiceResult<Vec<MigrationOutcome>> {
        let not_found =
            |v: u32| ServiceError::NotFound(format!("workflow {workflow_id} version {v}"));
        let from_wf = self
            .workflows
            .get(workflow_id, from)
            .ok_or_else(|| not_found(from))?;
        let to_wf = self
            .workflows
            .get(workflow_id, to)
            .ok_or_else(|| not_found(to))?;
        let plan = grantflow_domain::migrate::plan_migration(&from_wf, &to_wf, mapping).map_err(
            |errors| {
                ServiceError::Invalid(
                    errors
                        .iter()
                        .map(|e| {
                            FieldError::new(
                                "mapping",
                                "INVALID_MAPPING",
                                e.to_string(),
                                e.to_string(),
                            )
                        })
                        .collect(),
                )
            },
        )?;
        let now = self.now();
        let mut outcomes = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_instances(
                    &grantflow_store::Visibility::All,
                    &grantflow_store::InstanceFilter {
                        workflow_id: Some(workflow_id.to_string()),
                        include_final: true,
                        ..Default::default()
                    },
                    &grantflow_store::PageRequest {
                        first: 100,
                        after: after.clone(),
                        sort: grantflow_store::SortKey::CreatedAt,
                        order: grantflow_store::SortOrder::Asc,
                        with_total: true,
                    },
                )
                .await?;
            for (instance, _) in page
                .items
                .iter()
                .filter(|(i, _)| i.workflow_version == from)
            {
                outcomes.push(
                    self.migrate_one(instance, &plan, &to_wf, actor_id, reason, now, apply)
                        .await?,
                );
            }
            if !page.has_next_page {
                break;
            }
            after = page.items.last().map(|(_, c)| c.clone());
        }
        Ok(outcomes)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "internal step of migrate_instances"
    )]
    async fn migrate_one(
        &self,
        instance: &Instance,
        plan: &grantflow_domain::migrate::MigrationPlan,
        to_wf: &CompiledWorkflow,
        actor_id: &str,
        reason: &str,
        now: DateTime<Utc>,
        apply: bool,
    ) -> ServiceResult<MigrationOutcome> {
        let mut outcome = MigrationOutcome {
            instance_id: instance.id,
            title: instance.title.clone(),
            from_state: instance.state.clone(),
            to_state: None,
            refused: None,
        };
        let moved = match grantflow_domain::migrate::migrate_snapshot(plan, &instance.snapshot()) {
            Ok(s) => s,
            Err(e) => {
                outcome.refused = Some(e.to_string());
                return Ok(outcome);
            }
        };
        outcome.to_state = Some(moved.state.clone());
        let Some(target) = to_wf.def.state(&moved.state) else {
            outcome.refused = Some(format!("state `{}` is not in the new version", moved.state));
            return Ok(outcome);
        };
        // Keep the running deadline when the new state has one; start one otherwise.
        let (due_at, timers) = match moved.due_at {
            Some(due) => (
                Some(due),
                engine::reschedule_deadline(to_wf, &moved, due, now, &self.calendar),
            ),
            None => match grantflow_domain::schedule::deadline_for(
                target,
                now,
                &moved.data,
                &self.calendar,
            ) {
                Some(d) => (
                    Some(d.due_at),
                    grantflow_domain::schedule::deadline_timers(
                        to_wf,
                        target,
                        &d,
                        now,
                        &self.calendar,
                    ),
                ),
                None => (None, Vec::new()),
            },
        };
        if apply {
            self.store
                .migrate_instance(grantflow_store::MigrateInstance {
                    instance_id: instance.id,
                    expected_version: instance.version,
                    from_workflow_version: instance.workflow_version,
                    to_workflow_version: to_wf.def.version,
                    to_state: target.id.clone(),
                    to_stage: target.stage.clone(),
                    to_final: target.is_final,
                    due_at,
                    timers,
                    actor_id: actor_id.to_string(),
                    actor_roles: vec![grantflow_store::Role::Admin.as_str().to_string()],
                    reason: reason.to_string(),
                    at: now,
                })
                .await?;
        }
        Ok(outcome)
    }
}

/// A date outside `grantflow_domain::dates`' range (or malformed) as a field error.
pub fn date_error(field: &str, e: &grantflow_domain::dates::DateError) -> FieldError {
    FieldError::new(field, e.code(), e.message_zh(), e.message_en())
}
