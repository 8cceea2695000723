//! `workflows/schema.json` is generated from the Rust types and committed; it must be up
//! to date (rewrite it with `UPDATE_SCHEMA=1 cargo test -p grantflow-domain --test it schema`)
//! and it must accept the shipped workflows and refuse malformed ones.

use std::path::PathBuf;

use grantflow_domain::schema::{SCHEMA_ID, workflow_json_schema, workflow_json_schema_text};
use serde_json::{Value, json};

const SHIPPED: [&str; 3] = ["funded-project", "demand-collection", "change-request"];

fn workflows_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows"))
}

fn workflow_text(name: &str) -> String {
    std::fs::read_to_string(workflows_dir().join(format!("{name}.toml"))).unwrap()
}

/// A TOML workflow file as the JSON document editors validate.
fn as_json(toml_text: &str) -> Value {
    let value: toml::Value = toml::from_str(toml_text).unwrap();
    serde_json::to_value(value).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&workflow_json_schema()).expect("the schema is a valid JSON Schema")
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn committed_schema_is_up_to_date() {
    let path = workflows_dir().join("schema.json");
    let generated = workflow_json_schema_text();
    if std::env::var("UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "workflows/schema.json is stale (the types in model.rs changed): run `UPDATE_SCHEMA=1 cargo test -p grantflow-domain --test it schema` and commit it"
    );
    assert!(committed.ends_with("}\n"));
}

#[test]
fn schema_is_identified_and_describes_the_format() {
    let schema = workflow_json_schema();
    assert_eq!(schema["$id"], SCHEMA_ID);
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["title"].as_str().unwrap().contains("workflow"));
    assert!(schema["description"].as_str().unwrap().contains("model.rs"));
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for key in [
        "id",
        "version",
        "title",
        "roles",
        "stages",
        "states",
        "transitions",
    ] {
        assert!(
            required.contains(&key),
            "`{key}` is not required: {required:?}"
        );
    }
    // Durations carry their pattern, so editors flag `7 days` as they type.
    let text = workflow_json_schema_text();
    assert!(text.contains("^[0-9]+(d|wd|h)$"));
}

#[test]
fn shipped_workflows_validate_against_the_schema() {
    let v = validator();
    for name in SHIPPED {
        let doc = as_json(&workflow_text(name));
        let errs = errors(&v, &doc);
        assert!(errs.is_empty(), "{name}: {errs:#?}");
    }
}

#[test]
fn shipped_workflows_point_editors_at_the_schema_and_still_load() {
    for name in SHIPPED {
        let text = workflow_text(name);
        assert_eq!(
            text.lines().next(),
            Some("#:schema ./schema.json"),
            "{name}"
        );
        let outcome = grantflow_domain::load_str(name, &text);
        assert!(
            outcome.workflow.is_some(),
            "{name}: {:#?}",
            outcome.diagnostics
        );
        assert!(
            outcome.diagnostics.is_empty(),
            "{name}: {:#?}",
            outcome.diagnostics
        );
    }
}

#[test]
fn schema_refuses_malformed_workflows() {
    let v = validator();
    let base = as_json(&workflow_text("change-request"));
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "unknown top-level key",
            Box::new(|d| {
                d["colour"] = json!("red");
            }),
        ),
        (
            "missing states",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("states");
            }),
        ),
        (
            "bad duration",
            Box::new(|d| {
                d["states"][0]["deadline"]["after"] = json!("ten days");
            }),
        ),
        (
            "unknown field type",
            Box::new(|d| {
                d["fields"]["change_type"]["type"] = json!("color");
            }),
        ),
        (
            "title without English",
            Box::new(|d| {
                d["title"] = json!({ "zh-CN": "变更" });
            }),
        ),
        (
            "effect with two keys",
            Box::new(|d| {
                d["transitions"][0]["effects"][0] = json!({ "unset": "x", "cancel": "y" });
            }),
        ),
        (
            "negative version",
            Box::new(|d| {
                d["version"] = json!(-1);
            }),
        ),
    ];
    for (what, mutate) in cases {
        let mut doc = base.clone();
        mutate(&mut doc);
        assert!(
            !v.is_valid(&doc),
            "the schema accepts a workflow with {what}"
        );
    }
}
