//! The fixtures of the authorisation matrix: one application per backend, the expert pool
//! and an open call made once, and per row the records its operation acts on (built in the
//! store or through the service, which is quick), rebuilt only after a cell changed them.
//!
//! The record a row targets always belongs to unit A (广州知识产权服务中心, in 广州), so
//! `city_gz`/`applicant_a` are the own city/unit and `city_sz`/`applicant_b` the other
//! ones. expert1 reviews the target in the blind application round (where one exists),
//! expert3 holds an open (not blind) view grant on it, expert2 is in the pool and assigned
//! to nothing.

use std::fmt::Write as _;

use grantflow_service::FireEvent;
use grantflow_store::{Instance, NewInstance, Store};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

pub const UNIT: &str = "广州知识产权服务中心";
pub const CONTACT: &str = "欧阳明远";
pub const CATALOGUE_2022: &str = include_str!("../../../../../workflows/calls/2022.toml");
pub const DEMAND_FORM: &[u8] =
    include_bytes!("../../../../programme/tests/fixtures/demand_form_guangzhou.xlsx");

pub struct World {
    pub app: TestApp,
    pub manager: String,
    /// The open call every programme row uses (reopened when a cell closed it).
    pub call: Uuid,
}

pub fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "a".repeat(64), "size": 2048 })
}

pub fn indicators() -> Value {
    json!([
        { "id": "cases", "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 },
        { "id": "firms", "category": "effect_social", "name": "服务企业数", "unit": "家", "target": 100, "direction": "higher_is_better", "weight": 1 }
    ])
}

impl World {
    pub async fn new(app: TestApp) -> Self {
        let manager = app.session_token("manager").await;
        for expert in ["expert1", "expert2", "expert3"] {
            app.ok(
                Some(&manager),
                r#"mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [3], keywords: ["专利"], workloadCap: 50 }) { userId } }"#,
                json!({ "id": app.user(expert).id }),
            )
            .await;
        }
        let mut w = Self {
            app,
            manager,
            call: Uuid::nil(),
        };
        w.call = w.open_call().await;
        w
    }

    pub async fn open_call(&self) -> Uuid {
        let data = self
            .app
            .ok(
                Some(&self.manager),
                r#"mutation($input: OpenCallInput!) { openCall(input: $input) { id } }"#,
                json!({ "input": { "catalogueToml": CATALOGUE_2022, "closingDate": "2024-06-28" } }),
            )
            .await;
        data["openCall"]["id"].as_str().unwrap().parse().unwrap()
    }

    /// A live manager session (a cell may have ended the last one) and an open call (a
    /// cell may have closed the last one).
    pub async fn refresh(&mut self) {
        self.manager = self.app.session_token("manager").await;
        let call = self.app.services.store.get_call(self.call).await.unwrap();
        if format!("{:?}", call.status).to_lowercase() != "open" {
            self.call = self.open_call().await;
        }
    }

    /// An instance of unit A written straight into `state` with `data` (no history, no
    /// timers: only what the row's operation reads), with expert3's open view grant.
    pub async fn put(
        &self,
        workflow: &str,
        state: &str,
        data: Value,
        parent: Option<Uuid>,
    ) -> Instance {
        let app = &self.app;
        let wf = app.services.workflows.latest(workflow).expect("workflow");
        let stage = wf
            .def
            .states
            .iter()
            .find(|s| s.id == state)
            .unwrap_or_else(|| panic!("{workflow} has no state {state}"))
            .stage
            .clone();
        let inst = app
            .services
            .store
            .create_instance(NewInstance {
                id: Uuid::now_v7(),
                workflow_id: workflow.into(),
                workflow_version: wf.def.version,
                state: state.into(),
                stage,
                data,
                parent_id: parent,
                org_id: app.seed.unit_a.id,
                title: format!("{UNIT}{workflow}"),
                created_by: app.user("applicant_a").id,
                created_at: app.services.now(),
                due_at: None,
                timers: vec![],
            })
            .await
            .unwrap();
        app.services
            .store
            .assign_expert(inst.id, app.user("expert3").id)
            .await
            .unwrap();
        inst
    }

    pub fn project_data(&self) -> Value {
        json!({
            "call_id": self.call.to_string(),
            "closing_date": "2024-06-28",
            "category": "3",
            "catalogue_item": "2022-2-1-5",
            // As the service fills them for a unit in a city applying to a 保留省级 item.
            "applicant_kind": "unit",
            "part": "retained_provincial",
            "forward_by": "2024-06-28",
            "applicant_name": UNIT,
            "contact_name": CONTACT,
            "project_name": format!("{UNIT}专利导航能力提升"),
            "summary": format!("本项目由{UNIT}牵头，{CONTACT}担任项目负责人。"),
            "budget": "300000.00",
            "indicators": indicators(),
            "application_files": [file("申报书.pdf")],
        })
    }

    /// A drafting funded project created through the service (with its timers).
    pub async fn drafting_project(&self) -> Instance {
        let i = self
            .app
            .create_instance("applicant_a", "funded-project", None, None, "广州新项目")
            .await;
        self.app
            .services
            .store
            .assign_expert(i.id, self.app.user("expert3").id)
            .await
            .unwrap();
        i
    }

    /// A project of unit A in the blind application round; expert1 is on the panel
    /// (assignment returned) and has declared no conflict when `accept`, and scored when
    /// `submit`.
    pub async fn project_in_review(&self, accept: bool, submit: bool) -> (Instance, Uuid) {
        let app = &self.app;
        let p = self
            .put("funded-project", "formal_check", self.project_data(), None)
            .await;
        app.services
            .fire(
                app.user("manager"),
                FireEvent {
                    instance_id: p.id,
                    event: "pass_formal_check".into(),
                    expected_version: 0,
                    idempotency_key: None,
                    input: json!({}),
                    reason: None,
                },
            )
            .await
            .unwrap();
        let assigned = app
            .ok(
                Some(&self.manager),
                "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id } }",
                json!({ "id": p.id, "e": [app.user("expert1").id] }),
            )
            .await;
        let a: Uuid = assigned["assignReviewers"][0]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let expert1 = app.session_token("expert1").await;
        if accept || submit {
            app.ok(
                Some(&expert1),
                "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { state } }",
                json!({ "id": a }),
            )
            .await;
        }
        if submit {
            app.ok(
                Some(&expert1),
                "mutation($id: ID!, $s: [ScoreInput!]!) { submitScores(assignmentId: $id, scores: $s) { total } }",
                json!({ "id": a, "s": [
                    { "criterion": "necessity", "score": 80 }, { "criterion": "feasibility", "score": 80 },
                    { "criterion": "performance_targets", "score": 80 }, { "criterion": "budget", "score": 80 }
                ] }),
            )
            .await;
        }
        let p = app.services.store.get_instance(p.id).await.unwrap();
        (p, a)
    }

    /// A project in `state` after approval: targets frozen, approved on 2024-06-03, a
    /// budget line of 300 000 (added through the API when `line`).
    pub async fn approved_project(&self, state: &str, line: bool) -> (Instance, Option<Uuid>) {
        let mut data = self.project_data();
        let extra = json!({
            "approved_budget": "300000.00",
            "approved_on": "2024-06-03",
            "approved_indicators": indicators(),
            "targets_approved": true,
            "task_book": file("任务书.pdf"),
            "milestones": "9月中期检查",
            "execution_end": "2024-12-31",
            "acceptance_report": file("验收报告.pdf"),
            "financial_statement": file("财务决算表.xlsx"),
            "indicator_actuals": [
                { "id": "cases", "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "actual": 180, "direction": "higher_is_better", "weight": 1 },
                { "id": "firms", "category": "effect_social", "name": "服务企业数", "unit": "家", "target": 100, "actual": 80, "direction": "higher_is_better", "weight": 1 }
            ],
            "acceptance_outcome": "pass",
            "self_evaluation_report": file("自评报告.pdf"),
            "self_evaluation_score": 88,
        });
        for (k, v) in extra.as_object().unwrap() {
            data[k] = v.clone();
        }
        let p = self.put("funded-project", state, data, None).await;
        let mut line_id = None;
        if line {
            let added = self
                .app
                .ok(
                    Some(&self.manager),
                    r#"mutation($id: ID!) { addBudgetLine(instanceId: $id, input: { year: 2024, subject: "调解工作站建设", amount: "300000" }) { id } }"#,
                    json!({ "id": p.id }),
                )
                .await;
            line_id = Some(
                added["addBudgetLine"]["id"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
        if line {
            // Spending waits for the money: the approved funding is disbursed (拨付).
            self.app
                .services
                .store
                .record_disbursement(grantflow_store::funding::Disbursement {
                    id: Uuid::now_v7(),
                    instance_id: p.id,
                    batch: "第一批".into(),
                    paid_on: "2024-06-05".parse().unwrap(),
                    amount: grantflow_domain::Money::from_yuan(300_000).unwrap(),
                    voucher: "粤财拨-2024-001".into(),
                    recorded_by: self.app.user("manager").id,
                    recorded_at: chrono::Utc::now(),
                })
                .await
                .unwrap();
        }
        let p = self.app.services.store.get_instance(p.id).await.unwrap();
        (p, line_id)
    }

    /// A demand of unit A for the call in `state`, with everything a demand holds.
    pub async fn demand(&self, state: &str, name: &str) -> Instance {
        self.put(
            "demand-collection",
            state,
            json!({
                "call_id": self.call.to_string(),
                "closing_date": "2024-06-28",
                "category": "一、知识产权“放管服”改革和区域布局",
                "policy_area": "知识产权综合改革试验和自贸试验区知识产权工作",
                "project_name": name,
                "direction": "建立自贸区知识产权纠纷快速处理机制，设立调解工作站",
                "applicant_name": UNIT,
                "budget": "300000.00",
                "performance": "设立调解工作站2个，调解纠纷60件",
            }),
            None,
        )
        .await
    }
}

/// Everything a refused request must leave as it was: the target instances (row, history,
/// timers, review assignments, exclusions, budget, spending, actuals, evaluation), the
/// number of instances, the outbox, calls and their merges, the expert pool and
/// collaborations, organisations and users.
pub async fn snapshot(store: &dyn Store, instances: &[Uuid]) -> String {
    let mut s = String::new();
    let all = store.instance_ids().await.unwrap();
    writeln!(s, "instances: {}", all.len()).unwrap();
    for id in instances {
        writeln!(s, "{:?}", store.get_instance(*id).await.unwrap()).unwrap();
        writeln!(s, "{:?}", store.history(*id).await.unwrap()).unwrap();
        writeln!(s, "{:?}", store.timers_for_instance(*id).await.unwrap()).unwrap();
        writeln!(s, "{:?}", store.instance_assignments(*id).await.unwrap()).unwrap();
        writeln!(s, "{:?}", store.exclusions(*id).await.unwrap()).unwrap();
        writeln!(s, "{:?}", store.actuals(*id).await.unwrap()).unwrap();
        writeln!(s, "{:?}", store.evaluation(*id).await.unwrap()).unwrap();
        writeln!(
            s,
            "{:?}",
            store.evaluation_assignment_history(*id).await.unwrap()
        )
        .unwrap();
        writeln!(s, "{:?}", store.third_party_evaluation(*id).await.unwrap()).unwrap();
        for o in store.objections(Some(*id), false, 1000).await.unwrap() {
            writeln!(s, "{o:?}").unwrap();
            writeln!(s, "{:?}", store.objection_history(o.id).await.unwrap()).unwrap();
        }
    }
    writeln!(s, "{:?}", store.budget_lines(instances).await.unwrap()).unwrap();
    writeln!(s, "{:?}", store.spending(instances).await.unwrap()).unwrap();
    writeln!(s, "{:?}", store.disbursements(instances).await.unwrap()).unwrap();
    for m in store.list_outbox(None, None, 10_000).await.unwrap() {
        writeln!(
            s,
            "outbox {} {} {:?} {}",
            m.idempotency_key, m.to_address, m.status, m.attempts
        )
        .unwrap();
    }
    for call in store.list_calls().await.unwrap() {
        writeln!(s, "{call:?}").unwrap();
        writeln!(s, "{:?}", store.demand_merges(call.id).await.unwrap()).unwrap();
        writeln!(s, "{:?}", store.funding_plan(call.id).await.unwrap()).unwrap();
        writeln!(
            s,
            "{:?}",
            store.funding_plan_changes(call.id).await.unwrap()
        )
        .unwrap();
        writeln!(s, "{:?}", store.funding_commitments(call.id).await.unwrap()).unwrap();
    }
    writeln!(s, "{:?}", store.expert_profiles().await.unwrap()).unwrap();
    writeln!(s, "{:?}", store.collaborations(None).await.unwrap()).unwrap();
    writeln!(s, "{:?}", store.list_orgs().await.unwrap()).unwrap();
    writeln!(s, "{:?}", store.list_users().await.unwrap()).unwrap();
    s
}
