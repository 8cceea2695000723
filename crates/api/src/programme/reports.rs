//! The province's reports: a call's (`callSummary { report }`) and a year's
//! (`yearReport`), their XLSX export with one sheet per breakdown (`exportReport`), each
//! unit's grades (`unitGrades`, `exportUnitGrades`) and, on an application, the unit's
//! previous grades (`Instance.previousGrades`).
//!
//! Managers and auditors see every project, a city bureau its city's projects only;
//! everyone else is FORBIDDEN.

use grantflow_programme::evaluation::GradeCounts;
use grantflow_programme::report::{BreakdownRow, Figures, IndicatorTotal, UnitGrades};
use grantflow_service::programme::{PreviousGrade, ReportScope, ReportView};

use super::*;

fn grades(g: &GradeCounts) -> GradeDistribution {
    GradeDistribution {
        excellent: g.excellent,
        good: g.good,
        fair: g.fair,
        poor: g.poor,
    }
}

/// Projects in one stage (or state) of the funded-project workflow.
#[derive(SimpleObject)]
pub struct StageCount {
    /// The stage or state id (`execution`, `publicity` …).
    pub id: String,
    /// Its Chinese title (执行, 立项公示 …).
    pub title: String,
    pub count: usize,
}

/// The figures of a set of projects: counts by stage, approvals, disbursement, spending
/// and execution rates, grades. Amounts in yuan with two decimals; rates 0..1, null when
/// the denominator is zero.
#[derive(SimpleObject)]
pub struct ReportFigures {
    pub projects: usize,
    /// Every stage of the funded-project workflow, in order, with its count (zeros too).
    pub stages: Vec<StageCount>,
    /// Approved projects (立项) and the sum of their approved funding.
    pub approved: usize,
    pub approved_amount: String,
    /// Sum of the budget lines.
    pub budgeted: String,
    /// Sum paid to the projects (拨付).
    pub disbursed: String,
    pub spent: String,
    /// spent ÷ budgeted (as `budgetExecution.executionRate`).
    pub execution_rate: Option<f64>,
    /// disbursed ÷ approved amount.
    pub disbursement_rate: Option<f64>,
    /// spent ÷ disbursed.
    pub spent_of_disbursed: Option<f64>,
    /// spent ÷ approved amount.
    pub spent_of_approved: Option<f64>,
    pub evaluated: usize,
    pub grades: GradeDistribution,
    pub average_score: Option<f64>,
}

fn figures(f: &Figures, view: &ReportView) -> ReportFigures {
    let title = |id: &str| {
        view.layout
            .stages
            .iter()
            .find(|(s, _)| s == id)
            .map_or(id.to_string(), |(_, t)| t.clone())
    };
    ReportFigures {
        projects: f.projects,
        stages: f
            .stages
            .iter()
            .map(|(id, count)| StageCount {
                id: id.clone(),
                title: title(id),
                count: *count,
            })
            .collect(),
        approved: f.approved,
        approved_amount: f.approved_amount.to_string(),
        budgeted: f.budgeted.to_string(),
        disbursed: f.disbursed.to_string(),
        spent: f.spent.to_string(),
        execution_rate: f.execution_rate,
        disbursement_rate: f.disbursement_rate,
        spent_of_disbursed: f.spent_of_disbursed,
        spent_of_approved: f.spent_of_approved,
        evaluated: f.evaluated,
        grades: grades(&f.grades),
        average_score: f.average_score,
    }
}

/// One row of a breakdown: a city (or 省直), a category or a part.
#[derive(SimpleObject)]
pub struct ReportRow {
    /// The city's organisation id, `province` (省直); the category code
    /// (`protection` …); the part code (`retained_provincial` …); or `unknown`.
    pub key: String,
    pub label: String,
    pub figures: ReportFigures,
}

fn rows(rows: &[BreakdownRow], view: &ReportView) -> Vec<ReportRow> {
    rows.iter()
        .map(|r| ReportRow {
            key: r.key.clone(),
            label: r.label.clone(),
            figures: figures(&r.figures, view),
        })
        .collect()
}

/// An indicator summed across projects, by name and unit (e.g. 调解案件数, 件).
#[derive(SimpleObject)]
#[graphql(name = "IndicatorTotal")]
pub struct IndicatorTotalGql {
    pub name: String,
    pub unit: String,
    /// Projects with this indicator among their approved targets.
    pub projects: usize,
    /// Of those, projects with an actual at acceptance.
    pub reported: usize,
    /// Sum of the approved targets.
    pub target: f64,
    /// Sum of the actuals.
    pub actual: f64,
    /// Actuals ÷ targets of the projects that reported.
    pub completion: Option<f64>,
}

impl From<&IndicatorTotal> for IndicatorTotalGql {
    fn from(t: &IndicatorTotal) -> Self {
        Self {
            name: t.name.clone(),
            unit: t.unit.clone(),
            projects: t.projects,
            reported: t.reported,
            target: t.target,
            actual: t.actual,
            completion: t.completion,
        }
    }
}

/// The province's report on a call or a year (项目统计报表), over the projects the viewer
/// may see.
#[derive(SimpleObject)]
pub struct ProgrammeReport {
    /// The call's title, or `2022年度`.
    pub scope: String,
    /// The calls covered.
    pub call_ids: Vec<ID>,
    pub totals: ReportFigures,
    /// Projects per state met, in the workflow's order.
    pub states: Vec<StageCount>,
    /// By city bureau; `province` holds provincial organisations (省直).
    pub by_city: Vec<ReportRow>,
    /// By catalogue category (大类), those with projects, in the catalogue's order.
    pub by_category: Vec<ReportRow>,
    /// By catalogue part, those with projects, in the catalogue's order.
    pub by_part: Vec<ReportRow>,
    /// Indicator actuals summed by name and unit.
    pub indicators: Vec<IndicatorTotalGql>,
}

impl From<&ReportView> for ProgrammeReport {
    fn from(view: &ReportView) -> Self {
        let r = &view.report;
        let state_title = |id: &str| {
            view.layout
                .states
                .iter()
                .find(|(s, _)| s == id)
                .map_or(id.to_string(), |(_, t)| t.clone())
        };
        Self {
            scope: r.scope.clone(),
            call_ids: view.calls.iter().map(|c| ID(c.id.to_string())).collect(),
            totals: figures(&r.totals, view),
            states: r
                .states
                .iter()
                .map(|(id, count)| StageCount {
                    id: id.clone(),
                    title: state_title(id),
                    count: *count,
                })
                .collect(),
            by_city: rows(&r.by_city, view),
            by_category: rows(&r.by_category, view),
            by_part: rows(&r.by_part, view),
            indicators: r.indicators.iter().map(Into::into).collect(),
        }
    }
}

/// One evaluated project of a unit.
#[derive(SimpleObject)]
pub struct GradedProject {
    pub instance_id: ID,
    pub title: String,
    pub call_year: i32,
    pub catalogue_item: Option<String>,
    pub score: f64,
    /// 优, 良, 中 or 差.
    pub grade: String,
}

/// A unit's grades, for next year's budgeting.
#[derive(SimpleObject)]
#[graphql(name = "UnitGrades")]
pub struct UnitGradesGql {
    pub organisation_id: ID,
    pub organisation_name: String,
    /// The unit's city bureau; null for provincial organisations.
    pub city_id: Option<ID>,
    pub city_name: Option<String>,
    pub projects: Vec<GradedProject>,
    pub grades: GradeDistribution,
    pub average_score: Option<f64>,
}

impl From<UnitGrades> for UnitGradesGql {
    fn from(u: UnitGrades) -> Self {
        Self {
            organisation_id: ID(u.org_id),
            organisation_name: u.org_name,
            city_id: u.city.as_ref().map(|c| ID(c.0.clone())),
            city_name: u.city.map(|c| c.1),
            grades: grades(&u.grades),
            average_score: u.average_score,
            projects: u
                .projects
                .into_iter()
                .map(|p| GradedProject {
                    instance_id: ID(p.id),
                    title: p.title,
                    call_year: p.call_year,
                    catalogue_item: p.catalogue_item,
                    score: p.score,
                    grade: p.grade.name(Lang::ZhCn).to_string(),
                })
                .collect(),
        }
    }
}

/// A grade of one of the unit's other projects, shown on its application.
#[derive(SimpleObject)]
#[graphql(name = "PreviousGrade")]
pub struct PreviousGradeGql {
    pub instance_id: ID,
    pub title: String,
    pub call_year: Option<i32>,
    pub score: f64,
    pub grade: String,
    pub evaluated_at: DateTime<Utc>,
}

impl From<PreviousGrade> for PreviousGradeGql {
    fn from(g: PreviousGrade) -> Self {
        Self {
            instance_id: ID(g.instance_id.to_string()),
            title: g.title,
            call_year: g.call_year,
            score: g.score,
            grade: g.grade,
            evaluated_at: g.evaluated_at,
        }
    }
}

/// `callId` or `year`, exactly one.
pub(super) fn scope_of(call_id: Option<ID>, year: Option<i32>) -> Result<ReportScope> {
    match (call_id, year) {
        (Some(id), None) => Ok(ReportScope::Call(parse_id(&id, "callId")?)),
        (None, Some(year)) => Ok(ReportScope::Year(year)),
        _ => Err(ApiError::invalid(&[FieldError::new(
            "callId",
            "ONE_OF",
            "须且只能指定 callId 或 year 之一",
            "give exactly one of callId and year",
        )])
        .into()),
    }
}

#[derive(Default)]
pub struct ReportQuery;

#[Object]
impl ReportQuery {
    /// The report on every call of a year (managers, auditors; a city bureau: its city).
    async fn year_report(&self, ctx: &Context<'_>, year: i32) -> Result<ProgrammeReport> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let view = rc(ctx)
            .services
            .programme_report(&v.user, ReportScope::Year(year))
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok((&view).into())
    }

    /// A call's or a year's report as XLSX, one sheet per breakdown (总体, 按状态, 按地市,
    /// 按大类, 按部分, 指标汇总); CSV: the first sheet. Give `callId` or `year`.
    async fn export_report(
        &self,
        ctx: &Context<'_>,
        call_id: Option<ID>,
        year: Option<i32>,
        format: SpreadsheetFormat,
    ) -> Result<ExportedFile> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let scope = scope_of(call_id, year)?;
        let file = rc(ctx)
            .services
            .export_report(&v.user, scope, format.into())
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(file.into())
    }

    /// Each unit's grades in the calls of a year, for next year's budgeting.
    async fn unit_grades(&self, ctx: &Context<'_>, year: i32) -> Result<Vec<UnitGradesGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let units = rc(ctx)
            .services
            .unit_grades(&v.user, year)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(units.into_iter().map(Into::into).collect())
    }

    /// [`unitGrades`] as XLSX (单位汇总, 项目明细) or CSV (单位汇总).
    async fn export_unit_grades(
        &self,
        ctx: &Context<'_>,
        year: i32,
        format: SpreadsheetFormat,
    ) -> Result<ExportedFile> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let file = rc(ctx)
            .services
            .export_unit_grades(&v.user, year, format.into())
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(file.into())
    }
}

#[async_graphql::ComplexObject]
impl CallSummaryGql {
    /// The call's report: counts by stage, approvals, disbursement, spending, grades by
    /// city, category and part, indicator totals (managers, auditors; a city bureau: its
    /// city; null with a FORBIDDEN error for others, the rest of the summary intact).
    async fn report(&self, ctx: &Context<'_>) -> Result<Option<ProgrammeReport>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let view = rc(ctx)
            .services
            .programme_report(&v.user, ReportScope::Call(self.call.0.id))
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(Some((&view).into()))
    }
}
