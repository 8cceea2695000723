//! Planning the migration of running instances between two versions of a workflow, and
//! moving one instance along the plan.

use std::collections::BTreeMap;

use grantflow_domain::CompiledWorkflow;
use grantflow_domain::engine::Snapshot;
use grantflow_domain::migrate::{MigrationError, migrate_snapshot, plan_migration};
use serde_json::{Value, json};

fn text(name: &str) -> String {
    let path = format!("{}/../../workflows/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn compile(name: &str, text: &str) -> CompiledWorkflow {
    let outcome = grantflow_domain::load_str(name, text);
    outcome
        .workflow
        .unwrap_or_else(|| panic!("{name}: {:#?}", outcome.diagnostics))
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` is not in the workflow exactly once"
    );
    text.replacen(from, to, 1)
}

fn v1() -> CompiledWorkflow {
    compile("funded-project v1", &text("funded-project"))
}

/// Version 2 of the funded project: `correction` is renamed `supplement`, and execution
/// also requires the budget line.
fn v2() -> CompiledWorkflow {
    let mut t = replace_once(
        &text("funded-project"),
        "\nversion = 1\n",
        "\nversion = 2\n",
    );
    t = replace_once(&t, "id = \"correction\"", "id = \"supplement\"");
    t = replace_once(&t, "to = \"correction\"", "to = \"supplement\"");
    t = replace_once(
        &t,
        "from = \"correction\"\nto = \"formal_check\"",
        "from = \"supplement\"\nto = \"formal_check\"",
    );
    t = replace_once(
        &t,
        "from = \"correction\"\nto = \"rejected\"",
        "from = \"supplement\"\nto = \"rejected\"",
    );
    t = replace_once(
        &t,
        "from = [\"drafting\", \"city_review\", \"correction\", \"city_correction\"]",
        "from = [\"drafting\", \"city_review\", \"supplement\", \"city_correction\"]",
    );
    t = replace_once(
        &t,
        "requires = [\"execution_end\"]",
        "requires = [\"execution_end\", \"budget_line_id\"]",
    );
    compile("funded-project v2", &t)
}

fn snapshot(state: &str, data: Value) -> Snapshot {
    Snapshot {
        state: state.into(),
        data,
        version: 7,
        due_at: Some("2024-10-10T16:00:00Z".parse().unwrap()),
        review: json!({ "total": 75.0, "count": 3 }),
        budget: Value::Null,
    }
}

fn mapping(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_version_bump_maps_every_state_to_itself() {
    let from = v1();
    let to = compile(
        "v2",
        &replace_once(
            &text("funded-project"),
            "\nversion = 1\n",
            "\nversion = 2\n",
        ),
    );
    let plan = plan_migration(&from, &to, &BTreeMap::new()).unwrap();
    assert_eq!((plan.from_version, plan.to_version), (1, 2));
    assert_eq!(plan.workflow_id, "funded-project");
    assert_ne!(plan.from_hash, plan.to_hash);
    assert_eq!(plan.states.len(), from.def.states.len());
    assert!(plan.states.iter().all(|(a, b)| a == b));
    let s = snapshot("expert_review", json!({ "budget": "1.00" }));
    let moved = migrate_snapshot(&plan, &s).unwrap();
    assert_eq!(
        moved, s,
        "nothing changes but the version the instance is on"
    );
}

#[test]
fn a_renamed_state_must_be_mapped() {
    let (from, to) = (v1(), v2());
    let errors = plan_migration(&from, &to, &BTreeMap::new()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let MigrationError::UnmappedState {
        state,
        version,
        candidates,
    } = &errors[0]
    else {
        panic!("{errors:?}")
    };
    assert_eq!((state.as_str(), *version), ("correction", 2));
    assert!(candidates.contains(&"supplement".to_string()));
    assert!(
        !candidates.contains(&"archived".to_string()),
        "final states are not offered"
    );
    assert!(errors[0].to_string().contains("correction"));

    let plan = plan_migration(&from, &to, &mapping(&[("correction", "supplement")])).unwrap();
    assert_eq!(plan.target("correction"), Some("supplement"));
    assert_eq!(plan.target("drafting"), Some("drafting"));
    let s = snapshot(
        "correction",
        json!({ "correction_notes": "补充预算明细", "budget": "300000.00" }),
    );
    let moved = migrate_snapshot(&plan, &s).unwrap();
    assert_eq!(moved.state, "supplement");
    assert_eq!(moved.data, s.data);
    assert_eq!(moved.version, s.version);
    assert_eq!(moved.review, s.review);
    assert_eq!(
        moved.due_at, s.due_at,
        "supplement has a deadline: the due time is kept"
    );
}

#[test]
fn an_explicit_mapping_overrides_the_identity() {
    let plan = plan_migration(
        &v1(),
        &v2(),
        &mapping(&[("correction", "supplement"), ("midterm_check", "execution")]),
    )
    .unwrap();
    assert_eq!(plan.target("midterm_check"), Some("execution"));
    // Execution's deadline is a date field: it has one, so the due time is kept.
    let s = snapshot(
        "midterm_check",
        json!({ "execution_end": "2025-12-31", "budget_line_id": "2024-IP-017" }),
    );
    let moved = migrate_snapshot(&plan, &s).unwrap();
    assert_eq!(moved.state, "execution");
    assert_eq!(moved.due_at, s.due_at);
}

#[test]
fn every_problem_with_a_mapping_is_reported_at_once() {
    let (from, to) = (v1(), v2());
    let errors = plan_migration(
        &from,
        &to,
        &mapping(&[
            ("ghost", "drafting"),
            ("correction", "nowhere"),
            ("execution", "terminated"),
        ]),
    )
    .unwrap_err();
    assert!(errors.contains(&MigrationError::UnknownSourceState {
        state: "ghost".into(),
        version: 1
    }));
    assert!(errors.contains(&MigrationError::UnknownTargetState {
        state: "correction".into(),
        target: "nowhere".into(),
        version: 2
    }));
    assert!(errors.contains(&MigrationError::TargetIsFinal {
        state: "execution".into(),
        target: "terminated".into()
    }));
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn only_another_version_of_the_same_workflow() {
    let from = v1();
    let errors = plan_migration(&from, &v1(), &BTreeMap::new()).unwrap_err();
    assert_eq!(
        errors,
        [MigrationError::SameVersion {
            id: "funded-project".into(),
            version: 1
        }]
    );
    let other = compile("change-request", &text("change-request"));
    let errors = plan_migration(&from, &other, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        errors[0],
        MigrationError::DifferentWorkflow {
            from: "funded-project".into(),
            to: "change-request".into()
        }
    );
}

#[test]
fn an_instance_lacking_what_its_new_state_requires_is_not_moved() {
    let plan = plan_migration(&v1(), &v2(), &mapping(&[("correction", "supplement")])).unwrap();
    let s = snapshot("execution", json!({ "execution_end": "2025-12-31" }));
    assert_eq!(
        migrate_snapshot(&plan, &s),
        Err(MigrationError::MissingRequired {
            state: "execution".into(),
            target: "execution".into(),
            missing: vec!["budget_line_id".into()],
        })
    );
    let mut complete = s;
    complete.data["budget_line_id"] = json!("2024-IP-017");
    assert_eq!(
        migrate_snapshot(&plan, &complete).unwrap().state,
        "execution"
    );
    // An empty value does not count as present.
    complete.data["budget_line_id"] = json!("  ");
    assert!(migrate_snapshot(&plan, &complete).is_err());
}

#[test]
fn instances_in_states_the_plan_does_not_know_are_refused() {
    let plan = plan_migration(&v1(), &v2(), &mapping(&[("correction", "supplement")])).unwrap();
    assert_eq!(
        migrate_snapshot(&plan, &snapshot("limbo", json!({}))),
        Err(MigrationError::StateNotMapped {
            state: "limbo".into()
        })
    );
}

const SMALL_V1: &str = r#"
id = "small"
version = 1
title = { "zh-CN" = "小流程", en = "Small" }
[[roles]]
id = "manager"
title = { "zh-CN" = "管理", en = "Manager" }
[[stages]]
id = "s"
title = { "zh-CN" = "阶段", en = "Stage" }
[[states]]
id = "open"
title = { "zh-CN" = "办理", en = "Open" }
stage = "s"
initial = true
deadline = { after = "5wd" }
[[states]]
id = "closed"
title = { "zh-CN" = "关闭", en = "Closed" }
stage = "s"
final = true
[[states]]
id = "cancelled"
title = { "zh-CN" = "取消", en = "Cancelled" }
stage = "s"
final = true
[[transitions]]
event = "close"
title = { "zh-CN" = "关闭", en = "Close" }
from = "open"
to = "closed"
roles = ["manager"]
[[transitions]]
event = "cancel"
title = { "zh-CN" = "取消", en = "Cancel" }
from = "open"
to = "cancelled"
roles = ["manager"]
"#;

#[test]
fn final_states_need_no_counterpart_and_deadlines_follow_the_target() {
    let from = compile("small v1", SMALL_V1);
    // Version 2 drops `cancelled` and the deadline of `open`.
    let v2 = SMALL_V1
        .replace("version = 1", "version = 2")
        .replace("deadline = { after = \"5wd\" }\n", "");
    let cut = v2.find("[[states]]\nid = \"cancelled\"").unwrap();
    let end = v2.find("[[transitions]]").unwrap();
    let mut v2 = format!("{}{}", &v2[..cut], &v2[end..]);
    let cancel = v2.find("[[transitions]]\nevent = \"cancel\"").unwrap();
    v2.truncate(cancel);
    let to = compile("small v2", &v2);

    let plan = plan_migration(&from, &to, &BTreeMap::new()).unwrap();
    assert_eq!(
        plan.target("cancelled"),
        None,
        "nothing runs in a final state"
    );
    assert_eq!(plan.target("closed"), Some("closed"));
    let open = Snapshot {
        state: "open".into(),
        data: json!({}),
        version: 0,
        due_at: Some("2024-06-07T16:00:00Z".parse().unwrap()),
        review: Value::Null,
        budget: Value::Null,
    };
    let moved = migrate_snapshot(&plan, &open).unwrap();
    assert_eq!(moved.due_at, None, "`open` has no deadline in version 2");
    let done = Snapshot {
        state: "cancelled".into(),
        ..open
    };
    assert!(matches!(
        migrate_snapshot(&plan, &done),
        Err(MigrationError::StateNotMapped { .. })
    ));
}
