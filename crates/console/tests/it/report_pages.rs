//! The report, funding-plan and expert-picker pages over real HTTP, on SQLite and
//! PostgreSQL: a manager sees the call's and the year's figures in every breakdown as the
//! API gives them and a unit is refused them; the manager replaces the funding plan
//! through the form (a form without its token changes nothing) and sees the change in the
//! history; the manager finds an expert user by name and adds them to the pool without
//! typing an id.

use grantflow_store::{Lang, NewUser, Role};
use reqwest::StatusCode;

use crate::handlers::{App, spawn};

macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            async fn run(backend: grantflow_testkit::Backend) {
                super::$scenario(super::spawn(backend).await).await;
            }
            grantflow_testkit::on_both_backends!(
                #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
                run
            );
        }
    };
}

impl App {
    async fn post_form(&self, path: &str, session: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("gf_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn the_manager_sees_every_breakdown_and_a_unit_is_refused(app: App) {
    let p = app.project().await;
    let call = p.data["call_id"].as_str().unwrap().to_string();
    let manager = app.session("manager").await;
    let (status, html) = app.get(&format!("/reports?call={call}"), &manager).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for id in [
        "table-city",
        "table-category",
        "table-part",
        "stages-city",
        "table-indicators",
        "table-units",
        "chart-grades-city",
        "chart-execution-part",
    ] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    // One drafting project of a 广州 unit: counted once in its city's row.
    assert!(
        html.contains(r#"<dd data-figure="projects">1</dd>"#),
        "{html}"
    );
    assert!(html.contains("广州市市场监督管理局"), "the city's row");
    assert!(html.contains(&format!("/reports/export?call={call}")));

    // No parameter: the latest year with a call, every call of it.
    let (status, html) = app.get("/reports", &manager).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"id="table-city""#) && html.contains("年度"),
        "{html}"
    );

    let unit = app.session("applicant_a").await;
    let (status, html) = app.get(&format!("/reports?call={call}"), &unit).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!html.contains(r#"id="table-city""#));
    let (status, _) = app.get("/reports?year=2024", &unit).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The download is the API's XLSX.
    let r = app
        .http
        .get(format!("{}/reports/export?call={call}", app.base))
        .header("cookie", format!("gf_session={manager}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml")
    );
    assert_eq!(&r.bytes().await.unwrap()[..2], b"PK", "an XLSX is a zip");
}
on_both_backends!(the_manager_sees_every_breakdown_and_a_unit_is_refused);

async fn the_manager_edits_the_funding_plan_and_sees_the_history(app: App) {
    let p = app.project().await;
    let call = p.data["call_id"].as_str().unwrap().to_string();
    let path = format!("/calls/{call}/funding");
    let manager = app.session("manager").await;
    let (status, html) = app.get(&path, &manager).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"id="funding-form""#));

    let body = format!(
        "total=1000000&kind=city&key={}&amount=500000&kind=part&key=&amount=&reason={}",
        enc("广州市"),
        enc("首次下达")
    );
    // Without the form token nothing changes.
    let refused = app.post_form(&path, &manager, &body).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, html) = app.get(&path, &manager).await;
    assert!(!html.contains("首次下达"));

    let csrf = grantflow_console::session::csrf_for_session(&manager);
    let saved = app
        .post_form(&path, &manager, &format!("csrf={csrf}&{body}"))
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.get(&path, &manager).await;
    assert!(
        html.contains(r#"<dd data-figure="total">1000000.00</dd>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"data-kind="city" data-key="广州市""#)
            && html.contains(r#"<td data-figure="allocated">500000.00</td>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="reason">首次下达</td>"#)
            && html.contains("广州市: — → 500000.00"),
        "the history names the change: {html}"
    );

    // A bad amount is refused next to the form, with the API's message.
    let bad = app
        .post_form(&path, &manager, &format!("csrf={csrf}&total=abc&reason=x"))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains(r#"id="funding-error""#));

    // A unit sees no plan.
    let unit = app.session("applicant_a").await;
    let (status, html) = app.get(&path, &unit).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!html.contains("500000.00"));
}
on_both_backends!(the_manager_edits_the_funding_plan_and_sees_the_history);

async fn the_manager_picks_an_expert_from_the_directory(app: App) {
    let org = app.user("manager").org_id;
    let wang = app
        .services
        .store
        .create_user(NewUser {
            username: "expert_wang".into(),
            display_name: "王教授".into(),
            email: "wang@example.edu.cn".into(),
            org_id: org,
            roles: vec![Role::Expert],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            lang: Lang::ZhCn,
        })
        .await
        .unwrap();
    let manager = app.session("manager").await;
    let (status, html) = app
        .get(&format!("/experts?q={}", enc("王")), &manager)
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"data-username="expert_wang""#), "{html}");
    let pick = format!("pick={}", wang.id);
    assert!(html.contains(&pick), "a link chooses the expert");
    let (_, html) = app
        .get(&format!("/experts?q={}&{pick}", enc("王")), &manager)
        .await;
    assert!(
        html.contains(&format!(
            r#"<option value="{}" data-username="expert_wang" selected>"#,
            wang.id
        )),
        "the profile form has the chosen expert: {html}"
    );
    // A search that finds nobody says so.
    let (_, html) = app.get("/experts?q=nobody", &manager).await;
    assert!(!html.contains(r#"data-username="expert_wang""#));

    let csrf = grantflow_console::session::csrf_for_session(&manager);
    let saved = app
        .post_form(
            "/experts/profile",
            &manager,
            &format!(
                "csrf={csrf}&user={}&category=2&keywords={}&cap=4&status=active",
                wang.id,
                enc("专利导航")
            ),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.get("/experts", &manager).await;
    assert!(
        html.contains(r#"<tr data-expert="expert_wang">"#),
        "the expert is in the pool: {html}"
    );
}
on_both_backends!(the_manager_picks_an_expert_from_the_directory);
