//! Ranking the applications of a call by their review results.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::ApplicationId;
use crate::aggregate::ReviewResult;

/// One application's place in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedApplication {
    /// Competition rank: applications tying on every key share a rank and the next rank
    /// skips (1, 2, 2, 4).
    pub rank: u32,
    pub application_id: ApplicationId,
    /// Aggregated total.
    pub total: f64,
    /// Median of the experts' totals.
    pub median: f64,
    /// Lowest expert total.
    pub min_total: f64,
    /// Number of counted submissions.
    pub count: u32,
    pub passed: bool,
}

impl RankedApplication {
    fn from_result(result: &ReviewResult) -> Self {
        Self {
            rank: 0,
            application_id: result.application_id.clone(),
            total: result.total,
            median: result.median_total(),
            min_total: result.min_total(),
            count: result.count,
            passed: result.passed,
        }
    }

    /// Order on the ranking keys alone, best first: higher total, then higher median, then
    /// higher lowest total, then more scores. Applications without scores come last.
    fn cmp_keys(&self, other: &Self) -> Ordering {
        (other.count > 0)
            .cmp(&(self.count > 0))
            .then(other.total.total_cmp(&self.total))
            .then(other.median.total_cmp(&self.median))
            .then(other.min_total.total_cmp(&self.min_total))
            .then(other.count.cmp(&self.count))
    }
}

/// Ranks the results of one call's applications, best first.
///
/// Keys, in order: aggregated total (higher first), median of the experts' totals (higher
/// first), lowest expert total (higher first), number of scores (more first). Applications
/// equal on all four share a rank (competition ranking 1, 2, 2, 4) and are listed by
/// application id. Applications without any score are ranked after all scored ones. Values
/// are compared as rounded by [`crate::aggregate`] (6 decimals), so ties are exact.
pub fn rank_applications(results: &[ReviewResult]) -> Vec<RankedApplication> {
    let mut rows: Vec<RankedApplication> =
        results.iter().map(RankedApplication::from_result).collect();
    rows.sort_by(|a, b| {
        a.cmp_keys(b)
            .then_with(|| a.application_id.cmp(&b.application_id))
    });
    for i in 0..rows.len() {
        rows[i].rank = if i > 0 && rows[i - 1].cmp_keys(&rows[i]) == Ordering::Equal {
            rows[i - 1].rank
        } else {
            i as u32 + 1
        };
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::aggregate_application;
    use crate::aggregate::tests::{flat, round};
    use grantflow_domain::Aggregation;

    fn result(id: &str, totals: &[f64]) -> ReviewResult {
        let subs: Vec<_> = totals
            .iter()
            .enumerate()
            .map(|(i, t)| flat(&format!("e{i}"), *t))
            .collect();
        aggregate_application(&round(Aggregation::Mean), id, &subs, &[])
    }

    fn ranks(rows: &[RankedApplication]) -> Vec<(u32, &str)> {
        rows.iter()
            .map(|r| (r.rank, r.application_id.as_str()))
            .collect()
    }

    #[test]
    fn ranks_by_total_with_shared_ranks_when_everything_ties() {
        // a-top: mean (90+90+90)/3 = 90
        // b-tie and c-tie: both 80, 80, 80 → mean 80, median 80, min 80, 3 scores: full tie
        // d-low: 70
        let rows = rank_applications(&[
            result("d-low", &[70.0, 70.0, 70.0]),
            result("c-tie", &[80.0, 80.0, 80.0]),
            result("a-top", &[90.0, 90.0, 90.0]),
            result("b-tie", &[80.0, 80.0, 80.0]),
        ]);
        assert_eq!(
            ranks(&rows),
            vec![(1, "a-top"), (2, "b-tie"), (2, "c-tie"), (4, "d-low")]
        );
    }

    #[test]
    fn tie_breaks_apply_in_order_median_minimum_count() {
        // All four have mean 80:
        //   high-median: 70, 85, 85 → mean 240/3 = 80, median 85, min 70
        //   mid-median-high-min: 75, 80, 85 → median 80, min 75
        //   mid-median-low-min: 70, 80, 90 → median 80, min 70
        //   more-scores: 70, 80, 90, 80 → mean 320/4 = 80, median (80+80)/2 = 80, min 70, 4 scores
        let rows = rank_applications(&[
            result("mid-median-low-min", &[70.0, 80.0, 90.0]),
            result("more-scores", &[70.0, 80.0, 90.0, 80.0]),
            result("mid-median-high-min", &[75.0, 80.0, 85.0]),
            result("high-median", &[70.0, 85.0, 85.0]),
        ]);
        assert_eq!(
            ranks(&rows),
            vec![
                (1, "high-median"),
                (2, "mid-median-high-min"),
                (3, "more-scores"),
                (4, "mid-median-low-min"),
            ]
        );
        assert_eq!(rows[2].count, 4);
    }

    #[test]
    fn unscored_applications_come_last() {
        let rows = rank_applications(&[result("none", &[]), result("zero", &[0.0, 0.0, 0.0])]);
        assert_eq!(ranks(&rows), vec![(1, "zero"), (2, "none")]);
    }
}
