//! The world of a service-level test: a fresh database, [`Services`] over it with the
//! workflows the test names (saved in the store), the working-day calendar and a manual
//! clock, and the few steps every such test takes to set itself up — organisations,
//! users, a call — and to fire events at an instance's current version.
//!
//! Each test builds the organisations and users its story needs on top of it (their names
//! show in what the test asserts); a test's own world holds a `ServiceWorld` and those.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use grantflow_domain::Registry;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::programme::OpenCall;
use grantflow_service::{FireEvent, ManualClock, ServiceResult, Services};
use grantflow_store::{
    Instance, Lang, NewOrganisation, NewUser, OrgKind, Organisation, Role, Store, User,
};
use serde_json::Value;
use uuid::Uuid;

use crate::{Backend, TestDb, registry, start_time};

/// The password hash of the users a service test creates: a well-formed argon2id string
/// that no password matches (service tests never log in).
pub const NO_PASSWORD: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

/// Services on a fresh database, with their manual clock; the database lives as long as
/// the world.
pub struct ServiceWorld {
    pub services: Services,
    pub clock: Arc<ManualClock>,
    pub db: TestDb,
}

impl ServiceWorld {
    /// The shipped workflows ([`registry`]), the clock at [`start_time`].
    pub async fn new(backend: Backend) -> Self {
        Self::with(backend, registry(), start_time()).await
    }

    /// The workflows of `registry`, saved in the store; the clock at `start`.
    pub async fn with(backend: Backend, registry: Registry, start: DateTime<Utc>) -> Self {
        let db = TestDb::new(backend).await;
        let clock = Arc::new(ManualClock::new(start));
        let services = Services::new(
            db.shared(),
            Arc::new(registry),
            Arc::new(WorkCalendar::builtin()),
            clock.clone(),
        );
        services.register_workflows().await.expect("save workflows");
        Self {
            services,
            clock,
            db,
        }
    }

    /// The same world, its e-mails linking to `url`.
    #[must_use]
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.services = self.services.with_public_url(url);
        self
    }

    pub fn store(&self) -> &dyn Store {
        self.services.store.as_ref()
    }

    /// Services over `store` with the workflows of `registry`, on this world's clock and
    /// public address: another server (a second process, an older version) beside this
    /// one.
    pub fn services_on(&self, store: Arc<dyn Store>, registry: Registry) -> Services {
        Services::new(
            store,
            Arc::new(registry),
            Arc::new(WorkCalendar::builtin()),
            self.clock.clone(),
        )
        .with_public_url(&self.services.public_url)
    }

    pub async fn org(
        &self,
        name: &str,
        kind: OrgKind,
        parent: Option<&Organisation>,
    ) -> Organisation {
        self.store()
            .create_org(NewOrganisation {
                name: name.into(),
                kind,
                parent_id: parent.map(|p| p.id),
            })
            .await
            .unwrap()
    }

    /// A user as [`new_user`] describes it.
    pub async fn user(&self, name: &str, org: Option<&Organisation>, roles: &[Role]) -> User {
        self.add_user(new_user(name, org, roles)).await
    }

    pub async fn add_user(&self, user: NewUser) -> User {
        self.store().create_user(user).await.unwrap()
    }

    /// Open `call` as `manager`; its id.
    pub async fn open_call(&self, manager: &User, call: OpenCall) -> Uuid {
        crate::open_call(&self.services, manager, call).await
    }

    /// Fire `event` on instance `id` at its current version, as `who`, giving `reason`.
    pub async fn fire_with(
        &self,
        who: &User,
        id: Uuid,
        event: &str,
        input: Value,
        reason: Option<&str>,
    ) -> ServiceResult<Instance> {
        let current = self.store().get_instance(id).await.unwrap();
        self.services
            .fire(
                who,
                FireEvent {
                    instance_id: id,
                    event: event.into(),
                    expected_version: current.version,
                    idempotency_key: None,
                    input,
                    reason: reason.map(str::to_string),
                },
            )
            .await
            .map(|applied| applied.instance)
    }

    /// [`fire_with`](Self::fire_with) without a reason.
    pub async fn try_fire(
        &self,
        who: &User,
        id: Uuid,
        event: &str,
        input: Value,
    ) -> ServiceResult<Instance> {
        self.fire_with(who, id, event, input, None).await
    }

    /// [`try_fire`](Self::try_fire), which must succeed.
    pub async fn fire(&self, who: &User, id: Uuid, event: &str, input: Value) -> Instance {
        self.try_fire(who, id, event, input)
            .await
            .unwrap_or_else(|e| panic!("`{event}`: {e:?}"))
    }
}

/// A [`ServiceWorld`] with the people most programme stories need: 广东省市场监督管理局's
/// programme manager, the city bureau of 佛山市市场监督管理局 below it, and the applicant of
/// a unit in 佛山, 顺德家电产业知识产权联盟.
pub struct FoshanWorld {
    pub base: ServiceWorld,
    pub manager: User,
    pub city: User,
    pub applicant: User,
}
crate::extends!(FoshanWorld, base: ServiceWorld);

impl FoshanWorld {
    /// The people in `base`, named `usernames` (manager, city bureau, applicant) and made
    /// as [`new_user`] makes them, passed through `adjust`.
    pub async fn new(
        base: ServiceWorld,
        usernames: [&str; 3],
        adjust: impl Fn(NewUser) -> NewUser,
    ) -> Self {
        let province = base
            .org("广东省市场监督管理局", OrgKind::Province, None)
            .await;
        let city = base
            .org("佛山市市场监督管理局", OrgKind::City, Some(&province))
            .await;
        let unit = base
            .org("顺德家电产业知识产权联盟", OrgKind::Unit, Some(&city))
            .await;
        let [manager, city_bureau, applicant] = usernames;
        let person = |name, org, role| base.add_user(adjust(new_user(name, Some(org), &[role])));
        let manager = person(manager, &province, Role::Manager).await;
        let city = person(city_bureau, &city, Role::City).await;
        let applicant = person(applicant, &unit, Role::Applicant).await;
        Self {
            base,
            manager,
            city,
            applicant,
        }
    }
}

/// A user named `name` (display name `{name} 用户`, address `{name}@example.org`,
/// Simplified Chinese) in `org` with `roles`; change fields with
/// `NewUser { email: …, ..new_user(…) }`.
pub fn new_user(name: &str, org: Option<&Organisation>, roles: &[Role]) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: format!("{name} 用户"),
        email: format!("{name}@example.org"),
        org_id: org.map(|o| o.id),
        roles: roles.to_vec(),
        password_hash: NO_PASSWORD.into(),
        lang: Lang::ZhCn,
    }
}

/// Lets a test's own world, holding a world of the test kit in `$field` beside what the
/// test adds, be used as that one (`w.services`, `w.clock`, `w.fire(…)`, `w.manager`):
/// `grantflow_testkit::extends!(World, base: ServiceWorld);`.
#[macro_export]
macro_rules! extends {
    ($world:ty, $field:ident: $base:ty) => {
        impl ::std::ops::Deref for $world {
            type Target = $base;
            fn deref(&self) -> &$base {
                &self.$field
            }
        }
    };
}
