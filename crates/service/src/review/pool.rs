//! The expert pool and applicants' exclusion requests.

use super::*;

impl Reviews {
    /// Every expert of the pool with their current load (managers).
    pub async fn expert_pool(&self, user: &User) -> ReviewResultOf<Vec<PoolEntry>> {
        Self::require_manager(user)?;
        let profiles = self.store().expert_profiles().await?;
        let ids: Vec<Uuid> = profiles.iter().map(|p| p.user_id).collect();
        let users: HashMap<Uuid, User> = self
            .store()
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let loads: HashMap<Uuid, u32> = self.store().open_loads().await?.into_iter().collect();
        let mut collaborations: HashMap<Uuid, Vec<_>> = HashMap::new();
        for c in self.store().collaborations(None).await? {
            collaborations.entry(c.expert_id).or_default().push(c);
        }
        // Counted for the whole pool in one read, not one queue per expert.
        let late: HashMap<Uuid, u32> = self.store().late_reviews().await?.into_iter().collect();
        let mut out: Vec<PoolEntry> = Vec::new();
        for p in profiles {
            let Some(user) = users.get(&p.user_id).cloned() else {
                continue;
            };
            let late_reviews = late.get(&p.user_id).copied().unwrap_or(0);
            let suspension_due = p.status == expert_status::ACTIVE
                && self.policy.late_reviews_before_suspension > 0
                && late_reviews >= self.policy.late_reviews_before_suspension;
            out.push(PoolEntry {
                load: loads.get(&p.user_id).copied().unwrap_or(0),
                collaborations: collaborations.remove(&p.user_id).unwrap_or_default(),
                late_reviews,
                suspension_due,
                user,
                profile: p,
            });
        }
        out.sort_by(|a, b| a.user.username.cmp(&b.user.username));
        Ok(out)
    }

    /// Create or change an expert's profile (managers). The user must hold the expert
    /// role.
    pub async fn upsert_expert_profile(
        &self,
        user: &User,
        update: ProfileUpdate,
    ) -> ReviewResultOf<ExpertProfile> {
        Self::require_manager(user)?;
        let expert = match self.store().get_user(update.user_id).await {
            Ok(u) => u,
            Err(StoreError::NotFound { .. }) => return Err(ReviewServiceError::not_found("user")),
            Err(e) => return Err(e.into()),
        };
        if !expert.has_role(Role::Expert) {
            return Err(ReviewServiceError::NotAnExpert { user_id: expert.id });
        }
        for c in &update.categories {
            Category::new(*c)?;
        }
        if !expert_status::ALL.contains(&update.status.as_str()) {
            return Err(ReviewServiceError::invalid(
                "status",
                format!(
                    "专家状态「{}」无效，须为 active、suspended 或 retired",
                    update.status
                ),
                format!(
                    "unknown expert status `{}`: use active, suspended or retired",
                    update.status
                ),
            ));
        }
        let keywords: Vec<String> = update
            .keywords
            .iter()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        Ok(self
            .store()
            .upsert_expert_profile(ExpertProfileInput {
                user_id: update.user_id,
                categories: update.categories,
                keywords,
                workload_cap: update.workload_cap,
                status: update.status,
                at: self.svc.now(),
            })
            .await?)
    }

    /// Record that an expert collaborated with an organisation until a date (managers).
    pub async fn record_collaboration(
        &self,
        user: &User,
        expert_id: Uuid,
        org_id: Uuid,
        until: chrono::NaiveDate,
        note: Option<String>,
    ) -> ReviewResultOf<grantflow_store::review::Collaboration> {
        Self::require_manager(user)?;
        grantflow_domain::dates::check_date(until).map_err(|e| ReviewServiceError::Invalid {
            field: "until".into(),
            zh: e.message_zh(),
            en: e.message_en(),
        })?;
        let expert = self.store().get_user(expert_id).await?;
        if !expert.has_role(Role::Expert) {
            return Err(ReviewServiceError::NotAnExpert { user_id: expert_id });
        }
        self.store().get_org(org_id).await?;
        Ok(self
            .store()
            .add_collaboration(NewCollaboration {
                expert_id,
                org_id,
                until,
                note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
                at: self.svc.now(),
            })
            .await?)
    }

    // ------------------------------------------------------------ applicants

    /// The applicant asks to exclude experts of some organisations (申请回避单位), at most
    /// the policy's number, before the review starts. Replaces an earlier request.
    pub async fn request_exclusions(
        &self,
        user: &User,
        instance_id: Uuid,
        org_ids: Vec<Uuid>,
    ) -> ReviewResultOf<Vec<Uuid>> {
        let instance = self.instance(instance_id).await?;
        if !can_see(self.store(), user, &instance).await? {
            return Err(ReviewServiceError::not_found("instance"));
        }
        let own_unit = user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id);
        if !own_unit && !is_manager(user) {
            return Err(ServiceError::Forbidden.into());
        }
        let wf = self.svc.workflow_of(&instance)?;
        let in_round = Self::round_in_state(&wf, &instance.state).is_some();
        if in_round
            || instance.is_final
            || !self
                .store()
                .instance_assignments(instance.id)
                .await?
                .is_empty()
        {
            return Err(ReviewServiceError::ReviewStarted);
        }
        let mut orgs = org_ids;
        orgs.sort();
        orgs.dedup();
        let mut application = application_of(&instance, &orgs);
        application.excluded_org_ids = orgs.iter().map(Uuid::to_string).collect();
        validate_application(&application, &self.policy)?;
        let found = self.store().get_orgs(&orgs).await?;
        if found.len() != orgs.len() {
            return Err(ReviewServiceError::invalid(
                "organisationIds",
                "回避单位中有不存在的单位",
                "an organisation to exclude does not exist",
            ));
        }
        self.store()
            .set_exclusions(instance.id, &orgs, user.id, self.svc.now())
            .await?;
        Ok(self.store().exclusions(instance.id).await?)
    }
}
