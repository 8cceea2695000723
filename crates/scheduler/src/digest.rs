//! Digest emails on cron schedules (read in Asia/Shanghai).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use grantflow_domain::calendar::{TIMEZONE, WorkCalendar, local_date};
use grantflow_store::{NewOutboxMessage, NotifyPref, User};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::context::{days_left, days_overdue, deadline_shown, instance_link, pick, rfc3339};
use crate::{RunReport, Scheduler, SchedulerError};

fn default_horizon_days() -> u32 {
    7
}

fn default_true() -> bool {
    true
}

/// One digest schedule (an entry of the configuration's `scheduler.digests`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSchedule {
    /// Unique: ticks are recorded per name.
    pub name: String,
    /// Six or seven fields (sec min hour day month weekday [year]), Asia/Shanghai.
    pub cron: String,
    /// What falls due within this many days is listed (with everything overdue).
    #[serde(default = "default_horizon_days")]
    pub horizon_days: u32,
    /// Ticks on rest days of the calendar do not send.
    #[serde(default = "default_true")]
    pub working_days_only: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("digest `{name}`: invalid cron expression `{cron}`: {reason}")]
pub struct DigestScheduleError {
    pub name: String,
    pub cron: String,
    pub reason: String,
}

pub(crate) struct CompiledDigest {
    pub(crate) def: DigestSchedule,
    schedule: cron::Schedule,
}

impl CompiledDigest {
    pub(crate) fn new(def: &DigestSchedule) -> Result<Self, DigestScheduleError> {
        let schedule = cron::Schedule::from_str(&def.cron).map_err(|e| DigestScheduleError {
            name: def.name.clone(),
            cron: def.cron.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            def: def.clone(),
            schedule,
        })
    }

    pub(crate) fn next_tick_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&now.with_timezone(&TIMEZONE))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The tick to fire at `now`: the latest tick in `(last, now]` (or at or before `now`
/// when the schedule never ticked). Missed ticks coalesce: one digest for a scheduler
/// that was down for a week, not seven. With `working_days_only`, a latest tick on a rest
/// day sends nothing (a missed Friday digest is not sent on Saturday; Monday's is).
pub fn pick_tick(
    schedule: &cron::Schedule,
    working_days_only: bool,
    calendar: &WorkCalendar,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // `after(x).next_back()` walks backwards from x, exclusive: start one second past now
    // so that a tick exactly at now counts.
    let start = (now + Duration::seconds(1)).with_timezone(&TIMEZONE);
    let latest = schedule
        .after(&start)
        .rev()
        .map(|t| t.with_timezone(&Utc))
        .find(|t| *t <= now)?;
    if last.is_some_and(|l| latest <= l) {
        return None;
    }
    if working_days_only && !calendar.is_working_day(local_date(latest)) {
        return None;
    }
    Some(latest)
}

/// The outbox key of a digest for one user and tick.
pub fn digest_message_key(schedule: &str, tick: DateTime<Utc>, user_id: Uuid) -> String {
    format!(
        "digest:{schedule}:{}:{user_id}",
        tick.format("%Y%m%dT%H%M%SZ")
    )
}

impl Scheduler {
    pub(crate) async fn run_digests(
        &self,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), SchedulerError> {
        let store = &self.services.store;
        for d in &self.digests {
            let last = store.last_tick(&d.def.name).await?;
            let Some(tick) = pick_tick(
                &d.schedule,
                d.def.working_days_only,
                &self.services.calendar,
                last,
                now,
            ) else {
                continue;
            };
            let messages = self.digest_messages(&d.def, tick, now).await?;
            let n = messages.len() as u64;
            // The unique (schedule, tick) key decides which process sends it.
            if store.record_tick(&d.def.name, tick, messages).await? {
                report.digest_ticks += 1;
                report.digest_messages += n;
            }
        }
        Ok(())
    }

    /// One message per user with something due within the horizon or overdue, among
    /// instances whose current state the user works on (the recipients of its assignee
    /// roles: applicants of the unit, the unit's city bureau, managers, assigned experts).
    async fn digest_messages(
        &self,
        def: &DigestSchedule,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewOutboxMessage>, SchedulerError> {
        let store = &self.services.store;
        let until = now + Duration::days(i64::from(def.horizon_days));
        let instances = store.instances_due_before(until).await?;
        struct Entry {
            user: User,
            overdue: Vec<Value>,
            due_soon: Vec<Value>,
        }
        let mut per_user: BTreeMap<Uuid, Entry> = BTreeMap::new();
        for instance in &instances {
            let Some(due_at) = instance.due_at else {
                continue;
            };
            let Ok(wf) = self.services.workflow_of(instance) else {
                continue;
            };
            let Some(state) = wf.def.state(&instance.state) else {
                continue;
            };
            if state.assignees.is_empty() {
                continue;
            }
            for user in store.recipients(instance, &state.assignees).await? {
                if !user.active || user.notify_pref == NotifyPref::None {
                    continue;
                }
                let lang = user.lang;
                let mut item = json!({
                    "project_name": instance.title,
                    "task": pick(&state.title, lang),
                    "deadline": deadline_shown(due_at),
                    "due_at": rfc3339(due_at),
                    "instance_id": instance.id,
                    "link": instance_link(&self.settings.public_url, instance.id),
                });
                let entry = per_user.entry(user.id).or_insert_with(|| Entry {
                    user: user.clone(),
                    overdue: Vec::new(),
                    due_soon: Vec::new(),
                });
                if due_at <= now {
                    item["days_overdue"] = Value::from(days_overdue(due_at, now));
                    entry.overdue.push(item);
                } else {
                    item["days_left"] = Value::from(days_left(due_at, now));
                    entry.due_soon.push(item);
                }
            }
        }
        let link = format!("{}/", self.settings.public_url.trim_end_matches('/'));
        Ok(per_user
            .into_values()
            .map(|e| NewOutboxMessage {
                idempotency_key: digest_message_key(&def.name, tick, e.user.id),
                recipient_user_id: Some(e.user.id),
                to_address: e.user.email.clone(),
                to_name: e.user.display_name.clone(),
                template: "digest".into(),
                lang: e.user.lang,
                context: json!({
                    "recipient_name": e.user.display_name,
                    "link": link,
                    "schedule": def.name,
                    "tick": rfc3339(tick),
                    "horizon_days": def.horizon_days,
                    "overdue": e.overdue,
                    "due_soon": e.due_soon,
                }),
                instance_id: None,
                kind: "digest".into(),
                not_before: now,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn daily_nine() -> cron::Schedule {
        cron::Schedule::from_str("0 0 9 * * *").unwrap()
    }

    #[test]
    fn the_first_tick_is_the_latest_one_not_after_now() {
        let cal = WorkCalendar::builtin();
        // Wednesday 2025-06-11 10:00 Shanghai: today's 09:00 tick.
        let got = pick_tick(&daily_nine(), true, &cal, None, t("2025-06-11T02:00:00Z"));
        assert_eq!(got, Some(t("2025-06-11T01:00:00Z")));
        // At exactly 09:00 the tick counts.
        let got = pick_tick(&daily_nine(), true, &cal, None, t("2025-06-11T01:00:00Z"));
        assert_eq!(got, Some(t("2025-06-11T01:00:00Z")));
    }

    #[test]
    fn missed_ticks_coalesce_into_the_latest_working_day_tick() {
        let cal = WorkCalendar::builtin();
        // Last digest Monday 2025-06-09 09:00; back on Thursday 06-12 at 12:00: the
        // Tuesday, Wednesday and Thursday ticks are one tick, Thursday's.
        let last = Some(t("2025-06-09T01:00:00Z"));
        let got = pick_tick(&daily_nine(), true, &cal, last, t("2025-06-12T04:00:00Z"));
        assert_eq!(got, Some(t("2025-06-12T01:00:00Z")));
        // Nothing new since the last tick.
        let got = pick_tick(
            &daily_nine(),
            true,
            &cal,
            Some(t("2025-06-12T01:00:00Z")),
            t("2025-06-12T04:00:00Z"),
        );
        assert_eq!(got, None);
    }

    #[test]
    fn rest_days_do_not_tick_when_working_days_only() {
        let cal = WorkCalendar::builtin();
        // National Day 2025: 10-01..10-08 are rest days. Last tick 09-30; on 10-03 there is
        // nothing to send, and on Saturday 10-11 (a make-up working day) there is.
        let last = Some(t("2025-09-30T01:00:00Z"));
        assert_eq!(
            pick_tick(&daily_nine(), true, &cal, last, t("2025-10-03T04:00:00Z")),
            None
        );
        assert_eq!(
            pick_tick(&daily_nine(), false, &cal, last, t("2025-10-03T04:00:00Z")),
            Some(t("2025-10-03T01:00:00Z"))
        );
        assert_eq!(
            pick_tick(&daily_nine(), true, &cal, last, t("2025-10-11T04:00:00Z")),
            Some(t("2025-10-11T01:00:00Z"))
        );
        // Missed on Friday 2025-06-13, back on Saturday: nothing until Monday.
        let last = Some(t("2025-06-12T01:00:00Z"));
        assert_eq!(
            pick_tick(&daily_nine(), true, &cal, last, t("2025-06-14T02:00:00Z")),
            None
        );
        assert_eq!(
            pick_tick(&daily_nine(), true, &cal, last, t("2025-06-16T02:00:00Z")),
            Some(t("2025-06-16T01:00:00Z"))
        );
    }
}
