//! The province's reports (项目统计报表) on a call or a year, each unit's grades, and a
//! unit's previous grades shown on its next application. The figures are computed by
//! `grantflow_programme::report` from facts read here, a handful of store calls whatever
//! the number of projects: the projects of the calls, their budget lines, spending,
//! disbursement ([`grantflow_store::ProgrammeStore::disbursed_totals`]), grades and
//! actuals, and the organisations' names.
//!
//! Who may read them: managers and auditors (everything), city bureaus (only their city's
//! projects: the same visibility as every list). Applicants and experts are refused.

use grantflow_programme::evaluation::Grade;
use grantflow_programme::report::{
    IndicatorFact, Layout, ProjectFacts, Report, UnitGrades, build_report, report_sheets,
    unit_grade_sheets, unit_grades,
};

use super::*;

/// What a report covers: one call, or every call of a year (`Call.year`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportScope {
    Call(Uuid),
    Year(i32),
}

/// A computed report with the stage and state titles it was laid out with.
#[derive(Debug, Clone)]
pub struct ReportView {
    pub report: Report,
    pub layout: Layout,
    /// The calls it covers.
    pub calls: Vec<Call>,
}

/// One of a unit's previous grades, as shown on its application.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousGrade {
    pub instance_id: Uuid,
    pub title: String,
    pub call_year: Option<i32>,
    pub score: f64,
    pub grade: String,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
}

fn money_of(v: Option<&Value>) -> Option<Money> {
    match v? {
        Value::String(s) => Money::parse_with_unit(s).ok(),
        Value::Number(n) => n.as_i64().and_then(Money::from_yuan).or_else(|| {
            n.as_f64()
                .map(|f| Money::from_fen((f * 100.0).round() as i64))
        }),
        _ => None,
    }
}

/// Approved funding when the project was approved (and not declined after 公示).
fn approved_funding(instance: &Instance) -> Option<Money> {
    let approved = instance
        .data
        .get("approved_on")
        .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        && instance.state != "not_funded";
    approved.then(|| money_of(instance.data.get("approved_budget")).unwrap_or(Money::ZERO))
}

/// Each approved quantitative target with its acceptance actual: the recorded actual, else
/// the one submitted with the final report (as the evaluation reads them).
fn indicator_facts(instance: &Instance, recorded: &[ActualRecord]) -> Vec<IndicatorFact> {
    let submitted = instance
        .data
        .get("indicator_actuals")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    indicators_from(instance.data.get("approved_indicators"))
        .into_iter()
        .filter(grantflow_programme::indicator::Indicator::is_quantitative)
        .map(|i| {
            let from_store = recorded
                .iter()
                .find(|a| {
                    a.instance_id == instance.id
                        && a.indicator_id == i.id
                        && a.checkpoint == "acceptance"
                })
                .and_then(|a| a.value.as_f64());
            let from_data = || {
                submitted
                    .iter()
                    .find(|s| {
                        s.get("id").and_then(Value::as_str) == Some(i.id.as_str())
                            || s.get("name").and_then(Value::as_str) == Some(i.name.as_str())
                    })
                    .and_then(|s| s.get("actual").and_then(Value::as_f64))
            };
            IndicatorFact {
                name: i.name.clone(),
                unit: i.unit.clone(),
                target: i.target.as_number(),
                actual: from_store.or_else(from_data),
            }
        })
        .collect()
}

impl Services {
    fn require_report_reader(user: &User) -> ServiceResult<()> {
        require_role(user, &[Role::Manager, Role::Auditor, Role::City])
    }

    /// The stages and states of the funded-project workflow, with their Chinese titles.
    fn report_layout(&self) -> Layout {
        let Some(wf) = self.workflows.latest(PROJECT_WORKFLOW) else {
            return Layout::default();
        };
        Layout {
            stages: wf
                .def
                .stages
                .iter()
                .map(|s| (s.id.clone(), s.title.zh_cn.clone()))
                .collect(),
            states: wf
                .def
                .states
                .iter()
                .map(|s| (s.id.clone(), s.title.zh_cn.clone()))
                .collect(),
        }
    }

    async fn calls_in_scope(&self, user: &User, scope: ReportScope) -> ServiceResult<Vec<Call>> {
        match scope {
            ReportScope::Call(id) => Ok(vec![self.call(user, id).await?]),
            ReportScope::Year(year) => {
                if !(2000..=2100).contains(&year) {
                    return invalid("year", "年度无效", "the year is not valid");
                }
                let mut calls: Vec<Call> = self
                    .store
                    .list_calls()
                    .await?
                    .into_iter()
                    .filter(|c| c.year == year)
                    .collect();
                calls.sort_by_key(|c| c.created_at);
                Ok(calls)
            }
        }
    }

    /// The facts of every funded project of `calls` that `user` may see.
    pub(super) async fn project_facts(
        &self,
        user: &User,
        calls: &[Call],
    ) -> ServiceResult<Vec<ProjectFacts>> {
        let mut projects: Vec<(Instance, &Call)> = Vec::new();
        for call in calls {
            for p in self.visible_of_call(user, PROJECT_WORKFLOW, call).await? {
                projects.push((p, call));
            }
        }
        let ids: Vec<Uuid> = projects.iter().map(|(p, _)| p.id).collect();
        let lines = self.store.budget_lines(&ids).await?;
        let spending = self.store.spending(&ids).await?;
        let disbursed: HashMap<Uuid, Money> = self
            .store
            .disbursed_totals(&ids)
            .await?
            .into_iter()
            .map(|t| (t.instance_id, t.disbursed))
            .collect();
        let grades = self.store.grades_of(&ids).await?;
        let actuals = self.store.actuals_of(&ids).await?;
        let mut org_ids: Vec<Uuid> = projects
            .iter()
            .flat_map(|(p, _)| [Some(p.org_id), p.city_id])
            .flatten()
            .collect();
        org_ids.sort_unstable();
        org_ids.dedup();
        let names: HashMap<Uuid, String> = self
            .store
            .get_orgs(&org_ids)
            .await?
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect();
        let name = |id: &Uuid| names.get(id).cloned().unwrap_or_default();
        let mut out = Vec::with_capacity(projects.len());
        for (p, call) in &projects {
            let item = p
                .data
                .get("catalogue_item")
                .and_then(Value::as_str)
                .map(str::to_string);
            let category = item.as_deref().and_then(|item| {
                call.items()
                    .find(|(_, _, i)| i.item_id == item)
                    .and_then(|(c, _, _)| from_code::<Category>(c))
            });
            let part = p
                .data
                .get("part")
                .and_then(Value::as_str)
                .and_then(from_code::<Part>);
            let ledger = Self::ledger(p, &lines, &spending);
            let grade = grades.iter().find(|g| g.instance_id == p.id);
            out.push(ProjectFacts {
                id: p.id.to_string(),
                title: p.title.clone(),
                call_year: call.year,
                org_id: p.org_id.to_string(),
                org_name: name(&p.org_id),
                city: p.city_id.map(|c| (c.to_string(), name(&c))),
                state: p.state.clone(),
                stage: p.stage.clone(),
                catalogue_item: item,
                category,
                part,
                approved: approved_funding(p),
                budgeted: ledger.budgeted(),
                disbursed: disbursed.get(&p.id).copied().unwrap_or(Money::ZERO),
                spent: ledger.spent(),
                score: grade.map(|g| g.total),
                grade: grade.and_then(|g| Grade::from_name(&g.grade)),
                indicators: indicator_facts(p, &actuals),
            });
        }
        Ok(out)
    }

    /// The report on a call or a year: managers and auditors see every project, a city
    /// bureau its city's.
    pub async fn programme_report(
        &self,
        user: &User,
        scope: ReportScope,
    ) -> ServiceResult<ReportView> {
        Self::require_report_reader(user)?;
        let calls = self.calls_in_scope(user, scope).await?;
        let facts = self.project_facts(user, &calls).await?;
        let label = match (scope, calls.as_slice()) {
            (ReportScope::Call(_), [call]) => call.title.clone(),
            (_, _) => match scope {
                ReportScope::Year(y) => format!("{y}年度"),
                ReportScope::Call(id) => id.to_string(),
            },
        };
        let layout = self.report_layout();
        Ok(ReportView {
            report: build_report(&label, &facts, &layout),
            layout,
            calls,
        })
    }

    /// The report as XLSX, one sheet per breakdown (总体, 按状态, 按地市, 按大类, 按部分,
    /// 指标汇总); CSV carries the first sheet.
    pub async fn export_report(
        &self,
        user: &User,
        scope: ReportScope,
        format: ExportFormat,
    ) -> ServiceResult<ExportFile> {
        let view = self.programme_report(user, scope).await?;
        let sheets = report_sheets(&view.report, &view.layout);
        self.render(format, format!("{}项目统计", view.report.scope), sheets)
            .await
    }

    /// Each unit's grades in the calls of `year`, for next year's budgeting.
    pub async fn unit_grades(&self, user: &User, year: i32) -> ServiceResult<Vec<UnitGrades>> {
        Self::require_report_reader(user)?;
        let calls = self.calls_in_scope(user, ReportScope::Year(year)).await?;
        let facts = self.project_facts(user, &calls).await?;
        Ok(unit_grades(&facts))
    }

    /// [`Services::unit_grades`] as XLSX (单位汇总, 项目明细) or CSV (单位汇总).
    pub async fn export_unit_grades(
        &self,
        user: &User,
        year: i32,
        format: ExportFormat,
    ) -> ServiceResult<ExportFile> {
        let units = self.unit_grades(user, year).await?;
        self.render(
            format,
            format!("{year}年度承担单位绩效评价等级"),
            unit_grade_sheets(&units),
        )
        .await
    }

    /// Whether `user` sees the unit's previous grades on `instance` (its unit's other
    /// evaluated projects, for the decision on this application and next year's
    /// budgeting): on funded projects, for the province and the unit's city bureau, never
    /// for a reviewer of a blind round ([`crate::redaction::shows_unit_record`]; `blind`:
    /// whether `user` reviews it in one, [`Services::blind_instance_ids`]). Shown as
    /// [`Services::previous_of`] its unit's [`Services::grades_of_units`], which the API
    /// loads for a whole page of projects at once.
    pub fn shows_previous_grades(user: &User, instance: &Instance, blind: bool) -> bool {
        instance.workflow_id == PROJECT_WORKFLOW
            && crate::redaction::shows_unit_record(user, instance, blind)
    }

    /// The grades of every evaluated project of these units, newest first, by unit (a
    /// unit without any is absent), in three store calls whatever the number of units.
    /// Shown only where [`Services::shows_previous_grades`] allows.
    pub async fn grades_of_units(
        &self,
        org_ids: &[Uuid],
    ) -> ServiceResult<HashMap<Uuid, Vec<PreviousGrade>>> {
        let grades = self.store.grades_of_orgs(org_ids).await?;
        if grades.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<Uuid> = grades.iter().map(|(_, g)| g.instance_id).collect();
        let titles: HashMap<Uuid, String> = self
            .store
            .get_instances(&ids)
            .await?
            .into_iter()
            .map(|p| (p.id, p.title))
            .collect();
        let years: HashMap<String, i32> = self
            .store
            .list_calls()
            .await?
            .into_iter()
            .map(|c| (c.id.to_string(), c.year))
            .collect();
        let mut by_unit: HashMap<Uuid, Vec<PreviousGrade>> = HashMap::new();
        for (org, g) in grades {
            by_unit.entry(org).or_default().push(PreviousGrade {
                title: titles.get(&g.instance_id).cloned().unwrap_or_default(),
                call_year: years.get(&g.call_id).copied(),
                instance_id: g.instance_id,
                score: g.total,
                grade: g.grade,
                evaluated_at: g.evaluated_at,
            });
        }
        Ok(by_unit)
    }

    /// Of a unit's grades, those of its projects other than `instance`.
    pub fn previous_of(instance: &Instance, unit: &[PreviousGrade]) -> Vec<PreviousGrade> {
        unit.iter()
            .filter(|g| g.instance_id != instance.id)
            .cloned()
            .collect()
    }
}
