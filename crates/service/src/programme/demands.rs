//! Demands: import from the 需求征集表, submission, duplicate candidates, merges, the
//! consolidated list and exports.

use super::*;

impl Services {
    /// The unit demands are created for: an applicant's own unit; a unit of the city
    /// bureau's city; any unit for managers.
    pub(super) async fn demand_unit(
        &self,
        user: &User,
        org_id: Option<Uuid>,
    ) -> ServiceResult<Uuid> {
        let org_id = match (org_id, user.org_id) {
            (Some(o), _) => o,
            (None, Some(own)) if user.has_role(Role::Applicant) => own,
            _ => {
                return invalid("organisationId", "须指定所属单位", "the unit is required");
            }
        };
        let org = match self.store.get_org(org_id).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(ServiceError::NotFound("organisation".into()));
            }
            other => other?,
        };
        let allowed = user.active
            && (user.has_role(Role::Manager)
                || (user.has_role(Role::Applicant) && user.org_id == Some(org.id))
                || (user.has_role(Role::City)
                    && org.kind == OrgKind::Unit
                    && org.parent_id.is_some()
                    && org.parent_id == user.org_id));
        if !allowed {
            return Err(ServiceError::Forbidden);
        }
        Ok(org.id)
    }

    /// Import a filled-in 需求征集表 for a unit: every row becomes a demand of the call in
    /// `drafting`, all in one transaction. With any bad row nothing is imported
    /// (`IMPORT_REJECTED`, each row's errors in `details.rows`) unless `mode` is
    /// good-rows-only, which imports the rest and reports the bad rows. A bare number
    /// under a budget header without 元/万元 needs `how.amount_unit`, or its cell is
    /// refused (`IMPORT_AMOUNT_UNIT_MISSING`).
    pub async fn import_demands(
        &self,
        user: &User,
        call_id: Uuid,
        org_id: Option<Uuid>,
        bytes: &[u8],
        file_name: &str,
        how: DemandImport,
    ) -> ServiceResult<ImportOutcome> {
        let DemandImport { mode, amount_unit } = how;
        require_role(user, &[Role::Applicant, Role::City, Role::Manager])?;
        let call = self.call(user, call_id).await?;
        let unit = self.demand_unit(user, org_id).await?;
        let today = local_date(self.now());
        if call.status != grantflow_store::programme::CallStatus::Open || today > call.closing_date
        {
            return refused(Refusal::new(
                RefusalReason::CallClosed,
                format!("征集已于 {} 截止", call.closing_date),
                format!("the call closed on {}", call.closing_date),
            ));
        }
        let catalogue = catalogue_of(&call)?;
        // Parsing runs on the work pool, under the importer's caps, and stops when this
        // request is dropped.
        let bytes = bytes.to_vec();
        let file_name = file_name.to_string();
        let parsed = self
            .work
            .run(move |cancel| {
                let options = ImportOptions {
                    mode,
                    sheet: None,
                    catalogue: Some(&catalogue),
                    default_unit: amount_unit,
                    file_name,
                    limits: ImportLimits::default(),
                    cancel: cancel.clone(),
                };
                import_demands(&bytes, &options)
            })
            .await?;
        let report = match parsed {
            Ok(r) => r,
            Err(e) => {
                return refused(
                    Refusal::from_user_facing(RefusalReason::ImportFailed, &e)
                        .with_details(json!({ "code": e.code() })),
                );
            }
        };
        let errors: Vec<RowError> = report
            .errors
            .iter()
            .map(|e| RowError {
                row: e.row,
                column: e.column.clone(),
                header: e.header.clone(),
                code: e.code().to_string(),
                message_zh: e.message(Lang::ZhCn),
                message_en: e.message(Lang::En),
            })
            .collect();
        if !report.is_clean() && mode == ImportMode::AllOrNothing {
            let first = errors
                .first()
                .map(|e| e.message_zh.clone())
                .unwrap_or_default();
            let first_en = errors
                .first()
                .map(|e| e.message_en.clone())
                .unwrap_or_default();
            return refused(
                Refusal::new(
                    RefusalReason::ImportRejected,
                    format!(
                        "{} 行有误，未导入任何数据。{first}",
                        report.rejected_rows.len()
                    ),
                    format!(
                        "{} row(s) have errors; nothing was imported. {first_en}",
                        report.rejected_rows.len()
                    ),
                )
                .with_details(json!({
                    "rows": errors,
                    "rejectedRows": report.rejected_rows,
                    "errorCount": report.error_count,
                    "errorsTruncated": report.errors_truncated(),
                })),
            );
        }
        let wf = self
            .workflows
            .latest(DEMAND_WORKFLOW)
            .ok_or_else(|| ServiceError::NotFound(format!("workflow {DEMAND_WORKFLOW}")))?;
        let initial = wf
            .def
            .initial_state()
            .ok_or_else(|| ServiceError::NotFound("initial state".into()))?;
        let now = self.now();
        let mut new = Vec::with_capacity(report.importable.len());
        let call_rules = rule_fields(&rules_of(&call));
        for row in &report.importable {
            let mut data = self.check_initial_data(&wf, &demand_data(&call, &row.demand))?;
            if let Some(map) = data.as_object_mut() {
                for (field, value) in &call_rules {
                    if wf.def.fields.contains_key(field) {
                        map.insert(field.clone(), value.clone());
                    }
                }
            }
            let snapshot = Snapshot::initial(&wf, data);
            let (deadline, timers) = engine::initial_schedule(&wf, &snapshot, now, &self.calendar);
            let title: String = row.demand.project_name.chars().take(200).collect();
            new.push(NewInstance {
                id: Uuid::now_v7(),
                workflow_id: wf.def.id.clone(),
                workflow_version: wf.def.version,
                state: initial.id.clone(),
                stage: initial.stage.clone(),
                data: snapshot.data,
                parent_id: None,
                org_id: unit,
                title,
                created_by: user.id,
                created_at: now,
                due_at: deadline.map(|d| d.due_at),
                timers,
            });
        }
        let created = self.store.create_instances(new).await?;
        Ok(ImportOutcome {
            created,
            errors,
            error_count: report.error_count,
            rejected_rows: report.rejected_rows.clone(),
            skipped_rows: report.skipped.iter().map(|s| s.row).collect(),
            submitter: report.submitter.clone(),
        })
    }

    /// Submit drafted demands with what their data holds (an imported form): each is
    /// its own transition; the result per demand says whether it went through.
    pub async fn submit_demands(
        &self,
        user: &User,
        ids: &[Uuid],
    ) -> ServiceResult<Vec<(Uuid, Result<Applied, ServiceError>)>> {
        const KEYS: [&str; 10] = [
            "category",
            "policy_area",
            "catalogue_ref",
            "project_name",
            "direction",
            "applicant_name",
            "budget",
            "performance",
            "indicators",
            "comments",
        ];
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let result = async {
                let instance = self.visible_instance(user, id).await?;
                Self::expect_workflow(&instance, DEMAND_WORKFLOW)?;
                let mut input = Map::new();
                for k in KEYS {
                    if let Some(v) = instance.data.get(k) {
                        input.insert(k.to_string(), v.clone());
                    }
                }
                self.fire(
                    user,
                    FireEvent {
                        instance_id: id,
                        event: "submit".into(),
                        expected_version: instance.version,
                        idempotency_key: Some(format!("submit-demand:{id}")),
                        input: Value::Object(input),
                        reason: None,
                    },
                )
                .await
            }
            .await;
            out.push((id, result));
        }
        Ok(out)
    }

    pub(super) async fn org_names(
        &self,
        instances: &[&Instance],
    ) -> ServiceResult<HashMap<Uuid, String>> {
        let mut ids: Vec<Uuid> = instances.iter().map(|i| i.org_id).collect();
        ids.sort();
        ids.dedup();
        Ok(self
            .store
            .get_orgs(&ids)
            .await?
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect())
    }

    /// Each instance's title as the viewer may see it: redacted for those in `blind`
    /// ([`crate::redaction`]).
    pub(super) async fn shown_titles(
        &self,
        instances: &[Instance],
        blind: &std::collections::HashSet<Uuid>,
        org_names: &HashMap<Uuid, String>,
    ) -> ServiceResult<HashMap<Uuid, String>> {
        let mut creators: Vec<Uuid> = instances
            .iter()
            .filter(|i| blind.contains(&i.id))
            .map(|i| i.created_by)
            .collect();
        creators.sort();
        creators.dedup();
        let creator_names: HashMap<Uuid, String> = if creators.is_empty() {
            HashMap::new()
        } else {
            self.store
                .get_users(&creators)
                .await?
                .into_iter()
                .map(|u| (u.id, u.display_name))
                .collect()
        };
        Ok(instances
            .iter()
            .map(|i| {
                let title = if blind.contains(&i.id) {
                    crate::redaction::redact_instance(
                        i,
                        org_names.get(&i.org_id).map_or("", String::as_str),
                        creator_names.get(&i.created_by).map_or("", String::as_str),
                    )
                    .0
                } else {
                    i.title.clone()
                };
                (i.id, title)
            })
            .collect())
    }

    /// Likely duplicates among the call's submitted demands the user may see, most
    /// similar first.
    pub async fn duplicate_candidates(
        &self,
        user: &User,
        call_id: Uuid,
    ) -> ServiceResult<Vec<DuplicateCandidate>> {
        require_role(user, &[Role::Manager, Role::City, Role::Auditor])?;
        let call = self.call(user, call_id).await?;
        let demands: Vec<Instance> = self
            .visible_of_call(user, DEMAND_WORKFLOW, &call)
            .await?
            .into_iter()
            .filter(|i| SUBMITTED_DEMAND_STATES.contains(&i.state.as_str()))
            .collect();
        let names = self.org_names(&demands.iter().collect::<Vec<_>>()).await?;
        let rows: Vec<Demand> = demands
            .iter()
            .map(|i| demand_of(i, names.get(&i.org_id).map_or("", String::as_str)))
            .collect();
        // Every pair is scored: on the work pool, capped, and stopped with the request.
        let pairs = self
            .work
            .run(move |cancel| find_duplicates_within(&rows, &SimilarityConfig::default(), cancel))
            .await?
            .map_err(|e| {
                ServiceError::Refused(Box::new(
                    Refusal::from_user_facing(RefusalReason::Rule(e.code()), &e)
                        .with_details(json!({ "code": e.code() })),
                ))
            })?;
        Ok(pairs
            .into_iter()
            .map(|p| DuplicateCandidate {
                first: demands[p.first].clone(),
                second: demands[p.second].clone(),
                scores: p.scores,
                reasons: p.reasons,
            })
            .collect())
    }

    /// Merge a duplicate into the demand that goes forward: the duplicate is rejected
    /// (`reject_duplicate`, `duplicate_of` = the kept one) and the merge record keeps both
    /// sources. Repeating the merge changes nothing.
    pub async fn merge_demands(
        &self,
        user: &User,
        kept_id: Uuid,
        duplicate_id: Uuid,
        reason: Option<String>,
    ) -> ServiceResult<(DemandMerge, Instance)> {
        require_role(user, &[Role::Manager])?;
        if kept_id == duplicate_id {
            return invalid(
                "duplicateId",
                "不能将需求与其自身合并",
                "a demand cannot be merged into itself",
            );
        }
        let kept = self.visible_instance(user, kept_id).await?;
        let dup = self.visible_instance(user, duplicate_id).await?;
        Self::expect_workflow(&kept, DEMAND_WORKFLOW)?;
        Self::expect_workflow(&dup, DEMAND_WORKFLOW)?;
        let call_of = |i: &Instance| {
            i.data
                .get("call_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let call_key = call_of(&kept).unwrap_or_default();
        if call_of(&dup).as_deref() != Some(call_key.as_str()) {
            return refused(Refusal::new(
                RefusalReason::DifferentCalls,
                "两条需求不属于同一次征集",
                "the demands belong to different calls",
            ));
        }
        let call_id = Uuid::parse_str(&call_key).map_err(|_| {
            ServiceError::Refused(Box::new(Refusal::new(
                RefusalReason::NoCall,
                "需求未关联征集通知",
                "the demand is not linked to a call",
            )))
        })?;
        let names = self.org_names(&[&kept, &dup]).await?;
        let name_of = |i: &Instance| names.get(&i.org_id).cloned().unwrap_or_default();
        let kept_demand = demand_of(&kept, &name_of(&kept));
        let dup_demand = demand_of(&dup, &name_of(&dup));
        let similarity =
            demand_similarity(&kept_demand, &dup_demand, &SimilarityWeights::default()).overall;
        let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| {
            format!(
                "与需求「{}」重复（相似度 {:.2}），已合并，保留双方来源",
                kept.title, similarity
            )
        });
        if dup.state != "rejected_duplicate" {
            self.fire(
                user,
                FireEvent {
                    instance_id: dup.id,
                    event: "reject_duplicate".into(),
                    expected_version: dup.version,
                    idempotency_key: Some(format!("merge:{}", dup.id)),
                    input: json!({ "duplicate_of": kept.id.to_string() }),
                    reason: Some(reason),
                },
            )
            .await?;
        }
        let source = |i: &Instance, d: &Demand| {
            json!({
                "instance_id": i.id,
                "title": i.title,
                "organisation_id": i.org_id,
                "organisation": name_of(i),
                "state": i.state,
                "demand": d,
            })
        };
        let merge = self
            .store
            .record_demand_merge(DemandMerge {
                id: Uuid::now_v7(),
                call_id,
                kept_id: kept.id,
                merged_id: dup.id,
                similarity,
                kept_source: source(&kept, &kept_demand),
                merged_source: source(&dup, &dup_demand),
                merged_by: user.id,
                merged_at: self.now(),
            })
            .await?;
        Ok((merge, kept))
    }

    /// The consolidated demands of a call (汇总): each demand going forward with the
    /// sources merged into it; duplicates, withdrawn, lapsed, rejected and unsubmitted
    /// demands are left out.
    pub async fn consolidated_demands(
        &self,
        user: &User,
        call_id: Uuid,
    ) -> ServiceResult<(Call, Vec<(Instance, MergedDemand)>)> {
        let call = self.call(user, call_id).await?;
        let demands = self.visible_of_call(user, DEMAND_WORKFLOW, &call).await?;
        let merges = self.store.demand_merges(call.id).await?;
        let names = self.org_names(&demands.iter().collect::<Vec<_>>()).await?;
        // A merged-away demand the user may not see (another city's) is not shown in its
        // kept row either.
        let visible: std::collections::HashSet<Uuid> = demands.iter().map(|i| i.id).collect();
        let mut out = Vec::new();
        for i in &demands {
            if CLOSED_DEMAND_STATES.contains(&i.state.as_str()) {
                continue;
            }
            let mut merged = MergedDemand::single(demand_of(
                i,
                names.get(&i.org_id).map_or("", String::as_str),
            ));
            for m in merges
                .iter()
                .filter(|m| m.kept_id == i.id && visible.contains(&m.merged_id))
            {
                if let Some(d) = m
                    .merged_source
                    .get("demand")
                    .and_then(|d| serde_json::from_value::<Demand>(d.clone()).ok())
                {
                    merged.absorb(MergedDemand::single(d));
                }
            }
            out.push((i.clone(), merged));
        }
        Ok((call, out))
    }

    /// The consolidated table (需求汇总表) as XLSX or CSV.
    pub async fn export_demands(
        &self,
        user: &User,
        call_id: Uuid,
        format: ExportFormat,
    ) -> ServiceResult<ExportFile> {
        let (call, rows) = self.consolidated_demands(user, call_id).await?;
        let merged: Vec<MergedDemand> = rows.into_iter().map(|(_, m)| m).collect();
        let sheet = demand_sheet(Some(format!("{}（汇总表）", call.title)), &merged);
        self.render(format, format!("{}年需求汇总表", call.year), vec![sheet])
            .await
    }

    /// Any list of instances the user may see (at most 10 000 rows) as XLSX or CSV.
    pub async fn export_instances(
        &self,
        user: &User,
        filter: &InstanceFilter,
        format: ExportFormat,
    ) -> ServiceResult<ExportFile> {
        const MAX_ROWS: usize = 10_000;
        let visibility = visibility_for(user);
        let blind = self.blind_instance_ids(user).await?;
        let filter = &crate::redaction::hide_identity(filter, &blind);
        let mut page = PageRequest {
            first: 100,
            after: None,
            sort: SortKey::CreatedAt,
            order: SortOrder::Asc,
            with_total: true,
        };
        let mut instances = Vec::new();
        loop {
            let p = self
                .store
                .list_instances(&visibility, filter, &page)
                .await?;
            let last = p.items.last().map(|(_, c)| c.clone());
            instances.extend(p.items.into_iter().map(|(i, _)| i));
            if !p.has_next_page || instances.len() >= MAX_ROWS {
                break;
            }
            page.after = last;
        }
        instances.truncate(MAX_ROWS);
        let names = self
            .org_names(&instances.iter().collect::<Vec<_>>())
            .await?;
        let shown = self.shown_titles(&instances, &blind, &names).await?;
        let state_title = |i: &Instance| {
            self.workflow_of(i)
                .ok()
                .and_then(|wf| wf.def.state(&i.state).map(|s| s.title.zh_cn.clone()))
                .unwrap_or_else(|| i.state.clone())
        };
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| {
                t.with_timezone(&grantflow_domain::calendar::TIMEZONE)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default()
        };
        let table = Table {
            columns: [
                "编号",
                "流程",
                "标题",
                "状态",
                "状态代码",
                "阶段",
                "所属单位",
                "截止时间",
                "创建时间",
                "更新时间",
                "版本",
            ]
            .map(String::from)
            .to_vec(),
            rows: instances
                .iter()
                .map(|i| {
                    vec![
                        i.id.to_string(),
                        i.workflow_id.clone(),
                        shown.get(&i.id).cloned().unwrap_or_default(),
                        state_title(i),
                        i.state.clone(),
                        i.stage.clone(),
                        if blind.contains(&i.id) {
                            String::new()
                        } else {
                            names.get(&i.org_id).cloned().unwrap_or_default()
                        },
                        time(i.due_at),
                        time(Some(i.created_at)),
                        time(Some(i.updated_at)),
                        i.version.to_string(),
                    ]
                })
                .collect(),
        };
        self.render(
            format,
            "实例列表".into(),
            vec![Sheet::from_table("实例列表", &table)],
        )
        .await
    }
}
