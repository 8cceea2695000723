//! Instances as GraphQL objects: state, data, history, timers, messages and the
//! transitions the viewer may fire.

use super::*;

pub struct InstanceGql(pub Instance);

#[derive(SimpleObject)]
pub struct StateRef {
    pub id: String,
    pub title: I18nText,
}

#[derive(SimpleObject)]
#[graphql(name = "HistoryEntry")]
pub struct HistoryEntryGql {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    pub event: String,
    pub from_state: String,
    pub to_state: String,
    pub input: Json<serde_json::Value>,
    pub reason: Option<String>,
    pub hash: String,
    pub prev_hash: String,
}

/// The result of checking one instance's hash chain (`grantflow audit verify` for one
/// instance).
#[derive(SimpleObject)]
#[graphql(name = "HistoryVerification")]
pub struct HistoryVerificationGql {
    /// Every record's hash recomputes, each links to the one before, there are as many
    /// records as transitions and the instance's last hash is the last record's.
    pub ok: bool,
    pub records_checked: i64,
    /// The first record that is wrong, when not ok.
    pub failed_seq: Option<i64>,
    /// What is wrong, when not ok (English, as the CLI prints it).
    pub problem: Option<String>,
}

impl From<HistoryRecord> for HistoryEntryGql {
    fn from(r: HistoryRecord) -> Self {
        Self {
            seq: r.seq,
            at: r.at,
            actor_id: r.actor_id,
            actor_roles: r.actor_roles,
            event: r.event,
            from_state: r.from_state,
            to_state: r.to_state,
            input: Json(r.input),
            reason: r.reason,
            hash: r.hash,
            prev_hash: r.prev_hash,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "ScheduledTimer")]
pub struct ScheduledTimerGql {
    pub id: ID,
    /// reminder, due, overdue, escalation, timeout, named
    pub kind: String,
    pub key: String,
    pub fire_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub event: Option<String>,
    pub notify: Vec<String>,
    pub offset: Option<String>,
    /// pending, claimed, done, cancelled
    pub status: String,
    pub fired_at: Option<DateTime<Utc>>,
    pub state: String,
}

impl From<Timer> for ScheduledTimerGql {
    fn from(t: Timer) -> Self {
        Self {
            id: ID(t.id.to_string()),
            kind: t.kind.as_str().to_string(),
            key: t.key,
            fire_at: t.fire_at,
            due_at: t.due_at,
            event: t.event,
            notify: t.notify,
            offset: t.offset,
            status: t.status.as_str().to_string(),
            fired_at: t.fired_at,
            state: t.state,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "OutboxMessage")]
pub struct OutboxMessageGql {
    pub id: ID,
    pub template: String,
    pub to_address: String,
    pub to_name: String,
    pub kind: String,
    /// pending, sending, sent, dead
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub instance_id: Option<ID>,
}

impl From<OutboxMessage> for OutboxMessageGql {
    fn from(m: OutboxMessage) -> Self {
        Self {
            id: ID(m.id.to_string()),
            template: m.template,
            to_address: m.to_address,
            to_name: m.to_name,
            kind: m.kind,
            status: m.status.as_str().to_string(),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error,
            created_at: m.created_at,
            sent_at: m.sent_at,
            instance_id: m.instance_id.map(|i| ID(i.to_string())),
        }
    }
}

/// Why an action is not available now.
#[derive(SimpleObject)]
pub struct UnavailableReason {
    /// FORBIDDEN, GUARD_FAILED, DEADLINE_PASSED, …
    pub code: String,
    pub message: I18nText,
    pub guard: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "AvailableTransition")]
pub struct AvailableTransitionGql {
    pub event: String,
    pub title: I18nText,
    pub to: Vec<String>,
    pub available: bool,
    /// The guard reads the input: it is decided when the event is fired.
    pub depends_on_input: bool,
    pub reason_required: bool,
    pub input: Vec<InputFieldGql>,
    pub unavailable_reason: Option<UnavailableReason>,
}

pub(super) fn services<'a>(ctx: &'a Context<'_>) -> &'a Services {
    &rc(ctx).services
}

#[Object(name = "Instance")]
impl InstanceGql {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The title; a reviewer of a blind round sees it without the applicant's name.
    async fn title(&self, ctx: &Context<'_>) -> Result<String> {
        if let Some((title, _)) = crate::review::blind_view(ctx, &self.0).await? {
            return Ok(title);
        }
        Ok(self.0.title.clone())
    }
    async fn workflow_id(&self) -> &str {
        &self.0.workflow_id
    }
    async fn workflow_version(&self) -> u32 {
        self.0.workflow_version
    }
    async fn workflow(&self, ctx: &Context<'_>) -> Result<WorkflowGql> {
        let wf = services(ctx)
            .workflow_of(&self.0)
            .map_err(|e| crate::context::service_err(ctx, e))?;
        Ok(WorkflowGql(wf))
    }
    async fn state(&self, ctx: &Context<'_>) -> Result<StateRef> {
        let wf = services(ctx)
            .workflow_of(&self.0)
            .map_err(|e| crate::context::service_err(ctx, e))?;
        let title = wf
            .def
            .state(&self.0.state)
            .map(|s| (&s.title).into())
            .unwrap_or(I18nText {
                zh_cn: self.0.state.clone(),
                en: self.0.state.clone(),
            });
        Ok(StateRef {
            id: self.0.state.clone(),
            title,
        })
    }
    async fn stage(&self, ctx: &Context<'_>) -> Result<StateRef> {
        let wf = services(ctx)
            .workflow_of(&self.0)
            .map_err(|e| crate::context::service_err(ctx, e))?;
        let title = wf
            .def
            .stage(&self.0.stage)
            .map(|s| (&s.title).into())
            .unwrap_or(I18nText {
                zh_cn: self.0.stage.clone(),
                en: self.0.stage.clone(),
            });
        Ok(StateRef {
            id: self.0.stage.clone(),
            title,
        })
    }
    #[graphql(name = "final")]
    async fn is_final(&self) -> bool {
        self.0.is_final
    }
    /// The instance data (JSON); a reviewer of a blind round sees it without the
    /// applicant's identity.
    async fn data(&self, ctx: &Context<'_>) -> Result<Json<serde_json::Value>> {
        if let Some((_, data)) = crate::review::blind_view(ctx, &self.0).await? {
            return Ok(Json(data));
        }
        Ok(Json(self.0.data.clone()))
    }
    /// The task book (任务书): task rows, report schedule and progress per task; null
    /// before task rows are submitted.
    async fn task_book(&self, ctx: &Context<'_>) -> Result<Option<TaskBookGql>> {
        let data = match crate::review::blind_view(ctx, &self.0).await? {
            Some((_, data)) => data,
            None => self.0.data.clone(),
        };
        if !data.get("tasks").is_some_and(serde_json::Value::is_array) {
            return Ok(None);
        }
        Ok(Some(TaskBookGql {
            data,
            instance: self.0.clone(),
        }))
    }
    /// The number of transitions so far; pass it back as `expectedVersion`.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// 公示异议 of the public on this project, newest first (managers and auditors;
    /// FORBIDDEN for others).
    async fn public_objections(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::public::PublicObjectionGql>> {
        let v = crate::context::viewer_with_scope(ctx, crate::auth::scope::READ)?;
        let list = services(ctx)
            .public_objections(&v.user, Some(self.0.id), false)
            .await
            .map_err(|e| crate::context::service_err(ctx, e))?;
        Ok(list
            .into_iter()
            .map(crate::public::PublicObjectionGql)
            .collect())
    }
    /// The applicant unit; null for a reviewer of a blind round.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Option<OrganisationGql>> {
        if crate::review::hides_applicant(ctx, &self.0).await? {
            return Ok(None);
        }
        let org = rc(ctx)
            .loader
            .load_one(OrgId(self.0.org_id))
            .await
            .map_err(|e| internal(ctx, e))?;
        Ok(org.map(OrganisationGql))
    }
    /// The parent instance (a demand's catalogue item, a change request's project), when
    /// the viewer may see it.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Self>> {
        let Some(parent) = self.0.parent_id else {
            return Ok(None);
        };
        let Some(p) = rc(ctx)
            .loader
            .load_one(InstanceId(parent))
            .await
            .map_err(|e| internal(ctx, e))?
        else {
            return Ok(None);
        };
        let v = viewer(ctx)?;
        // `can_see`, with an expert's assignment checked in one batch for the whole page.
        let visible = match grantflow_service::access::decided_without_store(&v.user, &p) {
            Some(visible) => visible,
            None => rc(ctx)
                .loader
                .load_one(Assignment {
                    expert_id: v.user.id,
                    instance_id: p.id,
                })
                .await
                .map_err(|e| internal(ctx, e))?
                .unwrap_or(false),
        };
        Ok(visible.then_some(Self(p)))
    }
    /// Null for a reviewer of a blind round.
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<UserGql>> {
        if crate::review::hides_applicant(ctx, &self.0).await? {
            return Ok(None);
        }
        let user = rc(ctx)
            .loader
            .load_one(UserId(self.0.created_by))
            .await
            .map_err(|e| internal(ctx, e))?;
        Ok(user.map(UserGql))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the current state's work is due.
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }
    async fn overdue(&self, ctx: &Context<'_>) -> bool {
        !self.0.is_final && self.0.due_at.is_some_and(|d| d <= services(ctx).now())
    }
    /// The latest review result guards read (`review.total`, `review.count`); null for
    /// an expert who has not submitted their own scores.
    async fn review(&self, ctx: &Context<'_>) -> Result<Json<serde_json::Value>> {
        if !crate::review::may_see_result(ctx, &self.0).await? {
            return Ok(Json(serde_json::Value::Null));
        }
        Ok(Json(self.0.review.clone()))
    }
    /// The grades of the unit's other evaluated projects, newest first (for the decision on
    /// this application and next year's budgeting). Shown to the province (managers,
    /// auditors) and the unit's city bureau; null for everyone else, and always for a
    /// reviewer of a blind round (`grantflow_service::redaction::shows_unit_record`).
    async fn previous_grades(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<crate::programme::PreviousGradeGql>>> {
        let blind = crate::review::hides_applicant(ctx, &self.0).await?;
        let v = viewer(ctx)?;
        if !Services::shows_previous_grades(&v.user, &self.0, blind) {
            return Ok(None);
        }
        // Batched by unit (a list's page loads its units' grades at once).
        let unit = rc(ctx)
            .loader
            .load_one(crate::loaders::UnitGrades(self.0.org_id))
            .await
            .map_err(|e| internal(ctx, e))?
            .unwrap_or_default();
        Ok(Some(
            Services::previous_of(&self.0, &unit)
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }
    /// The append-only history, oldest first, with its hash chain (empty for a reviewer
    /// of a blind round: it names the applicant).
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<HistoryEntryGql>> {
        if crate::review::hides_applicant(ctx, &self.0).await? {
            return Ok(Vec::new());
        }
        let records = services(ctx)
            .store
            .history(self.0.id)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(records.into_iter().map(Into::into).collect())
    }
    /// The hash chain verified now (auditors, managers and administrators; null for
    /// everyone else).
    async fn history_verification(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<HistoryVerificationGql>> {
        let v = viewer(ctx)?;
        if ![Role::Auditor, Role::Manager, Role::Admin]
            .into_iter()
            .any(|r| v.has_role(r))
        {
            return Ok(None);
        }
        let (records, failure) =
            grantflow_store::audit::verify_instance(services(ctx).store.as_ref(), self.0.id)
                .await
                .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(Some(HistoryVerificationGql {
            ok: failure.is_none(),
            records_checked: records as i64,
            failed_seq: failure.as_ref().map(|f| f.seq),
            problem: failure.map(|f| f.what),
        }))
    }
    /// Deadlines, reminders, escalations and timeouts: pending ones and what already fired.
    async fn timers(
        &self,
        ctx: &Context<'_>,
        pending_only: Option<bool>,
    ) -> Result<Vec<ScheduledTimerGql>> {
        let timers = services(ctx)
            .store
            .timers_for_instance(self.0.id)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        let pending_only = pending_only.unwrap_or(false);
        Ok(timers
            .into_iter()
            .filter(|t| !pending_only || t.status == grantflow_store::TimerStatus::Pending)
            .map(Into::into)
            .collect())
    }
    /// Emails about this instance and whether they were sent (managers only).
    async fn messages(&self, ctx: &Context<'_>) -> Result<Vec<OutboxMessageGql>> {
        let v = viewer(ctx)?;
        if !v.has_role(Role::Manager) {
            return Err(ApiError::forbidden().into());
        }
        let msgs = services(ctx)
            .store
            .list_outbox(None, Some(self.0.id), 200)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(msgs.into_iter().map(Into::into).collect())
    }
    /// What the viewer can do now, and for each action they cannot, why.
    async fn available_transitions(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<AvailableTransitionGql>> {
        let v = viewer(ctx)?;
        let svc = services(ctx);
        let wf = svc
            .workflow_of(&self.0)
            .map_err(|e| crate::context::service_err(ctx, e))?;
        let actor = Services::actor_on(&v.user, &self.0);
        let options = available_events(&wf, &self.0.snapshot(), &actor, svc.now());
        Ok(options
            .into_iter()
            .map(|o| {
                let unavailable_reason = o.unavailable.map(|e| {
                    use grantflow_domain::{Lang, UserFacing};
                    let guard = match &e {
                        grantflow_domain::engine::EngineError::GuardFailed { guard, .. } => {
                            Some(guard.clone())
                        }
                        _ => None,
                    };
                    UnavailableReason {
                        code: e.kind().as_str().to_string(),
                        message: I18nText {
                            zh_cn: UserFacing::message(&e, Lang::ZhCn),
                            en: UserFacing::message(&e, Lang::En),
                        },
                        guard,
                    }
                });
                AvailableTransitionGql {
                    event: o.event,
                    title: (&o.title).into(),
                    to: o.to,
                    available: o.available,
                    depends_on_input: o.depends_on_input,
                    reason_required: o.reason_required,
                    input: o.input.iter().map(|d| input_field(&wf, d)).collect(),
                    unavailable_reason,
                }
            })
            .collect())
    }
}

/// Map a store error inside a resolver.
pub fn store_error(ctx: &Context<'_>, e: grantflow_store::StoreError) -> async_graphql::Error {
    ApiError::user_facing(
        &grantflow_service::ServiceError::Store(e),
        &rc(ctx).request_id,
    )
    .into()
}

/// Argument validator for every date and instant a request carries: the one accepted
/// range of `grantflow_domain::dates` (1900-01-01 to 2200-12-31). A value outside it is
/// INVALID_INPUT with `details.reason` DATE_OUT_OF_RANGE, before any resolver runs.
/// Used as `#[graphql(validator(custom = "crate::types::DateInRange"))]`.
pub struct DateInRange;

#[allow(
    clippy::needless_pass_by_value,
    reason = "used as `map_err(date_refusal)`"
)]
pub(super) fn date_refusal<T: async_graphql::InputType>(
    e: grantflow_domain::dates::DateError,
) -> async_graphql::InputValueError<T> {
    let mut details = async_graphql::indexmap::IndexMap::new();
    details.insert(
        async_graphql::Name::new("reason"),
        async_graphql::Value::from(e.code()),
    );
    async_graphql::InputValueError::custom(e.message_en())
        .with_extension("code", crate::error::Code::InvalidInput.as_str())
        .with_extension("messageZh", e.message_zh())
        .with_extension("messageEn", e.message_en())
        .with_extension("details", async_graphql::Value::Object(details))
}

impl async_graphql::CustomValidator<chrono::NaiveDate> for DateInRange {
    fn check(
        &self,
        value: &chrono::NaiveDate,
    ) -> Result<(), async_graphql::InputValueError<chrono::NaiveDate>> {
        grantflow_domain::dates::check_date(*value)
            .map(|_| ())
            .map_err(date_refusal)
    }
}

impl async_graphql::CustomValidator<DateTime<Utc>> for DateInRange {
    fn check(
        &self,
        value: &DateTime<Utc>,
    ) -> Result<(), async_graphql::InputValueError<DateTime<Utc>>> {
        grantflow_domain::dates::check_instant(*value)
            .map(|_| ())
            .map_err(date_refusal)
    }
}
