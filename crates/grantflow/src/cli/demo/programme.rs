//! The programme part of `grantflow demo`: the 2022 call with its whole
//! catalogue (`workflows/calls/2022.toml`), demands from several cities — Guangzhou's
//! imported from the filled-in 需求征集表, one duplicate merged — and the budget, spending
//! and evaluation of the funded projects, which are graded through the real evaluation.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use grantflow_domain::Money;
use grantflow_programme::catalogue::Catalogue;
use grantflow_service::programme::DemandImport;
use grantflow_service::programme::OpenCall;
use grantflow_store::programme::Call;
use serde_json::json;
use uuid::Uuid;

use super::Demo;

/// The 需求征集表 a Guangzhou unit returns: merged category cells, blank and placeholder
/// rows, budgets in 万元 (the programme crate's committed fixture).
const GUANGZHOU_FORM: &[u8] =
    include_bytes!("../../../../programme/tests/fixtures/demand_form_guangzhou.xlsx");

/// Open the 2022 call from `workflows/calls/2022.toml` (the whole catalogue), taking
/// demands until `closing`.
pub(super) async fn open_call(
    demo: &Demo,
    workflows_dir: &Path,
    closing: NaiveDate,
) -> anyhow::Result<Call> {
    let path = workflows_dir.join("calls").join("2022.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the 2022 catalogue {}", path.display()))?;
    let catalogue =
        Catalogue::from_toml_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let call = demo
        .services
        .open_call(
            demo.user("manager"),
            OpenCall {
                year: None,
                title: None,
                issuer: None,
                closing_date: Some(closing),
                correction_window_days: None,
                catalogue,
            },
        )
        .await
        .context("opening the 2022 call")?;
    Ok(call)
}

/// Guangzhou's imported demands, submitted and forwarded; a Shenzhen demand merged into
/// one of them as a duplicate; the kept one taken into the catalogue. Returns how many
/// demands were created.
pub(super) async fn demands(demo: &Demo, call: &Call) -> anyhow::Result<usize> {
    let s = &demo.services;
    let imported = s
        .import_demands(
            demo.user("unit_gz"),
            call.id,
            None,
            GUANGZHOU_FORM,
            "广州市需求征集表.xlsx",
            DemandImport::default(),
        )
        .await
        .context("importing Guangzhou's 需求征集表")?;
    let ids: Vec<Uuid> = imported.created.iter().map(|i| i.id).collect();
    let mut submitted = Vec::new();
    for (id, result) in s.submit_demands(demo.user("unit_gz"), &ids).await? {
        // Every row goes: the comments-only row as feedback on its catalogue item.
        submitted.push(
            result
                .map(|_| id)
                .context("submitting a Guangzhou demand")?,
        );
    }
    for id in &submitted {
        let mut v = s.store.get_instance(*id).await?.version;
        demo.fire(
            *id,
            &mut v,
            "city_gz",
            "forward",
            json!({ "city_notes": "已统筹，同意报送" }),
            None,
        )
        .await?;
    }

    // Shenzhen proposes nearly the same thing as Nansha; the province merges it.
    let (dup, mut v) = demo
        .create(
            "unit_sz",
            "demand-collection",
            "前海自贸区知识产权纠纷快速处理机制建设",
            call.id,
            None,
        )
        .await?;
    demo.fire(
        dup,
        &mut v,
        "unit_sz",
        "submit",
        json!({
            "category": "一、知识产权“放管服”改革和区域布局",
            "policy_area": "知识产权综合改革试验和自贸试验区知识产权工作",
            "project_name": "前海自贸区知识产权纠纷快速处理机制建设",
            "direction": "建立自贸区知识产权纠纷快速处理机制，设立调解工作站",
            "applicant_name": "深圳市前海管理局",
            "budget": "350000",
            "performance": "设立调解工作站2个，调解纠纷60件"
        }),
        None,
    )
    .await?;
    demo.fire(
        dup,
        &mut v,
        "city_sz",
        "forward",
        json!({ "city_notes": "已统筹" }),
        None,
    )
    .await?;
    let nansha = imported
        .created
        .iter()
        .find(|i| i.title.contains("南沙自贸区"))
        .context("the Nansha row of the Guangzhou form")?;
    s.merge_demands(demo.user("manager"), nansha.id, dup, None)
        .await
        .context("merging the duplicate")?;
    let mut v = s.store.get_instance(nansha.id).await?.version;
    demo.fire(
        nansha.id,
        &mut v,
        "manager",
        "merge_into_catalogue",
        json!({ "catalogue_item": "2022-1-2-2" }),
        None,
    )
    .await?;
    Ok(imported.created.len() + 1)
}

/// How a demo project ends: what it spent of its 300 000 yuan line and what it achieved
/// (training sessions of 10, firms served of 200), chosen so that the evaluation gives
/// the grade: 优 97.5, 良 89, 中 69, 差 46.
pub(super) fn outcome(grade: &str) -> (i64, i64, i64) {
    match grade {
        "优" => (285_000, 11, 190),
        "良" => (270_000, 10, 150),
        "中" => (240_000, 7, 130),
        _ => (150_000, 5, 80),
    }
}

/// The project's budget line, before approval (先有项目后有预算).
pub(super) async fn budget_line(demo: &Demo, project: Uuid) -> anyhow::Result<Uuid> {
    budget_line_of(demo, project, 300_000).await
}

/// A budget line of `yuan` (at most what the project asked for or was granted).
pub(super) async fn budget_line_of(demo: &Demo, project: Uuid, yuan: i64) -> anyhow::Result<Uuid> {
    let year = super::today(demo).year();
    let line = demo
        .services
        .add_budget_line(
            demo.user("manager"),
            project,
            year,
            "项目经费",
            Money::from_yuan(yuan).context("amount")?,
            "省级财政专项资金",
        )
        .await
        .context("adding the budget line")?;
    Ok(line.id)
}

/// The first batch paid once the task book is signed (拨付): the 300 000 yuan of the line,
/// leaving the rest of the approved funding for a later batch.
pub(super) async fn disburse(
    demo: &Demo,
    project: Uuid,
    batch: &str,
    yuan: i64,
) -> anyhow::Result<()> {
    demo.services
        .record_disbursement(
            demo.user("manager"),
            project,
            batch,
            super::today(demo),
            Money::from_yuan(yuan).context("amount")?,
            &format!("粤财拨-{}", &project.simple().to_string()[..8]),
        )
        .await
        .context("recording the disbursement")?;
    Ok(())
}

/// Spending in execution, charged to the line (先有预算再有执行).
pub(super) async fn spend(
    demo: &Demo,
    unit: &str,
    project: Uuid,
    line: Uuid,
    amount: i64,
) -> anyhow::Result<()> {
    let today = super::today(demo);
    for (share, what) in [(2, "培训场地及讲师费"), (1, "企业走访及宣传材料")] {
        demo.services
            .record_spending(
                demo.user(unit),
                project,
                Some(line),
                Money::from_yuan(amount * share / 3).context("amount")?,
                today,
                what,
            )
            .await
            .context("recording spending")?;
    }
    Ok(())
}

/// The manager's evaluation through the real path: scored from the approved targets, the
/// acceptance actuals and the budget execution, stored, and `grade` fired.
pub(super) async fn evaluate(demo: &Demo, project: Uuid) -> anyhow::Result<String> {
    let (record, _) = demo
        .services
        .evaluate_project(demo.user("manager"), project, &[], &BTreeMap::new())
        .await
        .context("evaluating the project")?;
    Ok(format!("{} {}", record.total, record.grade))
}
