//! The demo year's reports equal the figures computed by hand from the demo script
//! (`crates/grantflow/src/cli/demo.rs`, `demo/parts.rs`, `demo/reports.rs`), on SQLite and
//! PostgreSQL: `grantflow serve --demo`, then the reports as the manager, a city bureau and
//! an applicant would ask for them.
//!
//! The demo's 22 projects of the 2022 call, as the script leaves them (amounts in yuan).
//! The 13 lifecycle projects (P0–P12, `demo.rs`) ask for and are approved 420 000, with a
//! budget line of 300 000; the first batch of 300 000 is disbursed (拨付) when the task book
//! is signed, so from P6 (execution) on. Spending (`programme::outcome`) is recorded with the
//! final report, so from P7 on; its execution rate against the 300 000 line gives the grade.
//! S1–S6 are `demo/parts.rs`: S1 approved 180 000 by its city, no line, no batch; S4 (后补助)
//! approved 150 000 with a line of 150 000, paid 150 000 in its payment stage; S5 allocated
//! 300 000 with a line of 300 000, nothing disbursed. R1–R3 are `demo/reports.rs`: approved,
//! line and disbursement each of the plan's amount, disbursed before spending.
//!
//! | # | unit (city) | item, category, part | state | approved | line | disbursed | spent | grade |
//! | --- | --- | --- | --- | --- | --- | --- | --- | --- |
//! | P0 | unit_gz (广州) | 3-1-6 三 保留省级 | drafting | | | | | |
//! | P1 | unit_sz (深圳) | 5-2-1 五 保留省级 | city_review | | | | | |
//! | P2 | unit_fs (佛山) | 3-1-11 三 保留省级 | formal_check | | | | | |
//! | P3 | unit_dg (东莞) | 5-2-2 五 保留省级 | expert_review | | | | | |
//! | P4 | unit_gz2 (广州) | 4-3-2 四 保留省级 | publicity | 420 000 | 300 000 | | | |
//! | P5 | unit_sz2 (深圳) | 5-1-2 五 保留省级 | task_book | 420 000 | 300 000 | | | |
//! | P6 | unit_gz (广州) | 3-1-18 三 保留省级 | execution | 420 000 | 300 000 | 300 000 | | |
//! | P7 | unit_sz (深圳) | 5-1-3 五 保留省级 | acceptance_review | 420 000 | 300 000 | 300 000 | 270 000 | |
//! | P8 | unit_fs (佛山) | 4-1-1 四 保留省级 | evaluation | 420 000 | 300 000 | 300 000 | 270 000 | |
//! | P9 | unit_dg (东莞) | 5-2-3 五 保留省级 | archived | 420 000 | 300 000 | 300 000 | 285 000 | 97.5 优 |
//! | P10 | unit_fs (佛山) | 2-1-5 二 保留省级 | archived | 420 000 | 300 000 | 300 000 | 270 000 | 89 良 |
//! | P11 | unit_gz2 (广州) | 5-2-4 五 保留省级 | archived | 420 000 | 300 000 | 300 000 | 240 000 | 69 中 |
//! | P12 | unit_sz2 (深圳) | 1-1-1 一 保留省级 | archived | 420 000 | 300 000 | 300 000 | 150 000 | 46 差 |
//! | S1 | unit_gz2 (广州) | 3-1-1 三 下放地市 | task_book | 180 000 | | | | |
//! | S2 | city_sz (深圳) | 2-1-4 二 下放地市 | formal_check | | | | | |
//! | S3 | prov_assoc (省直) | 3-1-9 三 保留省级 | expert_review | | | | | |
//! | S4 | unit_sz2 (深圳) | 5-3-6 五 后补助 | subsidised | 150 000 | 150 000 | 150 000 | | |
//! | S5 | ppc (省直) | 4-3-4 四 代办处及保护中心 | execution | 300 000 | 300 000 | | | |
//! | S6 | third_party (省直) | 5-1-2 五 保留省级 | formal_check | | | | | |
//! | R1 | unit_fs (佛山) | 3-1-7 三 下放地市 | graded | 200 000 | 200 000 | 200 000 | 160 000 | 94 优 |
//! | R2 | ppc (省直) | 3-1-24 三 代办处及保护中心 | graded | 250 000 | 250 000 | 250 000 | 250 000 | 87.5 良 |
//! | R3 | unit_dg (东莞) | 4-4-2 四 下放地市 | graded | 100 000 | 100 000 | 100 000 | 50 000 | 63 中 |
//!
//! Totals: approved 9 × 420 000 + 180 000 + 150 000 + 300 000 + 550 000 = 4 960 000; lines
//! 9 × 300 000 + 150 000 + 300 000 + 550 000 = 3 700 000; disbursed 7 × 300 000 + 150 000 +
//! 550 000 = 2 800 000; spent 1 485 000 + 460 000 = 1 945 000.
//!
//! Indicators (approved targets; actuals at acceptance): every P4–P12, S1, S4, S5 has 举办培训场次
//! 10 场 and 服务企业数量 200 家; P7, P8, P10 report 10/150, P9 11/190, P11 7/130, P12 5/80;
//! R1 调解案件数 135/120 件 and 服务企业数量 90/100; R2 60/80 件 and 150/150 家; R3 举办培训场次
//! 6/10 场 (recorded; the final report said 5) and 服务企业数量 70/100 家.

use crate::support;

use serde_json::{Value, json};
use support::{Server, graphql, login, write_config};

const FIGURES: &str = "projects stages { id count } approved approvedAmount budgeted disbursed spent \
    executionRate disbursementRate spentOfDisbursed spentOfApproved evaluated \
    grades { excellent good fair poor } averageScore";

fn report_query() -> String {
    format!(
        "query($year: Int!) {{ yearReport(year: $year) {{ scope callIds totals {{ {FIGURES} }} \
         states {{ id title count }} \
         byCity {{ key label figures {{ {FIGURES} }} }} \
         byCategory {{ key label figures {{ {FIGURES} }} }} \
         byPart {{ key label figures {{ {FIGURES} }} }} \
         indicators {{ name unit projects reported target actual completion }} }} }}"
    )
}

/// The figures a row must show: (projects, approved, approved amount, budgeted,
/// disbursed, spent, [优, 良, 中, 差], average score).
type Want = (
    i64,
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    [i64; 4],
    Option<f64>,
);

fn check(figures: &Value, want: Want, what: &str) {
    let (projects, approved, amount, budgeted, disbursed, spent, grades, average) = want;
    assert_eq!(figures["projects"], json!(projects), "{what}: {figures}");
    assert_eq!(figures["approved"], json!(approved), "{what}: {figures}");
    assert_eq!(
        figures["approvedAmount"],
        json!(amount),
        "{what}: {figures}"
    );
    assert_eq!(figures["budgeted"], json!(budgeted), "{what}: {figures}");
    assert_eq!(figures["spent"], json!(spent), "{what}: {figures}");
    assert_eq!(figures["disbursed"], json!(disbursed), "{what}: {figures}");
    let g = &figures["grades"];
    assert_eq!(
        [&g["excellent"], &g["good"], &g["fair"], &g["poor"]],
        grades.map(|n| json!(n)).each_ref(),
        "{what}: {figures}"
    );
    assert_eq!(
        figures["evaluated"],
        json!(grades.iter().sum::<i64>()),
        "{what}"
    );
    assert_eq!(figures["averageScore"], json!(average), "{what}: {figures}");
    // Rates to the 12th decimal (JSON carries the shortest text of the float).
    let rate = |field: &str, a: &str, b: &str| {
        let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
        if b == 0.0 {
            assert_eq!(figures[field], Value::Null, "{what}: {field} of nothing");
        } else {
            let got = figures[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: {field} is {}", figures[field]));
            assert!(
                (got - a / b).abs() < 1e-12,
                "{what}: {field} {got} ≠ {a}/{b}"
            );
        }
    };
    rate("executionRate", spent, budgeted);
    rate("spentOfApproved", spent, amount);
    rate("disbursementRate", disbursed, amount);
    rate("spentOfDisbursed", spent, disbursed);
    // The stage counts add up to the projects.
    let staged: i64 = figures["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_i64().unwrap())
        .sum();
    assert_eq!(staged, projects, "{what}");
}

fn row<'a>(rows: &'a Value, key: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key || r["label"].as_str().is_some_and(|l| l.starts_with(key)))
        .map(|r| &r["figures"])
        .unwrap_or_else(|| panic!("no row {key} in {rows}"))
}

fn keys(rows: &Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap().to_string())
        .collect()
}

async fn demo_year_reports(database_url: &str, dir: &std::path::Path) {
    let config = write_config(
        dir,
        database_url,
        "[scheduler]\nenabled = false\n[mail]\ntransport = \"eml_folder\"\ndir = \"/tmp/grantflow-demo-report-mail\"\n",
    );
    let server = Server::start(&config, &["--demo"], &[]);
    let url = server.url("");
    let manager = login(&url, "manager").await;
    let answer = graphql(
        &url,
        Some(&manager),
        &report_query(),
        json!({ "year": 2022 }),
    )
    .await;
    let r = &answer["data"]["yearReport"];
    assert!(r.is_object(), "{answer}");
    assert_eq!(r["scope"], "2022年度");
    assert_eq!(r["callIds"].as_array().unwrap().len(), 1);

    // ---- totals
    check(
        &r["totals"],
        (
            22,
            15,
            "4960000.00",
            "3700000.00",
            "2800000.00",
            "1945000.00",
            [2, 2, 2, 1],
            Some(78.0),
        ),
        "totals",
    );
    let stages: Vec<(String, i64)> = r["totals"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().into(),
                s["count"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = [
        ("application", 2),
        ("formal_check", 3),
        ("expert_review", 2),
        ("approval", 3),
        ("execution", 2),
        ("acceptance", 1),
        ("evaluation", 4),
        ("closed", 5),
    ]
    .iter()
    .map(|(s, n)| (s.to_string(), *n))
    .collect();
    assert_eq!(stages, want);
    let state = |id: &str| {
        r["states"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map_or(0, |s| s["count"].as_i64().unwrap())
    };
    assert_eq!(
        [
            state("archived"),
            state("graded"),
            state("subsidised"),
            state("formal_check")
        ],
        [4, 3, 1, 3]
    );

    // ---- by city (广州 P0 P4 P6 P11 S1; 深圳 P1 P5 P7 P12 S2 S4; 佛山 P2 P8 P10 R1;
    // 东莞 P3 P9 R3; 省直 S3 S5 S6 R2)
    let cities = &r["byCity"];
    assert_eq!(cities.as_array().unwrap().len(), 5, "{cities}");
    check(
        row(cities, "广州"),
        (
            5,
            4,
            "1440000.00",
            "900000.00",
            "600000.00",
            "240000.00",
            [0, 0, 1, 0],
            Some(69.0),
        ),
        "广州",
    );
    check(
        row(cities, "深圳"),
        (
            6,
            4,
            "1410000.00",
            "1050000.00",
            "750000.00",
            "420000.00",
            [0, 0, 0, 1],
            Some(46.0),
        ),
        "深圳",
    );
    check(
        row(cities, "佛山"),
        (
            4,
            3,
            "1040000.00",
            "800000.00",
            "800000.00",
            "700000.00",
            [1, 1, 0, 0],
            Some(91.5),
        ),
        "佛山",
    );
    check(
        row(cities, "东莞"),
        (
            3,
            2,
            "520000.00",
            "400000.00",
            "400000.00",
            "335000.00",
            [1, 0, 1, 0],
            Some(80.25),
        ),
        "东莞",
    );
    check(
        row(cities, "province"),
        (
            4,
            2,
            "550000.00",
            "550000.00",
            "250000.00",
            "250000.00",
            [0, 1, 0, 0],
            Some(87.5),
        ),
        "省直",
    );

    // ---- by category (categories 六, 七, 八 have no items in the 2022 catalogue)
    let categories = &r["byCategory"];
    assert_eq!(
        keys(categories),
        [
            "一、知识产权“放管服”改革和区域布局",
            "二、知识产权高质量创造和创新主体能力提升",
            "三、强化知识产权保护",
            "四、知识产权运用",
            "五、知识产权公共服务和代理行业监管"
        ]
    );
    check(
        row(categories, "reform_and_layout"),
        (
            1,
            1,
            "420000.00",
            "300000.00",
            "300000.00",
            "150000.00",
            [0, 0, 0, 1],
            Some(46.0),
        ),
        "一",
    );
    check(
        row(categories, "creation_and_capability"),
        (
            2,
            1,
            "420000.00",
            "300000.00",
            "300000.00",
            "270000.00",
            [0, 1, 0, 0],
            Some(89.0),
        ),
        "二",
    );
    check(
        row(categories, "protection"),
        (
            7,
            4,
            "1050000.00",
            "750000.00",
            "750000.00",
            "410000.00",
            [1, 1, 0, 0],
            Some(90.75),
        ),
        "三",
    );
    check(
        row(categories, "utilisation"),
        (
            4,
            4,
            "1240000.00",
            "1000000.00",
            "400000.00",
            "320000.00",
            [0, 0, 1, 0],
            Some(63.0),
        ),
        "四",
    );
    check(
        row(categories, "public_service_and_agency_supervision"),
        (
            8,
            5,
            "1830000.00",
            "1350000.00",
            "1050000.00",
            "795000.00",
            [1, 0, 1, 0],
            Some(83.25),
        ),
        "五",
    );

    // ---- by part (后补助 ends at payment: never evaluated)
    let parts = &r["byPart"];
    assert_eq!(
        keys(parts),
        [
            "保留省级",
            "后补助",
            "支持专利代办处及省知识产权保护中心",
            "下放地市审批"
        ]
    );
    check(
        row(parts, "retained_provincial"),
        (
            15,
            9,
            "3780000.00",
            "2700000.00",
            "2100000.00",
            "1485000.00",
            [1, 1, 1, 1],
            Some(75.38),
        ),
        "保留省级",
    );
    check(
        row(parts, "post_subsidy"),
        (
            1,
            1,
            "150000.00",
            "150000.00",
            "150000.00",
            "0.00",
            [0, 0, 0, 0],
            None,
        ),
        "后补助",
    );
    check(
        row(parts, "patent_office_and_protection_centre"),
        (
            2,
            2,
            "550000.00",
            "550000.00",
            "250000.00",
            "250000.00",
            [0, 1, 0, 0],
            Some(87.5),
        ),
        "代办处",
    );
    check(
        row(parts, "delegated_to_city"),
        (
            4,
            3,
            "480000.00",
            "300000.00",
            "300000.00",
            "210000.00",
            [1, 0, 1, 0],
            Some(78.5),
        ),
        "下放地市",
    );

    // ---- indicators by name and unit
    let indicator = |name: &str| {
        r["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}: {}", r["indicators"]))
    };
    let training = indicator("举办培训场次");
    assert_eq!(
        (
            &training["unit"],
            &training["projects"],
            &training["reported"],
            &training["target"],
            &training["actual"]
        ),
        (
            &json!("场"),
            &json!(13),
            &json!(7),
            &json!(130.0),
            &json!(59.0)
        )
    );
    let close = |v: &Value, x: f64| assert!((v.as_f64().unwrap() - x).abs() < 1e-12, "{v} ≠ {x}");
    close(&training["completion"], 59.0 / 70.0);
    let firms = indicator("服务企业数量");
    assert_eq!(
        (
            &firms["unit"],
            &firms["projects"],
            &firms["reported"],
            &firms["target"],
            &firms["actual"]
        ),
        (
            &json!("家"),
            &json!(15),
            &json!(9),
            &json!(2750.0),
            &json!(1160.0)
        )
    );
    close(&firms["completion"], 1160.0 / 1550.0);
    let mediation = indicator("调解案件数");
    assert_eq!(
        (
            &mediation["unit"],
            &mediation["projects"],
            &mediation["reported"],
            &mediation["target"],
            &mediation["actual"]
        ),
        (
            &json!("件"),
            &json!(2),
            &json!(2),
            &json!(200.0),
            &json!(195.0)
        )
    );
    close(&mediation["completion"], 195.0 / 200.0);

    // ---- the call's summary carries the same report
    let call = r["callIds"][0].as_str().unwrap().to_string();
    let summary = graphql(
        &url,
        Some(&manager),
        "query($c: ID!) { callSummary(callId: $c) { evaluated report { totals { projects approvedAmount } byPart { key } } } }",
        json!({ "c": call }),
    )
    .await;
    let s = &summary["data"]["callSummary"];
    assert_eq!(s["evaluated"], json!(7), "{summary}");
    assert_eq!(s["report"]["totals"]["projects"], json!(22));
    assert_eq!(s["report"]["totals"]["approvedAmount"], "4960000.00");

    // ---- a city bureau sees its own city only
    let city = login(&url, "city_fs").await;
    let answer = graphql(&url, Some(&city), &report_query(), json!({ "year": 2022 })).await;
    let c = &answer["data"]["yearReport"];
    assert_eq!(keys(&c["byCity"]), ["佛山市市场监督管理局"], "{answer}");
    check(
        &c["totals"],
        (
            4,
            3,
            "1040000.00",
            "800000.00",
            "800000.00",
            "700000.00",
            [1, 1, 0, 0],
            Some(91.5),
        ),
        "佛山 as city_fs",
    );

    // ---- an applicant is refused, and the call summary's report too
    let unit = login(&url, "unit_fs").await;
    let answer = graphql(&url, Some(&unit), &report_query(), json!({ "year": 2022 })).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
    let answer = graphql(
        &url,
        Some(&unit),
        "query($c: ID!) { callSummary(callId: $c) { evaluated report { scope } } }",
        json!({ "c": call }),
    )
    .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
    // The rest of the summary still answers (the applicant's own projects: P10 and R1).
    assert_eq!(
        answer["data"]["callSummary"]["evaluated"],
        json!(2),
        "{answer}"
    );
    assert_eq!(answer["data"]["callSummary"]["report"], Value::Null);

    // ---- each unit's grades for next year's budgeting
    let answer = graphql(
        &url,
        Some(&manager),
        "{ unitGrades(year: 2022) { organisationName cityName averageScore grades { excellent good fair poor } projects { title score grade } } }",
        json!({}),
    )
    .await;
    let units = answer["data"]["unitGrades"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    let of = |name: &str| {
        units
            .iter()
            .find(|u| u["organisationName"] == name)
            .unwrap_or_else(|| panic!("no {name}: {answer}"))
    };
    assert_eq!(units.len(), 5, "{answer}");
    let shunde = of("佛山市顺德区家电产业知识产权联盟");
    assert_eq!(shunde["averageScore"], json!(91.5));
    assert_eq!(shunde["cityName"], "佛山市市场监督管理局");
    assert_eq!(
        shunde["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["score"].as_f64().unwrap(), p["grade"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        // By year, then title: 佛山… before 顺德….
        [(89.0, "良"), (94.0, "优")]
    );
    assert_eq!(of("广东省知识产权保护中心")["cityName"], Value::Null);
    assert_eq!(of("广东省知识产权保护中心")["averageScore"], json!(87.5));

    // ---- the export: one sheet per breakdown
    for (query, sheets) in [
        (
            "{ exportReport(year: 2022, format: XLSX) { fileName contentBase64 } }",
            &["总体", "按状态", "按地市", "按大类", "按部分", "指标汇总"][..],
        ),
        (
            "{ exportUnitGrades(year: 2022, format: XLSX) { fileName contentBase64 } }",
            &["单位汇总", "项目明细"][..],
        ),
    ] {
        let answer = graphql(&url, Some(&manager), query, json!({})).await;
        let file = answer["data"]
            .as_object()
            .and_then(|d| d.values().next())
            .unwrap_or_else(|| panic!("{answer}"));
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file["contentBase64"].as_str().unwrap())
            .unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut workbook = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("xl/workbook.xml").unwrap(), &mut workbook)
            .unwrap();
        for sheet in sheets {
            assert!(
                workbook.contains(&format!("name=\"{sheet}\"")),
                "{sheet} in {workbook}"
            );
        }
    }

    // ---- a unit's previous grades on its application (P2 of unit_fs, in formal check)
    let p2 = graphql(
        &url,
        Some(&manager),
        "{ instances(first: 5, filter: { text: \"贯标推进\", states: [\"formal_check\"] }) { edges { node { id title previousGrades { title score grade } } } } }",
        json!({}),
    )
    .await;
    let node = &p2["data"]["instances"]["edges"][0]["node"];
    assert_eq!(node["title"], "顺德家电企业知识产权贯标推进", "{p2}");
    let grades: Vec<(f64, String)> = node["previousGrades"]
        .as_array()
        .unwrap_or_else(|| panic!("{p2}"))
        .iter()
        .map(|g| {
            (
                g["score"].as_f64().unwrap(),
                g["grade"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Newest evaluation first: R1 is evaluated after P10.
    assert_eq!(grades, [(94.0, "优".to_string()), (89.0, "良".to_string())]);
    let id = node["id"].as_str().unwrap().to_string();
    let query = "query($id: ID!) { instance(id: $id) { previousGrades { score } } }";
    let by = |who: &'static str| {
        let url = url.clone();
        let id = id.clone();
        async move {
            let token = login(&url, who).await;
            graphql(&url, Some(&token), query, json!({ "id": id })).await
        }
    };
    assert_eq!(
        by("city_fs").await["data"]["instance"]["previousGrades"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let own = by("unit_fs").await;
    assert_eq!(
        own["data"]["instance"]["previousGrades"],
        Value::Null,
        "{own}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_year_reports_equal_hand_computed_figures_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    demo_year_reports(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_year_reports_equal_hand_computed_figures_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    demo_year_reports(&db.url(), dir.path()).await;
}
