//! 公示 in public, in the console, without logging in: the list page, the objection form
//! (its double-submit CSRF cookie, its body limit, its field limits) and that a project not
//! under publicity is a 404 page; on SQLite and PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;

use grantflow_api::ApiSettings;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::{ManualClock, Services};
use grantflow_store::{Instance, NewInstance, Store};
use grantflow_testkit::{Backend, TestDb};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

struct App {
    base: String,
    services: Services,
    http: reqwest::Client,
    _db: TestDb,
}

async fn spawn(backend: Backend) -> (App, Instance) {
    let db = TestDb::new(backend).await;
    let store: Arc<dyn Store> = db.shared();
    let clock = Arc::new(ManualClock::new(grantflow_testkit::start_time()));
    let services = Services::new(
        store.clone(),
        Arc::new(grantflow_testkit::registry()),
        Arc::new(WorkCalendar::builtin()),
        clock,
    );
    services.register_workflows().await.unwrap();
    let seed = grantflow_testkit::seed(store.as_ref()).await;
    let wf = services.workflows.latest("funded-project").unwrap();
    let project = store
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "funded-project".into(),
            workflow_version: wf.def.version,
            state: "publicity".into(),
            stage: "approval".into(),
            data: json!({
                "approved_budget": "300000.00",
                "approved_on": "2024-06-03",
                "publicity_days": 7,
                "contact_name": "欧阳明远",
            }),
            parent_id: None,
            org_id: seed.unit_a.id,
            title: "广州知识产权纠纷调解能力提升".into(),
            created_by: seed.user("applicant_a").id,
            created_at: services.now(),
            due_at: None,
            timers: vec![],
        })
        .await
        .unwrap();
    let state = grantflow_api::state(services.clone(), ApiSettings::default());
    let router = grantflow_api::router(state.clone()).merge(grantflow_console::router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let app = App {
        base: format!("http://{addr}"),
        services,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _db: db,
    };
    (app, project)
}

impl App {
    async fn stored(&self, id: Uuid) -> Vec<grantflow_store::public::PublicObjection> {
        self.services
            .store
            .objections(Some(id), false, 100)
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, cookie: Option<&str>, body: String) -> (StatusCode, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("gf_csrf={c}"));
        }
        let r = req.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

fn form(csrf: &str, name: &str, reason: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "csrf={}&name={}&contact={}&reason={}",
        enc(csrf),
        enc(name),
        enc("13800000000"),
        enc(reason)
    )
}

async fn the_public_pages_take_an_objection_without_login(backend: Backend) {
    let (app, p) = spawn(backend).await;
    // The list, for anyone: what a 公示 publishes and a link to the form.
    let r = app
        .http
        .get(format!("{}/public/publicity", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("广州知识产权纠纷调解能力提升") && page.contains("广州知识产权服务中心"));
    assert!(page.contains(&format!("/public/objection/{}", p.id)));
    assert!(
        page.contains("2024-06-03") && page.contains("2024-06-10"),
        "{page}"
    );
    assert!(!page.contains("欧阳明远"), "nothing beyond the 公示");

    // The form sets its double-submit cookie and carries the same token.
    let path = format!("/public/objection/{}", p.id);
    let r = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let token = cookie
        .strip_prefix("gf_csrf=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("value=\"{token}\"")), "{page}");

    // Without the cookie, or with another token: 403, nothing stored.
    let (status, _) = app
        .post(&path, None, form(&token, "张三", "重复资助"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(&path, Some(&token), form("guess", "张三", "重复资助"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(app.stored(p.id).await.is_empty());

    // Field limits come back on the form with their code; a body past 64 KiB is a 413.
    let (status, page) = app
        .post(
            &path,
            Some(&token),
            form(&token, &"名".repeat(101), "重复资助"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("objection-error") && page.contains("name TOO_LONG"),
        "{page}"
    );
    let (status, _) = app
        .post(
            &path,
            Some(&token),
            form(&token, "张三", &"x".repeat(70 * 1024)),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(app.stored(p.id).await.is_empty());

    // With the cookie's token: stored, and the receipt shown.
    let (status, page) = app
        .post(
            &path,
            Some(&token),
            form(&token, "张三", "与已资助项目重复"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let stored = app.stored(p.id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].name.as_str(), stored[0].reason.as_str()),
        ("张三", "与已资助项目重复")
    );
    assert!(
        page.contains("objection-done") && page.contains(&stored[0].id.to_string()),
        "{page}"
    );

    // A project not under publicity, or none: the 404 page.
    let r = app
        .http
        .get(format!("{}/public/objection/{}", app.base, Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

mod sqlite {
    #[tokio::test]
    async fn the_public_pages_take_an_objection_without_login() {
        super::the_public_pages_take_an_objection_without_login(grantflow_testkit::Backend::Sqlite)
            .await;
    }
}

mod postgres {
    #[tokio::test]
    async fn the_public_pages_take_an_objection_without_login() {
        super::the_public_pages_take_an_objection_without_login(
            grantflow_testkit::Backend::Postgres,
        )
        .await;
    }
}
