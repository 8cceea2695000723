//! The engine: a pure function from (definition, instance snapshot, event, actor, input,
//! now, calendar) to a transition plan or a typed error. The store applies the plan in one
//! transaction; nothing here performs I/O.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::calendar::WorkCalendar;
use crate::guard::{GuardError, Scope};
use crate::input::{FieldError, check_input, is_present};
use crate::model::{EffectDef, I18nText, InputFieldDef, TransitionDef};
use crate::schedule::{
    Deadline, TimerKind, TimerPlan, checkpoint_timers, deadline_for, deadline_timers, shift,
};
use crate::workflow::CompiledWorkflow;

/// Who fires an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub roles: Vec<String>,
    /// The actor's organisation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

impl Actor {
    pub fn scheduler() -> Self {
        Self {
            id: crate::SCHEDULER_ROLE.to_string(),
            roles: vec![crate::SCHEDULER_ROLE.to_string()],
            org: None,
        }
    }

    pub fn has_any_role(&self, roles: &[String]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }

    fn to_json(&self) -> Value {
        serde_json::json!({ "id": self.id, "roles": self.roles, "org": self.org })
    }
}

/// What the engine needs to know about an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub state: String,
    pub data: Value,
    /// Number of transitions applied so far (0 for a new instance).
    pub version: i64,
    /// The current state's deadline, possibly extended by a manager.
    pub due_at: Option<DateTime<Utc>>,
    /// The aggregated result of the latest closed review round (for guards), or null.
    #[serde(default)]
    pub review: Value,
    /// The project's budget facts (`{ lines, total, spent, remaining, execution_rate }`,
    /// money as yuan strings) for guards, or null before the first budget line.
    #[serde(default)]
    pub budget: Value,
}

impl Snapshot {
    /// A new instance in the workflow's initial state, with initial data.
    pub fn initial(wf: &CompiledWorkflow, data: Value) -> Self {
        Self {
            state: wf
                .def
                .initial_state()
                .map(|s| s.id.clone())
                .unwrap_or_default(),
            data: if data.is_null() {
                Value::Object(Map::new())
            } else {
                data
            },
            version: 0,
            due_at: None,
            review: Value::Null,
            budget: Value::Null,
        }
    }
}

/// An event to fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub event: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A message to send to the holders of some roles on this instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub roles: Vec<String>,
    pub template: String,
}

/// Everything one transition changes, for the store to apply atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionPlan {
    pub event: String,
    pub transition_index: usize,
    pub from: String,
    pub to: String,
    pub stage_from: String,
    pub stage_to: String,
    /// The whole instance data after the transition.
    pub data: Value,
    /// The normalised input, as recorded in the history.
    pub input: Value,
    pub reason: Option<String>,
    pub actor: Actor,
    /// When the transition happened (microsecond precision, as stored).
    pub at: DateTime<Utc>,
    /// The version the instance has after this transition.
    pub new_version: i64,
    /// Whether the transition enters a (new) state: its timers replace the old state's.
    pub enters_state: bool,
    /// The deadline of the state after the transition (unchanged on a self-transition).
    pub deadline: Option<Deadline>,
    /// Cancel every pending timer of the previous state entry.
    pub cancel_state_timers: bool,
    /// Cancel these named timers.
    pub cancel_timers: Vec<String>,
    pub schedule: Vec<TimerPlan>,
    pub notifications: Vec<Notification>,
    /// Review rounds to open (by round id).
    pub open_reviews: Vec<String>,
    pub is_final: bool,
}

/// Why an event cannot be fired. Each maps to a stable API error code.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineError {
    #[error("unknown event `{event}`")]
    UnknownEvent { event: String },
    #[error("event `{event}` is not allowed from state `{state}`")]
    NotAllowedFromState {
        event: String,
        state: String,
        allowed_from: Vec<String>,
    },
    #[error("event `{event}` needs one of the roles {required:?}")]
    RoleNotAllowed {
        event: String,
        required: Vec<String>,
    },
    #[error("the condition of `{event}` does not hold: `{guard}`")]
    GuardFailed {
        event: String,
        guard: String,
        message: Option<I18nText>,
        detail: Option<String>,
    },
    #[error("invalid input for `{event}`")]
    InvalidInput {
        event: String,
        errors: Vec<FieldError>,
    },
    #[error("the deadline of state `{state}` passed at {due_at}")]
    DeadlinePassed {
        event: String,
        state: String,
        due_at: DateTime<Utc>,
    },
    #[error("the instance is in final state `{state}` and accepts no event")]
    AlreadyFinal { state: String },
    #[error("the instance is in state `{state}`, which this workflow version does not define")]
    UndefinedState { state: String },
}

impl EngineError {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownEvent { .. } => "UNKNOWN_EVENT",
            Self::NotAllowedFromState { .. } => "NOT_ALLOWED_FROM_STATE",
            Self::RoleNotAllowed { .. } => "FORBIDDEN",
            Self::GuardFailed { .. } => "GUARD_FAILED",
            Self::InvalidInput { .. } => "INVALID_INPUT",
            Self::DeadlinePassed { .. } => "DEADLINE_PASSED",
            Self::AlreadyFinal { .. } => "ALREADY_FINAL",
            Self::UndefinedState { .. } => "INVALID_STATE",
        }
    }

    /// A sentence for people, in Simplified Chinese and English.
    pub fn message(&self) -> I18nText {
        match self {
            Self::UnknownEvent { event } => I18nText::new(
                format!("未知操作「{event}」"),
                format!("unknown event `{event}`"),
            ),
            Self::NotAllowedFromState { event, state, .. } => I18nText::new(
                format!("当前状态「{state}」下不能执行「{event}」"),
                format!("`{event}` is not possible in state `{state}`"),
            ),
            Self::RoleNotAllowed { event, required } => I18nText::new(
                format!("您的角色无权执行「{event}」，需要：{}", required.join("、")),
                format!(
                    "your roles may not fire `{event}`; it needs one of: {}",
                    required.join(", ")
                ),
            ),
            Self::GuardFailed {
                message: Some(m), ..
            } => m.clone(),
            Self::GuardFailed { event, guard, .. } => I18nText::new(
                format!("不满足执行「{event}」的条件：{guard}"),
                format!("the condition of `{event}` does not hold: {guard}"),
            ),
            Self::InvalidInput { errors, .. } => I18nText::new(
                format!(
                    "输入有误：{}",
                    errors
                        .iter()
                        .map(|e| e.message.zh_cn.as_str())
                        .collect::<Vec<_>>()
                        .join("；")
                ),
                format!(
                    "invalid input: {}",
                    errors
                        .iter()
                        .map(|e| e.message.en.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            Self::DeadlinePassed { event, due_at, .. } => I18nText::new(
                format!(
                    "截止时间（{}）已过，不能再执行「{event}」",
                    crate::calendar::local_date(*due_at - chrono::Duration::seconds(1))
                ),
                format!(
                    "the deadline ({}) has passed; `{event}` is closed",
                    crate::calendar::local_date(*due_at - chrono::Duration::seconds(1))
                ),
            ),
            Self::AlreadyFinal { state } => I18nText::new(
                format!("项目已处于终止状态「{state}」，不能再操作"),
                format!("the instance is in final state `{state}`"),
            ),
            Self::UndefinedState { state } => I18nText::new(
                format!("状态「{state}」在该流程版本中不存在"),
                format!("state `{state}` is not defined in this workflow version"),
            ),
        }
    }
}

impl crate::error::UserFacing for EngineError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Self::RoleNotAllowed { .. } => ErrorKind::Forbidden,
            Self::GuardFailed { .. } => ErrorKind::GuardFailed,
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::DeadlinePassed { .. } => ErrorKind::DeadlinePassed,
            Self::UnknownEvent { .. }
            | Self::NotAllowedFromState { .. }
            | Self::AlreadyFinal { .. }
            | Self::UndefinedState { .. } => ErrorKind::InvalidTransition,
        }
    }

    fn code(&self) -> &'static str {
        Self::code(self)
    }

    fn message(&self, lang: crate::model::Lang) -> String {
        Self::message(self).get(lang).to_string()
    }

    fn details(&self) -> serde_json::Value {
        use serde_json::json;
        let reason = Self::code(self);
        match self {
            Self::InvalidInput { errors, .. } => {
                json!({ "reason": reason, "fields": errors })
            }
            Self::GuardFailed { guard, .. } => json!({ "reason": reason, "guard": guard }),
            Self::DeadlinePassed { due_at, .. } => {
                json!({ "reason": reason, "dueAt": due_at })
            }
            Self::NotAllowedFromState {
                state,
                allowed_from,
                ..
            } => {
                json!({ "reason": reason, "state": state, "allowedFrom": allowed_from })
            }
            Self::RoleNotAllowed { required, .. } => {
                json!({ "reason": reason, "requiredRoles": required })
            }
            _ => json!({ "reason": reason }),
        }
    }
}

/// Decide one transition.
pub fn plan_transition(
    wf: &CompiledWorkflow,
    snapshot: &Snapshot,
    actor: &Actor,
    command: &Command,
    now: DateTime<Utc>,
    calendar: &WorkCalendar,
) -> Result<TransitionPlan, EngineError> {
    let now = now.trunc_subsecs(6);
    let def = &wf.def;
    let event = command.event.as_str();
    let state = def
        .state(&snapshot.state)
        .ok_or_else(|| EngineError::UndefinedState {
            state: snapshot.state.clone(),
        })?;
    if state.is_final {
        return Err(EngineError::AlreadyFinal {
            state: state.id.clone(),
        });
    }
    if !def.transitions.iter().any(|t| t.event == event) {
        return Err(EngineError::UnknownEvent {
            event: event.to_string(),
        });
    }
    let candidates: Vec<(usize, &TransitionDef)> = def
        .transitions_from(&state.id)
        .filter(|(_, t)| t.event == event)
        .collect();
    if candidates.is_empty() {
        let allowed_from = def
            .transitions
            .iter()
            .filter(|t| t.event == event)
            .flat_map(|t| t.from.as_slice().iter().cloned())
            .collect();
        return Err(EngineError::NotAllowedFromState {
            event: event.to_string(),
            state: state.id.clone(),
            allowed_from,
        });
    }
    let permitted: Vec<(usize, &TransitionDef)> = candidates
        .iter()
        .copied()
        .filter(|(_, t)| actor.has_any_role(&t.roles))
        .collect();
    if permitted.is_empty() {
        let mut required: Vec<String> = candidates
            .iter()
            .flat_map(|(_, t)| t.roles.iter().cloned())
            .collect();
        required.sort();
        required.dedup();
        return Err(EngineError::RoleNotAllowed {
            event: event.to_string(),
            required,
        });
    }
    if let Some(due_at) = snapshot.due_at
        && now >= due_at
        && permitted.iter().all(|(_, t)| t.before_deadline)
    {
        return Err(EngineError::DeadlinePassed {
            event: event.to_string(),
            state: state.id.clone(),
            due_at,
        });
    }

    let actor_json = actor.to_json();
    let mut first_input_error = None;
    let mut first_guard_error = None;
    let mut chosen = None;
    for (index, t) in permitted {
        let input = match check_command_input(wf, t, command, &snapshot.data) {
            Ok(input) => input,
            Err(errors) => {
                first_input_error.get_or_insert(EngineError::InvalidInput {
                    event: event.to_string(),
                    errors,
                });
                continue;
            }
        };
        let input_value = Value::Object(input.clone());
        if let Some(guard) = &wf.guards[index] {
            let scope = Scope {
                data: &snapshot.data,
                input: &input_value,
                actor: &actor_json,
                review: &snapshot.review,
                budget: &snapshot.budget,
                now,
            };
            let verdict = guard.evaluate_bool(&scope);
            let detail = match verdict {
                Ok(true) => None,
                Ok(false) => Some(None),
                Err(GuardError::Evaluation { message, .. }) => Some(Some(message)),
                Err(e @ GuardError::NotBoolean { .. }) => Some(Some(e.to_string())),
            };
            if let Some(detail) = detail {
                first_guard_error.get_or_insert(EngineError::GuardFailed {
                    event: event.to_string(),
                    guard: guard.source().to_string(),
                    message: t.guard_message.clone(),
                    detail,
                });
                continue;
            }
        }
        chosen = Some((index, t, input));
        break;
    }
    let Some((index, t, input)) = chosen else {
        return Err(first_guard_error
            .or(first_input_error)
            .expect("a permitted transition failed on input or guard"));
    };

    // New data: stored inputs, then effects in order.
    let mut data = match &snapshot.data {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for decl in &t.input {
        if decl.transient {
            continue;
        }
        if let Some(v) = input.get(&decl.name) {
            data.insert(decl.name.clone(), v.clone());
        }
    }
    let input_value = Value::Object(input);
    let mut cancel_timers = Vec::new();
    let mut named = Vec::new();
    let mut notifications = Vec::new();
    let mut open_reviews = Vec::new();
    for (j, effect) in t.effects.iter().enumerate() {
        match effect {
            EffectDef::Set(set) => {
                let expr = wf.set_values[index][j]
                    .as_ref()
                    .expect("set effects are compiled");
                let current = Value::Object(data.clone());
                let scope = Scope {
                    data: &current,
                    input: &input_value,
                    actor: &actor_json,
                    review: &snapshot.review,
                    budget: &snapshot.budget,
                    now,
                };
                let value = expr
                    .evaluate(&scope)
                    .map_err(|e| EngineError::GuardFailed {
                        event: event.to_string(),
                        guard: expr.source().to_string(),
                        message: None,
                        detail: Some(e.to_string()),
                    })?;
                data.insert(set.field.clone(), value);
            }
            EffectDef::Unset(field) => {
                data.remove(field);
            }
            EffectDef::OpenReview(id) => open_reviews.push(id.clone()),
            EffectDef::Schedule(s) => named.push(TimerPlan {
                kind: TimerKind::Named,
                key: format!("timer:{}", s.timer),
                fire_at: shift(now, s.after, calendar),
                due_at: None,
                event: Some(s.event.clone()),
                notify: vec![crate::SCHEDULER_ROLE.to_string()],
                offset: Some(s.after.to_string()),
            }),
            EffectDef::Cancel(name) => cancel_timers.push(format!("timer:{name}")),
            EffectDef::Notify(n) => notifications.push(Notification {
                roles: n.roles.clone(),
                template: n.template.clone(),
            }),
        }
    }

    let reason = command
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let target = def.state(&t.to).expect("validated: target exists");
    let mut errors = Vec::new();
    if t.reason_required && reason.is_none() {
        errors.push(FieldError::new(
            "reason",
            "REQUIRED",
            format!("执行「{}」必须填写理由", t.title.zh_cn),
            format!("`{event}` requires a written reason"),
        ));
    }
    for field in &target.requires {
        if !is_present(data.get(field)) {
            let title = def
                .fields
                .get(field)
                .map(|f| f.title.clone())
                .unwrap_or_else(|| I18nText::new(field.clone(), field.clone()));
            errors.push(FieldError::new(
                field,
                "REQUIRED_BY_STATE",
                format!(
                    "进入「{}」前必须填写「{}」",
                    target.title.zh_cn, title.zh_cn
                ),
                format!("state `{}` requires `{field}` ({})", target.id, title.en),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(EngineError::InvalidInput {
            event: event.to_string(),
            errors,
        });
    }

    let data = Value::Object(data);
    let enters_state = t.to != snapshot.state;
    let mut schedule = Vec::new();
    let deadline = if enters_state {
        let deadline = deadline_for(target, now, &data, calendar);
        if let Some(d) = &deadline {
            schedule.extend(deadline_timers(wf, target, d, now, calendar));
        }
        for (id, round) in &def.reviews {
            if round.opens_in == target.id && !open_reviews.contains(id) {
                open_reviews.push(id.clone());
            }
        }
        schedule.extend(checkpoint_timers(wf, target, &data, now, calendar, None));
        deadline
    } else {
        // Staying in the state: a checkpoint whose date moved gets its timers again.
        for cp in &target.checkpoints {
            if data.get(&cp.date_field) != snapshot.data.get(&cp.date_field) {
                cancel_timers.extend(cp.timer_keys());
                schedule.extend(checkpoint_timers(
                    wf,
                    target,
                    &data,
                    now,
                    calendar,
                    Some(&cp.id),
                ));
            }
        }
        snapshot.due_at.map(|due_at| Deadline {
            due_at,
            due_date: crate::calendar::local_date(due_at - chrono::Duration::seconds(1)),
        })
    };
    schedule.extend(named);

    Ok(TransitionPlan {
        event: event.to_string(),
        transition_index: index,
        from: snapshot.state.clone(),
        to: t.to.clone(),
        stage_from: state.stage.clone(),
        stage_to: target.stage.clone(),
        data,
        input: input_value,
        reason,
        actor: actor.clone(),
        at: now,
        new_version: snapshot.version + 1,
        enters_state,
        deadline,
        cancel_state_timers: enters_state,
        cancel_timers,
        schedule,
        notifications,
        open_reviews,
        is_final: target.is_final,
    })
}

fn check_command_input(
    wf: &CompiledWorkflow,
    t: &TransitionDef,
    command: &Command,
    data: &Value,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let input = check_input(&wf.def, &t.input, &command.input)?;
    let errors = crate::tasks::check_links(&wf.def, &t.input, &input, data);
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(errors)
    }
}

/// The timers and deadline of a newly created instance in its initial state.
pub fn initial_schedule(
    wf: &CompiledWorkflow,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    calendar: &WorkCalendar,
) -> (Option<Deadline>, Vec<TimerPlan>) {
    let now = now.trunc_subsecs(6);
    let Some(state) = wf.def.state(&snapshot.state) else {
        return (None, Vec::new());
    };
    let checkpoints = checkpoint_timers(wf, state, &snapshot.data, now, calendar, None);
    match deadline_for(state, now, &snapshot.data, calendar) {
        Some(d) => {
            let mut timers = deadline_timers(wf, state, &d, now, calendar);
            timers.extend(checkpoints);
            (Some(d), timers)
        }
        None => (None, checkpoints),
    }
}

/// Recompute the timers of the current state for a new due time (a manager extended the
/// deadline). Timers already in the past are left out.
pub fn reschedule_deadline(
    wf: &CompiledWorkflow,
    snapshot: &Snapshot,
    new_due_at: DateTime<Utc>,
    now: DateTime<Utc>,
    calendar: &WorkCalendar,
) -> Vec<TimerPlan> {
    let Some(state) = wf.def.state(&snapshot.state) else {
        return Vec::new();
    };
    let deadline = Deadline {
        due_at: new_due_at,
        due_date: crate::calendar::local_date(new_due_at - chrono::Duration::seconds(1)),
    };
    let now = now.trunc_subsecs(6);
    let mut timers = deadline_timers(wf, state, &deadline, now, calendar);
    // The store cancels every pending timer of the entry: the checkpoints come back.
    timers.extend(checkpoint_timers(
        wf,
        state,
        &snapshot.data,
        now,
        calendar,
        None,
    ));
    timers
}

/// Whether one event is possible for this actor now, and why not otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventOption {
    pub event: String,
    pub title: I18nText,
    pub to: Vec<String>,
    pub input: Vec<InputFieldDef>,
    pub reason_required: bool,
    pub available: bool,
    /// Set when the guard reads `input`: it can only be decided with the input in hand.
    pub depends_on_input: bool,
    pub unavailable: Option<EngineError>,
}

/// What `actor` can do now on this instance, and for each event it cannot, why. Events
/// whose guards read the input are reported available, with `depends_on_input`.
pub fn available_events(
    wf: &CompiledWorkflow,
    snapshot: &Snapshot,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Vec<EventOption> {
    let def = &wf.def;
    let Some(state) = def.state(&snapshot.state) else {
        return Vec::new();
    };
    if state.is_final {
        return Vec::new();
    }
    let actor_json = actor.to_json();
    let empty = Value::Object(Map::new());
    let mut options: Vec<EventOption> = Vec::new();
    for (index, t) in def.transitions_from(&state.id) {
        if t.roles.iter().all(|r| r == crate::SCHEDULER_ROLE) {
            continue; // Timeouts are not offered to people.
        }
        let mut unavailable = None;
        let mut depends_on_input = false;
        if !actor.has_any_role(&t.roles) {
            unavailable = Some(EngineError::RoleNotAllowed {
                event: t.event.clone(),
                required: t.roles.clone(),
            });
        } else if t.before_deadline && snapshot.due_at.is_some_and(|d| now >= d) {
            unavailable = Some(EngineError::DeadlinePassed {
                event: t.event.clone(),
                state: state.id.clone(),
                due_at: snapshot.due_at.unwrap_or(now),
            });
        } else if let Some(guard) = &wf.guards[index] {
            if guard.references().input_fields.is_empty() {
                let scope = Scope {
                    data: &snapshot.data,
                    input: &empty,
                    actor: &actor_json,
                    review: &snapshot.review,
                    budget: &snapshot.budget,
                    now,
                };
                match guard.evaluate_bool(&scope) {
                    Ok(true) => {}
                    Ok(false) => {
                        unavailable = Some(EngineError::GuardFailed {
                            event: t.event.clone(),
                            guard: guard.source().to_string(),
                            message: t.guard_message.clone(),
                            detail: None,
                        });
                    }
                    Err(e) => {
                        unavailable = Some(EngineError::GuardFailed {
                            event: t.event.clone(),
                            guard: guard.source().to_string(),
                            message: t.guard_message.clone(),
                            detail: Some(e.to_string()),
                        });
                    }
                }
            } else {
                depends_on_input = true;
                // The part that reads no input (a routing rule) is decided now.
                if let Some(pre) = &wf.preconditions[index] {
                    let scope = Scope {
                        data: &snapshot.data,
                        input: &empty,
                        actor: &actor_json,
                        review: &snapshot.review,
                        budget: &snapshot.budget,
                        now,
                    };
                    if !matches!(pre.evaluate_bool(&scope), Ok(true)) {
                        depends_on_input = false;
                        unavailable = Some(EngineError::GuardFailed {
                            event: t.event.clone(),
                            guard: guard.source().to_string(),
                            message: t.guard_message.clone(),
                            detail: None,
                        });
                    }
                }
            }
        }
        match options.iter_mut().find(|o| o.event == t.event) {
            Some(existing) => {
                if !existing.to.contains(&t.to) {
                    existing.to.push(t.to.clone());
                }
                if unavailable.is_none() && !existing.available {
                    existing.available = true;
                    existing.unavailable = None;
                }
                existing.depends_on_input |= depends_on_input;
            }
            None => options.push(EventOption {
                event: t.event.clone(),
                title: t.title.clone(),
                to: vec![t.to.clone()],
                input: t.input.clone(),
                reason_required: t.reason_required,
                available: unavailable.is_none(),
                depends_on_input,
                unavailable,
            }),
        }
    }
    options
}
