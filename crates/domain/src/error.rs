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
    Internal,
}

impl ErrorKind {
    /// Every code, in the order of the README's table.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::GuardFailed,
        ErrorKind::InvalidInput,
        ErrorKind::InvalidTransition,
        ErrorKind::DeadlinePassed,
        ErrorKind::RateLimited,
        ErrorKind::BadRequest,
        ErrorKind::Timeout,
        ErrorKind::Internal,
    ];

    /// The code as clients see it in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::Forbidden => "FORBIDDEN",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::GuardFailed => "GUARD_FAILED",
            ErrorKind::InvalidInput => "INVALID_INPUT",
            ErrorKind::InvalidTransition => "INVALID_TRANSITION",
            ErrorKind::DeadlinePassed => "DEADLINE_PASSED",
            ErrorKind::RateLimited => "RATE_LIMITED",
            ErrorKind::BadRequest => "BAD_REQUEST",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::Internal => "INTERNAL",
        }
    }

    /// The default sentence (zh-CN, en) for the code.
    pub fn default_message(self) -> (&'static str, &'static str) {
        match self {
            ErrorKind::Unauthenticated => ("请先登录", "authentication required"),
            ErrorKind::Forbidden => ("无权执行此操作", "you may not do this"),
            ErrorKind::NotFound => ("未找到", "not found"),
            ErrorKind::Conflict => (
                "数据已被他人修改，请刷新后重试",
                "the data changed since you read it; reload and retry",
            ),
            ErrorKind::GuardFailed => (
                "不满足操作条件",
                "the condition of this action does not hold",
            ),
            ErrorKind::InvalidInput => ("输入有误", "invalid input"),
            ErrorKind::InvalidTransition => (
                "当前状态下不能执行此操作",
                "this action is not possible now",
            ),
            ErrorKind::DeadlinePassed => ("已过截止时间", "the deadline has passed"),
            ErrorKind::RateLimited => ("请求过于频繁，请稍后再试", "too many requests; slow down"),
            ErrorKind::BadRequest => ("请求格式有误", "malformed request"),
            ErrorKind::Timeout => (
                "请求处理超时，已取消",
                "the request ran past the time limit and was cancelled",
            ),
            ErrorKind::Internal => ("服务器内部错误", "internal error"),
        }
    }

    /// What the code means and what comes with it, for the README's table.
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "no valid session or API token",
            ErrorKind::Forbidden => "the viewer's roles or token scopes do not allow this",
            ErrorKind::NotFound => {
                "no such thing, or one the viewer may not see (never told apart)"
            }
            ErrorKind::Conflict => {
                "written meanwhile by someone else (`details.currentVersion`), or an idempotency key reused"
            }
            ErrorKind::GuardFailed => "the transition's condition does not hold (`details.guard`)",
            ErrorKind::InvalidInput => {
                "bad input: `details.fields[]` (field, code, message) and/or `details.reason`"
            }
            ErrorKind::InvalidTransition => "the action is not possible in the current state",
            ErrorKind::DeadlinePassed => "the deadline of the action has passed (`details.dueAt`)",
            ErrorKind::RateLimited => "too many operations (`details.retryAfterSeconds`)",
            ErrorKind::BadRequest => "a malformed request (`extensions.reason`)",
            ErrorKind::Timeout => {
                "past `[graphql] timeout_secs`; HTTP status 408, the work cancelled"
            }
            ErrorKind::Internal => "masked; logged with `details.requestId`",
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
