//! The programme's mutations, merged into the mutation root.

use super::*;

#[derive(Default)]
pub struct ProgrammeMutation;

#[Object]
impl ProgrammeMutation {
    /// Open a call with its catalogue (managers).
    async fn open_call(&self, ctx: &Context<'_>, input: OpenCallInput) -> Result<CallGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let catalogue = match (&input.catalogue_toml, &input.categories) {
            (Some(text), None) => Catalogue::from_toml_str(text).map_err(|e| {
                ApiError::invalid_field(
                    "catalogueToml",
                    &e.message(Lang::ZhCn),
                    &e.message(Lang::En),
                )
                .with_details(serde_json::json!({ "reason": e.code() }))
            })?,
            (None, Some(rows)) => catalogue_from_rows(&input, rows)?,
            _ => {
                return Err(ApiError::invalid_field(
                    "catalogueToml",
                    "须提供项目目录文件或目录条目之一",
                    "give either the catalogue file or its rows",
                )
                .into());
            }
        };
        let call = rc(ctx)
            .services
            .open_call(
                &v.user,
                OpenCall {
                    year: input.year,
                    title: input.title,
                    issuer: input.issuer,
                    closing_date: input.closing_date,
                    correction_window_days: input
                        .correction_window_days
                        .and_then(|d| u32::try_from(d).ok()),
                    catalogue,
                },
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(CallGql(call))
    }

    /// Close a call: no new demands or applications and no more submissions (managers).
    async fn close_call(&self, ctx: &Context<'_>, id: ID) -> Result<CallGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        if !v.has_role(grantflow_store::Role::Manager) {
            return Err(ApiError::forbidden().into());
        }
        let call = rc(ctx)
            .services
            .close_call(&v.user, parse_id(&id, "id")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(CallGql(call))
    }

    /// Import a filled-in 需求征集表 (XLSX, base64) for a unit: one demand per row, all in
    /// one transaction. Any bad row rejects the whole file (INVALID_INPUT, reason
    /// IMPORT_REJECTED, every error with row and column in `details.rows`) unless
    /// `mode` is GOOD_ROWS_ONLY.
    #[allow(
        clippy::too_many_arguments,
        reason = "each GraphQL argument of the mutation is a parameter of its resolver"
    )]
    async fn import_demands(
        &self,
        ctx: &Context<'_>,
        call_id: ID,
        file_base64: String,
        #[graphql(default_with = "\"需求征集表.xlsx\".to_string()")] file_name: String,
        #[graphql(default)] mode: ImportModeGql,
        organisation_id: Option<ID>,
        #[graphql(
            desc = "Unit of bare numbers under a budget header without 元/万元; without it such cells are refused (IMPORT_AMOUNT_UNIT_MISSING)."
        )]
        amount_unit: Option<AmountUnitGql>,
    ) -> Result<ImportDemandsPayload> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file_base64.trim())
            .map_err(|_| {
                ApiError::invalid_field(
                    "fileBase64",
                    "文件内容不是有效的 base64",
                    "the file is not valid base64",
                )
            })?;
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(ApiError::invalid_field(
                "fileBase64",
                "文件过大（最多 5 MB）",
                "the file is too large (at most 5 MB)",
            )
            .into());
        }
        let outcome = rc(ctx)
            .services
            .import_demands(
                &v.user,
                parse_id(&call_id, "callId")?,
                opt_id(&organisation_id, "organisationId")?,
                &bytes,
                &file_name,
                DemandImport {
                    mode: match mode {
                        ImportModeGql::AllOrNothing => ImportMode::AllOrNothing,
                        ImportModeGql::GoodRowsOnly => ImportMode::GoodRowsOnly,
                    },
                    amount_unit: amount_unit.map(Into::into),
                },
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        let errors_truncated = outcome.error_count > outcome.errors.len();
        Ok(ImportDemandsPayload {
            created: outcome.created.into_iter().map(InstanceGql).collect(),
            errors: outcome
                .errors
                .into_iter()
                .map(|e| ImportRowError {
                    row: e.row,
                    column: e.column,
                    header: e.header,
                    code: e.code,
                    message_zh: e.message_zh,
                    message_en: e.message_en,
                })
                .collect(),
            error_count: u32::try_from(outcome.error_count).unwrap_or(u32::MAX),
            errors_truncated,
            rejected_rows: outcome.rejected_rows,
            skipped_rows: outcome.skipped_rows,
            submitter: outcome.submitter,
        })
    }

    /// Submit drafted demands with what they hold (e.g. just imported); each is its own
    /// transition and reports its own result.
    async fn submit_demands(
        &self,
        ctx: &Context<'_>,
        instance_ids: Vec<ID>,
    ) -> Result<Vec<SubmitDemandResult>> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        if instance_ids.len() > 500 {
            return Err(ApiError::invalid_field(
                "instanceIds",
                "一次最多提交 500 条",
                "at most 500 demands at once",
            )
            .into());
        }
        let ids = instance_ids
            .iter()
            .map(|i| parse_id(i, "instanceIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let r = rc(ctx);
        let results = r
            .services
            .submit_demands(&v.user, &ids)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(results
            .into_iter()
            .map(|(id, result)| match result {
                Ok(applied) => SubmitDemandResult {
                    id: ID(id.to_string()),
                    submitted: true,
                    instance: Some(InstanceGql(applied.instance)),
                    error_code: None,
                    error_message: None,
                },
                Err(e) => {
                    let e = ApiError::user_facing(&e, &r.request_id);
                    SubmitDemandResult {
                        id: ID(id.to_string()),
                        submitted: false,
                        instance: None,
                        error_code: Some(e.code.as_str().to_string()),
                        error_message: Some(format!("{} ({})", e.message_zh, e.message_en)),
                    }
                }
            })
            .collect())
    }

    /// Merge a duplicate demand into the one that goes forward (managers): the duplicate
    /// is rejected as `reject_duplicate` with `duplicate_of`, the merge keeps both sources.
    async fn merge_demands(
        &self,
        ctx: &Context<'_>,
        kept_id: ID,
        duplicate_id: ID,
        reason: Option<String>,
    ) -> Result<MergeDemandsPayload> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let r = rc(ctx);
        let duplicate_id = parse_id(&duplicate_id, "duplicateId")?;
        let (merge, kept) = r
            .services
            .merge_demands(&v.user, parse_id(&kept_id, "keptId")?, duplicate_id, reason)
            .await
            .map_err(|e| service_err(ctx, e))?;
        let duplicate = r
            .services
            .store
            .get_instance(duplicate_id)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(MergeDemandsPayload {
            merge: DemandMergeGql(merge),
            kept: InstanceGql(kept),
            duplicate: InstanceGql(duplicate),
        })
    }

    /// Add a budget line to a project (managers). Approval needs one.
    async fn add_budget_line(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        input: BudgetLineInput,
    ) -> Result<BudgetLineGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let amount = money(&input.amount, "amount")?;
        let line = rc(ctx)
            .services
            .add_budget_line(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                input.year,
                &input.subject,
                amount,
                &input.source,
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(BudgetLineGql::new(&line, line.amount))
    }

    /// Record spending against a budget line (the project's unit or managers). Refused
    /// with INVALID_INPUT and `details.reason` BUDGET_LINE_MISSING, BUDGET_EXCEEDED (with
    /// `remaining`), NOT_APPROVED, SPENDING_BEFORE_APPROVAL or BUDGET_LINE_WRONG_YEAR.
    async fn record_spending(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        input: SpendingInput,
    ) -> Result<SpendingGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let amount = money(&input.amount, "amount")?;
        let record = rc(ctx)
            .services
            .record_spending(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                opt_id(&input.line_id, "lineId")?,
                amount,
                input.spent_on,
                &input.description,
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok((&record).into())
    }

    /// Record actual indicator values at the mid-term check or at acceptance, against the
    /// indicators frozen at approval.
    async fn record_indicator_actuals(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        checkpoint: CheckpointGql,
        actuals: Vec<ActualValueInput>,
    ) -> Result<Vec<IndicatorActual>> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let records = rc(ctx)
            .services
            .record_actuals(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                match checkpoint {
                    CheckpointGql::MidTerm => Checkpoint::MidTerm,
                    CheckpointGql::Acceptance => Checkpoint::Acceptance,
                },
                actuals
                    .into_iter()
                    .map(|a| ActualInput {
                        indicator_id: a.indicator_id,
                        value: a.value.0,
                        explanation: a.explanation,
                    })
                    .collect(),
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(records.into_iter().map(Into::into).collect())
    }

    /// Evaluate a project in `evaluation` (managers): the default method (budget
    /// execution 10, outputs 50, effects 30, satisfaction 10) scores the approved
    /// indicators; the result is stored and `grade` is fired with score and grade.
    async fn evaluate_project(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        qualitative: Option<Vec<QualitativeAssessmentInput>>,
        explanations: Option<Vec<ExplanationInput>>,
    ) -> Result<EvaluateProjectPayload> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let (record, applied) = rc(ctx)
            .services
            .evaluate_project(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                &judgements(qualitative),
                &self::explanations(explanations),
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(EvaluateProjectPayload {
            evaluation: stored_evaluation(record)?,
            instance: InstanceGql(applied.instance),
        })
    }

    /// Apply an approved change request to its project again (managers; the service
    /// does it when the request is approved; this is idempotent).
    async fn apply_change_request(
        &self,
        ctx: &Context<'_>,
        change_request_id: ID,
    ) -> Result<InstanceGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let applied = rc(ctx)
            .services
            .apply_change_request(&v.user, parse_id(&change_request_id, "changeRequestId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(InstanceGql(applied.instance))
    }
}
