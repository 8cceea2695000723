//! The organisation tree the API tests share: a province, two cities, two units and an
//! expert's university, with one user per role, all with the password [`PASSWORD`].

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use grantflow_store::{Lang, NewOrganisation, NewUser, OrgKind, Organisation, Role, Store, User};

pub const PASSWORD: &str = "Demo-password-2024";

pub struct Seed {
    pub province: Organisation,
    pub guangzhou: Organisation,
    pub shenzhen: Organisation,
    pub unit_a: Organisation,
    pub unit_b: Organisation,
    pub users: Vec<User>,
}

impl Seed {
    pub fn user(&self, username: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.username == username)
            .expect("seeded user")
    }
}

/// Hashing with argon2 is slow on purpose; every seeded user shares one hash.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| grantflow_api::auth::hash_password(PASSWORD))
}

/// The instant the tests' clocks start at: Monday 3 June 2024, 10:00 in Shanghai.
pub fn start_time() -> DateTime<Utc> {
    "2024-06-03T02:00:00Z".parse().unwrap()
}

pub async fn seed(store: &dyn Store) -> Seed {
    let org = |name: &str, kind, parent: Option<&Organisation>| NewOrganisation {
        name: name.to_string(),
        kind,
        parent_id: parent.map(|p| p.id),
    };
    let province = store
        .create_org(org("广东省市场监督管理局", OrgKind::Province, None))
        .await
        .unwrap();
    let guangzhou = store
        .create_org(org("广州市市场监督管理局", OrgKind::City, Some(&province)))
        .await
        .unwrap();
    let shenzhen = store
        .create_org(org("深圳市市场监督管理局", OrgKind::City, Some(&province)))
        .await
        .unwrap();
    let unit_a = store
        .create_org(org("广州知识产权服务中心", OrgKind::Unit, Some(&guangzhou)))
        .await
        .unwrap();
    let unit_b = store
        .create_org(org("深圳专利运营有限公司", OrgKind::Unit, Some(&shenzhen)))
        .await
        .unwrap();
    let expert_org = store
        .create_org(org("华南理工大学", OrgKind::Unit, Some(&guangzhou)))
        .await
        .unwrap();
    let specs: Vec<(&str, Role, Option<&Organisation>)> = vec![
        ("admin", Role::Admin, Some(&province)),
        ("manager", Role::Manager, Some(&province)),
        ("auditor", Role::Auditor, Some(&province)),
        ("city_gz", Role::City, Some(&guangzhou)),
        ("city_sz", Role::City, Some(&shenzhen)),
        ("applicant_a", Role::Applicant, Some(&unit_a)),
        ("applicant_b", Role::Applicant, Some(&unit_b)),
        ("expert1", Role::Expert, Some(&expert_org)),
        ("expert2", Role::Expert, Some(&expert_org)),
        ("expert3", Role::Expert, Some(&expert_org)),
    ];
    let mut users = Vec::new();
    for (name, role, org) in specs {
        users.push(
            store
                .create_user(NewUser {
                    username: name.to_string(),
                    display_name: format!("{name} 用户"),
                    email: format!("{name}@example.gov.cn"),
                    org_id: org.map(|o| o.id),
                    roles: vec![role],
                    password_hash: password_hash().to_string(),
                    lang: Lang::ZhCn,
                })
                .await
                .unwrap(),
        );
    }
    Seed {
        province,
        guangzhou,
        shenzhen,
        unit_a,
        unit_b,
        users,
    }
}
