//! The workflow diagram as server-rendered SVG, the current state highlighted: no
//! network, no graphviz at run time. Layout: states in layers by breadth-first distance
//! from the initial state (states never reached come last), in declaration order within
//! a layer; forward edges are straight, edges back to an earlier layer or within one
//! are dashed curves on the right.
//!
//! Only presentation attributes (no `style`), so the console's CSP holds.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

use serde_json::Value;

const NODE_W: i64 = 168;
const NODE_H: i64 = 40;
const GAP_X: i64 = 24;
const GAP_Y: i64 = 36;
const MARGIN: i64 = 16;
/// Characters of a title that fit a box; longer ones end in "…" (the full title is the
/// box's tooltip and in the accessible description).
const MAX_CHARS: usize = 11;

/// A state as the layout needs it.
pub(crate) struct Node {
    pub id: String,
    pub title: String,
    pub initial: bool,
    pub terminal: bool,
}

/// One transition (from each of its source states).
pub(crate) struct Edge {
    pub from: String,
    pub to: String,
    pub title: String,
}

/// Reads the `workflow { states transitions }` of GraphQL; `title` picks the language.
pub(crate) fn from_graphql(
    workflow: &Value,
    title: impl Fn(&Value) -> String,
) -> (Vec<Node>, Vec<Edge>) {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let nodes = list(&workflow["states"])
        .iter()
        .map(|s| Node {
            id: s["id"].as_str().unwrap_or_default().to_string(),
            title: title(&s["title"]),
            initial: s["initial"] == true,
            terminal: s["final"] == true,
        })
        .collect();
    let edges = list(&workflow["transitions"])
        .iter()
        .flat_map(|t| {
            let to = t["to"].as_str().unwrap_or_default().to_string();
            let label = title(&t["title"]);
            list(&t["from"])
                .into_iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .map(move |from| Edge {
                    from,
                    to: to.clone(),
                    title: label.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    (nodes, edges)
}

/// Breadth-first layer of every state.
fn layers(nodes: &[Node], edges: &[Edge]) -> BTreeMap<String, usize> {
    let mut layer = BTreeMap::new();
    let mut queue: VecDeque<&str> = VecDeque::new();
    for n in nodes.iter().filter(|n| n.initial) {
        layer.insert(n.id.clone(), 0);
        queue.push_back(&n.id);
    }
    while let Some(id) = queue.pop_front() {
        let next = layer[id] + 1;
        for e in edges.iter().filter(|e| e.from == id) {
            if !layer.contains_key(&e.to) {
                layer.insert(e.to.clone(), next);
                queue.push_back(&e.to);
            }
        }
    }
    let last = layer.values().max().map_or(0, |m| m + 1);
    for n in nodes {
        layer.entry(n.id.clone()).or_insert(last);
    }
    layer
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn short(s: &str) -> String {
    if s.chars().count() <= MAX_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// The SVG (inline in the page); `current` is the state to highlight, `label` the
/// accessible name of the picture.
pub(crate) fn svg(nodes: &[Node], edges: &[Edge], current: &str, label: &str) -> String {
    let layer = layers(nodes, edges);
    let mut rows: BTreeMap<usize, Vec<&Node>> = BTreeMap::new();
    for n in nodes {
        rows.entry(layer[&n.id]).or_default().push(n);
    }
    let widest = rows.values().map(Vec::len).max().unwrap_or(1) as i64;
    let width = 2 * MARGIN + widest * NODE_W + (widest - 1).max(0) * GAP_X + 60;
    let height = 2 * MARGIN + rows.len() as i64 * (NODE_H + GAP_Y);
    let mut pos: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (row, (_, ns)) in rows.iter().enumerate() {
        let row_w = ns.len() as i64 * NODE_W + (ns.len() as i64 - 1) * GAP_X;
        let x0 = (width - 60 - row_w) / 2;
        for (i, n) in ns.iter().enumerate() {
            let x = x0 + i as i64 * (NODE_W + GAP_X);
            let y = MARGIN + row as i64 * (NODE_H + GAP_Y);
            pos.insert(&n.id, (x, y));
        }
    }
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" aria-labelledby="diagram-title" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><title id="diagram-title">{}</title><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5b6675"/></marker></defs>"##,
        escape(label)
    );
    for e in edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(e.from.as_str()), pos.get(e.to.as_str()))
        else {
            continue;
        };
        let title = escape(&e.title);
        if y2 > y1 {
            let _ = write!(
                out,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#5b6675" stroke-width="1.2" marker-end="url(#arrow)"><title>{title}</title></line>"##,
                x1 + NODE_W / 2,
                y1 + NODE_H,
                x2 + NODE_W / 2,
                y2
            );
        } else {
            // Back or sideways: a curve out to the right and back.
            let bulge = x1.max(x2) + NODE_W + 40 + (y1 - y2).abs() / 8;
            let _ = write!(
                out,
                r##"<path d="M{},{} C{bulge},{} {bulge},{} {},{}" fill="none" stroke="#8a94a3" stroke-width="1" stroke-dasharray="4 3" marker-end="url(#arrow)"><title>{title}</title></path>"##,
                x1 + NODE_W,
                y1 + NODE_H / 2,
                y1 + NODE_H / 2,
                y2 + NODE_H / 2,
                x2 + NODE_W,
                y2 + NODE_H / 2
            );
        }
    }
    for n in nodes {
        let (x, y) = pos[n.id.as_str()];
        let here = n.id == current;
        let (fill, stroke, text, sw) = if here {
            ("#0b5cad", "#0b5cad", "#ffffff", 3)
        } else if n.terminal {
            ("#eef1f5", "#5b6675", "#1d2733", 1)
        } else {
            ("#ffffff", "#5b6675", "#1d2733", 1)
        };
        let rx = if n.terminal { 20 } else { 6 };
        let _ = write!(
            out,
            r##"<g class="state{}" data-state="{}"><title>{}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/><text x="{}" y="{}" text-anchor="middle" font-size="13" fill="{text}">{}</text></g>"##,
            if here { " current" } else { "" },
            escape(&n.id),
            escape(&n.title),
            x + NODE_W / 2,
            y + NODE_H / 2 + 5,
            escape(&short(&n.title)),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wf() -> Value {
        json!({
            "states": [
                { "id": "draft", "title": { "zhCn": "填写", "en": "Draft" }, "initial": true, "final": false },
                { "id": "check", "title": { "zhCn": "审核<&>", "en": "Check" }, "initial": false, "final": false },
                { "id": "done", "title": { "zhCn": "完成", "en": "Done" }, "initial": false, "final": true },
                { "id": "orphan", "title": { "zhCn": "孤立", "en": "Orphan" }, "initial": false, "final": true }
            ],
            "transitions": [
                { "event": "submit", "title": { "zhCn": "提交", "en": "Submit" }, "from": ["draft"], "to": "check" },
                { "event": "return", "title": { "zhCn": "退回", "en": "Return" }, "from": ["check"], "to": "draft" },
                { "event": "pass", "title": { "zhCn": "通过", "en": "Pass" }, "from": ["check", "draft"], "to": "done" }
            ]
        })
    }

    #[test]
    fn states_are_layered_by_distance_from_the_initial_state() {
        let (nodes, edges) = from_graphql(&wf(), |t| t["zhCn"].as_str().unwrap().to_string());
        let l = layers(&nodes, &edges);
        assert_eq!(
            (l["draft"], l["check"], l["done"], l["orphan"]),
            (0, 1, 1, 2)
        );
        assert_eq!(edges.len(), 4, "one edge per source state");
    }

    #[test]
    fn the_current_state_is_highlighted_and_text_is_escaped() {
        let (nodes, edges) = from_graphql(&wf(), |t| t["zhCn"].as_str().unwrap().to_string());
        let svg = svg(&nodes, &edges, "check", "流程图");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"state current\"").count(), 1);
        assert!(svg.contains("data-state=\"check\"><title>审核&lt;&amp;&gt;</title>"));
        assert!(
            !svg.contains("style="),
            "presentation attributes only (CSP)"
        );
        assert!(
            svg.contains("stroke-dasharray"),
            "the return edge is drawn back"
        );
    }

    #[test]
    fn long_titles_are_shortened() {
        assert_eq!(short("一二三四五六七八九十甲乙"), "一二三四五六七八九十…");
        assert_eq!(short("短"), "短");
    }
}
