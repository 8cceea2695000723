//! Issue 13, point 3: execution tracked task by task, on SQLite and PostgreSQL, with the
//! shipped `funded-project` workflow, the scheduler on the manual clock and a real SMTP
//! server.
//!
//! - The task book's rows are checked on `submit_task_book`: every bad cell named by row
//!   and column, in Chinese and English, and nothing changes.
//! - A quarterly progress report is reminded, falls due, is reminded again when overdue and
//!   escalated to the manager; the late report moves the next one to the end of the quarter
//!   after, and its reminders replace the old ones.
//! - The mid-term check's `needs_improvement` opens a 整改 with the call's deadline: rectified
//!   and re-checked it goes back to execution (the progress reminders come back); left to
//!   lapse it ends in termination, fired by the scheduler; the manager may also terminate
//!   at the re-check.

use crate::common;

use common::{Backend, CallWorld, local};
use grantflow_domain::engine::EngineError;
use grantflow_service::ServiceError;
use grantflow_store::{Instance, StoreError, TimerStatus, User};
use grantflow_testkit::{CATALOGUE_2022, call_of, registry_of};
use serde_json::{Value, json};

const TITLE: &str = "顺德家电企业知识产权维权援助";

struct W {
    base: CallWorld,
}
grantflow_testkit::extends!(W, base: CallWorld);

async fn world(backend: Backend) -> W {
    let base = CallWorld::new(
        backend,
        registry_of(&["funded-project"]),
        call_of(CATALOGUE_2022),
    )
    .await;
    W { base }
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "ab".repeat(32), "size": 2048 })
}

/// The task rows of seed 003's shape, linked to the approved targets by name.
fn tasks() -> Value {
    json!([
        {
            "focus": "实施严格的知识产权保护", "task": "建设家电产业知识产权维权援助工作站",
            "deliverable_form": "工作站挂牌及运行制度", "department": "联盟秘书处",
            "due": "2024-12-31", "indicators": ["维权援助案件"]
        },
        {
            "focus": "大力推动知识产权维权援助公共服务", "task": "为企业提供维权咨询与培训",
            "deliverable_form": "服务台账、培训签到表", "department": "联盟法律服务部",
            "due": "2025-06-30", "indicators": ["维权援助案件", "企业满意度"]
        }
    ])
}

impl W {
    async fn fire(&self, who: &User, id: uuid::Uuid, event: &str, input: Value) -> Instance {
        self.fire_with(who, id, event, input, Some("依据检查意见"))
            .await
            .unwrap_or_else(|e| panic!("`{event}`: {e:?}"))
    }

    /// A 保留省级 project approved and through 公示, waiting for its task book (07-05).
    async fn at_task_book(&self) -> Instance {
        self.clock.set(local("2024-06-20", "10:00"));
        let inst = self
            .apply("funded-project", TITLE, Some("2022-2-1-5"))
            .await;
        let id = inst.id;
        let input = json!({
            "project_name": TITLE, "budget": "300000", "application_files": [file("申报书.pdf")],
            "indicators": [
                { "name": "维权援助案件", "category": "output_quantity", "unit": "件", "target": 60 },
                { "name": "企业满意度", "category": "effect_social", "unit": "%", "target": 90 }
            ],
        });
        self.fire(&self.applicant, id, "submit", input).await;
        self.fire(&self.city, id, "recommend", json!({})).await;
        self.fire(&self.manager, id, "pass_formal_check", json!({}))
            .await;
        self.services
            .store
            .set_review_result(id, json!({ "total": 82.0, "count": 3 }))
            .await
            .unwrap();
        self.fire(&self.manager, id, "conclude_review", json!({}))
            .await;
        self.services
            .add_budget_line(
                &self.manager,
                id,
                2024,
                "维权援助",
                grantflow_domain::Money::from_yuan(300_000).unwrap(),
                "省级财政专项资金",
            )
            .await
            .unwrap();
        self.fire(
            &self.manager,
            id,
            "approve",
            json!({ "approved_budget": "300000", "targets_approved": true }),
        )
        .await;
        self.clock.set(local("2024-07-05", "10:00"));
        self.fire(&self.manager, id, "publicity_ended", json!({}))
            .await
    }

    /// A 下放地市审批 project approved by its city bureau (no 公示 at the province), waiting
    /// for its task book.
    async fn city_approved(&self) -> Instance {
        self.clock.set(local("2024-06-20", "10:00"));
        let inst = self
            .apply("funded-project", TITLE, Some("2022-1-2-2"))
            .await;
        let input = json!({
            "project_name": TITLE, "budget": "300000", "application_files": [file("申报书.pdf")],
            "indicators": [
                { "name": "维权援助案件", "category": "output_quantity", "unit": "件", "target": 60 },
                { "name": "企业满意度", "category": "effect_social", "unit": "%", "target": 90 }
            ],
        });
        self.fire(&self.applicant, inst.id, "submit", input).await;
        self.clock.set(local("2024-07-05", "10:00"));
        let approved = self
            .fire(
                &self.city,
                inst.id,
                "city_approve",
                json!({ "approved_budget": "250000", "targets_approved": true }),
            )
            .await;
        assert_eq!(approved.state, "task_book");
        // 先有预算再有执行: the line the task book's signature needs.
        self.services
            .add_budget_line(
                &self.manager,
                inst.id,
                2024,
                "维权援助",
                grantflow_domain::Money::from_yuan(250_000).unwrap(),
                "省级财政专项资金",
            )
            .await
            .unwrap();
        self.services.store.get_instance(inst.id).await.unwrap()
    }

    /// In execution from 07-10 with a quarterly schedule: the first report is due 09-30.
    async fn in_execution(&self) -> Instance {
        let inst = self.at_task_book().await;
        self.sign_quarterly(inst).await
    }

    /// The task book of `inst` submitted with [`tasks`] and a quarterly schedule, and
    /// signed on 07-10.
    async fn sign_quarterly(&self, inst: Instance) -> Instance {
        self.fire(
            &self.applicant,
            inst.id,
            "submit_task_book",
            json!({
                "task_book": file("任务书.pdf"), "milestones": "2024年11月中期检查，2025年6月验收",
                "execution_end": "2025-06-30", "tasks": tasks(), "report_schedule": "quarterly"
            }),
        )
        .await;
        self.clock.set(local("2024-07-10", "10:00"));
        let signed = self
            .fire(&self.manager, inst.id, "sign_task_book", json!({}))
            .await;
        assert_eq!(signed.state, "execution");
        signed
    }

    async fn pending_keys(&self, id: uuid::Uuid) -> Vec<String> {
        let mut keys: Vec<String> = self
            .services
            .store
            .timers_for_instance(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.status == TimerStatus::Pending)
            .map(|t| t.key)
            .collect();
        keys.sort();
        keys
    }
}

fn invalid_input(result: Result<Instance, ServiceError>) -> Vec<(String, String, String, String)> {
    match result {
        Err(ServiceError::Store(StoreError::Engine(EngineError::InvalidInput {
            errors, ..
        }))) => errors
            .into_iter()
            .map(|e| (e.field, e.code.to_string(), e.message.zh_cn, e.message.en))
            .collect(),
        other => panic!("expected INVALID_INPUT, got {other:?}"),
    }
}

async fn the_task_book_is_checked_row_by_row(backend: Backend) {
    let w = world(backend).await;
    let inst = w.at_task_book().await;
    assert_eq!(inst.state, "task_book");
    let mut rows = tasks();
    rows[0]["department"] = json!("");
    rows[1]["due"] = json!("2025-02-30");
    rows[1]["indicators"] = json!(["维权援助案件", "专利申请量"]);
    rows[1]["colour"] = json!("红");
    let input = |rows: Value| {
        json!({
            "task_book": file("任务书.pdf"), "milestones": "年底验收",
            "execution_end": "2025-06-30", "tasks": rows, "report_schedule": "quarterly"
        })
    };
    let errors = invalid_input(
        w.fire_with(&w.applicant, inst.id, "submit_task_book", input(rows), None)
            .await,
    );
    let cells: Vec<(&str, &str)> = errors
        .iter()
        .map(|(f, c, _, _)| (f.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        cells,
        [
            ("tasks[0].department", "REQUIRED"),
            ("tasks[1].colour", "UNKNOWN_FIELD"),
            ("tasks[1].due", "INVALID_VALUE"),
        ]
    );
    assert_eq!(errors[0].2, "第 1 行「责任部门」不能为空");
    assert_eq!(
        errors[0].3,
        "row 1: `department` (responsible department) is required"
    );
    // With the cells right, an indicator that is not one of the approved targets.
    let mut rows = tasks();
    rows[1]["indicators"] = json!(["维权援助案件", "专利申请量"]);
    let errors = invalid_input(
        w.fire_with(&w.applicant, inst.id, "submit_task_book", input(rows), None)
            .await,
    );
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1.as_str()),
        ("tasks[1].indicators[1]", "TASK_INDICATOR_UNKNOWN")
    );
    assert!(
        errors[0].2.contains("「专利申请量」不在绩效目标中"),
        "{}",
        errors[0].2
    );
    // Too many rows: refused before any row is looked at.
    let many = Value::Array(vec![tasks()[0].clone(); 201]);
    let errors = invalid_input(
        w.fire_with(&w.applicant, inst.id, "submit_task_book", input(many), None)
            .await,
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1.as_str()),
        ("tasks", "TOO_MANY_ROWS")
    );
    // A task due after the end of execution.
    let mut rows = tasks();
    rows[1]["due"] = json!("2025-07-31");
    match w
        .fire_with(&w.applicant, inst.id, "submit_task_book", input(rows), None)
        .await
    {
        Err(ServiceError::Store(StoreError::Engine(EngineError::GuardFailed {
            message, ..
        }))) => {
            assert_eq!(message.unwrap().zh_cn, "每项任务的时限不得晚于执行期截止日");
        }
        other => panic!("{other:?}"),
    }
    // Nothing of it changed the project.
    let unchanged = w.services.store.get_instance(inst.id).await.unwrap();
    assert_eq!(
        (unchanged.state.as_str(), unchanged.version),
        ("task_book", inst.version)
    );
    assert!(unchanged.data.get("tasks").is_none());
    // The right table is stored numbered, and the schedule with it.
    let ok = w
        .fire(&w.applicant, inst.id, "submit_task_book", input(tasks()))
        .await;
    assert_eq!(ok.state, "task_book_review");
    assert_eq!(ok.data["tasks"][1]["no"], 2);
    assert_eq!(ok.data["tasks"][1]["department"], "联盟法律服务部");
    assert_eq!(ok.data["report_schedule"], "quarterly");
}

async fn a_quarterly_report_is_reminded_then_escalated(backend: Backend) {
    let w = world(backend).await;
    let inst = w.in_execution().await;
    assert_eq!(inst.data["next_report_due"], "2024-09-30");
    let keys = w.pending_keys(inst.id).await;
    for key in [
        "progress_report:reminder:7d",
        "progress_report:due",
        "progress_report:overdue:1",
        "progress_report:overdue:2",
        "progress_report:escalation:0",
    ] {
        assert!(keys.contains(&key.to_string()), "{key} in {keys:?}");
    }
    // A report on a task the book does not have is refused, naming the row.
    let errors = invalid_input(
        w.fire_with(
            &w.applicant,
            inst.id,
            "submit_progress_report",
            json!({ "progress": [{ "task": 3, "status": "in_progress", "percent": 10 }] }),
            None,
        )
        .await,
    );
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1.as_str()),
        ("progress[0].task", "TASK_UNKNOWN")
    );

    // The scheduler runs every morning from 09-20 to 10-21; nobody reports.
    let mut day = chrono::NaiveDate::from_ymd_opt(2024, 9, 20).unwrap();
    while day <= chrono::NaiveDate::from_ymd_opt(2024, 10, 21).unwrap() {
        w.run_at(local(&day.to_string(), "09:30")).await;
        day = day.succ_opt().unwrap();
    }
    let unit = "shunde@example.gov.cn".to_string();
    let manager = "manager@example.gov.cn".to_string();
    // 7 days before, on the day, twice overdue (5 and 10 working days after 09-30, across
    // the National Day holiday and its make-up Saturday 10-12: 10-12 and 10-18), and the
    // manager alerted 10 working days late.
    assert_eq!(
        w.deadline_mail(),
        vec![
            (
                unit.clone(),
                format!("【截止提醒】{TITLE}：进展报告还有 7 天截止")
            ),
            (unit.clone(), format!("【今日截止】{TITLE}：进展报告")),
            (
                unit.clone(),
                format!("【已逾期】{TITLE}：进展报告已逾期 12 天")
            ),
            (
                manager.clone(),
                format!("【逾期督办】顺德家电产业知识产权联盟：{TITLE}（进展报告）已逾期 18 天")
            ),
            (
                unit.clone(),
                format!("【已逾期】{TITLE}：进展报告已逾期 18 天")
            ),
        ]
    );

    // The late report (10-22) covers the quarter; the next is due at the end of the next.
    w.clock.set(local("2024-10-22", "10:00"));
    let reported = w
        .fire(
            &w.applicant,
            inst.id,
            "submit_progress_report",
            json!({ "progress": [
                { "task": 1, "status": "in_progress", "percent": 60, "description": "工作站已挂牌",
                  "deliverables": [file("挂牌照片.pdf")] },
                { "task": 2, "status": "delayed", "description": "培训推迟至11月" }
            ] }),
        )
        .await;
    assert_eq!(reported.state, "execution");
    assert_eq!(reported.data["last_report_due"], "2024-09-30");
    assert_eq!(reported.data["next_report_due"], "2024-12-31");
    assert_eq!(reported.data["progress"][0]["percent"], 60);
    assert_eq!(reported.data["progress"][1]["status"], "delayed");
    // The execution deadline's own timers stay; the report's are those of 12-31.
    let timers = w.services.store.timers_for_instance(inst.id).await.unwrap();
    let pending: Vec<_> = timers
        .iter()
        .filter(|t| t.status == TimerStatus::Pending && t.key.starts_with("progress_report:"))
        .collect();
    assert_eq!(pending.len(), 5);
    assert!(
        pending
            .iter()
            .all(|t| t.due_at == Some(local("2025-01-01", "00:00")))
    );
    assert!(
        w.pending_keys(inst.id)
            .await
            .contains(&"reminder:30d".to_string())
    );
    // Nothing more about the third quarter.
    let before = w.deadline_mail().len();
    w.run_at(local("2024-10-28", "09:30")).await;
    assert_eq!(w.deadline_mail().len(), before);
    w.run_at(local("2024-12-24", "09:30")).await;
    assert_eq!(
        w.deadline_mail().last().unwrap(),
        &(unit, format!("【截止提醒】{TITLE}：进展报告还有 7 天截止"))
    );
}

async fn midterm_rectification_continues_or_terminates(backend: Backend) {
    let w = world(backend).await;
    let rectified = w.in_execution().await;
    let lapsing = w.in_execution().await;
    let dropped = w.in_execution().await;
    // Each reports the third quarter in time: the next report is due 12-31.
    w.clock.set(local("2024-09-25", "10:00"));
    for inst in [&rectified, &lapsing, &dropped] {
        let reported = w
            .fire(
                &w.applicant,
                inst.id,
                "submit_progress_report",
                json!({ "progress": [{ "task": 1, "status": "in_progress", "percent": 30 }] }),
            )
            .await;
        assert_eq!(reported.data["next_report_due"], "2024-12-31");
    }
    w.clock.set(local("2024-11-04", "10:00"));
    for inst in [&rectified, &lapsing, &dropped] {
        let checking = w
            .fire(&w.manager, inst.id, "start_midterm", json!({}))
            .await;
        assert_eq!(checking.state, "midterm_check");
        // Leaving execution cancels the progress reminders with the state's timers.
        assert!(
            !w.pending_keys(inst.id)
                .await
                .iter()
                .any(|k| k.starts_with("progress_report:"))
        );
    }
    // The result needs a score; needs_improvement needs a written reason.
    let refused = w
        .fire_with(
            &w.manager,
            rectified.id,
            "complete_midterm",
            json!({ "midterm_result": "needs_improvement", "midterm_score": 55 }),
            None,
        )
        .await;
    assert!(
        matches!(&refused, Err(ServiceError::Store(StoreError::Engine(EngineError::InvalidInput { errors, .. }))) if errors[0].field == "reason"),
        "{refused:?}"
    );
    for inst in [&rectified, &lapsing, &dropped] {
        let opened = w
            .fire(
                &w.manager,
                inst.id,
                "complete_midterm",
                json!({ "midterm_result": "needs_improvement", "midterm_score": 55 }),
            )
            .await;
        assert_eq!(opened.state, "midterm_rectification");
        assert_eq!(opened.data["midterm_score"], 55);
        // The default 20 working days from 11-04: due at the end of 12-02.
        assert_eq!(opened.due_at, Some(local("2024-12-03", "00:00")));
    }

    // Rectified and re-checked: back to execution, the progress reminders with it.
    w.clock.set(local("2024-11-20", "10:00"));
    let recheck = w
        .fire(
            &w.applicant,
            rectified.id,
            "submit_midterm_rectification",
            json!({ "midterm_rectification_report": file("整改报告.pdf"),
                    "progress": [{ "task": 2, "status": "in_progress", "percent": 30 }] }),
        )
        .await;
    assert_eq!(recheck.state, "midterm_recheck");
    let back = w
        .fire(&w.manager, rectified.id, "continue_execution", json!({}))
        .await;
    assert_eq!(back.state, "execution");
    assert_eq!(back.data["next_report_due"], "2024-12-31");
    assert_eq!(back.data["progress"][0]["task"], 2);
    let keys = w.pending_keys(rectified.id).await;
    for key in [
        "progress_report:reminder:7d",
        "progress_report:due",
        "reminder:30d",
    ] {
        assert!(keys.contains(&key.to_string()), "{key} in {keys:?}");
    }
    // Terminated at the re-check by the manager.
    w.fire(
        &w.applicant,
        dropped.id,
        "submit_midterm_rectification",
        json!({ "midterm_rectification_report": file("整改报告.pdf") }),
    )
    .await;
    let ended = w.fire(&w.manager, dropped.id, "terminate", json!({})).await;
    assert_eq!((ended.state.as_str(), ended.is_final), ("terminated", true));

    // Left to lapse: reminded, then terminated by the scheduler at the deadline.
    for (day, time) in [
        ("2024-11-25", "09:30"),
        ("2024-11-29", "09:30"),
        ("2024-12-02", "09:30"),
        ("2024-12-03", "00:30"),
    ] {
        w.run_at(local(day, time)).await;
    }
    let lapsed = w.services.store.get_instance(lapsing.id).await.unwrap();
    assert_eq!(
        (lapsed.state.as_str(), lapsed.is_final),
        ("terminated", true)
    );
    let last = w
        .services
        .store
        .history(lapsing.id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor_id.as_str()),
        ("midterm_rectification_lapsed", "scheduler")
    );
    let unit = "shunde@example.gov.cn".to_string();
    let mail = w.deadline_mail();
    for expected in [
        (
            unit.clone(),
            format!("【截止提醒】{TITLE}：中期整改还有 7 天截止"),
        ),
        (unit.clone(), format!("【今日截止】{TITLE}：中期整改")),
        (unit, format!("【超时处理】{TITLE}：中期整改")),
        (
            "manager@example.gov.cn".to_string(),
            format!("【超时处理】{TITLE}：中期整改"),
        ),
    ] {
        assert!(mail.contains(&expected), "{expected:?} in {mail:#?}");
    }
    // The rectified project is still in execution.
    let still = w.services.store.get_instance(rectified.id).await.unwrap();
    assert_eq!(still.state, "execution");
}

/// A project its city bureau approved (下放地市审批) gets the same task book rows, the same
/// quarterly schedule and the same reminders through the scheduler as one the province
/// approved.
async fn a_city_approved_project_reports_on_the_same_schedule(backend: Backend) {
    let w = world(backend).await;
    let by_city = w.city_approved().await;
    let by_city = w.sign_quarterly(by_city).await;
    let by_province = w.in_execution().await;
    for key in ["tasks", "report_schedule", "next_report_due"] {
        assert_eq!(by_city.data[key], by_province.data[key], "{key}");
    }
    assert_eq!(by_city.data["next_report_due"], "2024-09-30");
    assert_eq!(by_city.data["tasks"][1]["no"], 2);
    assert_eq!(by_city.data["approved_by_city"], true);
    let checkpoint = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter()
            .filter(|k| k.starts_with("progress_report:"))
            .collect()
    };
    let keys = checkpoint(w.pending_keys(by_city.id).await);
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!(keys, checkpoint(w.pending_keys(by_province.id).await));
    // Both units are reminded a week before and on the day.
    for day in ["2024-09-23", "2024-09-30"] {
        w.run_at(local(day, "09:30")).await;
    }
    let unit = "shunde@example.gov.cn".to_string();
    let week = (
        unit.clone(),
        format!("【截止提醒】{TITLE}：进展报告还有 7 天截止"),
    );
    let due = (unit, format!("【今日截止】{TITLE}：进展报告"));
    assert_eq!(
        w.deadline_mail(),
        vec![week.clone(), week, due.clone(), due]
    );
    // The city-approved unit reports like any other; the next report moves to 12-31.
    w.clock.set(local("2024-09-30", "11:00"));
    let reported = w
        .fire(
            &w.applicant,
            by_city.id,
            "submit_progress_report",
            json!({ "progress": [
                { "task": 1, "status": "in_progress", "percent": 50 },
                { "task": 2, "status": "not_started", "percent": 0 }
            ] }),
        )
        .await;
    assert_eq!(reported.data["next_report_due"], "2024-12-31");
}

grantflow_testkit::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_task_book_is_checked_row_by_row,
    a_quarterly_report_is_reminded_then_escalated,
    midterm_rectification_continues_or_terminates,
    a_city_approved_project_reports_on_the_same_schedule,
);
