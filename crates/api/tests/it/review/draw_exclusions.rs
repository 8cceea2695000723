//! A seeded draw says which experts it could not choose and why: an expert who
//! collaborated with the applicant recently is listed with the conflict and its ground
//! (and never drawn), a suspended one as inactive; a second draw on a full panel lists the
//! drawn experts as already on it and changes nothing. On SQLite and PostgreSQL.

use serde_json::{Value, json};
use uuid::Uuid;

use super::support::{Backend, spawn_app};
use super::{application_in_review, extra_expert, profiles, tokens};

const DRAW: &str = r#"mutation($id: ID!) { autoAssign(instanceId: $id, seed: 20240603) {
  unfilledSeats assignments { expert { username } }
  excluded { expertId expert { username } reasons { code conflicts message { zhCn en } } }
} }"#;

fn excluded_by_name(drawn: &Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    drawn["autoAssign"]["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let reasons = e["reasons"].as_array().unwrap();
            (
                e["expert"]["username"].as_str().unwrap().to_string(),
                reasons
                    .iter()
                    .map(|r| r["code"].as_str().unwrap().to_string())
                    .collect(),
                reasons
                    .iter()
                    .flat_map(|r| r["conflicts"].as_array().unwrap().clone())
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

async fn the_draw_lists_the_excluded_experts_with_their_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = tokens(&app).await;
    let (partner, _) = extra_expert(&app, "expert_partner", "广州专利协会").await;
    let (resting, _) = extra_expert(&app, "expert_resting", "深圳知识产权研究院").await;
    let mut pool: Vec<Uuid> = ["expert1", "expert2", "expert3"]
        .iter()
        .map(|u| app.user(u).id)
        .collect();
    pool.extend([partner.id, resting.id]);
    profiles(&app, &t.manager, &pool).await;
    app.ok(
        Some(&t.manager),
        r#"mutation($e: ID!, $o: ID!) { recordCollaboration(expertId: $e, organisationId: $o, until: "2024-03-31", note: "联合课题") { until } }"#,
        json!({ "e": partner.id.to_string(), "o": app.seed.unit_a.id.to_string() }),
    )
    .await;
    app.ok(
        Some(&t.manager),
        r#"mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [3], keywords: ["专利"], workloadCap: 10, status: "suspended" }) { status } }"#,
        json!({ "id": resting.id.to_string() }),
    )
    .await;
    let id = application_in_review(&app, &t, "专利导航项目").await;

    let drawn = app.ok(Some(&t.manager), DRAW, json!({ "id": id })).await;
    let mut chosen: Vec<&str> = drawn["autoAssign"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["expert"]["username"].as_str().unwrap())
        .collect();
    chosen.sort_unstable();
    assert_eq!(chosen, ["expert1", "expert2", "expert3"], "{drawn}");
    let excluded = excluded_by_name(&drawn);
    assert_eq!(
        excluded
            .iter()
            .map(|e| e.0.as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        ["expert_partner", "expert_resting"].into_iter().collect(),
        "{drawn}"
    );
    let partner_row = excluded.iter().find(|e| e.0 == "expert_partner").unwrap();
    assert_eq!(partner_row.1, ["EXPERT_CONFLICT"]);
    assert_eq!(partner_row.2, ["CONFLICT_RECENT_COLLABORATION"]);
    let resting_row = excluded.iter().find(|e| e.0 == "expert_resting").unwrap();
    assert_eq!(resting_row.1, ["EXPERT_INACTIVE"]);
    let message = drawn["autoAssign"]["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["expert"]["username"] == "expert_partner")
        .unwrap()["reasons"][0]["message"]
        .clone();
    assert!(
        message["zhCn"].as_str().unwrap().contains("利益冲突"),
        "{message}"
    );
    assert!(
        message["en"]
            .as_str()
            .unwrap()
            .contains("conflict of interest"),
        "{message}"
    );

    // The panel is full: nothing is drawn, and the drawn experts are listed as on it.
    let again = app.ok(Some(&t.manager), DRAW, json!({ "id": id })).await;
    assert_eq!(again["autoAssign"]["assignments"], json!([]));
    let excluded = excluded_by_name(&again);
    for name in ["expert1", "expert2", "expert3"] {
        let row = excluded
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("{name}: {again}"));
        assert_eq!(row.1, ["EXPERT_ALREADY_ON_PANEL"]);
    }
    let round = app
        .ok(
            Some(&t.manager),
            "query($id: ID!) { reviewRound(instanceId: $id) { assignments { expert { username } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        round["reviewRound"]["assignments"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{round}"
    );
}

grantflow_testkit::on_both_backends!(the_draw_lists_the_excluded_experts_with_their_reasons);
