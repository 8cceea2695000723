//! Limits on nesting, checked before anything recursive sees the request.
//!
//! async-graphql's parser and validator recurse once per level of `{`, `[` and `(`, and a
//! literal nested a few hundred levels deep (`{__typename(x:{a:{a:{…}}})}`) overflowed the
//! stack of a worker. So the document text is scanned first, without recursion, and refused
//! beyond [`MAX_DOCUMENT_NESTING`] open brackets; variables (JSON) likewise beyond
//! [`MAX_VARIABLES_DEPTH`] levels, which is well below serde_json's own recursion limit
//! (128), so our refusal, with its reason, comes first.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, Variables};

/// Open brackets (`{`, `[`, `(` together) allowed at once in a document. graphql-js's
/// `getIntrospectionQuery()` needs 10 (its `TypeRef` fragment); an ordinary query stays
/// under 20 since the selection depth limit is 12.
pub const MAX_DOCUMENT_NESTING: usize = 48;

/// Levels allowed in the `variables` value (objects and lists; the value itself is level 1).
pub const MAX_VARIABLES_DEPTH: usize = 32;

/// Levels allowed in a whole JSON request body: a batch array, the request object and
/// the variables object around [`MAX_VARIABLES_DEPTH`].
pub const MAX_BODY_DEPTH: usize = MAX_VARIABLES_DEPTH + 3;

/// A refusal: which limit, and how deep the input went before we stopped reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// `NESTING_TOO_DEEP` (document text) or `INPUT_TOO_DEEP` (JSON variables or body).
    pub reason: &'static str,
    pub max: usize,
}

impl TooDeep {
    pub fn message_zh(&self) -> String {
        match self.reason {
            "NESTING_TOO_DEEP" => format!("查询文本的括号嵌套超过 {} 层", self.max),
            _ => format!("输入值（变量）嵌套超过 {} 层", self.max),
        }
    }

    pub fn message_en(&self) -> String {
        match self.reason {
            "NESTING_TOO_DEEP" => format!(
                "the document nests brackets more than {} levels deep",
                self.max
            ),
            _ => format!(
                "the input value (variables) nests more than {} levels deep",
                self.max
            ),
        }
    }

    /// The same request error as the other limits: code BAD_REQUEST with `reason`.
    pub fn server_error(&self) -> ServerError {
        let (zh, en) = (self.message_zh(), self.message_en());
        let mut e = ServerError::new(format!("{zh} ({en})"), None);
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", "BAD_REQUEST");
        ext.set("reason", self.reason);
        ext.set("messageZh", zh);
        ext.set("messageEn", en);
        e.extensions = Some(ext);
        e
    }
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message_zh(), self.message_en())
    }
}

/// Scans GraphQL document text: brackets inside strings, block strings and comments do
/// not count. Unbalanced brackets are left to the parser, which reports them.
pub fn check_document(text: &str) -> Result<(), TooDeep> {
    let bytes = text.as_bytes();
    let too_deep = TooDeep {
        reason: "NESTING_TOO_DEEP",
        max: MAX_DOCUMENT_NESTING,
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                // A comment runs to the end of the line.
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // A block string ends at the next unescaped `"""` (`\"""` is escaped).
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
                continue;
            }
            b'"' => {
                // A string ends at the next unescaped `"` or at the end of the line.
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_DOCUMENT_NESTING {
                    return Err(too_deep);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Scans JSON text (a request body, or `variables` given in a URL) for nesting beyond
/// `max` levels, skipping strings. Invalid JSON is left to the JSON parser.
pub fn check_json_text(bytes: &[u8], max: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(TooDeep {
                        reason: "INPUT_TOO_DEEP",
                        max,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The depth of a parsed JSON value, without recursion (a scalar is 1 level).
pub fn check_json_value(value: &serde_json::Value, max: usize) -> Result<(), TooDeep> {
    let mut stack: Vec<(&serde_json::Value, usize)> = vec![(value, 1)];
    while let Some((v, level)) = stack.pop() {
        if level > max {
            return Err(TooDeep {
                reason: "INPUT_TOO_DEEP",
                max,
            });
        }
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, level + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, level + 1))),
            _ => {}
        }
    }
    Ok(())
}

/// The depth of GraphQL variables, without recursion (the variables object is level 1).
pub fn check_variables(variables: &Variables) -> Result<(), TooDeep> {
    use async_graphql::Value;
    let mut stack: Vec<(&Value, usize)> = variables.values().map(|v| (v, 2)).collect();
    while let Some((v, level)) = stack.pop() {
        if level > MAX_VARIABLES_DEPTH {
            return Err(TooDeep {
                reason: "INPUT_TOO_DEEP",
                max: MAX_VARIABLES_DEPTH,
            });
        }
        match v {
            Value::List(items) => stack.extend(items.iter().map(|i| (i, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, level + 1))),
            _ => {}
        }
    }
    Ok(())
}

/// Checks every operation, whatever its transport (HTTP, WebSocket, in-process), before
/// the parser sees it.
pub struct NestingLimit;

impl ExtensionFactory for NestingLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Self)
    }
}

#[async_trait::async_trait]
impl Extension for NestingLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        check_document(query).map_err(|e| e.server_error())?;
        check_variables(variables).map_err(|e| e.server_error())?;
        next.run(ctx, query, variables).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{{__typename(x:{}1{})}}", "{a:".repeat(n), "}".repeat(n))
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let deep = "{".repeat(MAX_DOCUMENT_NESTING + 1);
        assert!(check_document(&deep).is_err());
        assert!(check_document(&format!("{{ a(x: \"{deep}\") }}")).is_ok());
        assert!(check_document(&format!("{{ a(x: \"\"\"{deep} \\\"\"\" \"\"\") }}")).is_ok());
        assert!(check_document(&format!("# {deep}\n{{ a }}")).is_ok());
        assert!(check_document(&format!("{{ a(x: \"\\\"{deep}\") }}")).is_ok());
    }

    #[test]
    fn the_cap_is_exact() {
        // `{` of the operation and `(` of the arguments count too.
        assert!(check_document(&nested(MAX_DOCUMENT_NESTING - 2)).is_ok());
        let e = check_document(&nested(MAX_DOCUMENT_NESTING - 1)).unwrap_err();
        assert_eq!(e.reason, "NESTING_TOO_DEEP");
        assert!(check_document(&nested(100_000)).is_err());
    }

    #[test]
    fn json_depth() {
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_BODY_DEPTH + 1),
            "]".repeat(MAX_BODY_DEPTH + 1)
        );
        assert!(check_json_text(deep.as_bytes(), MAX_BODY_DEPTH).is_err());
        assert!(check_json_text(b"{\"q\":\"[[[[[[[[[[\\\"[[[[\"}", 2).is_ok());
        let v: serde_json::Value = serde_json::from_str("{\"a\":[{\"b\":1}]}").unwrap();
        assert!(check_json_value(&v, 4).is_ok());
        assert!(check_json_value(&v, 3).is_err());
    }
}
