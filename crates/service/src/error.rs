//! The service's errors in the one error model ([`UserFacing`]): what the API shows for a
//! service error, a store error inside it, and an expert-review error.

use grantflow_domain::input::FieldError;
use grantflow_domain::{ErrorKind, Lang, UserFacing};
use grantflow_store::StoreError;
use serde_json::{Value, json};

use crate::ServiceError;
use crate::review::ReviewServiceError;

fn pick(lang: Lang, zh: String, en: String) -> String {
    match lang {
        Lang::ZhCn => zh,
        Lang::En => en,
    }
}

fn default_message(kind: ErrorKind, lang: Lang) -> String {
    let (zh, en) = kind.default_message();
    pick(lang, zh.into(), en.into())
}

/// Field errors as one sentence, as the engine words invalid input.
fn invalid_message(errors: &[FieldError], lang: Lang) -> String {
    match lang {
        Lang::ZhCn => {
            let zh: Vec<&str> = errors.iter().map(|e| e.message.zh_cn.as_str()).collect();
            format!("输入有误：{}", zh.join("；"))
        }
        Lang::En => {
            let en: Vec<&str> = errors.iter().map(|e| e.message.en.as_str()).collect();
            format!("invalid input: {}", en.join("; "))
        }
    }
}

/// A store error as clients see it; backend failures are INTERNAL (masked, logged).
fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::NotFound { .. } => ErrorKind::NotFound,
        StoreError::Conflict { .. } | StoreError::IdempotencyMismatch { .. } => ErrorKind::Conflict,
        StoreError::Duplicate { .. }
        | StoreError::InvalidToken
        | StoreError::Invalid(_)
        | StoreError::Money(_)
        | StoreError::ObjectionsOpen { .. } => ErrorKind::InvalidInput,
        StoreError::Engine(e) => e.kind(),
        StoreError::Unavailable(_) => ErrorKind::Unavailable,
        StoreError::Backend(_) | StoreError::DefinitionChanged { .. } => ErrorKind::Internal,
    }
}

fn store_code(e: &StoreError) -> &'static str {
    match e {
        StoreError::Duplicate { .. } => "DUPLICATE",
        StoreError::IdempotencyMismatch { .. } => "IDEMPOTENCY_KEY_REUSED",
        StoreError::InvalidToken => "INVALID_TOKEN",
        StoreError::Money(r) => crate::programme::money_refusal(r).reason.as_str(),
        StoreError::ObjectionsOpen { .. } => crate::publicity::OBJECTION_UNRESOLVED,
        StoreError::Engine(e) => UserFacing::code(e),
        other => store_kind(other).as_str(),
    }
}

fn store_message(e: &StoreError, lang: Lang) -> String {
    match e {
        StoreError::NotFound { what, .. } => {
            pick(lang, format!("未找到{what}"), format!("{what} not found"))
        }
        StoreError::Conflict {
            current_version,
            expected_version,
        } => pick(
            lang,
            format!(
                "数据已被他人修改：当前版本为 {current_version}，您提交的是 {expected_version}，请刷新后重试"
            ),
            format!(
                "conflict: the instance is at version {current_version}, not {expected_version}; reload and retry"
            ),
        ),
        StoreError::Duplicate { what, value } => pick(
            lang,
            format!("{what}「{value}」已存在"),
            format!("{what} `{value}` already exists"),
        ),
        StoreError::IdempotencyMismatch { .. } => pick(
            lang,
            "该幂等键已用于另一个请求".into(),
            "this idempotency key was already used for a different request".into(),
        ),
        StoreError::Engine(e) => UserFacing::message(e, lang),
        StoreError::InvalidToken => pick(
            lang,
            "链接无效或已过期".into(),
            "the token is invalid or expired".into(),
        ),
        StoreError::Invalid(msg) => msg.clone(),
        StoreError::Money(r) => UserFacing::message(&crate::programme::money_refusal(r), lang),
        StoreError::ObjectionsOpen { open } => {
            UserFacing::message(&crate::publicity::objection_unresolved(*open), lang)
        }
        StoreError::Unavailable(_) => default_message(ErrorKind::Unavailable, lang),
        StoreError::Backend(_) | StoreError::DefinitionChanged { .. } => {
            default_message(ErrorKind::Internal, lang)
        }
    }
}

fn store_details(e: &StoreError) -> Value {
    match e {
        StoreError::Conflict {
            current_version,
            expected_version,
        } => json!({ "currentVersion": current_version, "expectedVersion": expected_version }),
        StoreError::Duplicate { what, .. } => {
            json!({ "fields": [{ "field": what, "code": "DUPLICATE" }] })
        }
        StoreError::IdempotencyMismatch { key } => {
            json!({ "idempotencyKey": key, "reason": "IDEMPOTENCY_KEY_REUSED" })
        }
        StoreError::Engine(e) => e.details(),
        StoreError::Money(r) => UserFacing::details(&crate::programme::money_refusal(r)),
        StoreError::ObjectionsOpen { open } => {
            UserFacing::details(&crate::publicity::objection_unresolved(*open))
        }
        StoreError::InvalidToken => {
            json!({ "fields": [{ "field": "token", "code": "INVALID_TOKEN" }] })
        }
        _ => Value::Null,
    }
}

impl UserFacing for ServiceError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => store_kind(e),
            Self::Forbidden => ErrorKind::Forbidden,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::Refused(r) => r.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Store(e) => store_code(e),
            Self::Refused(r) => r.code(),
            other => other.kind().as_str(),
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::Store(e) => store_message(e, lang),
            Self::Forbidden => default_message(ErrorKind::Forbidden, lang),
            Self::NotFound(what) => {
                pick(lang, format!("未找到{what}"), format!("{what} not found"))
            }
            Self::Invalid(errors) => invalid_message(errors, lang),
            Self::Refused(r) => r.message(lang),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Store(e) => store_details(e),
            Self::Invalid(errors) => json!({ "fields": errors }),
            Self::Refused(r) => r.details(),
            Self::Forbidden | Self::NotFound(_) => Value::Null,
        }
    }
}

/// Every review error carries `details.reason`, the review's own stable code (e.g.
/// `EXPERT_CONFLICT` inside `ASSIGNMENT_REFUSED`, `SCORE_OUT_OF_RANGE` per criterion of
/// `SCORES_INVALID`); a service error inside is shown as that error.
impl UserFacing for ReviewServiceError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Service(e) => e.kind(),
            Self::Review(r) => r.kind(),
            Self::NoOpenRound { .. }
            | Self::RoundClosed
            | Self::NotOverdue { .. }
            | Self::ReviewStarted => ErrorKind::InvalidTransition,
            Self::AssignmentChanged | Self::Busy => ErrorKind::Conflict,
            Self::NotAnExpert { .. } | Self::Invalid { .. } => ErrorKind::InvalidInput,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Service(e) => e.code(),
            other => Self::code(other),
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::Service(e) => UserFacing::message(e, lang),
            other => Self::message(other, lang),
        }
    }

    fn details(&self) -> Value {
        let field = |field: &str| {
            FieldError::new(
                field,
                Self::code(self),
                Self::message(self, Lang::ZhCn),
                Self::message(self, Lang::En),
            )
        };
        let fields = match self {
            Self::Service(e) => return e.details(),
            Self::Review(r) => return r.details(),
            Self::NotAnExpert { .. } => vec![field("userId")],
            Self::Invalid { field: f, .. } => vec![field(f)],
            _ => vec![],
        };
        let mut details = json!({ "reason": Self::code(self) });
        if !fields.is_empty() {
            details["fields"] = json!(fields);
        }
        details
    }
}
