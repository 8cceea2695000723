//! Workflow registries for tests: the shipped workflows of `workflows/`, or given sources.

use grantflow_domain::Registry;

/// The directory of the shipped workflows.
pub const WORKFLOWS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");

/// The three shipped workflows: demand collection, funded project and change request.
pub fn registry() -> Registry {
    registry_of(&["demand-collection", "funded-project", "change-request"])
}

/// The shipped workflows named (file names without `.toml`), in this order.
pub fn registry_of(names: &[&str]) -> Registry {
    let mut reg = Registry::default();
    for name in names {
        let path = format!("{WORKFLOWS_DIR}/{name}.toml");
        let text = std::fs::read_to_string(&path).expect("workflow file");
        let wf = grantflow_domain::load_str(&path, &text)
            .workflow
            .expect("valid workflow");
        reg.insert(wf).expect("unique");
    }
    reg
}

/// A registry of the given `(file name, TOML)` sources; panics with the diagnostics of an
/// invalid one.
pub fn registry_from(sources: &[(&str, &str)]) -> Registry {
    let mut reg = Registry::default();
    for (name, text) in sources {
        let outcome = grantflow_domain::load_str(name, text);
        let problems: Vec<String> = outcome
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        let wf = outcome
            .workflow
            .unwrap_or_else(|| panic!("{name}: {problems:#?}"));
        reg.insert(wf).expect("distinct workflows");
    }
    reg
}
