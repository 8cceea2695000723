//! A demand: one row of the 需求征集表, either an opinion on (and offer to undertake) a
//! catalogue item, or a project the unit proposes in an added row (可加行).

use grantflow_domain::{Lang, Money};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::catalogue::{Catalogue, Category};
use crate::indicator::{Indicator, IndicatorError, check_indicators};
use crate::messages::{impl_error_via_user_facing, pick};

/// Longest project name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest direction, performance or comment text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// One row of a 需求征集表.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demand {
    /// Assigned by storage; `None` before the demand is stored.
    #[serde(default)]
    pub id: Option<String>,
    /// 填报单位: the unit that filled in the form.
    #[serde(default)]
    pub submitter: String,
    /// 大类
    pub category: Category,
    /// 重点政策或工作; empty in categories that have none.
    #[serde(default)]
    pub policy_area: String,
    pub origin: DemandOrigin,
    /// 项目名称, without the item number.
    pub project_name: String,
    /// 项目方向: what the project does and spends its money on.
    #[serde(default)]
    pub direction: String,
    /// 申报（工作）主体
    #[serde(default)]
    pub applicant: String,
    /// 经费预算; absent when the unit only comments on a catalogue item.
    #[serde(default)]
    pub budget: Option<Money>,
    /// 项目绩效 as written in the form.
    #[serde(default)]
    pub performance_text: String,
    /// 项目绩效 as structured indicators, when given.
    #[serde(default)]
    pub indicators: Vec<Indicator>,
    /// 意见建议
    #[serde(default)]
    pub comments: String,
    /// Where the row was read from, for messages and audit.
    #[serde(default)]
    pub source: Option<SourceRow>,
}

/// Whether a row answers a catalogue item or proposes something new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DemandOrigin {
    /// A row of the call's catalogue.
    CatalogueItem { item_id: String },
    /// An added row (可加行).
    AddedRow,
}

/// The spreadsheet row a demand came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRow {
    /// File name as uploaded, if known.
    #[serde(default)]
    pub file: String,
    pub sheet: String,
    /// 1-based, as Excel numbers rows.
    pub row: u32,
}

/// The fields of a demand, named as the form's column headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandField {
    Category,
    PolicyArea,
    ProjectName,
    Direction,
    Applicant,
    Budget,
    Performance,
    Comments,
}

impl DemandField {
    pub const ALL: [Self; 8] = [
        Self::Category,
        Self::PolicyArea,
        Self::ProjectName,
        Self::Direction,
        Self::Applicant,
        Self::Budget,
        Self::Performance,
        Self::Comments,
    ];

    /// The column header of the form (zh-CN) or an English name.
    pub fn header(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Category, Lang::ZhCn) => "大类",
            (Self::Category, Lang::En) => "category",
            (Self::PolicyArea, Lang::ZhCn) => "重点政策或工作",
            (Self::PolicyArea, Lang::En) => "policy area",
            (Self::ProjectName, Lang::ZhCn) => "项目名称",
            (Self::ProjectName, Lang::En) => "project name",
            (Self::Direction, Lang::ZhCn) => "项目方向",
            (Self::Direction, Lang::En) => "direction",
            (Self::Applicant, Lang::ZhCn) => "申报（工作）主体",
            (Self::Applicant, Lang::En) => "applicant",
            (Self::Budget, Lang::ZhCn) => "经费预算",
            (Self::Budget, Lang::En) => "budget",
            (Self::Performance, Lang::ZhCn) => "项目绩效",
            (Self::Performance, Lang::En) => "performance",
            (Self::Comments, Lang::ZhCn) => "意见建议",
            (Self::Comments, Lang::En) => "comments",
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq)]
pub enum DemandProblem {
    /// Required and empty. Added rows need name, direction, applicant, budget and
    /// performance; a catalogue row needs budget and performance together once either
    /// is given (the unit offers to undertake the item).
    Missing,
    TooLong {
        max_chars: usize,
        chars: usize,
    },
    BudgetNotPositive {
        budget: Money,
    },
    /// 项目绩效 must be quantifiable: a number in the text or a quantitative indicator.
    PerformanceNotQuantified,
    /// The policy area is not one of the category's in this call.
    UnknownPolicyArea {
        name: String,
    },
    UnknownCatalogueItem {
        item_id: String,
    },
    /// The referenced catalogue item belongs to another category or policy area.
    CatalogueItemElsewhere {
        item_id: String,
    },
    Indicator(IndicatorError),
}

/// A problem with one field of a demand.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandError {
    pub field: DemandField,
    pub problem: DemandProblem,
}

impl UserFacing for DemandError {
    fn code(&self) -> &'static str {
        match &self.problem {
            DemandProblem::Missing => "DEMAND_FIELD_MISSING",
            DemandProblem::TooLong { .. } => "DEMAND_FIELD_TOO_LONG",
            DemandProblem::BudgetNotPositive { .. } => "DEMAND_BUDGET_NOT_POSITIVE",
            DemandProblem::PerformanceNotQuantified => "DEMAND_PERFORMANCE_NOT_QUANTIFIED",
            DemandProblem::UnknownPolicyArea { .. } => "DEMAND_UNKNOWN_POLICY_AREA",
            DemandProblem::UnknownCatalogueItem { .. } => "DEMAND_UNKNOWN_CATALOGUE_ITEM",
            DemandProblem::CatalogueItemElsewhere { .. } => "DEMAND_CATALOGUE_ITEM_ELSEWHERE",
            DemandProblem::Indicator(e) => e.code(),
        }
    }

    fn message(&self, lang: Lang) -> String {
        let header = self.field.header(Lang::ZhCn);
        let en_field = self.field.header(Lang::En);
        match &self.problem {
            DemandProblem::Missing => pick(
                lang,
                format!("「{header}」不能为空"),
                format!("{en_field} is required"),
            ),
            DemandProblem::TooLong { max_chars, chars } => pick(
                lang,
                format!("「{header}」过长：{chars} 字，最多 {max_chars} 字"),
                format!("{en_field} is too long: {chars} characters, at most {max_chars}"),
            ),
            DemandProblem::BudgetNotPositive { budget } => pick(
                lang,
                format!("「{header}」须大于零（当前 {budget} 元）"),
                format!("the budget must be positive (is {budget} yuan)"),
            ),
            DemandProblem::PerformanceNotQuantified => pick(
                lang,
                format!("「{header}」须明确可量化的考核绩效指标（至少包含一个数值）"),
                "performance must state quantifiable indicators (at least one number)".to_string(),
            ),
            DemandProblem::UnknownPolicyArea { name } => pick(
                lang,
                format!("「{header}」：本次征集的该大类下没有「{name}」"),
                format!("policy area `{name}` is not in this category of the call"),
            ),
            DemandProblem::UnknownCatalogueItem { item_id } => pick(
                lang,
                format!("项目目录中没有编号为 {item_id} 的项目"),
                format!("the catalogue has no item {item_id}"),
            ),
            DemandProblem::CatalogueItemElsewhere { item_id } => pick(
                lang,
                format!("目录项目 {item_id} 不属于所填的大类或重点政策或工作"),
                format!("catalogue item {item_id} belongs to another category or policy area"),
            ),
            DemandProblem::Indicator(e) => e.message(lang),
        }
    }
}
impl_error_via_user_facing!(DemandError);

impl Demand {
    /// Whether the unit offers to undertake the project: it gave a budget or
    /// performance targets.
    pub fn undertakes(&self) -> bool {
        self.budget.is_some() || self.has_performance()
    }

    /// Feedback only: 意见建议 on a catalogue item, with no offer to undertake it (no
    /// budget, no 绩效). Such rows still travel to the province (需求征集: "对我局提出的拟立项
    /// 的项目名称、项目方向、申报主体提出意见").
    pub fn is_feedback_only(&self) -> bool {
        matches!(self.origin, DemandOrigin::CatalogueItem { .. }) && !self.undertakes()
    }

    pub fn has_performance(&self) -> bool {
        !self.performance_text.trim().is_empty() || !self.indicators.is_empty()
    }

    /// The performance as one text: the written 项目绩效 followed by each structured
    /// indicator as `name target unit`.
    pub fn performance_summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.performance_text.trim().is_empty() {
            parts.push(self.performance_text.trim().to_string());
        }
        for i in &self.indicators {
            parts.push(format!("{} {}{}", i.name, i.target, i.unit));
        }
        parts.join("\n")
    }
}

/// Checks a demand; with a catalogue, also that its policy area and catalogue item
/// exist in the call. Returns every problem, field by field.
pub fn validate_demand(
    demand: &Demand,
    catalogue: Option<&Catalogue>,
) -> Result<(), Vec<DemandError>> {
    let mut errors = Vec::new();
    let mut push = |field, problem| errors.push(DemandError { field, problem });
    let blank = |s: &str| s.trim().is_empty();

    if blank(&demand.project_name) {
        push(DemandField::ProjectName, DemandProblem::Missing);
    }
    let lengths = [
        (
            DemandField::ProjectName,
            &demand.project_name,
            MAX_NAME_CHARS,
        ),
        (DemandField::PolicyArea, &demand.policy_area, MAX_NAME_CHARS),
        (DemandField::Applicant, &demand.applicant, MAX_TEXT_CHARS),
        (DemandField::Direction, &demand.direction, MAX_TEXT_CHARS),
        (
            DemandField::Performance,
            &demand.performance_text,
            MAX_TEXT_CHARS,
        ),
        (DemandField::Comments, &demand.comments, MAX_TEXT_CHARS),
    ];
    for (field, text, max_chars) in lengths {
        let chars = text.chars().count();
        if chars > max_chars {
            push(field, DemandProblem::TooLong { max_chars, chars });
        }
    }

    let added = demand.origin == DemandOrigin::AddedRow;
    if added {
        if blank(&demand.direction) {
            push(DemandField::Direction, DemandProblem::Missing);
        }
        if blank(&demand.applicant) {
            push(DemandField::Applicant, DemandProblem::Missing);
        }
    }
    // An added row always proposes to do something; a catalogue row does once it
    // gives a budget or targets, and then needs both (如有承担该项目的意愿，请填写相应的
    // 经费预算和项目绩效).
    if added || demand.undertakes() {
        if demand.budget.is_none() {
            push(DemandField::Budget, DemandProblem::Missing);
        }
        if !demand.has_performance() {
            push(DemandField::Performance, DemandProblem::Missing);
        }
    }
    if let Some(budget) = demand.budget
        && budget.fen() <= 0
    {
        push(
            DemandField::Budget,
            DemandProblem::BudgetNotPositive { budget },
        );
    }
    if demand.has_performance() && !is_quantified(demand) {
        push(
            DemandField::Performance,
            DemandProblem::PerformanceNotQuantified,
        );
    }
    for e in check_indicators(&demand.indicators) {
        push(DemandField::Performance, DemandProblem::Indicator(e));
    }

    if let Some(catalogue) = catalogue {
        check_against_catalogue(demand, catalogue, &mut push);
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_against_catalogue(
    demand: &Demand,
    catalogue: &Catalogue,
    push: &mut impl FnMut(DemandField, DemandProblem),
) {
    let has_areas = catalogue
        .category(demand.category)
        .is_some_and(|c| !c.policy_areas.is_empty());
    let area = demand.policy_area.trim();
    // Categories without policy areas in this call (六, 七, 八 in 2022) take added rows
    // under any heading the unit chooses.
    if has_areas {
        if area.is_empty() {
            push(DemandField::PolicyArea, DemandProblem::Missing);
        } else if !catalogue.has_policy_area(demand.category, area) {
            push(
                DemandField::PolicyArea,
                DemandProblem::UnknownPolicyArea {
                    name: area.to_string(),
                },
            );
        }
    }
    if let DemandOrigin::CatalogueItem { item_id } = &demand.origin {
        match catalogue.item(item_id) {
            None => push(
                DemandField::ProjectName,
                DemandProblem::UnknownCatalogueItem {
                    item_id: item_id.clone(),
                },
            ),
            Some(item) => {
                let same_area = area.is_empty() || item.policy_area.trim() == area;
                if item.category != demand.category || !same_area {
                    push(
                        DemandField::ProjectName,
                        DemandProblem::CatalogueItemElsewhere {
                            item_id: item_id.clone(),
                        },
                    );
                }
            }
        }
    }
}

/// 可量化: the written performance contains a digit (ASCII or full-width), or a
/// structured indicator is quantitative.
fn is_quantified(demand: &Demand) -> bool {
    demand
        .performance_text
        .chars()
        .any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
        || demand.indicators.iter().any(Indicator::is_quantitative)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added_row() -> Demand {
        Demand {
            id: None,
            submitter: "广州市市场监督管理局".into(),
            category: Category::Protection,
            policy_area: "强化知识产权保护".into(),
            origin: DemandOrigin::AddedRow,
            project_name: "跨境电商知识产权保护指引".into(),
            direction: "编制跨境电商知识产权保护指引并开展培训".into(),
            applicant: "各市局".into(),
            budget: Some(Money::from_yuan(300_000).unwrap()),
            performance_text: "发布指引1份，培训企业200家".into(),
            indicators: vec![],
            comments: String::new(),
            source: None,
        }
    }

    fn catalogue() -> Catalogue {
        Catalogue::from_toml_str(include_str!("../../../workflows/calls/2022.toml")).unwrap()
    }

    #[test]
    fn a_complete_added_row_is_valid_against_the_2022_catalogue() {
        assert_eq!(validate_demand(&added_row(), Some(&catalogue())), Ok(()));
    }

    #[test]
    fn an_added_row_needs_budget_and_quantified_performance() {
        let mut d = added_row();
        d.budget = None;
        d.performance_text = "提升保护水平".into();
        d.applicant = " ".into();
        let errors = validate_demand(&d, None).unwrap_err();
        let found: Vec<(DemandField, &str)> = errors.iter().map(|e| (e.field, e.code())).collect();
        assert_eq!(
            found,
            [
                (DemandField::Applicant, "DEMAND_FIELD_MISSING"),
                (DemandField::Budget, "DEMAND_FIELD_MISSING"),
                (
                    DemandField::Performance,
                    "DEMAND_PERFORMANCE_NOT_QUANTIFIED"
                ),
            ]
        );
        assert_eq!(errors[1].message(Lang::ZhCn), "「经费预算」不能为空");
        assert_eq!(errors[1].message(Lang::En), "budget is required");
    }

    #[test]
    fn a_catalogue_row_may_only_comment_but_an_offer_needs_both_budget_and_targets() {
        let mut comment_only = added_row();
        comment_only.origin = DemandOrigin::CatalogueItem {
            item_id: "2022-3-1-17".into(),
        };
        comment_only.project_name = "电商领域知识产权保护".into();
        comment_only.budget = None;
        comment_only.performance_text.clear();
        comment_only.comments = "建议扩大到直播电商".into();
        assert_eq!(validate_demand(&comment_only, Some(&catalogue())), Ok(()));

        let mut offer = comment_only.clone();
        offer.budget = Some(Money::from_yuan(0).unwrap());
        let errors = validate_demand(&offer, Some(&catalogue())).unwrap_err();
        let codes: Vec<&str> = errors.iter().map(UserFacing::code).collect();
        assert_eq!(
            codes,
            ["DEMAND_FIELD_MISSING", "DEMAND_BUDGET_NOT_POSITIVE"]
        );
        assert_eq!(errors[0].field, DemandField::Performance);
    }

    #[test]
    fn catalogue_references_and_policy_areas_are_checked() {
        let mut d = added_row();
        d.policy_area = "不存在的工作".into();
        d.origin = DemandOrigin::CatalogueItem {
            item_id: "2022-4-1-1".into(),
        };
        let errors = validate_demand(&d, Some(&catalogue())).unwrap_err();
        let codes: Vec<&str> = errors.iter().map(UserFacing::code).collect();
        assert_eq!(
            codes,
            [
                "DEMAND_UNKNOWN_POLICY_AREA",
                "DEMAND_CATALOGUE_ITEM_ELSEWHERE"
            ]
        );
        // Categories without policy areas in 2022 accept any heading.
        let mut research = added_row();
        research.category = Category::StrategyAndResearch;
        research.policy_area = "知识产权强省建设研究".into();
        assert_eq!(validate_demand(&research, Some(&catalogue())), Ok(()));
    }
}
