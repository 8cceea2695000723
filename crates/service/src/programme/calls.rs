//! Calls: opening a call with its catalogue, listing and reading calls, and the
//! visibility checks the other parts share.

use super::*;

impl Services {
    /// A manager opens a call with its catalogue (the whole catalogue in one transaction).
    pub async fn open_call(&self, user: &User, req: OpenCall) -> ServiceResult<Call> {
        require_role(user, &[Role::Manager])?;
        if let Err(e) = req.catalogue.check() {
            return refused(Refusal::from_user_facing(
                RefusalReason::CatalogueInvalid,
                &e,
            ));
        }
        let correction_window_days = correction_window_days(&req);
        let Some(closing_date) = req.closing_date.or(req.catalogue.deadline) else {
            return invalid(
                "closingDate",
                "须指定征集截止日",
                "the call needs a closing date",
            );
        };
        grantflow_domain::dates::check_date(closing_date)
            .map_err(|e| ServiceError::Invalid(vec![crate::date_error("closingDate", &e)]))?;
        // A call whose last day has passed would be reported OPEN yet accept nothing.
        let today = grantflow_domain::calendar::local_date(self.now());
        if closing_date < today {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "closingDate",
                "IN_THE_PAST",
                format!("征集截止日 {closing_date} 早于今天（{today}）"),
                format!("the closing date {closing_date} is before today ({today})"),
            )]));
        }
        let title = req
            .title
            .unwrap_or_else(|| req.catalogue.title.clone())
            .trim()
            .to_string();
        if title.is_empty() || title.chars().count() > 200 {
            return invalid(
                "title",
                "标题不能为空且不超过 200 字",
                "the title must be 1 to 200 characters",
            );
        }
        let call = self
            .store
            .create_call(NewCall {
                id: Uuid::now_v7(),
                year: req.year.unwrap_or(req.catalogue.year),
                title,
                issuer: req.issuer.unwrap_or_else(|| req.catalogue.issuer.clone()),
                closing_date,
                correction_window_days,
                created_by: user.id,
                created_at: self.now(),
                categories: catalogue_rows(&req.catalogue),
                rules: serde_json::to_value(&req.catalogue.rules).unwrap_or(Value::Null),
            })
            .await?;
        // The funding plan of the call's file (checked with the catalogue above).
        if let Some(plan) = &req.catalogue.funding {
            let value = serde_json::to_value(plan)
                .map_err(|e| ServiceError::Store(StoreError::Invalid(e.to_string())))?;
            self.store
                .set_funding_plan(
                    call.id,
                    value,
                    "随通知发布 published with the call".into(),
                    user.id.to_string(),
                    self.now(),
                )
                .await?;
        }
        Ok(call)
    }

    /// A manager closes a call: no new demands or applications, no more submissions.
    pub async fn close_call(&self, user: &User, id: Uuid) -> ServiceResult<Call> {
        require_role(user, &[Role::Manager])?;
        let call = self.call(user, id).await?;
        Ok(self
            .store
            .set_call_status(call.id, grantflow_store::programme::CallStatus::Closed)
            .await?)
    }

    /// Every call (any signed-in user: the catalogue is public).
    pub async fn calls(&self, user: &User) -> ServiceResult<Vec<Call>> {
        if !user.active {
            return Err(ServiceError::Forbidden);
        }
        Ok(self.store.list_calls().await?)
    }

    pub async fn call(&self, user: &User, id: Uuid) -> ServiceResult<Call> {
        if !user.active {
            return Err(ServiceError::Forbidden);
        }
        match self.store.get_call(id).await {
            Err(StoreError::NotFound { .. }) => Err(ServiceError::NotFound("call".into())),
            other => Ok(other?),
        }
    }

    /// The instances of a workflow linked to the call that the user may see.
    pub(super) async fn visible_of_call(
        &self,
        user: &User,
        workflow: &str,
        call: &Call,
    ) -> ServiceResult<Vec<Instance>> {
        let all = self
            .store
            .instances_of_call(workflow, &call.id.to_string())
            .await?;
        let mut out = Vec::with_capacity(all.len());
        for i in all {
            if can_see(self.store.as_ref(), user, &i).await? {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// The instance if the user may see it, else NOT_FOUND.
    pub(super) async fn visible_instance(&self, user: &User, id: Uuid) -> ServiceResult<Instance> {
        let instance = match self.store.get_instance(id).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(ServiceError::NotFound("instance".into()));
            }
            other => other?,
        };
        if !can_see(self.store.as_ref(), user, &instance).await? {
            return Err(ServiceError::NotFound("instance".into()));
        }
        Ok(instance)
    }

    pub(super) fn expect_workflow(instance: &Instance, workflow: &str) -> ServiceResult<()> {
        if instance.workflow_id == workflow {
            Ok(())
        } else {
            refused(Refusal::new(
                RefusalReason::WrongWorkflow,
                format!("该实例不是「{workflow}」流程"),
                format!("the instance is not a `{workflow}` instance"),
            ))
        }
    }
}

/// The default correction window after a return past the closing date, in calendar days:
/// a default, not a regulation (the call's file or `openCall` sets it).
pub const DEFAULT_CORRECTION_WINDOW_DAYS: u32 = 5;

fn correction_window_days(req: &OpenCall) -> i32 {
    let days = req
        .correction_window_days
        .or(req.catalogue.correction_window_days)
        .unwrap_or(DEFAULT_CORRECTION_WINDOW_DAYS)
        .min(365);
    i32::try_from(days).unwrap_or(5)
}
