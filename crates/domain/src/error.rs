//! The one error model. Every error that can reach a user implements [`UserFacing`]: a
//! top-level [`ErrorKind`] (GraphQL `extensions.code`, what clients branch on), a stable
//! reason code (`details.reason`, e.g. `BUDGET_EXCEEDED`), a message in Simplified Chinese
//! and in English, and machine-readable details. The API turns any `UserFacing` into its
//! error with one conversion; the README's table of codes is checked against
//! [`ErrorKind::ALL`] by a test, so it cannot go stale.

use serde_json::Value;

use crate::model::{I18nText, Lang};

/// The top-level error codes. Clients branch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    GuardFailed,
    InvalidInput,
    InvalidTransition,
    DeadlinePassed,
    RateLimited,
    BadRequest,
    /// The request ran past the request timeout (`[graphql] timeout_secs`); its work was
    /// cancelled. Nothing it would have written was committed.
    Timeout,
    /// The database cannot be reached (restarting, failing over): nothing was done; retry
    /// shortly. HTTP status 503.
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// Every code, in the order of the README's table.
    pub const ALL: [Self; 13] = [
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::GuardFailed,
        Self::InvalidInput,
        Self::InvalidTransition,
        Self::DeadlinePassed,
        Self::RateLimited,
        Self::BadRequest,
        Self::Timeout,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as clients see it in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::GuardFailed => "GUARD_FAILED",
            Self::InvalidInput => "INVALID_INPUT",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::DeadlinePassed => "DEADLINE_PASSED",
            Self::RateLimited => "RATE_LIMITED",
            Self::BadRequest => "BAD_REQUEST",
            Self::Timeout => "TIMEOUT",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// The default sentence (zh-CN, en) for the code.
    pub fn default_message(self) -> (&'static str, &'static str) {
        match self {
            Self::Unauthenticated => ("请先登录", "authentication required"),
            Self::Forbidden => ("无权执行此操作", "you may not do this"),
            Self::NotFound => ("未找到", "not found"),
            Self::Conflict => (
                "数据已被他人修改，请刷新后重试",
                "the data changed since you read it; reload and retry",
            ),
            Self::GuardFailed => (
                "不满足操作条件",
                "the condition of this action does not hold",
            ),
            Self::InvalidInput => ("输入有误", "invalid input"),
            Self::InvalidTransition => (
                "当前状态下不能执行此操作",
                "this action is not possible now",
            ),
            Self::DeadlinePassed => ("已过截止时间", "the deadline has passed"),
            Self::RateLimited => ("请求过于频繁，请稍后再试", "too many requests; slow down"),
            Self::BadRequest => ("请求格式有误", "malformed request"),
            Self::Timeout => (
                "请求处理超时，已取消",
                "the request ran past the time limit and was cancelled",
            ),
            Self::Unavailable => (
                "数据库暂时不可用，操作未执行，请稍后重试",
                "the database is unavailable; nothing was done, retry shortly",
            ),
            Self::Internal => ("服务器内部错误", "internal error"),
        }
    }

    /// What the code means and what comes with it, for the README's table.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Unauthenticated => "no valid session or API token",
            Self::Forbidden => "the viewer's roles or token scopes do not allow this",
            Self::NotFound => "no such thing, or one the viewer may not see (never told apart)",
            Self::Conflict => {
                "written meanwhile by someone else (`details.currentVersion`), or an idempotency key reused"
            }
            Self::GuardFailed => "the transition's condition does not hold (`details.guard`)",
            Self::InvalidInput => {
                "bad input: `details.fields[]` (field, code, message) and/or `details.reason`"
            }
            Self::InvalidTransition => "the action is not possible in the current state",
            Self::DeadlinePassed => "the deadline of the action has passed (`details.dueAt`)",
            Self::RateLimited => "too many operations (`details.retryAfterSeconds`)",
            Self::BadRequest => "a malformed request (`extensions.reason`)",
            Self::Timeout => "past `[graphql] timeout_secs`; HTTP status 408, the work cancelled",
            Self::Unavailable => {
                "the database cannot be reached (restart, failover); HTTP status 503, nothing done, retry"
            }
            Self::Internal => "masked; logged with `details.requestId`",
        }
    }
}

/// An error or finding shown to a user. The reason code is stable (clients switch on it
/// and translations are keyed by it); the messages are for people.
pub trait UserFacing {
    /// The top-level code; most refusals are client errors.
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }

    /// A stable upper-snake-case identifier such as `BUDGET_LINE_MISSING`.
    fn code(&self) -> &'static str;

    /// The message in the given language.
    fn message(&self, lang: Lang) -> String;

    /// Machine-readable facts for clients (`reason`, `fields`, …); `Null` when none.
    fn details(&self) -> Value {
        Value::Null
    }

    /// Both messages, ready to store or send to a client.
    fn i18n(&self) -> I18nText {
        I18nText::new(self.message(Lang::ZhCn), self.message(Lang::En))
    }
}
