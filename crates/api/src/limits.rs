//! Protections against expensive requests: limits on depth, complexity (list fields
//! multiply by their page size) and aliases, each refused with code BAD_REQUEST and a
//! `reason`. (The rate limits are in `throttle.rs`.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

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
    /// Introspection is enabled: `__schema`/`__type` selections get their own depth limit
    /// ([`INTROSPECTION_MAX_DEPTH`]) instead of `max_depth`.
    pub introspection: bool,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
            introspection: self.introspection,
            depth: Mutex::new(None),
        })
    }
}

struct QueryLimitsExtension {
    max_depth: usize,
    max_complexity: usize,
    max_aliases: usize,
    introspection: bool,
    /// The document's depth, measured when it is parsed and refused after validation (so
    /// that a document that is both invalid and deep reports what is invalid).
    depth: Mutex<Option<(usize, usize)>>,
}

/// The depth allowed below a root `__schema` or `__type` field while introspection is
/// enabled. Standard clients' introspection queries nest 13–15 levels (graphql-js
/// `getIntrospectionQuery()` 15, Python `gql` 13, GraphiQL's), more than `max_depth`; only
/// introspection types can appear below those fields, so no query of data can ride on
/// the allowance, and the complexity limit still counts every field.
pub const INTROSPECTION_MAX_DEPTH: usize = 32;

/// Fragment spreads nested (without fields between them) deeper than this count as too
/// deep: the measurement recurses through them.
const MAX_SPREAD_NESTING: usize = 64;

/// Measures depth like the validator (a field is one level; fragments add none), except
/// that root introspection fields are measured apart. Each result is capped at its
/// budget + 1, so the work and the recursion are bounded by the limit, not the document.
struct DepthMeter<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    exempt_introspection: bool,
    memo: HashMap<(&'a str, usize, bool), (usize, usize)>,
    visiting: HashSet<&'a str>,
}

impl<'a> DepthMeter<'a> {
    /// (ordinary depth, introspection depth) of `set`; `root` for an operation's own
    /// selection set (and fragments spread directly into it).
    fn measure(&mut self, set: &'a SelectionSet, budget: usize, root: bool) -> (usize, usize) {
        let (mut plain, mut intro) = (0usize, 0usize);
        for item in &set.items {
            let (p, i) = match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let children = &f.node.selection_set.node;
                    if root && self.exempt_introspection && (name == "__schema" || name == "__type")
                    {
                        let (inner, _) = self.measure(children, INTROSPECTION_MAX_DEPTH - 1, false);
                        (0, 1 + inner)
                    } else if budget == 0 {
                        (1, 0)
                    } else {
                        let (inner, _) = self.measure(children, budget - 1, false);
                        (1 + inner, 0)
                    }
                }
                Selection::InlineFragment(frag) => {
                    self.measure(&frag.node.selection_set.node, budget, root)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, budget, root)
                }
            };
            plain = plain.max(p);
            intro = intro.max(i);
        }
        (plain, intro)
    }

    fn fragment(&mut self, name: &'a str, budget: usize, root: bool) -> (usize, usize) {
        if let Some(d) = self.memo.get(&(name, budget, root)) {
            return *d;
        }
        if self.visiting.len() >= MAX_SPREAD_NESTING {
            return (budget + 1, 0);
        }
        if !self.visiting.insert(name) {
            return (0, 0); // A cycle: refused by validation.
        }
        let d = match self.fragments.get(name) {
            Some(f) => self.measure(&f.node.selection_set.node, budget, root),
            None => (0, 0),
        };
        self.visiting.remove(name);
        self.memo.insert((name, budget, root), d);
        d
    }
}

/// The deepest operation of `doc`: (ordinary depth capped at `max_depth + 1`,
/// introspection depth capped at [`INTROSPECTION_MAX_DEPTH`] + 1). Without the exemption
/// introspection fields count as ordinary ones.
pub fn document_depth(
    doc: &ExecutableDocument,
    max_depth: usize,
    exempt_introspection: bool,
) -> (usize, usize) {
    let mut meter = DepthMeter {
        fragments: &doc.fragments,
        exempt_introspection,
        memo: HashMap::new(),
        visiting: HashSet::new(),
    };
    doc.operations.iter().fold((0, 0), |(p, i), (_, op)| {
        let (op_p, op_i) = meter.measure(&op.node.selection_set.node, max_depth, true);
        (p.max(op_p), i.max(op_i))
    })
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
        *self
            .depth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(document_depth(&doc, self.max_depth, self.introspection));
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
        let measured = *self
            .depth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (depth, intro_depth) = measured.unwrap_or((result.depth, 0));
        for (depth, max) in [
            (depth, self.max_depth),
            (intro_depth, INTROSPECTION_MAX_DEPTH),
        ] {
            if depth > max {
                // The measure stops one level past the limit: say "at least".
                return Err(vec![refuse(
                    "QUERY_TOO_DEEP",
                    format!("查询嵌套至少 {depth} 层，上限为 {max} 层"),
                    format!(
                        "the query is nested at least {depth} levels deep; at most {max} are allowed"
                    ),
                )]);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// graphql-js 16's `getIntrospectionQuery()` (15 levels with its TypeRef fragment).
    const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } }
      fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
      fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

    fn depth(q: &str, exempt: bool) -> (usize, usize) {
        document_depth(&async_graphql::parser::parse_query(q).unwrap(), 12, exempt)
    }

    #[test]
    fn introspection_is_measured_apart_only_when_enabled() {
        let (plain, intro) = depth(INTROSPECTION, true);
        assert_eq!(plain, 0);
        assert!((13..=INTROSPECTION_MAX_DEPTH).contains(&intro), "{intro}");
        assert_eq!(depth(INTROSPECTION, false).0, 13, "capped one past 12");
        // Fields beside __schema are measured as usual, and so are fields that only
        // share its name below the root.
        let deep = "{ viewer { organisation { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } } } } }";
        let (plain, _) = depth(
            &format!(
                "{{ __schema {{ types {{ name }} }} {} }}",
                &deep[1..deep.len() - 1]
            ),
            true,
        );
        assert_eq!(plain, 13);
        assert_eq!(depth("{ viewer { __type { name } } }", true), (3, 0));
        // Spread into the root, introspection is still recognised.
        assert_eq!(
            depth(
                "{ ...F } fragment F on Query { __type(name: \"Query\") { name } }",
                true
            ),
            (0, 2)
        );
    }

    #[test]
    fn deep_introspection_is_still_bounded() {
        let mut q = String::from("{ __schema { types { ");
        for _ in 0..40 {
            q.push_str("ofType { ");
        }
        q.push_str("name");
        q.push_str(&" }".repeat(43));
        assert_eq!(depth(&q, true).1, INTROSPECTION_MAX_DEPTH + 1);
    }

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
}
