//! The user directory the console's expert picker reads: managers (and admins) search
//! active users by role and text, page by page; everyone else is refused, and a page size
//! or a search text past the limits is a client error.

use serde_json::{Value, json};

use crate::support::{Backend, error_code, on_both_backends, spawn_app};

const DIRECTORY: &str = "query($r: Role, $s: String, $f: Int! = 20, $a: String) {
  userDirectory(role: $r, search: $s, first: $f, after: $a) {
    users { username displayName } hasNextPage endCursor totalCount
  }
}";

fn names(answer: &Value) -> Vec<&str> {
    answer["data"]["userDirectory"]["users"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect()
}

async fn managers_page_through_experts_and_others_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let ask = |vars: Value| {
        let manager = manager.clone();
        let app = &app;
        async move { app.gql(Some(&manager), DIRECTORY, vars).await }
    };

    // Every expert, two per page, in username order; the cursor leads to the rest.
    let first = ask(json!({ "r": "EXPERT", "f": 2 })).await;
    assert_eq!(names(&first), ["expert1", "expert2"]);
    let page = &first["data"]["userDirectory"];
    assert_eq!(page["hasNextPage"], true);
    assert_eq!(page["totalCount"], 3);
    let next = ask(json!({ "r": "EXPERT", "f": 2, "a": page["endCursor"] })).await;
    assert_eq!(names(&next), ["expert3"]);
    assert_eq!(next["data"]["userDirectory"]["hasNextPage"], false);

    // Text in the username or the display name, any case; no role: every role.
    let found = ask(json!({ "s": "CITY_" })).await;
    assert_eq!(names(&found), ["city_gz", "city_sz"]);
    let found = ask(json!({ "s": "expert2 用户" })).await;
    assert_eq!(names(&found), ["expert2"]);
    assert_eq!(
        names(&ask(json!({ "s": "nobody" })).await),
        Vec::<&str>::new()
    );

    // A deactivated expert is not offered.
    app.services
        .store
        .update_user(
            app.user("expert3").id,
            grantflow_store::UserPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        names(&ask(json!({ "r": "EXPERT" })).await),
        ["expert1", "expert2"]
    );

    // Limits: a page of 0 or 101, a search of 101 characters.
    for vars in [
        json!({ "f": 0 }),
        json!({ "f": 101 }),
        json!({ "s": "x".repeat(101) }),
    ] {
        let refused = ask(vars.clone()).await;
        assert_eq!(error_code(&refused), "INVALID_INPUT", "{vars}: {refused}");
    }

    // Only managers and admins: a unit, an expert, an auditor are FORBIDDEN.
    for who in ["applicant_a", "expert1", "auditor", "city_gz"] {
        let token = app.session_token(who).await;
        let refused = app.gql(Some(&token), DIRECTORY, json!({})).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{who}: {refused}");
    }
    let admin = app.session_token("admin").await;
    assert!(
        names(
            &app.gql(Some(&admin), DIRECTORY, json!({ "s": "manager" }))
                .await
        )
        .contains(&"manager")
    );
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread")]
    managers_page_through_experts_and_others_are_refused
);
