//! Each part of the catalogue and each kind of applicant at work (issue 12): a unit's
//! 下放地市审批 application approved by its city bureau and audited by the province; a city
//! bureau's own application
//! and a provincial association's 保留省级 application straight to the province; a 后补助
//! application paid after its review; the protection centre's direct allocation; a
//! third-party institution's application in the formal check.

use anyhow::Context;
use grantflow_store::{Organisation, User};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Demo, file, programme, review};

fn application(title: &str, budget: &str, post_subsidy: bool) -> Value {
    let mut input = json!({
        "project_name": title,
        "budget": budget,
        "indicators": [
            { "category": "output_quantity", "name": "举办培训场次", "unit": "场", "target": 10, "direction": "higher_is_better", "weight": 0.5 },
            { "category": "effect_social", "name": "服务企业数量", "unit": "家", "target": 200, "direction": "higher_is_better", "weight": 0.5 }
        ],
        "application_files": [file("申报书.pdf")]
    });
    if post_subsidy {
        input["results_evidence"] = json!([file("成果证明材料.pdf")]);
    }
    input
}

/// The demo applications of issue 12; returns how many.
pub(super) async fn show(
    demo: &Demo,
    experts: &[(User, Organisation)],
    call: Uuid,
) -> anyhow::Result<usize> {
    let project = "funded-project";
    // 下放地市审批, a unit in Guangzhou: approved by 广州市局, on to the task book.
    let title = "越秀区知识产权纠纷人民调解委员会建设";
    let (id, mut v) = demo
        .create("unit_gz2", project, title, call, Some("2022-3-1-1"))
        .await?;
    demo.fire(
        id,
        &mut v,
        "unit_gz2",
        "submit",
        application(title, "200000", false),
        None,
    )
    .await?;
    demo.fire(
        id,
        &mut v,
        "city_gz",
        "city_approve",
        json!({ "approved_budget": "180000", "targets_approved": true, "city_approval_opinion": "同意立项（地市审批）" }),
        None,
    )
    .await?;
    // The province audits the city's approval (抽查审核), recorded in the history.
    demo.fire(
        id,
        &mut v,
        "manager",
        "province_audit",
        json!({ "audit_finding": "conforms", "audit_opinion": "抽查立项材料齐全，审批符合规定" }),
        None,
    )
    .await?;

    // 下放地市审批, 深圳市局 for itself: straight to the province, in its formal check.
    let title = "深圳市知识产权助力科创企业上市培育";
    let (id, mut v) = demo
        .create("city_sz", project, title, call, Some("2022-2-1-4"))
        .await?;
    demo.fire(
        id,
        &mut v,
        "city_sz",
        "submit_to_province",
        application(title, "500000", false),
        None,
    )
    .await?;

    // 保留省级, the provincial association: straight to the province, in expert review.
    let title = "知识产权保护规范化市场培育（省协会）";
    let (id, mut v) = demo
        .create("prov_assoc", project, title, call, Some("2022-3-1-9"))
        .await?;
    demo.fire(
        id,
        &mut v,
        "prov_assoc",
        "submit_to_province",
        application(title, "400000", false),
        None,
    )
    .await?;
    demo.fire(id, &mut v, "manager", "pass_formal_check", json!({}), None)
        .await?;

    // 后补助, a Shenzhen institute after the work is done: reviewed, approved and paid.
    let title = "WIPO知识产权暑期班（后补助）";
    let (id, mut v) = demo
        .create("unit_sz2", project, title, call, Some("2022-5-3-6"))
        .await?;
    demo.fire(
        id,
        &mut v,
        "unit_sz2",
        "submit",
        application(title, "150000", true),
        None,
    )
    .await?;
    demo.fire(
        id,
        &mut v,
        "city_sz",
        "recommend",
        json!({ "city_opinion": "成果属实，同意推荐" }),
        None,
    )
    .await?;
    demo.fire(id, &mut v, "manager", "pass_formal_check", json!({}), None)
        .await?;
    review::panel(demo, experts, id, 3, false).await?;
    v = demo.services.store.get_instance(id).await?.version;
    demo.fire(id, &mut v, "manager", "conclude_review", json!({}), None)
        .await?;
    programme::budget_line_of(demo, id, 150_000).await?;
    v = demo.services.store.get_instance(id).await?.version;
    demo.fire(
        id,
        &mut v,
        "manager",
        "approve",
        json!({ "approved_budget": "150000", "targets_approved": true }),
        None,
    )
    .await?;
    demo.fire(id, &mut v, "manager", "publicity_ended", json!({}), None)
        .await?;
    // 后补助 is paid in its payment stage, after the results were accepted.
    programme::disburse(demo, id, "后补助", 150_000).await?;
    let paid_on = super::today(demo).to_string();
    demo.fire(
        id,
        &mut v,
        "manager",
        "pay",
        json!({ "paid_on": paid_on }),
        None,
    )
    .await
    .context("paying the post-hoc subsidy")?;

    // 支持专利代办处及省知识产权保护中心: allocated directly, the province issues the
    // task book; in execution.
    let title = "中国（广东）知识产权交易博览会组织实施";
    let (id, mut v) = demo
        .create("ppc", project, title, call, Some("2022-4-3-4"))
        .await?;
    demo.fire(
        id,
        &mut v,
        "ppc",
        "submit_to_province",
        application(title, "600000", false),
        None,
    )
    .await?;
    programme::budget_line(demo, id).await?;
    v = demo.services.store.get_instance(id).await?.version;
    let execution_end = (super::today(demo) + chrono::Duration::days(240)).to_string();
    demo.fire(
        id,
        &mut v,
        "manager",
        "allocate",
        json!({
            "approved_budget": "300000", "targets_approved": true,
            "task_book": file("任务书（省局下达）.pdf"), "milestones": "年中检查，年底验收",
            "execution_end": execution_end
        }),
        None,
    )
    .await?;

    // A third-party institution (符合申报条件的机构): straight to the province.
    let title = "知识产权项目跟踪管理与绩效评价服务";
    let (id, mut v) = demo
        .create("third_party", project, title, call, Some("2022-5-1-2"))
        .await?;
    demo.fire(
        id,
        &mut v,
        "third_party",
        "submit_to_province",
        application(title, "250000", false),
        None,
    )
    .await?;
    Ok(6)
}
