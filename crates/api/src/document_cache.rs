//! Parsed GraphQL documents, kept by the SHA-256 of their text so that an operation sent
//! again is not parsed again (clients send the same few documents over and over).
//!
//! Only parsing is cached. Validation — the rules, the variables' values, depth,
//! complexity, aliases — runs for every request, hit or miss: it depends on the variables
//! (a page size multiplies complexity), and the resolvers check the viewer as always.
//! The extension is the schema's innermost, so the bracket-nesting check before parsing
//! and the alias and depth measures after it (`nesting.rs`, `limits.rs`) see every
//! request too. A document enters the cache only once its request passed all of that and
//! is about to execute, so a refused document never takes a place; documents longer than
//! [`MAX_CACHED_DOCUMENT_BYTES`] are parsed every time, which bounds the memory the cache
//! holds with the number of entries (`graphql.document_cache_entries`, SECURITY.md).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerResult, Variables};
use sha2::{Digest, Sha256};

/// Longer documents are not cached.
pub const MAX_CACHED_DOCUMENT_BYTES: usize = 16 * 1024;

type Key = [u8; 32];

/// The cache the schema's requests share: at most `capacity` documents, the oldest
/// dropped first.
pub struct DocumentCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<Key, Arc<ExecutableDocument>>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
}

impl DocumentCache {
    /// A cache of `capacity` documents (0: none is kept).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn key(text: &str) -> Key {
        Sha256::digest(text.as_bytes()).into()
    }

    fn get(&self, key: &Key) -> Option<Arc<ExecutableDocument>> {
        self.lock().by_key.get(key).cloned()
    }

    fn insert(&self, key: Key, document: Arc<ExecutableDocument>) {
        let mut entries = self.lock();
        if self.capacity == 0 || entries.by_key.contains_key(&key) {
            return;
        }
        while entries.order.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
        entries.by_key.insert(key, document);
        entries.order.push_back(key);
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The schema's extension over a shared [`DocumentCache`].
pub struct CachedDocuments(pub Arc<DocumentCache>);

impl ExtensionFactory for CachedDocuments {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CachedDocumentsExtension {
            cache: self.0.clone(),
            parsed: Mutex::new(None),
        })
    }
}

struct CachedDocumentsExtension {
    cache: Arc<DocumentCache>,
    /// A document this request parsed, cached when the request reaches execution.
    parsed: Mutex<Option<(Key, Arc<ExecutableDocument>)>>,
}

#[async_trait::async_trait]
impl Extension for CachedDocumentsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if self.cache.capacity == 0 || query.len() > MAX_CACHED_DOCUMENT_BYTES {
            return next.run(ctx, query, variables).await;
        }
        let key = DocumentCache::key(query);
        if let Some(document) = self.cache.get(&key) {
            // Execution takes the document apart: each request gets its own copy.
            return Ok(ExecutableDocument::clone(&document));
        }
        let document = next.run(ctx, query, variables).await?;
        *self.parsed.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((key, Arc::new(document.clone())));
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // Every extension's parsing and validation accepted the document.
        let parsed = self
            .parsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((key, document)) = parsed {
            self.cache.insert(key, document);
        }
        next.run(ctx, operation_name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Arc<ExecutableDocument> {
        Arc::new(async_graphql::parser::parse_query(text).unwrap())
    }

    #[test]
    fn keeps_at_most_its_capacity_dropping_the_oldest() {
        let cache = DocumentCache::new(2);
        let texts = ["{ a }", "{ b }", "{ c }"];
        for t in texts {
            cache.insert(DocumentCache::key(t), doc(t));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&DocumentCache::key("{ a }")).is_none());
        assert!(cache.get(&DocumentCache::key("{ c }")).is_some());
        // Inserting a kept document again changes nothing.
        cache.insert(DocumentCache::key("{ b }"), doc("{ b }"));
        assert!(cache.get(&DocumentCache::key("{ b }")).is_some());
        assert_eq!(cache.len(), 2);

        let none = DocumentCache::new(0);
        none.insert(DocumentCache::key("{ a }"), doc("{ a }"));
        assert!(none.is_empty());
    }
}
