//! Approved change requests applied to their project.

use super::*;

impl Services {
    /// After a transition commits: a change request that reached `approved` is applied to
    /// its project (`apply_approved_change`). A failure is logged, not returned: the
    /// change request's own transition stands, and [`Services::apply_change_request`]
    /// can be run again (it is idempotent).
    pub(crate) async fn after_transition(&self, user: &User, applied: &Applied) {
        let i = &applied.instance;
        if i.workflow_id == CHANGE_WORKFLOW
            && i.state == "approved"
            && i.parent_id.is_some()
            && let Err(e) = self.apply_change_request(user, i.id).await
        {
            tracing::warn!(change_request = %i.id, error = %e, "approved change not applied to its project");
        }
    }

    /// Apply an approved change request to its parent project: fires
    /// `apply_approved_change` with the approved values, the idempotency key derived from
    /// the change request, and a reason naming what changed in the indicators.
    pub async fn apply_change_request(
        &self,
        user: &User,
        change_id: Uuid,
    ) -> ServiceResult<Applied> {
        require_role(user, &[Role::Manager])?;
        let change = self.visible_instance(user, change_id).await?;
        Self::expect_workflow(&change, CHANGE_WORKFLOW)?;
        if change.state != "approved" {
            return refused(Refusal::new(
                RefusalReason::ChangeNotApproved,
                "变更申请尚未批准",
                "the change request is not approved",
            ));
        }
        let Some(parent_id) = change.parent_id else {
            return refused(Refusal::new(
                RefusalReason::NoParent,
                "变更申请未关联项目",
                "the change request belongs to no project",
            ));
        };
        let project = self.visible_instance(user, parent_id).await?;
        Self::expect_workflow(&project, PROJECT_WORKFLOW)?;
        let mut input = Map::new();
        input.insert(
            "change_request_id".into(),
            Value::from(change.id.to_string()),
        );
        let d = &change.data;
        if let Some(b) = d.get("new_budget") {
            input.insert("approved_budget".into(), b.clone());
        }
        if let Some(e) = d.get("new_execution_end") {
            input.insert("execution_end".into(), e.clone());
        }
        let mut reason = format!("执行已批准的变更申请 {}", change.id);
        if let Some(new) = d.get("new_indicators").filter(|v| v.is_array()) {
            input.insert("indicators".into(), new.clone());
            let before = indicators_from(
                project
                    .data
                    .get("approved_indicators")
                    .or(project.data.get("indicators")),
            );
            let mut set = IndicatorSet {
                indicators: before,
                status: IndicatorSetStatus::Frozen {
                    on: local_date(self.now()),
                },
                changes: Vec::new(),
                actuals: Vec::new(),
            };
            let request = ChangeRequestRef {
                id: change.id.to_string(),
                status: ChangeRequestStatus::Approved,
            };
            if let Ok(diff) = set.apply_change(&request, indicators_from(Some(new))) {
                let (added, removed, changed) = diff.summary();
                let list = |v: Vec<&str>| {
                    if v.is_empty() {
                        "无".to_string()
                    } else {
                        v.join("、")
                    }
                };
                reason = format!(
                    "{reason}；绩效指标 新增：{}；调整：{}；删除：{}",
                    list(added),
                    list(changed),
                    list(removed)
                );
            }
        }
        // Applied before (the hook, then a retry): the project's history says so.
        let change_key = change.id.to_string();
        if let Some(record) = self.store.history(project.id).await?.into_iter().find(|r| {
            r.event == "apply_approved_change"
                && r.input.get("change_request_id").and_then(Value::as_str)
                    == Some(change_key.as_str())
        }) {
            return Ok(Applied {
                instance: project,
                record,
                replayed: true,
            });
        }
        self.fire(
            user,
            FireEvent {
                instance_id: project.id,
                event: "apply_approved_change".into(),
                expected_version: project.version,
                idempotency_key: Some(format!("change-request:{}", change.id)),
                input: Value::Object(input),
                reason: Some(reason),
            },
        )
        .await
    }
}
