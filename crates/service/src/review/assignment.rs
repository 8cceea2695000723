//! Assignment: manual and seeded automatic assignment, the experts' declarations,
//! declining, reassignment and replacement.

use super::*;

impl Reviews {
    /// A manager puts the named experts on the open round's panel. All or nothing:
    /// conflicts, caps, inactive experts and experts already on the panel are refused with
    /// every reason ([`ReviewError::AssignmentRefused`]).
    pub async fn assign(
        &self,
        user: &User,
        instance_id: Uuid,
        expert_ids: Vec<Uuid>,
    ) -> ReviewResultOf<Vec<AssignmentRecord>> {
        Self::require_manager(user)?;
        if expert_ids.is_empty() {
            return Err(ReviewServiceError::invalid(
                "expertIds",
                "请至少选择一位专家",
                "name at least one expert",
            ));
        }
        let ids: Vec<String> = expert_ids.iter().map(Uuid::to_string).collect();
        for _ in 0..MAX_ATTEMPTS {
            let round = self.open_round(instance_id).await?;
            let board = self.board(&round).await?;
            let picks = assign_manually(&board.ctx(), &round.instance.id.to_string(), &ids)?;
            let seats: Vec<NewAssignment> = picks
                .iter()
                .map(|p| {
                    uuid_of(&p.expert_id).map(|e| self.seat(&round, e, None, &user.id.to_string()))
                })
                .collect::<ReviewResultOf<_>>()?;
            let rc = recompute(round.def.clone());
            let written = self
                .store()
                .create_assignments(CreateAssignments {
                    round: round.key(),
                    expected_panel: round.records.fingerprint(),
                    assignments: seats,
                    recompute: Some(&rc),
                    at: self.svc.now(),
                })
                .await?;
            match written {
                Ok(records) => return Ok(records),
                Err(ReviewConflict::RoundClosed) => return Err(ReviewServiceError::RoundClosed),
                Err(_) => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// Draws the open seats of the round's panel at random among eligible experts,
    /// least loaded first, then best expertise, from `seed` (generated when not given);
    /// the seed and algorithm are recorded with every assignment. The result lists the
    /// experts the draw could not choose, with every reason.
    pub async fn auto_assign(
        &self,
        user: &User,
        instance_id: Uuid,
        seed: Option<u64>,
    ) -> ReviewResultOf<AutoAssigned> {
        Self::require_manager(user)?;
        let seed = seed.unwrap_or_else(new_seed);
        for _ in 0..MAX_ATTEMPTS {
            let round = self.open_round(instance_id).await?;
            let board = self.board(&round).await?;
            let excluded = board.excluded(&round.instance.id.to_string());
            let outcome = draw_panels(
                &board.ctx(),
                &[round.instance.id.to_string()],
                round.def.panel_size,
                seed,
            )?;
            let shortfall = outcome.shortfalls.first().cloned();
            if outcome.picks.is_empty() {
                return Ok(AutoAssigned {
                    seed,
                    algorithm: outcome.algorithm,
                    assignments: Vec::new(),
                    shortfall,
                    excluded,
                });
            }
            let seats: Vec<NewAssignment> = outcome
                .picks
                .iter()
                .map(|p| {
                    uuid_of(&p.expert_id)
                        .map(|e| self.seat(&round, e, Some(seed), &user.id.to_string()))
                })
                .collect::<ReviewResultOf<_>>()?;
            let rc = recompute(round.def.clone());
            let written = self
                .store()
                .create_assignments(CreateAssignments {
                    round: round.key(),
                    expected_panel: round.records.fingerprint(),
                    assignments: seats,
                    recompute: Some(&rc),
                    at: self.svc.now(),
                })
                .await?;
            match written {
                Ok(records) => {
                    return Ok(AutoAssigned {
                        seed,
                        algorithm: outcome.algorithm,
                        assignments: records,
                        shortfall,
                        excluded,
                    });
                }
                Err(ReviewConflict::RoundClosed) => return Err(ReviewServiceError::RoundClosed),
                Err(_) => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// The assignment `id` of the expert `user`; NOT_FOUND for anyone else.
    pub(super) async fn own_assignment(
        &self,
        user: &User,
        id: Uuid,
    ) -> ReviewResultOf<AssignmentRecord> {
        let rec = match self.store().assignment(id).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => {
                return Err(ReviewServiceError::not_found("review assignment"));
            }
            Err(e) => return Err(e.into()),
        };
        if rec.expert_id != user.id || !user.active {
            return Err(ReviewServiceError::not_found("review assignment"));
        }
        Ok(rec)
    }

    pub(super) async fn any_assignment(&self, id: Uuid) -> ReviewResultOf<AssignmentRecord> {
        match self.store().assignment(id).await {
            Ok(r) => Ok(r),
            Err(StoreError::NotFound { .. }) => {
                Err(ReviewServiceError::not_found("review assignment"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn def_of(
        &self,
        rec: &AssignmentRecord,
        instance: &Instance,
    ) -> ReviewResultOf<(Arc<CompiledWorkflow>, ReviewRoundDef)> {
        let wf = self.svc.workflow_of(instance)?;
        let def = Self::round_def(&wf, &rec.round_id)?;
        let def = self.with_call_rules(instance, &rec.round_id, &def).await?;
        Ok((wf, def))
    }

    /// Apply a lifecycle action and store it, with the extras `extend` adds.
    pub(super) async fn act(
        &self,
        rec: &AssignmentRecord,
        actions: Vec<(Action, Actor)>,
        extend: impl FnOnce(&mut AssignmentChange<'_>, &Assignment),
        def: &ReviewRoundDef,
    ) -> ReviewResultOf<AssignmentRecord> {
        let before = lifecycle(rec)?;
        let now = self.svc.now();
        let mut after = before.clone();
        for (action, actor) in actions {
            after = after.apply(action, &actor, now)?;
        }
        let rc = recompute(def.clone());
        let mut change = AssignmentChange {
            assignment_id: rec.id,
            expected_revision: rec.revision,
            state: state_name(after.state()),
            events: new_events(&before, &after),
            submission: None,
            reopen: None,
            justification: None,
            view: ViewChange::Keep,
            cancel_timers: false,
            replacement: None,
            expected_panel: None,
            recompute: Some(&rc),
            at: now,
        };
        extend(&mut change, &after);
        match self.store().change_assignment(change).await? {
            Ok(changed) => Ok(changed.assignment),
            Err(c) => Err(Self::conflict_error(c)),
        }
    }

    /// The expert declares no conflict of interest: the application is shown to them.
    pub async fn declare_no_conflict(
        &self,
        user: &User,
        id: Uuid,
    ) -> ReviewResultOf<AssignmentRecord> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance).await?;
        self.act(
            &rec,
            vec![(
                Action::DeclareNoConflict,
                Actor::Expert {
                    id: user.id.to_string(),
                },
            )],
            |c, _| c.view = ViewChange::Grant,
            &def,
        )
        .await
    }

    /// The expert declares a conflict: recused, and a replacement is drawn at once.
    pub async fn declare_conflict(
        &self,
        user: &User,
        id: Uuid,
        reason: &str,
    ) -> ReviewResultOf<Departure> {
        let rec = self.own_assignment(user, id).await?;
        let action = Action::DeclareConflict {
            reason: reason.to_string(),
        };
        self.depart(
            rec,
            action,
            Actor::Expert {
                id: user.id.to_string(),
            },
            None,
        )
        .await
    }

    /// The expert declines: the seat is given to a replacement drawn at once.
    pub async fn decline(
        &self,
        user: &User,
        id: Uuid,
        reason: Option<&str>,
    ) -> ReviewResultOf<Departure> {
        let rec = self.own_assignment(user, id).await?;
        let action = Action::Decline {
            reason: reason.map(str::to_string),
        };
        self.depart(
            rec,
            action,
            Actor::Expert {
                id: user.id.to_string(),
            },
            None,
        )
        .await
    }

    /// A manager replaces an expert: an overdue one (once the assignment's due time has
    /// passed), or one who declined or declared a conflict and was not replaced yet.
    pub async fn reassign(&self, user: &User, id: Uuid, reason: &str) -> ReviewResultOf<Departure> {
        Self::require_manager(user)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ReviewError::ReasonRequired {
                action: grantflow_review::lifecycle::ActionKind::Replace,
            }
            .into());
        }
        let rec = self.any_assignment(id).await?;
        let state = lifecycle(&rec)?.state();
        let manager = Actor::Manager {
            id: user.id.to_string(),
        };
        match state {
            AssignmentState::Assigned | AssignmentState::Accepted => {
                let now = self.svc.now();
                if rec.due_at.is_none_or(|d| d > now) {
                    return Err(ReviewServiceError::NotOverdue { due_at: rec.due_at });
                }
                self.depart(rec, Action::MarkOverdue, manager, Some(reason))
                    .await
            }
            _ => self.replace_only(rec, manager, reason).await,
        }
    }

    /// Leave the panel by `action` (conflict, decline, overdue), and seat a replacement in
    /// the same transaction when one can be drawn.
    pub(super) async fn depart(
        &self,
        rec: AssignmentRecord,
        action: Action,
        actor: Actor,
        reason: Option<&str>,
    ) -> ReviewResultOf<Departure> {
        let mut rec = rec;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                rec = self.any_assignment(rec.id).await?;
            }
            let before = lifecycle(&rec)?;
            let now = self.svc.now();
            let left = before.apply(action.clone(), &actor, now)?;
            let round = self.open_round(rec.instance_id).await?;
            if round.round_id != rec.round_id || round.cycle != rec.cycle {
                return Err(ReviewServiceError::RoundClosed);
            }
            let replacer = match &actor {
                Actor::Manager { .. } => actor.clone(),
                _ => Actor::System,
            };
            match self
                .leave_and_replace(&round, &rec, &before, left, &replacer, reason)
                .await?
            {
                Some(done) => return Ok(done),
                None => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// Replace a declined, recused or overdue assignment that was left unfilled.
    pub(super) async fn replace_only(
        &self,
        rec: AssignmentRecord,
        actor: Actor,
        reason: &str,
    ) -> ReviewResultOf<Departure> {
        let mut rec = rec;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                rec = self.any_assignment(rec.id).await?;
            }
            let before = lifecycle(&rec)?;
            if !before.state().needs_replacement() {
                return Err(ReviewError::NotReplaceable {
                    state: before.state(),
                }
                .into());
            }
            let round = self.open_round(rec.instance_id).await?;
            if round.round_id != rec.round_id || round.cycle != rec.cycle {
                return Err(ReviewServiceError::RoundClosed);
            }
            match self
                .leave_and_replace(&round, &rec, &before, before.clone(), &actor, Some(reason))
                .await?
            {
                Some(done) if done.unfilled => {
                    return Err(ReviewError::NotEnoughEligibleExperts {
                        application_id: rec.instance_id.to_string(),
                        needed: 1,
                        available: 0,
                    }
                    .into());
                }
                Some(done) => return Ok(done),
                None => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// Store `left` (the assignment after leaving) and a drawn replacement. `None` when
    /// the panel changed meanwhile (the caller retries).
    pub(super) async fn leave_and_replace(
        &self,
        round: &OpenRound,
        rec: &AssignmentRecord,
        before: &Assignment,
        left: Assignment,
        replacer: &Actor,
        reason: Option<&str>,
    ) -> ReviewResultOf<Option<Departure>> {
        let now = self.svc.now();
        let mut board = self.board(round).await?;
        // The board must see the leaving assignment as it is about to be.
        if let Some(slot) = board
            .existing
            .iter_mut()
            .find(|a| a.expert_id() == rec.expert_id.to_string() && a.round_id() == board.round_key)
        {
            *slot = left.clone();
        }
        if let Some(d) = left.declared_conflict() {
            board.declared.push(d);
        }
        let seed = new_seed();
        let pick = match draw_replacement(&board.ctx(), &left, seed) {
            Ok(pick) => Some(pick),
            Err(ReviewError::NotEnoughEligibleExperts { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let (final_state, replacement) = match &pick {
            Some(p) => {
                let by = p.expert_id.clone();
                let replaced = left.apply(Action::Replace { by: by.clone() }, replacer, now)?;
                let seat = self.seat(round, uuid_of(&by)?, Some(seed), "system");
                (replaced, Some(seat))
            }
            None => (left, None),
        };
        let mut events = new_events(before, &final_state);
        if let Some(reason) = reason {
            for e in &mut events {
                if e.reason.is_none() {
                    e.reason = Some(reason.to_string());
                }
            }
        }
        let rc = recompute(round.def.clone());
        let unfilled = replacement.is_none();
        let change = AssignmentChange {
            assignment_id: rec.id,
            expected_revision: rec.revision,
            state: state_name(final_state.state()),
            events,
            submission: None,
            reopen: None,
            justification: None,
            view: ViewChange::Revoke,
            cancel_timers: true,
            expected_panel: replacement.as_ref().map(|_| round.records.fingerprint()),
            replacement,
            recompute: Some(&rc),
            at: now,
        };
        match self.store().change_assignment(change).await? {
            Ok(ChangedAssignment {
                assignment,
                replacement,
            }) => Ok(Some(Departure {
                assignment,
                replacement,
                unfilled,
            })),
            Err(ReviewConflict::RoundClosed) => Err(ReviewServiceError::RoundClosed),
            Err(ReviewConflict::AssignmentChanged { .. }) => {
                Err(ReviewServiceError::AssignmentChanged)
            }
            Err(_) => Ok(None),
        }
    }
}
