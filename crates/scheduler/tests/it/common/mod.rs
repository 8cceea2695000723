//! A world for scheduler tests: a fresh database (SQLite or PostgreSQL), the two test
//! workflows, an organisation tree with users, a manual clock, and a real SMTP server.

#![allow(dead_code, reason = "each test binary uses part of the harness")]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use grantflow_domain::Registry;
use grantflow_domain::calendar::{WorkCalendar, local_instant};
use grantflow_mail::testkit::{ReceivedEmail, SmtpTestServer};
use grantflow_mail::{MailConfig, Mailer};
use grantflow_scheduler::{DigestSchedule, Scheduler, SchedulerSettings};
use grantflow_service::{CreateInstance, ManualClock, Services};
use grantflow_store::{
    Instance, Lang, NewOrganisation, NewUser, NotifyPref, OrgKind, Role, Store, User, UserPatch,
};

pub const PUBLIC_URL: &str = "https://ip.example.gov.cn";

pub use grantflow_testkit::{Backend, TestDb as DbGuard, fresh_store};

pub fn registry() -> Registry {
    grantflow_testkit::registry_from(&[
        (
            "rectification.toml",
            include_str!("../../fixtures/rectification.toml"),
        ),
        (
            "correction.toml",
            include_str!("../../fixtures/correction.toml"),
        ),
    ])
}

/// An instant in Asia/Shanghai.
pub fn local(date: &str, time: &str) -> DateTime<Utc> {
    local_instant(
        NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("a date"),
        NaiveTime::parse_from_str(time, "%H:%M").expect("a time"),
    )
}

pub struct People {
    /// Applicant, Chinese, immediate reminders.
    pub zhang: User,
    /// Applicant, English, immediate reminders.
    pub li: User,
    /// Applicant who wants the digest only.
    pub wang: User,
    /// Applicant who wants nothing but escalations.
    pub zhao: User,
    /// The city bureau of the unit.
    pub city: User,
    /// Programme manager, digest only (still receives escalations).
    pub manager: User,
}

pub struct World {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub services: Services,
    pub smtp: SmtpTestServer,
    pub people: People,
    pub unit_id: uuid::Uuid,
    pub db: DbGuard,
}

impl World {
    pub async fn new(backend: Backend, start: DateTime<Utc>) -> Self {
        let (store, db) = fresh_store(backend).await;
        let clock = Arc::new(ManualClock::new(start));
        let services = Services::new(
            store.clone(),
            Arc::new(registry()),
            Arc::new(WorkCalendar::builtin()),
            clock.clone(),
        )
        .with_public_url(PUBLIC_URL);
        services.register_workflows().await.expect("save workflows");
        let city = store
            .create_org(NewOrganisation {
                name: "佛山市市场监督管理局".into(),
                kind: OrgKind::City,
                parent_id: None,
            })
            .await
            .unwrap();
        let unit = store
            .create_org(NewOrganisation {
                name: "佛山市知识产权保护中心".into(),
                kind: OrgKind::Unit,
                parent_id: Some(city.id),
            })
            .await
            .unwrap();
        let user = |username: &str, name: &str, org, role, lang: Lang, pref| {
            let store = store.clone();
            let (username, name) = (username.to_string(), name.to_string());
            async move {
                let u = store
                    .create_user(NewUser {
                        username: username.clone(),
                        display_name: name,
                        email: format!("{username}@example.gov.cn"),
                        org_id: Some(org),
                        roles: vec![role],
                        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                        lang,
                    })
                    .await
                    .unwrap();
                store
                    .update_user(
                        u.id,
                        UserPatch {
                            notify_pref: Some(pref),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap()
            }
        };
        let people = People {
            zhang: user(
                "zhang",
                "张三",
                unit.id,
                Role::Applicant,
                Lang::ZhCn,
                NotifyPref::Immediate,
            )
            .await,
            li: user(
                "li",
                "Li Si",
                unit.id,
                Role::Applicant,
                Lang::En,
                NotifyPref::Immediate,
            )
            .await,
            wang: user(
                "wang",
                "王五",
                unit.id,
                Role::Applicant,
                Lang::ZhCn,
                NotifyPref::DigestOnly,
            )
            .await,
            zhao: user(
                "zhao",
                "赵六",
                unit.id,
                Role::Applicant,
                Lang::ZhCn,
                NotifyPref::None,
            )
            .await,
            city: user(
                "foshan",
                "佛山市局",
                city.id,
                Role::City,
                Lang::ZhCn,
                NotifyPref::Immediate,
            )
            .await,
            manager: user(
                "chen",
                "陈处长",
                city.id,
                Role::Manager,
                Lang::ZhCn,
                NotifyPref::DigestOnly,
            )
            .await,
        };
        Self {
            store,
            clock,
            services,
            smtp: SmtpTestServer::start(),
            people,
            unit_id: unit.id,
            db,
        }
    }

    /// Services on a second connection pool to the same database, as another scheduler
    /// process would have (same clock, same workflows).
    pub async fn second_services(&self) -> Services {
        let store = self.db.reopen().await;
        Services::new(
            store,
            Arc::new(registry()),
            Arc::new(WorkCalendar::builtin()),
            self.clock.clone(),
        )
        .with_public_url(PUBLIC_URL)
    }

    pub fn scheduler_on(&self, services: Services, digests: Vec<DigestSchedule>) -> Scheduler {
        self.scheduler_with(
            services,
            SchedulerSettings {
                batch_size: 50,
                lease: Duration::from_secs(120),
                poll_interval: Duration::from_secs(30),
                digests,
                public_url: PUBLIC_URL.into(),
            },
        )
    }

    pub fn scheduler_with(&self, services: Services, settings: SchedulerSettings) -> Scheduler {
        Scheduler::new(services, self.mailer(), settings).expect("scheduler")
    }

    pub fn mailer(&self) -> Mailer {
        Mailer::from_config(&MailConfig::Smtp(self.smtp.smtp_config())).expect("mailer")
    }

    pub fn scheduler(&self, digests: Vec<DigestSchedule>) -> Scheduler {
        self.scheduler_on(self.services.clone(), digests)
    }

    /// Create an instance of `workflow` as the applicant 张三 at the clock's time.
    pub async fn start(&self, workflow: &str, title: &str) -> Instance {
        self.services
            .create_instance(
                &self.people.zhang,
                CreateInstance {
                    workflow_id: workflow.into(),
                    org_id: None,
                    parent_id: None,
                    title: title.into(),
                    data: serde_json::json!({}),
                    call_id: None,
                    catalogue_item: None,
                },
            )
            .await
            .expect("create instance")
    }

    /// Move the clock to `at` and run one pass there.
    pub async fn run_at(
        &self,
        scheduler: &Scheduler,
        at: DateTime<Utc>,
    ) -> grantflow_scheduler::RunReport {
        self.clock.set(at);
        scheduler.run_once(at).await.expect("run_once")
    }

    pub fn received(&self) -> Vec<ReceivedEmail> {
        self.smtp.received()
    }
}

/// The recipient address of a received message.
pub fn to(m: &ReceivedEmail) -> String {
    m.to.first().map(|a| a.address.clone()).unwrap_or_default()
}
