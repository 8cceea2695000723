//! `grantflow demo`: demo data in the configured database — the province, cities and
//! units, one user per role (credentials printed), the 2022 call with its whole catalogue,
//! demands from several cities (one form imported, one duplicate merged), and funded
//! projects spread over every stage of the lifecycle, with budgets and spending, evaluated
//! to every grade.

mod parts;
mod programme;
mod reports;
mod review;

use std::sync::Arc;

use anyhow::Context;
use grantflow_service::{CreateInstance, FireEvent, Services, SystemClock};
use grantflow_store::{Lang, NewOrganisation, NewUser, OrgKind, Organisation, Role, User};
use serde_json::{Value, json};

use crate::config::Config;

/// The password of every demo account (printed; change it before any real use).
pub const DEMO_PASSWORD: &str = "Grantflow-demo-2024";

struct Demo {
    services: Services,
    users: Vec<User>,
}

impl Demo {
    fn user(&self, name: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.username == name)
            .expect("demo user exists")
    }

    /// Create a demand (`item` None) or an application for `item` of the call.
    async fn create(
        &self,
        who: &str,
        workflow: &str,
        title: &str,
        call: uuid::Uuid,
        item: Option<&str>,
    ) -> anyhow::Result<(uuid::Uuid, i64)> {
        let i = self
            .services
            .create_instance(
                self.user(who),
                CreateInstance {
                    workflow_id: workflow.into(),
                    org_id: None,
                    parent_id: None,
                    title: title.into(),
                    data: json!({}),
                    call_id: Some(call),
                    catalogue_item: item.map(str::to_string),
                },
            )
            .await
            .with_context(|| format!("creating `{title}`"))?;
        Ok((i.id, i.version))
    }

    async fn fire(
        &self,
        id: uuid::Uuid,
        version: &mut i64,
        who: &str,
        event: &str,
        input: Value,
        reason: Option<&str>,
    ) -> anyhow::Result<()> {
        let applied = self
            .services
            .fire(
                self.user(who),
                FireEvent {
                    instance_id: id,
                    event: event.into(),
                    expected_version: *version,
                    idempotency_key: None,
                    input,
                    reason: reason.map(str::to_string),
                },
            )
            .await
            .with_context(|| format!("firing `{event}` as {who}"))?;
        *version = applied.instance.version;
        Ok(())
    }
}

/// Today in China Standard Time, by the services' clock.
fn today(demo: &Demo) -> chrono::NaiveDate {
    grantflow_domain::calendar::local_date(demo.services.now())
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "0".repeat(64), "size": 4096 })
}

/// The task rows of a demo task book in the province's shape (工作重点 / 具体任务 / 成果形式 /
/// 责任部门 / 时限), linked to the project's targets by name, due before `execution_end`.
fn demo_tasks(execution_end: &str) -> Value {
    let end: chrono::NaiveDate = execution_end.parse().unwrap_or_default();
    let due = |days_before: i64| (end - chrono::Duration::days(days_before)).to_string();
    json!([
        {
            "focus": "实施严格的知识产权保护", "task": "举办企业知识产权保护培训",
            "deliverable_form": "培训通知、签到表及总结", "department": "项目组培训部",
            "due": due(120), "indicators": ["举办培训场次"]
        },
        {
            "focus": "加快建设知识产权运营服务体系", "task": "为重点产业企业提供知识产权咨询服务",
            "deliverable_form": "服务台账及企业反馈", "department": "项目组服务部",
            "due": due(10), "indicators": ["服务企业数量"]
        }
    ])
}

/// The first quarterly progress report of a demo project: progress on both tasks.
fn demo_progress() -> Value {
    json!({ "progress": [
        { "task": 1, "status": "in_progress", "percent": 40, "description": "已举办培训 4 场",
          "deliverables": [file("培训签到表.pdf")] },
        { "task": 2, "status": "not_started", "percent": 0, "description": "服务企业名单已确定" }
    ] })
}

/// The lifecycle of a funded project as (actor, event, input) steps; a demo project is
/// driven through the first `n`.
fn project_steps(
    unit: &str,
    city: &str,
    budget: &str,
    execution_end: &str,
    actuals: (i64, i64),
) -> Vec<(String, &'static str, Value, Option<&'static str>)> {
    let s = |who: &str, event: &'static str, input: Value| (who.to_string(), event, input, None);
    vec![
        s(
            unit,
            "submit",
            json!({
                "project_name": "知识产权项目",
                "budget": budget,
                "indicators": [
                    { "category": "output_quantity", "name": "举办培训场次", "unit": "场", "target": 10, "direction": "higher_is_better", "weight": 0.5 },
                    { "category": "effect_social", "name": "服务企业数量", "unit": "家", "target": 200, "direction": "higher_is_better", "weight": 0.5 }
                ],
                "application_files": [file("申报书.pdf")]
            }),
        ),
        s(city, "recommend", json!({ "city_opinion": "同意推荐" })),
        s("manager", "pass_formal_check", json!({})),
        ("review".to_string(), "conclude_review", json!({}), None),
        s(
            "manager",
            "approve",
            json!({ "approved_budget": budget, "targets_approved": true, "budget_line_id": "GD-2024-IP" }),
        ),
        s("manager", "publicity_ended", json!({})),
        s(
            unit,
            "submit_task_book",
            json!({
                "task_book": file("任务书.pdf"), "milestones": "年中中期检查，年底验收", "execution_end": execution_end,
                "tasks": demo_tasks(execution_end), "report_schedule": "quarterly"
            }),
        ),
        s("manager", "sign_task_book", json!({})),
        s(
            unit,
            "submit_final_report",
            json!({
                "acceptance_report": file("验收报告.pdf"),
                "financial_statement": file("财务决算表.xlsx"),
                "indicator_actuals": [
                    { "category": "output_quantity", "name": "举办培训场次", "unit": "场", "target": 10, "actual": actuals.0, "direction": "higher_is_better", "weight": 0.5 },
                    { "category": "effect_social", "name": "服务企业数量", "unit": "家", "target": 200, "actual": actuals.1, "direction": "higher_is_better", "weight": 0.5 }
                ]
            }),
        ),
        s(
            "manager",
            "conclude_acceptance",
            json!({ "acceptance_outcome": "pass" }),
        ),
        s(
            unit,
            "submit_self_evaluation",
            json!({ "self_evaluation_report": file("自评报告.pdf"), "self_evaluation_score": 90 }),
        ),
        // Scored by the evaluation itself (see `programme::evaluate`).
        s("manager", "grade", json!({})),
        s("manager", "archive", json!({})),
    ]
}

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let services = crate::cli::serve::services(config, Arc::new(SystemClock)).await?;
    let store = services.store.clone();
    if store.find_user_by_username("manager").await?.is_some() {
        println!(
            "Demo data is already loaded in this database; the demo accounts use the password {DEMO_PASSWORD}."
        );
        return Ok(());
    }
    let hash = grantflow_api::auth::hash_password(DEMO_PASSWORD);
    let org = |name: &str, kind, parent: Option<&Organisation>| NewOrganisation {
        name: name.into(),
        kind,
        parent_id: parent.map(|p| p.id),
    };
    let province = store
        .create_org(org(
            "广东省市场监督管理局（知识产权局）",
            OrgKind::Province,
            None,
        ))
        .await?;
    let mut cities = Vec::new();
    for name in [
        "广州市市场监督管理局",
        "深圳市市场监督管理局",
        "佛山市市场监督管理局",
        "东莞市市场监督管理局",
    ] {
        cities.push(
            store
                .create_org(org(name, OrgKind::City, Some(&province)))
                .await?,
        );
    }
    let units = [
        ("广州知识产权保护中心", 0),
        ("广州市越秀区知识产权服务中心", 0),
        ("深圳市知识产权运营服务有限公司", 1),
        ("深圳先进技术研究院", 1),
        ("佛山市顺德区家电产业知识产权联盟", 2),
        ("东莞市松山湖知识产权服务中心", 3),
    ];
    let mut unit_orgs = Vec::new();
    for (name, city) in units {
        unit_orgs.push(
            store
                .create_org(org(name, OrgKind::Unit, Some(&cities[city])))
                .await?,
        );
    }
    let university = store
        .create_org(org("华南理工大学", OrgKind::Unit, Some(&cities[0])))
        .await?;
    // Organisations that apply straight to the province.
    let mut provincial = Vec::new();
    for (name, kind) in [
        ("广东省知识产权保护协会", OrgKind::Provincial),
        ("广东省知识产权保护中心", OrgKind::ProtectionCentre),
        (
            "广东省知识产权研究会（第三方评价机构）",
            OrgKind::ThirdParty,
        ),
    ] {
        provincial.push(store.create_org(org(name, kind, Some(&province))).await?);
    }

    // City bureaus review their units' applications and apply for themselves (straight to
    // the province: a bureau never recommends or approves its own application).
    let city_roles = vec![Role::City, Role::Applicant];
    let accounts: Vec<(&str, &str, Vec<Role>, &Organisation)> = vec![
        ("admin", "系统管理员", vec![Role::Admin], &province),
        (
            "manager",
            "知识产权促进处 牛处长",
            vec![Role::Manager],
            &province,
        ),
        ("auditor", "纪检监察 审计员", vec![Role::Auditor], &province),
        ("city_gz", "广州市局 项目科", city_roles.clone(), &cities[0]),
        ("city_sz", "深圳市局 项目科", city_roles.clone(), &cities[1]),
        ("city_fs", "佛山市局 项目科", city_roles.clone(), &cities[2]),
        ("city_dg", "东莞市局 项目科", city_roles.clone(), &cities[3]),
        (
            "unit_gz",
            "广州知识产权保护中心 申报员",
            vec![Role::Applicant],
            &unit_orgs[0],
        ),
        (
            "unit_gz2",
            "越秀区服务中心 申报员",
            vec![Role::Applicant],
            &unit_orgs[1],
        ),
        (
            "unit_sz",
            "深圳运营公司 申报员",
            vec![Role::Applicant],
            &unit_orgs[2],
        ),
        (
            "unit_sz2",
            "深圳先进院 申报员",
            vec![Role::Applicant],
            &unit_orgs[3],
        ),
        (
            "unit_fs",
            "顺德家电联盟 申报员",
            vec![Role::Applicant],
            &unit_orgs[4],
        ),
        (
            "unit_dg",
            "松山湖服务中心 申报员",
            vec![Role::Applicant],
            &unit_orgs[5],
        ),
        ("expert1", "王教授", vec![Role::Expert], &university),
        ("expert2", "李研究员", vec![Role::Expert], &university),
        ("expert3", "陈律师", vec![Role::Expert], &unit_orgs[3]),
        (
            "prov_assoc",
            "省知识产权保护协会 申报员",
            vec![Role::Applicant],
            &provincial[0],
        ),
        (
            "ppc",
            "省知识产权保护中心 申报员",
            vec![Role::Applicant],
            &provincial[1],
        ),
        (
            "third_party",
            "省知识产权研究会 申报员",
            vec![Role::Applicant],
            &provincial[2],
        ),
        (
            "tp_eval",
            "省知识产权研究会 评价员",
            vec![Role::ThirdPartyEvaluator],
            &provincial[2],
        ),
    ];
    let mut users = Vec::new();
    for (username, name, roles, org) in &accounts {
        users.push(
            store
                .create_user(NewUser {
                    username: username.to_string(),
                    display_name: name.to_string(),
                    email: format!("{username}@demo.grantflow.local"),
                    org_id: Some(org.id),
                    roles: roles.clone(),
                    password_hash: hash.clone(),
                    lang: Lang::ZhCn,
                })
                .await?,
        );
    }
    let demo = Demo { services, users };
    // The expert pool: expert1..3 and two more, so panels of three avoid conflicts.
    let extra_experts = review::pool(&demo, &cities[0], &hash).await?;
    let today = today(&demo);
    let closing_day = today + chrono::Duration::days(30);
    // The 2022 call with its whole catalogue; demands and projects belong to it.
    let call = programme::open_call(&demo, &config.workflows_dir, closing_day).await?;
    let execution_end = (today + chrono::Duration::days(240)).to_string();

    // Demands (需求征集) from several cities, in various states.
    let demands = [
        (
            "unit_gz",
            "city_gz",
            "三、强化知识产权保护",
            "知识产权纠纷调解",
            "知识产权纠纷调解",
            "300000",
            2,
        ),
        (
            "unit_sz",
            "city_sz",
            "四、知识产权运用",
            "知识产权金融创新和运营实施项目",
            "知识产权证券化推广项目",
            "800000",
            3,
        ),
        (
            "unit_fs",
            "city_fs",
            "二、知识产权高质量创造和创新主体能力提升",
            "知识产权高质量提升",
            "家电产业高价值专利培育布局中心建设",
            "500000",
            1,
        ),
        (
            "unit_dg",
            "city_dg",
            "五、知识产权公共服务和代理行业监管",
            "知识产权公共服务体系建设",
            "松山湖知识产权信息公共服务节点建设",
            "200000",
            0,
        ),
        (
            "unit_gz2",
            "city_gz",
            "八、知识产权文化传播",
            "（可加行）",
            "越秀区中小学知识产权教育普及",
            "150000",
            2,
        ),
    ];
    for (unit, city, category, policy, name, budget, depth) in demands {
        let (id, mut v) = demo
            .create(unit, "demand-collection", name, call.id, None)
            .await?;
        if depth >= 1 {
            demo.fire(
                id,
                &mut v,
                unit,
                "submit",
                json!({
                    "category": category, "policy_area": policy, "project_name": name,
                    "direction": "围绕本地产业需求开展相关工作", "applicant_name": "符合条件的单位",
                    "budget": budget, "performance": "年内完成培训10场，服务企业200家"
                }),
                None,
            )
            .await?;
        }
        if depth >= 2 {
            demo.fire(
                id,
                &mut v,
                city,
                "forward",
                json!({ "city_notes": "已统筹" }),
                None,
            )
            .await?;
        }
        if depth >= 3 {
            demo.fire(
                id,
                &mut v,
                "manager",
                "merge_into_catalogue",
                json!({ "catalogue_item": "2022-4-3-3" }),
                None,
            )
            .await?;
        }
    }

    let imported = programme::demands(&demo, &call).await?;

    // Funded projects spread over every stage.
    let projects = [
        (
            "unit_gz",
            "city_gz",
            "广州知识产权快速协同保护能力提升",
            0usize,
            ("良", 85),
        ),
        (
            "unit_sz",
            "city_sz",
            "深圳海外知识产权纠纷应对指导",
            1,
            ("良", 85),
        ),
        (
            "unit_fs",
            "city_fs",
            "顺德家电企业知识产权贯标推进",
            2,
            ("良", 85),
        ),
        (
            "unit_dg",
            "city_dg",
            "东莞专业市场知识产权保护",
            3,
            ("良", 85),
        ),
        (
            "unit_gz2",
            "city_gz",
            "越秀区商标品牌培育指导站建设",
            5,
            ("良", 85),
        ),
        (
            "unit_sz2",
            "city_sz",
            "深圳新领域新业态知识产权保护试点",
            6,
            ("良", 85),
        ),
        (
            "unit_gz",
            "city_gz",
            "广交会知识产权保护效能提升",
            8,
            ("良", 85),
        ),
        (
            "unit_sz",
            "city_sz",
            "深圳知识产权质押融资对接工程",
            9,
            ("良", 85),
        ),
        (
            "unit_fs",
            "city_fs",
            "佛山地理标志产品运用促进",
            11,
            ("良", 85),
        ),
        (
            "unit_dg",
            "city_dg",
            "东莞知识产权维权援助机构建设",
            13,
            ("优", 93),
        ),
        (
            "unit_fs",
            "city_fs",
            "佛山知识产权快速维权中心服务提升",
            13,
            ("良", 85),
        ),
        (
            "unit_gz2",
            "city_gz",
            "越秀区中小学知识产权教育推广",
            13,
            ("中", 72),
        ),
        (
            "unit_sz2",
            "city_sz",
            "深圳企业知识产权高管培训",
            13,
            ("差", 55),
        ),
    ];
    let mut recusal_shown = false;
    // 保留省级 items a unit in a city may apply for: through its city bureau, reviewed
    // and approved by the province.
    const RETAINED: [&str; 13] = [
        "2022-3-1-6",
        "2022-5-2-1",
        "2022-3-1-11",
        "2022-5-2-2",
        "2022-4-3-2",
        "2022-5-1-2",
        "2022-3-1-18",
        "2022-5-1-3",
        "2022-4-1-1",
        "2022-5-2-3",
        "2022-2-1-5",
        "2022-5-2-4",
        "2022-1-1-1",
    ];
    for (n, (unit, city, title, depth, grade)) in projects.into_iter().enumerate() {
        let (id, mut v) = demo
            .create(unit, "funded-project", title, call.id, Some(RETAINED[n]))
            .await?;
        let (spent, sessions, firms) = programme::outcome(grade.0);
        let mut line = None;
        for (who, event, input, reason) in
            // 420 000 asked and approved, 300 000 of it in the line: room for a later
            // line and batch (the README adds both).
            project_steps(unit, city, "420000", &execution_end, (sessions, firms))
                    .into_iter()
                    .take(depth)
        {
            if who == "review" {
                // A real review round: a seeded panel of three scores on the rubric (the
                // first drawn expert of the first project recuses and is replaced); the
                // guard reads the stored result.
                review::panel(&demo, &extra_experts, id, 3, !recusal_shown).await?;
                recusal_shown = true;
                demo.fire(id, &mut v, "manager", event, input, reason)
                    .await?;
            } else {
                match event {
                    // 先有项目后有预算: the line approval needs.
                    "approve" => line = Some(programme::budget_line(&demo, id).await?),
                    // 先有预算再有执行: spending in execution, against the line.
                    "submit_final_report" => {
                        let line = line.context("a budget line before execution")?;
                        programme::spend(&demo, unit, id, line, spent).await?;
                    }
                    "grade" => {
                        programme::evaluate(&demo, id).await?;
                        v = demo.services.store.get_instance(id).await?.version;
                        continue;
                    }
                    _ => {}
                }
                demo.fire(id, &mut v, &who, event, input, reason).await?;
                if event == "sign_task_book" {
                    // 拨付: the money arrives once the task book is signed.
                    programme::disburse(&demo, id, "第一批", 300_000).await?;
                    // In execution: the unit reports a quarter's progress task by task.
                    demo.fire(
                        id,
                        &mut v,
                        unit,
                        "submit_progress_report",
                        demo_progress(),
                        None,
                    )
                    .await?;
                }
            }
        }
        if depth == 3 {
            // Left in expert review: a panel at work, one expert has scored.
            review::panel(&demo, &extra_experts, id, 1, false).await?;
        }
        if depth == 5 {
            // 公示 in public: an objection of the public waits on the manager (the
            // publicity does not end while it is open).
            demo.services
                .submit_public_objection(grantflow_service::publicity::NewPublicObjection {
                    instance_id: id,
                    name: "陈先生".into(),
                    contact: "chen@example.com".into(),
                    reason: "该指导站与区内已资助的商标品牌服务项目内容重复，请核查。".into(),
                })
                .await?;
        }
        if depth == 11 {
            // 第三方绩效评价: assigned to the third-party institution, whose evaluator
            // has recorded an evaluation beside the unit's self-evaluation.
            demo.services
                .assign_evaluation(demo.user("manager"), id, provincial[2].id)
                .await?;
            demo.services
                .record_third_party_evaluation(
                    demo.user("tp_eval"),
                    id,
                    &[],
                    &std::collections::BTreeMap::new(),
                )
                .await?;
        }
    }
    // Each part of the catalogue and each kind of applicant at work.
    let shown = parts::show(&demo, &extra_experts, call.id).await?;
    // Graded projects in every part that is evaluated and the province's 调解案件数, so that
    // every breakdown of the year's reports has numbers.
    let reported = reports::fill(&demo, call.id).await?;

    println!(
        "Demo data loaded: 1 province, {} cities, {} units and provincial organisations, {} users, the 2022 call ({} catalogue items), {} demands, {} projects (evaluated: 优, 良, 中, 差; every part and kind of applicant).",
        cities.len(),
        unit_orgs.len() + 1 + provincial.len(),
        accounts.len() + extra_experts.len(),
        call.items().count(),
        5 + imported,
        13 + shown + reported,
    );
    println!("Every demo account uses the password: {DEMO_PASSWORD}");
    println!("username   role       organisation");
    for (username, _, roles, org) in &accounts {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        println!("{username:<10} {:<10} {}", roles.join("+"), org.name);
    }
    for (user, org) in &extra_experts {
        println!(
            "{:<10} {:<10} {}",
            user.username,
            Role::Expert.as_str(),
            org.name
        );
    }
    Ok(())
}
