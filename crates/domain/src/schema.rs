//! The JSON Schema of the workflow file format, generated from the Rust types in
//! [`crate::model`] and committed as `workflows/schema.json`, so that editors (taplo /
//! Even Better TOML, through the `#:schema ./schema.json` first line of each workflow
//! file) complete and check workflow files as they are written.

use serde_json::{Map, Value};

use crate::model::WorkflowDefinition;

/// The `$id` of the schema.
pub const SCHEMA_ID: &str = "urn:grantflow:schema:workflow";

/// The schema of a workflow file, with `$id`, title and description, keys in a stable
/// order.
pub fn workflow_json_schema() -> Value {
    let schema = schemars::schema_for!(WorkflowDefinition);
    let generated = match schema.to_value() {
        Value::Object(m) => m,
        other => panic!("schemars produced a non-object schema: {other}"),
    };
    // Put the identifying keys first, then everything schemars generated.
    let mut out = Map::new();
    if let Some(v) = generated.get("$schema") {
        out.insert("$schema".into(), v.clone());
    }
    out.insert("$id".into(), Value::from(SCHEMA_ID));
    out.insert(
        "title".into(),
        Value::from("grantflow workflow definition (工作流定义)"),
    );
    out.insert(
        "description".into(),
        Value::from(
            "One workflow per TOML file under workflows/: roles, stages, data fields, states \
             with deadlines, transitions with guards and effects, and expert review rounds. \
             Generated from the Rust types in crates/domain/src/model.rs; do not edit by hand \
             (run the domain tests with UPDATE_SCHEMA=1).",
        ),
    );
    for (k, v) in generated {
        if !out.contains_key(&k) {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

/// The schema as committed: pretty-printed with a trailing newline.
pub fn workflow_json_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&workflow_json_schema()).expect("schemas serialise");
    text.push('\n');
    text
}
