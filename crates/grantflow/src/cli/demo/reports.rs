//! Projects that make the demo year's reports full (issue 13, point 6): graded projects in
//! the 下放地市审批 and 支持专利代办处及省知识产权保护中心 parts and in the categories 三 and 四,
//! with the province's yearly indicator 调解案件数 (件) among their targets and actuals, one
//! actual recorded apart from the final report (the recorded value counts).
//!
//! The figures are chosen so that every report can be checked by hand
//! (`crates/grantflow/tests/it/demo_report.rs` does):
//!
//! | project | part | category | approved | budget line | spent | actuals | score |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | 顺德区知识产权纠纷人民调解工作 (unit_fs) | 下放地市审批 | 三 | 200 000 | 200 000 | 160 000 | 调解案件数 135/120, 服务企业数量 90/100 | 94 优 |
//! | 知识产权海外维权援助服务网点建设 (ppc) | 代办处及保护中心 | 三 | 250 000 | 250 000 | 250 000 | 调解案件数 60/80, 服务企业数量 150/150 | 87.5 良 |
//! | 松山湖商标品牌培育指导站建设 (unit_dg) | 下放地市审批 | 四 | 100 000 | 100 000 | 50 000 | 举办培训场次 6/10 (recorded; 5 in the report), 服务企业数量 70/100 | 63 中 |

use std::collections::BTreeMap;

use anyhow::Context;
use grantflow_domain::Money;
use grantflow_programme::indicator::Checkpoint;
use grantflow_service::programme::ActualInput;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Demo, file, today};

fn indicator(category: &str, name: &str, unit: &str, target: i64) -> Value {
    json!({ "category": category, "name": name, "unit": unit, "target": target, "direction": "higher_is_better", "weight": 1.0 })
}

fn with_actual(mut indicator: Value, actual: i64) -> Value {
    indicator["actual"] = json!(actual);
    indicator
}

struct Plan {
    who: &'static str,
    city: Option<&'static str>,
    title: &'static str,
    item: &'static str,
    amount: i64,
    spent: i64,
    /// (category, name, unit, target, actual in the final report)
    indicators: [(&'static str, &'static str, &'static str, i64, i64); 2],
    /// An acceptance actual recorded apart from the final report: (indicator, value).
    recorded: Option<(&'static str, i64)>,
}

const PLANS: [Plan; 3] = [
    Plan {
        who: "unit_fs",
        city: Some("city_fs"),
        title: "顺德区知识产权纠纷人民调解工作",
        item: "2022-3-1-7",
        amount: 200_000,
        spent: 160_000,
        indicators: [
            ("output_quantity", "调解案件数", "件", 120, 135),
            ("effect_social", "服务企业数量", "家", 100, 90),
        ],
        recorded: None,
    },
    Plan {
        who: "ppc",
        city: None,
        title: "知识产权海外维权援助服务网点建设",
        item: "2022-3-1-24",
        amount: 250_000,
        spent: 250_000,
        indicators: [
            ("output_quantity", "调解案件数", "件", 80, 60),
            ("effect_social", "服务企业数量", "家", 150, 150),
        ],
        recorded: None,
    },
    Plan {
        who: "unit_dg",
        city: Some("city_dg"),
        title: "松山湖商标品牌培育指导站建设",
        item: "2022-4-4-2",
        amount: 100_000,
        spent: 50_000,
        indicators: [
            ("output_quantity", "举办培训场次", "场", 10, 5),
            ("effect_social", "服务企业数量", "家", 100, 70),
        ],
        recorded: Some(("举办培训场次", 6)),
    },
];

/// The demo task rows, linked to this plan's own targets (a task may only name approved
/// targets: `TASK_INDICATOR_UNKNOWN`).
fn tasks_of(plan: &Plan, execution_end: &str) -> Value {
    let mut tasks = super::demo_tasks(execution_end);
    for (task, target) in tasks
        .as_array_mut()
        .into_iter()
        .flatten()
        .zip(&plan.indicators)
    {
        task["indicators"] = json!([target.1]);
    }
    tasks
}

/// The project's budget line, before approval (先有项目后有预算).
async fn add_line(demo: &Demo, id: Uuid, amount: i64) -> anyhow::Result<()> {
    demo.services
        .add_budget_line(
            demo.user("manager"),
            id,
            chrono::Datelike::year(&today(demo)),
            "项目经费",
            Money::from_yuan(amount).context("amount")?,
            "省级财政专项资金",
        )
        .await
        .context("adding the budget line")?;
    Ok(())
}

/// Adds the projects of the table above, each graded; returns how many.
pub(super) async fn fill(demo: &Demo, call: Uuid) -> anyhow::Result<usize> {
    let s = &demo.services;
    let execution_end = (today(demo) + chrono::Duration::days(240)).to_string();
    for plan in &PLANS {
        let amount = plan.amount.to_string();
        let targets: Vec<Value> = plan
            .indicators
            .iter()
            .map(|(c, n, u, t, _)| indicator(c, n, u, *t))
            .collect();
        let (id, mut v) = demo
            .create(
                plan.who,
                "funded-project",
                plan.title,
                call,
                Some(plan.item),
            )
            .await?;
        let application = json!({
            "project_name": plan.title,
            "budget": amount,
            "indicators": targets,
            "application_files": [file("申报书.pdf")]
        });
        match plan.city {
            // 下放地市审批: the city bureau approves, the province signs the task book.
            Some(city) => {
                demo.fire(id, &mut v, plan.who, "submit", application, None)
                    .await?;
                demo.fire(
                    id,
                    &mut v,
                    city,
                    "city_approve",
                    json!({ "approved_budget": amount, "targets_approved": true, "city_approval_opinion": "同意立项（地市审批）" }),
                    None,
                )
                .await?;
                add_line(demo, id, plan.amount).await?;
                v = s.store.get_instance(id).await?.version;
                demo.fire(
                    id,
                    &mut v,
                    plan.who,
                    "submit_task_book",
                    json!({ "task_book": file("任务书.pdf"), "milestones": "年中中期检查，年底验收", "execution_end": execution_end, "tasks": tasks_of(plan, &execution_end), "report_schedule": "quarterly" }),
                    None,
                )
                .await?;
                demo.fire(id, &mut v, "manager", "sign_task_book", json!({}), None)
                    .await?;
            }
            // 支持专利代办处及省知识产权保护中心: allocated directly with the task book.
            None => {
                demo.fire(
                    id,
                    &mut v,
                    plan.who,
                    "submit_to_province",
                    application,
                    None,
                )
                .await?;
                add_line(demo, id, plan.amount).await?;
                v = s.store.get_instance(id).await?.version;
                demo.fire(
                    id,
                    &mut v,
                    "manager",
                    "allocate",
                    json!({
                        "approved_budget": amount, "targets_approved": true,
                        "task_book": file("任务书（省局下达）.pdf"), "milestones": "年中检查，年底验收",
                        "execution_end": execution_end
                    }),
                    None,
                )
                .await?;
            }
        }
        let line_id = s
            .store
            .budget_lines(&[id])
            .await?
            .first()
            .map(|l| l.id)
            .context("the project's budget line")?;
        // Paid in one batch (spending may not exceed what was disbursed).
        super::programme::disburse(demo, id, "第一批", plan.amount).await?;
        // One record of the whole amount, so that the figures stay round.
        s.record_spending(
            demo.user(plan.who),
            id,
            Some(line_id),
            Money::from_yuan(plan.spent).context("amount")?,
            today(demo),
            "调解员补贴、培训及宣传",
        )
        .await
        .context("recording spending")?;
        v = s.store.get_instance(id).await?.version;
        let actuals: Vec<Value> = plan
            .indicators
            .iter()
            .map(|(c, n, u, t, a)| with_actual(indicator(c, n, u, *t), *a))
            .collect();
        demo.fire(
            id,
            &mut v,
            plan.who,
            "submit_final_report",
            json!({
                "acceptance_report": file("验收报告.pdf"),
                "financial_statement": file("财务决算表.xlsx"),
                "indicator_actuals": actuals
            }),
            None,
        )
        .await?;
        if let Some((indicator, value)) = plan.recorded {
            s.record_actuals(
                demo.user("manager"),
                id,
                Checkpoint::Acceptance,
                vec![ActualInput {
                    indicator_id: indicator.into(),
                    value: json!(value),
                    explanation: Some("验收核定值".into()),
                }],
            )
            .await
            .context("recording an acceptance actual")?;
            v = s.store.get_instance(id).await?.version;
        }
        demo.fire(
            id,
            &mut v,
            "manager",
            "conclude_acceptance",
            json!({ "acceptance_outcome": "pass" }),
            None,
        )
        .await?;
        demo.fire(
            id,
            &mut v,
            plan.who,
            "submit_self_evaluation",
            json!({ "self_evaluation_report": file("自评报告.pdf"), "self_evaluation_score": 90 }),
            None,
        )
        .await?;
        s.evaluate_project(demo.user("manager"), id, &[], &BTreeMap::new())
            .await
            .with_context(|| format!("evaluating `{}`", plan.title))?;
    }
    Ok(PLANS.len())
}
