//! One error type for the API and one table of stable error codes. Every GraphQL error
//! carries `extensions.code`; internal errors are masked to the client and logged with a
//! request id.

use async_graphql::ErrorExtensions;
use grantflow_domain::engine::EngineError;
use grantflow_domain::input::FieldError;
use grantflow_service::ServiceError;
use grantflow_store::StoreError;
use serde_json::json;

/// Stable error codes. Clients branch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
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

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::GuardFailed => "GUARD_FAILED",
            Code::InvalidInput => "INVALID_INPUT",
            Code::InvalidTransition => "INVALID_TRANSITION",
            Code::DeadlinePassed => "DEADLINE_PASSED",
            Code::RateLimited => "RATE_LIMITED",
            Code::BadRequest => "BAD_REQUEST",
            Code::Timeout => "TIMEOUT",
            Code::Internal => "INTERNAL",
        }
    }

    /// The default sentence (zh-CN, en) for the code.
    fn default_message(self) -> (&'static str, &'static str) {
        match self {
            Code::Unauthenticated => ("请先登录", "authentication required"),
            Code::Forbidden => ("无权执行此操作", "you may not do this"),
            Code::NotFound => ("未找到", "not found"),
            Code::Conflict => (
                "数据已被他人修改，请刷新后重试",
                "the data changed since you read it; reload and retry",
            ),
            Code::GuardFailed => (
                "不满足操作条件",
                "the condition of this action does not hold",
            ),
            Code::InvalidInput => ("输入有误", "invalid input"),
            Code::InvalidTransition => (
                "当前状态下不能执行此操作",
                "this action is not possible now",
            ),
            Code::DeadlinePassed => ("已过截止时间", "the deadline has passed"),
            Code::RateLimited => ("请求过于频繁，请稍后再试", "too many requests; slow down"),
            Code::BadRequest => ("请求格式有误", "malformed request"),
            Code::Timeout => (
                "请求处理超时，已取消",
                "the request ran past the time limit and was cancelled",
            ),
            Code::Internal => ("服务器内部错误", "internal error"),
        }
    }
}

/// The GraphQL `errors` list for a request cut off by the request timeout, the same over
/// HTTP (status 408) and WebSocket (an `error` message).
pub fn timeout_errors(limit: std::time::Duration) -> serde_json::Value {
    let (zh, en) = Code::Timeout.default_message();
    let secs = limit.as_secs();
    json!([{
        "message": format!("{zh}（{secs} 秒）({en}: {secs} s)"),
        "extensions": {
            "code": Code::Timeout.as_str(),
            "messageZh": format!("{zh}（{secs} 秒）"),
            "messageEn": format!("{en} ({secs} s)"),
            "details": { "timeoutSeconds": secs },
        }
    }])
}

/// An error a resolver returns. Boxed, so that `Result`s stay small.
#[derive(Debug)]
pub struct ApiError(Box<ApiErrorBody>);

#[derive(Debug)]
pub struct ApiErrorBody {
    pub code: Code,
    pub message_zh: String,
    pub message_en: String,
    pub details: serde_json::Value,
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorBody;
    fn deref(&self) -> &ApiErrorBody {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorBody {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(code: Code) -> Self {
        let (zh, en) = code.default_message();
        ApiError(Box::new(ApiErrorBody {
            code,
            message_zh: zh.to_string(),
            message_en: en.to_string(),
            details: serde_json::Value::Null,
        }))
    }

    pub fn with_message(mut self, zh: impl Into<String>, en: impl Into<String>) -> Self {
        self.message_zh = zh.into();
        self.message_en = en.into();
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(Code::Unauthenticated)
    }

    pub fn forbidden() -> Self {
        Self::new(Code::Forbidden)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound).with_message(format!("未找到{what}"), format!("{what} not found"))
    }

    pub fn invalid(errors: &[FieldError]) -> Self {
        let zh: Vec<&str> = errors.iter().map(|e| e.message.zh_cn.as_str()).collect();
        let en: Vec<&str> = errors.iter().map(|e| e.message.en.as_str()).collect();
        Self::new(Code::InvalidInput)
            .with_message(
                format!("输入有误：{}", zh.join("；")),
                format!("invalid input: {}", en.join("; ")),
            )
            .with_details(json!({ "fields": errors }))
    }

    pub fn invalid_field(field: &str, zh: &str, en: &str) -> Self {
        Self::invalid(&[FieldError::new(field, "INVALID_VALUE", zh, en)])
    }

    /// An internal failure: logged in full with the request id, masked for the client.
    pub fn internal(request_id: &str, source: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id, error = %source, "internal error");
        Self::new(Code::Internal).with_details(json!({ "requestId": request_id }))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let m = e.message();
        let code = match &e {
            EngineError::RoleNotAllowed { .. } => Code::Forbidden,
            EngineError::GuardFailed { .. } => Code::GuardFailed,
            EngineError::InvalidInput { .. } => Code::InvalidInput,
            EngineError::DeadlinePassed { .. } => Code::DeadlinePassed,
            EngineError::UnknownEvent { .. }
            | EngineError::NotAllowedFromState { .. }
            | EngineError::AlreadyFinal { .. }
            | EngineError::UndefinedState { .. } => Code::InvalidTransition,
        };
        let details = match &e {
            EngineError::InvalidInput { errors, .. } => {
                json!({ "reason": e.code(), "fields": errors })
            }
            EngineError::GuardFailed { guard, .. } => json!({ "reason": e.code(), "guard": guard }),
            EngineError::DeadlinePassed { due_at, .. } => {
                json!({ "reason": e.code(), "dueAt": due_at })
            }
            EngineError::NotAllowedFromState {
                state,
                allowed_from,
                ..
            } => {
                json!({ "reason": e.code(), "state": state, "allowedFrom": allowed_from })
            }
            EngineError::RoleNotAllowed { required, .. } => {
                json!({ "reason": e.code(), "requiredRoles": required })
            }
            _ => json!({ "reason": e.code() }),
        };
        ApiError::new(code)
            .with_message(m.zh_cn, m.en)
            .with_details(details)
    }
}

/// Convert a service error. Backend failures become INTERNAL (masked, logged).
pub fn from_service(e: ServiceError, request_id: &str) -> ApiError {
    match e {
        ServiceError::Forbidden => ApiError::forbidden(),
        ServiceError::NotFound(what) => ApiError::not_found(&what),
        ServiceError::Invalid(errors) => ApiError::invalid(&errors),
        ServiceError::Store(s) => from_store(s, request_id),
        ServiceError::Refused(r) => refusal(&r),
    }
}

/// A programme refusal is INVALID_INPUT with `details.reason` (e.g.
/// BUDGET_LINE_MISSING, BUDGET_EXCEEDED, NOT_APPROVED, IMPORT_REJECTED) and the
/// refusal's own details (`rows` of an import, `remaining` of a line …).
pub fn refusal(r: &grantflow_service::programme::Refusal) -> ApiError {
    let mut details = serde_json::Map::new();
    details.insert("reason".into(), json!(r.reason));
    if let serde_json::Value::Object(extra) = &r.details {
        details.extend(extra.clone());
    }
    ApiError::new(Code::InvalidInput)
        .with_message(r.message_zh.clone(), r.message_en.clone())
        .with_details(serde_json::Value::Object(details))
}

pub fn from_store(e: StoreError, request_id: &str) -> ApiError {
    match e {
        StoreError::NotFound { what, .. } => ApiError::not_found(what),
        StoreError::Conflict { current_version, expected_version } => ApiError::new(Code::Conflict)
            .with_message(
                format!("数据已被他人修改：当前版本为 {current_version}，您提交的是 {expected_version}，请刷新后重试"),
                format!("conflict: the instance is at version {current_version}, not {expected_version}; reload and retry"),
            )
            .with_details(json!({ "currentVersion": current_version, "expectedVersion": expected_version })),
        StoreError::Duplicate { what, value } => ApiError::new(Code::InvalidInput)
            .with_message(format!("{what}「{value}」已存在"), format!("{what} `{value}` already exists"))
            .with_details(json!({ "fields": [{ "field": what, "code": "DUPLICATE" }] })),
        StoreError::IdempotencyMismatch { key } => ApiError::new(Code::Conflict)
            .with_message(
                "该幂等键已用于另一个请求",
                "this idempotency key was already used for a different request",
            )
            .with_details(json!({ "idempotencyKey": key, "reason": "IDEMPOTENCY_KEY_REUSED" })),
        StoreError::Engine(e) => e.into(),
        StoreError::InvalidToken => ApiError::new(Code::InvalidInput)
            .with_message("链接无效或已过期", "the token is invalid or expired")
            .with_details(json!({ "fields": [{ "field": "token", "code": "INVALID_TOKEN" }] })),
        StoreError::Invalid(msg) => ApiError::new(Code::InvalidInput).with_message(msg.clone(), msg),
        e @ (StoreError::Backend(_) | StoreError::DefinitionChanged { .. }) => ApiError::internal(request_id, &e),
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let message = format!("{} ({})", e.message_zh, e.message_en);
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", e.code.as_str());
            ext.set("messageZh", e.message_zh.clone());
            ext.set("messageEn", e.message_en.clone());
            // Every INTERNAL error names its request, where clients look for it on any
            // error (`extensions.requestId`), as well as in `details`.
            if let Some(rid) = e.details.get("requestId").and_then(|r| r.as_str()) {
                ext.set("requestId", rid);
            }
            if !e.details.is_null()
                && let Ok(v) = async_graphql::Value::from_json(e.details.clone())
            {
                ext.set("details", v);
            }
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Convert an expert-review error. Every one carries `details.reason`, the
/// review's own stable code (e.g. `EXPERT_CONFLICT` inside `ASSIGNMENT_REFUSED`,
/// `SCORE_OUT_OF_RANGE` per criterion of `SCORES_INVALID`); messages come in zh-CN and en.
pub fn from_review(e: grantflow_service::review::ReviewServiceError, request_id: &str) -> ApiError {
    use grantflow_domain::model::Lang;
    use grantflow_review::ReviewError as R;
    use grantflow_service::review::ReviewServiceError as S;
    let e = match e {
        S::Service(inner) => return from_service(inner, request_id),
        other => other,
    };
    let reason = e.code();
    let (zh, en) = (e.message(Lang::ZhCn), e.message(Lang::En));
    let field =
        |field: &str, code: &'static str| FieldError::new(field, code, zh.clone(), en.clone());
    let (code, fields) = match &e {
        S::Service(_) => return ApiError::internal(request_id, &e),
        S::Review(r) => match r {
            R::InvalidScores { errors } => (
                Code::InvalidInput,
                errors
                    .iter()
                    .map(|c| {
                        FieldError::new(
                            &c.criterion_id,
                            c.code(),
                            c.message(Lang::ZhCn),
                            c.message(Lang::En),
                        )
                    })
                    .collect(),
            ),
            R::AssignmentRefused { refusals } => (
                Code::InvalidInput,
                refusals
                    .iter()
                    .flat_map(|r| {
                        r.reasons.iter().map(|x| {
                            FieldError::new(
                                &r.expert_id,
                                x.code(),
                                x.message(Lang::ZhCn),
                                x.message(Lang::En),
                            )
                        })
                    })
                    .collect(),
            ),
            R::ReasonRequired { .. } => (Code::InvalidInput, vec![field("reason", "REQUIRED")]),
            R::JustificationRequired | R::NotAnOutlier { .. } => {
                (Code::InvalidInput, vec![field("justification", reason)])
            }
            R::TooManyExcludedOrgs { .. } => {
                (Code::InvalidInput, vec![field("organisationIds", reason)])
            }
            R::UnknownCategory { .. } => (Code::InvalidInput, vec![field("categories", reason)]),
            R::PanelTooSmall { .. } | R::InvalidRubric { .. } => {
                (Code::InvalidInput, vec![field("round", reason)])
            }
            R::ManagerOnly { .. }
            | R::NotAssignedExpert { .. }
            | R::ApplicationHidden { .. }
            | R::OwnScoresNotSubmitted => (Code::Forbidden, vec![]),
            R::UnknownApplication { .. } => (Code::NotFound, vec![]),
            R::InvalidTransition { .. }
            | R::NotReplaceable { .. }
            | R::NoConflictNotDeclared
            | R::NotEnoughEligibleExperts { .. } => (Code::InvalidTransition, vec![]),
            R::Export { .. } => return ApiError::internal(request_id, &e),
        },
        S::NoOpenRound { .. } | S::RoundClosed | S::NotOverdue { .. } | S::ReviewStarted => {
            (Code::InvalidTransition, vec![])
        }
        S::AssignmentChanged | S::Busy => (Code::Conflict, vec![]),
        S::NotAnExpert { .. } => (Code::InvalidInput, vec![field("userId", reason)]),
        S::Invalid { field: f, .. } => (Code::InvalidInput, vec![field(f, reason)]),
    };
    let mut details = json!({ "reason": reason });
    if !fields.is_empty() {
        details["fields"] = json!(fields);
    }
    if let S::Review(r) = &e {
        let report = r.report();
        if !report.details.is_empty() {
            details["problems"] = json!(report.details);
        }
    }
    ApiError::new(code)
        .with_message(zh, en)
        .with_details(details)
}

/// Input coercion failures are the client's: an `Int` beyond 32 bits, a negative value
/// for an unsigned argument, a string where an object is expected, a value refused by an
/// argument's validator. async-graphql reports them as field errors without a code,
/// which the transport would mask as INTERNAL; this extension gives them code
/// INVALID_INPUT with `details.reason` BAD_USER_INPUT and async-graphql's message, on every
/// transport (HTTP, WebSocket, in-process).
pub struct CoercionErrors;

/// The two message shapes of async-graphql's `InputValueError` (`custom` and
/// `expected_type`; `propagate` keeps the prefix), and its error for a declared variable
/// the request did not give (`Variable id is not defined.`).
fn is_coercion_message(message: &str) -> bool {
    message.starts_with("Failed to parse \"")
        || message.starts_with("Expected input type \"")
        || (message.starts_with("Variable ") && message.ends_with(" is not defined."))
}

/// Gives an uncoded coercion error its client code; other errors are left alone.
pub fn classify_coercion(e: &mut async_graphql::ServerError) {
    let has_code = e
        .extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some());
    if has_code || e.source.is_some() || !is_coercion_message(&e.message) {
        return;
    }
    let shown: String = e.message.chars().take(300).collect();
    let zh = format!("参数值的类型或范围不符：{shown}");
    let en = format!("an argument has the wrong type or is out of range: {shown}");
    let ext = e.extensions.get_or_insert_with(Default::default);
    ext.set("code", Code::InvalidInput.as_str());
    ext.set("messageZh", zh.clone());
    ext.set("messageEn", en.clone());
    let mut details = async_graphql::indexmap::IndexMap::new();
    details.insert(
        async_graphql::Name::new("reason"),
        async_graphql::Value::from("BAD_USER_INPUT"),
    );
    ext.set("details", async_graphql::Value::Object(details));
    e.message = format!("{zh} ({en})");
}

impl async_graphql::extensions::ExtensionFactory for CoercionErrors {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(CoercionErrors)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for CoercionErrors {
    async fn request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextRequest<'_>,
    ) -> async_graphql::Response {
        let mut resp = next.run(ctx).await;
        resp.errors.iter_mut().for_each(classify_coercion);
        resp
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, async_graphql::Response> {
        use futures::StreamExt;
        next.run(ctx, stream)
            .map(|mut resp| {
                resp.errors.iter_mut().for_each(classify_coercion);
                resp
            })
            .boxed()
    }
}
