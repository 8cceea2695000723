//! The shipped workflows load without errors or warnings.

use grantflow_domain::diagnostic::Severity;

#[test]
fn shipped_workflows_are_valid() {
    for name in ["demand-collection", "funded-project", "change-request"] {
        let path = format!("{}/../../workflows/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let outcome = grantflow_domain::load_str(&path, &text);
        let problems: Vec<String> = outcome
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            outcome
                .diagnostics
                .iter()
                .all(|d| d.severity == Severity::Warning)
                && outcome.workflow.is_some(),
            "{name}: {problems:#?}"
        );
        assert!(problems.is_empty(), "{name} has warnings: {problems:#?}");
    }
}
