//! The programme around the workflows: yearly calls and their catalogue, demands
//! (`demand-collection` instances of a call) imported from the 需求征集表, duplicates and
//! merges, budgets and spending (先有预算再有执行、没有预算不得支出), indicator actuals, the
//! performance evaluation, call summaries and exports.
//!
//! The rules are `grantflow-programme`'s; this module reads and writes through the store
//! and fires workflow events through [`Services::fire`], like every other change.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use grantflow_domain::calendar::local_date;
use grantflow_domain::engine::{self, Snapshot};
use grantflow_domain::input::FieldError;
use grantflow_domain::{Lang, Money};
use grantflow_programme::UserFacing;
use grantflow_programme::budget::{ProjectLedger, call_execution};
use grantflow_programme::catalogue::{
    Catalogue, CatalogueCategory, CatalogueItem, Category, Part, PolicyArea,
};
use grantflow_programme::demand::{Demand, DemandOrigin};
use grantflow_programme::evaluation::{
    Achievement, CallSummary, EvaluationInput, EvaluationMethod, EvaluationResult, Outcome,
    evaluate, summarize_call,
};
use grantflow_programme::export::{
    Sheet, Table, call_summary_sheet, demand_sheet, evaluation_sheet, indicator_score_sheet,
    write_csv, write_xlsx,
};
use grantflow_programme::import::{ImportLimits, ImportMode, ImportOptions, import_demands};
use grantflow_programme::indicator::{
    ChangeRequestRef, ChangeRequestStatus, Checkpoint, Direction, Indicator, IndicatorCategory,
    IndicatorSet, IndicatorSetStatus, IndicatorValue,
};
use grantflow_programme::similarity::{
    DuplicateReason, MergedDemand, SimilarityConfig, SimilarityScores, SimilarityWeights,
    demand_similarity, find_duplicates_within,
};
use grantflow_store::programme::{
    ActualRecord, BudgetLine, Call, CallCategory, CallItem, CallPolicyArea, DemandMerge,
    EvaluationRecord, IndicatorScoreRecord, NewCall, NewSpending, SpendingRecord, SpendingRefusal,
};
use grantflow_store::{
    Applied, Instance, InstanceFilter, NewInstance, OrgKind, PageRequest, Role, SortKey, SortOrder,
    StoreError, User,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{FireEvent, ServiceError, ServiceResult, Services, can_see, visibility_for};

pub const DEMAND_WORKFLOW: &str = "demand-collection";
pub const PROJECT_WORKFLOW: &str = "funded-project";
pub const CHANGE_WORKFLOW: &str = "change-request";

/// A refusal with a stable reason code (`BUDGET_LINE_MISSING`, `BUDGET_EXCEEDED`,
/// `NOT_APPROVED`, `IMPORT_REJECTED` …), messages in both languages and details.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub reason: String,
    pub message_zh: String,
    pub message_en: String,
    /// Extra facts for clients (e.g. `rows` of an import, `remaining` of a line).
    pub details: Value,
}

impl Refusal {
    pub fn new(reason: &str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Refusal {
            reason: reason.to_string(),
            message_zh: zh.into(),
            message_en: en.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    fn from_user_facing(reason: &str, e: &dyn UserFacing) -> Self {
        Refusal::new(reason, e.message(Lang::ZhCn), e.message(Lang::En))
    }
}

fn refused<T>(r: Refusal) -> ServiceResult<T> {
    Err(ServiceError::Refused(Box::new(r)))
}

fn invalid<T>(field: &str, zh: &str, en: &str) -> ServiceResult<T> {
    Err(ServiceError::Invalid(vec![FieldError::new(
        field,
        "INVALID_VALUE",
        zh,
        en,
    )]))
}

fn require_role(user: &User, roles: &[Role]) -> ServiceResult<()> {
    if user.active && roles.iter().any(|r| user.has_role(*r)) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

// ------------------------------------------------------------------ conversions

/// The snake-case code of a serde enum (`Category::Protection` → `protection`).
fn code_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn from_code<T: serde::de::DeserializeOwned>(code: &str) -> Option<T> {
    serde_json::from_value(Value::String(code.to_string())).ok()
}

/// A catalogue (the TOML format of `workflows/calls/`) as the store keeps it.
pub fn catalogue_rows(catalogue: &Catalogue) -> Vec<CallCategory> {
    catalogue
        .categories
        .iter()
        .map(|c| CallCategory {
            category: code_of(&c.category),
            title: c.title.clone(),
            policy_areas: c
                .policy_areas
                .iter()
                .map(|a| CallPolicyArea {
                    name: a.name.clone(),
                    items: a
                        .items
                        .iter()
                        .map(|i| CallItem {
                            item_id: i.id.clone(),
                            number: i.number.and_then(|n| i32::try_from(n).ok()),
                            name: i.name.clone(),
                            direction: i.direction.clone(),
                            applicant: i.applicant.clone(),
                            part: code_of(&i.part),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// A stored call's catalogue in `grantflow-programme`'s terms (to import and validate
/// demands against it).
pub fn catalogue_of(call: &Call) -> ServiceResult<Catalogue> {
    let bad = |what: &str, v: &str| {
        ServiceError::Store(StoreError::Backend(format!(
            "stored call has a bad {what} `{v}`"
        )))
    };
    let mut categories = Vec::new();
    for c in &call.categories {
        let category: Category =
            from_code(&c.category).ok_or_else(|| bad("category", &c.category))?;
        let mut areas = Vec::new();
        for a in &c.policy_areas {
            let mut items = Vec::new();
            for i in &a.items {
                let part: Part = from_code(&i.part).ok_or_else(|| bad("part", &i.part))?;
                items.push(CatalogueItem {
                    id: i.item_id.clone(),
                    number: i.number.and_then(|n| u32::try_from(n).ok()),
                    name: i.name.clone(),
                    direction: i.direction.clone(),
                    applicant: i.applicant.clone(),
                    part,
                });
            }
            areas.push(PolicyArea {
                name: a.name.clone(),
                items,
            });
        }
        categories.push(CatalogueCategory {
            category,
            title: c.title.clone(),
            policy_areas: areas,
        });
    }
    Ok(Catalogue {
        year: call.year,
        title: call.title.clone(),
        issuer: call.issuer.clone(),
        issued_on: None,
        deadline: Some(call.closing_date),
        categories,
    })
}

/// The indicators of workflow data (`indicators`, `approved_indicators`, `new_indicators`)
/// as `grantflow-programme` indicators. An indicator without an `id` is known by its name
/// (a second one of the same name gets `#2`).
pub fn indicators_from(value: Option<&Value>) -> Vec<Indicator> {
    let Some(items) = value.and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<Indicator> = Vec::new();
    for item in items {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let name = text("name");
        let mut id = text("id");
        if id.is_empty() {
            id = name.clone();
        }
        let mut unique = id.clone();
        let mut n = 2;
        while out.iter().any(|i| i.id == unique) {
            unique = format!("{id}#{n}");
            n += 1;
        }
        let direction: Direction =
            from_code(&text("direction")).unwrap_or(Direction::HigherIsBetter);
        let category: IndicatorCategory =
            from_code(&text("category")).unwrap_or(IndicatorCategory::OutputQuantity);
        let target = match item.get("target") {
            Some(Value::Number(n)) => IndicatorValue::Number(n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) => IndicatorValue::Text(s.clone()),
            _ => IndicatorValue::Text(String::new()),
        };
        out.push(Indicator {
            id: unique,
            category,
            name,
            unit: text("unit"),
            baseline: item.get("baseline").and_then(Value::as_f64),
            target,
            direction,
            weight: item.get("weight").and_then(Value::as_f64).unwrap_or(1.0),
        });
    }
    out
}

/// A demand instance's data as a row of the 需求征集表.
pub fn demand_of(instance: &Instance, submitter: &str) -> Demand {
    let d = &instance.data;
    let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let category = Category::from_label(&text("category")).unwrap_or(Category::ReformAndLayout);
    let catalogue_ref = text("catalogue_ref");
    Demand {
        id: Some(instance.id.to_string()),
        submitter: submitter.to_string(),
        category,
        policy_area: text("policy_area"),
        origin: if catalogue_ref.is_empty() {
            DemandOrigin::AddedRow
        } else {
            DemandOrigin::CatalogueItem {
                item_id: catalogue_ref,
            }
        },
        project_name: if text("project_name").is_empty() {
            instance.title.clone()
        } else {
            text("project_name")
        },
        direction: text("direction"),
        applicant: text("applicant_name"),
        budget: d
            .get("budget")
            .and_then(Value::as_str)
            .and_then(|b| Money::parse(b).ok()),
        performance_text: text("performance"),
        indicators: indicators_from(d.get("indicators")),
        comments: text("comments"),
        source: None,
    }
}

/// The instance data of an imported demand of `call`.
fn demand_data(call: &Call, demand: &Demand) -> Value {
    let mut data = Map::new();
    data.insert("call_id".into(), Value::from(call.id.to_string()));
    data.insert(
        "closing_date".into(),
        Value::from(call.closing_date.to_string()),
    );
    data.insert("category".into(), Value::from(demand.category.label()));
    let mut text = |k: &str, v: &str| {
        if !v.trim().is_empty() {
            data.insert(k.into(), Value::from(v.trim()));
        }
    };
    text("policy_area", &demand.policy_area);
    if let DemandOrigin::CatalogueItem { item_id } = &demand.origin {
        text("catalogue_ref", item_id);
    }
    text("project_name", &demand.project_name);
    text("direction", &demand.direction);
    text("applicant_name", &demand.applicant);
    text("performance", &demand.performance_text);
    text("comments", &demand.comments);
    if let Some(b) = demand.budget {
        data.insert("budget".into(), Value::from(b.to_string()));
    }
    if !demand.indicators.is_empty() {
        data.insert(
            "indicators".into(),
            serde_json::to_value(&demand.indicators).unwrap_or(Value::Null),
        );
    }
    Value::Object(data)
}

// ------------------------------------------------------------------ results

/// A file to download.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFile {
    pub file_name: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

impl ExportFormat {
    fn file(self, stem: &str, sheets: &[Sheet]) -> ServiceResult<ExportFile> {
        match self {
            ExportFormat::Xlsx => {
                let bytes = write_xlsx(sheets).map_err(|e| {
                    ServiceError::Store(StoreError::Backend(format!("writing XLSX: {e}")))
                })?;
                Ok(ExportFile {
                    file_name: format!("{stem}.xlsx"),
                    media_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    bytes,
                })
            }
            ExportFormat::Csv => Ok(ExportFile {
                file_name: format!("{stem}.csv"),
                media_type: "text/csv; charset=utf-8",
                bytes: sheets.first().map(write_csv).unwrap_or_default(),
            }),
        }
    }
}

impl Services {
    /// Writes `sheets` as a file on the work pool: writing an XLSX of thousands of rows is
    /// CPU work that must not hold an async worker.
    async fn render(
        &self,
        format: ExportFormat,
        stem: String,
        sheets: Vec<Sheet>,
    ) -> ServiceResult<ExportFile> {
        self.work.run(move |_| format.file(&stem, &sheets)).await?
    }
}

/// One row rejected by an import.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    pub row: u32,
    /// Column letter, absent when the column is missing from the sheet.
    pub column: Option<String>,
    pub header: String,
    pub code: String,
    pub message_zh: String,
    pub message_en: String,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub created: Vec<Instance>,
    /// The first errors (at most [`ImportLimits::max_errors`]).
    pub errors: Vec<RowError>,
    /// All errors found, listed or not.
    pub error_count: usize,
    pub rejected_rows: Vec<u32>,
    pub skipped_rows: Vec<u32>,
    pub submitter: Option<String>,
}

/// A likely duplicate pair of demands.
#[derive(Debug, Clone)]
pub struct DuplicateCandidate {
    pub first: Instance,
    pub second: Instance,
    pub scores: SimilarityScores,
    pub reasons: Vec<DuplicateReason>,
}

/// A project's budget as shown to users.
#[derive(Debug, Clone)]
pub struct BudgetView {
    pub instance: Instance,
    pub lines: Vec<(BudgetLine, Money)>,
    pub spending: Vec<SpendingRecord>,
    pub budgeted: Money,
    pub spent: Money,
    pub execution_rate: Option<f64>,
}

impl BudgetView {
    pub fn remaining(&self) -> Money {
        self.budgeted.saturating_sub(self.spent)
    }
}

/// Budget execution per project of a call and over the call.
#[derive(Debug, Clone)]
pub struct CallExecutionView {
    pub projects: Vec<(Instance, Money, Money, Option<f64>)>,
    pub budgeted: Money,
    pub spent: Money,
    pub execution_rate: Option<f64>,
}

/// A call's evaluation summary and budget execution.
#[derive(Debug, Clone)]
pub struct CallSummaryView {
    pub call: Call,
    pub summary: CallSummary,
    pub execution: CallExecutionView,
    pub demands: usize,
    pub projects: usize,
}

/// The evaluator's judgement of one qualitative indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub indicator_id: String,
    pub achievement: Achievement,
    pub percent: f64,
}

/// A change request's values applied to its project.
#[derive(Debug, Clone)]
pub struct OpenCall {
    pub year: Option<i32>,
    pub title: Option<String>,
    pub issuer: Option<String>,
    /// The last day for demands; the catalogue's deadline when absent.
    pub closing_date: Option<NaiveDate>,
    pub catalogue: Catalogue,
}

/// Actual values to record at one checkpoint.
#[derive(Debug, Clone)]
pub struct ActualInput {
    pub indicator_id: String,
    pub value: Value,
    pub explanation: Option<String>,
}

const SUBMITTED_DEMAND_STATES: [&str; 2] = ["city_review", "province_review"];
const CLOSED_DEMAND_STATES: [&str; 5] = [
    "drafting",
    "withdrawn",
    "lapsed",
    "rejected",
    "rejected_duplicate",
];

impl Services {
    // -------------------------------------------------------------- calls

    /// A manager opens a call with its catalogue (the whole catalogue in one transaction).
    pub async fn open_call(&self, user: &User, req: OpenCall) -> ServiceResult<Call> {
        require_role(user, &[Role::Manager])?;
        if let Err(e) = req.catalogue.check() {
            return refused(Refusal::from_user_facing("CATALOGUE_INVALID", &e));
        }
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
                created_by: user.id,
                created_at: self.now(),
                categories: catalogue_rows(&req.catalogue),
            })
            .await?;
        Ok(call)
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
    async fn visible_of_call(
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
    async fn visible_instance(&self, user: &User, id: Uuid) -> ServiceResult<Instance> {
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

    fn expect_workflow(instance: &Instance, workflow: &str) -> ServiceResult<()> {
        if instance.workflow_id == workflow {
            Ok(())
        } else {
            refused(Refusal::new(
                "WRONG_WORKFLOW",
                format!("该实例不是「{workflow}」流程"),
                format!("the instance is not a `{workflow}` instance"),
            ))
        }
    }

    // -------------------------------------------------------------- demands

    /// The unit demands are created for: an applicant's own unit; a unit of the city
    /// bureau's city; any unit for managers.
    async fn demand_unit(&self, user: &User, org_id: Option<Uuid>) -> ServiceResult<Uuid> {
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
    /// good-rows-only, which imports the rest and reports the bad rows.
    pub async fn import_demands(
        &self,
        user: &User,
        call_id: Uuid,
        org_id: Option<Uuid>,
        bytes: &[u8],
        file_name: &str,
        mode: ImportMode,
    ) -> ServiceResult<ImportOutcome> {
        require_role(user, &[Role::Applicant, Role::City, Role::Manager])?;
        let call = self.call(user, call_id).await?;
        let unit = self.demand_unit(user, org_id).await?;
        let today = local_date(self.now());
        if call.status != grantflow_store::programme::CallStatus::Open || today > call.closing_date
        {
            return refused(Refusal::new(
                "CALL_CLOSED",
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
                    default_unit: Default::default(),
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
                    Refusal::from_user_facing("IMPORT_FAILED", &e)
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
                    "IMPORT_REJECTED",
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
        for row in &report.importable {
            let data = self.check_initial_data(&wf, &demand_data(&call, &row.demand))?;
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

    async fn org_names(&self, instances: &[&Instance]) -> ServiceResult<HashMap<Uuid, String>> {
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
    async fn shown_titles(
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
                    Refusal::from_user_facing(e.code(), &e)
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
                "DIFFERENT_CALLS",
                "两条需求不属于同一次征集",
                "the demands belong to different calls",
            ));
        }
        let call_id = Uuid::parse_str(&call_key).map_err(|_| {
            ServiceError::Refused(Box::new(Refusal::new(
                "NO_CALL",
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
        let mut out = Vec::new();
        for i in &demands {
            if CLOSED_DEMAND_STATES.contains(&i.state.as_str()) {
                continue;
            }
            let mut merged = MergedDemand::single(demand_of(
                i,
                names.get(&i.org_id).map_or("", String::as_str),
            ));
            for m in merges.iter().filter(|m| m.kept_id == i.id) {
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
        let filter = &InstanceFilter {
            identity_hidden: blind.iter().copied().collect(),
            ..filter.clone()
        };
        let mut page = PageRequest {
            first: 100,
            after: None,
            sort: SortKey::CreatedAt,
            order: SortOrder::Asc,
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

    // -------------------------------------------------------------- budgets

    async fn project_for_budget(&self, user: &User, id: Uuid) -> ServiceResult<Instance> {
        let instance = self.visible_instance(user, id).await?;
        Self::expect_workflow(&instance, PROJECT_WORKFLOW)?;
        Ok(instance)
    }

    /// A manager adds a budget line (预算项目) to a project; the instance's budget facts
    /// are refreshed in the same transaction.
    pub async fn add_budget_line(
        &self,
        user: &User,
        instance_id: Uuid,
        year: i32,
        subject: &str,
        amount: Money,
        source: &str,
    ) -> ServiceResult<BudgetLine> {
        let instance = self.project_for_budget(user, instance_id).await?;
        require_role(user, &[Role::Manager])?;
        if instance.is_final {
            return refused(Refusal::new(
                "PROJECT_CLOSED",
                "项目已结束，不能再编列预算",
                "the project is closed: no more budget lines",
            ));
        }
        if amount.fen() <= 0 {
            return invalid("amount", "预算金额须大于零", "the amount must be positive");
        }
        if !(2000..=2100).contains(&year) {
            return invalid("year", "预算年度无效", "the budget year is not valid");
        }
        let subject = subject.trim();
        if subject.is_empty() || subject.chars().count() > 200 {
            return invalid(
                "subject",
                "预算科目不能为空且不超过 200 字",
                "the subject must be 1 to 200 characters",
            );
        }
        Ok(self
            .store
            .add_budget_line(BudgetLine {
                id: Uuid::now_v7(),
                instance_id,
                year,
                subject: subject.to_string(),
                amount,
                source: source.trim().to_string(),
                created_by: user.id,
                created_at: self.now(),
            })
            .await?)
    }

    /// Record spending against a line (the project's unit or a manager). Refused, with
    /// nothing written, when the line is missing (`BUDGET_LINE_MISSING`), the amount is
    /// beyond what is left (`BUDGET_EXCEEDED`), the project is not approved yet
    /// (`NOT_APPROVED`) or the spending predates approval or is charged to another year's
    /// line. The check and the insert run in one transaction with the line locked.
    pub async fn record_spending(
        &self,
        user: &User,
        instance_id: Uuid,
        line_id: Option<Uuid>,
        amount: Money,
        spent_on: NaiveDate,
        description: &str,
    ) -> ServiceResult<SpendingRecord> {
        let instance = self.project_for_budget(user, instance_id).await?;
        require_role(user, &[Role::Applicant, Role::Manager])?;
        let own_unit = user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id);
        if !own_unit && !user.has_role(Role::Manager) {
            return Err(ServiceError::Forbidden);
        }
        if amount.fen() <= 0 {
            return invalid("amount", "支出金额须大于零", "the amount must be positive");
        }
        grantflow_domain::dates::check_date(spent_on)
            .map_err(|e| ServiceError::Invalid(vec![crate::date_error("spentOn", &e)]))?;
        if description.chars().count() > 2000 {
            return invalid(
                "description",
                "说明不超过 2000 字",
                "the description may not exceed 2000 characters",
            );
        }
        let precondition = |current: &Instance, line: &BudgetLine| -> Result<(), SpendingRefusal> {
            let approved_on = current
                .data
                .get("approved_on")
                .and_then(Value::as_str)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let Some(approved_on) = approved_on.filter(|_| current.state != "not_funded") else {
                return Err(SpendingRefusal::Refused {
                    code: "NOT_APPROVED".into(),
                    message_zh: "先有预算再有执行：项目尚未立项，不得支出".into(),
                    message_en: "the project is not approved yet: nothing may be spent".into(),
                });
            };
            if current.is_final {
                return Err(SpendingRefusal::Refused {
                    code: "PROJECT_CLOSED".into(),
                    message_zh: format!("项目已结束（{}），不得再支出", current.state),
                    message_en: format!(
                        "the project is closed ({}): no more spending",
                        current.state
                    ),
                });
            }
            if spent_on < approved_on {
                return Err(SpendingRefusal::Refused {
                    code: "SPENDING_BEFORE_APPROVAL".into(),
                    message_zh: format!("支出日期 {spent_on} 早于立项日期 {approved_on}"),
                    message_en: format!(
                        "spending on {spent_on} precedes approval on {approved_on}"
                    ),
                });
            }
            if line.year != spent_on.year() {
                return Err(SpendingRefusal::Refused {
                    code: "BUDGET_LINE_WRONG_YEAR".into(),
                    message_zh: format!(
                        "预算项目「{}」属于 {} 年度，不能用于 {spent_on} 的支出",
                        line.subject, line.year
                    ),
                    message_en: format!(
                        "budget line `{}` is for {} and cannot pay for spending on {spent_on}",
                        line.subject, line.year
                    ),
                });
            }
            Ok(())
        };
        let outcome = self
            .store
            .record_spending(NewSpending {
                id: Uuid::now_v7(),
                instance_id,
                line_id,
                amount,
                spent_on,
                description: description.trim().to_string(),
                recorded_by: user.id,
                recorded_at: self.now(),
                precondition: &precondition,
            })
            .await?;
        match outcome {
            Ok(record) => Ok(record),
            Err(SpendingRefusal::LineMissing { line_id }) => refused(
                Refusal::new(
                    "BUDGET_LINE_MISSING",
                    "没有预算不得支出：该支出未对应本项目的任何预算项目",
                    "no spending without a budget: the record is not charged to a budget line of this project",
                )
                .with_details(json!({ "lineId": line_id })),
            ),
            Err(SpendingRefusal::BudgetExceeded {
                line_id,
                amount,
                remaining,
            }) => refused(
                Refusal::new(
                    "BUDGET_EXCEEDED",
                    format!("支出 {amount} 元超出预算项目剩余额度 {remaining} 元"),
                    format!("spending {amount} yuan exceeds the {remaining} yuan left on the line"),
                )
                .with_details(json!({
                    "lineId": line_id,
                    "amount": amount.to_string(),
                    "remaining": remaining.to_string(),
                })),
            ),
            Err(SpendingRefusal::Refused {
                code,
                message_zh,
                message_en,
            }) => refused(Refusal::new(&code, message_zh, message_en)),
        }
    }

    fn ledger(
        instance: &Instance,
        lines: &[BudgetLine],
        spending: &[SpendingRecord],
    ) -> ProjectLedger {
        let mut ledger = ProjectLedger::new(instance.id.to_string());
        ledger.approved_on = instance
            .data
            .get("approved_on")
            .and_then(Value::as_str)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        for l in lines.iter().filter(|l| l.instance_id == instance.id) {
            ledger.lines.push(grantflow_programme::budget::BudgetLine {
                id: l.id.to_string(),
                project_id: ledger.project_id.clone(),
                year: l.year,
                subject: l.subject.clone(),
                amount: l.amount,
            });
        }
        for s in spending.iter().filter(|s| s.instance_id == instance.id) {
            ledger
                .spending
                .push(grantflow_programme::budget::SpendingRecord {
                    id: s.id.to_string(),
                    project_id: ledger.project_id.clone(),
                    line_id: Some(s.line_id.to_string()),
                    spent_on: s.spent_on,
                    amount: s.amount,
                    description: s.description.clone(),
                });
        }
        ledger
    }

    /// A project's budget: lines with what is left on each, spending, execution rate.
    pub async fn budget(&self, user: &User, instance_id: Uuid) -> ServiceResult<BudgetView> {
        let instance = self.project_for_budget(user, instance_id).await?;
        let lines = self.store.budget_lines(&[instance.id]).await?;
        let spending = self.store.spending(&[instance.id]).await?;
        let ledger = Self::ledger(&instance, &lines, &spending);
        let execution = ledger.execution();
        let with_remaining = lines
            .into_iter()
            .map(|l| {
                let left = ledger.remaining(&l.id.to_string()).unwrap_or(l.amount);
                (l, left)
            })
            .collect();
        Ok(BudgetView {
            instance,
            lines: with_remaining,
            spending,
            budgeted: execution.budgeted,
            spent: execution.spent,
            execution_rate: execution.rate,
        })
    }

    /// Budget execution of a call's projects (those the user may see) and of the call.
    pub async fn call_execution(
        &self,
        user: &User,
        call_id: Uuid,
    ) -> ServiceResult<CallExecutionView> {
        let call = self.call(user, call_id).await?;
        let projects = self.visible_of_call(user, PROJECT_WORKFLOW, &call).await?;
        self.execution_of(projects).await
    }

    async fn execution_of(&self, projects: Vec<Instance>) -> ServiceResult<CallExecutionView> {
        let ids: Vec<Uuid> = projects.iter().map(|p| p.id).collect();
        let lines = self.store.budget_lines(&ids).await?;
        let spending = self.store.spending(&ids).await?;
        let ledgers: Vec<ProjectLedger> = projects
            .iter()
            .map(|p| Self::ledger(p, &lines, &spending))
            .collect();
        let exec = call_execution(&ledgers);
        Ok(CallExecutionView {
            projects: projects
                .into_iter()
                .zip(exec.projects)
                .map(|(p, e)| (p, e.execution.budgeted, e.execution.spent, e.execution.rate))
                .collect(),
            budgeted: exec.total.budgeted,
            spent: exec.total.spent,
            execution_rate: exec.total.rate,
        })
    }

    // -------------------------------------------------------------- change requests

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
                "CHANGE_NOT_APPROVED",
                "变更申请尚未批准",
                "the change request is not approved",
            ));
        }
        let Some(parent_id) = change.parent_id else {
            return refused(Refusal::new(
                "NO_PARENT",
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

    // -------------------------------------------------------------- indicators

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
                "NOT_APPROVED",
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

    // -------------------------------------------------------------- evaluation

    /// The scoring input of a project: its approved indicators, acceptance actuals (from
    /// recorded actuals, else the `indicator_actuals` submitted for acceptance), the
    /// evaluator's judgements and explanations, and the budget execution.
    async fn evaluation_input(
        &self,
        instance: &Instance,
        judgements: &[Judgement],
        explanations: &BTreeMap<String, String>,
    ) -> ServiceResult<EvaluationInput> {
        let indicators = indicators_from(instance.data.get("approved_indicators"));
        let recorded = self.store.actuals(instance.id).await?;
        let submitted = indicators_from(instance.data.get("indicator_actuals"));
        let submitted_raw: Vec<&Value> = instance
            .data
            .get("indicator_actuals")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let mut outcomes = BTreeMap::new();
        for i in &indicators {
            if i.is_quantitative() {
                let from_store = recorded
                    .iter()
                    .find(|a| a.indicator_id == i.id && a.checkpoint == "acceptance")
                    .and_then(|a| a.value.as_f64().map(|v| (v, a.explanation.clone())));
                let from_data = || {
                    submitted
                        .iter()
                        .position(|s| s.id == i.id || s.name == i.name)
                        .and_then(|n| submitted_raw.get(n))
                        .and_then(|raw| {
                            raw.get("actual").and_then(Value::as_f64).map(|v| {
                                (
                                    v,
                                    raw.get("explanation")
                                        .and_then(Value::as_str)
                                        .map(str::to_string),
                                )
                            })
                        })
                };
                if let Some((actual, explanation)) = from_store.or_else(from_data) {
                    let explanation = explanations.get(&i.id).cloned().or(explanation);
                    outcomes.insert(
                        i.id.clone(),
                        Outcome::Quantitative {
                            actual,
                            explanation,
                        },
                    );
                }
            } else if let Some(j) = judgements.iter().find(|j| j.indicator_id == i.id) {
                outcomes.insert(
                    i.id.clone(),
                    Outcome::Qualitative {
                        achievement: j.achievement,
                        percent: j.percent,
                    },
                );
            }
        }
        let lines = self.store.budget_lines(&[instance.id]).await?;
        let spending = self.store.spending(&[instance.id]).await?;
        let ledger = Self::ledger(instance, &lines, &spending);
        Ok(EvaluationInput {
            project_id: instance.id.to_string(),
            project_name: instance.title.clone(),
            indicators,
            outcomes,
            budgeted: ledger.budgeted(),
            spent: ledger.spent(),
        })
    }

    fn score(input: &EvaluationInput) -> ServiceResult<EvaluationResult> {
        evaluate(&EvaluationMethod::default(), input).map_err(|errors| {
            let problems: Vec<Value> = errors
                .iter()
                .map(|e| json!({ "code": e.code(), "messageZh": e.message(Lang::ZhCn), "messageEn": e.message(Lang::En) }))
                .collect();
            let first = errors.first();
            ServiceError::Refused(Box::new(
                Refusal::new(
                    "EVALUATION_INCOMPLETE",
                    format!(
                        "无法评分：{}",
                        first.map(|e| e.message(Lang::ZhCn)).unwrap_or_default()
                    ),
                    format!(
                        "cannot score: {}",
                        first.map(|e| e.message(Lang::En)).unwrap_or_default()
                    ),
                )
                .with_details(json!({ "problems": problems })),
            ))
        })
    }

    /// What the evaluation of a project would give now (nothing is stored).
    pub async fn evaluation_preview(
        &self,
        user: &User,
        instance_id: Uuid,
        judgements: &[Judgement],
        explanations: &BTreeMap<String, String>,
    ) -> ServiceResult<EvaluationResult> {
        require_role(
            user,
            &[Role::Manager, Role::Auditor, Role::Applicant, Role::City],
        )?;
        let instance = self.project_for_budget(user, instance_id).await?;
        let input = self
            .evaluation_input(&instance, judgements, explanations)
            .await?;
        Self::score(&input)
    }

    /// The performance evaluation (绩效评价) of a project in `evaluation`: the default
    /// method scores the approved indicators against the acceptance actuals and the
    /// budget execution; the result is stored and `grade` is fired with the score
    /// (rounded down to a whole point, so that it agrees with the grade) and the grade.
    pub async fn evaluate_project(
        &self,
        user: &User,
        instance_id: Uuid,
        judgements: &[Judgement],
        explanations: &BTreeMap<String, String>,
    ) -> ServiceResult<(EvaluationRecord, Applied)> {
        require_role(user, &[Role::Manager])?;
        let instance = self.project_for_budget(user, instance_id).await?;
        if instance.state != "evaluation" {
            return refused(Refusal::new(
                "NOT_IN_EVALUATION",
                format!("项目当前处于「{}」，不在绩效评价阶段", instance.state),
                format!("the project is in `{}`, not in evaluation", instance.state),
            ));
        }
        let input = self
            .evaluation_input(&instance, judgements, explanations)
            .await?;
        let result = Self::score(&input)?;
        let method = EvaluationMethod::default();
        let record = EvaluationRecord {
            instance_id: instance.id,
            call_id: instance
                .data
                .get("call_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            method: serde_json::to_value(&method).unwrap_or(Value::Null),
            budgeted: result.budgeted,
            spent: result.spent,
            execution_rate: result.execution_rate,
            total: result.total,
            grade: result.grade.name(Lang::ZhCn).to_string(),
            indicator_scores: result
                .indicators
                .iter()
                .map(|s| IndicatorScoreRecord {
                    indicator_id: s.indicator_id.clone(),
                    name: s.name.clone(),
                    part: code_of(&s.part),
                    max_points: s.max_points,
                    fraction: s.fraction,
                    points: s.points,
                })
                .collect(),
            result: json!({
                "result": result,
                "outcomes": input.outcomes,
            }),
            evaluator_id: user.id,
            evaluated_at: self.now(),
        };
        self.store.save_evaluation(record.clone()).await?;
        let applied = self
            .fire(
                user,
                FireEvent {
                    instance_id: instance.id,
                    event: "grade".into(),
                    expected_version: instance.version,
                    idempotency_key: Some(format!("evaluate:{}:{}", instance.id, instance.version)),
                    input: json!({
                        "evaluation_score": result.total.floor() as i64,
                        "evaluation_grade": record.grade,
                    }),
                    reason: None,
                },
            )
            .await?;
        Ok((record, applied))
    }

    /// The stored evaluation of a project, if any.
    pub async fn evaluation(
        &self,
        user: &User,
        instance_id: Uuid,
    ) -> ServiceResult<Option<EvaluationRecord>> {
        let instance = self.project_for_budget(user, instance_id).await?;
        Ok(self.store.evaluation(instance.id).await?)
    }

    async fn visible_evaluations(
        &self,
        user: &User,
        call: &Call,
    ) -> ServiceResult<(Vec<Instance>, Vec<EvaluationResult>)> {
        let projects = self.visible_of_call(user, PROJECT_WORKFLOW, call).await?;
        let records = self
            .store
            .evaluations_for_call(&call.id.to_string())
            .await?;
        let results = records
            .iter()
            .filter(|r| projects.iter().any(|p| p.id == r.instance_id))
            .filter_map(|r| {
                serde_json::from_value::<EvaluationResult>(r.result["result"].clone()).ok()
            })
            .collect();
        Ok((projects, results))
    }

    /// A call at a glance: grade distribution of its evaluated projects and budget
    /// execution of all its projects (those the user may see).
    pub async fn call_summary(&self, user: &User, call_id: Uuid) -> ServiceResult<CallSummaryView> {
        let call = self.call(user, call_id).await?;
        let (projects, results) = self.visible_evaluations(user, &call).await?;
        let demands = self
            .visible_of_call(user, DEMAND_WORKFLOW, &call)
            .await?
            .len();
        let count = projects.len();
        let execution = self.execution_of(projects).await?;
        Ok(CallSummaryView {
            summary: summarize_call(&results),
            call,
            execution,
            demands,
            projects: count,
        })
    }

    /// The evaluation results of a call: XLSX with results, indicator scores and the
    /// summary; CSV with the results.
    pub async fn export_evaluations(
        &self,
        user: &User,
        call_id: Uuid,
        format: ExportFormat,
    ) -> ServiceResult<ExportFile> {
        let call = self.call(user, call_id).await?;
        let (_, results) = self.visible_evaluations(user, &call).await?;
        let summary = summarize_call(&results);
        let sheets = vec![
            evaluation_sheet(&results),
            indicator_score_sheet(&results),
            call_summary_sheet(&summary),
        ];
        self.render(format, format!("{}年绩效评价结果", call.year), sheets)
            .await
    }
}
