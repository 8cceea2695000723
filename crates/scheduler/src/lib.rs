//! grantflow-scheduler: deadlines that act.
//!
//! One pass ([`Scheduler::run_once`]) does three things, each claimed atomically in the
//! store so that any number of scheduler processes can run side by side:
//!
//! 1. **Timers.** Claim the timers due at `now` (with a lease and a fencing token). A
//!    reminder, due, overdue or escalation timer becomes one outbox message per recipient,
//!    enqueued in the same transaction that marks the timer done. A timeout or named timer
//!    fires its event through the same engine path as a user ([`Services::fire_timer`]).
//! 2. **Digests.** Each cron schedule's latest tick since the last recorded one (missed
//!    ticks coalesce into one) is recorded with its messages in one transaction; the
//!    store's unique key on (schedule, tick) makes every tick fire once across processes.
//! 3. **Outbox.** Claim due messages, render and send them *after* the claim committed
//!    (no claim is held open across SMTP), then record sent / retry with back-off / dead.
//!
//! [`Scheduler::run`] repeats this inside `grantflow serve` until shutdown, sleeping until
//! the next thing is due.

mod context;
mod digest;
mod dispatch;
mod held;
mod timers;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use grantflow_mail::Mailer;
use grantflow_service::Services;
use serde::Serialize;

pub use digest::{DigestSchedule, DigestScheduleError, pick_tick};

/// How the scheduler behaves; `grantflow.toml`'s `[scheduler]` section.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Timers and messages claimed per round trip.
    pub batch_size: u32,
    /// How long a claim lasts before another process may take the work over (a process
    /// that died mid-way loses its claims after this).
    pub lease: Duration,
    /// Longest sleep between two passes of [`Scheduler::run`].
    pub poll_interval: Duration,
    pub digests: Vec<DigestSchedule>,
    /// Base URL of the platform, for links in emails (`{public_url}/instances/{id}`).
    pub public_url: String,
}

/// The `[scheduler]` section of the configuration. Its defaults are the only ones; the
/// binary deserializes this struct directly inside its `Config`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Run the scheduler loop inside `grantflow serve`.
    pub enabled: bool,
    /// Longest wait between two looks at the timer table, in seconds.
    pub poll_interval_secs: u64,
    pub batch_size: u32,
    /// How long a claim on a timer or a message lasts before another process may take it.
    pub lease_secs: u64,
    /// Digest e-mails, e.g. `{ name = "daily", cron = "0 0 9 * * Mon-Fri", horizon_days = 7 }`;
    /// cron expressions are read in Asia/Shanghai and skip non-working days.
    pub digests: Vec<DigestSchedule>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_secs: 30,
            batch_size: 100,
            lease_secs: 120,
            digests: vec![DigestSchedule {
                name: "daily".into(),
                cron: "0 0 9 * * *".into(),
                horizon_days: 7,
                working_days_only: true,
            }],
        }
    }
}

impl SchedulerSettings {
    /// The settings of the scheduler from its configuration section.
    pub fn new(config: &SchedulerConfig, public_url: &str) -> Self {
        Self {
            batch_size: config.batch_size,
            lease: Duration::from_secs(config.lease_secs),
            poll_interval: Duration::from_secs(config.poll_interval_secs),
            digests: config.digests.clone(),
            public_url: public_url.to_string(),
        }
    }
}

/// The configuration's defaults without digests (tests add the ones they need).
impl Default for SchedulerSettings {
    fn default() -> Self {
        let config = SchedulerConfig {
            digests: Vec::new(),
            ..SchedulerConfig::default()
        };
        Self::new(&config, "http://127.0.0.1:8080")
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Timers completed by this process (messages enqueued or event fired).
    pub timers_fired: u64,
    /// Timers whose state was left before they fired, or whose event no longer applied.
    pub timers_spent: u64,
    /// Claims lost to another process (a stale fencing token).
    pub timers_lost: u64,
    /// Timers that failed and stay claimed until their lease runs out.
    pub timer_errors: u64,
    /// Timeout and named events applied through the engine.
    pub events_fired: u64,
    /// Outbox messages enqueued for timers.
    pub messages_enqueued: u64,
    /// Digest ticks recorded by this process.
    pub digest_ticks: u64,
    /// Digest messages enqueued with those ticks.
    pub digest_messages: u64,
    pub sent: u64,
    pub retried: u64,
    pub dead: u64,
    /// Messages whose outcome could not be recorded (lost claim or store error).
    pub delivery_errors: u64,
}

impl RunReport {
    /// Add the counts of `other` (a concurrent part of the same pass).
    pub fn add(&mut self, other: &Self) {
        let Self {
            timers_fired,
            timers_spent,
            timers_lost,
            timer_errors,
            events_fired,
            messages_enqueued,
            digest_ticks,
            digest_messages,
            sent,
            retried,
            dead,
            delivery_errors,
        } = other;
        self.timers_fired += timers_fired;
        self.timers_spent += timers_spent;
        self.timers_lost += timers_lost;
        self.timer_errors += timer_errors;
        self.events_fired += events_fired;
        self.messages_enqueued += messages_enqueued;
        self.digest_ticks += digest_ticks;
        self.digest_messages += digest_messages;
        self.sent += sent;
        self.retried += retried;
        self.dead += dead;
        self.delivery_errors += delivery_errors;
    }

    /// A one-line summary for the CLI and the log.
    pub fn summary(&self) -> String {
        format!(
            "timers fired: {} (events: {}, spent: {}, lost: {}, errors: {}); \
             digests: {} ticks, {} messages; messages enqueued: {}; \
             sent: {}, retried: {}, dead: {}",
            self.timers_fired,
            self.events_fired,
            self.timers_spent,
            self.timers_lost,
            self.timer_errors,
            self.digest_ticks,
            self.digest_messages,
            self.messages_enqueued,
            self.sent,
            self.retried,
            self.dead,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Digest(#[from] DigestScheduleError),
    #[error(transparent)]
    Store(#[from] grantflow_store::StoreError),
}

/// The deadline scheduler and outbox dispatcher.
pub struct Scheduler {
    services: Services,
    mailer: Mailer,
    settings: SchedulerSettings,
    digests: Vec<digest::CompiledDigest>,
    /// The earliest retry this process scheduled, so that [`Scheduler::run`] wakes for it
    /// (the store has no query for it; other processes' retries are found by polling).
    next_retry: Mutex<Option<DateTime<Utc>>>,
    /// Claims this process holds, given back on shutdown.
    held: Mutex<held::Held>,
}

impl Scheduler {
    /// Fails when a digest's cron expression does not parse.
    pub fn new(
        services: Services,
        mailer: Mailer,
        settings: SchedulerSettings,
    ) -> Result<Self, SchedulerError> {
        let digests = settings
            .digests
            .iter()
            .map(digest::CompiledDigest::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            services,
            mailer,
            settings,
            digests,
            next_retry: Mutex::new(None),
            held: Mutex::default(),
        })
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn settings(&self) -> &SchedulerSettings {
        &self.settings
    }

    /// Fire everything due at `now`, record due digest ticks, deliver due messages, and
    /// return. Errors of single timers or messages are logged and counted, never fatal:
    /// their claims run out and a later pass retries them.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<RunReport, SchedulerError> {
        let mut report = RunReport::default();
        self.fire_timers(now, &mut report).await?;
        self.run_digests(now, &mut report).await?;
        self.dispatch_outbox(now, &mut report).await?;
        Ok(report)
    }

    /// `run_once` in a loop until `shutdown` completes: after each pass, sleep until the
    /// earliest of the next timer, the next retry this process scheduled, the next digest
    /// tick and the poll interval; a committed transition (whose notifications wait in the
    /// outbox) wakes the loop early.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut events = self.services.subscribe();
        loop {
            let now = self.services.now();
            let started = std::time::Instant::now();
            let pass = self.run_once(now).await;
            metrics::histogram!(
                "grantflow_scheduler_pass_seconds",
                "outcome" => if pass.is_ok() { "ok" } else { "error" },
            )
            .record(started.elapsed().as_secs_f64());
            match pass {
                Ok(report) if report != RunReport::default() => {
                    tracing::info!(summary = %report.summary(), "scheduler pass");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "scheduler pass failed"),
            }
            let wait = match self.next_wake(now).await {
                Ok(at) => (at - self.services.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    // A timer whose claim is still leased elsewhere is "due" already: do not
                    // spin on it.
                    .max(Duration::from_secs(1)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the next timer");
                    self.settings.poll_interval
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
                received = events.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = received {
                        // No more live events: fall back to sleeping.
                        events = self.services.subscribe();
                    }
                }
            }
        }
    }

    /// The earliest instant at which a pass may have something to do.
    pub async fn next_wake(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, SchedulerError> {
        let poll = chrono::Duration::from_std(self.settings.poll_interval)
            .unwrap_or(chrono::Duration::seconds(30));
        let mut wake = now + poll;
        if let Some(t) = self.services.store.next_timer_at().await? {
            wake = wake.min(t);
        }
        if let Some(t) = *self
            .next_retry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            wake = wake.min(t);
        }
        for d in &self.digests {
            if let Some(t) = d.next_tick_after(now) {
                wake = wake.min(t);
            }
        }
        Ok(wake)
    }

    fn note_retry(&self, at: DateTime<Utc>) {
        let mut next = self
            .next_retry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *next = Some(next.map_or(at, |n| n.min(at)));
    }

    fn clear_retries_up_to(&self, now: DateTime<Utc>) {
        let mut next = self
            .next_retry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if next.is_some_and(|n| n <= now) {
            *next = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serve` spawns `run` on the multi-threaded runtime: its future must be `Send`.
    #[allow(dead_code, reason = "a compile-time check")]
    fn run_is_send(scheduler: &Scheduler) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&scheduler.run(std::future::pending()));
        is_send(&scheduler.run_once(Utc::now()));
    }
}
