//! Diagrams of a workflow definition: Mermaid (`flowchart`, rendered by GitHub and Mermaid
//! Live) and Graphviz DOT. Stages are drawn as clusters in lifecycle order, states show
//! their Chinese title, id and deadline, the initial state is entered from a filled dot,
//! final states are drawn with a double border, and each transition is an edge labelled
//! with its event, the roles that may fire it in brackets and its guard. Timeouts (events
//! fired by the scheduler) are dashed edges labelled `⏰ event`.
//!
//! The output depends only on the definition and is byte-for-byte deterministic, so it
//! can be committed and compared.

use std::fmt::Write as _;

use crate::SCHEDULER_ROLE;
use crate::model::{DeadlineDef, StateDef, TransitionDef, WorkflowDefinition};

/// Guards longer than this many characters are cut and end with `…`.
pub const GUARD_MAX_CHARS: usize = 60;

/// The id of the filled dot that points at the initial state.
const START_NODE: &str = "start_point";

/// A Mermaid `flowchart` of the workflow.
pub fn mermaid(def: &WorkflowDefinition) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "%% {} {} ({} v{})",
        one_line(&def.title.zh_cn),
        one_line(&def.title.en),
        one_line(&def.id),
        def.version
    );
    out.push_str("flowchart TD\n");
    let _ = writeln!(out, "  {START_NODE}((\" \"))");
    for (stage_id, stage_title, states) in clusters(def) {
        match stage_id {
            Some(id) => {
                let _ = writeln!(
                    out,
                    "  subgraph {}[\"{}\"]",
                    node_id("g", id),
                    mermaid_text(&format!("{stage_title} {id}"))
                );
                for s in states {
                    let _ = writeln!(out, "    {}", mermaid_state(s));
                }
                out.push_str("  end\n");
            }
            None => {
                for s in states {
                    let _ = writeln!(out, "  {}", mermaid_state(s));
                }
            }
        }
    }
    if let Some(initial) = def.initial_state() {
        let _ = writeln!(out, "  {START_NODE} --> {}", node_id("s", &initial.id));
    }
    for t in &def.transitions {
        let label = mermaid_text_lines(&edge_label(def, t));
        let arrow = if is_timeout(def, t) { "-.->" } else { "-->" };
        for from in t.from.as_slice() {
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{label}\"| {}",
                node_id("s", from),
                node_id("s", &t.to)
            );
        }
    }
    out.push_str("  classDef initial fill:#222,stroke:#222,color:#222\n");
    out.push_str("  classDef final fill:#eeeeee,stroke:#333,stroke-width:3px\n");
    let _ = writeln!(out, "  class {START_NODE} initial");
    let finals: Vec<String> = def
        .states
        .iter()
        .filter(|s| s.is_final)
        .map(|s| node_id("s", &s.id))
        .collect();
    if !finals.is_empty() {
        let _ = writeln!(out, "  class {} final", finals.join(","));
    }
    out
}

/// A Graphviz DOT digraph of the workflow (`dot -Tsvg` renders it).
pub fn dot(def: &WorkflowDefinition) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// {} {} ({} v{})",
        one_line(&def.title.zh_cn),
        one_line(&def.title.en),
        one_line(&def.id),
        def.version
    );
    let _ = writeln!(out, "digraph \"{}\" {{", dot_text(&def.id));
    let _ = writeln!(
        out,
        "  graph [rankdir=TB, compound=true, fontname=\"sans-serif\", labelloc=t, label=\"{}\"];",
        dot_text(&format!("{} {} v{}", def.title.zh_cn, def.id, def.version))
    );
    out.push_str("  node [shape=box, style=rounded, fontname=\"sans-serif\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"sans-serif\", fontsize=9];\n");
    let _ = writeln!(
        out,
        "  \"{START_NODE}\" [shape=point, width=0.2, label=\"\"];"
    );
    for (stage_id, stage_title, states) in clusters(def) {
        match stage_id {
            Some(id) => {
                let _ = writeln!(out, "  subgraph \"cluster_{}\" {{", dot_text(id));
                let _ = writeln!(
                    out,
                    "    label=\"{}\";",
                    dot_text(&format!("{stage_title} {id}"))
                );
                out.push_str("    style=\"rounded,dashed\";\n    color=\"#888888\";\n");
                for s in states {
                    let _ = writeln!(out, "    {}", dot_state(s));
                }
                out.push_str("  }\n");
            }
            None => {
                for s in states {
                    let _ = writeln!(out, "  {}", dot_state(s));
                }
            }
        }
    }
    if let Some(initial) = def.initial_state() {
        let _ = writeln!(
            out,
            "  \"{START_NODE}\" -> \"{}\";",
            dot_text(&node_id("s", &initial.id))
        );
    }
    for t in &def.transitions {
        let label = edge_label(def, t)
            .iter()
            .map(|l| dot_text(l))
            .collect::<Vec<_>>()
            .join("\\n");
        let style = if is_timeout(def, t) {
            ", style=dashed, color=\"#b35806\", fontcolor=\"#b35806\""
        } else {
            ""
        };
        for from in t.from.as_slice() {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{label}\"{style}];",
                dot_text(&node_id("s", from)),
                dot_text(&node_id("s", &t.to))
            );
        }
    }
    out.push_str("}\n");
    out
}

/// States grouped by stage, in the order the stages are declared; states in an undeclared
/// stage come last, outside any cluster. Stages without states are left out.
fn clusters(def: &WorkflowDefinition) -> Vec<(Option<&str>, &str, Vec<&StateDef>)> {
    let mut groups: Vec<(Option<&str>, &str, Vec<&StateDef>)> = def
        .stages
        .iter()
        .map(|st| {
            let states = def.states.iter().filter(|s| s.stage == st.id).collect();
            (Some(st.id.as_str()), st.title.zh_cn.as_str(), states)
        })
        .collect();
    let loose: Vec<&StateDef> = def
        .states
        .iter()
        .filter(|s| def.stage(&s.stage).is_none())
        .collect();
    groups.push((None, "", loose));
    groups.retain(|(_, _, states)| !states.is_empty());
    groups
}

/// The lines of a state's label: Chinese title, id, and the deadline when there is one.
fn state_lines(s: &StateDef) -> Vec<String> {
    let mut lines = vec![one_line(&s.title.zh_cn), one_line(&s.id)];
    if let Some(d) = &s.deadline
        && let Some(text) = deadline_text(d)
    {
        lines.push(format!("⏳ {text}"));
    }
    lines
}

fn deadline_text(d: &DeadlineDef) -> Option<String> {
    match (&d.after, &d.date_field) {
        (Some(after), _) => Some(after.to_string()),
        (None, Some(field)) => Some(one_line(field)),
        (None, None) => None,
    }
}

fn mermaid_state(s: &StateDef) -> String {
    let label = mermaid_text_lines(&state_lines(s));
    let id = node_id("s", &s.id);
    if s.is_final {
        format!("{id}(((\"{label}\")))")
    } else {
        format!("{id}[\"{label}\"]")
    }
}

fn dot_state(s: &StateDef) -> String {
    let label = state_lines(s)
        .iter()
        .map(|l| dot_text(l))
        .collect::<Vec<_>>()
        .join("\\n");
    let extra = if s.is_final {
        ", peripheries=2, style=\"rounded,filled\", fillcolor=\"#eeeeee\""
    } else if s.initial {
        ", style=\"rounded,bold\""
    } else {
        ""
    };
    format!(
        "\"{}\" [label=\"{label}\"{extra}];",
        dot_text(&node_id("s", &s.id))
    )
}

/// Whether a transition is a timeout: the scheduler may fire it, because it is the
/// `timeout` of its source state's deadline or because only the scheduler may fire it.
fn is_timeout(def: &WorkflowDefinition, t: &TransitionDef) -> bool {
    let scheduler = t.roles.iter().any(|r| r == SCHEDULER_ROLE);
    let only_scheduler = !t.roles.is_empty() && t.roles.iter().all(|r| r == SCHEDULER_ROLE);
    let state_timeout = t.from.as_slice().iter().any(|from| {
        def.state(from)
            .and_then(|s| s.deadline.as_ref())
            .and_then(|d| d.timeout.as_deref())
            == Some(t.event.as_str())
    });
    only_scheduler || (scheduler && state_timeout)
}

/// The lines of an edge label, unescaped: `event [roles]`, then `if guard` when there is
/// one (cut to [`GUARD_MAX_CHARS`]).
fn edge_label(def: &WorkflowDefinition, t: &TransitionDef) -> Vec<String> {
    let clock = if is_timeout(def, t) { "⏰ " } else { "" };
    let mut lines = vec![format!(
        "{clock}{} [{}]",
        one_line(&t.event),
        one_line(&t.roles.join(", "))
    )];
    if let Some(guard) = &t.guard {
        lines.push(format!("if {}", shorten(&one_line(guard), GUARD_MAX_CHARS)));
    }
    lines
}

/// Collapse runs of whitespace (newlines of multi-line strings included) into one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, the last one `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// A node or cluster id that both Mermaid and DOT accept whatever the workflow's ids are:
/// a prefix (so that no id is a keyword such as `end` or `graph`), then the id with every
/// character outside `[A-Za-z0-9_]` written as `_xHEX_`.
fn node_id(prefix: &str, id: &str) -> String {
    let mut out = format!("{prefix}_");
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            let _ = write!(out, "_x{:x}_", u32::from(c));
        }
    }
    out
}

/// Text for inside a double-quoted Mermaid label, with the characters Mermaid's parser or
/// its HTML rendering would take as syntax written as entity codes (`#quot;`, `#lt;`…).
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '#' => out.push_str("#35;"),
            '|' => out.push_str("#124;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            '`' => out.push_str("#96;"),
            ';' => out.push_str("#59;"),
            c => out.push(c),
        }
    }
    out
}

/// Several label lines for Mermaid, joined by `<br/>`.
fn mermaid_text_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| mermaid_text(l))
        .collect::<Vec<_>>()
        .join("<br/>")
}

/// Text for inside a double-quoted DOT string: backslashes (which start DOT's escapes such
/// as `\N`) and quotes are escaped; everything else, `<>{}|&` included, is literal in a
/// quoted label of a non-record node.
fn dot_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_mermaid_and_dot_choke_on() {
        assert_eq!(
            mermaid_text(r#"a == "x" && b < 3 || {c} | d > 1 # e; `f`"#),
            "a == #quot;x#quot; #amp;#amp; b #lt; 3 #124;#124; #123;c#125; #124; d #gt; 1 #35; e#59; #96;f#96;"
        );
        assert_eq!(dot_text(r#"a "b" \N c"#), r#"a \"b\" \\N c"#);
        assert_eq!(node_id("s", "end"), "s_end");
        assert_eq!(node_id("s", "a-b c"), "s_a_x2d_b_x20_c");
    }

    #[test]
    fn long_guards_are_cut_with_an_ellipsis() {
        assert_eq!(shorten("short", 10), "short");
        let cut = shorten("a".repeat(100).as_str(), 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
        assert_eq!(shorten("abc defghi", 5), "abc…");
    }
}
