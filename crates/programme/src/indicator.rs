//! Performance indicators (绩效指标): set at application, frozen at approval (立项), changed
//! afterwards only through an approved change request (变更), with actual values recorded
//! at the mid-term check (中期检查) and at acceptance (验收).
//!
//! Values are `f64`: they count patents, days, points and percentages, not money
//! (budgets are [`grantflow_domain::Money`]); a cost indicator in 万元 is a measured quantity
//! compared with its target, never summed into a ledger.
//!
//! Kept as one file: it passes 800 lines only with its unit tests (the `tests` module at
//! the end).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use grantflow_domain::Lang;
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::messages::{impl_error_via_user_facing, pick};

/// The category of an indicator, as in the provincial performance-target tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorCategory {
    /// 产出指标 · 数量指标
    OutputQuantity,
    /// 产出指标 · 质量指标
    OutputQuality,
    /// 产出指标 · 时效指标
    OutputTimeliness,
    /// 产出指标 · 成本指标
    OutputCost,
    /// 效益指标 · 经济效益
    EffectEconomic,
    /// 效益指标 · 社会效益
    EffectSocial,
    /// 效益指标 · 生态效益
    EffectEcological,
    /// 效益指标 · 可持续影响
    EffectSustainability,
    /// 满意度指标
    Satisfaction,
}

/// The three groups the evaluation weighs (besides budget execution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorGroup {
    /// 产出指标
    Output,
    /// 效益指标
    Effect,
    /// 满意度指标
    Satisfaction,
}

impl IndicatorGroup {
    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Output, Lang::ZhCn) => "产出指标",
            (Self::Output, Lang::En) => "output",
            (Self::Effect, Lang::ZhCn) => "效益指标",
            (Self::Effect, Lang::En) => "effect",
            (Self::Satisfaction, Lang::ZhCn) => "满意度指标",
            (Self::Satisfaction, Lang::En) => "satisfaction",
        }
    }
}

impl IndicatorCategory {
    pub const ALL: [Self; 9] = [
        Self::OutputQuantity,
        Self::OutputQuality,
        Self::OutputTimeliness,
        Self::OutputCost,
        Self::EffectEconomic,
        Self::EffectSocial,
        Self::EffectEcological,
        Self::EffectSustainability,
        Self::Satisfaction,
    ];

    pub fn group(self) -> IndicatorGroup {
        match self {
            Self::OutputQuantity
            | Self::OutputQuality
            | Self::OutputTimeliness
            | Self::OutputCost => IndicatorGroup::Output,
            Self::EffectEconomic
            | Self::EffectSocial
            | Self::EffectEcological
            | Self::EffectSustainability => IndicatorGroup::Effect,
            Self::Satisfaction => IndicatorGroup::Satisfaction,
        }
    }

    /// `产出指标-数量指标` or `output: quantity`.
    pub fn name(self, lang: Lang) -> String {
        let (zh, en) = match self {
            Self::OutputQuantity => ("数量指标", "quantity"),
            Self::OutputQuality => ("质量指标", "quality"),
            Self::OutputTimeliness => ("时效指标", "timeliness"),
            Self::OutputCost => ("成本指标", "cost"),
            Self::EffectEconomic => ("经济效益指标", "economic"),
            Self::EffectSocial => ("社会效益指标", "social"),
            Self::EffectEcological => ("生态效益指标", "ecological"),
            Self::EffectSustainability => ("可持续影响指标", "sustainability"),
            Self::Satisfaction => {
                return self.group().name(lang).to_string();
            }
        };
        match lang {
            Lang::ZhCn => format!("{}-{zh}", self.group().name(lang)),
            Lang::En => format!("{}: {en}", self.group().name(lang)),
        }
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// 正向指标: more is better (patents filed, cases handled).
    HigherIsBetter,
    /// 反向指标: less is better (examination cycle in months, cost).
    LowerIsBetter,
    /// 定性指标: judged by the evaluator (e.g. "形成可复制、可推广的经验").
    Qualitative,
}

/// 预期性 (expected) or 约束性 (binding), as the provincial indicator table marks each
/// indicator. Shown and exported with the targets; the score weighs both alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// 预期性
    #[default]
    Expected,
    /// 约束性
    Binding,
}

impl Attribute {
    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Expected, Lang::ZhCn) => "预期性",
            (Self::Expected, Lang::En) => "expected",
            (Self::Binding, Lang::ZhCn) => "约束性",
            (Self::Binding, Lang::En) => "binding",
        }
    }
}

/// A target or actual value: a number for quantitative indicators, a text for
/// qualitative ones. Serialised as a bare JSON number or string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IndicatorValue {
    Number(f64),
    Text(String),
}

impl IndicatorValue {
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(_) => None,
        }
    }
}

impl std::fmt::Display for IndicatorValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// One performance indicator, in the shape of the provincial indicator table (seed 002:
/// 类别, 指标, 单位, 基期值 and year, 目标值 and year, 属性, cumulative values in brackets).
/// The fields added with that shape (`baseline_year`, `target_year`, `attribute`,
/// `cumulative`) default when absent, so indicators stored before them still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    /// Unique within its set; keeps its identity across change requests.
    pub id: String,
    pub category: IndicatorCategory,
    pub name: String,
    /// 件, 家, 人次, 月, %, 分, 万元 …; empty for qualitative indicators.
    #[serde(default)]
    pub unit: String,
    /// The value before the project (基期值), when known.
    #[serde(default)]
    pub baseline: Option<f64>,
    pub target: IndicatorValue,
    pub direction: Direction,
    /// Relative weight within its group; the evaluation normalises weights per group,
    /// so only ratios matter.
    pub weight: f64,
    /// The year of the baseline (基期, e.g. 2020).
    #[serde(default)]
    pub baseline_year: Option<i32>,
    /// The year the target is due (e.g. 2025; the budget year for a one-year project).
    #[serde(default)]
    pub target_year: Option<i32>,
    /// 预期性 or 约束性.
    #[serde(default)]
    pub attribute: Attribute,
    /// The target (and the actual) is an increase over the period, not a level: the
    /// table's values in brackets, e.g. 知识产权质押融资登记金额 (2500) 亿元. The
    /// evaluation then measures progress as actual ÷ target, without the baseline.
    #[serde(default)]
    pub cumulative: bool,
}

impl Indicator {
    /// A quantitative output indicator with every optional column empty, for building
    /// indicators with `..Indicator::example()`.
    pub fn example() -> Self {
        Self {
            id: String::new(),
            category: IndicatorCategory::OutputQuantity,
            name: String::new(),
            unit: String::new(),
            baseline: None,
            target: IndicatorValue::Number(1.0),
            direction: Direction::HigherIsBetter,
            weight: 1.0,
            baseline_year: None,
            target_year: None,
            attribute: Attribute::Expected,
            cumulative: false,
        }
    }

    pub fn group(&self) -> IndicatorGroup {
        self.category.group()
    }

    pub fn is_quantitative(&self) -> bool {
        self.direction != Direction::Qualitative
    }

    /// How far `actual` is better than the target, relative to the target: 0.5 means
    /// 50 % beyond. Zero when the actual is at or short of the target, for qualitative
    /// indicators, and when the target is 0 (no relative measure exists).
    pub fn beyond_target(&self, actual: f64) -> f64 {
        let Some(target) = self.target.as_number() else {
            return 0.0;
        };
        if target == 0.0 {
            return 0.0;
        }
        let better_by = match self.direction {
            Direction::HigherIsBetter => actual - target,
            Direction::LowerIsBetter => target - actual,
            Direction::Qualitative => return 0.0,
        };
        (better_by / target.abs()).max(0.0)
    }

    /// Every problem with this indicator on its own.
    pub fn problems(&self) -> Vec<IndicatorError> {
        let mut out = Vec::new();
        let id = self.id.clone();
        if self.id.trim().is_empty() {
            out.push(IndicatorError::IdMissing {
                name: self.name.clone(),
            });
        }
        if self.name.trim().is_empty() {
            out.push(IndicatorError::NameMissing { id: id.clone() });
        }
        if !self.weight.is_finite() || self.weight <= 0.0 {
            out.push(IndicatorError::WeightInvalid {
                id: id.clone(),
                weight: self.weight,
            });
        }
        match (&self.target, self.direction) {
            (IndicatorValue::Text(text), Direction::Qualitative) => {
                if text.trim().is_empty() {
                    out.push(IndicatorError::TargetKind { id: id.clone() });
                }
                if self.baseline.is_some() {
                    out.push(IndicatorError::BaselineOnQualitative { id });
                }
            }
            (
                IndicatorValue::Number(target),
                direction @ (Direction::HigherIsBetter | Direction::LowerIsBetter),
            ) => {
                let target = *target;
                if !target.is_finite() || self.baseline.is_some_and(|b| !b.is_finite()) {
                    out.push(IndicatorError::NotFinite { id });
                } else if let Some(baseline) = self.baseline.filter(|_| !self.cumulative) {
                    let wrong_way = match direction {
                        Direction::HigherIsBetter => baseline > target,
                        _ => baseline < target,
                    };
                    if wrong_way {
                        out.push(IndicatorError::BaselineBeyondTarget {
                            id,
                            baseline,
                            target,
                        });
                    }
                } else if direction == Direction::HigherIsBetter && target <= 0.0 {
                    // Without a baseline progress is actual / target, which needs a
                    // positive target.
                    out.push(IndicatorError::TargetNotPositive { id, target });
                } else if target < 0.0 {
                    out.push(IndicatorError::TargetNotPositive { id, target });
                }
            }
            _ => out.push(IndicatorError::TargetKind { id }),
        }
        out
    }
}

/// Where a set of indicators stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IndicatorSetStatus {
    /// Set at application; the applicant may still edit.
    Draft,
    /// Targets accepted by the programme manager (e.g. in the task book); editing sends
    /// the set back to draft.
    TargetsApproved,
    /// Frozen at approval (立项); changes need an approved change request.
    Frozen { on: NaiveDate },
}

/// When an actual value was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checkpoint {
    /// 中期检查
    MidTerm,
    /// 验收
    Acceptance,
}

/// An actual value reported for one indicator at one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualRecord {
    pub indicator_id: String,
    pub checkpoint: Checkpoint,
    pub value: IndicatorValue,
    /// The unit's written explanation, required by the evaluation when the actual is
    /// far beyond the target.
    #[serde(default)]
    pub explanation: Option<String>,
    pub recorded_on: NaiveDate,
}

/// A change request as this crate needs to see it; the request itself lives elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequestRef {
    pub id: String,
    pub status: ChangeRequestStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeRequestStatus {
    Pending,
    Approved,
    Rejected,
}

/// The difference a change request made to a frozen set: `before` holds the old
/// version of every changed or removed indicator, `after` the new version of every
/// changed or added one (matched by id). Unchanged indicators appear in neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorChange {
    pub change_request_id: String,
    pub before: Vec<Indicator>,
    pub after: Vec<Indicator>,
}

impl IndicatorChange {
    /// Ids of indicators the change added, removed and modified.
    pub fn summary(&self) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
        let before: BTreeSet<&str> = self.before.iter().map(|i| i.id.as_str()).collect();
        let after: BTreeSet<&str> = self.after.iter().map(|i| i.id.as_str()).collect();
        (
            after.difference(&before).copied().collect(),
            before.difference(&after).copied().collect(),
            before.intersection(&after).copied().collect(),
        )
    }
}

/// A project's indicators with their history and actuals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSet {
    pub indicators: Vec<Indicator>,
    pub status: IndicatorSetStatus,
    #[serde(default)]
    pub changes: Vec<IndicatorChange>,
    #[serde(default)]
    pub actuals: Vec<ActualRecord>,
}

/// Why an indicator or an operation on a set is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum IndicatorError {
    IdMissing {
        name: String,
    },
    NameMissing {
        id: String,
    },
    DuplicateId {
        id: String,
    },
    WeightInvalid {
        id: String,
        weight: f64,
    },
    /// A quantitative indicator needs a numeric target, a qualitative one a text.
    TargetKind {
        id: String,
    },
    BaselineOnQualitative {
        id: String,
    },
    NotFinite {
        id: String,
    },
    BaselineBeyondTarget {
        id: String,
        baseline: f64,
        target: f64,
    },
    TargetNotPositive {
        id: String,
        target: f64,
    },
    Empty,
    /// The set is frozen: only an approved change request may change it.
    Frozen,
    /// Actuals and change requests apply to frozen (approved) sets only.
    NotFrozen,
    /// The transition is not possible from the current status.
    WrongStatus {
        status: IndicatorSetStatus,
    },
    ChangeNotApproved {
        change_request_id: String,
        status: ChangeRequestStatus,
    },
    ChangeIsEmpty {
        change_request_id: String,
    },
    UnknownIndicator {
        id: String,
    },
    /// A number reported for a qualitative indicator or a text for a quantitative one.
    ActualKind {
        id: String,
    },
}

impl UserFacing for IndicatorError {
    fn code(&self) -> &'static str {
        match self {
            Self::IdMissing { .. } => "INDICATOR_ID_MISSING",
            Self::NameMissing { .. } => "INDICATOR_NAME_MISSING",
            Self::DuplicateId { .. } => "INDICATOR_DUPLICATE_ID",
            Self::WeightInvalid { .. } => "INDICATOR_WEIGHT_INVALID",
            Self::TargetKind { .. } => "INDICATOR_TARGET_KIND",
            Self::BaselineOnQualitative { .. } => "INDICATOR_BASELINE_ON_QUALITATIVE",
            Self::NotFinite { .. } => "INDICATOR_VALUE_NOT_FINITE",
            Self::BaselineBeyondTarget { .. } => "INDICATOR_BASELINE_BEYOND_TARGET",
            Self::TargetNotPositive { .. } => "INDICATOR_TARGET_NOT_POSITIVE",
            Self::Empty => "INDICATOR_SET_EMPTY",
            Self::Frozen => "INDICATOR_SET_FROZEN",
            Self::NotFrozen => "INDICATOR_SET_NOT_FROZEN",
            Self::WrongStatus { .. } => "INDICATOR_SET_WRONG_STATUS",
            Self::ChangeNotApproved { .. } => "INDICATOR_CHANGE_NOT_APPROVED",
            Self::ChangeIsEmpty { .. } => "INDICATOR_CHANGE_EMPTY",
            Self::UnknownIndicator { .. } => "INDICATOR_UNKNOWN",
            Self::ActualKind { .. } => "INDICATOR_ACTUAL_KIND",
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::IdMissing { name } => pick(
                lang,
                format!("绩效指标「{name}」缺少编号"),
                format!("indicator `{name}` has no id"),
            ),
            Self::NameMissing { id } => pick(
                lang,
                format!("绩效指标 {id} 缺少名称"),
                format!("indicator {id} has no name"),
            ),
            Self::DuplicateId { id } => pick(
                lang,
                format!("绩效指标编号 {id} 重复"),
                format!("indicator id {id} is used twice"),
            ),
            Self::WeightInvalid { id, weight } => pick(
                lang,
                format!("绩效指标 {id} 的权重 {weight} 无效，应为正数"),
                format!("indicator {id}: weight {weight} is not a positive number"),
            ),
            Self::TargetKind { id } => pick(
                lang,
                format!("绩效指标 {id}：定量指标的目标值须为数值，定性指标的目标须为文字描述"),
                format!(
                    "indicator {id}: a quantitative indicator needs a numeric target, a qualitative one a text"
                ),
            ),
            Self::BaselineOnQualitative { id } => pick(
                lang,
                format!("绩效指标 {id} 为定性指标，不能设置基期值"),
                format!("indicator {id} is qualitative and cannot have a numeric baseline"),
            ),
            Self::NotFinite { id } => pick(
                lang,
                format!("绩效指标 {id} 的数值无效"),
                format!("indicator {id}: values must be finite numbers"),
            ),
            Self::BaselineBeyondTarget {
                id,
                baseline,
                target,
            } => pick(
                lang,
                format!("绩效指标 {id} 的基期值 {baseline} 已优于目标值 {target}"),
                format!("indicator {id}: baseline {baseline} is already better than target {target}"),
            ),
            Self::TargetNotPositive { id, target } => pick(
                lang,
                format!("绩效指标 {id} 未设基期值时目标值须大于零（当前 {target}）"),
                format!("indicator {id}: without a baseline the target must be positive (is {target})"),
            ),
            Self::Empty => pick(
                lang,
                "尚未设置绩效指标".to_string(),
                "no performance indicators are set".to_string(),
            ),
            Self::Frozen => pick(
                lang,
                "绩效指标已在立项时锁定，只能通过已批准的变更申请修改".to_string(),
                "the indicators were frozen at approval and change only through an approved change request"
                    .to_string(),
            ),
            Self::NotFrozen => pick(
                lang,
                "项目尚未立项，绩效指标未锁定".to_string(),
                "the project is not approved yet: its indicators are not frozen".to_string(),
            ),
            Self::WrongStatus { status } => pick(
                lang,
                format!("绩效指标当前状态（{status:?}）不允许此操作"),
                format!("not possible while the indicators are {status:?}"),
            ),
            Self::ChangeNotApproved {
                change_request_id,
                status,
            } => pick(
                lang,
                format!("变更申请 {change_request_id} 尚未批准（{status:?}）"),
                format!("change request {change_request_id} is not approved ({status:?})"),
            ),
            Self::ChangeIsEmpty { change_request_id } => pick(
                lang,
                format!("变更申请 {change_request_id} 未改变任何绩效指标"),
                format!("change request {change_request_id} changes no indicator"),
            ),
            Self::UnknownIndicator { id } => pick(
                lang,
                format!("不存在编号为 {id} 的绩效指标"),
                format!("there is no indicator {id}"),
            ),
            Self::ActualKind { id } => pick(
                lang,
                format!("绩效指标 {id}：定量指标须填报数值，定性指标须填报文字"),
                format!(
                    "indicator {id}: report a number for a quantitative indicator and a text for a qualitative one"
                ),
            ),
        }
    }
}
impl_error_via_user_facing!(IndicatorError);

/// Every problem in a list of indicators: each indicator's own plus duplicate ids.
pub fn check_indicators(indicators: &[Indicator]) -> Vec<IndicatorError> {
    let mut out: Vec<IndicatorError> = indicators.iter().flat_map(Indicator::problems).collect();
    let mut seen = BTreeSet::new();
    for i in indicators {
        if !i.id.trim().is_empty() && !seen.insert(i.id.as_str()) {
            out.push(IndicatorError::DuplicateId { id: i.id.clone() });
        }
    }
    out
}

impl IndicatorSet {
    /// A new draft set, as submitted with an application.
    pub fn draft(indicators: Vec<Indicator>) -> Result<Self, Vec<IndicatorError>> {
        let problems = check_indicators(&indicators);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            indicators,
            status: IndicatorSetStatus::Draft,
            changes: Vec::new(),
            actuals: Vec::new(),
        })
    }

    pub fn is_frozen(&self) -> bool {
        matches!(self.status, IndicatorSetStatus::Frozen { .. })
    }

    pub fn get(&self, id: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.id == id)
    }

    pub fn has_group(&self, group: IndicatorGroup) -> bool {
        self.indicators.iter().any(|i| i.group() == group)
    }

    /// Replaces the indicators before approval. Refused once frozen; an edit after the
    /// targets were approved sends the set back to draft, so they must be approved again.
    pub fn edit(&mut self, indicators: Vec<Indicator>) -> Result<(), Vec<IndicatorError>> {
        if self.is_frozen() {
            return Err(vec![IndicatorError::Frozen]);
        }
        let problems = check_indicators(&indicators);
        if !problems.is_empty() {
            return Err(problems);
        }
        self.indicators = indicators;
        self.status = IndicatorSetStatus::Draft;
        Ok(())
    }

    /// The programme manager accepts the targets (a precondition of approval).
    pub fn approve_targets(&mut self) -> Result<(), IndicatorError> {
        if self.status != IndicatorSetStatus::Draft {
            return Err(IndicatorError::WrongStatus {
                status: self.status,
            });
        }
        if self.indicators.is_empty() {
            return Err(IndicatorError::Empty);
        }
        self.status = IndicatorSetStatus::TargetsApproved;
        Ok(())
    }

    /// Freezes the set at approval (立项). Only approved targets can be frozen.
    pub fn freeze(&mut self, on: NaiveDate) -> Result<(), IndicatorError> {
        if self.status != IndicatorSetStatus::TargetsApproved {
            return Err(IndicatorError::WrongStatus {
                status: self.status,
            });
        }
        self.status = IndicatorSetStatus::Frozen { on };
        Ok(())
    }

    /// Replaces a frozen set with `after` under an approved change request, recording
    /// the difference. Actuals already recorded stay (they are history).
    pub fn apply_change(
        &mut self,
        request: &ChangeRequestRef,
        after: Vec<Indicator>,
    ) -> Result<&IndicatorChange, Vec<IndicatorError>> {
        if !self.is_frozen() {
            return Err(vec![IndicatorError::NotFrozen]);
        }
        if request.status != ChangeRequestStatus::Approved {
            return Err(vec![IndicatorError::ChangeNotApproved {
                change_request_id: request.id.clone(),
                status: request.status,
            }]);
        }
        let mut problems = check_indicators(&after);
        if after.is_empty() {
            problems.push(IndicatorError::Empty);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let before: Vec<Indicator> = self
            .indicators
            .iter()
            .filter(|old| after.iter().find(|new| new.id == old.id) != Some(old))
            .cloned()
            .collect();
        let changed_after: Vec<Indicator> = after
            .iter()
            .filter(|new| self.get(&new.id) != Some(new))
            .cloned()
            .collect();
        if before.is_empty() && changed_after.is_empty() {
            return Err(vec![IndicatorError::ChangeIsEmpty {
                change_request_id: request.id.clone(),
            }]);
        }
        self.indicators = after;
        self.changes.push(IndicatorChange {
            change_request_id: request.id.clone(),
            before,
            after: changed_after,
        });
        Ok(self.changes.last().expect("just pushed"))
    }

    /// Records (or replaces) the actual value of one indicator at one checkpoint. Only
    /// for frozen sets: actuals are measured against the targets fixed at approval.
    pub fn record_actual(&mut self, record: ActualRecord) -> Result<(), IndicatorError> {
        if !self.is_frozen() {
            return Err(IndicatorError::NotFrozen);
        }
        let indicator =
            self.get(&record.indicator_id)
                .ok_or_else(|| IndicatorError::UnknownIndicator {
                    id: record.indicator_id.clone(),
                })?;
        let kind_ok = match (&record.value, indicator.is_quantitative()) {
            (IndicatorValue::Number(n), true) => n.is_finite(),
            (IndicatorValue::Text(t), false) => !t.trim().is_empty(),
            _ => false,
        };
        if !kind_ok {
            return Err(IndicatorError::ActualKind {
                id: record.indicator_id.clone(),
            });
        }
        self.actuals.retain(|a| {
            !(a.indicator_id == record.indicator_id && a.checkpoint == record.checkpoint)
        });
        self.actuals.push(record);
        Ok(())
    }

    pub fn actual(&self, indicator_id: &str, checkpoint: Checkpoint) -> Option<&ActualRecord> {
        self.actuals
            .iter()
            .find(|a| a.indicator_id == indicator_id && a.checkpoint == checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patents(target: f64) -> Indicator {
        Indicator {
            id: "patents".into(),
            category: IndicatorCategory::OutputQuantity,
            name: "高价值发明专利申请量".into(),
            unit: "件".into(),
            baseline: None,
            target: IndicatorValue::Number(target),
            direction: Direction::HigherIsBetter,
            weight: 1.0,
            ..Indicator::example()
        }
    }

    fn satisfaction() -> Indicator {
        Indicator {
            id: "satisfaction".into(),
            category: IndicatorCategory::Satisfaction,
            name: "服务对象满意度".into(),
            unit: "%".into(),
            baseline: None,
            target: IndicatorValue::Number(90.0),
            direction: Direction::HigherIsBetter,
            weight: 1.0,
            ..Indicator::example()
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2022, 3, d).unwrap()
    }

    fn frozen_set() -> IndicatorSet {
        let mut set = IndicatorSet::draft(vec![patents(100.0), satisfaction()]).unwrap();
        set.approve_targets().unwrap();
        set.freeze(day(1)).unwrap();
        set
    }

    #[test]
    fn invalid_indicators_are_refused_with_codes() {
        let mut bad = patents(100.0);
        bad.weight = 0.0;
        bad.baseline = Some(120.0);
        let mut qualitative_with_number = patents(1.0);
        qualitative_with_number.id = "q".into();
        qualitative_with_number.direction = Direction::Qualitative;
        let errors = IndicatorSet::draft(vec![
            bad,
            qualitative_with_number,
            satisfaction(),
            satisfaction(),
        ])
        .unwrap_err();
        let codes: Vec<&str> = errors.iter().map(UserFacing::code).collect();
        assert_eq!(
            codes,
            [
                "INDICATOR_WEIGHT_INVALID",
                "INDICATOR_BASELINE_BEYOND_TARGET",
                "INDICATOR_TARGET_KIND",
                "INDICATOR_DUPLICATE_ID"
            ]
        );
        assert!(
            errors[1]
                .message(Lang::ZhCn)
                .contains("基期值 120 已优于目标值 100")
        );
    }

    #[test]
    fn a_frozen_set_changes_only_through_an_approved_change_request() {
        let mut set = frozen_set();
        assert_eq!(
            set.edit(vec![patents(50.0)]),
            Err(vec![IndicatorError::Frozen])
        );

        let pending = ChangeRequestRef {
            id: "CR-7".into(),
            status: ChangeRequestStatus::Pending,
        };
        let err = set.apply_change(&pending, vec![patents(80.0)]).unwrap_err();
        assert_eq!(err[0].code(), "INDICATOR_CHANGE_NOT_APPROVED");
        assert_eq!(
            set.get("patents").unwrap().target,
            IndicatorValue::Number(100.0)
        );

        let approved = ChangeRequestRef {
            id: "CR-7".into(),
            status: ChangeRequestStatus::Approved,
        };
        // Lower the patent target and drop the satisfaction indicator.
        let change = set
            .apply_change(&approved, vec![patents(80.0)])
            .unwrap()
            .clone();
        assert_eq!(change.change_request_id, "CR-7");
        assert_eq!(change.before, vec![patents(100.0), satisfaction()]);
        assert_eq!(change.after, vec![patents(80.0)]);
        assert_eq!(
            change.summary(),
            (vec![], vec!["satisfaction"], vec!["patents"])
        );
        assert_eq!(set.indicators, vec![patents(80.0)]);
        assert!(set.is_frozen(), "a change keeps the set frozen");

        let same = set
            .apply_change(&approved, vec![patents(80.0)])
            .unwrap_err();
        assert_eq!(same[0].code(), "INDICATOR_CHANGE_EMPTY");
    }

    #[test]
    fn targets_must_be_approved_before_freezing_and_editing_reopens_them() {
        let mut set = IndicatorSet::draft(vec![patents(100.0)]).unwrap();
        assert_eq!(
            set.freeze(day(1)).unwrap_err().code(),
            "INDICATOR_SET_WRONG_STATUS"
        );
        set.approve_targets().unwrap();
        set.edit(vec![patents(120.0)]).unwrap();
        assert_eq!(set.status, IndicatorSetStatus::Draft);
    }

    #[test]
    fn actuals_are_recorded_per_checkpoint_after_approval() {
        let mut draft = IndicatorSet::draft(vec![patents(100.0)]).unwrap();
        let record = |value: IndicatorValue, checkpoint| ActualRecord {
            indicator_id: "patents".into(),
            checkpoint,
            value,
            explanation: None,
            recorded_on: day(20),
        };
        assert_eq!(
            draft.record_actual(record(IndicatorValue::Number(40.0), Checkpoint::MidTerm)),
            Err(IndicatorError::NotFrozen)
        );
        let mut set = frozen_set();
        set.record_actual(record(IndicatorValue::Number(40.0), Checkpoint::MidTerm))
            .unwrap();
        set.record_actual(record(IndicatorValue::Number(45.0), Checkpoint::MidTerm))
            .unwrap();
        set.record_actual(record(
            IndicatorValue::Number(104.0),
            Checkpoint::Acceptance,
        ))
        .unwrap();
        assert_eq!(
            set.actual("patents", Checkpoint::MidTerm).unwrap().value,
            IndicatorValue::Number(45.0)
        );
        assert_eq!(set.actuals.len(), 2);
        assert_eq!(
            set.record_actual(record(
                IndicatorValue::Text("很多".into()),
                Checkpoint::Acceptance
            ))
            .unwrap_err()
            .code(),
            "INDICATOR_ACTUAL_KIND"
        );
    }

    #[test]
    fn beyond_target_is_relative_to_the_target_in_the_better_direction() {
        let higher = patents(100.0);
        assert!((higher.beyond_target(131.0) - 0.31).abs() < 1e-12);
        assert_eq!(higher.beyond_target(90.0), 0.0);
        let mut lower = patents(4.0);
        lower.direction = Direction::LowerIsBetter;
        assert!((lower.beyond_target(2.0) - 0.5).abs() < 1e-12);
        assert_eq!(lower.beyond_target(5.0), 0.0);
    }

    #[test]
    fn values_serialise_as_bare_numbers_or_strings() {
        let json = serde_json::to_value(patents(100.0)).unwrap();
        assert_eq!(json["target"], serde_json::json!(100.0));
        assert_eq!(json["category"], "output_quantity");
        assert_eq!(json["direction"], "higher_is_better");
        let back: Indicator = serde_json::from_value(json).unwrap();
        assert_eq!(back, patents(100.0));
        assert_eq!(
            IndicatorCategory::EffectSocial.name(Lang::ZhCn),
            "效益指标-社会效益指标"
        );
    }
}
