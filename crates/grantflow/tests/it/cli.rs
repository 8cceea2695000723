//! The `grantflow` command line as an operator uses it.

use std::path::Path;
use std::process::{Command, Output};

fn grantflow(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grantflow"))
        .args(args)
        .current_dir(dir)
        .env_remove("GRANTFLOW_LOG")
        .env(
            "GRANTFLOW_DATABASE_URL",
            format!("sqlite://{}", dir.join("cli.db").display()),
        )
        .output()
        .expect("grantflow runs")
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const BROKEN: &str = r#"id = "broken"
version = 1
title = { "zh-CN" = "坏", en = "Broken" }
roles = [{ id = "applicant", title = { "zh-CN" = "申报单位", en = "Applicant" } }]
stages = [{ id = "s", title = { "zh-CN" = "阶段", en = "Stage" } }]

[[states]]
id = "a"
title = { "zh-CN" = "甲", en = "A" }
stage = "s"
initial = true

[[states]]
id = "b"
title = { "zh-CN" = "乙", en = "B" }
stage = "nowhere"
final = true

[[transitions]]
event = "go"
title = { "zh-CN" = "走", en = "Go" }
from = "a"
to = "b"
roles = ["applicant"]
"#;

#[test]
fn workflow_check_accepts_the_shipped_workflows_and_names_problems_by_line() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = grantflow(
        &[
            "workflow",
            "check",
            &repo().join("workflows").display().to_string(),
        ],
        tmp.path(),
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("0 error(s), 0 warning(s)"),
        "{}",
        text(&ok)
    );

    let bad = tmp.path().join("broken.toml");
    std::fs::write(&bad, BROKEN).unwrap();
    let out = grantflow(
        &["workflow", "check", &bad.display().to_string()],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("broken.toml:16:9: error[WF_UNKNOWN_STAGE]"),
        "{}",
        text(&out)
    );
    let json = grantflow(
        &[
            "workflow",
            "check",
            "--format",
            "json",
            &bad.display().to_string(),
        ],
        tmp.path(),
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["diagnostics"][0]["code"], "WF_UNKNOWN_STAGE");
    assert_eq!(report["diagnostics"][0]["line"], 16);
}

#[test]
fn serve_refuses_to_start_with_an_invalid_workflow() {
    let tmp = tempfile::tempdir().unwrap();
    let workflows = tmp.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    std::fs::write(workflows.join("broken.toml"), BROKEN).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grantflow"))
        .args(["serve"])
        .current_dir(tmp.path())
        .env_remove("GRANTFLOW_LOG")
        .env(
            "GRANTFLOW_DATABASE_URL",
            format!("sqlite://{}", tmp.path().join("s.db").display()),
        )
        .env("GRANTFLOW_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("refusing to start"), "{t}");
    assert!(
        t.contains("WF_UNKNOWN_STAGE"),
        "the validator's message is shown: {t}"
    );
    assert!(!tmp.path().join("s.db").exists(), "nothing was written");
}

#[test]
fn diagram_simulate_and_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let file = repo()
        .join("workflows/funded-project.toml")
        .display()
        .to_string();
    let mermaid = grantflow(
        &["workflow", "diagram", &file, "--format", "mermaid"],
        tmp.path(),
    );
    assert!(mermaid.status.success());
    let golden =
        std::fs::read_to_string(repo().join("crates/domain/tests/golden/funded-project.mmd"))
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&mermaid.stdout), golden);

    let sim = grantflow(
        &[
            "workflow",
            "simulate",
            &file,
            "--as",
            "applicant,city,manager",
            "--at",
            "2024-06-06T10:00",
            "--data",
            r#"{"call_id":"c","closing_date":"2024-06-28","forward_by":"2024-06-28","applicant_kind":"unit","part":"retained_provincial"}"#,
            "--events",
            "submit,recommend,return_for_correction",
        ],
        tmp.path(),
    );
    let t = text(&sim);
    assert!(sim.status.success(), "{t}");
    // 5 working days from Thu 2024-06-06, across the Dragon Boat Festival (Mon 06-10).
    assert!(t.contains("return_for_correction: formal_check"), "{t}");
    assert!(t.contains("deadline: due by 2024-06-14 24:00"), "{t}");
    assert!(t.contains("fires correction_expired"), "{t}");

    let sdl = grantflow(&["schema"], tmp.path());
    let committed = std::fs::read_to_string(repo().join("schema.graphql")).unwrap();
    assert_eq!(String::from_utf8_lossy(&sdl.stdout), committed);
}
