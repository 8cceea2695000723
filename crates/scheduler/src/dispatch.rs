//! Delivering the outbox: claim, render, send after the claim committed, record.

use chrono::{DateTime, Utc};
use grantflow_mail::{
    DeadlineEvent, DeliveryError, MailSession, OutgoingEmail, Recipient, next_attempt_delay,
};
use grantflow_store::{ClaimedMessage, DeliveryOutcome, OutboxMessage};
use serde_json::{Map, Value};

use crate::context::{deadline_shown, instance_link, localised};
use crate::{RunReport, Scheduler, SchedulerError};

impl Scheduler {
    pub(crate) async fn dispatch_outbox(
        &self,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), SchedulerError> {
        self.clear_retries_up_to(now);
        let store = &self.services.store;
        loop {
            // `claim_outbox` has committed when it returns: the SMTP exchange below holds
            // no transaction and no lock, only a lease that runs out if we die.
            // The lease runs from the clock's time of this claim: a pass that has been
            // sending for longer than the lease must not take claims that are born expired
            // (another process would take them over at once and send them again).
            let claimed = store
                .claim_outbox(
                    self.services.now().max(now),
                    self.settings.batch_size,
                    self.settings.lease,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            self.hold_messages(claimed.iter().map(|c| (c.message.id, c.token)));
            // The batch shares one SMTP connection while the relay keeps it open.
            let mut session = self.mailer.session();
            for c in claimed {
                let outcome = self.deliver(&mut session, &c, now).await;
                let label = match &outcome {
                    DeliveryOutcome::Sent => "sent",
                    DeliveryOutcome::Retry { .. } => "retry",
                    DeliveryOutcome::Dead { .. } => "dead",
                };
                metrics::counter!("grantflow_mail_deliveries_total", "outcome" => label)
                    .increment(1);
                match &outcome {
                    DeliveryOutcome::Sent => report.sent += 1,
                    DeliveryOutcome::Retry {
                        next_attempt_at, ..
                    } => {
                        report.retried += 1;
                        self.note_retry(*next_attempt_at);
                    }
                    DeliveryOutcome::Dead { error } => {
                        report.dead += 1;
                        tracing::warn!(key = %c.message.idempotency_key, %error, "message dead-lettered");
                    }
                }
                let finished = store
                    .finish_delivery(c.message.id, c.token, outcome, now)
                    .await;
                if finished.is_ok() {
                    self.let_go_message(c.message.id);
                }
                match finished {
                    Ok(true) => {}
                    Ok(false) => {
                        report.delivery_errors += 1;
                        tracing::warn!(key = %c.message.idempotency_key, "claim lost before the outcome was recorded");
                    }
                    Err(e) => {
                        report.delivery_errors += 1;
                        tracing::warn!(key = %c.message.idempotency_key, error = %e, "cannot record the delivery outcome");
                    }
                }
            }
            session.close().await;
        }
    }

    async fn deliver(
        &self,
        session: &mut MailSession<'_>,
        c: &ClaimedMessage,
        now: DateTime<Utc>,
    ) -> DeliveryOutcome {
        let email = match self.build_email(&c.message).await {
            Ok(email) => email,
            Err(error) => return DeliveryOutcome::Dead { error },
        };
        match session.send(&email).await {
            Ok(()) => DeliveryOutcome::Sent,
            Err(e @ DeliveryError::Transient { .. }) => {
                // `attempts` already counts this attempt (the claim increments it).
                let attempts = u32::try_from(c.message.attempts).unwrap_or(0);
                let delay = chrono::Duration::from_std(next_attempt_delay(attempts))
                    .unwrap_or(chrono::Duration::hours(1));
                DeliveryOutcome::Retry {
                    next_attempt_at: now + delay,
                    error: e.to_string(),
                }
            }
            Err(e) => DeliveryOutcome::Dead {
                error: e.to_string(),
            },
        }
    }

    /// Render the message; a failure is the dead letter's error text.
    async fn build_email(&self, m: &OutboxMessage) -> Result<OutgoingEmail, String> {
        let lang = m.lang;
        let context = self.complete_context(m).await;
        let content =
            grantflow_mail::render(&m.template, lang, &context).map_err(|e| e.to_string())?;
        Ok(OutgoingEmail {
            idempotency_key: m.idempotency_key.clone(),
            to: vec![Recipient::new(m.to_name.clone(), m.to_address.clone())],
            cc: vec![],
            content,
            calendar: calendar_of(m, &context),
        })
    }

    /// Fill what the templates read but the enqueuer did not write. Transition
    /// notifications are enqueued by the store with the service's generic context
    /// (`instance_title`, `event_title`, `to_title`, `at`, …); the templates want
    /// `project_name`, `event`, `actor`, `occurred_at`, `link`…
    async fn complete_context(&self, m: &OutboxMessage) -> Value {
        let lang = m.lang;
        let mut ctx = match &m.context {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        let get =
            |ctx: &Map<String, Value>, key: &str| ctx.get(key).filter(|v| !v.is_null()).cloned();
        let fill = |ctx: &mut Map<String, Value>, key: &str, value: Option<Value>| {
            if !ctx.contains_key(key)
                && let Some(v) = value
            {
                ctx.insert(key.to_string(), v);
            }
        };
        fill(
            &mut ctx,
            "recipient_name",
            Some(Value::from(m.to_name.clone())),
        );
        let link = match m.instance_id {
            Some(id) => instance_link(&self.settings.public_url, id),
            None => format!("{}/", self.settings.public_url.trim_end_matches('/')),
        };
        fill(&mut ctx, "link", Some(Value::from(link)));
        let project = get(&ctx, "instance_title");
        fill(&mut ctx, "project_name", project);
        let event = get(&ctx, "event_title")
            .and_then(|v| localised(&v, lang))
            .or_else(|| get(&ctx, "event").and_then(|v| localised(&v, lang)))
            .map(Value::from);
        let at = get(&ctx, "at");
        match m.template.as_str() {
            "notification" => {
                // The service's context may carry the raw event id under `event`; the
                // reader wants the transition's title in their language.
                if let Some(title) = get(&ctx, "event_title").and_then(|v| localised(&v, lang)) {
                    ctx.insert("event".into(), Value::from(title));
                }
                fill(&mut ctx, "event", event);
                fill(&mut ctx, "occurred_at", at);
                if !ctx.contains_key("reason") {
                    ctx.insert("reason".into(), Value::Null);
                }
                if !ctx.contains_key("actor") {
                    let actor = self.actor_of(m, &ctx, lang).await;
                    ctx.insert("actor".into(), Value::from(actor));
                }
            }
            "timeout" => {
                let task = get(&ctx, "from_title").and_then(|v| localised(&v, lang));
                fill(&mut ctx, "task", task.map(Value::from));
                // The deadline that ran out: the previous one when the service gives it,
                // else the moment the timeout fired (a timeout fires at the deadline).
                let deadline = get(&ctx, "previous_due_at")
                    .or_else(|| at.clone())
                    .and_then(|v| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()))
                    .map(|d| Value::from(deadline_shown(d)));
                fill(&mut ctx, "deadline", deadline);
                fill(&mut ctx, "fired_at", at);
                let to = get(&ctx, "to_title").and_then(|v| localised(&v, lang));
                let outcome = match (event.and_then(|e| e.as_str().map(str::to_string)), to) {
                    (Some(e), Some(t)) => Some(match lang {
                        grantflow_mail::Lang::ZhCn => format!("{e}（{t}）"),
                        grantflow_mail::Lang::En => format!("{e} ({t})"),
                    }),
                    (e, t) => e.or(t),
                };
                fill(&mut ctx, "outcome", outcome.map(Value::from));
            }
            _ => {}
        }
        Value::Object(ctx)
    }

    /// Who made the change a notification reports: the author of the history record the
    /// notification was written for.
    async fn actor_of(
        &self,
        m: &OutboxMessage,
        ctx: &Map<String, Value>,
        lang: grantflow_mail::Lang,
    ) -> String {
        let system = match lang {
            grantflow_mail::Lang::ZhCn => "系统",
            grantflow_mail::Lang::En => "the platform",
        };
        let unknown = match lang {
            grantflow_mail::Lang::ZhCn => "（未知）",
            grantflow_mail::Lang::En => "(unknown)",
        };
        let (Some(instance_id), Some(at)) = (
            m.instance_id,
            ctx.get("at")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<DateTime<Utc>>().ok()),
        ) else {
            return unknown.to_string();
        };
        let Ok(history) = self.services.store.history(instance_id).await else {
            return unknown.to_string();
        };
        let to_state = ctx.get("to_state").and_then(Value::as_str);
        let record = history.iter().rev().find(|r| {
            // The store keeps microseconds; the context has the planner's instant.
            (r.at - at).num_milliseconds().abs() < 1 && to_state.is_none_or(|s| s == r.to_state)
        });
        let Some(record) = record else {
            return unknown.to_string();
        };
        match record.actor_id.parse::<uuid::Uuid>() {
            Ok(id) => match self.services.store.get_user(id).await {
                Ok(user) => user.display_name,
                Err(_) => unknown.to_string(),
            },
            Err(_) => system.to_string(),
        }
    }
}

/// The `.ics` of a message whose context describes a deadline (`ics`).
fn calendar_of(m: &OutboxMessage, ctx: &Value) -> Option<DeadlineEvent> {
    let ics = ctx.get("ics")?;
    let at = ics.get("at")?.as_str()?.parse::<DateTime<Utc>>().ok()?;
    Some(DeadlineEvent {
        instance_id: m.instance_id.map(|i| i.to_string()).unwrap_or_default(),
        deadline_key: ics.get("deadline_key")?.as_str()?.to_string(),
        at,
        summary: ics
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        description: ics
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        url: ctx.get("link").and_then(Value::as_str).map(str::to_string),
        // The message's creation time: a re-send after a crash carries the same bytes.
        stamp: m.created_at,
        sequence: ics
            .get("sequence")
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or(0),
    })
}
