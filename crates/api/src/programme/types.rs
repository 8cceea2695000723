//! The GraphQL types of the programme: calls and their catalogue, demand imports,
//! duplicates and merges, exports, budgets and spending, indicators and evaluations.
//!
//! One cohesive file of type definitions and their conversions from the service's views
//! (about 850 lines, divided by its banners); resolvers live in `query.rs` and
//! `mutation.rs`.

use super::*;
use crate::types::OrgKindGql;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CallStatus")]
pub enum CallStatusGql {
    Open,
    Closed,
}

/// A proposed project of the catalogue.
#[derive(SimpleObject)]
#[graphql(name = "CatalogueItem")]
pub struct CatalogueItemGql {
    /// Unique within the call (`2022-3-1-20`).
    pub id: String,
    pub number: Option<i32>,
    /// 项目名称
    pub name: String,
    /// 项目方向
    pub direction: String,
    /// 申报（工作）主体
    pub eligible_applicant: String,
    /// RETAINED_PROVINCIAL, POST_SUBSIDY, PATENT_OFFICE_AND_PROTECTION_CENTRE or
    /// DELEGATED_TO_CITY.
    pub part: String,
    /// The part's name: 保留省级, 后补助, 支持专利代办处及省知识产权保护中心, 下放地市审批.
    pub part_title: String,
    /// The kinds of organisation that may apply (empty: any kind).
    pub eligible_kinds: Vec<OrgKindGql>,
}

impl From<&CallItem> for CatalogueItemGql {
    fn from(i: &CallItem) -> Self {
        let part_title = serde_json::from_value::<grantflow_programme::catalogue::Part>(
            serde_json::Value::String(i.part.clone()),
        )
        .map(|p| p.name(Lang::ZhCn).to_string())
        .unwrap_or_default();
        Self {
            id: i.item_id.clone(),
            number: i.number,
            name: i.name.clone(),
            direction: i.direction.clone(),
            eligible_applicant: i.applicant.clone(),
            part: i.part.to_uppercase(),
            part_title,
            eligible_kinds: i
                .eligible
                .iter()
                .filter_map(|k| grantflow_store::OrgKind::parse(k))
                .map(OrgKindGql::from)
                .collect(),
        }
    }
}

/// A policy area (重点政策或工作) and its items.
#[derive(SimpleObject)]
#[graphql(name = "CataloguePolicyArea")]
pub struct PolicyAreaGql {
    pub name: String,
    pub items: Vec<CatalogueItemGql>,
}

impl From<&CallPolicyArea> for PolicyAreaGql {
    fn from(a: &CallPolicyArea) -> Self {
        Self {
            name: a.name.clone(),
            items: a.items.iter().map(Into::into).collect(),
        }
    }
}

/// One of the eight categories (大类).
#[derive(SimpleObject)]
#[graphql(name = "CatalogueCategory")]
pub struct CategoryGql {
    /// The category's code, e.g. PROTECTION.
    pub code: String,
    /// 1 to 8.
    pub number: i32,
    /// As the call prints it, with its numeral: 三、强化知识产权保护.
    pub label: String,
    pub title: String,
    pub policy_areas: Vec<PolicyAreaGql>,
}

impl From<&CallCategory> for CategoryGql {
    fn from(c: &CallCategory) -> Self {
        let category = serde_json::from_value::<grantflow_programme::catalogue::Category>(
            serde_json::Value::String(c.category.clone()),
        )
        .ok();
        Self {
            code: c.category.to_uppercase(),
            number: category.map_or(0, |c| i32::from(c.number())),
            label: category.map_or_else(
                || c.title.clone(),
                grantflow_programme::catalogue::Category::label,
            ),
            title: c.title.clone(),
            policy_areas: c.policy_areas.iter().map(Into::into).collect(),
        }
    }
}

/// A yearly call for demands (年度项目需求征集) and its catalogue.
pub struct CallGql(pub Call);

#[Object(name = "Call")]
impl CallGql {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn year(&self) -> i32 {
        self.0.year
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn issuer(&self) -> &str {
        &self.0.issuer
    }
    /// Last day for demands (China Standard Time).
    async fn closing_date(&self) -> NaiveDate {
        self.0.closing_date
    }
    /// Calendar days an applicant has to correct an application its city bureau returned
    /// after the closing date (the call's setting; 5 by default).
    async fn correction_window_days(&self) -> i32 {
        self.0.correction_window_days
    }
    async fn status(&self) -> CallStatusGql {
        match self.0.status {
            CallStatus::Open => CallStatusGql::Open,
            CallStatus::Closed => CallStatusGql::Closed,
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The catalogue: categories → policy areas → items.
    async fn categories(&self) -> Vec<CategoryGql> {
        self.0.categories.iter().map(Into::into).collect()
    }
    async fn item_count(&self) -> usize {
        self.0.items().count()
    }
    /// The call's rules (`[rules]` of its TOML): rubric, pass mark, panel, aggregation,
    /// 公示, stage time limits, collaboration window, overshoot threshold. Keys the call
    /// does not set have their documented defaults — defaults, not regulations.
    async fn rules(&self) -> CallRulesGql {
        (&grantflow_service::programme::rules_of(&self.0)).into()
    }
    /// Items of one part (e.g. DELEGATED_TO_CITY), in form order.
    async fn items(&self, part: Option<String>) -> Vec<CatalogueItemGql> {
        let part = part.map(|p| p.to_lowercase());
        self.0
            .items()
            .filter(|(_, _, i)| part.as_ref().is_none_or(|p| &i.part == p))
            .map(|(_, _, i)| i.into())
            .collect()
    }
}

#[derive(InputObject)]
pub struct CatalogueItemInput {
    pub id: String,
    pub number: Option<i32>,
    pub name: String,
    pub direction: String,
    #[graphql(default)]
    pub eligible_applicant: String,
    /// RETAINED_PROVINCIAL, POST_SUBSIDY, PATENT_OFFICE_AND_PROTECTION_CENTRE or
    /// DELEGATED_TO_CITY.
    pub part: String,
}

#[derive(InputObject)]
pub struct PolicyAreaInput {
    pub name: String,
    #[graphql(default)]
    pub items: Vec<CatalogueItemInput>,
}

#[derive(InputObject)]
pub struct CategoryInput {
    /// The category's code (PROTECTION …) or its label (三、强化知识产权保护).
    pub category: String,
    pub title: Option<String>,
    #[graphql(default)]
    pub policy_areas: Vec<PolicyAreaInput>,
}

/// A call to open: a catalogue in the TOML format of `workflows/calls/` (e.g. the whole
/// 2022 catalogue), or the catalogue's rows.
#[derive(InputObject)]
pub struct OpenCallInput {
    /// The catalogue file's text (`workflows/calls/2022.toml`).
    pub catalogue_toml: Option<String>,
    /// Or the categories, policy areas and items.
    pub categories: Option<Vec<CategoryInput>>,
    /// Required with `categories`; overrides the file's.
    pub year: Option<i32>,
    pub title: Option<String>,
    pub issuer: Option<String>,
    /// Last day for demands; the catalogue's deadline when absent.
    #[graphql(validator(custom = "crate::types::DateInRange"))]
    pub closing_date: Option<NaiveDate>,
    /// Calendar days to correct an application returned after the closing date (0–365);
    /// the file's `correction_window_days`, else 5.
    #[graphql(validator(minimum = 0, maximum = 365))]
    pub correction_window_days: Option<i32>,
}

pub(super) fn catalogue_from_rows(
    input: &OpenCallInput,
    rows: &[CategoryInput],
) -> Result<Catalogue, ApiError> {
    use grantflow_programme::catalogue::{
        CatalogueCategory, CatalogueItem, Category, Part, PolicyArea,
    };
    let code = |s: &str| serde_json::Value::String(s.trim().to_lowercase());
    let mut categories = Vec::new();
    for (n, c) in rows.iter().enumerate() {
        let category = serde_json::from_value::<Category>(code(&c.category))
            .ok()
            .or_else(|| Category::from_label(&c.category))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    &format!("categories[{n}].category"),
                    &format!("「{}」不是八大类之一", c.category),
                    &format!("`{}` is not one of the eight categories", c.category),
                )
            })?;
        let mut areas = Vec::new();
        for a in &c.policy_areas {
            let mut items = Vec::new();
            for i in &a.items {
                let part = serde_json::from_value::<Part>(code(&i.part)).map_err(|_| {
                    ApiError::invalid_field(
                        "part",
                        &format!("「{}」不是目录的四个部分之一", i.part),
                        &format!("`{}` is not one of the four parts", i.part),
                    )
                })?;
                items.push(CatalogueItem {
                    id: i.id.clone(),
                    number: i.number.and_then(|n| u32::try_from(n).ok()),
                    name: i.name.clone(),
                    direction: i.direction.clone(),
                    applicant: i.eligible_applicant.clone(),
                    part,
                    // Derived from the applicant text by the documented rule.
                    eligible: grantflow_programme::catalogue::ApplicantKind::from_applicant_text(
                        &i.eligible_applicant,
                    ),
                });
            }
            areas.push(PolicyArea {
                name: a.name.clone(),
                items,
            });
        }
        categories.push(CatalogueCategory {
            category,
            title: c
                .title
                .clone()
                .unwrap_or_else(|| category.name(Lang::ZhCn).to_string()),
            policy_areas: areas,
        });
    }
    let year = input
        .year
        .ok_or_else(|| ApiError::invalid_field("year", "须指定年度", "the year is required"))?;
    Ok(Catalogue {
        year,
        title: input
            .title
            .clone()
            .unwrap_or_else(|| format!("{year}年广东省强化知识产权工作项目需求征集")),
        issuer: input.issuer.clone().unwrap_or_default(),
        issued_on: None,
        deadline: input.closing_date,
        correction_window_days: None,
        categories,
        rules: Default::default(),
        funding: None,
    })
}

// ---------------------------------------------------------------- demands

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(name = "ImportMode")]
pub enum ImportModeGql {
    /// Nothing is imported when any row has an error (the default).
    #[default]
    AllOrNothing,
    /// The rows without errors are imported; the others are reported.
    GoodRowsOnly,
}

/// The unit of bare numbers in an imported budget column whose header does not say
/// (经费预算 rather than 经费预算（万元）); a cell that says its unit ("80万元") keeps it.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "AmountUnit")]
pub enum AmountUnitGql {
    /// 元
    Yuan,
    /// 万元 (10 000 yuan)
    WanYuan,
}

impl From<AmountUnitGql> for grantflow_programme::import::BudgetUnit {
    fn from(u: AmountUnitGql) -> Self {
        match u {
            AmountUnitGql::Yuan => Self::Yuan,
            AmountUnitGql::WanYuan => Self::TenThousandYuan,
        }
    }
}

/// An error in one row of an imported sheet, naming its cell.
#[derive(SimpleObject, Clone)]
pub struct ImportRowError {
    /// 1-based, as Excel numbers rows.
    pub row: u32,
    /// The column letter (F); null when the column is missing from the sheet.
    pub column: Option<String>,
    pub header: String,
    pub code: String,
    pub message_zh: String,
    pub message_en: String,
}

#[derive(SimpleObject)]
pub struct ImportDemandsPayload {
    /// The demands created (in `drafting`), one per good row.
    pub created: Vec<InstanceGql>,
    /// Rows rejected (only with GOOD_ROWS_ONLY; otherwise the import fails): the first
    /// 1 000 errors.
    pub errors: Vec<ImportRowError>,
    /// All errors found, listed in `errors` or not.
    pub error_count: u32,
    /// More errors were found than `errors` lists.
    pub errors_truncated: bool,
    pub rejected_rows: Vec<u32>,
    /// Blank rows, （可加行） placeholders, notes and catalogue rows left as printed.
    pub skipped_rows: Vec<u32>,
    /// 填报单位 as written in the sheet.
    pub submitter: Option<String>,
}

#[derive(SimpleObject)]
pub struct SubmitDemandResult {
    pub id: ID,
    pub submitted: bool,
    pub instance: Option<InstanceGql>,
    /// The error code when not submitted.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "SimilarityScores")]
pub struct SimilarityScoresGql {
    /// Weighted score, 0..1.
    pub overall: f64,
    pub name: Option<f64>,
    pub performance: Option<f64>,
    pub use_of_funds: Option<f64>,
}

#[derive(SimpleObject)]
#[graphql(name = "DuplicateCandidate")]
pub struct DuplicateCandidateGql {
    pub first: InstanceGql,
    pub second: InstanceGql,
    pub similarity: SimilarityScoresGql,
    /// OVERALL, SIMILAR_PERFORMANCE (绩效目标相近), SIMILAR_USE_OF_FUNDS (资金用途相似).
    pub reasons: Vec<String>,
}

/// Two demands merged; both sources are kept as they were.
pub struct DemandMergeGql(pub DemandMerge);

#[Object(name = "DemandMerge")]
impl DemandMergeGql {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kept_id(&self) -> ID {
        ID(self.0.kept_id.to_string())
    }
    async fn merged_id(&self) -> ID {
        ID(self.0.merged_id.to_string())
    }
    async fn similarity(&self) -> f64 {
        self.0.similarity
    }
    /// The demand that goes forward, as it was when merged.
    async fn kept_source(&self) -> Json<serde_json::Value> {
        Json(self.0.kept_source.clone())
    }
    /// The duplicate, as it was when merged.
    async fn merged_source(&self) -> Json<serde_json::Value> {
        Json(self.0.merged_source.clone())
    }
    async fn merged_at(&self) -> DateTime<Utc> {
        self.0.merged_at
    }
    async fn merged_by(&self) -> ID {
        ID(self.0.merged_by.to_string())
    }
}

#[derive(SimpleObject)]
pub struct MergeDemandsPayload {
    pub merge: DemandMergeGql,
    pub kept: InstanceGql,
    pub duplicate: InstanceGql,
}

// ---------------------------------------------------------------- exports

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SpreadsheetFormat {
    Xlsx,
    Csv,
}

impl From<SpreadsheetFormat> for ExportFormat {
    fn from(f: SpreadsheetFormat) -> Self {
        match f {
            SpreadsheetFormat::Xlsx => Self::Xlsx,
            SpreadsheetFormat::Csv => Self::Csv,
        }
    }
}

/// A file to download.
#[derive(SimpleObject)]
pub struct ExportedFile {
    pub file_name: String,
    pub media_type: String,
    pub size: usize,
    /// The content, base64.
    pub content_base64: String,
}

impl From<ExportFile> for ExportedFile {
    fn from(f: ExportFile) -> Self {
        Self {
            size: f.bytes.len(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(&f.bytes),
            file_name: f.file_name,
            media_type: f.media_type.to_string(),
        }
    }
}

// ---------------------------------------------------------------- budgets

#[derive(SimpleObject)]
#[graphql(name = "BudgetLine")]
pub struct BudgetLineGql {
    pub id: ID,
    pub year: i32,
    /// 预算科目
    pub subject: String,
    /// Yuan, 2 decimals.
    pub amount: String,
    /// 资金来源
    pub source: String,
    /// What is left on the line.
    pub remaining: String,
    pub created_at: DateTime<Utc>,
}

impl BudgetLineGql {
    pub(super) fn new(l: &BudgetLine, remaining: Money) -> Self {
        Self {
            id: ID(l.id.to_string()),
            year: l.year,
            subject: l.subject.clone(),
            amount: l.amount.to_string(),
            source: l.source.clone(),
            remaining: remaining.to_string(),
            created_at: l.created_at,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "SpendingRecord")]
pub struct SpendingGql {
    pub id: ID,
    pub line_id: ID,
    pub amount: String,
    pub spent_on: NaiveDate,
    pub description: String,
    pub recorded_by: ID,
    pub recorded_at: DateTime<Utc>,
}

impl From<&SpendingRecord> for SpendingGql {
    fn from(s: &SpendingRecord) -> Self {
        Self {
            id: ID(s.id.to_string()),
            line_id: ID(s.line_id.to_string()),
            amount: s.amount.to_string(),
            spent_on: s.spent_on,
            description: s.description.clone(),
            recorded_by: ID(s.recorded_by.to_string()),
            recorded_at: s.recorded_at,
        }
    }
}

/// A project's budget (先有预算再有执行).
#[derive(SimpleObject)]
pub struct ProjectBudget {
    pub instance: InstanceGql,
    pub lines: Vec<BudgetLineGql>,
    pub spending: Vec<SpendingGql>,
    pub budgeted: String,
    pub spent: String,
    pub remaining: String,
    /// spent ÷ budgeted; null without a budget.
    pub execution_rate: Option<f64>,
    /// The approved funding (立项资助金额); null before approval.
    pub approved: Option<String>,
    /// What was disbursed (拨付) in all.
    pub disbursed: String,
    /// Execution rate against disbursement: spent ÷ disbursed; null before any.
    pub execution_rate_of_disbursed: Option<f64>,
    /// Execution rate against approval: spent ÷ approved funding; null before approval.
    pub execution_rate_of_approved: Option<f64>,
    pub disbursements: Vec<DisbursementGql>,
}

impl From<BudgetView> for ProjectBudget {
    fn from(v: BudgetView) -> Self {
        Self {
            lines: v
                .lines
                .iter()
                .map(|(l, left)| BudgetLineGql::new(l, *left))
                .collect(),
            spending: v.spending.iter().map(Into::into).collect(),
            budgeted: v.budgeted.to_string(),
            spent: v.spent.to_string(),
            remaining: v.remaining().to_string(),
            execution_rate: v.execution_rate,
            approved: v.approved.map(|a| a.to_string()),
            disbursed: v.disbursed.to_string(),
            execution_rate_of_disbursed: v.rate_of_disbursed,
            execution_rate_of_approved: v.rate_of_approved,
            disbursements: v.disbursements.iter().map(Into::into).collect(),
            instance: InstanceGql(v.instance),
        }
    }
}

#[derive(InputObject)]
pub struct BudgetLineInput {
    pub year: i32,
    pub subject: String,
    /// Yuan, e.g. "250000" or "250000.50".
    pub amount: String,
    #[graphql(default_with = "\"省级财政专项资金\".to_string()")]
    pub source: String,
}

#[derive(InputObject)]
pub struct SpendingInput {
    /// The budget line charged; without one the spending is refused (没有预算不得支出).
    pub line_id: Option<ID>,
    pub amount: String,
    #[graphql(validator(custom = "crate::types::DateInRange"))]
    pub spent_on: NaiveDate,
    #[graphql(default)]
    pub description: String,
}

#[derive(SimpleObject)]
pub struct ProjectExecution {
    pub instance: InstanceGql,
    pub budgeted: String,
    pub spent: String,
    pub execution_rate: Option<f64>,
}

#[derive(SimpleObject)]
pub struct BudgetExecution {
    pub projects: Vec<ProjectExecution>,
    pub budgeted: String,
    pub spent: String,
    /// Sum spent ÷ sum budgeted (weighted by budget).
    pub execution_rate: Option<f64>,
}

impl From<CallExecutionView> for BudgetExecution {
    fn from(v: CallExecutionView) -> Self {
        Self {
            projects: v
                .projects
                .into_iter()
                .map(|(i, b, s, r)| ProjectExecution {
                    instance: InstanceGql(i),
                    budgeted: b.to_string(),
                    spent: s.to_string(),
                    execution_rate: r,
                })
                .collect(),
            budgeted: v.budgeted.to_string(),
            spent: v.spent.to_string(),
            execution_rate: v.execution_rate,
        }
    }
}

// ---------------------------------------------------------------- indicators, evaluation

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Checkpoint")]
pub enum CheckpointGql {
    /// 中期检查
    MidTerm,
    /// 验收
    Acceptance,
}

#[derive(InputObject)]
pub struct ActualValueInput {
    pub indicator_id: String,
    /// A number for quantitative indicators, a text for qualitative ones.
    pub value: Json<serde_json::Value>,
    /// Required by the evaluation when the actual is more than 30 % beyond the target.
    pub explanation: Option<String>,
}

#[derive(SimpleObject)]
pub struct IndicatorActual {
    pub indicator_id: String,
    pub checkpoint: CheckpointGql,
    pub value: Json<serde_json::Value>,
    pub explanation: Option<String>,
    pub recorded_on: NaiveDate,
}

impl From<ActualRecord> for IndicatorActual {
    fn from(a: ActualRecord) -> Self {
        Self {
            checkpoint: if a.checkpoint == "mid_term" {
                CheckpointGql::MidTerm
            } else {
                CheckpointGql::Acceptance
            },
            indicator_id: a.indicator_id,
            value: Json(a.value),
            explanation: a.explanation,
            recorded_on: a.recorded_on,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Achievement")]
pub enum AchievementGql {
    /// 达成: 80–100 %
    Achieved,
    /// 部分达成: 60–80 %
    PartlyAchieved,
    /// 未达成: 0–60 %
    NotAchieved,
}

/// The evaluator's judgement of a qualitative indicator.
#[derive(InputObject)]
pub struct QualitativeAssessmentInput {
    pub indicator_id: String,
    pub achievement: AchievementGql,
    /// Percentage of the indicator's points, within the achievement's band.
    pub percent: f64,
}

/// A written explanation of an actual far beyond its target.
#[derive(InputObject)]
pub struct ExplanationInput {
    pub indicator_id: String,
    pub text: String,
}

pub(super) fn judgements(input: Option<Vec<QualitativeAssessmentInput>>) -> Vec<Judgement> {
    input
        .unwrap_or_default()
        .into_iter()
        .map(|j| Judgement {
            indicator_id: j.indicator_id,
            achievement: match j.achievement {
                AchievementGql::Achieved => Achievement::Achieved,
                AchievementGql::PartlyAchieved => Achievement::PartlyAchieved,
                AchievementGql::NotAchieved => Achievement::NotAchieved,
            },
            percent: j.percent,
        })
        .collect()
}

pub(super) fn explanations(input: Option<Vec<ExplanationInput>>) -> BTreeMap<String, String> {
    input
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.text.trim().is_empty())
        .map(|e| (e.indicator_id, e.text))
        .collect()
}

#[derive(SimpleObject)]
#[graphql(name = "PartScore")]
pub struct PartScoreGql {
    /// BUDGET_EXECUTION, OUTPUT, EFFECT or SATISFACTION.
    pub part: String,
    pub title: String,
    pub max_points: f64,
    pub points: f64,
}

#[derive(SimpleObject)]
#[graphql(name = "IndicatorScore")]
pub struct IndicatorScoreGql {
    pub indicator_id: String,
    pub name: String,
    pub part: String,
    pub max_points: f64,
    /// Share of the points earned, 0..1.
    pub fraction: f64,
    pub points: f64,
}

/// A project's score (绩效评价): out of 100, with its grade 优/良/中/差.
#[derive(SimpleObject)]
pub struct EvaluationScore {
    pub total: f64,
    /// 优, 良, 中 or 差.
    pub grade: String,
    pub budgeted: String,
    pub spent: String,
    pub execution_rate: f64,
    pub parts: Vec<PartScoreGql>,
    pub indicators: Vec<IndicatorScoreGql>,
}

pub(super) fn upper<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_uppercase))
        .unwrap_or_default()
}

impl From<&EvaluationResult> for EvaluationScore {
    fn from(r: &EvaluationResult) -> Self {
        Self {
            total: r.total,
            grade: r.grade.name(Lang::ZhCn).to_string(),
            budgeted: r.budgeted.to_string(),
            spent: r.spent.to_string(),
            execution_rate: r.execution_rate,
            parts: r
                .parts
                .iter()
                .map(|p| PartScoreGql {
                    part: upper(&p.part),
                    title: p.part.name(Lang::ZhCn).to_string(),
                    max_points: p.max_points,
                    points: p.points,
                })
                .collect(),
            indicators: r
                .indicators
                .iter()
                .map(|s| IndicatorScoreGql {
                    indicator_id: s.indicator_id.clone(),
                    name: s.name.clone(),
                    part: upper(&s.part),
                    max_points: s.max_points,
                    fraction: s.fraction,
                    points: s.points,
                })
                .collect(),
        }
    }
}

/// A stored evaluation.
#[derive(SimpleObject)]
pub struct ProjectEvaluation {
    pub instance_id: ID,
    pub score: EvaluationScore,
    pub evaluator_id: ID,
    pub evaluated_at: DateTime<Utc>,
    /// The method's points and bounds.
    pub method: Json<serde_json::Value>,
}

pub(super) fn stored_evaluation(r: EvaluationRecord) -> Result<ProjectEvaluation> {
    let result: EvaluationResult = serde_json::from_value(r.result["result"].clone())
        .map_err(|e| async_graphql::Error::new(format!("stored evaluation unreadable: {e}")))?;
    Ok(ProjectEvaluation {
        instance_id: ID(r.instance_id.to_string()),
        score: (&result).into(),
        evaluator_id: ID(r.evaluator_id.to_string()),
        evaluated_at: r.evaluated_at,
        method: Json(r.method),
    })
}

#[derive(SimpleObject)]
pub struct EvaluateProjectPayload {
    pub evaluation: ProjectEvaluation,
    /// The project after `grade`.
    pub instance: InstanceGql,
}

#[derive(SimpleObject)]
pub struct GradeDistribution {
    /// 优
    pub excellent: usize,
    /// 良
    pub good: usize,
    /// 中
    pub fair: usize,
    /// 差
    pub poor: usize,
}

/// A call at a glance; `report` breaks it down by stage, city, category and part.
#[derive(SimpleObject)]
#[graphql(name = "CallSummary", complex)]
pub struct CallSummaryGql {
    pub call: CallGql,
    pub demands: usize,
    pub projects: usize,
    pub evaluated: usize,
    pub grades: GradeDistribution,
    pub average_total: Option<f64>,
    pub budget_execution: BudgetExecution,
}
