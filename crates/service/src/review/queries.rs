//! Read views (the expert's queue, the review form, round summaries, the ranking and its
//! workbook) and blindness: who sees what of an application under review.

use super::*;

impl Reviews {
    pub(super) async fn org_and_creator(
        &self,
        instance: &Instance,
    ) -> ReviewResultOf<(String, String)> {
        let org = self.store().get_org(instance.org_id).await?;
        let creator = self
            .store()
            .get_users(&[instance.created_by])
            .await?
            .into_iter()
            .next()
            .map(|u| u.display_name)
            .unwrap_or_default();
        Ok((org.name, creator))
    }

    /// The expert's queue with deadlines: open rounds only unless `include_closed`.
    pub async fn my_reviews(
        &self,
        user: &User,
        include_closed: bool,
    ) -> ReviewResultOf<Vec<QueueItem>> {
        if !user.active || !user.has_role(Role::Expert) {
            return Ok(Vec::new());
        }
        let records = self.store().expert_queue(user.id, include_closed).await?;
        let ids: Vec<Uuid> = records.iter().map(|r| r.instance_id).collect();
        let instances: HashMap<Uuid, Instance> = self
            .store()
            .get_instances(&ids)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        // The units and creators a blind title is redacted with, and the calls' rules,
        // read once for the whole queue rather than once per assignment.
        let orgs: Vec<Uuid> = instances.values().map(|i| i.org_id).collect();
        let orgs: HashMap<Uuid, String> = self
            .store()
            .get_orgs(&orgs)
            .await?
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect();
        let creators: Vec<Uuid> = instances.values().map(|i| i.created_by).collect();
        let creators: HashMap<Uuid, String> = self
            .store()
            .get_users(&creators)
            .await?
            .into_iter()
            .map(|u| (u.id, u.display_name))
            .collect();
        let mut rules: HashMap<Option<String>, grantflow_programme::rules::CallRules> =
            HashMap::new();
        let mut out = Vec::new();
        for rec in records {
            let Some(instance) = instances.get(&rec.instance_id) else {
                continue;
            };
            let wf = self.svc.workflow_of(instance)?;
            let def = Self::round_def(&wf, &rec.round_id)?;
            let call = instance
                .data
                .get("call_id")
                .and_then(Value::as_str)
                .map(str::to_string);
            if !rules.contains_key(&call) {
                let r = self.svc.rules_of_data(&instance.data).await?;
                rules.insert(call.clone(), r);
            }
            let def = crate::programme::round_with_rules(&rec.round_id, &def, &rules[&call]);
            let title = if def.blind {
                let org = orgs.get(&instance.org_id).cloned().unwrap_or_default();
                let creator = creators
                    .get(&instance.created_by)
                    .cloned()
                    .unwrap_or_default();
                redact_instance(instance, &org, &creator).0
            } else {
                instance.title.clone()
            };
            out.push(QueueItem {
                assignment: rec,
                round: def,
                title,
            });
        }
        // Soonest deadline first.
        out.sort_by_key(|q| {
            (
                q.assignment.due_at.is_none(),
                q.assignment.due_at,
                q.assignment.id,
            )
        });
        Ok(out)
    }

    /// The review form of an assignment for its expert.
    pub async fn review_form(&self, user: &User, id: Uuid) -> ReviewResultOf<ReviewForm> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance).await?;
        let me = lifecycle(&rec)?;
        let (org, creator) = self.org_and_creator(&instance).await?;
        let title = if def.blind {
            redact_instance(&instance, &org, &creator).0
        } else {
            instance.title.clone()
        };
        let record = if def.blind {
            let (t, data) = redact_instance(&instance, &org, &creator);
            json!({ "title": t, "applicant": Value::Null, "data": data })
        } else {
            json!({ "title": instance.title, "applicant": org, "data": instance.data })
        };
        let (application, hidden) =
            match grantflow_review::blind::application_view(&me, false, &record, &[]) {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e)),
            };
        let records = self
            .store()
            .round_records(rec.instance_id, &rec.round_id, rec.cycle)
            .await?;
        let panel: Vec<Assignment> = records
            .assignments
            .iter()
            .filter_map(|r| lifecycle(r).ok())
            .collect();
        let peers = peer_scores(&me, &panel).ok();
        let (needs_justification, panel_median) = if peers.is_some() {
            let evaluation = evaluate(&def, &records);
            (
                evaluation.pending().contains(&user.id.to_string().as_str()),
                Some(evaluation.full.median_total()),
            )
        } else {
            (false, None)
        };
        Ok(ReviewForm {
            assignment: rec,
            round: def,
            title,
            application,
            application_hidden: hidden,
            peer_scores: peers,
            needs_justification,
            panel_median,
        })
    }

    /// The summary of a round cycle of an instance (managers): the open round by default,
    /// else the latest cycle of the named (or any) round that has assignments.
    pub async fn round_summary(
        &self,
        user: &User,
        instance_id: Uuid,
        round_id: Option<&str>,
        cycle: Option<i64>,
    ) -> ReviewResultOf<RoundSummary> {
        Self::require_manager(user)?;
        let instance = self.instance(instance_id).await?;
        let wf = self.svc.workflow_of(&instance)?;
        let all = self.store().instance_assignments(instance.id).await?;
        let open = Self::round_in_state(&wf, &instance.state);
        let round_id = match (round_id, &open) {
            (Some(r), _) => r.to_string(),
            (None, Some((r, _))) => r.clone(),
            (None, None) => all
                .iter()
                .max_by_key(|a| (a.cycle, a.assigned_at))
                .map(|a| a.round_id.clone())
                .ok_or_else(|| ReviewServiceError::NoOpenRound {
                    state: instance.state.clone(),
                })?,
        };
        let def = Self::round_def(&wf, &round_id)?;
        let def = self.with_call_rules(&instance, &round_id, &def).await?;
        let cycle = match cycle {
            Some(c) => c,
            None => match self.store().round_cycle(instance.id, &def.opens_in).await? {
                Some(c) => c,
                None => all
                    .iter()
                    .filter(|a| a.round_id == round_id)
                    .map(|a| a.cycle)
                    .max()
                    .ok_or_else(|| ReviewServiceError::NoOpenRound {
                        state: instance.state.clone(),
                    })?,
            },
        };
        let records = self
            .store()
            .round_records(instance.id, &round_id, cycle)
            .await?;
        let open = self.store().round_cycle(instance.id, &def.opens_in).await? == Some(cycle);
        let evaluation = evaluate(&def, &records);
        Ok(RoundSummary {
            instance,
            round_id,
            round: def,
            cycle,
            open,
            assignments: records.assignments,
            evaluation,
        })
    }

    /// The ranking of a call's applications (instances whose `data.call_id` is `call_id`)
    /// by their latest cycle of `round_id` (default `application_review`), with the
    /// review crate's tie-breaks: total, median, lowest total, number of scores.
    pub async fn ranking(
        &self,
        user: &User,
        call_id: &str,
        round_id: Option<&str>,
    ) -> ReviewResultOf<Ranking> {
        Self::require_manager(user)?;
        let round_id = round_id.unwrap_or("application_review").to_string();
        let mut def: Option<ReviewRoundDef> = None;
        let mut instances: Vec<Instance> = Vec::new();
        let mut seen = BTreeSet::new();
        for wf in self.svc.workflows.all() {
            let Some(d) = wf.def.reviews.get(&round_id) else {
                continue;
            };
            if !seen.insert(wf.def.id.clone()) {
                continue;
            }
            def.get_or_insert_with(|| d.clone());
            instances.extend(self.store().call_instances(&wf.def.id, call_id).await?);
        }
        let def = def.ok_or_else(|| ReviewServiceError::not_found("review round"))?;
        let call_rules = self
            .svc
            .rules_of_data(&serde_json::json!({ "call_id": call_id }))
            .await?;
        let def = crate::programme::round_with_rules(&round_id, &def, &call_rules);
        // Every application's assignments in one read (not two per application); each
        // is ranked by its latest cycle of the round.
        let ids: Vec<Uuid> = instances.iter().map(|i| i.id).collect();
        let mut assignments: HashMap<Uuid, Vec<AssignmentRecord>> = HashMap::new();
        for a in self.store().assignments_of(&ids).await? {
            if a.round_id == round_id {
                assignments.entry(a.instance_id).or_default().push(a);
            }
        }
        let mut results = Vec::new();
        let mut by_id: BTreeMap<String, Instance> = BTreeMap::new();
        for instance in instances {
            let mine = assignments.remove(&instance.id).unwrap_or_default();
            let result = match mine.iter().map(|a| a.cycle).max() {
                Some(cycle) => {
                    let assignments: Vec<AssignmentRecord> =
                        mine.into_iter().filter(|a| a.cycle == cycle).collect();
                    let records = RoundRecords {
                        instance_id: instance.id,
                        round_id: round_id.clone(),
                        cycle,
                        open: assignments.first().is_some_and(|a| a.round_open),
                        assignments,
                    };
                    evaluate(&def, &records).counted
                }
                None => aggregate_application(&def, &instance.id.to_string(), &[], &[]),
            };
            results.push(result);
            by_id.insert(instance.id.to_string(), instance);
        }
        let rows = rank_applications(&results)
            .into_iter()
            .filter_map(|ranked| {
                let instance = by_id.get(&ranked.application_id)?.clone();
                Some(RankingRow { ranked, instance })
            })
            .collect();
        Ok(Ranking {
            round_id,
            round: def,
            rows,
            results,
        })
    }

    /// The ranking as an XLSX workbook (ranking, summary and expert scores sheets).
    pub async fn ranking_xlsx(
        &self,
        user: &User,
        call_id: &str,
        round_id: Option<&str>,
    ) -> ReviewResultOf<Vec<u8>> {
        let ranking = self.ranking(user, call_id, round_id).await?;
        let labels: BTreeMap<String, String> = ranking
            .rows
            .iter()
            .map(|r| (r.ranked.application_id.clone(), r.instance.title.clone()))
            .collect();
        let ranked: Vec<RankedApplication> =
            ranking.rows.iter().map(|r| r.ranked.clone()).collect();
        Ok(grantflow_review::export::round_workbook(
            &ranking.round,
            &ranked,
            &ranking.results,
            &labels,
        )?)
    }

    // ------------------------------------------------------------ blindness

    /// Whether `user` sees `instance` only as a reviewer of a blind round: then the
    /// applicant's identity must be hidden from them. Managers, auditors, the city and
    /// the applicant's own unit see it.
    pub async fn is_blind_reviewer(
        &self,
        user: &User,
        instance: &Instance,
    ) -> ReviewResultOf<bool> {
        if !sees_only_as_reviewer(user, instance) {
            return Ok(false);
        }
        let wf = self.svc.workflow_of(instance)?;
        let mine = self.store().instance_assignments(instance.id).await?;
        Ok(mine.iter().any(|a| {
            a.expert_id == user.id && wf.def.reviews.get(&a.round_id).is_some_and(|r| r.blind)
        }))
    }

    /// The title and data of `instance` as `user` may see them: redacted for a blind
    /// reviewer, `None` when nothing needs hiding.
    pub async fn blind_view(
        &self,
        user: &User,
        instance: &Instance,
    ) -> ReviewResultOf<Option<(String, Value)>> {
        if !self.is_blind_reviewer(user, instance).await? {
            return Ok(None);
        }
        let (org, creator) = self.org_and_creator(instance).await?;
        Ok(Some(redact_instance(instance, &org, &creator)))
    }

    /// Whether `user` may read the aggregated result of `instance`: everyone who sees the
    /// instance, except experts who have not submitted their own scores on it.
    pub async fn may_see_result(&self, user: &User, instance: &Instance) -> ReviewResultOf<bool> {
        if !sees_only_as_reviewer(user, instance) {
            return Ok(true);
        }
        // Their assignment in the latest round on the instance: the one the result is of.
        let mine = self.store().instance_assignments(instance.id).await?;
        Ok(mine
            .iter()
            .filter(|a| a.expert_id == user.id)
            .max_by_key(|a| (a.cycle, a.assigned_at))
            .is_some_and(|a| a.state == grantflow_store::review::assignment_state::SUBMITTED))
    }

    /// A title in the two languages, for errors and lists.
    pub fn round_title(def: &ReviewRoundDef) -> I18nText {
        def.title.clone()
    }
}
