//! The console's handlers over real HTTP, on SQLite and on PostgreSQL: the API's
//! visibility rules hold (an instance of another city is a 404 page that names nothing),
//! a form posted without its CSRF token changes nothing, uploads are refused past the
//! import limit before they are read, the auditor sees the hash chain verified, and the
//! live digest of "what waits on me" needs a session.

use std::net::SocketAddr;
use std::sync::Arc;

use grantflow_api::{ApiSettings, auth};
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::{CreateInstance, ManualClock, Services};
use grantflow_store::{
    Instance, Lang, NewOrganisation, NewToken, NewUser, OrgKind, Role, Store, User,
};
use grantflow_testkit::{Backend, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) struct App {
    pub(crate) base: String,
    pub(crate) services: Services,
    pub(crate) users: Vec<User>,
    pub(crate) http: reqwest::Client,
    _db: TestDb,
}

pub(crate) async fn spawn(backend: Backend) -> App {
    let db = TestDb::new(backend).await;
    let store: Arc<dyn Store> = db.shared();
    let clock = Arc::new(ManualClock::new("2024-06-03T02:00:00Z".parse().unwrap()));
    let services = Services::new(
        store.clone(),
        Arc::new(grantflow_testkit::registry()),
        Arc::new(WorkCalendar::builtin()),
        clock,
    );
    services.register_workflows().await.unwrap();
    let org = |name: &str, kind, parent: Option<uuid::Uuid>| NewOrganisation {
        name: name.into(),
        kind,
        parent_id: parent,
    };
    let province = store
        .create_org(org("省局", OrgKind::Province, None))
        .await
        .unwrap();
    let gz = store
        .create_org(org(
            "广州市市场监督管理局",
            OrgKind::City,
            Some(province.id),
        ))
        .await
        .unwrap();
    let sz = store
        .create_org(org(
            "深圳市市场监督管理局",
            OrgKind::City,
            Some(province.id),
        ))
        .await
        .unwrap();
    let unit_a = store
        .create_org(org("广州知识产权服务中心", OrgKind::Unit, Some(gz.id)))
        .await
        .unwrap();
    let unit_b = store
        .create_org(org("深圳专利运营有限公司", OrgKind::Unit, Some(sz.id)))
        .await
        .unwrap();
    let mut users = Vec::new();
    for (name, role, org) in [
        ("applicant_a", Role::Applicant, unit_a.id),
        ("applicant_b", Role::Applicant, unit_b.id),
        ("manager", Role::Manager, province.id),
        ("auditor", Role::Auditor, province.id),
    ] {
        users.push(
            store
                .create_user(NewUser {
                    username: name.into(),
                    display_name: name.into(),
                    email: format!("{name}@example.gov.cn"),
                    org_id: Some(org),
                    roles: vec![role],
                    // Never used to log in here: sessions are minted below.
                    password_hash:
                        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
                    lang: Lang::ZhCn,
                })
                .await
                .unwrap(),
        );
    }
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
    App {
        base: format!("http://{addr}"),
        services,
        users,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _db: db,
    }
}

impl App {
    pub(crate) fn user(&self, name: &str) -> &User {
        self.users.iter().find(|u| u.username == name).unwrap()
    }

    /// A console session cookie for `name` (the same token a login would issue).
    pub(crate) async fn session(&self, name: &str) -> String {
        let (token, token_hash) = auth::new_token(auth::SESSION_PREFIX);
        self.services
            .store
            .create_token(NewToken {
                user_id: self.user(name).id,
                token_hash,
                kind: "session".into(),
                name: None,
                scopes: auth::scope::ALL.iter().map(ToString::to_string).collect(),
                expires_at: Some(self.services.now() + chrono::Duration::hours(12)),
            })
            .await
            .unwrap();
        token
    }

    pub(crate) async fn get(&self, path: &str, session: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(
                "cookie",
                format!("{}={session}", grantflow_console::session::SESSION),
            )
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    pub(crate) async fn project(&self) -> Instance {
        // Applications belong to a stored call and one of its items.
        let call = grantflow_testkit::open_test_call(&self.services, self.user("manager")).await;
        self.services
            .create_instance(
                self.user("applicant_a"),
                CreateInstance {
                    workflow_id: "funded-project".into(),
                    org_id: None,
                    parent_id: None,
                    title: "广州专利导航项目".into(),
                    data: json!({}),
                    call_id: Some(call),
                    catalogue_item: Some(grantflow_testkit::TEST_ITEM.into()),
                },
            )
            .await
            .unwrap()
    }
}

/// Each scenario runs on a freshly spawned console per backend.
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

async fn an_instance_of_another_city_is_a_404_page_naming_nothing(app: App) {
    let p = app.project().await;
    let own = app.session("applicant_a").await;
    let (status, html) = app.get(&format!("/instances/{}", p.id), &own).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("广州专利导航项目"));
    assert!(
        html.contains(r#"class="state current" data-state="drafting""#),
        "the diagram highlights the state"
    );
    let other = app.session("applicant_b").await;
    for path in [
        format!("/instances/{}", p.id),
        format!("/instances/{}/budget", p.id),
        format!("/rounds/{}", p.id),
        "/instances/not-a-uuid".to_string(),
    ] {
        let (status, html) = app.get(&path, &other).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !html.contains("广州专利导航项目") && !html.contains("广州知识产权服务中心"),
            "{path}"
        );
    }
}
on_both_backends!(an_instance_of_another_city_is_a_404_page_naming_nothing);

async fn a_form_without_its_csrf_token_changes_nothing(app: App) {
    let p = app.project().await;
    let session = app.session("applicant_a").await;
    let post = |body: String| {
        app.http
            .post(format!("{}/instances/{}/fire", app.base, p.id))
            .header("cookie", format!("gf_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let without = post("event=withdraw&version=0".into()).await.unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let forged = post(format!(
        "csrf={}&event=withdraw&version=0",
        grantflow_console::session::csrf_for_session("gfs_someone-else")
    ))
    .await
    .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let after = app.services.store.get_instance(p.id).await.unwrap();
    assert_eq!(
        (after.version, after.state.as_str()),
        (0, "drafting"),
        "nothing happened"
    );
    // The other forms too: the password, a call's closing, a merge.
    for path in [
        "/account/password",
        "/calls/00000000-0000-0000-0000-000000000000/close",
        "/calls/x/merge",
    ] {
        let r = app
            .http
            .post(format!("{}{path}", app.base))
            .header("cookie", format!("gf_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("old=a&new=b&repeat=b&kept=a&duplicate=b")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
}
on_both_backends!(a_form_without_its_csrf_token_changes_nothing);

async fn an_oversized_upload_is_refused_before_it_is_read(app: App) {
    let session = app.session("applicant_a").await;
    let boundary = "gfboundary";
    let mut body = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.xlsx\"\r\n\r\n",
        grantflow_console::session::csrf_for_session(&session)
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(
        b'x',
        grantflow_api::programme::MAX_IMPORT_BYTES + 70_000,
    ));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let r = app
        .http
        .post(format!(
            "{}/calls/00000000-0000-0000-0000-000000000000/import",
            app.base
        ))
        .header("cookie", format!("gf_session={session}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
on_both_backends!(an_oversized_upload_is_refused_before_it_is_read);

async fn the_auditor_sees_the_chain_verified_and_the_live_digest_needs_a_session(app: App) {
    let p = app.project().await;
    let auditor = app.session("auditor").await;
    let (status, html) = app.get(&format!("/instances/{}", p.id), &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="verification" class="ok""#), "{html}");
    let applicant = app.session("applicant_a").await;
    let (_, html) = app.get(&format!("/instances/{}", p.id), &applicant).await;
    assert!(
        !html.contains(r#"id="verification""#),
        "only auditors and managers verify"
    );

    let signed_out = app
        .http
        .get(format!("{}/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/live", &applicant).await;
    assert_eq!(status, StatusCode::OK);
    let digest: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(digest["count"], 1, "the draft waits on its unit: {body}");
    let (_, home) = app.get("/", &applicant).await;
    assert!(home.contains(&format!(
        r#"data-live="{}""#,
        digest["fingerprint"].as_str().unwrap()
    )));
}
on_both_backends!(the_auditor_sees_the_chain_verified_and_the_live_digest_needs_a_session);

async fn the_expert_pool_is_the_managers_and_a_change_request_needs_its_form_token(app: App) {
    let manager = app.session("manager").await;
    let (status, html) = app.get("/experts", &manager).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"id="pool""#) && html.contains(r#"id="collaboration-form""#));
    let applicant = app.session("applicant_a").await;
    let (status, html) = app.get("/experts", &applicant).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(!html.contains(r#"id="pool""#));

    let p = app.project().await;
    let post = |session: &str, body: String| {
        app.http
            .post(format!("{}/instances/{}/change", app.base, p.id))
            .header("cookie", format!("gf_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let refused = post(&applicant, "title=%E5%BB%B6%E6%9C%9F".into())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, page) = app.get(&format!("/instances/{}", p.id), &manager).await;
    assert!(
        !page.contains(r#"id="change-requests""#),
        "nothing was filed"
    );

    let csrf = grantflow_console::session::csrf_for_session(&applicant);
    let filed = post(&applicant, format!("csrf={csrf}&title=%E5%BB%B6%E6%9C%9F"))
        .await
        .unwrap();
    assert_eq!(filed.status(), StatusCode::SEE_OTHER);
    let location = filed.headers()["location"].to_str().unwrap().to_string();
    let (status, change) = app.get(&location, &applicant).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        change.contains(r#"id="parent""#) && change.contains("广州专利导航项目"),
        "{change}"
    );
    let (_, page) = app.get(&format!("/instances/{}", p.id), &manager).await;
    assert!(
        page.contains(r#"id="change-requests""#) && page.contains(&format!("href=\"{location}\"")),
        "the project lists its change request: {page}"
    );
}
on_both_backends!(the_expert_pool_is_the_managers_and_a_change_request_needs_its_form_token);
