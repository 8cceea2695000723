//! Review rounds: their rubric, panel, aggregation and the states and events they name.

use super::*;

pub(super) fn check_reviews(
    def: &WorkflowDefinition,
    r: &mut Reporter<'_>,
    state_ids: &[&str],
    events: &BTreeSet<&str>,
) {
    for (id, round) in &def.reviews {
        let at = path!("reviews", id);
        if !state_ids.contains(&round.opens_in.as_str()) {
            r.error(
                codes::UNKNOWN_STATE,
                &at.key("opens_in"),
                format!("review `{id}` opens in unknown state `{}`", round.opens_in),
                unknown_hint("state", &round.opens_in, state_ids),
            );
        }
        if !events.contains(round.closes_on.as_str()) {
            r.error(
                codes::UNKNOWN_EVENT,
                &at.key("closes_on"),
                format!(
                    "review `{id}` closes on `{}`, which no transition handles",
                    round.closes_on
                ),
                "name the event of the transition that leaves the review state",
            );
        } else if state_ids.contains(&round.opens_in.as_str())
            && !def
                .transitions_from(&round.opens_in)
                .any(|(_, t)| t.event == round.closes_on)
        {
            // The event exists, but never from the state the round is open in: the round
            // would never close.
            r.error(
                codes::UNKNOWN_EVENT,
                &at.key("closes_on"),
                format!(
                    "review `{id}` is open in `{}` and closes on `{}`, but no transition from `{}` handles `{}`",
                    round.opens_in, round.closes_on, round.opens_in, round.closes_on
                ),
                "name the event of the transition that leaves the review state",
            );
        }
        if let Some(deadline) = round.deadline
            && deadline.is_zero()
        {
            r.error(
                codes::BAD_DURATION,
                &at.key("deadline"),
                format!("the deadline of review `{id}` is zero"),
                "give a positive duration such as `10wd`",
            );
        }
        check_ladder(
            r,
            &at.key("reminders"),
            &round.reminders,
            round.deadline,
            &format!("review `{id}`"),
        );
        if round.panel_size < 3 {
            r.error(
                codes::REVIEW_RUBRIC,
                &at.key("panel_size"),
                format!(
                    "review `{id}` has a panel of {}; at least 3 experts are required",
                    round.panel_size
                ),
                "set `panel_size = 3` or more",
            );
        }
        if round.criteria.is_empty() {
            r.error(
                codes::REVIEW_RUBRIC,
                &at,
                format!("review `{id}` has no criteria"),
                "add [[reviews.<id>.criteria]] entries with id, title, weight and scale",
            );
        }
        let total: f64 = round.criteria.iter().map(|c| c.weight).sum();
        if !round.criteria.is_empty() && (total - 1.0).abs() > 1e-6 {
            r.error(
                codes::REVIEW_RUBRIC,
                &at.key("criteria"),
                format!("the weights of review `{id}` sum to {total}, not 1"),
                "make the criteria weights add up to 1 (e.g. 0.3 + 0.3 + 0.4)",
            );
        }
        check_ids(
            r,
            &at.key("criteria"),
            round.criteria.iter().map(|c| c.id.as_str()),
        );
        for (i, c) in round.criteria.iter().enumerate() {
            let cp = at.key("criteria").index(i);
            if c.weight <= 0.0 {
                r.error(
                    codes::REVIEW_RUBRIC,
                    &cp.key("weight"),
                    format!("criterion `{}` has weight {}", c.id, c.weight),
                    "weights are positive fractions of the total",
                );
            }
            if c.scale.min >= c.scale.max || c.scale.step <= 0.0 {
                r.error(
                    codes::REVIEW_RUBRIC,
                    &cp.key("scale"),
                    format!(
                        "criterion `{}` has an empty scale {}..{} by {}",
                        c.id, c.scale.min, c.scale.max, c.scale.step
                    ),
                    "use e.g. `scale = { min = 0, max = 100, step = 1 }` or `{ min = 1, max = 5, step = 0.5 }`",
                );
            }
            for (name, v) in [
                ("minimum", c.minimum),
                ("comment_below", c.comment_below),
                ("comment_above", c.comment_above),
            ] {
                if let Some(v) = v
                    && (v < c.scale.min || v > c.scale.max)
                {
                    r.error(
                        codes::REVIEW_RUBRIC,
                        &cp.key(name),
                        format!(
                            "criterion `{}`: {name} {v} is outside its scale {}..{}",
                            c.id, c.scale.min, c.scale.max
                        ),
                        "keep thresholds within the scale",
                    );
                }
            }
        }
    }
}
