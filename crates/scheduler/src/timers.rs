//! Firing claimed timers: messages for reminders, events for timeouts.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::schedule::TimerKind;
use grantflow_mail::Lang;
use grantflow_store::{ClaimedTimer, Instance, NewOutboxMessage, NotifyPref, StoreError, User};
use serde_json::{Value, json};

use crate::context::{
    both, days_left, days_overdue, deadline_shown, due_day, instance_link, join, pick, rfc3339,
    role_title,
};
use crate::{RunReport, Scheduler, SchedulerError};

/// The outbox key of a timer's message to one user: a timer completed twice (it cannot
/// be, but a replayed transaction could try) still enqueues each message once.
pub fn timer_message_key(timer_id: uuid::Uuid, user_id: uuid::Uuid) -> String {
    format!("timer:{timer_id}:{user_id}")
}

/// A reminder's messages, `None` when it is spent, or why it could not be prepared.
type Prepared = Result<Option<Vec<NewOutboxMessage>>, SchedulerError>;

/// Timers of one batch fired at the same time (PostgreSQL).
const FIRE_CONCURRENCY: usize = 8;

/// Batches in flight at the same time on PostgreSQL: each claims its own timers (`SKIP
/// LOCKED`), so while one waits on its commit another prepares.
const BATCH_LANES: usize = 4;

/// Batches in flight at the same time on SQLite. Its one writer takes the claims and
/// completions in turn, so more lanes would only queue on it; two let one batch read
/// and render its messages while the other holds the writer.
const SQLITE_BATCH_LANES: usize = 2;

/// What the recipients of a reminder depend on (`Store::recipients`): its roles, and for
/// those roles the instance's organisation (`applicant`) or city (`city`). Reminders of the
/// same scope share one read. A role that depends on the instance itself (`expert`, one
/// reviewer) or that this list does not know keeps the instance in the scope, so that
/// it is never shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RecipientScope {
    roles: Vec<String>,
    org: Option<uuid::Uuid>,
    city: Option<uuid::Uuid>,
    instance: Option<uuid::Uuid>,
}

impl RecipientScope {
    fn of(instance: &Instance, roles: &[String]) -> Self {
        let has = |role: &str| roles.iter().any(|r| r == role);
        let shared = roles
            .iter()
            .all(|r| matches!(r.as_str(), "manager" | "admin" | "applicant" | "city"));
        Self {
            roles: roles.to_vec(),
            org: has("applicant").then_some(instance.org_id),
            city: if has("city") { instance.city_id } else { None },
            instance: (!shared).then_some(instance.id),
        }
    }
}

/// The recipients of each scope of a batch, or why they could not be read.
type Recipients = HashMap<RecipientScope, Result<Vec<User>, String>>;

enum Fired {
    /// Completed by us, with this many messages.
    Messages(u64),
    /// The event was applied through the engine.
    Event,
    /// Nothing left to do (the state was left, the event no longer applies).
    Spent,
    /// Another process holds the timer now.
    Lost,
}

impl Scheduler {
    pub(crate) async fn fire_timers(
        &self,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), SchedulerError> {
        let mut lanes = vec![RunReport::default(); self.batch_lanes()];
        let done =
            futures::future::join_all(lanes.iter_mut().map(|lane| self.fire_lane(now, lane))).await;
        for lane in &lanes {
            report.add(lane);
        }
        done.into_iter().collect()
    }

    /// Batch after batch until nothing is due. Claims commit before any work: a timer
    /// that fails stays claimed until its lease (later than `now`) runs out, so this loop
    /// cannot pick it up again.
    async fn fire_lane(
        &self,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), SchedulerError> {
        while self.fire_batch(now, report).await? > 0 {}
        Ok(())
    }

    /// How many batches [`Scheduler::run_once`] fires at the same time (each a loop of
    /// [`Scheduler::fire_batch`]).
    pub fn batch_lanes(&self) -> usize {
        if self.services.store.backend() == "sqlite" {
            SQLITE_BATCH_LANES
        } else {
            BATCH_LANES
        }
    }

    /// Claim one batch of timers due at `now` and fire them; returns how many were
    /// claimed (0 when nothing is due). [`Scheduler::run_once`] repeats this until 0;
    /// the benchmark calls it directly to time each batch.
    pub async fn fire_batch(
        &self,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<usize, SchedulerError> {
        // The lease runs from the clock's time of the claim, not from the start of a pass
        // that may have been busy for longer than the lease (a claim born expired would be
        // taken over at once by another process).
        let claimed = self
            .services
            .store
            .claim_due_timers(
                self.services.now().max(now),
                self.settings.batch_size,
                self.settings.lease,
            )
            .await?;
        self.hold_timers(claimed.iter().map(|c| (c.timer.id, c.token)));
        for c in &claimed {
            // How late the timer is picked up (a lease taken over counts from its fire time).
            let lag = (now - c.timer.fire_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("grantflow_timer_lag_seconds", "kind" => c.timer.kind.as_str())
                .record(lag);
        }
        // Reminders (messages) of the whole batch are prepared (reads) and then completed
        // together: one transaction fences every timer of the batch and inserts all of
        // their messages. Timeouts go through the engine one by one.
        let (events, reminders): (Vec<&ClaimedTimer>, Vec<&ClaimedTimer>) =
            claimed.iter().partition(|c| !c.timer.kind.is_message());
        for (c, result) in self.fire_reminders(&reminders, now).await {
            self.account(c, result, report);
        }
        // Timers are independent: overlap their round trips (reads, the completing
        // transaction), at most FIRE_CONCURRENCY at a time. The store serialises what
        // must be serialised. (No closures here: they would make `run` lose `Send`.)
        // SQLite has one writer: concurrent completions would only queue on it, so
        // there the timers fire one at a time.
        let concurrency = self.concurrency();
        let mut waiting = events.into_iter();
        let mut running = FuturesUnordered::new();
        for c in waiting.by_ref().take(concurrency) {
            running.push(self.fire_tagged(c, now));
        }
        while let Some((c, result)) = running.next().await {
            if let Some(next) = waiting.next() {
                running.push(self.fire_tagged(next, now));
            }
            self.account(c, result, report);
        }
        Ok(claimed.len())
    }

    fn concurrency(&self) -> usize {
        if self.services.store.backend() == "sqlite" {
            1
        } else {
            FIRE_CONCURRENCY
        }
    }

    /// Count a fired timer in the report and the metrics; let go of it unless it failed
    /// (a failed timer stays claimed until its lease runs out, then is retried).
    fn account(
        &self,
        c: &ClaimedTimer,
        result: Result<Fired, SchedulerError>,
        report: &mut RunReport,
    ) {
        if result.is_ok() {
            self.let_go_timer(c.timer.id);
        }
        let outcome = match &result {
            Ok(Fired::Messages(_) | Fired::Event) => "fired",
            Ok(Fired::Spent) => "spent",
            Ok(Fired::Lost) => "lost",
            Err(_) => "error",
        };
        metrics::counter!("grantflow_timers_total", "kind" => c.timer.kind.as_str(), "outcome" => outcome)
            .increment(1);
        match result {
            Ok(Fired::Messages(n)) => {
                report.timers_fired += 1;
                report.messages_enqueued += n;
            }
            Ok(Fired::Event) => {
                report.timers_fired += 1;
                report.events_fired += 1;
            }
            Ok(Fired::Spent) => report.timers_spent += 1,
            Ok(Fired::Lost) => report.timers_lost += 1,
            Err(e) => {
                report.timer_errors += 1;
                tracing::warn!(timer = %c.timer.id, kind = c.timer.kind.as_str(), error = %e, "timer failed; retried after its lease");
            }
        }
    }

    /// Fire a batch of reminder timers: their instances in one read, their recipients
    /// (overlapped on PostgreSQL), then one transaction completing every timer whose
    /// fencing token still holds and enqueueing the messages of those only.
    async fn fire_reminders<'c>(
        &self,
        batch: &[&'c ClaimedTimer],
        now: DateTime<Utc>,
    ) -> Vec<(&'c ClaimedTimer, Result<Fired, SchedulerError>)> {
        if batch.is_empty() {
            return Vec::new();
        }
        let failed = |e: StoreError| {
            let msg = e.to_string();
            batch
                .iter()
                .map(|c| {
                    (
                        *c,
                        Err(SchedulerError::Store(StoreError::Backend(msg.clone()))),
                    )
                })
                .collect::<Vec<_>>()
        };
        let store = &self.services.store;
        let mut ids: Vec<uuid::Uuid> = batch.iter().map(|c| c.timer.instance_id).collect();
        ids.sort();
        ids.dedup();
        let instances: HashMap<uuid::Uuid, Instance> = match store.get_instances(&ids).await {
            Ok(list) => list.into_iter().map(|i| (i.id, i)).collect(),
            Err(e) => return failed(e),
        };
        let recipients = self.batch_recipients(batch, &instances).await;
        let concurrency = self.concurrency();
        let mut prepared: Vec<(&ClaimedTimer, Prepared)> = Vec::with_capacity(batch.len());
        let mut waiting = batch.iter();
        let mut running = FuturesUnordered::new();
        for c in waiting.by_ref().take(concurrency) {
            running.push(self.prepare_tagged(c, &instances, &recipients, now));
        }
        while let Some(done) = running.next().await {
            if let Some(next) = waiting.next() {
                running.push(self.prepare_tagged(next, &instances, &recipients, now));
            }
            prepared.push(done);
        }
        // Back in claim order, so that messages are enqueued in fire order.
        prepared.sort_by_key(|(c, _)| (c.timer.fire_at, c.timer.id));
        let mut out = Vec::with_capacity(batch.len());
        let mut completing = Vec::new();
        let mut outcome_of = Vec::new();
        for (c, result) in prepared {
            match result {
                Ok(messages) => {
                    let fired = messages
                        .as_ref()
                        .map_or(Fired::Spent, |m| Fired::Messages(m.len() as u64));
                    outcome_of.push((c, fired));
                    completing.push((c.timer.id, c.token, messages.unwrap_or_default()));
                }
                Err(e) => out.push((c, Err(e))),
            }
        }
        match store.complete_timers(completing, now).await {
            Ok(done) => {
                for ((c, fired), done) in outcome_of.into_iter().zip(done) {
                    out.push((c, Ok(if done { fired } else { Fired::Lost })));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (c, _) in outcome_of {
                    out.push((
                        c,
                        Err(SchedulerError::Store(StoreError::Backend(msg.clone()))),
                    ));
                }
            }
        }
        out
    }

    /// The recipients of every reminder of the batch, read once per distinct
    /// [`RecipientScope`] (a burst of reminders to the managers reads them once, not once
    /// per timer). A scope whose read failed maps to the error's text.
    async fn batch_recipients(
        &self,
        batch: &[&ClaimedTimer],
        instances: &HashMap<uuid::Uuid, Instance>,
    ) -> Recipients {
        let mut scopes: HashMap<RecipientScope, &Instance> = HashMap::new();
        for c in batch {
            if let Some(instance) = instances.get(&c.timer.instance_id) {
                scopes
                    .entry(RecipientScope::of(instance, &c.timer.notify))
                    .or_insert(instance);
            }
        }
        let mut out = HashMap::with_capacity(scopes.len());
        let mut waiting = scopes.into_iter();
        let mut running = FuturesUnordered::new();
        for (scope, instance) in waiting.by_ref().take(self.concurrency()) {
            running.push(self.read_recipients(scope, instance));
        }
        while let Some((scope, users)) = running.next().await {
            if let Some((scope, instance)) = waiting.next() {
                running.push(self.read_recipients(scope, instance));
            }
            out.insert(scope, users);
        }
        out
    }

    async fn read_recipients(
        &self,
        scope: RecipientScope,
        instance: &Instance,
    ) -> (RecipientScope, Result<Vec<User>, String>) {
        let users = self
            .services
            .store
            .recipients(instance, &scope.roles)
            .await
            .map_err(|e| e.to_string());
        (scope, users)
    }

    async fn prepare_tagged<'c>(
        &self,
        c: &'c ClaimedTimer,
        instances: &HashMap<uuid::Uuid, Instance>,
        recipients: &Recipients,
        now: DateTime<Utc>,
    ) -> (&'c ClaimedTimer, Prepared) {
        (
            c,
            self.prepare_reminder(c, instances.get(&c.timer.instance_id), recipients, now)
                .await,
        )
    }

    /// The messages of one reminder timer, or `None` when it is spent (the instance is
    /// gone or moved on, or the reminder comes after its deadline).
    async fn prepare_reminder(
        &self,
        c: &ClaimedTimer,
        instance: Option<&Instance>,
        recipients: &Recipients,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<NewOutboxMessage>>, SchedulerError> {
        let timer = &c.timer;
        let wf = instance.and_then(|i| self.services.workflow_of(i).ok());
        let (Some(instance), Some(wf)) = (instance, wf) else {
            return Ok(None);
        };
        // The store cancels a state's timers when it is left; this guards the window in
        // which a transition commits between our claim and our completion.
        if instance.is_final || instance.state != timer.state {
            return Ok(None);
        }
        // A reminder that fires after the deadline (the scheduler was down) would say
        // "0 days left" of a task already late: the overdue ladder speaks for it instead.
        let due_at = timer.due_at.or(instance.due_at);
        if matches!(timer.kind, TimerKind::Reminder | TimerKind::Due)
            && due_at.is_some_and(|d| d <= now)
        {
            return Ok(None);
        }
        let recipients = match recipients.get(&RecipientScope::of(instance, &timer.notify)) {
            Some(Ok(users)) => users,
            Some(Err(e)) => return Err(StoreError::Backend(e.clone()).into()),
            None => return Err(StoreError::Backend("recipients not read".into()).into()),
        };
        let late_party = if timer.kind == TimerKind::Escalation {
            Some(self.late_party(&wf, instance).await?)
        } else {
            None
        };
        let mut seen = HashSet::new();
        Ok(Some(
            recipients
                .iter()
                .filter(|u| u.active && seen.insert(u.id))
                // Escalations go out whatever the preference: a supervisor must hear of it.
                .filter(|u| {
                    timer.kind == TimerKind::Escalation || u.notify_pref == NotifyPref::Immediate
                })
                .map(|u| self.timer_message(c, instance, &wf, u, late_party.as_ref(), now))
                .collect(),
        ))
    }

    async fn fire_tagged<'c>(
        &self,
        c: &'c ClaimedTimer,
        now: DateTime<Utc>,
    ) -> (&'c ClaimedTimer, Result<Fired, SchedulerError>) {
        (c, self.fire_one(c, now).await)
    }

    /// Fire a timeout (or named timer) through the engine.
    async fn fire_one(
        &self,
        c: &ClaimedTimer,
        now: DateTime<Utc>,
    ) -> Result<Fired, SchedulerError> {
        let store = &self.services.store;
        let timer = &c.timer;
        match self.services.fire_timer(c).await {
            Ok(Some(applied)) if !applied.replayed => Ok(Fired::Event),
            Ok(_) => {
                // Not applicable (or applied before): consume the timer so that it is
                // not claimed again after every lease.
                let done = store.complete_timer(timer.id, c.token, vec![], now).await?;
                Ok(if done { Fired::Spent } else { Fired::Lost })
            }
            Err(grantflow_service::ServiceError::Store(e)) => Err(e.into()),
            Err(e) => Err(StoreError::Invalid(e.to_string()).into()),
        }
    }

    /// Who is late, for escalations: the unit when applicants hold the task, else the
    /// assignee roles.
    async fn late_party(
        &self,
        wf: &CompiledWorkflow,
        instance: &Instance,
    ) -> Result<(String, String), SchedulerError> {
        let assignees = wf
            .def
            .state(&instance.state)
            .map(|s| s.assignees.clone())
            .unwrap_or_default();
        if assignees.iter().any(|r| r == "applicant") {
            let org = self.services.store.get_org(instance.org_id).await?;
            return Ok((org.name.clone(), org.name));
        }
        let names = |lang| {
            let titles: Vec<String> = assignees.iter().map(|r| role_title(wf, r, lang)).collect();
            join(&titles, lang)
        };
        Ok((names(Lang::ZhCn), names(Lang::En)))
    }

    fn timer_message(
        &self,
        c: &ClaimedTimer,
        instance: &Instance,
        wf: &CompiledWorkflow,
        user: &User,
        late_party: Option<&(String, String)>,
        now: DateTime<Utc>,
    ) -> NewOutboxMessage {
        let timer = &c.timer;
        let lang = user.lang;
        let state = wf.def.state(&timer.state);
        // A checkpoint's timer (`progress_report:due`) speaks of the checkpoint, e.g. the
        // task book's progress report, and has its own calendar entry.
        let checkpoint = state.and_then(|s| {
            s.checkpoints
                .iter()
                .find(|cp| timer.key.starts_with(&format!("{}:", cp.id)))
        });
        let state_title = checkpoint
            .map(|cp| cp.title.clone())
            .or_else(|| state.map(|s| s.title.clone()))
            .unwrap_or_default();
        let deadline_key = match checkpoint {
            Some(cp) => format!("{}:{}", timer.state, cp.id),
            None => timer.state.clone(),
        };
        let task = pick(&state_title, lang);
        let due_at = timer.due_at.or(instance.due_at).unwrap_or(timer.fire_at);
        let link = instance_link(&self.settings.public_url, instance.id);
        let template = match timer.kind {
            TimerKind::Reminder => "reminder",
            TimerKind::Due => "due",
            TimerKind::Overdue => "overdue",
            _ => "escalation",
        };
        let mut ctx = json!({
            "recipient_name": user.display_name,
            "link": link,
            "project_name": instance.title,
            "task": task,
            "deadline": deadline_shown(due_at),
            "due_at": rfc3339(due_at),
            "due_date": due_day(due_at).format("%Y-%m-%d").to_string(),
            "instance_id": instance.id,
            "instance_title": instance.title,
            "workflow_title": both(&wf.def.title),
            "state": timer.state,
            "state_title": both(&state_title),
            "timer_kind": timer.kind.as_str(),
            "timer_key": timer.key,
            "offset": timer.offset,
            "ics": {
                // One calendar entry per instance and state: a moved deadline updates it
                // (the instance version only grows, so it serves as the SEQUENCE).
                "deadline_key": deadline_key,
                "at": rfc3339(due_at),
                "sequence": instance.version,
                "summary": match lang {
                    Lang::ZhCn => format!("截止：{}：{}", instance.title, task),
                    Lang::En => format!("Due: {}: {}", instance.title, task),
                },
                "description": match lang {
                    Lang::ZhCn => format!("{}（{}）", task, pick(&wf.def.title, lang)),
                    Lang::En => format!("{} ({})", task, pick(&wf.def.title, lang)),
                },
            },
        });
        match timer.kind {
            TimerKind::Reminder | TimerKind::Due => {
                ctx["days_left"] = Value::from(days_left(due_at, now));
            }
            _ => {
                ctx["days_overdue"] = Value::from(days_overdue(due_at, now));
            }
        }
        if timer.kind == TimerKind::Escalation {
            let roles: Vec<String> = timer
                .notify
                .iter()
                .map(|r| role_title(wf, r, lang))
                .collect();
            ctx["role"] = Value::from(join(&roles, lang));
            ctx["late_party"] = Value::from(
                late_party
                    .map(|(zh, en)| {
                        if lang == Lang::En {
                            en.clone()
                        } else {
                            zh.clone()
                        }
                    })
                    .unwrap_or_default(),
            );
        }
        NewOutboxMessage {
            idempotency_key: timer_message_key(timer.id, user.id),
            recipient_user_id: Some(user.id),
            to_address: user.email.clone(),
            to_name: user.display_name.clone(),
            template: template.to_string(),
            lang,
            context: ctx,
            instance_id: Some(instance.id),
            kind: timer.kind.as_str().to_string(),
            not_before: now,
        }
    }
}
