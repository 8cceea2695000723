//! Duplicate detection: 不得重复设立绩效目标相近或资金用途相似的项目.

use grantflow_domain::Money;
use grantflow_programme::catalogue::Category;
use grantflow_programme::demand::{Demand, DemandOrigin};
use grantflow_programme::similarity::{
    DuplicateReason, SimilarityConfig, SimilarityWeights, bigram_similarity, demand_similarity,
    find_duplicates, merge_demands, normalize_for_comparison,
};

fn demand(submitter: &str, name: &str, direction: &str, performance: &str, budget: i64) -> Demand {
    Demand {
        id: None,
        submitter: submitter.into(),
        category: Category::PublicServiceAndAgencySupervision,
        policy_area: "“知识产权高层次人才培养”工程".into(),
        origin: DemandOrigin::AddedRow,
        project_name: name.into(),
        direction: direction.into(),
        applicant: submitter.into(),
        budget: Some(Money::from_yuan(budget).unwrap()),
        performance_text: performance.into(),
        indicators: vec![],
        comments: String::new(),
        source: None,
    }
}

fn submissions() -> Vec<Demand> {
    vec![
        demand(
            "深圳市市场监督管理局",
            "粤港澳大湾区知识产权人才发展大会",
            "举办粤港澳大湾区知识产权人才发展大会，开展知识产权人才供需对接活动",
            "举办大会1场，对接企业100家，达成人才引进意向50人",
            800_000,
        ),
        demand(
            "东莞市市场监督管理局",
            "粤港澳大湾区知识产权人才发展大会暨人才对接活动",
            "举办粤港澳大湾区知识产权人才发展大会，并开展人才供需对接活动",
            "举办大会1场，参会企业100家，达成人才引进意向50人",
            600_000,
        ),
        demand(
            "潮州市市场监督管理局",
            "地理标志产品保护示范区建设",
            "支持创建国家级地理标志产品保护示范区，全面加强地理标志保护",
            "新增国家级示范区1个，地理标志产品产值增长10%",
            500_000,
        ),
        demand(
            "佛山市市场监督管理局",
            "中小学知识产权教育推广普及",
            "开展本地区中小学知识产权教育工作，建设教育示范学校",
            "建设示范学校10所，培训教师200人次",
            300_000,
        ),
    ]
}

#[test]
fn a_near_duplicate_pair_is_flagged_and_unrelated_ones_are_not() {
    let demands = submissions();
    let pairs = find_duplicates(&demands, &SimilarityConfig::default());
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    let pair = &pairs[0];
    assert_eq!((pair.first, pair.second), (0, 1));
    assert!(pair.scores.overall >= 0.6, "{:?}", pair.scores);
    assert!(pair.reasons.contains(&DuplicateReason::Overall));
    assert!(pair.reasons.contains(&DuplicateReason::SimilarUseOfFunds));

    let unrelated = demand_similarity(&demands[2], &demands[3], &SimilarityWeights::default());
    assert!(unrelated.overall < 0.2, "{unrelated:?}");
    let dup_vs_other = demand_similarity(&demands[0], &demands[2], &SimilarityWeights::default());
    assert!(dup_vs_other.overall < 0.2, "{dup_vs_other:?}");
}

#[test]
fn similar_use_of_funds_alone_flags_a_pair_with_a_different_name() {
    let mut demands = submissions();
    demands.push(demand(
        "汕头市市场监督管理局",
        "地标产品示范区创建",
        "支持创建国家级地理标志产品保护示范区，全面加强地理标志保护工作",
        "创建示范区1个",
        400_000,
    ));
    let pairs = find_duplicates(&demands, &SimilarityConfig::default());
    let pair = pairs
        .iter()
        .find(|p| (p.first, p.second) == (2, 4))
        .unwrap();
    assert!(pair.reasons.contains(&DuplicateReason::SimilarUseOfFunds));
    assert!(pair.scores.name.unwrap() < 0.5, "{:?}", pair.scores);
}

#[test]
fn rows_answering_the_same_catalogue_item_are_candidates_not_duplicates() {
    let mut a = submissions()[0].clone();
    let mut b = submissions()[1].clone();
    for d in [&mut a, &mut b] {
        d.origin = DemandOrigin::CatalogueItem {
            item_id: "2022-5-3-1".into(),
        };
    }
    assert!(find_duplicates(&[a.clone(), b.clone()], &SimilarityConfig::default()).is_empty());
    let config = SimilarityConfig {
        skip_same_catalogue_item: false,
        ..SimilarityConfig::default()
    };
    assert_eq!(find_duplicates(&[a, b], &config).len(), 1);
}

#[test]
fn merging_keeps_both_sources() {
    let demands = submissions();
    let merged = merge_demands(demands[0].clone(), demands[1].clone());
    assert_eq!(merged.demand, demands[0]);
    assert_eq!(merged.sources, vec![demands[0].clone(), demands[1].clone()]);
    assert_eq!(
        merged.submitters(),
        ["深圳市市场监督管理局", "东莞市市场监督管理局"]
    );
    assert_eq!(
        merged.requested_budget_total(),
        Money::from_yuan(1_400_000).unwrap()
    );
    let json = serde_json::to_value(&merged).unwrap();
    assert_eq!(json["sources"].as_array().unwrap().len(), 2);
}

#[test]
fn bigram_similarity_counts_characters_not_bytes() {
    // Same as strsim on ASCII …
    for (a, b) in [("ferris", "feris"), ("night", "nacht"), ("abc", "abc")] {
        assert_eq!(bigram_similarity(a, b), strsim::sorensen_dice(a, b));
    }
    // … but right on Chinese: 知识/识产/产权 shared out of 3 + 5 bigrams → 2·3 / 8 = 0.75,
    // where strsim divides by byte lengths (12 + 18 − 2) and reports 6 / 28.
    assert_eq!(bigram_similarity("知识产权", "知识产权保护"), 0.75);
    assert!(strsim::sorensen_dice("知识产权", "知识产权保护") < 0.25);
    // Item numbers, punctuation and domain-wide words do not count.
    assert_eq!(
        normalize_for_comparison("1.广东省知识产权“一张网”平台建设项目"),
        "一张网平台建设"
    );
}

#[test]
fn a_search_for_a_request_is_capped_and_stops_when_cancelled() {
    use grantflow_programme::cancel::Cancel;
    use grantflow_programme::similarity::{
        DuplicateSearchError, MAX_COMPARED_DEMANDS, find_duplicates_within,
    };
    let one = submissions().remove(0);
    let many: Vec<_> = std::iter::repeat_n(one, MAX_COMPARED_DEMANDS + 1).collect();
    assert_eq!(
        find_duplicates_within(&many, &SimilarityConfig::default(), &Cancel::new()),
        Err(DuplicateSearchError::TooMany {
            count: MAX_COMPARED_DEMANDS + 1,
            max: MAX_COMPARED_DEMANDS
        })
    );
    let cancel = Cancel::new();
    cancel.cancel();
    assert_eq!(
        find_duplicates_within(&many[..2_000], &SimilarityConfig::default(), &cancel),
        Err(DuplicateSearchError::Cancelled)
    );
}
