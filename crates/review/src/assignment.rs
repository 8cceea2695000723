//! Assigning experts to applications: manual picks by a manager, a seeded random draw, and
//! replacement of one expert.
//!
//! Both ways apply the same eligibility rules ([`check_eligibility`]): the expert is
//! active, has no conflict (rule-based or declared), is under their workload cap and has
//! never sat on this application's panel in this round (so a declined, recused or replaced
//! expert is not drawn again for it).
//!
//! The draw ([`draw_panels`], [`draw_replacement`]) fills each seat in turn:
//! 1. among eligible experts, keep those with the lowest current load;
//! 2. among those, keep the best expertise match: category first, then the number of shared
//!    keywords;
//! 3. pick one of those uniformly at random.
//!
//! Load comes first, so the draw keeps loads balanced; expertise decides among equally
//! loaded experts. The randomness comes from a ChaCha20 stream whose 256-bit key is
//! expanded from the recorded `u64` seed with SplitMix64, and indices are drawn by
//! rejection sampling on raw 64-bit outputs, so a draw depends only on the data and the
//! seed, never on the `rand` crate's sampling code ([`DRAW_ALGORITHM`]). Experts and
//! applications are processed sorted by id, so the order of the input does not matter.
//!
//! Kept as one file: it passes 800 lines only with its unit tests (the `tests` module at
//! the end).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::Lang;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::conflict::{Application, ConflictReason, DeclaredConflict, all_conflicts};
use crate::error::ReviewError;
use crate::expert::{Expert, ExpertStatus, ReviewPolicy, normalised_keywords};
use crate::lifecycle::Assignment;
use crate::{ApplicationId, ExpertId, RoundId};

/// The smallest panel a round may have.
pub const MIN_PANEL_SIZE: u32 = 3;

/// Names the draw procedure, to be recorded with every seed: a seed reproduces a draw only
/// under the same procedure.
pub const DRAW_ALGORITHM: &str = "chacha20-splitmix64/least-loaded-then-expertise/v1";

/// Everything assignment needs to know about a round, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct DrawContext<'a> {
    pub round_id: &'a str,
    /// The expert pool.
    pub experts: &'a [Expert],
    /// The applications of the call (for conflicts and to look applications up by id).
    pub call_applications: &'a [Application],
    /// Conflicts experts declared: standing ones and those from assignments
    /// ([`Assignment::declared_conflict`]).
    pub declared_conflicts: &'a [DeclaredConflict],
    /// Existing assignments: every assignment of this round (for panels), plus whatever
    /// else should count toward the experts' workload.
    pub existing: &'a [Assignment],
    pub policy: &'a ReviewPolicy,
    /// The date conflicts are judged on (Asia/Shanghai).
    pub today: NaiveDate,
}

/// How well an expert's expertise fits an application. Ordered: a category match beats
/// any number of shared keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExpertiseMatch {
    pub category: bool,
    pub keyword_overlap: u32,
}

/// One expert chosen for one application, with the facts the choice was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    pub round_id: RoundId,
    pub application_id: ApplicationId,
    pub expert_id: ExpertId,
    pub expertise: ExpertiseMatch,
    /// The expert's load just before this pick.
    pub load_before: u32,
}

impl Pick {
    /// The assignment this pick creates.
    pub fn to_assignment(&self, now: DateTime<Utc>) -> Assignment {
        Assignment::new(&self.round_id, &self.application_id, &self.expert_id, now)
    }
}

/// An application whose panel could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortfall {
    pub application_id: ApplicationId,
    /// Seats that were open before the draw.
    pub needed: u32,
    /// Seats the draw filled.
    pub drawn: u32,
}

/// The result of [`draw_panels`]: to be stored with the seed and algorithm so it can be
/// reproduced and audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawOutcome {
    pub seed: u64,
    pub algorithm: String,
    pub panel_size: u32,
    /// Picks in the order they were drawn.
    pub picks: Vec<Pick>,
    /// Panels left short for want of eligible experts; empty when every panel is full.
    pub shortfalls: Vec<Shortfall>,
}

impl DrawOutcome {
    pub fn is_complete(&self) -> bool {
        self.shortfalls.is_empty()
    }
}

/// Why an expert may not be put on an application's panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RefusalReason {
    UnknownExpert,
    Inactive {
        status: ExpertStatus,
    },
    Conflict {
        reasons: Vec<ConflictReason>,
    },
    OverCap {
        load: u32,
        cap: u32,
    },
    /// On this application's panel now or before (also when named twice in one request).
    AlreadyOnPanel,
}

/// A refused expert, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub expert_id: ExpertId,
    pub reasons: Vec<RefusalReason>,
}

impl RefusalReason {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownExpert => "EXPERT_UNKNOWN",
            Self::Inactive { .. } => "EXPERT_INACTIVE",
            Self::Conflict { .. } => "EXPERT_CONFLICT",
            Self::OverCap { .. } => "EXPERT_OVER_CAP",
            Self::AlreadyOnPanel => "EXPERT_ALREADY_ON_PANEL",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (Self::UnknownExpert, Lang::ZhCn) => "专家库中没有该专家".into(),
            (Self::UnknownExpert, Lang::En) => "no such expert in the pool".into(),
            (Self::Inactive { status }, lang) => match lang {
                Lang::ZhCn => format!("专家当前状态为“{}”，不能分配", status.title().zh_cn),
                Lang::En => format!("the expert is {} and cannot be assigned", status.title().en),
            },
            (Self::Conflict { reasons }, lang) => {
                let list: Vec<String> = reasons.iter().map(|r| r.message(lang)).collect();
                match lang {
                    Lang::ZhCn => format!("存在利益冲突，须回避：{}", list.join("；")),
                    Lang::En => format!("conflict of interest: {}", list.join("; ")),
                }
            }
            (Self::OverCap { load, cap }, Lang::ZhCn) => {
                format!("专家已承担 {load} 项评审，达到上限 {cap} 项")
            }
            (Self::OverCap { load, cap }, Lang::En) => {
                format!("the expert already has {load} reviews, the cap is {cap}")
            }
            (Self::AlreadyOnPanel, Lang::ZhCn) => "专家已在（或曾在）该申报的评审组中".into(),
            (Self::AlreadyOnPanel, Lang::En) => {
                "the expert is or was on this application's panel".into()
            }
        }
    }
}

/// Current load per expert: assignments that count toward load
/// ([`crate::lifecycle::AssignmentState::counts_toward_load`]).
pub fn current_loads(assignments: &[Assignment]) -> BTreeMap<ExpertId, u32> {
    let mut loads = BTreeMap::new();
    for a in assignments {
        if a.state().counts_toward_load() {
            *loads.entry(a.expert_id().to_string()).or_insert(0) += 1;
        }
    }
    loads
}

/// How well `expert` fits `application`.
pub fn expertise_match(expert: &Expert, application: &Application) -> ExpertiseMatch {
    let mine = normalised_keywords(&expert.keywords);
    let theirs = normalised_keywords(&application.keywords);
    ExpertiseMatch {
        category: expert.categories.contains(&application.category),
        keyword_overlap: mine.intersection(&theirs).count() as u32,
    }
}

/// Mutable bookkeeping of a draw or manual assignment: loads and panels as picks are made.
struct Board {
    loads: BTreeMap<ExpertId, u32>,
    /// Experts ever on each application's panel in this round.
    ever_on_panel: BTreeMap<ApplicationId, BTreeSet<ExpertId>>,
    /// Seats counting toward the panel size, per application.
    seats: BTreeMap<ApplicationId, u32>,
}

impl Board {
    fn new(ctx: &DrawContext<'_>) -> Self {
        let mut ever_on_panel: BTreeMap<ApplicationId, BTreeSet<ExpertId>> = BTreeMap::new();
        let mut seats = BTreeMap::new();
        for a in ctx.existing.iter().filter(|a| a.round_id() == ctx.round_id) {
            ever_on_panel
                .entry(a.application_id().to_string())
                .or_default()
                .insert(a.expert_id().to_string());
            if a.state().counts_toward_load() {
                *seats.entry(a.application_id().to_string()).or_insert(0) += 1;
            }
        }
        Self {
            loads: current_loads(ctx.existing),
            ever_on_panel,
            seats,
        }
    }

    fn load(&self, expert_id: &str) -> u32 {
        self.loads.get(expert_id).copied().unwrap_or(0)
    }

    fn on_panel(&self, application_id: &str, expert_id: &str) -> bool {
        self.ever_on_panel
            .get(application_id)
            .is_some_and(|p| p.contains(expert_id))
    }

    fn seats(&self, application_id: &str) -> u32 {
        self.seats.get(application_id).copied().unwrap_or(0)
    }

    fn record(
        &mut self,
        ctx: &DrawContext<'_>,
        expert: &Expert,
        application: &Application,
    ) -> Pick {
        let load_before = self.load(&expert.id);
        *self.loads.entry(expert.id.clone()).or_insert(0) += 1;
        self.ever_on_panel
            .entry(application.id.clone())
            .or_default()
            .insert(expert.id.clone());
        *self.seats.entry(application.id.clone()).or_insert(0) += 1;
        Pick {
            round_id: ctx.round_id.to_string(),
            application_id: application.id.clone(),
            expert_id: expert.id.clone(),
            expertise: expertise_match(expert, application),
            load_before,
        }
    }

    fn refusals(
        &self,
        ctx: &DrawContext<'_>,
        expert: &Expert,
        application: &Application,
    ) -> Vec<RefusalReason> {
        let mut reasons = Vec::new();
        if !expert.is_active() {
            reasons.push(RefusalReason::Inactive {
                status: expert.status,
            });
        }
        let conflicts = all_conflicts(
            expert,
            application,
            ctx.call_applications,
            ctx.declared_conflicts,
            ctx.policy,
            ctx.today,
        );
        if !conflicts.is_empty() {
            reasons.push(RefusalReason::Conflict { reasons: conflicts });
        }
        let load = self.load(&expert.id);
        if load >= expert.workload_cap {
            reasons.push(RefusalReason::OverCap {
                load,
                cap: expert.workload_cap,
            });
        }
        if self.on_panel(&application.id, &expert.id) {
            reasons.push(RefusalReason::AlreadyOnPanel);
        }
        reasons
    }
}

/// Every reason `expert` may not join `application`'s panel now; an empty list means
/// eligible. The same check guards manual assignment, the draw and replacement.
pub fn check_eligibility(
    ctx: &DrawContext<'_>,
    expert: &Expert,
    application: &Application,
) -> Vec<RefusalReason> {
    Board::new(ctx).refusals(ctx, expert, application)
}

fn find_application<'a>(
    ctx: &DrawContext<'a>,
    application_id: &str,
) -> Result<&'a Application, ReviewError> {
    ctx.call_applications
        .iter()
        .find(|a| a.id == application_id)
        .ok_or_else(|| ReviewError::UnknownApplication {
            application_id: application_id.to_string(),
        })
}

/// A manager puts the named experts on an application's panel.
///
/// All or nothing: if any expert is unknown, inactive, conflicting, at their cap or already
/// on the panel, nothing is assigned and [`ReviewError::AssignmentRefused`] lists every
/// refused expert with every reason.
pub fn assign_manually(
    ctx: &DrawContext<'_>,
    application_id: &str,
    expert_ids: &[ExpertId],
) -> Result<Vec<Pick>, ReviewError> {
    let application = find_application(ctx, application_id)?;
    let mut board = Board::new(ctx);
    let mut picks = Vec::new();
    let mut refusals = Vec::new();
    for expert_id in expert_ids {
        let Some(expert) = ctx.experts.iter().find(|e| &e.id == expert_id) else {
            refusals.push(Refusal {
                expert_id: expert_id.clone(),
                reasons: vec![RefusalReason::UnknownExpert],
            });
            continue;
        };
        let reasons = board.refusals(ctx, expert, application);
        if reasons.is_empty() {
            picks.push(board.record(ctx, expert, application));
        } else {
            refusals.push(Refusal {
                expert_id: expert_id.clone(),
                reasons,
            });
        }
    }
    if refusals.is_empty() {
        Ok(picks)
    } else {
        Err(ReviewError::AssignmentRefused { refusals })
    }
}

/// The random stream of a draw; see the module documentation.
struct DrawRng(ChaCha20Rng);

impl DrawRng {
    fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        Self(ChaCha20Rng::from_seed(key))
    }

    /// Uniform index in `0..n` (n > 0), unbiased by rejecting the top partial block.
    fn index(&mut self, n: usize) -> usize {
        let n = n as u64;
        // 2^64 mod n: values at or above 2^64 − r would favour small indices.
        let r = (u64::MAX % n + 1) % n;
        loop {
            let x = self.0.next_u64();
            if r == 0 || x < 0u64.wrapping_sub(r) {
                return (x % n) as usize;
            }
        }
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Draws one expert for `application`, or `None` when nobody is eligible.
fn draw_one<'e>(
    ctx: &DrawContext<'_>,
    experts_by_id: &[&'e Expert],
    board: &Board,
    application: &Application,
    rng: &mut DrawRng,
) -> Option<&'e Expert> {
    let eligible: Vec<(&Expert, u32, ExpertiseMatch)> = experts_by_id
        .iter()
        .filter(|e| board.refusals(ctx, e, application).is_empty())
        .map(|e| (*e, board.load(&e.id), expertise_match(e, application)))
        .collect();
    let least_load = eligible.iter().map(|(_, load, _)| *load).min()?;
    let best_match = eligible
        .iter()
        .filter(|(_, load, _)| *load == least_load)
        .map(|(_, _, m)| *m)
        .max()?;
    let finalists: Vec<&Expert> = eligible
        .iter()
        .filter(|(_, load, m)| *load == least_load && *m == best_match)
        .map(|(e, _, _)| *e)
        .collect();
    Some(finalists[rng.index(finalists.len())])
}

fn sorted_experts<'e>(ctx: &DrawContext<'e>) -> Vec<&'e Expert> {
    let mut experts: Vec<&Expert> = ctx.experts.iter().collect();
    experts.sort_by(|a, b| a.id.cmp(&b.id));
    experts.dedup_by(|a, b| a.id == b.id);
    experts
}

/// Fills the panels of the given applications up to `panel_size` by a seeded draw.
///
/// Seats already taken (assignments of this round that count toward load) are kept;
/// only the open seats are drawn. Applications are processed in id order. When an
/// application cannot be filled, its seats are filled as far as possible and a
/// [`Shortfall`] is reported; the caller decides whether to keep a partial draw.
pub fn draw_panels(
    ctx: &DrawContext<'_>,
    application_ids: &[ApplicationId],
    panel_size: u32,
    seed: u64,
) -> Result<DrawOutcome, ReviewError> {
    if panel_size < MIN_PANEL_SIZE {
        return Err(ReviewError::PanelTooSmall {
            requested: panel_size,
            minimum: MIN_PANEL_SIZE,
        });
    }
    let ids: BTreeSet<&ApplicationId> = application_ids.iter().collect();
    let applications = ids
        .into_iter()
        .map(|id| find_application(ctx, id))
        .collect::<Result<Vec<_>, _>>()?;
    let experts = sorted_experts(ctx);
    let mut board = Board::new(ctx);
    let mut rng = DrawRng::new(seed);
    let mut picks = Vec::new();
    let mut shortfalls = Vec::new();
    for application in applications {
        let needed = panel_size.saturating_sub(board.seats(&application.id));
        let mut drawn = 0;
        while drawn < needed {
            let Some(expert) = draw_one(ctx, &experts, &board, application, &mut rng) else {
                break;
            };
            picks.push(board.record(ctx, expert, application));
            drawn += 1;
        }
        if drawn < needed {
            shortfalls.push(Shortfall {
                application_id: application.id.clone(),
                needed,
                drawn,
            });
        }
    }
    Ok(DrawOutcome {
        seed,
        algorithm: DRAW_ALGORITHM.to_string(),
        panel_size,
        picks,
        shortfalls,
    })
}

/// Draws a replacement for an expert who declined, declared a conflict or is overdue, by
/// the same rules as [`draw_panels`]. After storing the new assignment, apply
/// [`crate::lifecycle::Action::Replace`] to the old one.
pub fn draw_replacement(
    ctx: &DrawContext<'_>,
    leaving: &Assignment,
    seed: u64,
) -> Result<Pick, ReviewError> {
    if !leaving.state().needs_replacement() {
        return Err(ReviewError::NotReplaceable {
            state: leaving.state(),
        });
    }
    let application = find_application(ctx, leaving.application_id())?;
    let experts = sorted_experts(ctx);
    let mut board = Board::new(ctx);
    // The leaving expert is on the panel through `existing` if the caller included it;
    // make sure they are never drawn back even if not.
    board
        .ever_on_panel
        .entry(application.id.clone())
        .or_default()
        .insert(leaving.expert_id().to_string());
    let mut rng = DrawRng::new(seed);
    match draw_one(ctx, &experts, &board, application, &mut rng) {
        Some(expert) => Ok(board.record(ctx, expert, application)),
        None => Err(ReviewError::NotEnoughEligibleExperts {
            application_id: application.id.clone(),
            needed: 1,
            available: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expert::{Category, Collaboration};
    use crate::lifecycle::{Action, Actor, AssignmentState};

    fn today() -> NaiveDate {
        "2024-07-01".parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2024-07-01T02:00:00Z".parse().unwrap()
    }

    fn expert(id: &str, org: &str, category: u8, keywords: &[&str]) -> Expert {
        Expert {
            id: id.into(),
            org_id: org.into(),
            categories: [Category::new(category).unwrap()].into(),
            keywords: keywords.iter().map(ToString::to_string).collect(),
            workload_cap: 10,
            status: ExpertStatus::Active,
            collaborations: vec![],
        }
    }

    fn application(id: &str, org: &str, category: u8, keywords: &[&str]) -> Application {
        Application {
            id: id.into(),
            call_id: "2024".into(),
            applicant_org_id: org.into(),
            category: Category::new(category).unwrap(),
            keywords: keywords.iter().map(ToString::to_string).collect(),
            excluded_org_ids: vec![],
            participant_ids: vec![],
        }
    }

    fn ctx<'a>(
        experts: &'a [Expert],
        applications: &'a [Application],
        existing: &'a [Assignment],
        policy: &'a ReviewPolicy,
    ) -> DrawContext<'a> {
        DrawContext {
            round_id: "application-review",
            experts,
            call_applications: applications,
            declared_conflicts: &[],
            existing,
            policy,
            today: today(),
        }
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn manual_assignment_refuses_every_ineligible_expert_with_reasons() {
        let mut suspended = expert("e2", "o2", 3, &[]);
        suspended.status = ExpertStatus::Suspended;
        let mut busy = expert("e3", "o3", 3, &[]);
        busy.workload_cap = 1;
        let mut collaborator = expert("e4", "o4", 3, &[]);
        collaborator.collaborations.push(Collaboration {
            org_id: "applicant".into(),
            until: "2023-12-31".parse().unwrap(),
        });
        let experts = vec![
            expert("e1", "applicant", 3, &[]),
            suspended,
            busy,
            collaborator,
            expert("e5", "o5", 3, &[]),
        ];
        let apps = vec![
            application("a1", "applicant", 3, &[]),
            application("a2", "x", 3, &[]),
        ];
        let existing = vec![Assignment::new("other-round", "a2", "e3", now())];
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &existing, &policy);
        let err =
            assign_manually(&c, "a1", &ids(&["e1", "e2", "e3", "e4", "e5", "nobody"])).unwrap_err();
        assert_eq!(err.code(), "ASSIGNMENT_REFUSED");
        let ReviewError::AssignmentRefused { refusals } = err else {
            panic!("expected refusals")
        };
        let summary: Vec<(&str, Vec<&str>)> = refusals
            .iter()
            .map(|r| {
                (
                    r.expert_id.as_str(),
                    r.reasons.iter().map(super::RefusalReason::code).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("e1", vec!["EXPERT_CONFLICT"]),
                ("e2", vec!["EXPERT_INACTIVE"]),
                ("e3", vec!["EXPERT_OVER_CAP"]),
                ("e4", vec!["EXPERT_CONFLICT"]),
                ("nobody", vec!["EXPERT_UNKNOWN"]),
            ]
        );
        let picks = assign_manually(&c, "a1", &ids(&["e5"])).unwrap();
        assert_eq!(picks[0].expert_id, "e5");
        assert_eq!(
            picks[0].to_assignment(now()).state(),
            AssignmentState::Assigned
        );
    }

    #[test]
    fn manual_assignment_refuses_someone_already_on_the_panel_or_named_twice() {
        let experts = vec![expert("e1", "o1", 3, &[]), expert("e2", "o2", 3, &[])];
        let apps = vec![application("a1", "x", 3, &[])];
        let declined = Assignment::new("application-review", "a1", "e1", now())
            .apply(
                Action::Decline { reason: None },
                &Actor::Expert { id: "e1".into() },
                now(),
            )
            .unwrap();
        let existing = vec![declined];
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &existing, &policy);
        let err = assign_manually(&c, "a1", &ids(&["e1"])).unwrap_err();
        assert!(err.report().details[0].en.contains("panel"));
        let err = assign_manually(&c, "a1", &ids(&["e2", "e2"])).unwrap_err();
        let ReviewError::AssignmentRefused { refusals } = err else {
            panic!("expected refusals")
        };
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].reasons, vec![RefusalReason::AlreadyOnPanel]);
    }

    #[test]
    fn draw_prefers_category_then_keywords_among_least_loaded() {
        let experts = vec![
            expert("keywords-only", "o1", 1, &["专利导航", "运营"]),
            expert("category-no-keywords", "o2", 4, &[]),
            expert("category-and-keyword", "o3", 4, &["专利运营", "运营"]),
            expert("category-two-keywords", "o4", 4, &["质押融资", "运营"]),
            expert("nothing", "o5", 2, &[]),
        ];
        let apps = vec![application("a1", "x", 4, &["运营", "质押融资"])];
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &[], &policy);
        let outcome = draw_panels(&c, &ids(&["a1"]), 3, 42).unwrap();
        let chosen: Vec<&str> = outcome.picks.iter().map(|p| p.expert_id.as_str()).collect();
        // Nobody has load yet, so expertise alone orders the draw: 2 shared keywords, then 1,
        // then the category match with none beats keywords without the category.
        assert_eq!(
            chosen,
            vec![
                "category-two-keywords",
                "category-and-keyword",
                "category-no-keywords"
            ]
        );
        assert!(outcome.is_complete());
    }

    #[test]
    fn draw_takes_the_least_loaded_before_the_best_match() {
        let experts = vec![
            expert("expert-busy", "o1", 4, &["运营"]),
            expert("generalist-a", "o2", 1, &[]),
            expert("generalist-b", "o3", 1, &[]),
            expert("generalist-c", "o4", 1, &[]),
        ];
        let apps = vec![
            application("a1", "x", 4, &["运营"]),
            application("a0", "y", 4, &[]),
        ];
        let existing = vec![Assignment::new(
            "application-review",
            "a0",
            "expert-busy",
            now(),
        )];
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &existing, &policy);
        let outcome = draw_panels(&c, &ids(&["a1"]), 3, 7).unwrap();
        assert!(
            outcome.picks.iter().all(|p| p.expert_id != "expert-busy"),
            "the busy specialist waits until the others are as loaded"
        );
    }

    #[test]
    fn same_seed_gives_the_same_draw_and_input_order_does_not_matter() {
        let experts: Vec<Expert> = (0..30)
            .map(|i| expert(&format!("e{i:02}"), &format!("o{i}"), 3, &[]))
            .collect();
        let apps: Vec<Application> = (0..8)
            .map(|i| application(&format!("a{i}"), "applicant", 3, &[]))
            .collect();
        let app_ids: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &[], &policy);
        let first = draw_panels(&c, &app_ids, 3, 20240701).unwrap();
        let second = draw_panels(&c, &app_ids, 3, 20240701).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.picks.len(), 24);

        let mut reversed_experts = experts.clone();
        reversed_experts.reverse();
        let mut reversed_ids = app_ids.clone();
        reversed_ids.reverse();
        let c2 = ctx(&reversed_experts, &apps, &[], &policy);
        assert_eq!(draw_panels(&c2, &reversed_ids, 3, 20240701).unwrap(), first);

        let others: Vec<DrawOutcome> = (1..=5)
            .map(|seed| draw_panels(&c, &app_ids, 3, seed).unwrap())
            .collect();
        assert!(
            others.iter().any(|o| o.picks != first.picks),
            "different seeds draw differently"
        );
    }

    #[test]
    fn draw_reports_shortfall_when_not_enough_eligible_experts() {
        let experts = vec![
            expert("e1", "applicant", 3, &[]),
            expert("e2", "o2", 3, &[]),
            expert("e3", "o3", 3, &[]),
        ];
        let apps = vec![application("a1", "applicant", 3, &[])];
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &[], &policy);
        let outcome = draw_panels(&c, &ids(&["a1"]), 3, 1).unwrap();
        assert_eq!(
            outcome.shortfalls,
            vec![Shortfall {
                application_id: "a1".into(),
                needed: 3,
                drawn: 2
            }]
        );
        assert!(outcome.picks.iter().all(|p| p.expert_id != "e1"));
        let err = draw_panels(&c, &ids(&["a1"]), 2, 1).unwrap_err();
        assert_eq!(err.code(), "PANEL_TOO_SMALL");
        let err = draw_panels(&c, &ids(&["zzz"]), 3, 1).unwrap_err();
        assert_eq!(err.code(), "APPLICATION_UNKNOWN");
    }

    #[test]
    fn draw_only_fills_open_seats() {
        let experts: Vec<Expert> = (0..6)
            .map(|i| expert(&format!("e{i}"), &format!("o{i}"), 3, &[]))
            .collect();
        let apps = vec![application("a1", "x", 3, &[])];
        let existing = vec![
            Assignment::new("application-review", "a1", "e0", now()),
            Assignment::new("application-review", "a1", "e1", now())
                .apply(
                    Action::Decline { reason: None },
                    &Actor::Expert { id: "e1".into() },
                    now(),
                )
                .unwrap(),
        ];
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &existing, &policy);
        let outcome = draw_panels(&c, &ids(&["a1"]), 3, 5).unwrap();
        // e0 holds a seat; e1 declined, so two seats are open and e1 is not drawn again.
        assert_eq!(outcome.picks.len(), 2);
        assert!(
            outcome
                .picks
                .iter()
                .all(|p| p.expert_id != "e0" && p.expert_id != "e1")
        );
    }

    #[test]
    fn replacement_follows_the_same_rules_and_reports_exhaustion() {
        let experts = vec![
            expert("e1", "o1", 3, &[]),
            expert("e2", "applicant", 3, &[]),
            expert("e3", "o3", 3, &[]),
        ];
        let apps = vec![application("a1", "applicant", 3, &[])];
        let leaving = Assignment::new("application-review", "a1", "e1", now())
            .apply(Action::MarkOverdue, &Actor::System, now())
            .unwrap();
        let existing = vec![leaving.clone()];
        let policy = ReviewPolicy::default();
        let c = ctx(&experts, &apps, &existing, &policy);
        let pick = draw_replacement(&c, &leaving, 99).unwrap();
        assert_eq!(pick.expert_id, "e3", "e2 conflicts, e1 is leaving");

        let with_e3 = vec![leaving.clone(), pick.to_assignment(now())];
        let c = ctx(&experts, &apps, &with_e3, &policy);
        let err = draw_replacement(&c, &leaving, 99).unwrap_err();
        assert_eq!(err.code(), "NOT_ENOUGH_EXPERTS");

        let active = Assignment::new("application-review", "a1", "e3", now());
        let err = draw_replacement(&c, &active, 1).unwrap_err();
        assert_eq!(err.code(), "ASSIGNMENT_NOT_REPLACEABLE");
    }

    #[test]
    fn rng_indices_are_in_range_and_stable() {
        let mut a = DrawRng::new(123);
        let mut b = DrawRng::new(123);
        let xs: Vec<usize> = (0..100).map(|i| a.index(i % 7 + 1)).collect();
        let ys: Vec<usize> = (0..100).map(|i| b.index(i % 7 + 1)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().enumerate().all(|(i, x)| *x < i % 7 + 1));
    }
}
