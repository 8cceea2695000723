//! Worlds for scheduler tests, on the test kit's `ServiceWorld` (a fresh database on
//! SQLite or PostgreSQL, services, a manual clock) with a real SMTP server: [`World`], the
//! two test workflows and applicants of every notification preference and language, and
//! [`CallWorld`], the shipped programme workflows with a call and a scheduler.

#![allow(dead_code, reason = "each test binary uses part of the harness")]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use grantflow_domain::Registry;
use grantflow_domain::calendar::local_instant;
use grantflow_mail::testkit::{ReceivedEmail, SmtpTestServer};
use grantflow_mail::{MailConfig, Mailer};
use grantflow_scheduler::{DigestSchedule, Scheduler, SchedulerSettings};
use grantflow_service::programme::OpenCall;
use grantflow_service::{CreateInstance, Services};
use grantflow_store::{Instance, Lang, NewUser, NotifyPref, OrgKind, Role, Store, User, UserPatch};
use grantflow_testkit::{FoshanWorld, ServiceWorld, new_user};

pub const PUBLIC_URL: &str = "https://ip.example.gov.cn";

pub use grantflow_testkit::Backend;

/// The two test workflows of `tests/fixtures`.
pub fn fixture_workflows() -> Registry {
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

/// A scheduler's settings in these tests: batches of 50, two-minute leases, links to
/// [`PUBLIC_URL`].
pub fn settings(digests: Vec<DigestSchedule>) -> SchedulerSettings {
    SchedulerSettings {
        batch_size: 50,
        lease: Duration::from_secs(120),
        poll_interval: Duration::from_secs(30),
        digests,
        public_url: PUBLIC_URL.into(),
    }
}

/// A mailer sending to `smtp`.
pub fn mailer(smtp: &SmtpTestServer) -> Mailer {
    Mailer::from_config(&MailConfig::Smtp(smtp.smtp_config())).expect("mailer")
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
    pub base: ServiceWorld,
    pub store: Arc<dyn Store>,
    pub smtp: SmtpTestServer,
    pub people: People,
    pub unit_id: uuid::Uuid,
}
grantflow_testkit::extends!(World, base: ServiceWorld);

impl World {
    pub async fn new(backend: Backend, start: DateTime<Utc>) -> Self {
        let base = ServiceWorld::with(backend, fixture_workflows(), start)
            .await
            .with_public_url(PUBLIC_URL);
        let city = base.org("佛山市市场监督管理局", OrgKind::City, None).await;
        let unit = base
            .org("佛山市知识产权保护中心", OrgKind::Unit, Some(&city))
            .await;
        let user = |username: &str, name: &str, org, role, lang, pref| {
            let new = NewUser {
                display_name: name.into(),
                email: format!("{username}@example.gov.cn"),
                lang,
                ..new_user(username, Some(org), &[role])
            };
            let base = &base;
            async move {
                let u = base.add_user(new).await;
                base.store()
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
                &unit,
                Role::Applicant,
                Lang::ZhCn,
                NotifyPref::Immediate,
            )
            .await,
            li: user(
                "li",
                "Li Si",
                &unit,
                Role::Applicant,
                Lang::En,
                NotifyPref::Immediate,
            )
            .await,
            wang: user(
                "wang",
                "王五",
                &unit,
                Role::Applicant,
                Lang::ZhCn,
                NotifyPref::DigestOnly,
            )
            .await,
            zhao: user(
                "zhao",
                "赵六",
                &unit,
                Role::Applicant,
                Lang::ZhCn,
                NotifyPref::None,
            )
            .await,
            city: user(
                "foshan",
                "佛山市局",
                &city,
                Role::City,
                Lang::ZhCn,
                NotifyPref::Immediate,
            )
            .await,
            manager: user(
                "chen",
                "陈处长",
                &city,
                Role::Manager,
                Lang::ZhCn,
                NotifyPref::DigestOnly,
            )
            .await,
        };
        Self {
            store: base.services.store.clone(),
            base,
            smtp: SmtpTestServer::start(),
            people,
            unit_id: unit.id,
        }
    }

    /// Services on a second connection pool to the same database, as another scheduler
    /// process would have (same clock, same workflows).
    pub async fn second_services(&self) -> Services {
        self.services_on(self.db.reopen().await, fixture_workflows())
    }

    pub fn scheduler_on(&self, services: Services, digests: Vec<DigestSchedule>) -> Scheduler {
        self.scheduler_with(services, settings(digests))
    }

    pub fn scheduler_with(&self, services: Services, settings: SchedulerSettings) -> Scheduler {
        Scheduler::new(services, self.mailer(), settings).expect("scheduler")
    }

    pub fn mailer(&self) -> Mailer {
        mailer(&self.smtp)
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

/// A [`FoshanWorld`] on the shipped workflows of `registry` from Monday 3 June 2024, 10:00,
/// its people named `manager`, `foshan` and `shunde` (display name the username, address
/// `…@example.gov.cn`), with the manager's call and a scheduler sending to a real SMTP
/// server.
pub struct CallWorld {
    pub base: FoshanWorld,
    pub smtp: SmtpTestServer,
    pub scheduler: Scheduler,
    pub call: uuid::Uuid,
    /// How many messages had arrived at the end of each [`Self::run_at`] pass.
    pass_ends: std::sync::Mutex<Vec<usize>>,
}
grantflow_testkit::extends!(CallWorld, base: FoshanWorld);

impl CallWorld {
    pub async fn new(backend: Backend, registry: Registry, call: OpenCall) -> Self {
        let base = ServiceWorld::with(backend, registry, local("2024-06-03", "10:00"))
            .await
            .with_public_url(PUBLIC_URL);
        let base = FoshanWorld::new(base, ["manager", "foshan", "shunde"], |u| NewUser {
            display_name: u.username.clone(),
            email: format!("{}@example.gov.cn", u.username),
            ..u
        })
        .await;
        let call = base.open_call(&base.manager, call).await;
        let smtp = SmtpTestServer::start();
        let scheduler =
            Scheduler::new(base.services.clone(), mailer(&smtp), settings(vec![])).unwrap();
        Self {
            base,
            smtp,
            scheduler,
            call,
            pass_ends: std::sync::Mutex::default(),
        }
    }

    /// Create an instance of `workflow` under the call as the applicant (顺德), for
    /// `catalogue_item` when it applies to one.
    pub async fn apply(
        &self,
        workflow: &str,
        title: &str,
        catalogue_item: Option<&str>,
    ) -> Instance {
        self.services
            .create_instance(
                &self.applicant,
                CreateInstance {
                    workflow_id: workflow.into(),
                    org_id: None,
                    parent_id: None,
                    title: title.into(),
                    data: serde_json::json!({}),
                    call_id: Some(self.call),
                    catalogue_item: catalogue_item.map(Into::into),
                },
            )
            .await
            .unwrap()
    }

    /// Move the clock to `at` and run one pass there.
    pub async fn run_at(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        self.scheduler.run_once(at).await.unwrap();
        let arrived = self.smtp.received_count();
        self.pass_ends.lock().unwrap().push(arrived);
    }

    /// (recipient, subject) of the deadline e-mails (not the transition notices) so far,
    /// pass by pass. Within one pass they are sorted: timers due at the same moment fire
    /// in parallel batches, so their mail has no order a reader could rely on.
    pub fn deadline_mail(&self) -> Vec<(String, String)> {
        let received = self.smtp.received();
        let mut ends = self.pass_ends.lock().unwrap().clone();
        ends.push(received.len());
        let mut mail = Vec::new();
        let mut start = 0;
        for end in ends {
            let mut pass: Vec<(String, String)> = received[start..end]
                .iter()
                .filter(|m| !m.subject.starts_with("【项目动态】"))
                .map(|m| (to(m), m.subject.clone()))
                .collect();
            pass.sort();
            mail.extend(pass);
            start = end;
        }
        mail
    }
}

/// The recipient address of a received message.
pub fn to(m: &ReceivedEmail) -> String {
    m.to.first().map(|a| a.address.clone()).unwrap_or_default()
}
