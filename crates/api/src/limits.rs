//! Protections against expensive requests: limits on depth, complexity (list fields
//! multiply by their page size) and aliases, each refused with code BAD_REQUEST and a
//! `reason`; and a per-token rate limit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, ServerError, ServerResult, ValidationResult, Variables};

/// Refuses documents deeper than `max_depth`, more complex than `max_complexity`, or
/// with more than `max_aliases` aliased fields (e.g. the same expensive field requested
/// 500 times under different names; aliases inside a fragment count once per spread).
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
        })
    }
}

struct QueryLimitsExtension {
    max_depth: usize,
    max_complexity: usize,
    max_aliases: usize,
}

/// Counts aliases, expanding fragment spreads; each fragment is counted once (memoised)
/// however often it is spread, and a cycle (refused later by validation) counts nothing.
struct AliasCounter<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    memo: HashMap<&'a str, usize>,
    visiting: HashSet<&'a str>,
}

impl<'a> AliasCounter<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> usize {
        set.items.iter().fold(0usize, |n, item| {
            let here = match &item.node {
                Selection::Field(f) => usize::from(f.node.alias.is_some())
                    .saturating_add(self.selection_set(&f.node.selection_set.node)),
                Selection::InlineFragment(frag) => {
                    self.selection_set(&frag.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            n.saturating_add(here)
        })
    }

    fn fragment(&mut self, name: &'a str) -> usize {
        if let Some(n) = self.memo.get(name) {
            return *n;
        }
        if !self.visiting.insert(name) {
            return 0;
        }
        let n = match self.fragments.get(name) {
            Some(f) => self.selection_set(&f.node.selection_set.node),
            None => 0,
        };
        self.visiting.remove(name);
        self.memo.insert(name, n);
        n
    }
}

fn total_aliases(doc: &ExecutableDocument) -> usize {
    let mut counter = AliasCounter {
        fragments: &doc.fragments,
        memo: HashMap::new(),
        visiting: HashSet::new(),
    };
    doc.operations.iter().fold(0usize, |n, (_, op)| {
        n.saturating_add(counter.selection_set(&op.node.selection_set.node))
    })
}

fn refuse(reason: &str, zh: String, en: String) -> ServerError {
    let mut e = ServerError::new(format!("{zh} ({en})"), None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "BAD_REQUEST");
    ext.set("reason", reason);
    ext.set("messageZh", zh);
    ext.set("messageEn", en);
    e.extensions = Some(ext);
    e
}

#[async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let n = total_aliases(&doc);
        if n > self.max_aliases {
            let max = self.max_aliases;
            return Err(refuse(
                "TOO_MANY_ALIASES",
                format!("查询使用了 {n} 个别名，上限为 {max}"),
                format!("the query uses {n} aliases; at most {max} are allowed"),
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.depth > self.max_depth {
            let (depth, max) = (result.depth, self.max_depth);
            return Err(vec![refuse(
                "QUERY_TOO_DEEP",
                format!("查询嵌套 {depth} 层，上限为 {max} 层"),
                format!("the query is nested {depth} levels deep; at most {max} are allowed"),
            )]);
        }
        if result.complexity > self.max_complexity {
            let (complexity, max) = (result.complexity, self.max_complexity);
            return Err(vec![refuse(
                "QUERY_TOO_COMPLEX",
                format!("查询复杂度为 {complexity}，上限为 {max}：请减少字段或每页数量"),
                format!(
                    "the query's complexity is {complexity}; at most {max} is allowed: ask for fewer fields or smaller pages"
                ),
            )]);
        }
        Ok(result)
    }
}

/// A fixed window per key: at most `limit` requests in each window that starts with the
/// key's first request. In-memory, so per server process.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> Self {
        RateLimiter {
            limit,
            window: Duration::from_secs(60),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count a request for `key`; false when over the limit.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // Forget finished windows now and then, so the map does not grow without bound.
        if windows.len() > 10_000 {
            let window = self.window;
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_aliases_in_operations_and_fragments_once_per_spread() {
        let doc = async_graphql::parser::parse_query(
            "query { a: viewer { id } b: viewer { x: id } ...F } fragment F on Query { c: viewer { id } }",
        )
        .unwrap();
        assert_eq!(total_aliases(&doc), 4);
        let spread_twice = async_graphql::parser::parse_query(
            "{ organisations { ...F parent { ...F } } } fragment F on Organisation { a: id b: id }",
        )
        .unwrap();
        assert_eq!(total_aliases(&spread_twice), 4);
        let cycle = async_graphql::parser::parse_query(
            "{ viewer { ...A } } fragment A on User { a: id ...B } fragment B on User { b: id ...A }",
        )
        .unwrap();
        assert_eq!(total_aliases(&cycle), 2, "a cycle ends the count");
    }

    #[test]
    fn fragments_doubling_at_every_level_are_counted_without_blowing_up() {
        let mut q = String::from("{ viewer { ...F0 } }");
        for i in 0..80 {
            q.push_str(&format!(
                " fragment F{i} on User {{ x: id ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        q.push_str(" fragment F80 on User { id }");
        let doc = async_graphql::parser::parse_query(&q).unwrap();
        assert_eq!(
            total_aliases(&doc),
            usize::MAX,
            "saturates instead of overflowing"
        );
    }

    #[test]
    fn rate_limit_per_key() {
        let rl = RateLimiter::per_minute(3);
        assert!(rl.allow("a") && rl.allow("a") && rl.allow("a"));
        assert!(
            !rl.allow("a"),
            "the fourth request in the window is refused"
        );
        assert!(rl.allow("b"), "other keys are counted apart");
    }
}
