//! Scores: submission, justification of outliers and reopening.

use super::*;

impl Reviews {
    /// The expert submits scores: validated against the rubric (every problem of every
    /// criterion at once), sealed as a new version, the round's result recomputed in the
    /// same transaction. A justification given here is kept with the version, for when
    /// the total turns out to be an outlier.
    pub async fn submit_scores(
        &self,
        user: &User,
        id: Uuid,
        sheet: ScoreSheet,
        justification: Option<&str>,
    ) -> ReviewResultOf<Submitted> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance).await?;
        let card = validate_scores(&def.criteria, &sheet)?;
        let total = card.total();
        let card_json = serde_json::to_value(&card).unwrap_or(Value::Null);
        let justification = justification
            .map(str::trim)
            .filter(|j| !j.is_empty())
            .map(str::to_string);
        let assignment = self
            .act(
                &rec,
                vec![(
                    Action::Submit { card },
                    Actor::Expert {
                        id: user.id.to_string(),
                    },
                )],
                |c, after| {
                    let version = after.latest_version().map(|v| v.version).unwrap_or(1);
                    c.submission = Some(NewSubmission {
                        version,
                        card: card_json,
                        total,
                    });
                    c.justification = justification.map(|j| (version, j));
                    c.cancel_timers = true;
                },
                &def,
            )
            .await?;
        let records = self
            .store()
            .round_records(rec.instance_id, &rec.round_id, rec.cycle)
            .await?;
        let evaluation = evaluate(&def, &records);
        let needs_justification = evaluation.pending().contains(&user.id.to_string().as_str());
        Ok(Submitted {
            assignment,
            total,
            needs_justification,
        })
    }

    /// The expert justifies an outlying total of their latest submission.
    pub async fn justify(
        &self,
        user: &User,
        id: Uuid,
        text: &str,
    ) -> ReviewResultOf<AssignmentRecord> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance).await?;
        let records = self
            .store()
            .round_records(rec.instance_id, &rec.round_id, rec.cycle)
            .await?;
        let evaluation = evaluate(&def, &records);
        let j = justify_outlier(&evaluation.full, &user.id.to_string(), text, self.svc.now())?;
        let rc = recompute(def.clone());
        let change = AssignmentChange {
            assignment_id: rec.id,
            expected_revision: rec.revision,
            state: rec.state.clone(),
            events: Vec::new(),
            submission: None,
            reopen: None,
            justification: Some((j.version, j.text)),
            view: ViewChange::Keep,
            cancel_timers: false,
            replacement: None,
            expected_panel: None,
            recompute: Some(&rc),
            at: self.svc.now(),
        };
        match self.store().change_assignment(change).await {
            Ok(Ok(changed)) => Ok(changed.assignment),
            Ok(Err(c)) => Err(Self::conflict_error(c)),
            Err(StoreError::Duplicate { .. }) => Err(ReviewServiceError::invalid(
                "justification",
                "该版本评分已填写过说明",
                "this version is already justified",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A manager reopens a submission with a reason; the version stays in the history and
    /// the expert submits a new one.
    pub async fn reopen(
        &self,
        user: &User,
        id: Uuid,
        reason: &str,
    ) -> ReviewResultOf<AssignmentRecord> {
        Self::require_manager(user)?;
        let rec = self.any_assignment(id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance).await?;
        let version = rec.latest_submission().map(|s| s.version).unwrap_or(0);
        let by = user.id.to_string();
        let reason_text = reason.trim().to_string();
        self.act(
            &rec,
            vec![(
                Action::Reopen {
                    reason: reason.to_string(),
                },
                Actor::Manager { id: by.clone() },
            )],
            |c, _| {
                c.reopen = Some(ReopenMark {
                    version,
                    by,
                    reason: reason_text,
                });
            },
            &def,
        )
        .await
    }
}
