//! A call's funding plan (专项经费使用计划): the envelope (total) and what it allocates per
//! part, category, catalogue item and city (a city's allocation for 下放地市审批 items).
//! An approval draws from the total and from every pool of the plan that applies to its
//! project; it is refused beyond what is left of any of them (the store checks it in the
//! transition's transaction). Written as `[funding]` in the call's TOML:
//!
//! ```toml
//! [funding]
//! total = "30000000"
//! reimbursed_afterwards = false
//! [funding.parts]
//! delegated_to_city = "8000000"
//! [funding.categories]
//! protection = "6000000"
//! [funding.items]
//! "2022-3-1-20" = "500000"
//! [funding.cities]
//! "佛山市" = "1200000"
//! ```
//!
//! A city key matches the city bureau whose name is the key or starts with it (`佛山市`
//! matches 佛山市市场监督管理局).

use std::collections::BTreeMap;

use grantflow_domain::{Lang, Money};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::catalogue::{Catalogue, Part};
use crate::messages::{impl_error_via_user_facing, pick};

/// At most this many entries per kind of pool (items, cities …).
pub const MAX_POOLS: usize = 1000;
/// A city key is at most this many characters.
pub const MAX_KEY_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingPlan {
    /// The envelope: every approval of the call draws from it.
    pub total: Money,
    /// Per part (`retained_provincial`, `post_subsidy`, …).
    #[serde(default)]
    pub parts: BTreeMap<String, Money>,
    /// Per category (`reform_and_layout`, …).
    #[serde(default)]
    pub categories: BTreeMap<String, Money>,
    /// Per catalogue item id.
    #[serde(default)]
    pub items: BTreeMap<String, Money>,
    /// Per city: what each city bureau may approve for 下放地市审批 items.
    #[serde(default)]
    pub cities: BTreeMap<String, Money>,
    /// Funds are reimbursed afterwards: spending need not wait for a disbursement.
    #[serde(default)]
    pub reimbursed_afterwards: bool,
}

/// Why a plan is refused (`FUNDING_PLAN_INVALID`, the message says where).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingPlanError {
    pub zh: String,
    pub en: String,
}

impl UserFacing for FundingPlanError {
    fn code(&self) -> &'static str {
        "FUNDING_PLAN_INVALID"
    }
    fn message(&self, lang: Lang) -> String {
        pick(
            lang,
            format!("经费计划有误：{}", self.zh),
            format!("the funding plan is invalid: {}", self.en),
        )
    }
}
impl_error_via_user_facing!(FundingPlanError);

/// The snake_case name a part or category has in files and in the store.
pub fn code<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn err(zh: String, en: String) -> FundingPlanError {
    FundingPlanError { zh, en }
}

impl FundingPlan {
    /// Amounts positive and within [`Money::MAX`]; each kind of pool sums to at most the
    /// total (cities to at most the 下放地市审批 part when it is set); keys are parts,
    /// categories and items of the catalogue; at most [`MAX_POOLS`] per kind.
    pub fn check(&self, catalogue: &Catalogue) -> Result<(), FundingPlanError> {
        let categories: Vec<String> = catalogue
            .categories
            .iter()
            .map(|c| code(c.category))
            .collect();
        let items: Vec<String> = catalogue.items().map(|r| r.item.id.clone()).collect();
        self.check_against(&categories, &items)
    }

    /// [`FundingPlan::check`] against a call's category codes and item ids (as stored).
    pub fn check_against(
        &self,
        categories: &[String],
        items: &[String],
    ) -> Result<(), FundingPlanError> {
        if self.total.fen() <= 0 || self.total.checked().is_none() {
            return Err(err(
                format!("总额须大于零（当前 {} 元）", self.total),
                format!("the total must be positive (is {} yuan)", self.total),
            ));
        }
        let kinds: [(&str, &str, &BTreeMap<String, Money>); 4] = [
            ("parts", "部分", &self.parts),
            ("categories", "大类", &self.categories),
            ("items", "项目", &self.items),
            ("cities", "地市", &self.cities),
        ];
        for (kind, zh_kind, pools) in kinds {
            if pools.len() > MAX_POOLS {
                return Err(err(
                    format!("{zh_kind}分配不超过 {MAX_POOLS} 项"),
                    format!("at most {MAX_POOLS} {kind}"),
                ));
            }
            let mut sum = Money::ZERO;
            for (key, amount) in pools {
                if amount.fen() <= 0 {
                    return Err(err(
                        format!("{zh_kind}「{key}」的金额须大于零"),
                        format!("the amount of {kind} `{key}` must be positive"),
                    ));
                }
                let known = match kind {
                    "parts" => Part::ALL.iter().any(|p| code(p) == *key),
                    "categories" => categories.contains(key),
                    "items" => items.contains(key),
                    _ => !key.trim().is_empty() && key.chars().count() <= MAX_KEY_CHARS,
                };
                if !known {
                    return Err(err(
                        format!("{zh_kind}「{key}」不在本通知的目录中"),
                        format!("{kind} `{key}` is not in the call's catalogue"),
                    ));
                }
                sum = sum.checked_add(*amount).unwrap_or(Money::MAX);
            }
            let cap = match kind {
                "cities" => self
                    .parts
                    .get(&code(Part::DelegatedToCity))
                    .copied()
                    .unwrap_or(self.total),
                _ => self.total,
            };
            if sum > cap {
                return Err(err(
                    format!("{zh_kind}分配合计 {sum} 元超过上限 {cap} 元"),
                    format!("the {kind} add up to {sum} yuan, more than the {cap} yuan they share"),
                ));
            }
        }
        Ok(())
    }

    /// The plan's key for a city bureau named `city_name`: the key equal to it, else the
    /// longest key it starts with.
    pub fn city_key(&self, city_name: &str) -> Option<String> {
        if self.cities.contains_key(city_name) {
            return Some(city_name.to_string());
        }
        self.cities
            .keys()
            .filter(|k| city_name.starts_with(k.as_str()))
            .max_by_key(|k| k.len())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuan(y: i64) -> Money {
        Money::from_yuan(y).unwrap()
    }

    #[test]
    fn the_2022_plan_checks_and_bad_plans_say_why() {
        let catalogue =
            Catalogue::from_toml_str(include_str!("../../../workflows/calls/2022.toml")).unwrap();
        let plan = catalogue.funding.clone().expect("the 2022 file has a plan");
        plan.check(&catalogue).unwrap();
        let mut over = plan.clone();
        over.cities.insert("汕头市".into(), yuan(1_000_000_000));
        let e = over.check(&catalogue).unwrap_err();
        assert_eq!(e.code(), "FUNDING_PLAN_INVALID");
        assert!(e.message(Lang::En).contains("cities add up to"), "{e}");
        let mut unknown = plan.clone();
        unknown.items.insert("2022-9-9-9".into(), yuan(1));
        assert!(
            unknown
                .check(&catalogue)
                .unwrap_err()
                .message(Lang::ZhCn)
                .contains("2022-9-9-9")
        );
        let mut zero = plan;
        zero.total = Money::ZERO;
        assert!(zero.check(&catalogue).is_err());
        assert_eq!(
            catalogue
                .funding
                .unwrap()
                .city_key("佛山市市场监督管理局")
                .as_deref(),
            Some("佛山市")
        );
    }
}
