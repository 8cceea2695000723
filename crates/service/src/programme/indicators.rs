//! Indicator actuals recorded against a project's approved indicators.

use super::*;

impl Services {
    /// Record actual values at the mid-term check or at acceptance (the project's unit or
    /// a manager), checked against the approved (frozen) indicators.
    pub async fn record_actuals(
        &self,
        user: &User,
        instance_id: Uuid,
        checkpoint: Checkpoint,
        actuals: Vec<ActualInput>,
    ) -> ServiceResult<Vec<ActualRecord>> {
        let instance = self.project_for_budget(user, instance_id).await?;
        require_role(user, &[Role::Applicant, Role::Manager])?;
        let own_unit = user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id);
        if !own_unit && !user.has_role(Role::Manager) {
            return Err(ServiceError::Forbidden);
        }
        let approved = indicators_from(instance.data.get("approved_indicators"));
        if approved.is_empty() {
            return refused(Refusal::new(
                RefusalReason::NotApproved,
                "项目尚未立项，绩效目标未冻结，不能填报实际值",
                "the project is not approved: there are no frozen targets to report against",
            ));
        }
        let today = local_date(self.now());
        let mut set = IndicatorSet {
            indicators: approved,
            status: IndicatorSetStatus::Frozen { on: today },
            changes: Vec::new(),
            actuals: Vec::new(),
        };
        let mut errors = Vec::new();
        let mut records = Vec::new();
        for (n, a) in actuals.into_iter().enumerate() {
            let value = match &a.value {
                Value::Number(x) => IndicatorValue::Number(x.as_f64().unwrap_or(f64::NAN)),
                Value::String(s) => IndicatorValue::Text(s.clone()),
                _ => IndicatorValue::Text(String::new()),
            };
            let checked = set.record_actual(grantflow_programme::indicator::ActualRecord {
                indicator_id: a.indicator_id.clone(),
                checkpoint,
                value,
                explanation: a.explanation.clone(),
                recorded_on: today,
            });
            match checked {
                Ok(()) => records.push(ActualRecord {
                    instance_id,
                    indicator_id: a.indicator_id,
                    checkpoint: code_of(&checkpoint),
                    value: a.value,
                    explanation: a.explanation.filter(|e| !e.trim().is_empty()),
                    recorded_on: today,
                    recorded_by: user.id,
                    recorded_at: self.now(),
                }),
                Err(e) => errors.push(FieldError::new(
                    &format!("actuals[{n}]"),
                    e.code(),
                    e.message(Lang::ZhCn),
                    e.message(Lang::En),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        self.store.record_actuals(records.clone()).await?;
        Ok(records)
    }
}
