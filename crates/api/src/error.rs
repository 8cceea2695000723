//! One error type for the API and one table of stable error codes. Every GraphQL error
//! carries `extensions.code`; internal errors are masked to the client and logged with a
//! request id.

use async_graphql::ErrorExtensions;
use grantflow_domain::input::FieldError;
use grantflow_domain::{Lang, UserFacing};
use serde_json::json;

/// The stable top-level error codes, defined once with the error model in
/// `grantflow_domain::error`.
pub use grantflow_domain::error::ErrorKind as Code;

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
        Self(Box::new(ApiErrorBody {
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

impl ApiError {
    /// The one conversion of an error that can reach a user ([`UserFacing`]: the engine's,
    /// the store's and the service's, programme refusals, expert review): its kind, its
    /// messages and its details. Internal failures are logged with the request id and
    /// masked.
    pub fn user_facing<E: UserFacing + std::fmt::Display + ?Sized>(
        e: &E,
        request_id: &str,
    ) -> Self {
        if e.kind() == Code::Internal {
            return Self::internal(request_id, &e);
        }
        Self::new(e.kind())
            .with_message(e.message(Lang::ZhCn), e.message(Lang::En))
            .with_details(e.details())
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let message = format!("{} ({})", e.message_zh, e.message_en);
        Self::new(message).extend_with(|_, ext| {
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
        std::sync::Arc::new(Self)
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

#[cfg(test)]
mod tests {
    use super::Code;
    use grantflow_service::programme::RefusalReason;

    /// The README's section between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
    fn section<'a>(readme: &'a str, name: &str) -> (usize, usize, &'a str) {
        let begin = format!("<!-- {name}:begin -->\n");
        let end = format!("<!-- {name}:end -->");
        let a = readme.find(&begin).expect("begin marker") + begin.len();
        let b = readme.find(&end).expect("end marker");
        (a, b, &readme[a..b])
    }

    fn error_codes_table() -> String {
        let mut t = String::from("| `extensions.code` | meaning |\n| --- | --- |\n");
        for kind in Code::ALL {
            t.push_str(&format!("| `{}` | {} |\n", kind.as_str(), kind.meaning()));
        }
        t
    }

    fn refusal_reasons_table() -> String {
        let mut t = String::from("| `details.reason` | meaning |\n| --- | --- |\n");
        for (reason, meaning) in RefusalReason::ALL {
            t.push_str(&format!("| `{}` | {meaning} |\n", reason.as_str()));
        }
        t
    }

    /// Every code and every programme refusal reason is in the README with its meaning,
    /// generated from the code, so the tables cannot go stale.
    #[test]
    fn readme_error_tables() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let mut readme = std::fs::read_to_string(path).unwrap();
        let mut stale = Vec::new();
        for (name, table) in [
            ("error-codes", error_codes_table()),
            ("refusal-reasons", refusal_reasons_table()),
        ] {
            let (a, b, current) = section(&readme, name);
            if current != table {
                stale.push(name);
                readme.replace_range(a..b, &table);
            }
        }
        if stale.is_empty() {
            return;
        }
        if std::env::var_os("GRANTFLOW_WRITE_README").is_some() {
            std::fs::write(path, readme).unwrap();
        } else {
            panic!(
                "README tables {stale:?} are stale; rerun with GRANTFLOW_WRITE_README=1 to rewrite them"
            );
        }
    }

    #[test]
    fn codes_and_reasons_are_distinct() {
        let mut codes: Vec<&str> = Code::ALL.iter().map(|k| k.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Code::ALL.len());
        let mut reasons: Vec<&str> = RefusalReason::ALL.iter().map(|(r, _)| r.as_str()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), RefusalReason::ALL.len());
        for (r, _) in RefusalReason::ALL {
            assert_eq!(RefusalReason::from_code(r.as_str()), Some(r));
        }
    }
}
