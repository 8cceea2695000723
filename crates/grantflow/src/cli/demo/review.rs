//! The expert review part of `grantflow demo`: the expert pool (expert1..3 and
//! two more experts, so panels of three can be drawn around conflicts of interest), and
//! real review rounds — a seeded draw, each expert declaring no conflict and scoring on
//! the rubric — instead of a stored result. The first round shows a recusal with an
//! automatic replacement; projects left in expert review have a panel at work.

use anyhow::Context;
use grantflow_review::scoring::{CriterionScore, ScoreSheet};
use grantflow_service::review::ProfileUpdate;
use grantflow_store::{Lang, NewOrganisation, NewUser, OrgKind, Organisation, Role, User};
use uuid::Uuid;

use super::Demo;

/// Experts added to the demo accounts: (username, name, organisation).
pub(super) const MORE_EXPERTS: [(&str, &str, &str); 2] = [
    ("expert4", "赵研究员", "中山大学知识产权研究院"),
    ("expert5", "孙律师", "广东工业大学法学院"),
];

/// Create the extra experts and put every expert into the pool (categories, keywords,
/// workload cap). Returns the extra users and their organisations.
pub(super) async fn pool(
    demo: &Demo,
    city: &Organisation,
    password_hash: &str,
) -> anyhow::Result<Vec<(User, Organisation)>> {
    let store = demo.services.store.as_ref();
    let mut extra = Vec::new();
    for (username, name, org) in MORE_EXPERTS {
        let org = store
            .create_org(NewOrganisation {
                name: org.into(),
                kind: OrgKind::Unit,
                parent_id: Some(city.id),
            })
            .await?;
        let user = store
            .create_user(NewUser {
                username: username.into(),
                display_name: name.into(),
                email: format!("{username}@demo.grantflow.local"),
                org_id: Some(org.id),
                roles: vec![Role::Expert],
                password_hash: password_hash.to_string(),
                lang: Lang::ZhCn,
            })
            .await?;
        extra.push((user, org));
    }
    let reviews = demo.services.reviews();
    let profiles: [(&str, &[u8], &[&str]); 5] = [
        ("expert1", &[2, 3, 4], &["专利", "知识产权保护"]),
        ("expert2", &[1, 4, 6], &["知识产权运营", "质押融资"]),
        ("expert3", &[3, 5], &["维权援助", "纠纷调解"]),
        ("expert4", &[2, 6, 8], &["战略规划", "文化传播"]),
        ("expert5", &[3, 5, 7], &["涉外维权", "代理监管"]),
    ];
    for (username, categories, keywords) in profiles {
        let user_id = match extra.iter().find(|(u, _)| u.username == username) {
            Some((u, _)) => u.id,
            None => demo.user(username).id,
        };
        reviews
            .upsert_expert_profile(
                demo.user("manager"),
                ProfileUpdate {
                    user_id,
                    categories: categories.to_vec(),
                    keywords: keywords.iter().map(ToString::to_string).collect(),
                    workload_cap: 8,
                    status: "active".into(),
                },
            )
            .await
            .with_context(|| format!("the profile of {username}"))?;
    }
    Ok(extra)
}

fn sheet(total: f64) -> ScoreSheet {
    ScoreSheet::new()
        .with("necessity", CriterionScore::new(total + 2.0))
        .with("feasibility", CriterionScore::new(total - 2.0))
        .with("performance_targets", CriterionScore::new(total))
        .with("budget", CriterionScore::new(total))
}

/// Draw a panel for the project in expert review and let `scoring` of its experts declare
/// no conflict and score; with `recusal`, the first drawn expert declares a conflict
/// first and is replaced.
pub(super) async fn panel(
    demo: &Demo,
    extra: &[(User, Organisation)],
    id: Uuid,
    scoring: usize,
    recusal: bool,
) -> anyhow::Result<()> {
    let reviews = demo.services.reviews();
    let seed = u64::from_le_bytes(id.as_bytes()[8..16].try_into().unwrap_or([0; 8])) >> 11;
    let drawn = reviews
        .auto_assign(demo.user("manager"), id, Some(seed))
        .await
        .context("drawing a review panel")?;
    let expert = |id: Uuid| -> anyhow::Result<User> {
        extra
            .iter()
            .map(|(u, _)| u)
            .chain(demo.users.iter())
            .find(|u| u.id == id)
            .cloned()
            .context("a demo expert")
    };
    let mut seats: Vec<(Uuid, Uuid)> = drawn
        .assignments
        .iter()
        .map(|a| (a.id, a.expert_id))
        .collect();
    if recusal && let Some((first, who)) = seats.first().copied() {
        let left = reviews
            .declare_conflict(&expert(who)?, first, "曾为申报单位提供知识产权咨询服务")
            .await
            .context("declaring a conflict")?;
        seats.remove(0);
        if let Some(r) = left.replacement {
            seats.push((r.id, r.expert_id));
        }
    }
    for (k, (assignment, who)) in seats.into_iter().take(scoring).enumerate() {
        let who = expert(who)?;
        reviews
            .declare_no_conflict(&who, assignment)
            .await
            .context("declaring no conflict")?;
        reviews
            .submit_scores(&who, assignment, sheet(76.0 + 3.0 * k as f64), None)
            .await
            .context("scoring")?;
    }
    Ok(())
}
