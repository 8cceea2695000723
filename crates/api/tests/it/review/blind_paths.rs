//! Blind means blind on every path that renders an instance: one test per path (fields,
//! list cursors, filters, exports, events, access after the round), each on SQLite and
//! PostgreSQL. The scenario: two applications of unit A under blind review by the same
//! panel; expert B has declared no conflict on both.

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::support::{Backend, TestApp, error_code, spawn_app};
use super::{CONTACT, Tokens, UNIT, application_in_review, declare_and_score, fire, flat};
use super::{my_assignment, profiles, tokens};

struct Blind {
    app: TestApp,
    t: Tokens,
    /// Expert B's token; B declared no conflict on both applications.
    expert: String,
    first: String,
    second: String,
}

async fn two_blind_applications(backend: Backend) -> Blind {
    let app = spawn_app(backend).await;
    let t = tokens(&app).await;
    let experts: Vec<Uuid> = ["expert1", "expert2", "expert3"]
        .iter()
        .map(|u| app.user(u).id)
        .collect();
    profiles(&app, &t.manager, &experts).await;
    let first = application_in_review(&app, &t, &format!("{UNIT}专利导航项目")).await;
    let second = application_in_review(&app, &t, &format!("{UNIT}商标品牌培育")).await;
    for id in [&first, &second] {
        app.ok(
            Some(&t.manager),
            "mutation($id: ID!, $experts: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $experts) { id } }",
            json!({ "id": id, "experts": experts.iter().map(Uuid::to_string).collect::<Vec<_>>() }),
        )
        .await;
    }
    let expert = app.api_token("expert2", &["read", "review"]).await;
    for id in [&first, &second] {
        let assignment = my_assignment(&app, &expert, id).await;
        app.ok(
            Some(&expert),
            "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { state } }",
            json!({ "id": assignment }),
        )
        .await;
    }
    Blind {
        app,
        t,
        expert,
        first,
        second,
    }
}

impl Blind {
    /// The instance's version, as the manager reads it.
    async fn version_of(&self, id: &str) -> i64 {
        self.app
            .ok(
                Some(&self.t.manager),
                "query($id: ID!) { instance(id: $id) { version } }",
                json!({ "id": id }),
            )
            .await["instance"]["version"]
            .as_i64()
            .unwrap()
    }
}

fn assert_hides_applicant(what: &str, text: &str) {
    for secret in [UNIT, CONTACT] {
        assert!(!text.contains(secret), "{what} reveals `{secret}`: {text}");
    }
}

async fn fields_hide_identity_but_keep_indicator_units(backend: Backend) {
    let b = two_blind_applications(backend).await;
    let seen = b
        .app
        .ok(
            Some(&b.expert),
            "query($id: ID!) { instance(id: $id) { title organisation { id } createdBy { id } data history { actorId } } }",
            json!({ "id": b.first }),
        )
        .await;
    assert_hides_applicant("the instance", &seen.to_string());
    let data = &seen["instance"]["data"];
    assert_eq!(data["applicant_name"], Value::Null);
    assert_eq!(
        data["indicators"][0]["unit"], "份",
        "an indicator's unit is a measure, not the applicant: {data}"
    );
    assert_eq!(seen["instance"]["title"], "***专利导航项目");
}

async fn title_sorted_cursors_carry_no_title(backend: Backend) {
    let b = two_blind_applications(backend).await;
    let page = |after: Option<String>| {
        let app = &b.app;
        let token = b.expert.clone();
        async move {
            app.ok(
                Some(&token),
                "query($after: String) { instances(first: 1, after: $after, sort: { field: TITLE, direction: ASC }) { edges { cursor node { id title } } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await
        }
    };
    let one = page(None).await;
    let cursor = one["instances"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&cursor)
        .expect("a cursor is base64");
    let decoded = String::from_utf8_lossy(&decoded).to_string();
    assert_hides_applicant("a cursor", &decoded);
    assert!(
        !decoded.contains("专利导航"),
        "no title in a cursor: {decoded}"
    );
    assert_eq!(one["instances"]["pageInfo"]["hasNextPage"], true);
    // The cursor still pages: the second page holds the other application.
    let two = page(Some(cursor)).await;
    let first_id = &one["instances"]["edges"][0]["node"]["id"];
    let second_id = &two["instances"]["edges"][0]["node"]["id"];
    assert_ne!(first_id, second_id);
    let ids = [first_id.as_str().unwrap(), second_id.as_str().unwrap()];
    assert!(ids.contains(&b.first.as_str()) && ids.contains(&b.second.as_str()));
    // A cursor naming an instance the viewer may not see is refused like a made-up one.
    let stranger = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({ "key": null, "id": Uuid::now_v7() }).to_string());
    let refused = b
        .app
        .gql(
            Some(&b.expert),
            "query($after: String) { instances(first: 1, after: $after, sort: { field: TITLE }) { totalCount } }",
            json!({ "after": stranger }),
        )
        .await;
    assert_eq!(error_code(&refused), "INVALID_INPUT");
}

async fn identity_filters_are_no_oracle(backend: Backend) {
    let b = two_blind_applications(backend).await;
    let count = |filter: Value| {
        let app = &b.app;
        let token = b.expert.clone();
        async move {
            app.ok(
                Some(&token),
                "query($f: InstanceFilterInput) { instances(first: 10, filter: $f) { totalCount } }",
                json!({ "f": filter }),
            )
            .await["instances"]["totalCount"]
                .clone()
        }
    };
    assert_eq!(
        count(json!({})).await,
        2,
        "the expert sees both applications"
    );
    let unit_a = b.app.seed.unit_a.id.to_string();
    let unit_b = b.app.seed.unit_b.id.to_string();
    // The right organisation and a wrong one answer alike; so do the unit's name and a
    // word of the visible title.
    assert_eq!(count(json!({ "organisationId": unit_a })).await, 0);
    assert_eq!(count(json!({ "organisationId": unit_b })).await, 0);
    assert_eq!(count(json!({ "text": UNIT })).await, 0);
    assert_eq!(count(json!({ "text": CONTACT })).await, 0);
    assert_eq!(count(json!({ "text": "不存在的词" })).await, 0);
    // The manager's filters are untouched.
    let manager = b
        .app
        .ok(
            Some(&b.t.manager),
            "query($f: InstanceFilterInput) { instances(first: 10, filter: $f) { totalCount } }",
            json!({ "f": { "text": UNIT } }),
        )
        .await;
    assert_eq!(manager["instances"]["totalCount"], 2);
}

async fn exports_are_redacted(backend: Backend) {
    let b = two_blind_applications(backend).await;
    let file = b
        .app
        .ok(
            Some(&b.expert),
            "{ exportInstances(format: CSV) { contentBase64 } }",
            json!({}),
        )
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(file["exportInstances"]["contentBase64"].as_str().unwrap())
        .unwrap();
    let csv = String::from_utf8(bytes).unwrap();
    assert_hides_applicant("the export", &csv);
    assert!(csv.contains("***专利导航项目"), "{csv}");
    let filtered = b
        .app
        .ok(
            Some(&b.expert),
            "query($f: InstanceFilterInput) { exportInstances(filter: $f, format: CSV) { contentBase64 } }",
            json!({ "f": { "text": UNIT } }),
        )
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(
            filtered["exportInstances"]["contentBase64"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let csv = String::from_utf8(bytes).unwrap();
    assert_eq!(csv.lines().count(), 1, "only the header: {csv}");
}

/// Subscribes over graphql-transport-ws; returns the socket after `next` of `CURRENT`.
async fn subscribe(
    app: &TestApp,
    token: &str,
    instance: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = app
        .url()
        .replace("http://", "ws://")
        .replace("/graphql", "/graphql/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "token": token } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { instanceEvents(instanceId: $id) { kind event actorId toState } }",
        "variables": { "id": instance } } });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let current = next_payload(&mut ws).await;
    assert_eq!(current["kind"], "CURRENT", "{current}");
    ws
}

async fn next_payload(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let msg = ws.next().await.expect("the socket stays open").unwrap();
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        match v["type"].as_str() {
            Some("next") => return v["payload"]["data"]["instanceEvents"].clone(),
            Some("connection_ack") | Some("ping") | Some("pong") => continue,
            _ => panic!("unexpected message: {v}"),
        }
    }
}

async fn events_hide_the_actor(backend: Backend) {
    let b = two_blind_applications(backend).await;
    let mut expert_ws = subscribe(&b.app, &b.expert, &b.first).await;
    let mut manager_ws = subscribe(&b.app, &b.t.manager, &b.first).await;
    // The manager extends the review deadline: an event on the instance.
    let version = b.version_of(&b.first).await;
    b.app
        .ok(
            Some(&b.t.manager),
            "mutation($id: ID!, $v: Int!, $d: NaiveDate!) { extendDeadline(instanceId: $id, expectedVersion: $v, newDueDate: $d, reason: \"专家评审延期\") { instance { id } } }",
            json!({ "id": b.first, "v": version, "d": (b.app.services.now() + chrono::Duration::days(30)).date_naive().to_string() }),
        )
        .await;
    let for_manager = next_payload(&mut manager_ws).await;
    assert_eq!(for_manager["kind"], "TRANSITION");
    assert!(for_manager["actorId"].is_string(), "{for_manager}");
    let for_expert = next_payload(&mut expert_ws).await;
    assert_eq!(for_expert["kind"], "TRANSITION");
    assert_eq!(
        for_expert["actorId"],
        Value::Null,
        "a blind reviewer is not told who acted: {for_expert}"
    );
}

async fn experts_lose_the_project_when_the_round_closes(backend: Backend) {
    let b = two_blind_applications(backend).await;
    let everyone = [
        b.app.api_token("expert1", &["read", "review"]).await,
        b.expert.clone(),
        b.app.api_token("expert3", &["read", "review"]).await,
    ];
    let mut expert_assignment = String::new();
    for token in &everyone {
        let assignment = my_assignment(&b.app, token, &b.first).await;
        if *token == b.expert {
            expert_assignment = assignment.clone();
            b.app
                .ok(
                    Some(token),
                    "mutation($id: ID!, $s: [ScoreInput!]!) { submitScores(assignmentId: $id, scores: $s) { total } }",
                    json!({ "id": assignment, "s": flat(80) }),
                )
                .await;
        } else {
            declare_and_score(&b.app, token, &assignment, flat(80)).await;
        }
    }
    let see = |token: String| {
        let app = &b.app;
        let id = b.first.clone();
        async move {
            app.gql(
                Some(&token),
                "query($id: ID!) { instance(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await
        }
    };
    assert!(see(b.expert.clone()).await["data"]["instance"].is_object());
    let version = b.version_of(&b.first).await;
    fire(
        &b.app,
        &b.t.manager,
        &b.first,
        "conclude_review",
        version,
        json!({}),
    )
    .await;
    // The round is closed: the project is no longer the expert's to see, by id or in a list.
    assert_eq!(error_code(&see(b.expert.clone()).await), "NOT_FOUND");
    let list = b
        .app
        .ok(
            Some(&b.expert),
            "{ instances(first: 10) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let ids: Vec<&str> = list["instances"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![b.second.as_str()],
        "only the project still in review"
    );
    // The review form and the expert's own scores stay.
    let form = b
        .app
        .ok(
            Some(&b.expert),
            "query($id: ID!) { reviewForm(assignmentId: $id) { assignment { state roundOpen versions { total } } } }",
            json!({ "id": expert_assignment }),
        )
        .await;
    let assignment = &form["reviewForm"]["assignment"];
    assert_eq!(assignment["roundOpen"], false);
    assert_eq!(assignment["versions"][0]["total"], 80.0);
}

use grantflow_testkit::on_both_backends;

on_both_backends!(
    fields_hide_identity_but_keep_indicator_units,
    title_sorted_cursors_carry_no_title,
    identity_filters_are_no_oracle,
    exports_are_redacted,
    events_hide_the_actor,
    experts_lose_the_project_when_the_round_closes,
);
