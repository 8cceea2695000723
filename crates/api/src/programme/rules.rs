//! A call's rules in GraphQL (`Call.rules`): the numbers the call sets, each with its
//! documented default, and whether the call kept the default. Defaults are common
//! practice, not regulations.

use async_graphql::SimpleObject;
use grantflow_domain::model::I18nText as DomainText;
use grantflow_programme::rules::{CallRules, STAGE_LIMIT_DEFAULTS};

use crate::types::I18nText;

/// The rules of a call (`[rules]` of its TOML).
#[derive(SimpleObject, Clone)]
#[graphql(name = "CallRules")]
pub struct CallRulesGql {
    /// The application review's pass mark (weighted total out of 100).
    pub pass_mark: u32,
    /// Experts per application, and scores needed to conclude the review.
    pub panel_size: u32,
    /// `trimmed_mean` (drops the highest and the lowest total only with 5 or more
    /// scores; the plain mean below), `median` or `mean`.
    pub aggregation: String,
    pub rubric: Vec<RubricCriterionGql>,
    /// 公示 in calendar days.
    pub publicity_days: u32,
    /// Time limit of each state that has one, in working days.
    pub stage_limits: Vec<StageLimitGql>,
    /// 回避: months during which a collaboration with the applicant conflicts an expert.
    pub collaboration_window_months: u32,
    /// An actual this far beyond its target (0.3 = 30 %) needs a written explanation.
    pub overshoot_threshold: f64,
    /// The performance evaluation's points and grade bands.
    pub evaluation: EvaluationRulesGql,
    /// Every rule with its value, documented default and whether it equals the default.
    pub settings: Vec<CallRuleSettingGql>,
    /// What the defaults are.
    pub note: I18nText,
}

/// The performance evaluation (绩效评价) of the call's projects: points of each part
/// (summing to 100) and the lowest total of each upper grade (优/良/中; below 中 is 差).
#[derive(SimpleObject, Clone)]
#[graphql(name = "CallEvaluationRules")]
pub struct EvaluationRulesGql {
    pub budget_execution_points: f64,
    pub output_points: f64,
    pub effect_points: f64,
    /// Moved to the effects when a project has no satisfaction indicator.
    pub satisfaction_points: f64,
    pub excellent_from: u32,
    pub good_from: u32,
    pub fair_from: u32,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "CallRubricCriterion")]
pub struct RubricCriterionGql {
    pub id: String,
    pub title: I18nText,
    pub weight: f64,
    pub max: f64,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "StageLimit")]
pub struct StageLimitGql {
    pub state: String,
    pub working_days: u32,
    pub is_default: bool,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "CallRuleSetting")]
pub struct CallRuleSettingGql {
    /// `review.pass_mark`, `publicity_days`, `stage_limits.formal_check`, …
    pub key: String,
    pub title: I18nText,
    /// The value as JSON text (`60`, `"trimmed_mean"`, `0.3`).
    pub value: String,
    pub default_value: String,
    /// The call keeps the documented default (a default, not a regulation).
    pub is_default: bool,
}

impl From<&CallRules> for CallRulesGql {
    fn from(r: &CallRules) -> Self {
        let aggregation = serde_json::to_value(r.review.aggregation)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Self {
            pass_mark: r.review.pass_mark,
            panel_size: r.review.panel_size,
            aggregation,
            rubric: r
                .review
                .criteria
                .iter()
                .map(|c| {
                    let def = c.to_def();
                    RubricCriterionGql {
                        id: c.id.clone(),
                        title: (&def.title).into(),
                        weight: c.weight,
                        max: c.max,
                    }
                })
                .collect(),
            publicity_days: r.publicity_days,
            stage_limits: STAGE_LIMIT_DEFAULTS
                .iter()
                .map(|(state, default)| {
                    let days = r.stage_limit(state).unwrap_or(*default);
                    StageLimitGql {
                        state: (*state).to_string(),
                        working_days: days,
                        is_default: days == *default,
                    }
                })
                .collect(),
            collaboration_window_months: r.collaboration_window_months,
            overshoot_threshold: r.overshoot_threshold,
            evaluation: EvaluationRulesGql {
                budget_execution_points: r.evaluation.budget_execution_points,
                output_points: r.evaluation.output_points,
                effect_points: r.evaluation.effect_points,
                satisfaction_points: r.evaluation.satisfaction_points,
                excellent_from: r.evaluation.excellent_from,
                good_from: r.evaluation.good_from,
                fair_from: r.evaluation.fair_from,
            },
            settings: r
                .settings()
                .into_iter()
                .map(|s| CallRuleSettingGql {
                    key: s.key,
                    title: (&s.title).into(),
                    value: s.value,
                    default_value: s.default_value,
                    is_default: s.is_default,
                })
                .collect(),
            note: (&DomainText::new(
                "默认值为常见做法，不是规定；每个申报通知可在其 [rules] 中另行设定",
                "Defaults are common practice, not regulations; each call may set its own in [rules]",
            ))
                .into(),
        }
    }
}
