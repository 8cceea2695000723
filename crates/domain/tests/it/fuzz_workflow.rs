//! Fuzzing the workflow loader ("proptest at scale"): mutated shipped workflows
//! and random TOML-ish text never panic, and a file that does not load always says why
//! with at least one error diagnostic placed on a real line and column.
//!
//! The number of cases per property is `GRANTFLOW_FUZZ_CASES` (default 256, a few seconds
//! in a debug build); CI's long run sets it higher. Each property prints how many cases
//! it ran (`cargo test -p grantflow-domain --test it fuzz_workflow -- --nocapture`).

use grantflow_domain::diagnostic::Severity;
use grantflow_domain::load_str;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const SHIPPED: [&str; 3] = [
    include_str!("../../../../workflows/demand-collection.toml"),
    include_str!("../../../../workflows/funded-project.toml"),
    include_str!("../../../../workflows/change-request.toml"),
];

fn cases() -> u32 {
    std::env::var("GRANTFLOW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Loads `text` and checks the loader's promise; a panic fails the property.
fn check(text: &str) -> Result<(), TestCaseError> {
    let outcome = load_str("fuzz.toml", text);
    let lines = text.lines().count().max(1) + 1;
    for d in &outcome.diagnostics {
        prop_assert!(
            d.line >= 1 && d.line <= lines,
            "line {} of {lines}: {d:?}",
            d.line
        );
        prop_assert!(d.column >= 1, "{d:?}");
        prop_assert!(!d.message.is_empty() && !d.code.is_empty(), "{d:?}");
    }
    if outcome.workflow.is_none() {
        prop_assert!(
            outcome
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error),
            "refused without an error: {:?}",
            outcome.diagnostics
        );
    }
    Ok(())
}

/// Runs `property` over `strategy` for [`cases`] cases and reports the count.
fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let n = cases();
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, property)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("fuzz {name}: {n} cases");
}

/// One edit of a text: what a careless hand or a hostile one does to a file.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    ReplaceChar(usize, char),
    Insert(usize, String),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = prop_oneof![
        Just("[".to_string()),
        Just("]".to_string()),
        Just("[[".to_string()),
        Just("\"".to_string()),
        Just("'''".to_string()),
        Just("=".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\n".to_string()),
        Just("#".to_string()),
        Just(" = 1e400".to_string()),
        Just(" = -9223372036854775809".to_string()),
        Just(" = \"99999999999d\"".to_string()),
        Just("version = 4294967296".to_string()),
        Just("guard = \"((((((((((\"".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{feff}".to_string()),
        "[a-z_]{1,12}",
        "\\PC{0,8}",
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::ReplaceChar(i, c)),
        (any::<usize>(), token).prop_map(|(i, t)| Edit::Insert(i, t)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match e {
            Edit::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
            Edit::ReplaceChar(i, c) => {
                let line = &mut lines[i % n];
                let chars: Vec<char> = line.chars().collect();
                if !chars.is_empty() {
                    let at = i % chars.len();
                    *line = chars[..at]
                        .iter()
                        .chain(std::iter::once(c))
                        .chain(&chars[at + 1..])
                        .collect();
                }
            }
            Edit::Insert(i, t) => {
                let line = &mut lines[i % n];
                let chars: Vec<char> = line.chars().collect();
                let at = i % (chars.len() + 1);
                *line = chars[..at]
                    .iter()
                    .copied()
                    .chain(t.chars())
                    .chain(chars[at..].iter().copied())
                    .collect();
            }
            Edit::Truncate(i) => lines.truncate(i % n + 1),
        }
    }
    lines.join("\n")
}

#[test]
fn mutated_shipped_workflows_never_panic_and_always_say_why() {
    fuzz(
        "mutated workflows",
        (0..SHIPPED.len(), prop::collection::vec(edit(), 1..6)),
        |(which, edits)| check(&apply(SHIPPED[which], &edits)),
    );
}

#[test]
fn random_toml_never_panics() {
    // Keys and values of the workflow format in random arrangements.
    let line = prop_oneof![
        "\\[\\[?(states|transitions|timers|fields|reminders)\\]\\]?",
        "(id|from|to|event|guard|deadline|after|role|roles|kind|initial|final|version|title\\.zh-CN) = (\"[^\"\\n]{0,20}\"|[0-9]{1,20}|true|\\[\\]|\\{\\})",
        "\\PC{0,30}",
    ];
    fuzz("random toml", prop::collection::vec(line, 0..40), |lines| {
        check(&lines.join("\n"))
    });
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [100, 10_000, 100_000] {
        let arrays = format!("x = {}{}", "[".repeat(depth), "]".repeat(depth));
        check(&arrays).unwrap();
        let tables = format!("x = {}{}", "{ a = ".repeat(depth), "}".repeat(depth));
        check(&tables).unwrap();
    }
}

#[test]
fn a_deeply_nested_guard_is_an_error_not_a_stack_overflow() {
    let shipped = SHIPPED[2];
    let at = shipped.find("guard = \"").expect("a guard");
    let end = at + shipped[at..].find('\n').unwrap();
    for depth in [50, 1_000, 20_000] {
        let guard = format!("guard = \"{}true{}\"", "(".repeat(depth), ")".repeat(depth));
        let text = format!("{}{}{}", &shipped[..at], guard, &shipped[end..]);
        check(&text).unwrap();
        let negations = format!(
            "{}guard = \"{}true\"{}",
            &shipped[..at],
            "!".repeat(depth),
            &shipped[end..]
        );
        check(&negations).unwrap();
    }
}

#[test]
fn the_largest_expressions_within_the_caps_compile_and_evaluate_on_a_worker_s_stack() {
    use grantflow_domain::guard::{
        Expression, MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_NESTING, Scope,
    };
    let n = MAX_EXPRESSION_NESTING;
    let nested = format!("{}true{}", "(".repeat(n), ")".repeat(n));
    let list = format!("{}1{}.size() > 0", "[".repeat(n), "]".repeat(n));
    let d = MAX_EXPRESSION_DEPTH - 2;
    let chain = format!("1{} > 0", " + 1".repeat(d));
    let members = format!("data{} == 1", ".b".repeat(d));
    let nested_chain = format!(
        "{}1{}{} > 0",
        "(".repeat(n),
        ")".repeat(n),
        " + 1".repeat(d)
    );
    // A tokio worker's stack: 2 MiB.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let null = serde_json::Value::Null;
            let data = serde_json::json!({});
            let scope = Scope {
                data: &data,
                input: &data,
                actor: &data,
                review: &null,
                budget: &null,
                now: chrono::Utc::now(),
            };
            for e in [nested, list, chain, members, nested_chain] {
                let x = Expression::compile(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
                let _ = x.references();
                let _ = x.evaluate(&scope);
            }
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(
        Expression::compile(&"(".repeat(n + 1))
            .unwrap_err()
            .contains("nests")
    );
    assert!(
        Expression::compile(&"1".repeat(MAX_EXPRESSION_CHARS + 1))
            .unwrap_err()
            .contains("characters")
    );
    let too_deep = format!("1{} > 0", " + 1".repeat(MAX_EXPRESSION_DEPTH));
    assert!(
        Expression::compile(&too_deep)
            .unwrap_err()
            .contains("operations deep")
    );
}
