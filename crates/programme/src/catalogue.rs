//! A call's catalogue: the eight categories (大类), their policy areas (重点政策或工作) and the
//! proposed projects (catalogue items), each in one of the four parts of the 2024 call.
//!
//! Catalogues are data, one TOML file per call under `workflows/calls/` (see
//! `workflows/calls/2022.toml` for the format), read with [`Catalogue::from_toml_str`].

use std::collections::BTreeSet;

use chrono::NaiveDate;
use grantflow_domain::Lang;
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::messages::{impl_error_via_user_facing, pick};

/// The eight categories (大类) every call is organised in, in the order the form lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 一、知识产权“放管服”改革和区域布局
    ReformAndLayout,
    /// 二、知识产权高质量创造和创新主体能力提升
    CreationAndCapability,
    /// 三、强化知识产权保护
    Protection,
    /// 四、知识产权运用
    Utilisation,
    /// 五、知识产权公共服务和代理行业监管
    PublicServiceAndAgencySupervision,
    /// 六、知识产权战略规划、软课题研究
    StrategyAndResearch,
    /// 七、知识产权开放合作
    OpenCooperation,
    /// 八、知识产权文化传播
    CultureAndCommunication,
}

impl Category {
    pub const ALL: [Self; 8] = [
        Self::ReformAndLayout,
        Self::CreationAndCapability,
        Self::Protection,
        Self::Utilisation,
        Self::PublicServiceAndAgencySupervision,
        Self::StrategyAndResearch,
        Self::OpenCooperation,
        Self::CultureAndCommunication,
    ];

    /// 1 to 8, as numbered on the form.
    pub fn number(self) -> u8 {
        match self {
            Self::ReformAndLayout => 1,
            Self::CreationAndCapability => 2,
            Self::Protection => 3,
            Self::Utilisation => 4,
            Self::PublicServiceAndAgencySupervision => 5,
            Self::StrategyAndResearch => 6,
            Self::OpenCooperation => 7,
            Self::CultureAndCommunication => 8,
        }
    }

    pub fn from_number(number: u8) -> Option<Self> {
        Self::ALL.get(usize::from(number).checked_sub(1)?).copied()
    }

    /// The Chinese numeral the form prefixes the category with: 一 … 八.
    pub fn numeral(self) -> char {
        ['一', '二', '三', '四', '五', '六', '七', '八'][usize::from(self.number() - 1)]
    }

    /// The category's name as the 2022 form writes it (without the numeral), or in English.
    pub fn name(self, lang: Lang) -> &'static str {
        let (zh, en) = match self {
            Self::ReformAndLayout => (
                "知识产权“放管服”改革和区域布局",
                "IP administrative reform (放管服) and regional layout",
            ),
            Self::CreationAndCapability => (
                "知识产权高质量创造和创新主体能力提升",
                "high-quality IP creation and innovators' capability",
            ),
            Self::Protection => ("强化知识产权保护", "stronger IP protection"),
            Self::Utilisation => ("知识产权运用", "IP utilisation"),
            Self::PublicServiceAndAgencySupervision => (
                "知识产权公共服务和代理行业监管",
                "IP public services and supervision of IP agencies",
            ),
            Self::StrategyAndResearch => (
                "知识产权战略规划、软课题研究",
                "IP strategy, planning and policy research",
            ),
            Self::OpenCooperation => ("知识产权开放合作", "open IP cooperation"),
            Self::CultureAndCommunication => ("知识产权文化传播", "IP culture and outreach"),
        };
        match lang {
            Lang::ZhCn => zh,
            Lang::En => en,
        }
    }

    /// The label as printed in a 大类 cell: `一、知识产权“放管服”改革和区域布局`.
    pub fn label(self) -> String {
        format!("{}、{}", self.numeral(), self.name(Lang::ZhCn))
    }

    /// Reads a 大类 cell as people fill it in: with or without the numeral (`三、`, `3.`),
    /// with the full name or a distinctive part of it (`放管服`, `文化传播`). A leading
    /// numeral decides; otherwise the text must point to exactly one category.
    pub fn from_label(text: &str) -> Option<Self> {
        let cleaned = normalize_label(text);
        let mut chars = cleaned.chars();
        let first = chars.next()?;
        let rest: String = chars.clone().collect();
        let numbered = |c: char| -> Option<u8> {
            match c {
                '一' => Some(1),
                '二' => Some(2),
                '三' => Some(3),
                '四' => Some(4),
                '五' => Some(5),
                '六' => Some(6),
                '七' => Some(7),
                '八' => Some(8),
                '1'..='8' => c.to_digit(10).and_then(|d| u8::try_from(d).ok()),
                _ => None,
            }
        };
        let separator = rest.chars().next();
        if let Some(n) = numbered(first)
            && (rest.is_empty() || matches!(separator, Some('、' | '.' | '．' | '，' | ',')))
        {
            return Self::from_number(n);
        }
        if let Some(exact) = Self::ALL
            .into_iter()
            .find(|c| normalize_label(c.name(Lang::ZhCn)) == cleaned)
        {
            return Some(exact);
        }
        const KEYWORDS: [(Category, &[&str]); 8] = [
            (Category::ReformAndLayout, &["放管服", "区域布局"]),
            (Category::CreationAndCapability, &["高质量创造", "创新主体"]),
            (Category::Protection, &["保护"]),
            (Category::Utilisation, &["运用"]),
            (
                Category::PublicServiceAndAgencySupervision,
                &["公共服务", "代理行业"],
            ),
            (Category::StrategyAndResearch, &["战略规划", "软课题"]),
            (Category::OpenCooperation, &["开放合作"]),
            (Category::CultureAndCommunication, &["文化传播"]),
        ];
        let matching: Vec<Self> = KEYWORDS
            .iter()
            .filter(|(_, words)| words.iter().any(|w| cleaned.contains(w)))
            .map(|(c, _)| *c)
            .collect();
        match matching.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// Drops whitespace (including line breaks inside cells) and quotation marks, which
/// vary between “”, "" and 「」 in filled-in forms.
fn normalize_label(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '“' | '”' | '"' | '「' | '」' | '‘' | '’'))
        .collect()
}

/// The four parts of a catalogue (2024 call): who approves and how the money flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// 保留省级: approved and funded by the province.
    RetainedProvincial,
    /// 后补助: subsidised after the work is done.
    PostSubsidy,
    /// 支持专利代办处及省知识产权保护中心: support for the patent office agency and the
    /// provincial IP protection centre.
    PatentOfficeAndProtectionCentre,
    /// 下放地市审批: approval delegated to the city bureaus.
    DelegatedToCity,
}

impl Part {
    pub const ALL: [Self; 4] = [
        Self::RetainedProvincial,
        Self::PostSubsidy,
        Self::PatentOfficeAndProtectionCentre,
        Self::DelegatedToCity,
    ];

    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::RetainedProvincial, Lang::ZhCn) => "保留省级",
            (Self::RetainedProvincial, Lang::En) => "kept at province level",
            (Self::PostSubsidy, Lang::ZhCn) => "后补助",
            (Self::PostSubsidy, Lang::En) => "post-hoc subsidy",
            (Self::PatentOfficeAndProtectionCentre, Lang::ZhCn) => {
                "支持专利代办处及省知识产权保护中心"
            }
            (Self::PatentOfficeAndProtectionCentre, Lang::En) => {
                "support for the patent office agency and the provincial IP protection centre"
            }
            (Self::DelegatedToCity, Lang::ZhCn) => "下放地市审批",
            (Self::DelegatedToCity, Lang::En) => "delegated to city approval",
        }
    }
}

/// The kinds of organisation that apply (the province bureau never does). The names are
/// those of the store's organisation kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantKind {
    /// 省级单位: 省直单位, 省级行业协会／组织, 社会团体, 省级事业单位.
    Provincial,
    /// 知识产权保护中心、保护机构、专利代办处.
    ProtectionCentre,
    /// 地市市场监管局 (市局, 地市, also for 县区局 under it).
    City,
    /// A unit in a city (company, university, institution, association, district bureau).
    Unit,
    /// 第三方机构 (service institutions, evaluators).
    ThirdParty,
}

impl ApplicantKind {
    pub const ALL: [Self; 5] = [
        Self::Provincial,
        Self::ProtectionCentre,
        Self::City,
        Self::Unit,
        Self::ThirdParty,
    ];

    /// The name used in catalogue files and by the store (`provincial`, `city`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provincial => "provincial",
            Self::ProtectionCentre => "protection_centre",
            Self::City => "city",
            Self::Unit => "unit",
            Self::ThirdParty => "third_party",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Provincial, Lang::ZhCn) => "省级单位",
            (Self::Provincial, Lang::En) => "provincial organisation",
            (Self::ProtectionCentre, Lang::ZhCn) => "知识产权保护中心或专利代办处",
            (Self::ProtectionCentre, Lang::En) => "protection centre or patent office agency",
            (Self::City, Lang::ZhCn) => "地市市场监管局",
            (Self::City, Lang::En) => "city bureau",
            (Self::Unit, Lang::ZhCn) => "地市内单位",
            (Self::Unit, Lang::En) => "unit in a city",
            (Self::ThirdParty, Lang::ZhCn) => "第三方机构",
            (Self::ThirdParty, Lang::En) => "third-party institution",
        }
    }

    /// The kinds an applicant text (申报（工作）主体) names, by the rule documented in
    /// `workflows/calls/2022.toml`: each clause (split at `；` and line breaks) by the first
    /// matching line of the rule, all clauses together; an empty text: every kind.
    pub fn from_applicant_text(text: &str) -> Vec<Self> {
        use ApplicantKind::*;
        let mut kinds = std::collections::BTreeSet::new();
        let clauses: Vec<&str> = text
            .split(['；', ';', '\n'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if clauses.is_empty() {
            return Self::ALL.to_vec();
        }
        let has = |c: &str, words: &[&str]| words.iter().any(|w| c.contains(w));
        for clause in clauses {
            let add: &[Self] = if has(clause, &["市局", "地市", "县区局"]) {
                &[City, Unit]
            } else if has(clause, &["保护中心", "保护机构", "代办处"]) {
                &[ProtectionCentre]
            } else if has(clause, &["省级", "主办方"]) {
                &[Provincial]
            } else if has(clause, &["机构"]) {
                &[Provincial, Unit, ThirdParty]
            } else {
                &[Provincial, Unit]
            };
            kinds.extend(add.iter().copied());
        }
        kinds.into_iter().collect()
    }
}

/// One call's catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The budget year the call collects projects for (2022 for the call of June 2021).
    pub year: i32,
    pub title: String,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub issued_on: Option<NaiveDate>,
    /// Last day for submitting demands (China Standard Time).
    #[serde(default)]
    pub deadline: Option<NaiveDate>,
    /// Calendar days an applicant has to correct an application its city bureau returned
    /// after the closing date (a call setting; 5 when absent — a default, not a rule).
    #[serde(default)]
    pub correction_window_days: Option<u32>,
    pub categories: Vec<CatalogueCategory>,
    /// The call's rules (`[rules]`); every key defaults ([`crate::rules`]).
    #[serde(default)]
    pub rules: crate::rules::CallRules,
    /// The funding plan (`[funding]`: envelope and allocations); none: no envelope.
    #[serde(default)]
    pub funding: Option<crate::funding::FundingPlan>,
}

/// A category as it appears in one call, with its policy areas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueCategory {
    pub category: Category,
    /// The title as the call prints it (without the numeral).
    pub title: String,
    /// Empty when the call proposes nothing in this category and only takes added rows.
    #[serde(default)]
    pub policy_areas: Vec<PolicyArea>,
}

/// A policy area (重点政策或工作) and the items proposed under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyArea {
    pub name: String,
    #[serde(default)]
    pub items: Vec<CatalogueItem>,
}

/// A proposed project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItem {
    /// Unique within the catalogue, stable across edits: `{year}-{category}-{policy area}-{number}`
    /// such as `2022-3-1-20` (a second row of the same item gets a suffix: `2022-3-1-20b`).
    pub id: String,
    /// The number printed before the name, restarting in each category or policy area.
    #[serde(default)]
    pub number: Option<u32>,
    /// 项目名称
    pub name: String,
    /// 项目方向
    pub direction: String,
    /// 申报（工作）主体; may be empty (the 2022 form leaves one blank).
    #[serde(default)]
    pub applicant: String,
    pub part: Part,
    /// The kinds of organisation that may apply (see the rule in the catalogue file's
    /// header); empty: any kind.
    #[serde(default)]
    pub eligible: Vec<ApplicantKind>,
}

impl CatalogueItem {
    /// Whether an organisation of `kind` may apply for this item.
    pub fn admits(&self, kind: ApplicantKind) -> bool {
        self.eligible.is_empty() || self.eligible.contains(&kind)
    }
}

/// An item together with where it sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemRef<'a> {
    pub category: Category,
    pub policy_area: &'a str,
    pub item: &'a CatalogueItem,
}

/// Why a catalogue file cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogueError {
    /// Not valid TOML or not the catalogue format.
    Format(String),
    DuplicateCategory(Category),
    DuplicatePolicyArea {
        category: Category,
        name: String,
    },
    DuplicateItemId(String),
    /// An item or policy area without a name, or an item without an id.
    EmptyField {
        location: String,
        field: &'static str,
    },
    /// The `[rules]` do not check ([`crate::rules::CallRules::check`]).
    Rules(crate::rules::RulesError),
    /// The `[funding]` plan does not check ([`crate::funding::FundingPlan::check`]).
    Funding(crate::funding::FundingPlanError),
}

impl UserFacing for CatalogueError {
    fn code(&self) -> &'static str {
        match self {
            Self::Format(_) => "CATALOGUE_FORMAT",
            Self::DuplicateCategory(_) => "CATALOGUE_DUPLICATE_CATEGORY",
            Self::DuplicatePolicyArea { .. } => "CATALOGUE_DUPLICATE_POLICY_AREA",
            Self::DuplicateItemId(_) => "CATALOGUE_DUPLICATE_ITEM_ID",
            Self::EmptyField { .. } => "CATALOGUE_EMPTY_FIELD",
            Self::Rules(e) => e.code(),
            Self::Funding(e) => e.code(),
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::Format(detail) => pick(
                lang,
                format!("项目目录文件格式错误：{detail}"),
                format!("the catalogue file is malformed: {detail}"),
            ),
            Self::DuplicateCategory(c) => pick(
                lang,
                format!("大类「{}」重复出现", c.label()),
                format!("category {} appears twice", c.number()),
            ),
            Self::DuplicatePolicyArea { category, name } => pick(
                lang,
                format!(
                    "大类「{}」下的重点政策或工作「{name}」重复出现",
                    category.label()
                ),
                format!(
                    "policy area `{name}` appears twice in category {}",
                    category.number()
                ),
            ),
            Self::DuplicateItemId(id) => pick(
                lang,
                format!("项目编号「{id}」重复"),
                format!("item id `{id}` is used twice"),
            ),
            Self::EmptyField { location, field } => pick(
                lang,
                format!("{location}：{field} 不能为空"),
                format!("{location}: {field} must not be empty"),
            ),
            Self::Rules(e) => e.message(lang),
            Self::Funding(e) => e.message(lang),
        }
    }
}
impl_error_via_user_facing!(CatalogueError);

impl Catalogue {
    /// Reads and checks a catalogue file (the format of `workflows/calls/2022.toml`).
    pub fn from_toml_str(text: &str) -> Result<Self, CatalogueError> {
        let mut catalogue: Self =
            toml::from_str(text).map_err(|e| CatalogueError::Format(e.to_string()))?;
        // An item without `eligible` admits the kinds its applicant text names.
        for cat in &mut catalogue.categories {
            for area in &mut cat.policy_areas {
                for item in &mut area.items {
                    if item.eligible.is_empty() {
                        item.eligible = ApplicantKind::from_applicant_text(&item.applicant);
                    }
                }
            }
        }
        catalogue.check()?;
        Ok(catalogue)
    }

    /// Structural checks: each category at most once, policy areas unique within their
    /// category, item ids unique, names present.
    pub fn check(&self) -> Result<(), CatalogueError> {
        self.rules.check().map_err(CatalogueError::Rules)?;
        if let Some(plan) = &self.funding {
            plan.check(self).map_err(CatalogueError::Funding)?;
        }
        let mut categories = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for cat in &self.categories {
            if !categories.insert(cat.category) {
                return Err(CatalogueError::DuplicateCategory(cat.category));
            }
            let mut areas = BTreeSet::new();
            for area in &cat.policy_areas {
                if area.name.trim().is_empty() {
                    return Err(CatalogueError::EmptyField {
                        location: cat.category.label(),
                        field: "name",
                    });
                }
                if !areas.insert(area.name.as_str()) {
                    return Err(CatalogueError::DuplicatePolicyArea {
                        category: cat.category,
                        name: area.name.clone(),
                    });
                }
                for item in &area.items {
                    if item.id.trim().is_empty() {
                        return Err(CatalogueError::EmptyField {
                            location: format!("{} / {}", area.name, item.name),
                            field: "id",
                        });
                    }
                    if item.name.trim().is_empty() {
                        return Err(CatalogueError::EmptyField {
                            location: item.id.clone(),
                            field: "name",
                        });
                    }
                    if !ids.insert(item.id.as_str()) {
                        return Err(CatalogueError::DuplicateItemId(item.id.clone()));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn category(&self, category: Category) -> Option<&CatalogueCategory> {
        self.categories.iter().find(|c| c.category == category)
    }

    /// Every item, in form order.
    pub fn items(&self) -> impl Iterator<Item = ItemRef<'_>> {
        self.categories.iter().flat_map(|cat| {
            cat.policy_areas.iter().flat_map(move |area| {
                area.items.iter().map(move |item| ItemRef {
                    category: cat.category,
                    policy_area: &area.name,
                    item,
                })
            })
        })
    }

    pub fn item(&self, id: &str) -> Option<ItemRef<'_>> {
        self.items().find(|r| r.item.id == id)
    }

    /// The items of a category whose name matches `name` once both are stripped of an
    /// item number, spaces and quotation marks (how a filled-in form refers to them).
    pub fn items_named<'a>(
        &'a self,
        category: Category,
        name: &str,
    ) -> impl Iterator<Item = ItemRef<'a>> + 'a {
        let wanted = normalize_label(strip_item_number(name));
        self.items()
            .filter(move |r| r.category == category && normalize_label(&r.item.name) == wanted)
    }

    pub fn items_in_part(&self, part: Part) -> impl Iterator<Item = ItemRef<'_>> {
        self.items().filter(move |r| r.item.part == part)
    }

    /// Whether `name` is a policy area of `category` in this call.
    pub fn has_policy_area(&self, category: Category, name: &str) -> bool {
        let wanted = normalize_label(name);
        self.category(category).is_some_and(|c| {
            c.policy_areas
                .iter()
                .any(|a| normalize_label(&a.name) == wanted)
        })
    }
}

/// Strips an item number such as `1.`, `1．`, `1、`, `1. ` or `3` from the start of a name.
pub fn strip_item_number(name: &str) -> &str {
    let trimmed = name.trim();
    let digits_end = trimmed
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(trimmed.len(), |(i, _)| i);
    if digits_end == 0 {
        return trimmed;
    }
    let rest = &trimmed[digits_end..];
    let rest = rest.strip_prefix(['.', '．', '、']).unwrap_or(rest);
    rest.trim_start()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_labels_are_read_as_people_write_them() {
        assert_eq!(
            Category::from_label("一、知识产权“放管服”改革和区域布局"),
            Some(Category::ReformAndLayout)
        );
        assert_eq!(
            Category::from_label("三、强化知识产权\n保护"),
            Some(Category::Protection)
        );
        assert_eq!(
            Category::from_label("8. 文化传播"),
            Some(Category::CultureAndCommunication)
        );
        assert_eq!(
            Category::from_label("知识产权\"放管服\"改革和区域布局"),
            Some(Category::ReformAndLayout)
        );
        assert_eq!(Category::from_label("运用"), Some(Category::Utilisation));
        // Two categories' keywords: ambiguous, so not guessed.
        assert_eq!(Category::from_label("保护和运用"), None);
        assert_eq!(Category::from_label("其他"), None);
        assert_eq!(Category::from_label(""), None);
        for c in Category::ALL {
            assert_eq!(Category::from_label(&c.label()), Some(c));
            assert_eq!(Category::from_label(c.name(Lang::ZhCn)), Some(c));
        }
    }

    #[test]
    fn item_numbers_are_stripped() {
        assert_eq!(strip_item_number("1.粤港澳大湾区"), "粤港澳大湾区");
        assert_eq!(strip_item_number("1. 粤港澳大湾区"), "粤港澳大湾区");
        assert_eq!(strip_item_number("3专利转化"), "专利转化");
        assert_eq!(strip_item_number("12、商标"), "商标");
        assert_eq!(strip_item_number("WIPO暑期班"), "WIPO暑期班");
    }

    #[test]
    fn duplicate_item_ids_are_refused() {
        let text = r#"
year = 2024
title = "t"
[[categories]]
category = "protection"
title = "强化知识产权保护"
[[categories.policy_areas]]
name = "a"
[[categories.policy_areas.items]]
id = "x"
name = "one"
direction = ""
part = "retained_provincial"
[[categories.policy_areas.items]]
id = "x"
name = "two"
direction = ""
part = "post_subsidy"
"#;
        let err = Catalogue::from_toml_str(text).unwrap_err();
        assert_eq!(err, CatalogueError::DuplicateItemId("x".into()));
        assert_eq!(err.code(), "CATALOGUE_DUPLICATE_ITEM_ID");
        assert!(err.message(Lang::ZhCn).contains("重复"));
    }

    #[test]
    fn unknown_fields_are_a_format_error() {
        let err = Catalogue::from_toml_str("year = 1\ntitle = \"t\"\ncategories = []\nextra = 1")
            .unwrap_err();
        assert_eq!(err.code(), "CATALOGUE_FORMAT");
    }
}
