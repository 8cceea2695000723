//! The `Reviews` handle and the steps every action shares: the open round, the experts,
//! the board of a round, seats and deadline ladders.

use super::*;

/// Expert review on top of [`Services`].
#[derive(Clone)]
pub struct Reviews {
    pub(super) svc: Services,
    pub(super) policy: ReviewPolicy,
}

impl Services {
    /// Expert review with the programme's default policy.
    pub fn reviews(&self) -> Reviews {
        Reviews {
            svc: self.clone(),
            policy: ReviewPolicy::default(),
        }
    }
}

impl Reviews {
    pub fn with_policy(mut self, policy: ReviewPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &ReviewPolicy {
        &self.policy
    }

    pub(super) fn store(&self) -> &dyn grantflow_store::Store {
        self.svc.store.as_ref()
    }

    pub(super) fn require_manager(user: &User) -> ReviewResultOf<()> {
        if is_manager(user) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden.into())
        }
    }

    pub(super) async fn instance(&self, id: Uuid) -> ReviewResultOf<Instance> {
        match self.store().get_instance(id).await {
            Ok(i) => Ok(i),
            Err(StoreError::NotFound { .. }) => Err(ReviewServiceError::not_found("instance")),
            Err(e) => Err(e.into()),
        }
    }

    /// The round declared in the workflow whose `opens_in` is the instance's state.
    pub(super) fn round_in_state(
        wf: &CompiledWorkflow,
        state: &str,
    ) -> Option<(String, ReviewRoundDef)> {
        wf.def
            .reviews
            .iter()
            .find(|(_, r)| r.opens_in == state)
            .map(|(id, r)| (id.clone(), r.clone()))
    }

    /// The round as the instance's call sets it: rubric, panel size and aggregation of the
    /// application review come from the call's rules ([`crate::programme::round_with_rules`]).
    pub(super) async fn with_call_rules(
        &self,
        instance: &Instance,
        round_id: &str,
        def: &ReviewRoundDef,
    ) -> ReviewResultOf<ReviewRoundDef> {
        let rules = self.svc.rules_of_data(&instance.data).await?;
        Ok(crate::programme::round_with_rules(round_id, def, &rules))
    }

    pub(super) fn round_def(
        wf: &CompiledWorkflow,
        round_id: &str,
    ) -> ReviewResultOf<ReviewRoundDef> {
        wf.def
            .reviews
            .get(round_id)
            .cloned()
            .ok_or_else(|| ReviewServiceError::not_found("review round"))
    }

    pub(super) async fn open_round(&self, instance_id: Uuid) -> ReviewResultOf<OpenRound> {
        let instance = self.instance(instance_id).await?;
        let wf = self.svc.workflow_of(&instance)?;
        let Some((round_id, def)) = Self::round_in_state(&wf, &instance.state) else {
            return Err(ReviewServiceError::NoOpenRound {
                state: instance.state.clone(),
            });
        };
        let def = self.with_call_rules(&instance, &round_id, &def).await?;
        let Some(cycle) = self.store().round_cycle(instance.id, &def.opens_in).await? else {
            return Err(ReviewServiceError::RoundClosed);
        };
        let records = self
            .store()
            .round_records(instance.id, &round_id, cycle)
            .await?;
        Ok(OpenRound {
            wf,
            instance,
            round_id,
            def,
            cycle,
            records,
        })
    }

    /// The pool as the review crate sees it, with the users.
    pub(super) async fn experts(&self) -> ReviewResultOf<(Vec<Expert>, HashMap<Uuid, User>)> {
        let profiles = self.store().expert_profiles().await?;
        let ids: Vec<Uuid> = profiles.iter().map(|p| p.user_id).collect();
        let users: HashMap<Uuid, User> = self
            .store()
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut collaborations: HashMap<Uuid, Vec<ReviewCollaboration>> = HashMap::new();
        for c in self.store().collaborations(None).await? {
            collaborations
                .entry(c.expert_id)
                .or_default()
                .push(ReviewCollaboration {
                    org_id: c.org_id.to_string(),
                    until: c.until,
                });
        }
        let mut experts = Vec::new();
        for p in profiles {
            let Some(user) = users.get(&p.user_id) else {
                continue;
            };
            let status = match p.status.as_str() {
                expert_status::ACTIVE if user.active && user.has_role(Role::Expert) => {
                    ExpertStatus::Active
                }
                expert_status::RETIRED => ExpertStatus::Retired,
                _ => ExpertStatus::Suspended,
            };
            experts.push(Expert {
                id: p.user_id.to_string(),
                org_id: user
                    .org_id
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| format!("person:{}", p.user_id)),
                categories: p
                    .categories
                    .iter()
                    .filter_map(|c| Category::new(*c).ok())
                    .collect(),
                keywords: p.keywords.clone(),
                workload_cap: p.workload_cap,
                status,
                collaborations: collaborations.remove(&p.user_id).unwrap_or_default(),
            });
        }
        Ok((experts, users))
    }

    /// Everything a draw for the open round needs.
    pub(super) async fn board(&self, round: &OpenRound) -> ReviewResultOf<Board> {
        let (mut experts, _) = self.experts().await?;
        let instance = &round.instance;
        let excluded = self.store().exclusions(instance.id).await?;
        let target = application_of(instance, &excluded);
        if instance_category(&instance.data).is_none() {
            // No category: expertise is matched on keywords alone.
            for e in &mut experts {
                e.categories.clear();
            }
        }
        let mut applications = vec![target];
        if instance
            .data
            .get("call_id")
            .and_then(Value::as_str)
            .is_some()
        {
            let call = call_of(instance);
            for other in self
                .store()
                .call_instances(&instance.workflow_id, &call)
                .await?
            {
                if other.id != instance.id {
                    applications.push(application_of(&other, &[]));
                }
            }
        }
        // Conflicts declared on this instance in any round or cycle stay declared.
        let declared: Vec<DeclaredConflict> = self
            .store()
            .instance_assignments(instance.id)
            .await?
            .iter()
            .filter_map(|r| lifecycle(r).ok())
            .filter_map(|a| a.declared_conflict())
            .map(|mut d| {
                if let grantflow_review::conflict::ConflictScope::Application { application_id } =
                    &mut d.scope
                {
                    *application_id = instance.id.to_string();
                }
                d
            })
            .collect();
        let mut existing: Vec<Assignment> = round
            .records
            .assignments
            .iter()
            .map(lifecycle)
            .collect::<ReviewResultOf<_>>()?;
        // Load elsewhere (other open rounds) as stand-in assignments.
        let mut own: HashMap<Uuid, u32> = HashMap::new();
        for a in &round.records.assignments {
            if grantflow_store::review::assignment_state::counts_toward_load(&a.state) {
                *own.entry(a.expert_id).or_default() += 1;
            }
        }
        let now = self.svc.now();
        for (expert, load) in self.store().open_loads().await? {
            let elsewhere = load.saturating_sub(own.get(&expert).copied().unwrap_or(0));
            for k in 0..elsewhere {
                existing.push(Assignment::new(
                    "__open_elsewhere__",
                    format!("load-{k}"),
                    expert.to_string(),
                    now,
                ));
            }
        }
        Ok(Board {
            round_key: round_key(&round.round_id, round.cycle),
            experts,
            applications,
            declared,
            existing,
            policy: ReviewPolicy {
                // 回避: the call's collaboration window.
                collaboration_window_months: self
                    .svc
                    .rules_of_data(&instance.data)
                    .await?
                    .collaboration_window_months,
                ..self.policy.clone()
            },
            today: local_date(now),
        })
    }

    /// A new seat with its due date and reminder ladder from the round's deadline.
    pub(super) fn seat(
        &self,
        round: &OpenRound,
        expert_id: Uuid,
        seed: Option<u64>,
        assigned_by: &str,
    ) -> NewAssignment {
        let id = Uuid::now_v7();
        let now = self.svc.now();
        let (due_at, timers) = self.ladder(&round.wf, &round.def, id, expert_id, now);
        NewAssignment {
            id,
            expert_id,
            seed,
            algorithm: seed.map(|_| DRAW_ALGORITHM.to_string()),
            assigned_by: assigned_by.to_string(),
            due_at,
            timers,
        }
    }

    pub(super) fn ladder(
        &self,
        wf: &CompiledWorkflow,
        def: &ReviewRoundDef,
        assignment_id: Uuid,
        expert_id: Uuid,
        now: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, Vec<TimerPlan>) {
        let Some(after) = def.deadline else {
            return (None, Vec::new());
        };
        let deadline_def = DeadlineDef {
            after: Some(after),
            date_field: None,
            after_field: None,
            reminders: def.reminders.clone(),
            escalations: Vec::new(),
            timeout: None,
        };
        let state = StateDef {
            id: def.opens_in.clone(),
            title: def.title.clone(),
            stage: String::new(),
            initial: false,
            is_final: false,
            requires: Vec::new(),
            assignees: Vec::new(),
            deadline: Some(deadline_def.clone()),
            checkpoints: Vec::new(),
        };
        let Some(deadline) = deadline_for(&state, now, &Value::Null, &self.svc.calendar) else {
            return (None, Vec::new());
        };
        let prefix = assignment_timer_prefix(assignment_id);
        let timers = ladder_timers(
            &deadline_def,
            &def.reminders,
            &[expert_recipient(expert_id)],
            &deadline,
            now,
            wf.remind_at(),
            &self.svc.calendar,
        )
        .into_iter()
        .map(|mut t| {
            t.key = format!("{prefix}{}", t.key);
            t
        })
        .collect();
        (Some(deadline.due_at), timers)
    }

    #[allow(
        clippy::needless_pass_by_value,
        reason = "used as `map_err(Self::conflict_error)`"
    )]
    pub(super) fn conflict_error(c: ReviewConflict) -> ReviewServiceError {
        match c {
            ReviewConflict::RoundClosed => ReviewServiceError::RoundClosed,
            ReviewConflict::AssignmentChanged { .. } => ReviewServiceError::AssignmentChanged,
            _ => ReviewServiceError::Busy,
        }
    }
}
