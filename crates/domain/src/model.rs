//! The workflow file format: one workflow per TOML file in `workflows/`.
//!
//! These types are the single source of the format: the loader deserialises into them,
//! the validator checks them, and `workflows/schema.json` is generated from them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Span;

/// A text in Simplified Chinese and English. `zh-CN` is the default language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct I18nText {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

impl I18nText {
    pub fn new(zh_cn: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            zh_cn: zh_cn.into(),
            en: en.into(),
        }
    }

    /// Both names, as the glossary writes domain terms: `申报 application`.
    pub fn both(&self) -> String {
        format!("{} {}", self.zh_cn, self.en)
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::ZhCn => &self.zh_cn,
            Lang::En => &self.en,
        }
    }
}

/// The languages user-facing text is available in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
pub enum Lang {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// The BCP 47 tag (`zh-CN`, `en`), as stored for a user and as e-mail templates'
    /// folder names.
    pub fn tag(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }

    /// The language whose [`tag`](Self::tag) is exactly `tag` (what is stored, and what
    /// the API accepts); [`FromStr`](std::str::FromStr) also takes variants such as `zh`.
    pub fn from_tag(tag: &str) -> Option<Self> {
        [Self::ZhCn, Self::En].into_iter().find(|l| l.tag() == tag)
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

/// A language tag that is neither Chinese nor English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?} (expected zh-CN or en)")]
pub struct UnknownLang(pub String);

impl std::str::FromStr for Lang {
    type Err = UnknownLang;

    /// Accepts `zh-CN`, `zh`, `zh-Hans`, `en`, `en-US`, … (case-insensitive).
    fn from_str(tag: &str) -> Result<Self, Self::Err> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "zh" => Ok(Self::ZhCn),
            "en" => Ok(Self::En),
            _ => Err(UnknownLang(tag.to_owned())),
        }
    }
}

/// A whole workflow file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    /// Stable identifier, lowercase words joined by `-`, e.g. `funded-project`.
    pub id: String,
    /// Increase whenever the file changes in a released programme; instances stay on
    /// the version they started with.
    pub version: u32,
    pub title: I18nText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<I18nText>,
    /// Wall-clock time (Asia/Shanghai) at which day-based reminders are sent.
    #[serde(default = "default_remind_at")]
    pub remind_at: String,
    /// Roles that may act in this workflow (beside the built-in `scheduler`).
    pub roles: Vec<RoleDef>,
    /// Stages in lifecycle order; every state belongs to one.
    pub stages: Vec<StageDef>,
    /// The instance data this workflow holds, by field name.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldDef>,
    pub states: Vec<StateDef>,
    pub transitions: Vec<TransitionDef>,
    /// Expert review rounds (专家评审) opened by transitions, by round id.
    #[serde(default)]
    pub reviews: BTreeMap<String, ReviewRoundDef>,
}

pub fn default_remind_at() -> String {
    "09:00".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub id: String,
    pub title: I18nText,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageDef {
    pub id: String,
    pub title: I18nText,
}

/// The type of a data field or an input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Integer,
    /// Yuan, exact to the fen, written as a decimal string.
    Money,
    /// A calendar date `YYYY-MM-DD` (Asia/Shanghai).
    Date,
    Boolean,
    /// One of `options`.
    Enum,
    /// A list of performance indicators (绩效指标).
    Indicators,
    /// A reference to an uploaded file: `{ name, sha256, size }`.
    File,
    /// A list of file references.
    Files,
    /// Task rows of a task book (任务书), in the shape of the province's task tables:
    /// `{ focus 工作重点, task 具体任务, deliverable_form 成果形式, department 责任部门,
    /// due, indicators: [names] }`; numbered `no` 1, 2, … in order.
    Tasks,
    /// A progress report on task rows: `[{ task: no, status, percent, description,
    /// deliverables: [file references] }]`.
    TaskProgress,
    /// When progress is reported: `"monthly"`, `"quarterly"`, `"half_yearly"`, or a list
    /// of dates `["2025-06-30", "2025-12-31"]`.
    ReportSchedule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub title: I18nText,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Longest text accepted, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Smallest accepted integer or amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest accepted integer or amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// For an `indicators` field: groups that must each have at least one indicator
    /// whenever a value is given, e.g. `["output", "effect"]` (产出指标 and 效益指标, as the
    /// call requires); refused with `INDICATOR_GROUP_MISSING` otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_groups: Vec<IndicatorGroupName>,
    /// For a `tasks` field: the `indicators` field whose names a task row's `indicators`
    /// must be (refused with `TASK_INDICATOR_UNKNOWN` otherwise). For a `task_progress`
    /// field: the `tasks` field whose rows a report names (`TASK_UNKNOWN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links_to: Option<String>,
}

/// The groups of performance indicators: 产出指标, 效益指标, 满意度指标.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorGroupName {
    /// `output_*` categories (产出指标)
    Output,
    /// `effect_*` categories (效益指标)
    Effect,
    /// `satisfaction` (满意度指标)
    Satisfaction,
}

impl IndicatorGroupName {
    /// The category prefix of the group's indicators.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Output => "output",
            Self::Effect => "effect",
            Self::Satisfaction => "satisfaction",
        }
    }

    pub fn title(self) -> I18nText {
        match self {
            Self::Output => I18nText::new("产出指标", "an output indicator"),
            Self::Effect => I18nText::new("效益指标", "an effect indicator"),
            Self::Satisfaction => I18nText::new("满意度指标", "a satisfaction indicator"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateDef {
    pub id: String,
    pub title: I18nText,
    pub stage: String,
    /// Exactly one state is initial: new instances start there.
    #[serde(default)]
    pub initial: bool,
    /// Final states accept no event.
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Data fields that must be present (non-empty) while the instance is in this state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Roles expected to act next (used for task lists and reminders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DeadlineDef>,
    /// Dates inside the state besides its deadline, each from a `date` field that
    /// transitions move (e.g. the next progress report of a task book's schedule): its
    /// reminders and escalations are scheduled on entering the state and again whenever
    /// the date field changes in a transition that stays in the state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<CheckpointDef>,
}

/// A date inside a state, with its own reminders and escalations and no timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointDef {
    /// Lowercase identifier; its timers are keyed `<id>:reminder:7d`, `<id>:due`, ….
    pub id: String,
    pub title: I18nText,
    /// A `date` field of the instance data; no date, no timers.
    pub date_field: String,
    #[serde(default)]
    pub reminders: ReminderLadder,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<EscalationDef>,
}

impl CheckpointDef {
    /// The checkpoint as a date-field deadline without a timeout.
    pub fn as_deadline(&self) -> DeadlineDef {
        DeadlineDef {
            after: None,
            date_field: Some(self.date_field.clone()),
            after_field: None,
            reminders: self.reminders.clone(),
            escalations: self.escalations.clone(),
            timeout: None,
        }
    }

    /// Every timer key the checkpoint can schedule (to cancel them when its date moves).
    pub fn timer_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .reminders
            .before
            .iter()
            .map(|s| format!("{}:reminder:{s}", self.id))
            .collect();
        keys.push(format!("{}:due", self.id));
        if self.reminders.overdue_every.is_some() {
            let max = self
                .reminders
                .overdue_max
                .unwrap_or(crate::schedule::DEFAULT_OVERDUE_MAX);
            keys.extend((1..=max).map(|k| format!("{}:overdue:{k}", self.id)));
        }
        keys.extend((0..self.escalations.len()).map(|i| format!("{}:escalation:{i}", self.id)));
        keys
    }
}

/// When the work of a state is due, who is reminded, who is alerted when it is late,
/// and what happens when it runs out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlineDef {
    /// Duration after entering the state: `7d` calendar days, `5wd` working days, `48h`
    /// hours. Day-based deadlines fall due at the end of the last day (24:00 Asia/Shanghai).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Span>,
    /// Or: an absolute date taken from a `date` field of the instance data, such as the
    /// call's closing date. Due at the end of that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_field: Option<String>,
    /// With `after`: take the number of days (or working days, or hours: the unit of
    /// `after`) from this `integer` field of the instance data, e.g. the publicity days
    /// the service copies from the call's rules when the instance is created. `after`
    /// applies while the field is absent (or not between 1 and 3660).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_field: Option<String>,
    /// Reminders to the state's assignees.
    #[serde(default)]
    pub reminders: ReminderLadder,
    /// Alert other roles when the deadline has passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<EscalationDef>,
    /// Event fired by the scheduler when the deadline passes; the state must handle it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A reminder ladder: e.g. 7, 3 and 1 days before, at due, and every 2 days overdue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReminderLadder {
    /// Offsets before the due date, e.g. `["7d", "3d", "1d"]` or `["3wd", "1wd"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<Span>,
    /// Also remind at the moment the deadline falls due.
    #[serde(default)]
    pub at_due: bool,
    /// Repeat a reminder at this interval once overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_every: Option<Span>,
    /// How many overdue reminders at most (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_max: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationDef {
    /// How long after the due time, e.g. `3d` or `2wd`.
    pub after_overdue: Span,
    /// Roles to alert (e.g. the city bureau or the programme manager).
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionDef {
    /// The event name clients send, e.g. `submit`.
    pub event: String,
    pub title: I18nText,
    /// One state id, or several.
    pub from: OneOrMany,
    pub to: String,
    /// Roles allowed to fire the event. `scheduler` for timeouts.
    pub roles: Vec<String>,
    /// A CEL expression over `data`, `input`, `actor`, `now`, `today` and `review`;
    /// the transition is allowed only when it is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// Shown to users when the guard is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard_message: Option<I18nText>,
    /// Input the actor supplies with the event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input: Vec<InputFieldDef>,
    /// Whether a written reason is required (returns, rejections, extensions).
    #[serde(default)]
    pub reason_required: bool,
    /// Refuse the event once the current state's deadline has passed (DEADLINE_PASSED),
    /// e.g. submitting a demand after the call has closed.
    #[serde(default)]
    pub before_deadline: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<EffectDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }

    pub fn contains(&self, state: &str) -> bool {
        self.as_slice().iter().any(|s| s == state)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputFieldDef {
    /// A field declared under `[fields]` (its value is stored in the instance data), or,
    /// with `transient = true`, a value kept only in the history record.
    pub name: String,
    /// The type; taken from `[fields]` when omitted. Required for transient inputs.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<FieldType>,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<I18nText>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Keep the value only in the history record, not in the instance data.
    #[serde(default)]
    pub transient: bool,
}

/// What a transition does besides changing state. Each effect is a table with one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EffectDef {
    /// Set a data field to the value of a CEL expression: `{ set = { field = "decision", value = "'approved'" } }`.
    Set(SetEffect),
    /// Remove a data field.
    Unset(String),
    /// Open an expert review round declared under `[reviews]`.
    OpenReview(String),
    /// Schedule a named timer that fires an event, independent of the state deadline.
    Schedule(ScheduleEffect),
    /// Cancel a named timer.
    Cancel(String),
    /// Notify roles with a message template.
    Notify(NotifyEffect),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEffect {
    pub field: String,
    /// CEL expression.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEffect {
    pub timer: String,
    pub after: Span,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyEffect {
    pub roles: Vec<String>,
    /// Template name, e.g. `returned_for_correction`.
    pub template: String,
}

/// An expert review round (专家评审): 申报评审 for applications, 验收评审 for acceptance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRoundDef {
    pub title: I18nText,
    /// The state in which the round is open; entering it opens the round.
    pub opens_in: String,
    /// The event that closes the round (fired by a manager or by a guard-driven transition).
    pub closes_on: String,
    /// Experts per application, at least 3.
    pub panel_size: u32,
    /// Hide applicant identities from experts.
    #[serde(default)]
    pub blind: bool,
    pub aggregation: Aggregation,
    /// Scores further than this many points (on the 0–100 total) from the median must be
    /// justified in writing.
    #[serde(default = "default_outlier_threshold")]
    pub outlier_threshold: f64,
    pub criteria: Vec<CriterionDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Span>,
    #[serde(default)]
    pub reminders: ReminderLadder,
}

pub fn default_outlier_threshold() -> f64 {
    15.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Mean,
    Median,
    /// Drop the highest and the lowest score when there are at least 5.
    TrimmedMean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionDef {
    pub id: String,
    pub title: I18nText,
    /// Weight in the total; weights of a round sum to 1.
    pub weight: f64,
    pub scale: ScaleDef,
    /// Scores below this fail the criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// A comment is required for scores below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_below: Option<f64>,
    /// A comment is required for scores above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_above: Option<f64>,
}

/// A scoring scale, e.g. 0–100 by 1, or 1–5 by 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleDef {
    pub min: f64,
    pub max: f64,
    #[serde(default = "default_step")]
    pub step: f64,
}

pub fn default_step() -> f64 {
    1.0
}

impl WorkflowDefinition {
    pub fn state(&self, id: &str) -> Option<&StateDef> {
        self.states.iter().find(|s| s.id == id)
    }

    pub fn stage(&self, id: &str) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.id == id)
    }

    pub fn initial_state(&self) -> Option<&StateDef> {
        self.states.iter().find(|s| s.initial)
    }

    /// Transitions leaving `state`, in file order.
    pub fn transitions_from<'a>(
        &'a self,
        state: &'a str,
    ) -> impl Iterator<Item = (usize, &'a TransitionDef)> + 'a {
        self.transitions
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.from.contains(state))
    }

    pub fn has_role(&self, role: &str) -> bool {
        role == crate::SCHEDULER_ROLE || self.roles.iter().any(|r| r.id == role)
    }
}
