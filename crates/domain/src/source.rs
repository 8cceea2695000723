//! Mapping places in a workflow document (`states[2].deadline.after`) back to lines and
//! columns of the file, so that every diagnostic names where to look.

use std::fmt;
use std::ops::Range;

use toml_edit::{Document, Item, Value};

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the document, e.g. `transitions[3].guard`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocPath(pub Vec<Seg>);

impl DocPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Self(v)
    }

    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
}

/// Shorthand: `path!("states", 2, "deadline")`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut p = $crate::source::DocPath::root();
        $( p = $crate::source::IntoSeg::push_onto($seg, p); )*
        p
    }};
}

pub trait IntoSeg {
    fn push_onto(self, path: DocPath) -> DocPath;
}

impl IntoSeg for &str {
    fn push_onto(self, path: DocPath) -> DocPath {
        path.key(self)
    }
}

impl IntoSeg for &String {
    fn push_onto(self, path: DocPath) -> DocPath {
        path.key(self)
    }
}

impl IntoSeg for usize {
    fn push_onto(self, path: DocPath) -> DocPath {
        path.index(self)
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A parsed document that can locate paths.
pub struct SourceMap<'a> {
    text: &'a str,
    doc: Option<Document<&'a str>>,
}

impl<'a> SourceMap<'a> {
    pub fn new(text: &'a str) -> Self {
        SourceMap {
            text,
            doc: Document::parse(text).ok(),
        }
    }

    /// 1-based (line, column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The span of the value at `path`, or of its nearest ancestor that exists.
    pub fn span(&self, path: &DocPath) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut best: Option<Range<usize>> = None;
        let mut current = Node::Table(doc.as_table());
        for seg in &path.0 {
            let next = match (&current, seg) {
                (Node::Table(t), Seg::Key(k)) => {
                    if let Some((key, item)) = t.get_key_value(k) {
                        best = key.span().or(best);
                        Some(Node::Item(item))
                    } else {
                        None
                    }
                }
                (Node::Item(item), seg) => descend_item(item, seg, &mut best),
                (Node::Value(v), seg) => descend_value(v, seg, &mut best),
                _ => None,
            };
            match next {
                Some(n) => {
                    if let Some(s) = n.span() {
                        best = Some(s);
                    }
                    current = n;
                }
                None => break,
            }
        }
        best
    }

    pub fn locate(&self, path: &DocPath) -> (usize, usize) {
        match self.span(path) {
            Some(span) => self.line_col(span.start),
            None => (1, 1),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

enum Node<'d> {
    Table(&'d toml_edit::Table),
    Item(&'d Item),
    Value(&'d Value),
}

impl Node<'_> {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
        }
    }
}

fn descend_item<'d>(
    item: &'d Item,
    seg: &Seg,
    best: &mut Option<Range<usize>>,
) -> Option<Node<'d>> {
    match (item, seg) {
        (Item::Table(t), Seg::Key(k)) => {
            let (key, child) = t.get_key_value(k)?;
            if let Some(s) = key.span() {
                *best = Some(s);
            }
            Some(Node::Item(child))
        }
        (Item::ArrayOfTables(a), Seg::Index(i)) => a.get(*i).map(Node::Table),
        (Item::Value(v), seg) => descend_value(v, seg, best),
        _ => None,
    }
}

fn descend_value<'d>(
    value: &'d Value,
    seg: &Seg,
    best: &mut Option<Range<usize>>,
) -> Option<Node<'d>> {
    match (value, seg) {
        (Value::Array(a), Seg::Index(i)) => a.get(*i).map(Node::Value),
        (Value::InlineTable(t), Seg::Key(k)) => {
            let (key, child) = t.get_key_value(k)?;
            if let Some(s) = key.span() {
                *best = Some(s);
            }
            Some(Node::Item(child))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_values() {
        let text = "id = \"x\"\n\n[[states]]\nid = \"a\"\n\n[[states]]\nid = \"b\"\ndeadline = { after = \"7d\", reminders = { before = [\"1d\", \"9d\"] } }\n";
        let map = SourceMap::new(text);
        assert_eq!(map.locate(&path!("id")), (1, 6));
        assert_eq!(map.locate(&path!("states", 1, "id")), (7, 6));
        assert_eq!(
            map.locate(&path!("states", 1, "deadline", "reminders", "before", 1)),
            (8, 58)
        );
        // A missing key falls back to the nearest ancestor.
        assert_eq!(map.locate(&path!("states", 1, "nothing")).0, 6);
        assert_eq!(
            path!("states", 1, "deadline").to_string(),
            "states[1].deadline"
        );
    }
}
