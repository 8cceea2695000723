//! Every validation rule has a failing fixture (`tests/fixtures/invalid/<CODE>*.toml`) and
//! a passing one (`tests/fixtures/valid/<CODE>*.toml`).
//!
//! Each problem a failing fixture contains is marked on its line with a trailing comment
//! `# expect: CODE [warning] [at TEXT]`: the loader must report exactly those diagnostics,
//! with that code and severity (error unless `warning`), on that line, at the column where
//! TEXT starts on the line (without `at`: the first character of the value after the first
//! `=`, or of the line when it has none). A full-line comment `# expect-next: …` marks the
//! next line instead (for lines that cannot carry a comment, such as a syntax error).

use std::path::{Path, PathBuf};

use grantflow_domain::diagnostic::{Diagnostic, Severity, codes};
use grantflow_domain::load_str;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    line: usize,
    column: usize,
    code: String,
    severity: Severity,
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn chars_before(line: &str, byte: usize) -> usize {
    line[..byte].chars().count()
}

/// The column (1-based, in characters) a marker without `at` points at.
fn default_column(code: &str) -> usize {
    let start = match code.find('=') {
        Some(eq) => eq + 1 + (code[eq + 1..].len() - code[eq + 1..].trim_start().len()),
        None => code.len() - code.trim_start().len(),
    };
    chars_before(code, start) + 1
}

fn parse_marker(spec: &str, line_no: usize, code_part: &str, file: &str) -> Expected {
    let spec = spec.trim();
    let (head, anchor) = match spec.find(" at ") {
        Some(i) => (&spec[..i], Some(spec[i + 4..].trim())),
        None => (spec, None),
    };
    let mut words = head.split_whitespace();
    let code = words
        .next()
        .unwrap_or_else(|| panic!("{file}:{line_no}: empty marker"));
    assert!(
        codes::ALL.contains(&code),
        "{file}:{line_no}: `{code}` is not a diagnostic code"
    );
    let severity = match words.next() {
        None | Some("error") => Severity::Error,
        Some("warning") => Severity::Warning,
        Some(other) => panic!("{file}:{line_no}: unknown severity `{other}`"),
    };
    let column = match anchor {
        Some(text) => {
            let at = code_part
                .find(text)
                .unwrap_or_else(|| panic!("{file}:{line_no}: `{text}` is not on the line"));
            chars_before(code_part, at) + 1
        }
        None => default_column(code_part),
    };
    Expected {
        line: line_no,
        column,
        code: code.to_string(),
        severity,
    }
}

fn expectations(file: &str, text: &str) -> Vec<Expected> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.trim_start().strip_prefix("# expect-next:") {
            let next = lines
                .get(i + 1)
                .unwrap_or_else(|| panic!("{file}:{}: no next line", i + 1));
            for spec in rest.split("# expect-next:") {
                out.push(parse_marker(spec, i + 2, next, file));
            }
            continue;
        }
        if let Some(pos) = line.find("# expect:") {
            let code_part = &line[..pos];
            for spec in line[pos..].split("# expect:").skip(1) {
                out.push(parse_marker(spec, i + 1, code_part, file));
            }
        }
    }
    out.sort();
    out
}

fn actual(diagnostics: &[Diagnostic]) -> Vec<Expected> {
    let mut v: Vec<Expected> = diagnostics
        .iter()
        .map(|d| Expected {
            line: d.line,
            column: d.column,
            code: d.code.to_string(),
            severity: d.severity,
        })
        .collect();
    v.sort();
    v
}

fn name_of(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().to_string()
}

/// `WF_DEAD_END-cycle` → `WF_DEAD_END`.
fn code_of(name: &str) -> &str {
    name.split('-').next().unwrap()
}

#[test]
fn every_rule_has_a_failing_and_a_passing_fixture() {
    let invalid: Vec<String> = fixtures("invalid").iter().map(|p| name_of(p)).collect();
    let valid: Vec<String> = fixtures("valid").iter().map(|p| name_of(p)).collect();
    for code in codes::ALL {
        assert!(
            invalid.iter().any(|n| code_of(n) == code),
            "no fixture tests/fixtures/invalid/{code}.toml"
        );
        assert!(
            valid.iter().any(|n| code_of(n) == code),
            "no fixture tests/fixtures/valid/{code}.toml"
        );
    }
}

#[test]
fn invalid_fixtures_report_exactly_the_marked_problems() {
    let mut failures = Vec::new();
    for path in fixtures("invalid") {
        let name = name_of(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = expectations(&name, &text);
        assert!(!expected.is_empty(), "{name}: no `# expect:` marker");
        if codes::ALL.contains(&code_of(&name)) {
            assert!(
                expected.iter().any(|e| e.code == code_of(&name)),
                "{name}: no marker for its own code"
            );
        }
        let outcome = load_str(&format!("{name}.toml"), &text);
        let got = actual(&outcome.diagnostics);
        if got != expected {
            let shown: Vec<String> = outcome
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect();
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}\n  {}",
                shown.join("\n  ")
            ));
        }
        // Warnings alone do not stop a workflow from loading; any error does.
        let has_error = expected.iter().any(|e| e.severity == Severity::Error);
        assert_eq!(
            outcome.workflow.is_none(),
            has_error,
            "{name}: a workflow loads exactly when there is no error"
        );
        // Every diagnostic says where to look and how to fix it.
        for d in &outcome.diagnostics {
            assert!(!d.message.is_empty() && !d.hint.is_empty(), "{name}: {d}");
            assert_eq!(d.file, format!("{name}.toml"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn valid_fixtures_load_without_any_diagnostic() {
    for path in fixtures("valid") {
        let name = name_of(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("# expect"),
            "{name}: a valid fixture has a marker"
        );
        let outcome = load_str(&format!("{name}.toml"), &text);
        let shown: Vec<String> = outcome
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(shown.is_empty(), "{name}: {shown:#?}");
        assert!(outcome.workflow.is_some(), "{name} does not load");
    }
}

#[test]
fn a_file_with_several_problems_reports_all_of_them_at_once() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/several.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let outcome = load_str("several.toml", &text);
    assert!(outcome.workflow.is_none());
    let mut codes_seen: Vec<&str> = outcome.diagnostics.iter().map(|d| d.code).collect();
    codes_seen.sort();
    codes_seen.dedup();
    assert!(
        codes_seen.len() >= 8,
        "only {codes_seen:?} reported: {:#?}",
        outcome.diagnostics
    );
    // Reported in file order.
    let places: Vec<(usize, usize)> = outcome
        .diagnostics
        .iter()
        .map(|d| (d.line, d.column))
        .collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted);
    // The human-readable form names file, line, column, severity, code and hint.
    let first = outcome.diagnostics[0].to_string();
    assert!(
        first.starts_with(&format!(
            "several.toml:{}:{}: error[",
            outcome.diagnostics[0].line, outcome.diagnostics[0].column
        )),
        "{first}"
    );
    assert!(first.contains("\n  hint: "), "{first}");
}

#[test]
fn markers_are_read_as_documented() {
    let text = "a = 1\nroles = [\"x\", \"nobody\"]  # expect: WF_UNKNOWN_ROLE at \"nobody\"\n# expect-next: WF_SYNTAX at }\nb = }\n[[states]]  # expect: WF_NO_INITIAL warning\n";
    let e = expectations("t", text);
    assert_eq!(
        e,
        vec![
            Expected {
                line: 2,
                column: 15,
                code: "WF_UNKNOWN_ROLE".into(),
                severity: Severity::Error
            },
            Expected {
                line: 4,
                column: 5,
                code: "WF_SYNTAX".into(),
                severity: Severity::Error
            },
            Expected {
                line: 5,
                column: 1,
                code: "WF_NO_INITIAL".into(),
                severity: Severity::Warning
            },
        ]
    );
}
