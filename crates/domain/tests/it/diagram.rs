//! Diagrams of the shipped workflows match the committed goldens under `tests/golden/`
//! (rewrite them with `UPDATE_GOLDEN=1 cargo test -p grantflow-domain --test it diagram`),
//! and Graphviz renders every DOT output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use grantflow_domain::WorkflowDefinition;
use grantflow_domain::diagram::{dot, mermaid};

const SHIPPED: [&str; 3] = ["funded-project", "demand-collection", "change-request"];

fn workflow(name: &str) -> WorkflowDefinition {
    let path = format!("{}/../../workflows/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let outcome = grantflow_domain::load_str(&path, &text);
    outcome
        .workflow
        .unwrap_or_else(|| panic!("{name} does not load: {:#?}", outcome.diagnostics))
        .def
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compare with the golden file, or rewrite it when `UPDATE_GOLDEN=1`.
fn check_golden(file: &str, actual: &str) {
    let path = golden_dir().join(file);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `UPDATE_GOLDEN=1 cargo test -p grantflow-domain --test it diagram` to create it",
            path.display()
        )
    });
    pretty_assertions::assert_eq!(
        expected,
        actual,
        "{file} is stale: check the diff, then run `UPDATE_GOLDEN=1 cargo test -p grantflow-domain --test it diagram`"
    );
}

#[test]
fn mermaid_goldens_of_shipped_workflows() {
    for name in SHIPPED {
        check_golden(&format!("{name}.mmd"), &mermaid(&workflow(name)));
    }
}

#[test]
fn dot_goldens_of_shipped_workflows() {
    for name in SHIPPED {
        check_golden(&format!("{name}.dot"), &dot(&workflow(name)));
    }
}

#[test]
fn diagrams_are_deterministic() {
    for name in SHIPPED {
        let def = workflow(name);
        assert_eq!(mermaid(&def), mermaid(&def.clone()));
        assert_eq!(dot(&def), dot(&def.clone()));
    }
}

#[test]
fn mermaid_shows_stages_states_markers_roles_guards_and_timeouts() {
    let m = mermaid(&workflow("funded-project"));
    assert!(m.lines().nth(1) == Some("flowchart TD"), "{m}");
    // Stages are subgraphs in lifecycle order, titled in Chinese with the id.
    let application = m
        .find("subgraph g_application[\"申报 application\"]")
        .unwrap();
    let closed = m.find("subgraph g_closed[\"结束 closed\"]").unwrap();
    assert!(application < closed);
    // States: Chinese title, id, deadline.
    assert!(m.contains("s_correction[\"退回补正<br/>correction<br/>⏳ 5wd\"]"));
    // Initial marker and final states (double circle, styled).
    assert!(m.contains("start_point --> s_drafting\n"));
    assert!(m.contains("s_archived(((\"结项归档<br/>archived\")))"));
    assert!(m.contains("class s_archived,s_subsidised,s_withdrawn,"));
    // Events with roles in brackets; guards escaped.
    assert!(m.contains("s_formal_check -->|\"return_for_correction [manager]\"| s_correction"));
    assert!(m.contains(
        "s_expert_review -->|\"conclude_review [manager]<br/>if review != null #amp;#amp; review.count #gt;= (has(data.review_panel_si…\"| s_decision"
    ));
    // Timeouts are dotted and marked with a clock.
    assert!(
        m.contains("s_publicity -.->|\"⏰ publicity_ended [scheduler, manager]<br/>if data.part != 'post_subsidy'\"| s_task_book")
    );
    assert!(m.contains("s_correction -.->|\"⏰ correction_expired [scheduler]\"| s_rejected"));
    // Each part's path is drawn with the routing rule that selects it (issue 12).
    assert!(m.contains("s_city_review -->|\"recommend [city]<br/>if data.part != 'delegated_to_city'\"| s_formal_check"));
    assert!(m.contains("s_publicity -.->|\"⏰ publicity_ended [scheduler, manager]<br/>if data.part == 'post_subsidy'\"| s_payment"));
    assert!(m.contains("s_allocation -->|\"allocate [manager]"));
    // A transition from several states is drawn from each of them.
    for from in ["drafting", "city_review", "correction"] {
        assert!(m.contains(&format!(
            "s_{from} -->|\"withdraw [applicant]\"| s_withdrawn"
        )));
    }
    // Long guards are cut with an ellipsis.
    let grade = m.lines().find(|l| l.contains("grade [manager]")).unwrap();
    assert!(grade.contains('…'), "{grade}");
    // Nothing is left that Mermaid would take as syntax inside a label.
    for line in m
        .lines()
        .filter(|l| l.contains("-->|") || l.contains("-.->|"))
    {
        let label = line.split('|').nth(1).unwrap();
        let inner = &label[1..label.len() - 1];
        assert!(
            !inner.contains(['"', '<', '>', '{', '}', '&']) || inner.contains("<br/>"),
            "{line}"
        );
        assert!(
            !inner
                .replace("<br/>", "")
                .contains(['"', '<', '>', '{', '}', '&']),
            "{line}"
        );
    }
}

#[test]
fn dot_shows_clusters_markers_and_timeouts() {
    let d = dot(&workflow("funded-project"));
    assert!(
        d.contains("subgraph \"cluster_formal_check\" {\n    label=\"形式审查 formal_check\";")
    );
    assert!(d.contains("\"start_point\" [shape=point"));
    assert!(d.contains("\"start_point\" -> \"s_drafting\";"));
    assert!(d.contains("\"s_archived\" [label=\"结项归档\\narchived\", peripheries=2"));
    assert!(d.contains(
        "\"s_drafting\" -> \"s_not_submitted\" [label=\"⏰ application_closed [scheduler]\", style=dashed"
    ));
    assert!(d.contains(
        "\"s_acceptance_review\" -> \"s_rectification\" [label=\"conclude_acceptance [manager]\\nif input.acceptance_outcome == 'rectify'\"];"
    ));
    assert!(d.ends_with("}\n"));
}

/// A definition whose ids, titles and guards are full of characters the diagram
/// languages treat as syntax.
fn nasty() -> WorkflowDefinition {
    let text = r##"
id = "nasty"
version = 1
title = { "zh-CN" = "引号\"与<尖括号>", en = "Quotes \" and | pipes {braces} & #hash; \\N" }
[[roles]]
id = "end"
title = { "zh-CN" = "角色", en = "Role" }
[[stages]]
id = "graph"
title = { "zh-CN" = "阶段 \"一\" <b>", en = "Stage" }
[fields.x]
type = "text"
title = { "zh-CN" = "x", en = "x" }
[[states]]
id = "end"
title = { "zh-CN" = "开始 {a|b} \"q\" <i>", en = "Start" }
stage = "graph"
initial = true
[[states]]
id = "subgraph"
title = { "zh-CN" = "结束 & 完成; `code`", en = "Done" }
stage = "graph"
final = true
[[transitions]]
event = "go"
title = { "zh-CN" = "走", en = "Go" }
from = "end"
to = "subgraph"
roles = ["end"]
guard = "data.x == \"a|b\" && (data.x != '<}>' || data.x.startsWith('#'))"
[[transitions]]
event = "other"
title = { "zh-CN" = "另一个", en = "Other" }
from = "end"
to = "subgraph"
roles = ["end"]
guard = '!(data.x == "a|b" && (data.x != "<}>" || data.x.startsWith("#")))'
"##;
    let outcome = grantflow_domain::load_str("nasty.toml", text);
    outcome
        .workflow
        .unwrap_or_else(|| panic!("{:#?}", outcome.diagnostics))
        .def
}

#[test]
fn nasty_characters_are_escaped() {
    let def = nasty();
    let m = mermaid(&def);
    assert!(
        m.contains("s_end[\"开始 #123;a#124;b#125; #quot;q#quot; #lt;i#gt;<br/>end\"]"),
        "{m}"
    );
    assert!(
        m.contains("subgraph g_graph[\"阶段 #quot;一#quot; #lt;b#gt; graph\"]"),
        "{m}"
    );
    assert!(
        m.contains("s_subgraph(((\"结束 #amp; 完成#59; #96;code#96;<br/>subgraph\")))"),
        "{m}"
    );
    let d = dot(&def);
    assert!(
        d.contains("\"s_end\" [label=\"开始 {a|b} \\\"q\\\" <i>\\nend\", style=\"rounded,bold\"];"),
        "{d}"
    );
    assert!(d.contains("label=\"引号\\\"与<尖括号> nasty v1\"];"), "{d}");
}

fn dot_binary() -> Option<PathBuf> {
    let out = Command::new("dot")
        .arg("-V")
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    out.status.success().then(|| PathBuf::from("dot"))
}

fn render_with_dot(source: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() || !stderr.trim().is_empty() {
        return Err(stderr);
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn graphviz_renders_every_dot_output() {
    assert!(
        dot_binary().is_some(),
        "Graphviz `dot` is not installed, so the DOT diagrams cannot be checked: install it (`apt-get install -y graphviz`)"
    );
    let mut sources: Vec<(String, String)> = SHIPPED
        .iter()
        .map(|name| (name.to_string(), dot(&workflow(name))))
        .collect();
    sources.push(("nasty".into(), dot(&nasty())));
    for (name, source) in sources {
        let svg = render_with_dot(&source)
            .unwrap_or_else(|e| panic!("dot -Tsvg rejects the diagram of {name}: {e}\n{source}"));
        assert!(svg.contains("<svg"), "{name}: no SVG produced");
        // Each state's id appears as text in the rendering.
        let def = if name == "nasty" {
            nasty()
        } else {
            workflow(&name)
        };
        for s in &def.states {
            assert!(
                svg.contains(&format!(">{}</text>", s.id)),
                "{name}: state {} is not drawn",
                s.id
            );
        }
    }
}

/// The nasty diagram is also written next to the goldens, so that the Mermaid parser check
/// under `tests/js/` covers escaping too.
#[test]
fn nasty_golden() {
    check_golden("nasty.mmd", &mermaid(&nasty()));
    check_golden("nasty.dot", &dot(&nasty()));
}
