//! A call's rules at work: copied into each new instance of the call (the fields the
//! workflows read: time limits, publicity days, pass mark, panel size, grade bands), and
//! read by the
//! evaluation (overshoot threshold) and the expert review (rubric, panel, aggregation,
//! collaboration window). An instance whose `call_id` names no stored call follows the
//! documented defaults ([`CallRules::default`]).

use grantflow_domain::model::ReviewRoundDef;
use grantflow_programme::rules::stage_limit_field;

use super::*;

/// The round the call's `[rules.review]` governs.
pub const APPLICATION_ROUND: &str = "application_review";

/// The data fields through which a workflow reads its call's rules, with their values.
/// Only the fields a workflow declares are written.
pub fn rule_fields(rules: &CallRules) -> Vec<(String, Value)> {
    let mut out = vec![
        (
            "publicity_days".to_string(),
            Value::from(rules.publicity_days),
        ),
        (
            "review_pass_mark".to_string(),
            Value::from(rules.review.pass_mark),
        ),
        (
            "review_panel_size".to_string(),
            Value::from(rules.review.panel_size),
        ),
        (
            "grade_excellent_from".to_string(),
            Value::from(rules.evaluation.excellent_from),
        ),
        (
            "grade_good_from".to_string(),
            Value::from(rules.evaluation.good_from),
        ),
        (
            "grade_fair_from".to_string(),
            Value::from(rules.evaluation.fair_from),
        ),
    ];
    for (state, default) in grantflow_programme::rules::STAGE_LIMIT_DEFAULTS {
        out.push((
            stage_limit_field(state),
            Value::from(rules.stage_limit(state).unwrap_or(default)),
        ));
    }
    out
}

/// The evaluation method of a call: its points, grade bands (`[rules.evaluation]`,
/// defaults 10/50/30/10 and 90/80/60) and overshoot threshold.
pub fn evaluation_method(rules: &CallRules) -> EvaluationMethod {
    rules.evaluation_method()
}

/// `def` with the call's rubric, panel size and aggregation when it is the application
/// review; unchanged otherwise.
pub fn round_with_rules(round_id: &str, def: &ReviewRoundDef, rules: &CallRules) -> ReviewRoundDef {
    let mut def = def.clone();
    if round_id == APPLICATION_ROUND {
        def.panel_size = rules.review.panel_size;
        def.aggregation = rules.review.aggregation;
        def.criteria = rules
            .review
            .criteria
            .iter()
            .map(grantflow_programme::rules::RubricCriterion::to_def)
            .collect();
    }
    def
}

impl Services {
    /// The rules of the call an instance's data names (`call_id`), or the defaults when
    /// it names no stored call.
    pub async fn rules_of_data(&self, data: &Value) -> ServiceResult<CallRules> {
        let Some(id) = data
            .get("call_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(CallRules::default());
        };
        match self.store.get_call(id).await {
            Ok(call) => Ok(rules_of(&call)),
            Err(StoreError::NotFound { .. }) => Ok(CallRules::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the call's rules into the new instance's data, over anything the creator
    /// wrote there: these fields are the call's, never the applicant's.
    pub(crate) async fn fill_call_rules(
        &self,
        wf: &grantflow_domain::workflow::CompiledWorkflow,
        data: &mut Value,
    ) -> ServiceResult<()> {
        let rules = self.rules_of_data(data).await?;
        let Some(map) = data.as_object_mut() else {
            return Ok(());
        };
        for (field, value) in rule_fields(&rules) {
            if wf.def.fields.contains_key(&field) {
                map.insert(field, value);
            }
        }
        Ok(())
    }
}
