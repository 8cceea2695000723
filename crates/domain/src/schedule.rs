//! Turning a state's deadline declaration into instants: when the work is due, and when
//! each reminder, escalation and timeout fires. All dates are Asia/Shanghai.

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{WorkCalendar, end_of_day, local_date, local_instant};
use crate::model::{DeadlineDef, ReminderLadder, StateDef};
use crate::workflow::CompiledWorkflow;
use crate::{SCHEDULER_ROLE, Span};

/// When the work of a state is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub due_at: DateTime<Utc>,
    /// The local date the work is due on (the last day), for day-based deadlines.
    pub due_date: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Before the deadline.
    Reminder,
    /// On the due day.
    Due,
    /// After the deadline, repeated.
    Overdue,
    /// Alert to a supervising role after the deadline.
    Escalation,
    /// Fire the state's timeout event.
    Timeout,
    /// A named timer scheduled by an effect; fires its event.
    Named,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::Due => "due",
            Self::Overdue => "overdue",
            Self::Escalation => "escalation",
            Self::Timeout => "timeout",
            Self::Named => "named",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reminder" => Self::Reminder,
            "due" => Self::Due,
            "overdue" => Self::Overdue,
            "escalation" => Self::Escalation,
            "timeout" => Self::Timeout,
            "named" => Self::Named,
            _ => return None,
        })
    }

    /// Whether firing sends a message (rather than an event).
    pub fn is_message(self) -> bool {
        !matches!(self, Self::Timeout | Self::Named)
    }
}

/// A timer to store, in the same transaction as the transition that sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerPlan {
    pub kind: TimerKind,
    /// Unique within one state entry, e.g. `reminder:7d`, `overdue:2`, `timeout`,
    /// `timer:publicity_end`.
    pub key: String,
    pub fire_at: DateTime<Utc>,
    /// The deadline this timer belongs to (none for named timers).
    pub due_at: Option<DateTime<Utc>>,
    /// The event fired by `timeout` and `named` timers.
    pub event: Option<String>,
    /// Roles to write to (assignees for reminders; the escalation's roles).
    pub notify: Vec<String>,
    /// The ladder step as written, e.g. `7d`.
    pub offset: Option<String>,
}

/// Default number of overdue reminders when `overdue_max` is not given.
pub const DEFAULT_OVERDUE_MAX: u32 = 3;

/// The deadline of `state` entered at `entered_at`, or `None` when it has none (or its date
/// field is not filled in).
pub fn deadline_for(
    state: &StateDef,
    entered_at: DateTime<Utc>,
    data: &serde_json::Value,
    calendar: &WorkCalendar,
) -> Option<Deadline> {
    let d = state.deadline.as_ref()?;
    if let Some(span) = d.after {
        return after(effective_after(d, span, data), entered_at, calendar);
    }
    let field = d.date_field.as_ref()?;
    let text = data.get(field)?.as_str()?;
    // Input dates are checked against the accepted range when they are given; a value
    // outside it (stored before that check) sets no deadline rather than a bad one.
    let day = crate::dates::parse_date(text).ok()?;
    Some(Deadline {
        due_at: end_of_day(day),
        due_date: day,
    })
}

/// `after`, with its count taken from the `after_field` of the data when that holds a
/// whole number from 1 to 3660.
pub fn effective_after(d: &DeadlineDef, span: Span, data: &serde_json::Value) -> Span {
    let count = d
        .after_field
        .as_ref()
        .and_then(|f| data.get(f)?.as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=3660).contains(n));
    match (count, span) {
        (None, span) => span,
        (Some(n), Span::Days(_)) => Span::Days(n),
        (Some(n), Span::WorkingDays(_)) => Span::WorkingDays(n),
        (Some(n), Span::Hours(_)) => Span::Hours(n),
    }
}

/// Checked: `None` past chrono's last date (only reachable with absurd spans).
fn after(span: Span, from: DateTime<Utc>, calendar: &WorkCalendar) -> Option<Deadline> {
    let start_day = local_date(from);
    let day_deadline = |day: NaiveDate| Deadline {
        due_at: end_of_day(day),
        due_date: day,
    };
    match span {
        Span::Days(n) => start_day
            .checked_add_days(Days::new(u64::from(n)))
            .map(day_deadline),
        Span::WorkingDays(n) => calendar.add_working_days(start_day, n).map(day_deadline),
        Span::Hours(n) => {
            let due_at = from.checked_add_signed(Duration::hours(i64::from(n)))?;
            Some(Deadline {
                due_at,
                due_date: local_date(due_at - Duration::seconds(1)),
            })
        }
    }
}

/// The instant `span` after `from`, keeping the local time of day for day-based spans;
/// saturates at chrono's last instant rather than overflowing.
pub fn shift(from: DateTime<Utc>, span: Span, calendar: &WorkCalendar) -> DateTime<Utc> {
    let local = from.with_timezone(&crate::calendar::TIMEZONE);
    let shifted = match span {
        Span::Days(n) => from.checked_add_signed(Duration::days(i64::from(n))),
        Span::WorkingDays(n) => calendar
            .add_working_days(local.date_naive(), n)
            .map(|day| local_instant(day, local.time())),
        Span::Hours(n) => from.checked_add_signed(Duration::hours(i64::from(n))),
    };
    shifted.unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn day_at(day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    local_instant(day, time)
}

fn before_due(
    deadline: &Deadline,
    span: Span,
    time: NaiveTime,
    cal: &WorkCalendar,
) -> Option<DateTime<Utc>> {
    match span {
        Span::Days(n) => deadline
            .due_date
            .checked_sub_days(Days::new(u64::from(n)))
            .map(|d| day_at(d, time)),
        Span::WorkingDays(n) => cal
            .sub_working_days(deadline.due_date, n)
            .map(|d| day_at(d, time)),
        Span::Hours(n) => deadline
            .due_at
            .checked_sub_signed(Duration::hours(i64::from(n))),
    }
}

/// The `k`-th step `span` after the deadline; `None` when it cannot be represented.
fn after_due(
    deadline: &Deadline,
    span: Span,
    k: u32,
    time: NaiveTime,
    cal: &WorkCalendar,
) -> Option<DateTime<Utc>> {
    let steps = span_units(span).checked_mul(k)?;
    match span {
        Span::Days(_) => deadline
            .due_date
            .checked_add_days(Days::new(u64::from(steps)))
            .map(|d| day_at(d, time)),
        Span::WorkingDays(_) => cal
            .add_working_days(deadline.due_date, steps)
            .map(|d| day_at(d, time)),
        Span::Hours(_) => deadline
            .due_at
            .checked_add_signed(Duration::hours(i64::from(steps))),
    }
}

fn span_units(span: Span) -> u32 {
    match span {
        Span::Days(n) | Span::WorkingDays(n) | Span::Hours(n) => n,
    }
}

/// Every timer for a deadline of `state`: the reminder ladder, escalations and timeout.
/// Reminders that would fire at or before `entered_at` are left out.
pub fn deadline_timers(
    wf: &CompiledWorkflow,
    state: &StateDef,
    deadline: &Deadline,
    entered_at: DateTime<Utc>,
    calendar: &WorkCalendar,
) -> Vec<TimerPlan> {
    let Some(d) = &state.deadline else {
        return Vec::new();
    };
    ladder_timers(
        d,
        &d.reminders,
        &state.assignees,
        deadline,
        entered_at,
        wf.remind_at(),
        calendar,
    )
}

/// The timers of a state's checkpoints (dates inside the state, such as the next progress
/// report), each keyed `<checkpoint>:<step>`; a checkpoint whose date field is empty or
/// not a date has none. Reminders that would fire at or before `now` are left out.
pub fn checkpoint_timers(
    wf: &CompiledWorkflow,
    state: &StateDef,
    data: &serde_json::Value,
    now: DateTime<Utc>,
    calendar: &WorkCalendar,
    only: Option<&str>,
) -> Vec<TimerPlan> {
    let mut out = Vec::new();
    for cp in &state.checkpoints {
        if only.is_some_and(|id| id != cp.id) {
            continue;
        }
        let Some(day) = data
            .get(&cp.date_field)
            .and_then(serde_json::Value::as_str)
            .and_then(|t| crate::dates::parse_date(t).ok())
        else {
            continue;
        };
        let deadline = Deadline {
            due_at: end_of_day(day),
            due_date: day,
        };
        let d = cp.as_deadline();
        for mut t in ladder_timers(
            &d,
            &d.reminders,
            &state.assignees,
            &deadline,
            now,
            wf.remind_at(),
            calendar,
        ) {
            t.key = format!("{}:{}", cp.id, t.key);
            out.push(t);
        }
    }
    out.sort_by_key(|t| t.fire_at);
    out
}

/// The timers of a reminder ladder and a deadline declaration (also used for review
/// rounds, whose ladder is declared on the round).
pub fn ladder_timers(
    d: &DeadlineDef,
    ladder: &ReminderLadder,
    assignees: &[String],
    deadline: &Deadline,
    entered_at: DateTime<Utc>,
    remind_at: NaiveTime,
    calendar: &WorkCalendar,
) -> Vec<TimerPlan> {
    let mut timers = Vec::new();
    let notify = assignees.to_vec();
    // A timer whose instant cannot be represented (beyond chrono's range) is left out.
    let mut push = |kind, key: String, fire_at: Option<DateTime<Utc>>, event, notify, offset| {
        if let Some(fire_at) = fire_at.filter(|at| *at > entered_at) {
            timers.push(TimerPlan {
                kind,
                key,
                fire_at,
                due_at: Some(deadline.due_at),
                event,
                notify,
                offset,
            });
        }
    };
    for span in &ladder.before {
        push(
            TimerKind::Reminder,
            format!("reminder:{span}"),
            before_due(deadline, *span, remind_at, calendar),
            None,
            notify.clone(),
            Some(span.to_string()),
        );
    }
    if ladder.at_due {
        let at = match d.after {
            Some(Span::Hours(_)) => Some(deadline.due_at),
            _ => Some(day_at(deadline.due_date, remind_at)),
        };
        push(TimerKind::Due, "due".into(), at, None, notify.clone(), None);
    }
    if let Some(every) = ladder.overdue_every {
        for k in 1..=ladder.overdue_max.unwrap_or(DEFAULT_OVERDUE_MAX) {
            push(
                TimerKind::Overdue,
                format!("overdue:{k}"),
                after_due(deadline, every, k, remind_at, calendar),
                None,
                notify.clone(),
                Some(format!("{every}×{k}")),
            );
        }
    }
    for (i, e) in d.escalations.iter().enumerate() {
        push(
            TimerKind::Escalation,
            format!("escalation:{i}"),
            after_due(deadline, e.after_overdue, 1, remind_at, calendar),
            None,
            e.notify.clone(),
            Some(e.after_overdue.to_string()),
        );
    }
    if let Some(event) = &d.timeout {
        push(
            TimerKind::Timeout,
            "timeout".into(),
            Some(deadline.due_at),
            Some(event.clone()),
            vec![SCHEDULER_ROLE.to_string()],
            None,
        );
    }
    timers.sort_by_key(|t| t.fire_at);
    timers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EscalationDef;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn working_day_deadline_and_ladder_across_national_day() {
        let cal = WorkCalendar::builtin();
        // Entered Friday 2025-09-26 10:00 Shanghai; 5 working days: 28 (调休 Sun), 29, 30,
        // then 1..8 October rest, 9, 10 → due at the end of Friday 2025-10-10.
        let entered = t("2025-09-26T02:00:00Z");
        let d = DeadlineDef {
            after: Some(Span::WorkingDays(5)),
            date_field: None,
            after_field: None,
            reminders: ReminderLadder {
                before: vec![Span::WorkingDays(3), Span::Days(1)],
                at_due: true,
                overdue_every: Some(Span::Days(2)),
                overdue_max: Some(2),
            },
            escalations: vec![EscalationDef {
                after_overdue: Span::WorkingDays(1),
                notify: vec!["manager".into()],
            }],
            timeout: Some("expire".into()),
        };
        let deadline = after(Span::WorkingDays(5), entered, &cal).unwrap();
        assert_eq!(deadline.due_date.to_string(), "2025-10-10");
        assert_eq!(deadline.due_at, t("2025-10-10T16:00:00Z"));
        let timers = ladder_timers(
            &d,
            &d.reminders,
            &["applicant".to_string()],
            &deadline,
            entered,
            NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            &cal,
        );
        let got: Vec<(String, String)> = timers
            .iter()
            .map(|t| {
                (
                    t.key.clone(),
                    t.fire_at
                        .with_timezone(&crate::calendar::TIMEZONE)
                        .format("%m-%d %H:%M")
                        .to_string(),
                )
            })
            .collect();
        let want = [
            // 3 working days before Fri 10-10: Thu 10-09, Tue 09-30, Mon 09-29 → 09-29.
            ("reminder:3wd", "09-29 09:00"),
            ("reminder:1d", "10-09 09:00"),
            ("due", "10-10 09:00"),
            ("timeout", "10-11 00:00"),
            // 1 working day after Fri 10-10 is Sat 10-11 (调休).
            ("escalation:0", "10-11 09:00"),
            ("overdue:1", "10-12 09:00"),
            ("overdue:2", "10-14 09:00"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn reminders_already_past_are_left_out() {
        let cal = WorkCalendar::builtin();
        let entered = t("2024-06-27T02:00:00Z");
        let d = DeadlineDef {
            after: None,
            date_field: Some("closing_date".into()),
            after_field: None,
            reminders: ReminderLadder {
                before: vec![Span::Days(7), Span::Days(1)],
                ..Default::default()
            },
            escalations: vec![],
            timeout: None,
        };
        let state = StateDef {
            id: "open".into(),
            title: Default::default(),
            stage: "s".into(),
            initial: true,
            is_final: false,
            requires: vec![],
            assignees: vec![],
            deadline: Some(d.clone()),
            checkpoints: vec![],
        };
        let data = serde_json::json!({"closing_date": "2024-06-29"});
        let deadline = deadline_for(&state, entered, &data, &cal).unwrap();
        assert_eq!(deadline.due_at, t("2024-06-29T16:00:00Z"));
        let timers = ladder_timers(
            &d,
            &d.reminders,
            &[],
            &deadline,
            entered,
            NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            &cal,
        );
        assert_eq!(timers.len(), 1, "only the 1-day reminder is still ahead");
        assert_eq!(timers[0].fire_at, t("2024-06-28T01:00:00Z"));
        assert!(deadline_for(&state, entered, &serde_json::json!({}), &cal).is_none());
    }
}
