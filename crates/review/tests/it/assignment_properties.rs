//! Properties of expert assignment over random pools and applications.
//!
//! 1. No assignment, however made (draw, replacement, manual), pairs an expert with an
//!    application they conflict with. Conflicts are judged here by an oracle written from
//!    the rules, independently of `grantflow_review::conflict`.
//! 2. With enough eligible experts, the draw keeps workloads within one of each other.
//! 3. The same seed gives the same draw.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use grantflow_review::assignment::{
    DrawContext, Pick, assign_manually, draw_panels, draw_replacement,
};
use grantflow_review::conflict::{Application, ConflictScope, DeclaredConflict};
use grantflow_review::expert::{Category, Collaboration, Expert, ExpertStatus, ReviewPolicy};
use grantflow_review::lifecycle::{Action, Actor, Assignment};
use proptest::prelude::*;

const ROUND: &str = "application-review";
const CALL: &str = "call-2024";
const KEYWORDS: [&str; 6] = ["专利导航", "质押融资", "商标", "运营", "保护", "标准"];

fn today() -> NaiveDate {
    "2024-07-01".parse().unwrap()
}

fn now() -> DateTime<Utc> {
    "2024-07-01T02:00:00Z".parse().unwrap()
}

fn org(i: usize) -> String {
    format!("org-{i}")
}

fn keywords(mask: u8) -> Vec<String> {
    KEYWORDS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, k)| k.to_string())
        .collect()
}

/// Experts drawn from 6 organisations, so conflicts are common.
fn arb_expert(index: usize) -> impl Strategy<Value = Expert> {
    (
        0..6usize,
        prop::collection::btree_set(1..=8u8, 1..3),
        any::<u8>(),
        0..5u32,
        prop_oneof![
            6 => Just(ExpertStatus::Active),
            1 => Just(ExpertStatus::Suspended),
            1 => Just(ExpertStatus::Retired),
        ],
        prop::collection::vec((0..6usize, -2000i64..400), 0..3),
    )
        .prop_map(
            move |(org_i, categories, kw, cap, status, collaborations)| Expert {
                id: format!("e{index:02}"),
                org_id: org(org_i),
                categories: categories
                    .into_iter()
                    .map(|c| Category::new(c).unwrap())
                    .collect(),
                keywords: keywords(kw),
                workload_cap: cap,
                status,
                collaborations: collaborations
                    .into_iter()
                    .map(|(o, offset)| Collaboration {
                        org_id: org(o),
                        until: shift(today(), offset),
                    })
                    .collect(),
            },
        )
}

fn shift(date: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        date + Days::new(days as u64)
    } else {
        date - Days::new(days.unsigned_abs())
    }
}

/// Applications: most in the call, some in another call; participants are drawn from
/// expert ids and outsiders.
fn arb_application(index: usize, experts: usize) -> impl Strategy<Value = Application> {
    (
        0..6usize,
        1..=8u8,
        any::<u8>(),
        prop::collection::vec(0..6usize, 0..4),
        prop::collection::vec(0..experts + 3, 0..3),
        prop::bool::weighted(0.85),
    )
        .prop_map(
            move |(org_i, category, kw, excluded, participants, in_call)| Application {
                id: format!("a{index:02}"),
                call_id: if in_call {
                    CALL.into()
                } else {
                    "call-2023".into()
                },
                applicant_org_id: org(org_i),
                category: Category::new(category).unwrap(),
                keywords: keywords(kw),
                excluded_org_ids: excluded.into_iter().map(org).collect(),
                participant_ids: participants
                    .into_iter()
                    .map(|p| {
                        if p < experts {
                            format!("e{p:02}")
                        } else {
                            format!("outsider-{p}")
                        }
                    })
                    .collect(),
            },
        )
}

#[derive(Debug, Clone)]
struct World {
    experts: Vec<Expert>,
    applications: Vec<Application>,
    standing_declarations: Vec<(usize, usize)>,
    /// Per pick: 0 keep, 1 decline, 2 declare a conflict, 3 overdue.
    fates: Vec<u8>,
    manual_requests: Vec<(usize, Vec<usize>)>,
    seed: u64,
}

fn arb_world() -> impl Strategy<Value = World> {
    (1..16usize, 1..9usize)
        .prop_flat_map(|(n_experts, n_apps)| {
            let experts: Vec<_> = (0..n_experts).map(arb_expert).collect();
            let apps: Vec<_> = (0..n_apps).map(|i| arb_application(i, n_experts)).collect();
            (
                experts,
                apps,
                prop::collection::vec((0..n_experts, 0..6usize), 0..4),
                prop::collection::vec(0..4u8, 0..40),
                prop::collection::vec(
                    (0..n_apps, prop::collection::vec(0..n_experts + 1, 1..4)),
                    0..5,
                ),
                any::<u64>(),
            )
        })
        .prop_map(
            |(experts, applications, standing_declarations, fates, manual_requests, seed)| World {
                experts,
                applications,
                standing_declarations,
                fates,
                manual_requests,
                seed,
            },
        )
}

/// The conflict rules, written out independently of the crate.
fn oracle_conflicts(
    expert: &Expert,
    application: &Application,
    all: &[Application],
    declared: &[DeclaredConflict],
) -> bool {
    let same_org = expert.org_id == application.applicant_org_id;
    let excluded = application.excluded_org_ids.contains(&expert.org_id);
    let collaborated = expert.collaborations.iter().any(|c| {
        c.org_id == application.applicant_org_id
            && today() <= c.until.checked_add_months(Months::new(36)).unwrap()
    });
    let competes = all
        .iter()
        .any(|a| a.call_id == application.call_id && a.participant_ids.contains(&expert.id));
    let declared_here = declared.iter().any(|d| {
        d.expert_id == expert.id
            && match &d.scope {
                ConflictScope::Application { application_id } => *application_id == application.id,
                ConflictScope::Organisation { org_id } => *org_id == application.applicant_org_id,
            }
    });
    same_org || excluded || collaborated || competes || declared_here
}

fn context<'a>(
    world: &'a World,
    declared: &'a [DeclaredConflict],
    existing: &'a [Assignment],
    policy: &'a ReviewPolicy,
) -> DrawContext<'a> {
    DrawContext {
        round_id: ROUND,
        experts: &world.experts,
        call_applications: &world.applications,
        declared_conflicts: declared,
        existing,
        policy,
        today: today(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_assignment_ever_pairs_an_expert_with_a_conflicting_application(world in arb_world()) {
        let policy = ReviewPolicy::default();
        let mut declared: Vec<DeclaredConflict> = world
            .standing_declarations
            .iter()
            .map(|(e, o)| DeclaredConflict {
                expert_id: world.experts[*e].id.clone(),
                scope: ConflictScope::Organisation { org_id: org(*o) },
                reason: "曾任职".into(),
                declared_at: now(),
            })
            .collect();
        let mut assignments: Vec<Assignment> = Vec::new();
        // Every pick, with the declarations known when it was made.
        let mut made: Vec<(Pick, Vec<DeclaredConflict>)> = Vec::new();
        let in_call: Vec<String> = world
            .applications
            .iter()
            .filter(|a| a.call_id == CALL)
            .map(|a| a.id.clone())
            .collect();

        // 1. Draw panels.
        let outcome = draw_panels(
            &context(&world, &declared, &assignments, &policy),
            &in_call,
            3,
            world.seed,
        )
        .unwrap();
        for pick in outcome.picks {
            assignments.push(pick.to_assignment(now()));
            made.push((pick, declared.clone()));
        }

        // 2. Some experts decline, declare a conflict or run late.
        for (i, fate) in world.fates.iter().enumerate() {
            let Some(a) = assignments.get(i) else { break };
            let me = Actor::Expert { id: a.expert_id().to_string() };
            let next = match fate {
                1 => a.apply(Action::Decline { reason: None }, &me, now()),
                2 => a.apply(Action::DeclareConflict { reason: "亲属关系".into() }, &me, now()),
                3 => a.apply(Action::MarkOverdue, &Actor::System, now()),
                _ => continue,
            }
            .unwrap();
            declared.extend(next.declared_conflict());
            assignments[i] = next;
        }

        // 3. Replace every one of them.
        for i in 0..assignments.len() {
            if !assignments[i].state().needs_replacement() {
                continue;
            }
            let leaving = assignments[i].clone();
            let seed = world.seed.wrapping_add(i as u64);
            let ctx = context(&world, &declared, &assignments, &policy);
            if let Ok(pick) = draw_replacement(&ctx, &leaving, seed) {
                assignments[i] = leaving
                    .apply(Action::Replace { by: pick.expert_id.clone() }, &Actor::System, now())
                    .unwrap();
                assignments.push(pick.to_assignment(now()));
                made.push((pick, declared.clone()));
            }
        }

        // 4. A manager tries to put chosen experts on panels.
        for (app, experts) in &world.manual_requests {
            let ids: Vec<String> = experts
                .iter()
                .map(|e| world.experts.get(*e).map_or("unknown".to_string(), |x| x.id.clone()))
                .collect();
            let ctx = context(&world, &declared, &assignments, &policy);
            let application_id = world.applications[*app].id.clone();
            if let Ok(picks) = assign_manually(&ctx, &application_id, &ids) {
                for pick in picks {
                    assignments.push(pick.to_assignment(now()));
                    made.push((pick, declared.clone()));
                }
            }
        }

        for (pick, declared_then) in &made {
            let expert = world.experts.iter().find(|e| e.id == pick.expert_id).unwrap();
            let application = world
                .applications
                .iter()
                .find(|a| a.id == pick.application_id)
                .unwrap();
            prop_assert!(
                !oracle_conflicts(expert, application, &world.applications, declared_then),
                "{} was put on {} despite a conflict",
                expert.id,
                application.id
            );
            prop_assert_eq!(expert.status, ExpertStatus::Active);
        }
        // No expert sits twice on one panel.
        let seats: BTreeSet<(&str, &str)> = assignments
            .iter()
            .map(|a| (a.application_id(), a.expert_id()))
            .collect();
        prop_assert_eq!(seats.len(), assignments.len());
    }

    #[test]
    fn draw_keeps_loads_within_one_when_experts_suffice(
        n_experts in 3..25usize,
        n_apps in 1..40usize,
        panel_size in 3..6u32,
        expertise in prop::collection::vec((1..=8u8, any::<u8>()), 25),
        app_expertise in prop::collection::vec((1..=8u8, any::<u8>()), 40),
        split in 0..40usize,
        seeds in (any::<u64>(), any::<u64>()),
    ) {
        prop_assume!(n_experts as u32 >= panel_size);
        let policy = ReviewPolicy::default();
        let experts: Vec<Expert> = (0..n_experts)
            .map(|i| Expert {
                id: format!("e{i:02}"),
                org_id: format!("expert-org-{i}"),
                categories: [Category::new(expertise[i].0).unwrap()].into(),
                keywords: keywords(expertise[i].1),
                workload_cap: 1000,
                status: ExpertStatus::Active,
                collaborations: vec![],
            })
            .collect();
        let applications: Vec<Application> = (0..n_apps)
            .map(|i| Application {
                id: format!("a{i:02}"),
                call_id: CALL.into(),
                applicant_org_id: format!("applicant-{i}"),
                category: Category::new(app_expertise[i].0).unwrap(),
                keywords: keywords(app_expertise[i].1),
                excluded_org_ids: vec![],
                participant_ids: vec![],
            })
            .collect();
        let ids: Vec<String> = applications.iter().map(|a| a.id.clone()).collect();
        let (first, second) = ids.split_at(split.min(n_apps));
        let mut assignments = Vec::new();
        // Two sessions of drawing: the second starts from the loads the first left.
        for (batch, seed) in [(first, seeds.0), (second, seeds.1)] {
            let ctx = DrawContext {
                round_id: ROUND,
                experts: &experts,
                call_applications: &applications,
                declared_conflicts: &[],
                existing: &assignments,
                policy: &policy,
                today: today(),
            };
            let outcome = draw_panels(&ctx, batch, panel_size, seed).unwrap();
            prop_assert!(outcome.is_complete());
            assignments.extend(outcome.picks.iter().map(|p| p.to_assignment(now())));
        }
        let mut loads: BTreeMap<&str, u32> = experts.iter().map(|e| (e.id.as_str(), 0)).collect();
        for a in &assignments {
            *loads.get_mut(a.expert_id()).unwrap() += 1;
        }
        let max = loads.values().max().unwrap();
        let min = loads.values().min().unwrap();
        prop_assert!(max - min <= 1, "loads {:?}", loads);
        prop_assert_eq!(assignments.len(), n_apps * panel_size as usize);
    }

    #[test]
    fn same_seed_same_draw(world in arb_world()) {
        let policy = ReviewPolicy::default();
        let ids: Vec<String> = world
            .applications
            .iter()
            .filter(|a| a.call_id == CALL)
            .map(|a| a.id.clone())
            .collect();
        let ctx = context(&world, &[], &[], &policy);
        let once = draw_panels(&ctx, &ids, 3, world.seed).unwrap();
        let twice = draw_panels(&ctx, &ids, 3, world.seed).unwrap();
        prop_assert_eq!(once, twice);
    }
}
