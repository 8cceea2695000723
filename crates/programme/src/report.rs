//! The province's reports on a call or a year (项目统计报表): counts by stage and state,
//! approvals (count and amount), disbursement (拨付), spending and execution rates, grades —
//! each over all projects and broken down by city (地市), catalogue category (大类) and
//! catalogue part (四个部分); indicator actuals summed across projects by indicator name and
//! unit (the province's yearly targets, e.g. 调解案件数 件); and each unit's grades for next
//! year's budgeting.
//!
//! Pure computation over [`ProjectFacts`] the service gathers: no I/O. Every figure is a sum
//! or a count of the facts, so a report can be checked by hand:
//!
//! * **approved**: projects with an approval (`approved_on` set, not declined afterwards),
//!   and the sum of their approved funding (`approved_budget`);
//! * **budgeted / spent**: the sums of the projects' budget lines and spending;
//!   `execution_rate` = spent ÷ budgeted (as the call summary always had it);
//! * **disbursed** (拨付): the sum paid to the projects; `disbursement_rate` = disbursed ÷
//!   approved amount, `spent_of_disbursed` = spent ÷ disbursed, `spent_of_approved` = spent ÷
//!   approved amount (each absent when its denominator is zero);
//! * **grades**: how many evaluated projects got 优/良/中/差, and the mean score (2 decimals).
//!
//! A breakdown lists the rows that have projects: cities in the order met, categories and
//! parts in the catalogue's order. A project without a city (a provincial organisation
//! applying straight to the province) falls in the city row `province` (省直); an unknown
//! category or part in `unknown`.
//!
//! Kept as one file: it passes 800 lines only with its unit tests (the `tests` module at
//! the end).

use std::collections::BTreeMap;

use grantflow_domain::{Lang, Money};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Category, Part};
use crate::evaluation::{Grade, GradeCounts};
use crate::export::{Cell, Column, ColumnKind, Sheet};

/// The city row key for projects of organisations outside any city (省直).
pub const PROVINCE_KEY: &str = "province";
/// The row key for a project whose category or part is not known.
pub const UNKNOWN_KEY: &str = "unknown";

/// A planned or achieved quantity of one indicator of one project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorFact {
    pub name: String,
    pub unit: String,
    /// The approved (frozen) target, when quantitative.
    pub target: Option<f64>,
    /// The actual at acceptance, when recorded.
    pub actual: Option<f64>,
}

/// What the report needs to know of one funded project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectFacts {
    pub id: String,
    pub title: String,
    pub call_year: i32,
    /// The applicant organisation (承担单位).
    pub org_id: String,
    pub org_name: String,
    /// The city bureau's organisation id and name; `None` outside any city (省直).
    pub city: Option<(String, String)>,
    pub state: String,
    pub stage: String,
    pub catalogue_item: Option<String>,
    pub category: Option<Category>,
    pub part: Option<Part>,
    /// Approved funding (立项资助金额) when approved.
    pub approved: Option<Money>,
    pub budgeted: Money,
    pub disbursed: Money,
    pub spent: Money,
    /// The stored evaluation's total and grade.
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub indicators: Vec<IndicatorFact>,
}

/// The figures of one set of projects (the whole report or one row of a breakdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub projects: usize,
    /// Projects per stage id, in the order of the report's stages (zeros included).
    pub stages: Vec<(String, usize)>,
    pub approved: usize,
    pub approved_amount: Money,
    pub budgeted: Money,
    pub disbursed: Money,
    pub spent: Money,
    /// spent ÷ budgeted.
    pub execution_rate: Option<f64>,
    /// disbursed ÷ approved amount.
    pub disbursement_rate: Option<f64>,
    /// spent ÷ disbursed.
    pub spent_of_disbursed: Option<f64>,
    /// spent ÷ approved amount.
    pub spent_of_approved: Option<f64>,
    pub evaluated: usize,
    pub grades: GradeCounts,
    /// Mean score of the evaluated projects, rounded to 2 decimals.
    pub average_score: Option<f64>,
}

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// Organisation id of the city, category code, part code, or `province` / `unknown`.
    pub key: String,
    /// 广州市市场监督管理局, 三、强化知识产权保护, 保留省级 …
    pub label: String,
    pub figures: Figures,
}

/// An indicator summed over the projects that carry it, by name and unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorTotal {
    pub name: String,
    pub unit: String,
    /// Projects that carry the indicator.
    pub projects: usize,
    /// Of those, the projects with an actual.
    pub reported: usize,
    /// Sum of the quantitative targets.
    pub target: f64,
    /// Sum of the actuals.
    pub actual: f64,
    /// actual ÷ target over the projects with an actual and a target (absent without).
    pub completion: Option<f64>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What it covers, e.g. `2022年` or a call's title.
    pub scope: String,
    pub totals: Figures,
    /// Projects per state id, states in first-seen order of `states` passed in.
    pub states: Vec<(String, usize)>,
    pub by_city: Vec<BreakdownRow>,
    pub by_category: Vec<BreakdownRow>,
    pub by_part: Vec<BreakdownRow>,
    pub indicators: Vec<IndicatorTotal>,
}

/// The order stages and states are listed in: the workflow's stages and states, each with
/// its title; ids not listed follow in the order met.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub stages: Vec<(String, String)>,
    pub states: Vec<(String, String)>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ratio(a: Money, b: Money) -> Option<f64> {
    a.ratio_of(b)
}

/// The figures of `projects`, stages listed in `stage_ids` order.
pub fn figures<'a>(
    projects: impl IntoIterator<Item = &'a ProjectFacts>,
    stage_ids: &[String],
) -> Figures {
    let mut stages: Vec<(String, usize)> = stage_ids.iter().map(|s| (s.clone(), 0)).collect();
    let mut f = Figures {
        projects: 0,
        stages: Vec::new(),
        approved: 0,
        approved_amount: Money::ZERO,
        budgeted: Money::ZERO,
        disbursed: Money::ZERO,
        spent: Money::ZERO,
        execution_rate: None,
        disbursement_rate: None,
        spent_of_disbursed: None,
        spent_of_approved: None,
        evaluated: 0,
        grades: GradeCounts::default(),
        average_score: None,
    };
    let mut scores = Vec::new();
    let mut approved = Vec::new();
    let mut budgeted = Vec::new();
    let mut disbursed = Vec::new();
    let mut spent = Vec::new();
    for p in projects {
        f.projects += 1;
        match stages.iter_mut().find(|(s, _)| *s == p.stage) {
            Some((_, n)) => *n += 1,
            None => stages.push((p.stage.clone(), 1)),
        }
        if let Some(a) = p.approved {
            f.approved += 1;
            approved.push(a);
        }
        budgeted.push(p.budgeted);
        disbursed.push(p.disbursed);
        spent.push(p.spent);
        if let Some(g) = p.grade {
            f.evaluated += 1;
            f.grades.add(g);
            if let Some(s) = p.score {
                scores.push(s);
            }
        }
    }
    f.stages = stages;
    f.approved_amount = approved.into_iter().sum();
    f.budgeted = budgeted.into_iter().sum();
    f.disbursed = disbursed.into_iter().sum();
    f.spent = spent.into_iter().sum();
    f.execution_rate = ratio(f.spent, f.budgeted);
    f.disbursement_rate = ratio(f.disbursed, f.approved_amount);
    f.spent_of_disbursed = ratio(f.spent, f.disbursed);
    f.spent_of_approved = ratio(f.spent, f.approved_amount);
    f.average_score =
        (!scores.is_empty()).then(|| round2(scores.iter().sum::<f64>() / scores.len() as f64));
    f
}

fn code<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| UNKNOWN_KEY.into())
}

fn breakdown(
    projects: &[ProjectFacts],
    stage_ids: &[String],
    key_of: impl Fn(&ProjectFacts) -> (String, String),
    order: &[(String, String)],
) -> Vec<BreakdownRow> {
    let mut keys: Vec<(String, String)> = order.to_vec();
    for p in projects {
        let k = key_of(p);
        if !keys.iter().any(|(key, _)| *key == k.0) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(key, label)| BreakdownRow {
            figures: figures(projects.iter().filter(|p| key_of(p).0 == key), stage_ids),
            key,
            label,
        })
        .filter(|row| row.figures.projects > 0)
        .collect()
}

/// The city row of a project: its city bureau, or 省直.
pub fn city_key(p: &ProjectFacts) -> (String, String) {
    match &p.city {
        Some((id, name)) => (id.clone(), name.clone()),
        None => (PROVINCE_KEY.into(), "省直单位".into()),
    }
}

/// The category row of a project.
pub fn category_key(p: &ProjectFacts) -> (String, String) {
    match p.category {
        Some(c) => (code(&c), c.label()),
        None => (UNKNOWN_KEY.into(), "未分类".into()),
    }
}

/// The part row of a project.
pub fn part_key(p: &ProjectFacts) -> (String, String) {
    match p.part {
        Some(part) => (code(&part), part.name(Lang::ZhCn).into()),
        None => (UNKNOWN_KEY.into(), "未分类".into()),
    }
}

/// Indicators summed by (name, unit), in first-seen order.
pub fn indicator_totals(projects: &[ProjectFacts]) -> Vec<IndicatorTotal> {
    let mut out: Vec<IndicatorTotal> = Vec::new();
    // Per total: the target and actual of the projects that have both.
    let mut paired: Vec<(f64, f64)> = Vec::new();
    for p in projects {
        for i in &p.indicators {
            let name = i.name.trim();
            let unit = i.unit.trim();
            let n = match out.iter().position(|t| t.name == name && t.unit == unit) {
                Some(n) => n,
                None => {
                    out.push(IndicatorTotal {
                        name: name.into(),
                        unit: unit.into(),
                        projects: 0,
                        reported: 0,
                        target: 0.0,
                        actual: 0.0,
                        completion: None,
                    });
                    paired.push((0.0, 0.0));
                    out.len() - 1
                }
            };
            let t = &mut out[n];
            t.projects += 1;
            if let Some(target) = i.target {
                t.target += target;
            }
            if let Some(actual) = i.actual {
                t.reported += 1;
                t.actual += actual;
                if let Some(target) = i.target {
                    paired[n].0 += target;
                    paired[n].1 += actual;
                }
            }
        }
    }
    for (t, (target, actual)) in out.iter_mut().zip(paired) {
        t.target = round2(t.target);
        t.actual = round2(t.actual);
        t.completion = (target != 0.0).then(|| actual / target);
    }
    out
}

/// The whole report over `projects`.
pub fn build_report(scope: &str, projects: &[ProjectFacts], layout: &Layout) -> Report {
    let stage_ids: Vec<String> = layout.stages.iter().map(|(s, _)| s.clone()).collect();
    let mut states: Vec<(String, usize)> = Vec::new();
    for p in projects {
        match states.iter_mut().find(|(s, _)| *s == p.state) {
            Some((_, n)) => *n += 1,
            None => states.push((p.state.clone(), 1)),
        }
    }
    let position = |s: &str| {
        layout
            .states
            .iter()
            .position(|(id, _)| id == s)
            .unwrap_or(usize::MAX)
    };
    states.sort_by_key(|(s, _)| position(s));
    let categories: Vec<(String, String)> =
        Category::ALL.iter().map(|c| (code(c), c.label())).collect();
    let parts: Vec<(String, String)> = Part::ALL
        .iter()
        .map(|p| (code(p), p.name(Lang::ZhCn).to_string()))
        .collect();
    Report {
        scope: scope.into(),
        totals: figures(projects, &stage_ids),
        states,
        by_city: breakdown(projects, &stage_ids, city_key, &[]),
        by_category: breakdown(projects, &stage_ids, category_key, &categories),
        by_part: breakdown(projects, &stage_ids, part_key, &parts),
        indicators: indicator_totals(projects),
    }
}

/// One graded project of a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedProject {
    pub id: String,
    pub title: String,
    pub call_year: i32,
    pub catalogue_item: Option<String>,
    pub score: f64,
    pub grade: Grade,
}

/// A unit's grades (for next year's budgeting, 绩效评价结果与预算安排挂钩).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitGrades {
    pub org_id: String,
    pub org_name: String,
    pub city: Option<(String, String)>,
    pub projects: Vec<GradedProject>,
    pub grades: GradeCounts,
    pub average_score: Option<f64>,
}

/// The evaluated projects grouped by unit, units by name, projects by year then title.
pub fn unit_grades(projects: &[ProjectFacts]) -> Vec<UnitGrades> {
    let mut by_org: BTreeMap<(String, String), UnitGrades> = BTreeMap::new();
    for p in projects {
        let (Some(grade), Some(score)) = (p.grade, p.score) else {
            continue;
        };
        let u = by_org
            .entry((p.org_name.clone(), p.org_id.clone()))
            .or_insert_with(|| UnitGrades {
                org_id: p.org_id.clone(),
                org_name: p.org_name.clone(),
                city: p.city.clone(),
                projects: Vec::new(),
                grades: GradeCounts::default(),
                average_score: None,
            });
        u.grades.add(grade);
        u.projects.push(GradedProject {
            id: p.id.clone(),
            title: p.title.clone(),
            call_year: p.call_year,
            catalogue_item: p.catalogue_item.clone(),
            score,
            grade,
        });
    }
    by_org
        .into_values()
        .map(|mut u| {
            u.projects
                .sort_by(|a, b| (a.call_year, &a.title).cmp(&(b.call_year, &b.title)));
            u.average_score = Some(round2(
                u.projects.iter().map(|p| p.score).sum::<f64>() / u.projects.len() as f64,
            ));
            u
        })
        .collect()
}

// ---------------------------------------------------------------- sheets

fn rate(r: Option<f64>) -> Cell {
    r.map_or(Cell::Empty, Cell::Number)
}

fn figure_columns(first: &str, layout: &Layout) -> Vec<Column> {
    let mut columns = vec![
        Column::new(first, ColumnKind::Text),
        Column::new("项目数", ColumnKind::Integer),
    ];
    for (_, title) in &layout.stages {
        columns.push(Column::new(format!("{title}阶段"), ColumnKind::Integer));
    }
    columns.extend([
        Column::new("立项数", ColumnKind::Integer),
        Column::new("立项金额（元）", ColumnKind::Money),
        Column::new("预算（元）", ColumnKind::Money),
        Column::new("拨付（元）", ColumnKind::Money),
        Column::new("支出（元）", ColumnKind::Money),
        Column::new("预算执行率", ColumnKind::Percent),
        Column::new("拨付率", ColumnKind::Percent),
        Column::new("支出占拨付", ColumnKind::Percent),
        Column::new("支出占立项金额", ColumnKind::Percent),
        Column::new("评价项目数", ColumnKind::Integer),
        Column::new("优", ColumnKind::Integer),
        Column::new("良", ColumnKind::Integer),
        Column::new("中", ColumnKind::Integer),
        Column::new("差", ColumnKind::Integer),
        Column::new("平均分", ColumnKind::Number),
    ]);
    columns
}

fn figure_row(label: &str, f: &Figures, layout: &Layout) -> Vec<Cell> {
    let mut row = vec![label.into(), Cell::Integer(f.projects as i64)];
    for (stage, _) in &layout.stages {
        let n = f
            .stages
            .iter()
            .find(|(s, _)| s == stage)
            .map_or(0, |(_, n)| *n);
        row.push(Cell::Integer(n as i64));
    }
    row.extend([
        Cell::Integer(f.approved as i64),
        Cell::Money(f.approved_amount),
        Cell::Money(f.budgeted),
        Cell::Money(f.disbursed),
        Cell::Money(f.spent),
        rate(f.execution_rate),
        rate(f.disbursement_rate),
        rate(f.spent_of_disbursed),
        rate(f.spent_of_approved),
        Cell::Integer(f.evaluated as i64),
    ]);
    for g in Grade::ALL {
        row.push(Cell::Integer(f.grades.get(g) as i64));
    }
    row.push(f.average_score.map_or(Cell::Empty, Cell::Number));
    row
}

fn breakdown_sheet(name: &str, first: &str, rows: &[BreakdownRow], layout: &Layout) -> Sheet {
    Sheet {
        name: name.into(),
        title: None,
        columns: figure_columns(first, layout),
        rows: rows
            .iter()
            .map(|r| figure_row(&r.label, &r.figures, layout))
            .collect(),
    }
}

/// The report as sheets: 总体, 按状态, 按地市, 按大类, 按部分, 指标汇总.
pub fn report_sheets(report: &Report, layout: &Layout) -> Vec<Sheet> {
    let title_of = |id: &str| {
        layout
            .states
            .iter()
            .find(|(s, _)| s == id)
            .map_or(id.to_string(), |(_, t)| t.clone())
    };
    vec![
        Sheet {
            title: Some(format!("{}项目统计", report.scope)),
            ..breakdown_sheet(
                "总体",
                "范围",
                &[BreakdownRow {
                    key: "all".into(),
                    label: report.scope.clone(),
                    figures: report.totals.clone(),
                }],
                layout,
            )
        },
        Sheet {
            name: "按状态".into(),
            title: None,
            columns: vec![
                Column::new("状态", ColumnKind::Text),
                Column::new("状态编号", ColumnKind::Text),
                Column::new("项目数", ColumnKind::Integer),
            ],
            rows: report
                .states
                .iter()
                .map(|(s, n)| {
                    vec![
                        title_of(s).into(),
                        s.as_str().into(),
                        Cell::Integer(*n as i64),
                    ]
                })
                .collect(),
        },
        breakdown_sheet("按地市", "地市", &report.by_city, layout),
        breakdown_sheet("按大类", "大类", &report.by_category, layout),
        breakdown_sheet("按部分", "目录部分", &report.by_part, layout),
        Sheet {
            name: "指标汇总".into(),
            title: None,
            columns: vec![
                Column::new("指标名称", ColumnKind::Text),
                Column::new("计量单位", ColumnKind::Text),
                Column::new("项目数", ColumnKind::Integer),
                Column::new("已报实际值项目数", ColumnKind::Integer),
                Column::new("目标值合计", ColumnKind::Number),
                Column::new("实际值合计", ColumnKind::Number),
                Column::new("完成率", ColumnKind::Percent),
            ],
            rows: report
                .indicators
                .iter()
                .map(|t| {
                    vec![
                        t.name.as_str().into(),
                        t.unit.as_str().into(),
                        Cell::Integer(t.projects as i64),
                        Cell::Integer(t.reported as i64),
                        Cell::Number(t.target),
                        Cell::Number(t.actual),
                        rate(t.completion),
                    ]
                })
                .collect(),
        },
    ]
}

/// Each unit's grades as sheets: 单位汇总 (one row per unit) and 项目明细 (one per project).
pub fn unit_grade_sheets(units: &[UnitGrades]) -> Vec<Sheet> {
    let city = |u: &UnitGrades| {
        u.city
            .as_ref()
            .map_or("省直单位".to_string(), |c| c.1.clone())
    };
    let mut summary = Sheet {
        name: "单位汇总".into(),
        title: Some("承担单位绩效评价等级（供下年度预算安排参考）".into()),
        columns: vec![
            Column::new("承担单位", ColumnKind::Text),
            Column::new("地市", ColumnKind::Text),
            Column::new("评价项目数", ColumnKind::Integer),
            Column::new("优", ColumnKind::Integer),
            Column::new("良", ColumnKind::Integer),
            Column::new("中", ColumnKind::Integer),
            Column::new("差", ColumnKind::Integer),
            Column::new("平均分", ColumnKind::Number),
        ],
        rows: Vec::new(),
    };
    let mut detail = Sheet {
        name: "项目明细".into(),
        title: None,
        columns: vec![
            Column::new("承担单位", ColumnKind::Text),
            Column::new("地市", ColumnKind::Text),
            Column::new("年度", ColumnKind::Integer),
            Column::new("项目编号", ColumnKind::Text),
            Column::new("项目名称", ColumnKind::Text),
            Column::new("目录项目", ColumnKind::Text),
            Column::new("得分", ColumnKind::Number),
            Column::new("等级", ColumnKind::Text),
        ],
        rows: Vec::new(),
    };
    for u in units {
        let mut row = vec![
            u.org_name.as_str().into(),
            city(u).into(),
            Cell::Integer(u.projects.len() as i64),
        ];
        for g in Grade::ALL {
            row.push(Cell::Integer(u.grades.get(g) as i64));
        }
        row.push(u.average_score.map_or(Cell::Empty, Cell::Number));
        summary.rows.push(row);
        for p in &u.projects {
            detail.rows.push(vec![
                u.org_name.as_str().into(),
                city(u).into(),
                Cell::Integer(p.call_year.into()),
                p.id.as_str().into(),
                p.title.as_str().into(),
                p.catalogue_item.clone().unwrap_or_default().into(),
                Cell::Number(p.score),
                p.grade.name(Lang::ZhCn).into(),
            ]);
        }
    }
    vec![summary, detail]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuan(y: i64) -> Money {
        Money::from_yuan(y).unwrap()
    }

    fn project(
        id: &str,
        city: Option<&str>,
        cat: Category,
        part: Part,
        stage: &str,
    ) -> ProjectFacts {
        ProjectFacts {
            id: id.into(),
            title: format!("项目{id}"),
            call_year: 2022,
            org_id: format!("org-{id}"),
            org_name: format!("单位{id}"),
            city: city.map(|c| (format!("city-{c}"), format!("{c}市市场监督管理局"))),
            state: stage.into(),
            stage: stage.into(),
            catalogue_item: Some(format!("2022-{id}")),
            category: Some(cat),
            part: Some(part),
            approved: None,
            budgeted: Money::ZERO,
            disbursed: Money::ZERO,
            spent: Money::ZERO,
            score: None,
            grade: None,
            indicators: Vec::new(),
        }
    }

    fn layout() -> Layout {
        Layout {
            stages: ["application", "execution", "evaluation", "closed"]
                .iter()
                .map(|s| (s.to_string(), s.to_uppercase()))
                .collect(),
            states: vec![("execution".into(), "项目执行".into())],
        }
    }

    /// Three projects: two in Guangzhou (one approved 300 000, 180 000 spent, 200 000
    /// disbursed, graded 良 85; one in application), one provincial (approved 100 000,
    /// all disbursed and spent, graded 优 93).
    fn fixture() -> Vec<ProjectFacts> {
        let mut a = project(
            "a",
            Some("广州"),
            Category::Protection,
            Part::RetainedProvincial,
            "evaluation",
        );
        a.approved = Some(yuan(300_000));
        a.budgeted = yuan(300_000);
        a.disbursed = yuan(200_000);
        a.spent = yuan(180_000);
        a.score = Some(85.0);
        a.grade = Some(Grade::Good);
        a.indicators = vec![
            IndicatorFact {
                name: "调解案件数".into(),
                unit: "件".into(),
                target: Some(100.0),
                actual: Some(120.0),
            },
            IndicatorFact {
                name: "举办培训场次".into(),
                unit: "场".into(),
                target: Some(10.0),
                actual: None,
            },
        ];
        let b = project(
            "b",
            Some("广州"),
            Category::Utilisation,
            Part::DelegatedToCity,
            "application",
        );
        let mut c = project(
            "c",
            None,
            Category::Protection,
            Part::PatentOfficeAndProtectionCentre,
            "closed",
        );
        c.approved = Some(yuan(100_000));
        c.budgeted = yuan(100_000);
        c.disbursed = yuan(100_000);
        c.spent = yuan(100_000);
        c.score = Some(93.0);
        c.grade = Some(Grade::Excellent);
        c.indicators = vec![IndicatorFact {
            name: " 调解案件数".into(),
            unit: "件".into(),
            target: Some(50.0),
            actual: Some(40.0),
        }];
        vec![a, b, c]
    }

    #[test]
    fn totals_are_sums_and_rates_of_sums() {
        let r = build_report("2022年", &fixture(), &layout());
        let t = &r.totals;
        assert_eq!(t.projects, 3);
        assert_eq!(t.approved, 2);
        assert_eq!(t.approved_amount, yuan(400_000));
        assert_eq!(t.budgeted, yuan(400_000));
        assert_eq!(t.disbursed, yuan(300_000));
        assert_eq!(t.spent, yuan(280_000));
        assert_eq!(t.execution_rate, Some(0.7));
        assert_eq!(t.disbursement_rate, Some(0.75));
        assert_eq!(t.spent_of_disbursed, Some(280.0 / 300.0));
        assert_eq!(t.spent_of_approved, Some(0.7));
        assert_eq!((t.evaluated, t.grades.excellent, t.grades.good), (2, 1, 1));
        assert_eq!(t.average_score, Some(89.0));
        assert_eq!(
            t.stages,
            vec![
                ("application".into(), 1),
                ("execution".into(), 0),
                ("evaluation".into(), 1),
                ("closed".into(), 1)
            ]
        );
    }

    #[test]
    fn breakdowns_split_by_city_category_and_part() {
        let r = build_report("2022年", &fixture(), &layout());
        let gz = &r.by_city[0];
        assert_eq!((gz.key.as_str(), gz.figures.projects), ("city-广州", 2));
        assert_eq!(gz.figures.approved_amount, yuan(300_000));
        assert_eq!(gz.figures.disbursement_rate, Some(2.0 / 3.0));
        let prov = &r.by_city[1];
        assert_eq!(
            (prov.key.as_str(), prov.label.as_str()),
            (PROVINCE_KEY, "省直单位")
        );
        assert_eq!(prov.figures.grades.excellent, 1);
        // Categories and parts with projects, in the catalogue's order.
        let keys = |rows: &[BreakdownRow]| rows.iter().map(|r| r.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&r.by_category), ["protection", "utilisation"]);
        let protection = &r.by_category[0];
        assert_eq!(protection.label, "三、强化知识产权保护");
        assert_eq!(
            (protection.figures.projects, protection.figures.approved),
            (2, 2)
        );
        assert_eq!(r.by_category[1].figures.execution_rate, None);
        assert_eq!(
            keys(&r.by_part),
            [
                "retained_provincial",
                "patent_office_and_protection_centre",
                "delegated_to_city"
            ]
        );
        assert_eq!(
            (r.by_part[2].figures.projects, r.by_part[2].figures.approved),
            (1, 0)
        );
        // The breakdowns add up to the totals.
        for rows in [&r.by_city, &r.by_category, &r.by_part] {
            assert_eq!(rows.iter().map(|r| r.figures.projects).sum::<usize>(), 3);
            assert_eq!(
                rows.iter().map(|r| r.figures.spent).sum::<Money>(),
                yuan(280_000)
            );
        }
        // Only states met are listed; those the layout does not know in the order met.
        let states: Vec<&str> = r.states.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(states, ["evaluation", "application", "closed"]);
    }

    #[test]
    fn indicators_sum_by_name_and_unit() {
        let r = build_report("2022年", &fixture(), &layout());
        let mediation = &r.indicators[0];
        assert_eq!(
            (mediation.name.as_str(), mediation.unit.as_str()),
            ("调解案件数", "件")
        );
        assert_eq!((mediation.projects, mediation.reported), (2, 2));
        assert_eq!((mediation.target, mediation.actual), (150.0, 160.0));
        assert_eq!(mediation.completion, Some(160.0 / 150.0));
        let training = &r.indicators[1];
        assert_eq!(
            (training.projects, training.reported, training.target),
            (1, 0, 10.0)
        );
        assert_eq!(training.completion, None);
    }

    #[test]
    fn unit_grades_group_evaluated_projects_by_unit() {
        let mut projects = fixture();
        let mut d = projects[0].clone();
        d.id = "d".into();
        d.title = "项目d".into();
        d.call_year = 2021;
        d.score = Some(71.5);
        d.grade = Some(Grade::Fair);
        projects.push(d);
        let units = unit_grades(&projects);
        assert_eq!(units.len(), 2);
        let a = units.iter().find(|u| u.org_id == "org-a").unwrap();
        assert_eq!(
            a.projects.iter().map(|p| p.call_year).collect::<Vec<_>>(),
            vec![2021, 2022]
        );
        assert_eq!((a.grades.good, a.grades.fair), (1, 1));
        assert_eq!(a.average_score, Some(78.25));
        let sheets = unit_grade_sheets(&units);
        assert_eq!(sheets[0].rows.len(), 2);
        assert_eq!(sheets[1].rows.len(), 3);
    }

    #[test]
    fn sheets_one_per_breakdown_with_a_column_per_stage() {
        let l = layout();
        let r = build_report("2022年", &fixture(), &l);
        let sheets = report_sheets(&r, &l);
        let names: Vec<&str> = sheets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["总体", "按状态", "按地市", "按大类", "按部分", "指标汇总"]
        );
        assert_eq!(sheets[2].rows.len(), 2);
        assert_eq!(sheets[3].rows.len(), 2);
        for s in &sheets {
            assert!(
                s.rows.iter().all(|row| row.len() == s.columns.len()),
                "{}",
                s.name
            );
        }
        assert_eq!(sheets[1].rows.len(), 3);
        let bytes = crate::export::write_xlsx(&sheets).unwrap();
        assert!(bytes.starts_with(b"PK"));
    }
}
