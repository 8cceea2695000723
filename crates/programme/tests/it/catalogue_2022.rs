//! The committed 2022 catalogue against the 需求征集表 of seed 000.

use grantflow_domain::Lang;
use grantflow_programme::catalogue::{Catalogue, Category, Part};

fn catalogue() -> Catalogue {
    Catalogue::from_toml_str(include_str!("../../../../workflows/calls/2022.toml")).unwrap()
}

#[test]
fn counts_per_category_match_the_seed() {
    let c = catalogue();
    assert_eq!(c.year, 2022);
    assert_eq!(c.deadline.unwrap().to_string(), "2021-06-29");
    // (category, policy areas, catalogue rows, distinct item numbers) as in the form.
    // 三 has 29 numbered items; item 20 has a second row with its own direction and
    // applicant (各市局（不超过2家）), so 30 rows. 六, 七 and 八 propose nothing.
    let expected = [
        (Category::ReformAndLayout, 4, 2, 2),
        (Category::CreationAndCapability, 1, 6, 6),
        (Category::Protection, 1, 30, 29),
        (Category::Utilisation, 5, 18, 18),
        (Category::PublicServiceAndAgencySupervision, 4, 21, 21),
        (Category::StrategyAndResearch, 0, 0, 0),
        (Category::OpenCooperation, 0, 0, 0),
        (Category::CultureAndCommunication, 0, 0, 0),
    ];
    assert_eq!(c.categories.len(), 8);
    for (category, areas, rows, numbered) in expected {
        let cat = c.category(category).unwrap();
        assert_eq!(cat.title, category.name(Lang::ZhCn), "{category:?}");
        assert_eq!(cat.policy_areas.len(), areas, "{category:?} policy areas");
        let items: Vec<_> = c.items().filter(|r| r.category == category).collect();
        assert_eq!(items.len(), rows, "{category:?} rows");
        let mut numbers: Vec<(String, u32)> = items
            .iter()
            .map(|r| (r.policy_area.to_string(), r.item.number.unwrap()))
            .collect();
        numbers.dedup();
        assert_eq!(numbers.len(), numbered, "{category:?} numbered items");
    }
    assert_eq!(c.items().count(), 77);
}

#[test]
fn policy_areas_and_items_are_as_written_in_the_seed() {
    let c = catalogue();
    let utilisation: Vec<(&str, usize)> = c
        .category(Category::Utilisation)
        .unwrap()
        .policy_areas
        .iter()
        .map(|a| (a.name.as_str(), a.items.len()))
        .collect();
    assert_eq!(
        utilisation,
        [
            ("战略性产业集群知识产权协同运营服务体系建设", 2),
            ("知识产权转化实施专项", 4),
            ("知识产权金融创新和运营实施项目", 4),
            ("商标品牌战略实施项目", 4),
            ("地理标志产品运用促进工程", 4),
        ]
    );
    // The item this product serves (category 五, 其他, item 2).
    let tracking = c.item("2022-5-4-2").unwrap();
    assert_eq!(tracking.policy_area, "其他");
    assert_eq!(tracking.item.name, "知识产权项目跟踪管理与绩效评价");
    assert_eq!(
        tracking.item.direction,
        "协助开展知识产权项目全过程监督管理、项目申报及验收评审等工作。"
    );
    // Multi-paragraph cells keep their paragraphs.
    let rights = c.item("2022-3-1-3").unwrap().item;
    assert_eq!(
        rights.direction,
        "1.支持各地市（含县区）新设立建设国家级、省级知识产权维权援助中心；\n2.支持各地市对现有知识产权维权援助机构能力建设。"
    );
    // "3专利转化运用服务体系建设工程" has no dot after its number in the seed.
    assert_eq!(
        c.item("2022-4-2-3").unwrap().item.name,
        "专利转化运用服务体系建设工程"
    );
    // The seed leaves one applicant blank.
    assert_eq!(c.item("2022-5-1-5").unwrap().item.applicant, "");
    assert_eq!(
        c.items_named(Category::Protection, "20. 知识产权海外纠纷应对指导")
            .map(|r| r.item.id.as_str())
            .collect::<Vec<_>>(),
        ["2022-3-1-20", "2022-3-1-20b"]
    );
}

#[test]
fn parts_follow_the_documented_rule() {
    let c = catalogue();
    let ids = |part| -> Vec<&str> { c.items_in_part(part).map(|r| r.item.id.as_str()).collect() };
    // 后补助 wording: 国家级知识产权信息公共服务备案网点建设, WIPO知识产权暑期班.
    assert_eq!(ids(Part::PostSubsidy), ["2022-5-1-5", "2022-5-3-6"]);
    // Protection centres and institutions: 海外纠纷应对指导 (各知识产权保护中心),
    // 海外维权援助服务网点 (国家级知识产权保护机构), 知识产权交易博览会 (省知识产权保护中心).
    assert_eq!(
        ids(Part::PatentOfficeAndProtectionCentre),
        ["2022-3-1-20", "2022-3-1-24", "2022-4-3-4"]
    );
    assert_eq!(ids(Part::DelegatedToCity).len(), 42);
    assert_eq!(ids(Part::RetainedProvincial).len(), 30);
    for r in c.items_in_part(Part::DelegatedToCity) {
        assert!(
            r.item.applicant.contains("市局") || r.item.applicant.contains("地市"),
            "{}",
            r.item.id
        );
    }
    assert_eq!(Part::DelegatedToCity.name(Lang::ZhCn), "下放地市审批");
}

#[test]
fn eligible_kinds_follow_the_documented_rule() {
    use grantflow_programme::catalogue::ApplicantKind::{self, *};
    let text = include_str!("../../../../workflows/calls/2022.toml");
    // Every item names its kinds in the file (none is left to the default) …
    assert_eq!(text.matches("\neligible = [").count(), 77);
    let c = catalogue();
    for r in c.items() {
        // … and they are exactly what the header's rule derives from the applicant text.
        assert_eq!(
            r.item.eligible,
            ApplicantKind::from_applicant_text(&r.item.applicant),
            "{} {}",
            r.item.id,
            r.item.applicant
        );
    }
    let kinds = |id: &str| c.item(id).unwrap().item.eligible.clone();
    // One item per class of applicant text.
    assert_eq!(kinds("2022-2-1-4"), [City, Unit]); // 各市局
    assert_eq!(kinds("2022-3-1-9"), [Provincial]); // 省级知识产权行业协会
    assert_eq!(kinds("2022-3-1-4"), [Provincial]); // 可独立承担法律责任的省级事业单位
    assert_eq!(kinds("2022-3-1-6"), [Provincial, Unit]); // 可独立承担法律责任的事业单位
    assert_eq!(kinds("2022-5-1-2"), [Provincial, Unit, ThirdParty]); // 符合申报条件的机构
    assert_eq!(kinds("2022-4-3-4"), [ProtectionCentre]); // 省知识产权保护中心
    assert_eq!(kinds("2022-3-1-24"), [ProtectionCentre]); // 国家级知识产权保护机构
    assert_eq!(kinds("2022-5-3-10"), [Provincial]); // 省青少年科技创新大赛主办方
    assert_eq!(kinds("2022-5-2-3"), [Provincial, Unit]); // 行业协会
    // 1.各市局；2.可独立承担法律责任的省级知识产权行业协会: both clauses.
    assert_eq!(kinds("2022-3-1-8"), [Provincial, City, Unit]);
    // The form leaves 2022-5-1-5's applicant blank: every kind.
    assert_eq!(kinds("2022-5-1-5"), ApplicantKind::ALL);
    // Every part has items some kind may apply for; 支持专利代办处及省知识产权保护中心 only
    // the centres and the agency.
    for r in c.items_in_part(Part::PatentOfficeAndProtectionCentre) {
        assert_eq!(r.item.eligible, [ProtectionCentre], "{}", r.item.id);
    }
    for r in c.items_in_part(Part::DelegatedToCity) {
        assert!(r.item.admits(City) && r.item.admits(Unit), "{}", r.item.id);
    }
}
