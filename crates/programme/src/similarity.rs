//! Likely duplicate demands: "不得重复设立绩效目标相近或资金用途相似的项目" — no two
//! projects with close performance targets or similar use of funds.
//!
//! Texts are compared by the Sørensen–Dice coefficient of their character bigrams, the
//! usual measure for Chinese, which has no spaces between words. Before comparing, a text
//! loses whitespace, punctuation, a leading item number and the words nearly every
//! project shares (知识产权, 项目, 工作, 广东省, 全省, 我省), which would otherwise make any
//! two names look about a quarter alike.
//!
//! A pair scores on three components, weighted by [`SimilarityWeights`] (default: name
//! 0.4, performance 0.3, use of funds 0.3). The use of funds is the project direction
//! (项目方向), which says what the money is spent on. A component that is empty on either
//! side says nothing, so it is left out and the remaining weights are rescaled. A pair is
//! flagged when the weighted score reaches [`SimilarityConfig::threshold`] (0.6), or when
//! the performance or the use of funds alone reaches
//! [`SimilarityConfig::component_threshold`] (0.8) — the rule names each as sufficient.

use std::collections::HashMap;

use grantflow_domain::Money;
use serde::{Deserialize, Serialize};

use crate::cancel::{Cancel, Cancelled};
use crate::catalogue::strip_item_number;
use crate::demand::{Demand, DemandOrigin};

/// Words so common in this domain that sharing them says nothing.
const STOP_WORDS: [&str; 6] = ["知识产权", "项目", "工作", "广东省", "全省", "我省"];

/// The Sørensen–Dice coefficient of the character-bigram multisets of two texts, in 0..=1.
///
/// Equal to `strsim::sorensen_dice` on ASCII, but counts characters rather than bytes:
/// strsim 0.11 divides by the byte length, which for Chinese (three bytes a character)
/// shrinks every score about threefold. Texts shorter than two characters have no
/// bigrams: they score 1 when equal and 0 otherwise.
pub fn bigram_similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().filter(|c| !c.is_whitespace()).collect();
    let b: Vec<char> = b.chars().filter(|c| !c.is_whitespace()).collect();
    if a == b {
        return 1.0;
    }
    if a.len() < 2 || b.len() < 2 {
        return 0.0;
    }
    let mut counts: HashMap<(char, char), usize> = HashMap::new();
    for w in a.windows(2) {
        *counts.entry((w[0], w[1])).or_default() += 1;
    }
    let mut shared = 0usize;
    for w in b.windows(2) {
        if let Some(n) = counts.get_mut(&(w[0], w[1]))
            && *n > 0
        {
            *n -= 1;
            shared += 1;
        }
    }
    (2 * shared) as f64 / (a.len() + b.len() - 2) as f64
}

/// The text as compared: no item number, whitespace, punctuation or stop words.
pub fn normalize_for_comparison(text: &str) -> String {
    let mut kept: String = text
        .lines()
        .map(strip_item_number)
        .collect::<Vec<_>>()
        .concat()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    for word in STOP_WORDS {
        kept = kept.replace(word, "");
    }
    kept
}

/// Weights of the three components; they need not sum to 1 (the score divides by the
/// sum of the weights of the components present).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimilarityWeights {
    pub name: f64,
    pub performance: f64,
    pub use_of_funds: f64,
}

impl Default for SimilarityWeights {
    fn default() -> Self {
        Self {
            name: 0.4,
            performance: 0.3,
            use_of_funds: 0.3,
        }
    }
}

/// When a pair is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimilarityConfig {
    pub weights: SimilarityWeights,
    /// Weighted score at or above which a pair is flagged.
    pub threshold: f64,
    /// Performance or use-of-funds similarity at or above which a pair is flagged on
    /// that component alone.
    pub component_threshold: f64,
    /// A component counts alone only when both normalised texts have at least this many
    /// characters: two four-character phrases prove little.
    pub component_min_chars: usize,
    /// Demands answering the same catalogue item are that item's candidates, not
    /// duplicates of each other (several cities take on 各市局 items); skip them.
    pub skip_same_catalogue_item: bool,
}

impl Default for SimilarityConfig {
    fn default() -> Self {
        Self {
            weights: SimilarityWeights::default(),
            threshold: 0.6,
            component_threshold: 0.8,
            component_min_chars: 10,
            skip_same_catalogue_item: true,
        }
    }
}

/// Component and weighted scores of one pair; a component is `None` when either side
/// leaves it empty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimilarityScores {
    pub name: Option<f64>,
    pub performance: Option<f64>,
    pub use_of_funds: Option<f64>,
    pub overall: f64,
}

/// Why a pair was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// The weighted score reached the threshold.
    Overall,
    /// 绩效目标相近
    SimilarPerformance,
    /// 资金用途相似
    SimilarUseOfFunds,
}

/// A likely duplicate: indexes into the slice given to [`find_duplicates`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicatePair {
    pub first: usize,
    pub second: usize,
    pub scores: SimilarityScores,
    pub reasons: Vec<DuplicateReason>,
}

/// A normalised text with its character bigrams sorted, so that comparing two texts is
/// one merge of two sorted lists rather than a hash map per pair: duplicate detection
/// compares every pair of a call's demands.
struct Grams {
    text: String,
    chars: usize,
    grams: Vec<(char, char)>,
}

impl Grams {
    fn new(text: &str) -> Self {
        let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut grams: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
        grams.sort_unstable();
        Self {
            chars: chars.len(),
            text: chars.into_iter().collect(),
            grams,
        }
    }

    fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// [`bigram_similarity`] of the two texts.
    fn dice(&self, other: &Self) -> f64 {
        if self.text == other.text {
            return 1.0;
        }
        if self.chars < 2 || other.chars < 2 {
            return 0.0;
        }
        let (a, b) = (&self.grams, &other.grams);
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        (2 * shared) as f64 / (self.chars + other.chars - 2) as f64
    }
}

struct Prepared {
    name: Grams,
    performance: Grams,
    use_of_funds: Grams,
}

fn prepare(d: &Demand) -> Prepared {
    Prepared {
        name: Grams::new(&normalize_for_comparison(&d.project_name)),
        performance: Grams::new(&normalize_for_comparison(&d.performance_summary())),
        use_of_funds: Grams::new(&normalize_for_comparison(&d.direction)),
    }
}

fn component(a: &Grams, b: &Grams) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        None
    } else {
        Some(a.dice(b))
    }
}

fn scores(a: &Prepared, b: &Prepared, w: &SimilarityWeights) -> SimilarityScores {
    let name = component(&a.name, &b.name);
    let performance = component(&a.performance, &b.performance);
    let use_of_funds = component(&a.use_of_funds, &b.use_of_funds);
    let parts = [
        (name, w.name),
        (performance, w.performance),
        (use_of_funds, w.use_of_funds),
    ];
    let (sum, weight) = parts
        .iter()
        .filter_map(|(s, w)| s.map(|s| (s * w, *w)))
        .fold((0.0, 0.0), |(s, t), (x, w)| (s + x, t + w));
    SimilarityScores {
        name,
        performance,
        use_of_funds,
        overall: if weight > 0.0 { sum / weight } else { 0.0 },
    }
}

/// Scores one pair of demands.
pub fn demand_similarity(a: &Demand, b: &Demand, weights: &SimilarityWeights) -> SimilarityScores {
    scores(&prepare(a), &prepare(b), weights)
}

/// The most demands compared in one search: every pair is scored, so the work grows with
/// the square (3 000 demands are 4.5 million pairs). A call has some hundreds.
pub const MAX_COMPARED_DEMANDS: usize = 3_000;

/// Why a duplicate search stopped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateSearchError {
    /// More demands than [`MAX_COMPARED_DEMANDS`].
    TooMany { count: usize, max: usize },
    /// Cancelled (the request timed out or went away).
    Cancelled,
}

impl crate::UserFacing for DuplicateSearchError {
    fn code(&self) -> &'static str {
        match self {
            Self::TooMany { .. } => "DUPLICATES_TOO_MANY_DEMANDS",
            Self::Cancelled => "DUPLICATES_CANCELLED",
        }
    }

    fn message(&self, lang: grantflow_domain::Lang) -> String {
        let (zh, en) = match self {
            Self::TooMany { count, max } => (
                format!("需求过多（{count} 条），查重一次最多比较 {max} 条"),
                format!("too many demands ({count}); a duplicate search compares at most {max}"),
            ),
            Self::Cancelled => (
                "查重已取消（请求超时）".to_string(),
                "the duplicate search was cancelled (the request timed out)".to_string(),
            ),
        };
        crate::messages::pick(lang, zh, en)
    }
}
crate::messages::impl_error_via_user_facing!(DuplicateSearchError);

/// Every likely duplicate pair, most similar first.
pub fn find_duplicates(demands: &[Demand], config: &SimilarityConfig) -> Vec<DuplicatePair> {
    pairs(demands, config, &Cancel::new()).unwrap_or_default()
}

/// [`find_duplicates`] for a request: at most [`MAX_COMPARED_DEMANDS`] demands, and
/// stopping when `cancel` is raised.
pub fn find_duplicates_within(
    demands: &[Demand],
    config: &SimilarityConfig,
    cancel: &Cancel,
) -> Result<Vec<DuplicatePair>, DuplicateSearchError> {
    if demands.len() > MAX_COMPARED_DEMANDS {
        return Err(DuplicateSearchError::TooMany {
            count: demands.len(),
            max: MAX_COMPARED_DEMANDS,
        });
    }
    pairs(demands, config, cancel).map_err(|_| DuplicateSearchError::Cancelled)
}

fn pairs(
    demands: &[Demand],
    config: &SimilarityConfig,
    cancel: &Cancel,
) -> Result<Vec<DuplicatePair>, Cancelled> {
    let prepared: Vec<Prepared> = demands.iter().map(prepare).collect();
    let mut pairs = Vec::new();
    for i in 0..demands.len() {
        // One check per demand: at most a few thousand comparisons in between.
        cancel.check()?;
        for j in i + 1..demands.len() {
            if config.skip_same_catalogue_item
                && let (
                    DemandOrigin::CatalogueItem { item_id: a },
                    DemandOrigin::CatalogueItem { item_id: b },
                ) = (&demands[i].origin, &demands[j].origin)
                && a == b
            {
                continue;
            }
            let (pa, pb) = (&prepared[i], &prepared[j]);
            let s = scores(pa, pb, &config.weights);
            let long_enough = |x: &Grams, y: &Grams| {
                x.chars >= config.component_min_chars && y.chars >= config.component_min_chars
            };
            let mut reasons = Vec::new();
            if s.overall >= config.threshold {
                reasons.push(DuplicateReason::Overall);
            }
            if s.performance
                .is_some_and(|p| p >= config.component_threshold)
                && long_enough(&pa.performance, &pb.performance)
            {
                reasons.push(DuplicateReason::SimilarPerformance);
            }
            if s.use_of_funds
                .is_some_and(|u| u >= config.component_threshold)
                && long_enough(&pa.use_of_funds, &pb.use_of_funds)
            {
                reasons.push(DuplicateReason::SimilarUseOfFunds);
            }
            if !reasons.is_empty() {
                pairs.push(DuplicatePair {
                    first: i,
                    second: j,
                    scores: s,
                    reasons,
                });
            }
        }
    }
    pairs.sort_by(|a, b| b.scores.overall.total_cmp(&a.scores.overall));
    Ok(pairs)
}

/// Demands merged into one: `demand` is the row that goes forward (initially the
/// primary source, editable by the programme manager), `sources` every original row,
/// unchanged, so who asked for what stays visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedDemand {
    pub demand: Demand,
    pub sources: Vec<Demand>,
}

impl MergedDemand {
    /// A demand merged with nothing yet.
    pub fn single(demand: Demand) -> Self {
        Self {
            sources: vec![demand.clone()],
            demand,
        }
    }

    /// Absorbs another merged demand; this one's `demand` stays the one going forward.
    pub fn absorb(&mut self, other: Self) {
        self.sources.extend(other.sources);
    }

    /// The sum of the budgets the sources asked for (the merged demand's own budget is
    /// decided by the province and may differ).
    pub fn requested_budget_total(&self) -> Money {
        self.sources.iter().filter_map(|d| d.budget).sum()
    }

    /// The distinct submitting units, in source order.
    pub fn submitters(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.sources {
            if !s.submitter.is_empty() && !out.contains(&s.submitter.as_str()) {
                out.push(&s.submitter);
            }
        }
        out
    }
}

/// Merges two demands, keeping `primary` as the one going forward and both as sources.
pub fn merge_demands(primary: Demand, other: Demand) -> MergedDemand {
    let mut merged = MergedDemand::single(primary);
    merged.absorb(MergedDemand::single(other));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The sorted-list merge scores exactly as the documented coefficient.
        #[test]
        fn merged_bigrams_score_as_the_coefficient(a in "[知识产权保护中心ab ]{0,12}", b in "[知识产权保护中心ab ]{0,12}") {
            let (ga, gb) = (Grams::new(&a), Grams::new(&b));
            prop_assert_eq!(ga.dice(&gb), bigram_similarity(&a, &b));
        }
    }
}
