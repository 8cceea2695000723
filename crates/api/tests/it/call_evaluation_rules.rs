//! A call's evaluation points and grade bands over GraphQL (`Call.rules.evaluation` and
//! its settings), on SQLite and PostgreSQL: today's values shown as documented defaults,
//! a call's own values shown as set, and a band order that cannot grade refused with its
//! key. (The service's `evaluation_rules` test shows the numbers deciding a grade.)

use crate::support;

use serde_json::json;
use support::{Backend, error_code, spawn_app};

const CATALOGUE_2022: &str = include_str!("../../../../workflows/calls/2022.toml");

const RULES: &str = "{ id rules { evaluation { budgetExecutionPoints outputPoints effectPoints satisfactionPoints \
    excellentFrom goodFrom fairFrom } settings { key value defaultValue isDefault } } }";

async fn the_call_s_evaluation_points_and_bands_are_shown_with_their_defaults(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let open = |rules: &'static str| {
        let app = &app;
        let manager = manager.clone();
        async move {
            app.gql(
                Some(&manager),
                &format!("mutation($input: OpenCallInput!) {{ openCall(input: $input) {RULES} }}"),
                json!({ "input": { "catalogueToml": format!("{CATALOGUE_2022}\n{rules}"), "closingDate": "2024-06-28" } }),
            )
            .await
        }
    };
    let plain = open("").await;
    let e = &plain["data"]["openCall"]["rules"]["evaluation"];
    assert_eq!(
        *e,
        json!({ "budgetExecutionPoints": 10.0, "outputPoints": 50.0, "effectPoints": 30.0,
                "satisfactionPoints": 10.0, "excellentFrom": 90, "goodFrom": 80, "fairFrom": 60 }),
        "{plain}"
    );
    let settings = plain["data"]["openCall"]["rules"]["settings"]
        .as_array()
        .unwrap()
        .clone();
    let evaluation: Vec<_> = settings
        .iter()
        .filter(|s| s["key"].as_str().unwrap().starts_with("evaluation."))
        .collect();
    assert_eq!(evaluation.len(), 7, "four parts and three bands");
    assert!(
        evaluation.iter().all(|s| s["isDefault"] == true),
        "{evaluation:?}"
    );

    let own =
        open("[rules.evaluation]\noutput_points = 40\neffect_points = 40\ngood_from = 70\n").await;
    let rules = &own["data"]["openCall"]["rules"];
    assert_eq!(rules["evaluation"]["outputPoints"], 40.0, "{own}");
    assert_eq!(rules["evaluation"]["goodFrom"], 70);
    assert_eq!(rules["evaluation"]["excellentFrom"], 90, "a default");
    let setting = |key: &str| {
        rules["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key}: {rules}"))
            .clone()
    };
    assert_eq!(
        setting("evaluation.good_from"),
        json!({ "key": "evaluation.good_from", "value": "70", "defaultValue": "80", "isDefault": false })
    );
    assert_eq!(setting("evaluation.fair_from")["isDefault"], true);

    // Points that do not sum to 100, or bands out of order, refuse the call (none is
    // stored), naming the key.
    let before = app.ok(Some(&manager), "{ calls { id } }", json!({})).await["calls"]
        .as_array()
        .unwrap()
        .len();
    for bad in [
        "[rules.evaluation]\noutput_points = 60\n",
        "[rules.evaluation]\nfair_from = 85\n",
    ] {
        let refused = open(bad).await;
        assert_eq!(error_code(&refused), "INVALID_INPUT", "{refused}");
        assert!(
            refused["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("rules.evaluation"),
            "{refused}"
        );
    }
    let after = app.ok(Some(&manager), "{ calls { id } }", json!({})).await["calls"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused call is not stored");
}

use grantflow_testkit::on_both_backends;

on_both_backends!(the_call_s_evaluation_points_and_bands_are_shown_with_their_defaults);
