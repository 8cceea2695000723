//! The engine on the shipped workflows: every error a client can get, what an actor is
//! offered, and a whole funded project from drafting to archived with its deadlines.

use chrono::{DateTime, Utc};
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::audit::{GENESIS_HASH, HistoryRecord, verify_chain};
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{
    Actor, Command, EngineError, Snapshot, TransitionPlan, available_events, initial_schedule,
    plan_transition,
};
use grantflow_domain::schedule::{TimerKind, TimerPlan};
use serde_json::{Value, json};

fn load(name: &str) -> CompiledWorkflow {
    let path = format!("{}/../../workflows/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let outcome = grantflow_domain::load_str(&path, &text);
    outcome
        .workflow
        .unwrap_or_else(|| panic!("{name}: {:#?}", outcome.diagnostics))
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn actor(role: &str) -> Actor {
    Actor {
        id: format!("{role}-1"),
        roles: vec![role.to_string()],
        org: None,
    }
}

fn cmd(event: &str, input: Value) -> Command {
    Command {
        event: event.into(),
        input,
        reason: None,
    }
}

fn with_reason(event: &str, input: Value, reason: &str) -> Command {
    Command {
        event: event.into(),
        input,
        reason: Some(reason.into()),
    }
}

fn at(state: &str, data: Value) -> Snapshot {
    Snapshot {
        state: state.into(),
        data,
        version: 3,
        due_at: None,
        review: Value::Null,
        budget: Value::Null,
    }
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "ab".repeat(32), "size": 1024 })
}

fn indicators() -> Value {
    json!([
        { "name": "培训专利代理人", "category": "output_quantity", "unit": "人次", "target": 200 },
        { "name": "代理机构服务能力提升", "category": "effect_social", "unit": "家", "target": 30 },
        { "name": "服务满意度", "category": "satisfaction", "unit": "%", "target": 90 }
    ])
}

fn submission() -> Value {
    json!({
        "project_name": "知识产权公共服务能力提升",
        "budget": "300000.00",
        "indicators": indicators(),
        "application_files": [file("申报书.pdf")],
    })
}

fn drafting_data() -> Value {
    // As the service fills them from the stored call, its item and the applicant's unit.
    json!({
        "call_id": "GDIP-2024-01", "closing_date": "2024-06-29", "forward_by": "2024-06-29",
        "applicant_kind": "unit", "part": "retained_provincial"
    })
}

/// The snapshot after a plan, as the store would write it.
/// The snapshot with one budget line of 300 000 yuan, as the store keeps it.
fn budgeted(snapshot: Snapshot) -> Snapshot {
    Snapshot {
        budget: json!({ "lines": 1, "total": "300000.00", "spent": "0.00", "remaining": "300000.00", "execution_rate": 0.0 }),
        ..snapshot
    }
}

fn apply(snapshot: &Snapshot, plan: &TransitionPlan) -> Snapshot {
    Snapshot {
        state: plan.to.clone(),
        data: plan.data.clone(),
        version: plan.new_version,
        due_at: plan.deadline.map(|d| d.due_at),
        review: snapshot.review.clone(),
        budget: snapshot.budget.clone(),
    }
}

const NOW: &str = "2024-06-10T02:00:00Z";

fn plan(
    wf: &CompiledWorkflow,
    snapshot: &Snapshot,
    who: &Actor,
    command: &Command,
) -> Result<TransitionPlan, EngineError> {
    plan_transition(wf, snapshot, who, command, t(NOW), &WorkCalendar::builtin())
}

// ---------------------------------------------------------------- errors

#[test]
fn unknown_event() {
    let wf = load("funded-project");
    let err = plan(
        &wf,
        &at("drafting", drafting_data()),
        &actor("applicant"),
        &cmd("fly_away", Value::Null),
    )
    .unwrap_err();
    assert_eq!(
        err,
        EngineError::UnknownEvent {
            event: "fly_away".into()
        }
    );
    assert_eq!(err.code(), "UNKNOWN_EVENT");
    assert!(err.message().zh_cn.contains("fly_away"));
}

#[test]
fn event_not_allowed_from_the_current_state() {
    let wf = load("funded-project");
    let err = plan(
        &wf,
        &at("drafting", drafting_data()),
        &actor("manager"),
        &cmd("approve", json!({})),
    )
    .unwrap_err();
    assert_eq!(
        err,
        EngineError::NotAllowedFromState {
            event: "approve".into(),
            state: "drafting".into(),
            allowed_from: vec!["decision".into()],
        }
    );
    assert_eq!(err.code(), "NOT_ALLOWED_FROM_STATE");
    // An event from several states lists them all.
    let err = plan(
        &wf,
        &at("formal_check", drafting_data()),
        &actor("applicant"),
        &cmd("withdraw", Value::Null),
    )
    .unwrap_err();
    let EngineError::NotAllowedFromState { allowed_from, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        allowed_from,
        ["drafting", "city_review", "correction", "city_correction"]
    );
}

#[test]
fn role_not_allowed() {
    let wf = load("funded-project");
    let snapshot = at("drafting", drafting_data());
    for who in [
        actor("manager"),
        actor("city"),
        actor("expert"),
        Actor::scheduler(),
    ] {
        let err = plan(&wf, &snapshot, &who, &cmd("submit", submission())).unwrap_err();
        assert_eq!(
            err,
            EngineError::RoleNotAllowed {
                event: "submit".into(),
                required: vec!["applicant".into()],
            },
            "{who:?}"
        );
        assert_eq!(err.code(), "FORBIDDEN");
    }
    // A person cannot fire a timeout that only the scheduler may fire.
    let err = plan(
        &wf,
        &snapshot,
        &actor("manager"),
        &cmd("application_closed", Value::Null),
    )
    .unwrap_err();
    assert!(
        matches!(err, EngineError::RoleNotAllowed { ref required, .. } if required == &["scheduler"])
    );
    // Someone holding several roles may act with any of them.
    let both = Actor {
        id: "u".into(),
        roles: vec!["city".into(), "applicant".into()],
        org: Some("佛山市".into()),
    };
    assert!(plan(&wf, &snapshot, &both, &cmd("submit", submission())).is_ok());
}

#[test]
fn targets_without_an_output_and_an_effect_indicator_are_refused() {
    // The 2024 call: 绩效指标须涵盖产出指标和效益指标. The field says so
    // (`require_groups`), so every input of it is checked: submit, resubmit, a change.
    let wf = load("funded-project");
    let refused = |indicators: Value, missing: &str| {
        let mut input = submission();
        input["indicators"] = indicators;
        let err = plan(
            &wf,
            &at("drafting", drafting_data()),
            &actor("applicant"),
            &cmd("submit", input),
        )
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        let EngineError::InvalidInput { ref errors, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "indicators");
        assert_eq!(errors[0].code, "INDICATOR_GROUP_MISSING");
        assert_eq!(errors[0].message.zh_cn, format!("绩效目标须包含{missing}"));
    };
    refused(
        json!([{ "name": "满意度", "category": "satisfaction", "target": 90 }]),
        "产出指标和效益指标",
    );
    refused(
        json!([{ "name": "培训人次", "category": "output_quantity", "target": 90 }]),
        "效益指标",
    );
    refused(
        json!([{ "name": "企业受益", "category": "effect_economic", "target": 9 }]),
        "产出指标",
    );
    let mut change = json!({ "change_request_id": "CR-1", "indicators": [{ "name": "培训人次", "category": "output_quantity", "target": 90 }] });
    let err = plan(
        &wf,
        &at("execution", json!({ "execution_end": "2025-12-31" })),
        &actor("manager"),
        &cmd("apply_approved_change", change.take()),
    )
    .unwrap_err();
    assert_eq!(err.code(), "INVALID_INPUT", "{err:?}");
}

#[test]
fn indicators_take_the_shape_of_the_provincial_table() {
    let wf = load("funded-project");
    let mut input = submission();
    input["indicators"] = json!([
        { "name": "知识产权质押融资登记金额", "category": "output_quantity", "unit": "亿元",
          "baseline": 907.6, "baseline_year": 2020, "target": 2500, "target_year": 2025,
          "attribute": "expected", "cumulative": true },
        { "name": "知识产权保护社会满意度", "category": "effect_social", "unit": "分",
          "baseline": 80, "baseline_year": 2020, "target": 83, "target_year": 2025,
          "attribute": "binding" },
    ]);
    let plan = plan(
        &wf,
        &at("drafting", drafting_data()),
        &actor("applicant"),
        &cmd("submit", input.clone()),
    )
    .unwrap();
    let stored = &plan.data["indicators"];
    assert_eq!(stored[0]["cumulative"], json!(true));
    assert_eq!(stored[0]["target_year"], json!(2025));
    assert_eq!(stored[1]["attribute"], json!("binding"));
    assert_eq!(
        stored[1]["cumulative"],
        json!(false),
        "defaults are written"
    );
    let bad = |k: &str, v: Value| {
        let mut input = input.clone();
        input["indicators"][1][k] = v;
        let err = first_input_error(&wf, input);
        assert_eq!(err, "INVALID_VALUE", "{k}");
    };
    bad("attribute", json!("mandatory"));
    bad("target_year", json!(20250));
    bad("baseline_year", json!(2030));
    bad("cumulative", json!("yes"));
    bad("baseline", json!("八十"));
}

fn first_input_error(wf: &CompiledWorkflow, input: Value) -> &'static str {
    let err = plan(
        wf,
        &at("drafting", drafting_data()),
        &actor("applicant"),
        &cmd("submit", input),
    )
    .unwrap_err();
    let EngineError::InvalidInput { errors, .. } = err else {
        panic!("{err:?}")
    };
    match errors[0].code {
        "INVALID_VALUE" => "INVALID_VALUE",
        other => panic!("{other}"),
    }
}

#[test]
fn guard_false_reports_the_guard_and_its_message() {
    let wf = load("funded-project");

    // No approval without a budget line (先有项目后有预算): the guard reads `budget`.
    let unbudgeted = at("decision", json!({ "budget": "300000.00" }));
    let err = plan(
        &wf,
        &unbudgeted,
        &actor("manager"),
        &cmd(
            "approve",
            json!({ "approved_budget": "300000.00", "targets_approved": true }),
        ),
    )
    .unwrap_err();
    assert!(
        matches!(&err, EngineError::GuardFailed { guard, detail: None, .. } if guard.starts_with("budget != null && budget.lines >= 1")),
        "{err:?}"
    );
    assert_eq!(err.code(), "GUARD_FAILED");
    let EngineError::GuardFailed { ref message, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message.as_ref().unwrap().zh_cn,
        "立项须先编列预算项目、审定绩效目标，且资助金额不得超过申请经费"
    );
    assert_eq!(
        err.message().en,
        "Approval needs a budget line and approved targets, and funding may not exceed the request"
    );

    // Funding above the request.
    let decision = budgeted(at("decision", json!({ "budget": "300000.00" })));
    let err = plan(
        &wf,
        &decision,
        &actor("manager"),
        &cmd(
            "approve",
            json!({ "approved_budget": "300000.01", "targets_approved": true }),
        ),
    )
    .unwrap_err();
    assert!(
        matches!(&err, EngineError::GuardFailed { guard, .. } if guard.ends_with("yuan(input.approved_budget) <= yuan(data.budget)")),
        "{err:?}"
    );
    assert!(
        plan(
            &wf,
            &decision,
            &actor("manager"),
            &cmd(
                "approve",
                json!({ "approved_budget": "300000.00", "targets_approved": true })
            ),
        )
        .is_ok()
    );

    // A guard that cannot be evaluated (the data lacks the requested budget) fails with
    // the evaluation error as detail.
    let err = plan(
        &wf,
        &budgeted(at("decision", json!({}))),
        &actor("manager"),
        &cmd(
            "approve",
            json!({ "approved_budget": "1.00", "targets_approved": true }),
        ),
    )
    .unwrap_err();
    let EngineError::GuardFailed { detail, .. } = err else {
        panic!("{err:?}")
    };
    assert!(detail.unwrap().contains("budget"));
}

#[test]
fn a_guard_without_a_message_is_shown_as_written() {
    let wf = load("funded-project");
    let err = plan(
        &wf,
        &at("graded", json!({})),
        &actor("manager"),
        &cmd("fly", json!({})),
    )
    .unwrap_err();
    assert_eq!(err.code(), "UNKNOWN_EVENT");
    // conclude_acceptance's guards carry no message; all three fail for an outcome that
    // is not an option, so the input error is what the user sees.
    let review = at("acceptance_review", json!({}));
    let err = plan(
        &wf,
        &review,
        &actor("manager"),
        &cmd(
            "conclude_acceptance",
            json!({ "acceptance_outcome": "maybe" }),
        ),
    )
    .unwrap_err();
    assert_eq!(err.code(), "INVALID_INPUT");
    // grade's guard is long and has a message; the message is what people read, the
    // guard text stays available.
    let err = plan(
        &wf,
        &at("evaluation", json!({})),
        &actor("manager"),
        &cmd(
            "grade",
            json!({ "evaluation_score": 95, "evaluation_grade": "中" }),
        ),
    )
    .unwrap_err();
    let EngineError::GuardFailed { guard, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(guard.contains("input.evaluation_grade == '优'"));
    assert!(
        message
            .as_ref()
            .unwrap()
            .zh_cn
            .starts_with("等级与得分不符")
    );
}

fn field_errors(err: EngineError) -> Vec<(String, &'static str)> {
    let EngineError::InvalidInput { errors, .. } = err else {
        panic!("not an input error: {err:?}")
    };
    errors.into_iter().map(|e| (e.field, e.code)).collect()
}

#[test]
fn invalid_input_names_each_field() {
    let wf = load("funded-project");
    let drafting = at("drafting", drafting_data());
    let applicant = actor("applicant");

    // Money with three decimals.
    let mut input = submission();
    input["budget"] = json!("1000.005");
    let err = plan(&wf, &drafting, &applicant, &cmd("submit", input)).unwrap_err();
    assert_eq!(err.code(), "INVALID_INPUT");
    assert_eq!(field_errors(err), [("budget".to_string(), "INVALID_VALUE")]);

    // Missing required fields and an unknown field, all at once.
    let err = plan(
        &wf,
        &drafting,
        &applicant,
        &cmd(
            "submit",
            json!({ "project_name": "  ", "budget": "100.00", "colour": "red" }),
        ),
    )
    .unwrap_err();
    let mut got = field_errors(err);
    got.sort();
    assert_eq!(
        got,
        [
            ("application_files".to_string(), "REQUIRED"),
            ("colour".to_string(), "UNKNOWN_FIELD"),
            ("indicators".to_string(), "REQUIRED"),
            ("project_name".to_string(), "REQUIRED"),
        ]
    );

    // A date that does not exist.
    let err = plan(
        &wf,
        &at("task_book", json!({})),
        &applicant,
        &cmd(
            "submit_task_book",
            json!({ "task_book": file("任务书.pdf"), "milestones": "2025年完成", "execution_end": "2025-02-30", "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly" }),
        ),
    )
    .unwrap_err();
    assert_eq!(
        field_errors(err),
        [("execution_end".to_string(), "INVALID_VALUE")]
    );

    // Dates outside 1900-01-01..2200-12-31 are refused (hostile dates: the store could not
    // read `-0001-12-31` back, and `+262142-12-31` overflowed the calendar).
    for (day, code) in [
        ("-0001-12-31", "INVALID_VALUE"),
        ("+262142-12-31", "INVALID_VALUE"),
        ("1899-12-31", "DATE_OUT_OF_RANGE"),
        ("2201-01-01", "DATE_OUT_OF_RANGE"),
    ] {
        let err = plan(
            &wf,
            &at("task_book", json!({})),
            &applicant,
            &cmd(
                "submit_task_book",
                json!({ "task_book": file("任务书.pdf"), "milestones": "2025年完成", "execution_end": day, "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly" }),
            ),
        )
        .unwrap_err();
        assert_eq!(
            field_errors(err),
            [("execution_end".to_string(), code)],
            "{day}"
        );
    }

    // An option the enum does not have.
    let err = plan(
        &wf,
        &at("midterm_check", json!({})),
        &actor("manager"),
        &cmd(
            "complete_midterm",
            json!({ "midterm_result": "excellent", "midterm_score": 80 }),
        ),
    )
    .unwrap_err();
    assert_eq!(
        field_errors(err),
        [("midterm_result".to_string(), "NOT_AN_OPTION")]
    );

    // An integer out of range, and input that is not an object.
    let err = plan(
        &wf,
        &at("self_evaluation", json!({})),
        &applicant,
        &cmd(
            "submit_self_evaluation",
            json!({ "self_evaluation_report": file("自评.pdf"), "self_evaluation_score": 101 }),
        ),
    )
    .unwrap_err();
    assert_eq!(
        field_errors(err),
        [("self_evaluation_score".to_string(), "OUT_OF_RANGE")]
    );
    let err = plan(&wf, &drafting, &applicant, &cmd("submit", json!([1, 2]))).unwrap_err();
    assert_eq!(field_errors(err), [("input".to_string(), "NOT_AN_OBJECT")]);
}

#[test]
fn input_is_normalised_before_it_is_stored() {
    let wf = load("funded-project");
    let mut input = submission();
    input["budget"] = json!(300000);
    input["project_name"] = json!("  知识产权公共服务能力提升 ");
    let p = plan(
        &wf,
        &at("drafting", drafting_data()),
        &actor("applicant"),
        &cmd("submit", input),
    )
    .unwrap();
    assert_eq!(p.data["budget"], "300000.00");
    assert_eq!(p.data["project_name"], "知识产权公共服务能力提升");
    assert_eq!(p.input["budget"], "300000.00");
    assert_eq!(p.data["call_id"], "GDIP-2024-01", "earlier data is kept");
}

#[test]
fn reason_and_state_requirements() {
    let wf = load("funded-project");
    // A return needs a written reason.
    let err = plan(
        &wf,
        &at("city_review", drafting_data()),
        &actor("city"),
        &with_reason("city_return", Value::Null, "   "),
    )
    .unwrap_err();
    assert_eq!(field_errors(err), [("reason".to_string(), "REQUIRED")]);
    // Back in drafting, the call and closing date are required by the state.
    let err = plan(
        &wf,
        &at("city_review", json!({ "closing_date": "2024-06-29" })),
        &actor("city"),
        &with_reason("city_return", Value::Null, "预算明细不全"),
    )
    .unwrap_err();
    assert_eq!(
        field_errors(err),
        [("call_id".to_string(), "REQUIRED_BY_STATE")]
    );
    // Execution requires its end date: signing a task book without one is refused even
    // though the guard holds.
    let data = json!({ "budget_line_id": "2024-IP-017", "targets_approved": true, "task_book": file("任务书.pdf"), "milestones": "…" });
    let err = plan(
        &wf,
        &budgeted(at("task_book_review", data.clone())),
        &actor("manager"),
        &cmd("sign_task_book", json!({})),
    )
    .unwrap_err();
    let EngineError::InvalidInput { errors, .. } = err else {
        panic!()
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "execution_end");
    assert_eq!(errors[0].code, "REQUIRED_BY_STATE");
    assert!(errors[0].message.zh_cn.contains("执行期截止日"));
    let mut complete = data;
    complete["execution_end"] = json!("2025-12-31");
    let p = plan(
        &wf,
        &budgeted(at("task_book_review", complete)),
        &actor("manager"),
        &cmd("sign_task_book", json!({})),
    )
    .unwrap();
    assert_eq!(p.to, "execution");
}

#[test]
fn deadline_passed() {
    let wf = load("funded-project");
    let mut drafting = at("drafting", drafting_data());
    drafting.due_at = Some(t("2024-06-29T16:00:00Z"));
    let applicant = actor("applicant");
    let cal = WorkCalendar::builtin();
    let late = t("2024-06-29T16:00:00Z");
    let err = plan_transition(
        &wf,
        &drafting,
        &applicant,
        &cmd("submit", submission()),
        late,
        &cal,
    )
    .unwrap_err();
    assert_eq!(
        err,
        EngineError::DeadlinePassed {
            event: "submit".into(),
            state: "drafting".into(),
            due_at: t("2024-06-29T16:00:00Z"),
        }
    );
    assert_eq!(err.code(), "DEADLINE_PASSED");
    assert!(
        err.message().zh_cn.contains("2024-06-29"),
        "{}",
        err.message().zh_cn
    );
    // One second earlier is still in time.
    assert!(
        plan_transition(
            &wf,
            &drafting,
            &applicant,
            &cmd("submit", submission()),
            t("2024-06-29T15:59:59Z"),
            &cal
        )
        .is_ok()
    );
    // Events not bound to the deadline stay possible, and the scheduler closes the call.
    assert!(
        plan_transition(
            &wf,
            &drafting,
            &applicant,
            &cmd("withdraw", Value::Null),
            late,
            &cal
        )
        .is_ok()
    );
    let closed = plan_transition(
        &wf,
        &drafting,
        &Actor::scheduler(),
        &cmd("application_closed", Value::Null),
        late,
        &cal,
    )
    .unwrap();
    assert_eq!(closed.to, "not_submitted");
    assert!(closed.is_final);
}

#[test]
fn final_states_accept_nothing() {
    let wf = load("funded-project");
    for state in wf.def.states.iter().filter(|s| s.is_final) {
        for event in ["submit", "archive", "withdraw", "no_such_event"] {
            let err = plan(
                &wf,
                &at(&state.id, json!({})),
                &actor("manager"),
                &cmd(event, Value::Null),
            )
            .unwrap_err();
            assert_eq!(
                err,
                EngineError::AlreadyFinal {
                    state: state.id.clone()
                }
            );
            assert_eq!(err.code(), "ALREADY_FINAL");
        }
        assert!(
            available_events(&wf, &at(&state.id, json!({})), &actor("manager"), t(NOW)).is_empty()
        );
    }
}

#[test]
fn a_state_the_version_does_not_define() {
    let wf = load("funded-project");
    let err = plan(
        &wf,
        &at("limbo", json!({})),
        &actor("manager"),
        &cmd("archive", Value::Null),
    )
    .unwrap_err();
    assert_eq!(
        err,
        EngineError::UndefinedState {
            state: "limbo".into()
        }
    );
    assert_eq!(err.code(), "INVALID_STATE");
}

// ---------------------------------------------------------------- what an actor may do

#[test]
fn available_events_with_reasons() {
    let wf = load("funded-project");
    let mut drafting = at("drafting", drafting_data());
    drafting.due_at = Some(t("2024-06-29T16:00:00Z"));

    let options = available_events(&wf, &drafting, &actor("applicant"), t(NOW));
    let events: Vec<&str> = options.iter().map(|o| o.event.as_str()).collect();
    assert_eq!(
        events,
        ["submit", "submit_to_province", "withdraw"],
        "timeouts are not offered to people"
    );
    let submit = &options[0];
    // The indicator groups are checked as input; the guard (routing, and a 后补助's
    // evidence) holds for a unit in a city applying to a 保留省级 item.
    assert!(submit.available, "{submit:?}");
    assert_eq!(submit.to, ["city_review"]);
    assert_eq!(submit.title.zh_cn, "提交申报（经地市局推荐）");
    // A unit in a city goes through its city bureau: the direct route is unavailable and
    // says why, although its guard also reads the input (the routing part is decided now).
    let direct = &options[1];
    assert!(!direct.available && !direct.depends_on_input);
    let Some(EngineError::GuardFailed { message, .. }) = &direct.unavailable else {
        panic!("{direct:?}")
    };
    assert!(
        message
            .as_ref()
            .unwrap()
            .zh_cn
            .contains("地市内单位经地市局推荐"),
        "{message:?}"
    );
    assert!(
        submit
            .input
            .iter()
            .any(|i| i.name == "budget" && i.required)
    );

    // The city bureau sees them, but may not fire them.
    let options = available_events(&wf, &drafting, &actor("city"), t(NOW));
    assert!(options.iter().all(|o| !o.available));
    assert!(matches!(
        options[0].unavailable,
        Some(EngineError::RoleNotAllowed { ref required, .. }) if required == &["applicant"]
    ));

    // After the closing date only withdrawing is left.
    let late = available_events(
        &wf,
        &drafting,
        &actor("applicant"),
        t("2024-07-01T00:00:00Z"),
    );
    assert!(!late[0].available);
    assert_eq!(
        late[0].unavailable.as_ref().unwrap().code(),
        "DEADLINE_PASSED"
    );
    assert!(!late[1].available);
    assert!(late[2].available);

    // Expert review: the two transitions of one event are offered as one option with both
    // targets; before the scores are in, neither branch holds.
    let mut review = at("expert_review", json!({}));
    let manager = actor("manager");
    let options = available_events(&wf, &review, &manager, t(NOW));
    assert_eq!(options.len(), 1);
    assert_eq!(options[0].event, "conclude_review");
    assert_eq!(options[0].to, ["decision", "not_funded"]);
    assert!(!options[0].available);
    assert_eq!(
        options[0].unavailable.as_ref().unwrap().code(),
        "GUARD_FAILED"
    );
    for scores in [
        json!({ "total": 75.0, "count": 3 }),
        json!({ "total": 50.0, "count": 3 }),
    ] {
        review.review = scores;
        let options = available_events(&wf, &review, &manager, t(NOW));
        assert!(options[0].available && options[0].unavailable.is_none());
    }

    // A guard that reads the input is offered (decided when fired); firing it with input
    // that fails the guard reports the guard's message.
    let cr = load("change-request");
    let drafting = at("drafting", json!({}));
    let options = available_events(&cr, &drafting, &actor("applicant"), t(NOW));
    let submit = options.iter().find(|o| o.event == "submit").unwrap();
    assert!(submit.available && submit.depends_on_input);
    let cal = WorkCalendar::builtin();
    let refused = plan_transition(
        &cr,
        &drafting,
        &actor("applicant"),
        &Command {
            event: "submit".into(),
            input: json!({ "change_type": "budget", "change_summary": "调整专家咨询费" }),
            reason: None,
        },
        t(NOW),
        &cal,
    )
    .unwrap_err();
    let EngineError::GuardFailed { message, .. } = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!(message.as_ref().unwrap().zh_cn, "预算变更须填写变更后预算");
    let accepted = plan_transition(
        &cr,
        &drafting,
        &actor("applicant"),
        &Command {
            event: "submit".into(),
            input: json!({ "change_type": "budget", "change_summary": "调整专家咨询费", "new_budget": "5000" }),
            reason: None,
        },
        t(NOW),
        &cal,
    )
    .unwrap();
    assert_eq!(accepted.to, "review");
}

// ---------------------------------------------------------------- a whole project

struct Run {
    wf: CompiledWorkflow,
    cal: WorkCalendar,
    snapshot: Snapshot,
    history: Vec<HistoryRecord>,
}

impl Run {
    #[allow(
        clippy::needless_pass_by_value,
        reason = "test helper taking the command it fires"
    )]
    fn fire(&mut self, who: &Actor, command: Command, now: &str) -> TransitionPlan {
        let p = plan_transition(&self.wf, &self.snapshot, who, &command, t(now), &self.cal)
            .unwrap_or_else(|e| {
                panic!(
                    "{} from {} at {now}: {e:?}",
                    command.event, self.snapshot.state
                )
            });
        let prev = self
            .history
            .last()
            .map_or(GENESIS_HASH.to_string(), |r| r.hash.clone());
        self.history.push(
            HistoryRecord {
                instance_id: "fp-1".into(),
                seq: p.new_version,
                at: p.at,
                actor_id: p.actor.id.clone(),
                actor_roles: p.actor.roles.clone(),
                event: p.event.clone(),
                from_state: p.from.clone(),
                to_state: p.to.clone(),
                input: p.input.clone(),
                reason: p.reason.clone(),
                data_hash: None,
                prev_hash: String::new(),
                hash: String::new(),
            }
            .seal(&prev),
        );
        self.snapshot = apply(&self.snapshot, &p);
        p
    }
}

/// (key, local Shanghai time, roles notified, event) of each timer.
fn timers(plan: &[TimerPlan]) -> Vec<(String, String, Vec<String>, Option<String>)> {
    plan.iter()
        .map(|t| {
            (
                t.key.clone(),
                t.fire_at
                    .with_timezone(&grantflow_domain::calendar::TIMEZONE)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                t.notify.clone(),
                t.event.clone(),
            )
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

#[test]
fn funded_project_from_drafting_to_archived() {
    let wf = load("funded-project");
    let cal = WorkCalendar::builtin();
    let snapshot = Snapshot::initial(&wf, drafting_data());
    assert_eq!(snapshot.state, "drafting");
    let (deadline, first) = initial_schedule(&wf, &snapshot, t("2024-06-03T02:00:00Z"), &cal);
    let deadline = deadline.unwrap();
    assert_eq!(
        deadline.due_at,
        t("2024-06-29T16:00:00Z"),
        "end of the closing day"
    );
    assert_eq!(
        timers(&first)
            .iter()
            .map(|(k, at, _, _)| format!("{k} {at}"))
            .collect::<Vec<_>>(),
        [
            "reminder:7d 2024-06-22 09:00",
            "reminder:3d 2024-06-26 09:00",
            "reminder:1d 2024-06-28 09:00",
            "due 2024-06-29 09:00",
            "timeout 2024-06-30 00:00",
        ]
    );
    let mut run = Run {
        wf,
        cal,
        snapshot: Snapshot {
            due_at: Some(deadline.due_at),
            ..snapshot
        },
        history: Vec::new(),
    };
    let applicant = actor("applicant");
    let city = actor("city");
    let manager = actor("manager");

    let p = run.fire(
        &applicant,
        cmd("submit", submission()),
        "2024-06-20T02:00:00Z",
    );
    assert_eq!(
        (p.stage_from.as_str(), p.stage_to.as_str()),
        ("application", "application")
    );
    assert_eq!(p.notifications[0].roles, ["city"]);
    // The city forwards by the province's closing date (`forward_by`), not N days later.
    assert_eq!(p.deadline.unwrap().due_date.to_string(), "2024-06-29");
    assert!(p.cancel_state_timers);

    run.fire(
        &city,
        cmd("recommend", json!({ "city_opinion": "同意推荐" })),
        "2024-06-25T02:00:00Z",
    );

    // Returned for correction on Fri 2024-09-27: 5 working days across National Day are
    // Sun 09-29 (调休), Mon 09-30, then 10-01..07 off, Tue 10-08, Wed 10-09, Thu 10-10.
    let p = run.fire(
        &manager,
        with_reason(
            "return_for_correction",
            json!({ "correction_notes": "补充经费预算明细" }),
            "材料不全",
        ),
        "2024-09-27T02:00:00Z",
    );
    assert_eq!(p.to, "correction");
    let d = p.deadline.unwrap();
    assert_eq!(d.due_date.to_string(), "2024-10-10");
    assert_eq!(d.due_at, t("2024-10-10T16:00:00Z"));
    assert_eq!(
        timers(&p.schedule),
        [
            // 3 working days before Thu 10-10: 10-09, 10-08, then 09-30.
            (
                "reminder:3wd".into(),
                "2024-09-30 09:00".into(),
                s(&["applicant"]),
                None
            ),
            (
                "reminder:1wd".into(),
                "2024-10-09 09:00".into(),
                s(&["applicant"]),
                None
            ),
            (
                "due".into(),
                "2024-10-10 09:00".into(),
                s(&["applicant"]),
                None
            ),
            (
                "timeout".into(),
                "2024-10-11 00:00".into(),
                s(&["scheduler"]),
                Some("correction_expired".into())
            ),
            (
                "escalation:0".into(),
                "2024-10-11 09:00".into(),
                s(&["manager"]),
                None
            ),
        ]
    );
    assert!(p.schedule.iter().all(|t| t.due_at == Some(d.due_at)));
    assert_eq!(p.reason.as_deref(), Some("材料不全"));

    let p = run.fire(
        &applicant,
        cmd(
            "resubmit",
            json!({ "budget_breakdown": "设备 10 万；培训 20 万" }),
        ),
        "2024-10-09T02:00:00Z",
    );
    assert!(
        p.data.get("correction_notes").is_none(),
        "unset by the effect"
    );
    assert_eq!(p.data["budget_breakdown"], "设备 10 万；培训 20 万");

    let p = run.fire(
        &manager,
        cmd("pass_formal_check", Value::Null),
        "2024-10-14T02:00:00Z",
    );
    assert_eq!(p.to, "expert_review");
    assert_eq!(p.open_reviews, ["application_review"]);

    // The experts' aggregated scores are in.
    run.snapshot.review = json!({ "total": 75.0, "count": 3 });
    let p = run.fire(
        &manager,
        cmd("conclude_review", Value::Null),
        "2024-10-28T02:00:00Z",
    );
    assert_eq!(p.to, "decision");

    // The programme manager sets up the budget line (the store keeps `budget`).
    run.snapshot = budgeted(run.snapshot.clone());
    // Approved on Mon 2024-11-04: 7 calendar days of public notice, due at the end of
    // Mon 11-11, when the scheduler fires `publicity_ended`.
    let p = run.fire(
        &manager,
        cmd(
            "approve",
            json!({ "approved_budget": "280000.00", "budget_line_id": "2024-IP-017", "targets_approved": true }),
        ),
        "2024-11-04T02:00:00Z",
    );
    assert_eq!(p.to, "publicity");
    assert_eq!(
        p.data["approved_indicators"], p.data["indicators"],
        "the targets are frozen at approval"
    );
    assert_eq!(p.data["approved_on"], "2024-11-04");
    let d = p.deadline.unwrap();
    assert_eq!(d.due_date.to_string(), "2024-11-11");
    assert_eq!(d.due_at, t("2024-11-11T16:00:00Z"));
    assert_eq!(
        timers(&p.schedule),
        [
            (
                "reminder:1d".into(),
                "2024-11-10 09:00".into(),
                s(&["manager"]),
                None
            ),
            (
                "due".into(),
                "2024-11-11 09:00".into(),
                s(&["manager"]),
                None
            ),
            (
                "timeout".into(),
                "2024-11-12 00:00".into(),
                s(&["scheduler"]),
                Some("publicity_ended".into())
            ),
        ]
    );
    let timeout = p
        .schedule
        .iter()
        .find(|t| t.kind == TimerKind::Timeout)
        .unwrap();
    let fire_at = timeout.fire_at.to_rfc3339();

    let p = run.fire(
        &Actor::scheduler(),
        cmd("publicity_ended", Value::Null),
        &fire_at,
    );
    assert_eq!(p.to, "task_book");
    assert_eq!(p.actor.roles, ["scheduler"]);

    run.fire(
        &applicant,
        cmd(
            "submit_task_book",
            json!({ "task_book": file("任务书.pdf"), "milestones": "2025年6月中期；12月验收", "execution_end": "2025-12-31", "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2025-06-30" }], "report_schedule": "quarterly" }),
        ),
        "2024-11-15T02:00:00Z",
    );
    let p = run.fire(
        &manager,
        cmd("sign_task_book", json!({})),
        "2024-11-18T02:00:00Z",
    );
    assert_eq!(p.to, "execution");
    assert_eq!(p.deadline.unwrap().due_at, t("2025-12-31T16:00:00Z"));

    // A progress report stays in execution: the deadline and its timers are kept.
    let p = run.fire(
        &applicant,
        cmd(
            "submit_progress_report",
            json!({ "progress_report": file("进展.pdf"), "progress": [{ "task": 1, "status": "in_progress", "percent": 60 }] }),
        ),
        "2025-06-02T02:00:00Z",
    );
    // Only the progress report's checkpoint moves: reported late for the quarter due
    // 2024-12-31, the next report is due at the end of the current quarter.
    assert!(!p.enters_state && !p.cancel_state_timers);
    assert_eq!(p.data["last_report_due"], "2024-12-31");
    assert_eq!(p.data["next_report_due"], "2025-06-30");
    assert!(p.cancel_timers.contains(&"progress_report:due".to_string()));
    assert!(
        p.schedule
            .iter()
            .all(|t| t.key.starts_with("progress_report:"))
    );
    assert!(p.schedule.iter().any(|t| t.key == "progress_report:due"));
    assert_eq!(p.deadline.unwrap().due_at, t("2025-12-31T16:00:00Z"));

    let p = run.fire(
        &applicant,
        cmd(
            "submit_final_report",
            json!({
                "acceptance_report": file("总结.pdf"),
                "financial_statement": file("决算.xlsx"),
                "indicator_actuals": indicators(),
            }),
        ),
        "2025-12-01T02:00:00Z",
    );
    assert_eq!(p.open_reviews, ["acceptance_review"]);
    run.fire(
        &manager,
        cmd(
            "conclude_acceptance",
            json!({ "acceptance_outcome": "pass" }),
        ),
        "2025-12-20T02:00:00Z",
    );
    run.fire(
        &applicant,
        cmd(
            "submit_self_evaluation",
            json!({ "self_evaluation_report": file("自评.pdf"), "self_evaluation_score": 88 }),
        ),
        "2026-01-05T02:00:00Z",
    );
    run.fire(
        &manager,
        cmd(
            "grade",
            json!({ "evaluation_score": 85, "evaluation_grade": "良" }),
        ),
        "2026-01-20T02:00:00Z",
    );
    let p = run.fire(
        &manager,
        cmd("archive", Value::Null),
        "2026-02-02T02:00:00Z",
    );
    assert_eq!(p.to, "archived");
    assert!(p.is_final && p.deadline.is_none() && p.schedule.is_empty());

    // The whole history, sealed as it went, verifies; the instance accepts nothing more.
    assert_eq!(run.history.len(), 16);
    assert_eq!(run.snapshot.version, 16);
    assert_eq!(verify_chain(&run.history), Ok(()));
    let path: Vec<&str> = run.history.iter().map(|r| r.to_state.as_str()).collect();
    assert_eq!(
        path,
        [
            "city_review",
            "formal_check",
            "correction",
            "formal_check",
            "expert_review",
            "decision",
            "publicity",
            "task_book",
            "task_book_review",
            "execution",
            "execution",
            "acceptance_review",
            "self_evaluation",
            "evaluation",
            "graded",
            "archived",
        ]
    );
    assert_eq!(run.snapshot.data["approved_budget"], "280000.00");
    assert_eq!(run.snapshot.data["evaluation_grade"], "良");
    let err = plan(
        &run.wf,
        &run.snapshot,
        &manager,
        &cmd("archive", Value::Null),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ALREADY_FINAL");
}

#[test]
fn the_call_s_pass_mark_and_panel_size_decide_the_review() {
    // The service copies the call's rules into the data; the guard reads them, and the
    // documented defaults (3 experts, 60) when an instance predates them.
    let wf = load("funded-project");
    let review = |data: Value, count: u32, total: f64| {
        let snapshot = Snapshot {
            review: json!({ "count": count, "total": total }),
            ..at("expert_review", data)
        };
        match plan(
            &wf,
            &snapshot,
            &actor("manager"),
            &cmd("conclude_review", json!({})),
        ) {
            Ok(p) => p.to,
            Err(e) => e.code().to_string(),
        }
    };
    assert_eq!(
        review(json!({}), 3, 75.0),
        "decision",
        "default pass mark 60"
    );
    assert_eq!(
        review(json!({}), 2, 75.0),
        "GUARD_FAILED",
        "default panel 3"
    );
    let strict = json!({ "review_pass_mark": 80, "review_panel_size": 5 });
    assert_eq!(review(strict.clone(), 5, 75.0), "not_funded");
    assert_eq!(review(strict.clone(), 5, 80.0), "decision");
    assert_eq!(
        review(strict, 3, 90.0),
        "GUARD_FAILED",
        "five experts needed"
    );
    let lenient = json!({ "review_pass_mark": 50, "review_panel_size": 3 });
    assert_eq!(review(lenient, 3, 55.5), "decision");
}

#[test]
fn deadlines_read_the_call_s_numbers_from_the_data() {
    let wf = load("funded-project");
    let decision = |data: Value| budgeted(at("decision", data));
    let approve = cmd(
        "approve",
        json!({ "approved_budget": "300000.00", "targets_approved": true }),
    );
    // 公示 7 calendar days by default; the call's 3 when the data carries them.
    let due = |data: Value| {
        let p = plan(&wf, &decision(data), &actor("manager"), &approve).unwrap();
        assert_eq!(p.to, "publicity");
        p.deadline.unwrap().due_date.to_string()
    };
    // NOW is 2024-06-10 (端午, a holiday) in Asia/Shanghai.
    assert_eq!(due(json!({ "budget": "300000.00" })), "2024-06-17");
    assert_eq!(
        due(json!({ "budget": "300000.00", "publicity_days": 3 })),
        "2024-06-13"
    );
    // A stage limit in working days: formal check 5wd by default, 2wd by the call.
    let recommend = |mut data: Value| {
        data["part"] = json!("retained_provincial");
        let p = plan(
            &wf,
            &at("city_review", data),
            &actor("city"),
            &cmd("recommend", json!({})),
        )
        .unwrap();
        p.deadline.unwrap().due_date.to_string()
    };
    assert_eq!(
        recommend(json!({})),
        "2024-06-17",
        "5 working days: 11–14, 17"
    );
    assert_eq!(recommend(json!({ "limit_formal_check": 2 })), "2024-06-12");
    // An absurd stored value falls back to the default rather than a bad deadline.
    assert_eq!(recommend(json!({ "limit_formal_check": 0 })), "2024-06-17");
}
