//! Records the store keeps. Plain Rust types: no database types leak out of the backends.

use std::fmt;

use chrono::{DateTime, Utc};
use grantflow_domain::schedule::TimerKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A user's language, and the language of a message to them (the domain's type,
/// re-exported so that code holding users need not name the domain crate).
pub use grantflow_domain::Lang;

/// What an organisation is (issue 12). The kind places it in the hierarchy (the province,
/// its cities, units in a city) and decides where its applications go: a unit in a city
/// through its city bureau; a provincial organisation, the protection centre or the patent
/// office agency, a third-party institution and a city bureau applying for itself straight
/// to the province (`data.applicant_kind` of an application, set by the service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// 省局: the provincial bureau (广东省市场监督管理局).
    Province,
    /// 省直单位、省级行业协会／社会团体／事业单位: a provincial organisation.
    Provincial,
    /// 省知识产权保护中心、专利代办处 (and other protection centres): supported directly.
    ProtectionCentre,
    /// 地市市场监管局: a city bureau.
    City,
    /// A unit (company, university, institution, association) in a city.
    Unit,
    /// 第三方机构: a third-party institution (evaluators, service institutions).
    ThirdParty,
}

impl OrgKind {
    pub const ALL: [OrgKind; 6] = [
        OrgKind::Province,
        OrgKind::Provincial,
        OrgKind::ProtectionCentre,
        OrgKind::City,
        OrgKind::Unit,
        OrgKind::ThirdParty,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Province => "province",
            OrgKind::Provincial => "provincial",
            OrgKind::ProtectionCentre => "protection_centre",
            OrgKind::City => "city",
            OrgKind::Unit => "unit",
            OrgKind::ThirdParty => "third_party",
        }
    }

    pub fn parse(s: &str) -> Option<OrgKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of parent an organisation of this kind hangs under: none for the province;
    /// a city bureau for a unit in a city; the province for everyone else.
    pub fn expected_parent(self) -> Option<OrgKind> {
        match self {
            OrgKind::Province => None,
            OrgKind::Unit => Some(OrgKind::City),
            OrgKind::Provincial
            | OrgKind::ProtectionCentre
            | OrgKind::City
            | OrgKind::ThirdParty => Some(OrgKind::Province),
        }
    }

    /// The kind's name (Simplified Chinese, English).
    pub fn title(self) -> (&'static str, &'static str) {
        match self {
            OrgKind::Province => ("省局", "province bureau"),
            OrgKind::Provincial => (
                "省级单位（省直单位、省级协会、社会团体、事业单位）",
                "provincial organisation",
            ),
            OrgKind::ProtectionCentre => (
                "知识产权保护中心、专利代办处",
                "protection centre or patent office agency",
            ),
            OrgKind::City => ("地市市场监管局", "city bureau"),
            OrgKind::Unit => ("地市内单位", "unit in a city"),
            OrgKind::ThirdParty => ("第三方机构", "third-party institution"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: Uuid,
    pub name: String,
    pub kind: OrgKind,
    pub parent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganisation {
    pub name: String,
    pub kind: OrgKind,
    pub parent_id: Option<Uuid>,
}

/// Roles a user can hold. The workflow roles (`applicant`, `city`, `manager`, `expert`) are
/// the same names; `admin` manages users and organisations; `auditor` reads history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    City,
    Applicant,
    Expert,
    Auditor,
    /// 第三方评价机构的评价人员: sees and evaluates only the projects whose evaluation is
    /// assigned to their organisation.
    ThirdPartyEvaluator,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Manager,
        Role::City,
        Role::Applicant,
        Role::Expert,
        Role::Auditor,
        Role::ThirdPartyEvaluator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::City => "city",
            Role::Applicant => "applicant",
            Role::Expert => "expert",
            Role::Auditor => "auditor",
            Role::ThirdPartyEvaluator => "third_party_evaluator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a user wants deadline emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NotifyPref {
    /// Every reminder as it falls due, and the digest.
    #[default]
    Immediate,
    /// Only the periodic digest (escalations still go out).
    DigestOnly,
    /// Nothing but escalations.
    None,
}

impl NotifyPref {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyPref::Immediate => "immediate",
            NotifyPref::DigestOnly => "digest_only",
            NotifyPref::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<NotifyPref> {
        Some(match s {
            "immediate" => NotifyPref::Immediate,
            "digest_only" => NotifyPref::DigestOnly,
            "none" => NotifyPref::None,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub org_id: Option<Uuid>,
    pub roles: Vec<Role>,
    /// Stored as its tag, `zh-CN` or `en`.
    pub lang: Lang,
    pub notify_pref: NotifyPref,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub org_id: Option<Uuid>,
    pub roles: Vec<Role>,
    /// An argon2id PHC string; the store never sees a password.
    pub password_hash: String,
    pub lang: Lang,
}

/// A stored workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    pub workflow_id: String,
    pub version: u32,
    pub hash: String,
    /// The definition as JSON.
    pub definition: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: Uuid,
    pub workflow_id: String,
    pub workflow_version: u32,
    pub state: String,
    pub stage: String,
    pub is_final: bool,
    pub data: Value,
    /// Number of transitions applied; equals the length of the history.
    pub version: i64,
    /// A demand, its catalogue item, applications and change requests are linked.
    pub parent_id: Option<Uuid>,
    /// The unit (applicant organisation) the instance belongs to.
    pub org_id: Uuid,
    /// The city the unit belongs to, kept for scoping city bureaus.
    pub city_id: Option<Uuid>,
    pub title: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the current state's work is due.
    pub due_at: Option<DateTime<Utc>>,
    /// The aggregated result of the latest closed review round, for guards.
    pub review: Value,
    /// The budget facts (lines, total, spent, execution rate), for guards; null before
    /// the first budget line.
    #[serde(default)]
    pub budget: Value,
    /// The hash of the last history record.
    pub last_hash: String,
}

impl Instance {
    pub fn snapshot(&self) -> grantflow_domain::engine::Snapshot {
        grantflow_domain::engine::Snapshot {
            state: self.state.clone(),
            data: self.data.clone(),
            version: self.version,
            due_at: self.due_at,
            review: self.review.clone(),
            budget: self.budget.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewInstance {
    pub id: Uuid,
    pub workflow_id: String,
    pub workflow_version: u32,
    pub state: String,
    pub stage: String,
    pub data: Value,
    pub parent_id: Option<Uuid>,
    pub org_id: Uuid,
    pub title: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    /// Timers of the initial state.
    pub timers: Vec<grantflow_domain::schedule::TimerPlan>,
}

/// Which instances a viewer may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Managers, auditors and the scheduler.
    All,
    /// Applicants: instances of their own unit.
    Org(Uuid),
    /// City bureaus: instances of units in their city.
    City(Uuid),
    /// Experts: instances they are assigned to review.
    AssignedExpert(Uuid),
    /// Third-party evaluators: instances whose evaluation is assigned to their
    /// organisation.
    ThirdParty(Uuid),
    /// Nothing (a user without a role that sees instances).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    CreatedAt,
    UpdatedAt,
    DueAt,
    Title,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    pub workflow_id: Option<String>,
    pub states: Vec<String>,
    pub stage: Option<String>,
    pub org_id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
    /// Overdue at this instant: `due_at < now` and not final.
    pub overdue_at: Option<DateTime<Utc>>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the title or the data.
    pub text: Option<String>,
    pub include_final: bool,
    /// Instances that `org_id` and `text` never match: those the viewer sees only as a
    /// reviewer of a blind round, so that a filter on the applicant or on text that the
    /// viewer sees redacted is no oracle for what is hidden.
    pub identity_hidden: Vec<Uuid>,
}

/// Keyset pagination: the position after which to continue, as returned in a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort key's value of the last row, as text (RFC 3339 for times).
    pub key: Option<String>,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub first: u32,
    pub after: Option<Cursor>,
    pub sort: SortKey,
    pub order: SortOrder,
    /// Count every matching row for `Page::total_count` (a second statement that reads
    /// the whole filtered set); without it the total is 0.
    pub with_total: bool,
}

/// Instances with their history records in sequence order (`InstanceStore::audit_page`).
pub type AuditPage = Vec<(Instance, Vec<grantflow_domain::audit::HistoryRecord>)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<(T, Cursor)>,
    pub has_next_page: bool,
    pub total_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerStatus {
    Pending,
    Claimed,
    Done,
    Cancelled,
}

impl TimerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerStatus::Pending => "pending",
            TimerStatus::Claimed => "claimed",
            TimerStatus::Done => "done",
            TimerStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TimerStatus> {
        Some(match s {
            "pending" => TimerStatus::Pending,
            "claimed" => TimerStatus::Claimed,
            "done" => TimerStatus::Done,
            "cancelled" => TimerStatus::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub id: Uuid,
    pub instance_id: Uuid,
    /// The instance version at which the state was entered: timers belong to that entry.
    pub state_entry: i64,
    pub state: String,
    pub kind: TimerKind,
    pub key: String,
    pub fire_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub event: Option<String>,
    pub notify: Vec<String>,
    pub offset: Option<String>,
    pub status: TimerStatus,
    pub fired_at: Option<DateTime<Utc>>,
}

/// How much work waits, for monitoring (`/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending timers whose fire time has come.
    pub timers_due: i64,
    /// Every pending timer (due or not).
    pub timers_pending: i64,
    /// Timers claimed by a scheduler right now.
    pub timers_claimed: i64,
    /// Outbox messages by status.
    pub outbox: Vec<(OutboxStatus, i64)>,
}

/// The database connection pool of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open (idle or in use).
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// A timer claimed by one scheduler process, with the fencing token that must be shown
/// to complete it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTimer {
    pub timer: Timer,
    pub token: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxStatus> {
        Some(match s {
            "pending" => OutboxStatus::Pending,
            "sending" => OutboxStatus::Sending,
            "sent" => OutboxStatus::Sent,
            "dead" => OutboxStatus::Dead,
            _ => return None,
        })
    }
}

/// A message to send, enqueued in the same transaction as what caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutboxMessage {
    /// Unique: enqueueing the same key twice keeps the first.
    pub idempotency_key: String,
    pub recipient_user_id: Option<Uuid>,
    pub to_address: String,
    pub to_name: String,
    pub template: String,
    pub lang: Lang,
    pub context: Value,
    pub instance_id: Option<Uuid>,
    /// Escalations go out whatever the user's preference.
    pub kind: String,
    pub not_before: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub idempotency_key: String,
    pub recipient_user_id: Option<Uuid>,
    pub to_address: String,
    pub to_name: String,
    pub template: String,
    pub lang: Lang,
    pub context: Value,
    pub instance_id: Option<Uuid>,
    pub kind: String,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedMessage {
    pub message: OutboxMessage,
    pub token: i64,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent,
    Retry {
        next_attempt_at: DateTime<Utc>,
        error: String,
    },
    Dead {
        error: String,
    },
}

/// The result of applying a transition (also what an idempotent replay returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub instance: Instance,
    pub record: grantflow_domain::audit::HistoryRecord,
    /// True when this is the stored result of an earlier request with the same key.
    pub replayed: bool,
}

/// A bearer credential, stored only as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `session` (from login) or `api` (long-lived, scoped).
    pub kind: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub user_id: Uuid,
    pub token_hash: String,
    pub kind: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}
