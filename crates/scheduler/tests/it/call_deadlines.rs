//! Issue 12: the call owns the deadlines, on SQLite and PostgreSQL, with the shipped
//! `funded-project` workflow, the scheduler firing its timers on the manual clock and a
//! real SMTP server. The city forwards by the province's closing date (reminders before
//! it, escalation to the province after it, forwarding after it refused); a return after
//! the closing date opens the call's correction window (reminders, a lapse at its end).
//! The demand collection (`demand-collection`) follows the same date: the city forwards a
//! demand by the province's closing date, not a fixed number of working days after the
//! unit submitted it.

use crate::common;

use common::{Backend, CallWorld, local};
use grantflow_domain::engine::EngineError;
use grantflow_service::ServiceError;
use grantflow_service::programme::OpenCall;
use grantflow_store::{Instance, StoreError, User};
use grantflow_testkit::{CATALOGUE_2022, call_of, registry_of};
use serde_json::{Value, json};

const TITLE: &str = "顺德家电专利导航项目";

struct W {
    base: CallWorld,
}
grantflow_testkit::extends!(W, base: CallWorld);

async fn world(backend: Backend) -> W {
    let call = OpenCall {
        // The call's own correction window: seven days.
        correction_window_days: Some(7),
        ..call_of(CATALOGUE_2022)
    };
    let registry = registry_of(&["funded-project", "demand-collection"]);
    W {
        base: CallWorld::new(backend, registry, call).await,
    }
}

fn file() -> Value {
    json!({ "name": "申报书.pdf", "sha256": "ab".repeat(32), "size": 2048 })
}

impl W {
    async fn fire(
        &self,
        who: &User,
        id: uuid::Uuid,
        event: &str,
        input: Value,
    ) -> Result<Instance, ServiceError> {
        self.fire_with(who, id, event, input, Some("材料不全"))
            .await
    }

    /// An application of the unit for a 保留省级 item, submitted to the city on 06-20.
    async fn submitted(&self) -> Instance {
        let inst = self
            .apply("funded-project", TITLE, Some("2022-2-1-5"))
            .await;
        self.clock.set(local("2024-06-20", "10:00"));
        let input = json!({
            "project_name": TITLE, "budget": "300000", "application_files": [file()],
            "indicators": [
                { "name": "导航报告", "category": "output_quantity", "target": 3 },
                { "name": "服务企业", "category": "effect_social", "target": 20 }
            ],
        });
        self.fire(&self.applicant, inst.id, "submit", input)
            .await
            .unwrap()
    }
}

async fn city_forwards_by_the_provinces_closing_date(backend: Backend) {
    let w = world(backend).await;
    let inst = w.submitted().await;
    assert_eq!(inst.state, "city_review");
    // The city's deadline is the province's closing date, at the end of 06-28.
    assert_eq!(inst.due_at, Some(local("2024-06-29", "00:00")));
    for (day, time) in [
        ("2024-06-25", "09:00"),
        ("2024-06-27", "09:00"),
        ("2024-06-28", "09:00"),
        ("2024-06-29", "09:00"),
        ("2024-06-30", "09:00"),
    ] {
        w.run_at(local(day, time)).await;
    }
    let city = "foshan@example.gov.cn".to_string();
    let manager = "manager@example.gov.cn".to_string();
    assert_eq!(
        w.deadline_mail(),
        vec![
            (
                city.clone(),
                format!("【截止提醒】{TITLE}：地市审核推荐还有 3 天截止")
            ),
            (
                city.clone(),
                format!("【截止提醒】{TITLE}：地市审核推荐还有 1 天截止")
            ),
            (city.clone(), format!("【今日截止】{TITLE}：地市审核推荐")),
            (
                manager,
                // The late party is the city bureau, and the province is told.
                format!("【逾期督办】地市市场监管局：{TITLE}（地市审核推荐）已逾期 1 天")
            ),
        ]
    );
    // Forwarding after the province's deadline is refused.
    match w
        .fire(
            &w.city,
            inst.id,
            "recommend",
            json!({ "city_opinion": "同意" }),
        )
        .await
    {
        Err(ServiceError::Store(StoreError::Engine(EngineError::DeadlinePassed {
            due_at,
            ..
        }))) => {
            assert_eq!(due_at, local("2024-06-29", "00:00"));
        }
        other => panic!("{other:?}"),
    }
    let _ = &w.manager;
}

async fn a_return_after_closing_opens_the_calls_correction_window(backend: Backend) {
    let w = world(backend).await;
    let lapsing = w.submitted().await;
    let corrected = w.submitted().await;
    // Returned before the closing date: back to drafting, due at the closing date.
    let early = w.submitted().await;
    let early = w
        .fire(&w.city, early.id, "city_return", json!({}))
        .await
        .unwrap();
    assert_eq!(early.state, "drafting");
    assert_eq!(early.due_at, Some(local("2024-06-29", "00:00")));
    // Returned after it: the call's seven days, from 06-29 to the end of 07-06.
    w.clock.set(local("2024-06-29", "10:00"));
    for inst in [&lapsing, &corrected] {
        let back = w
            .fire(&w.city, inst.id, "city_return", json!({}))
            .await
            .unwrap();
        assert_eq!(back.state, "city_correction");
        assert_eq!(back.data["correction_due"], "2024-07-06");
        assert_eq!(back.due_at, Some(local("2024-07-07", "00:00")));
    }
    // Corrected in time: back to the city, which may forward until the window's end.
    w.clock.set(local("2024-07-02", "10:00"));
    let again = w
        .fire(
            &w.applicant,
            corrected.id,
            "resubmit_to_city",
            json!({ "summary": "已补充材料" }),
        )
        .await
        .unwrap();
    assert_eq!(again.state, "city_review");
    assert_eq!(again.due_at, Some(local("2024-07-07", "00:00")));
    let forwarded = w
        .fire(&w.city, corrected.id, "recommend", json!({}))
        .await
        .unwrap();
    assert_eq!(forwarded.state, "formal_check");
    // The other one: reminders, then the lapse when the window ends.
    let before = w.deadline_mail().len();
    for (day, time) in [
        ("2024-07-03", "09:00"),
        ("2024-07-05", "09:00"),
        ("2024-07-06", "09:00"),
        ("2024-07-07", "00:00"),
        ("2024-07-07", "09:00"),
        ("2024-07-08", "09:00"),
    ] {
        w.run_at(local(day, time)).await;
    }
    let applicant = "shunde@example.gov.cn".to_string();
    let city = "foshan@example.gov.cn".to_string();
    let mail: Vec<_> = w.deadline_mail()[before..]
        .iter()
        .filter(|(_, subject)| subject.contains("截止后退回补正"))
        .cloned()
        .collect();
    assert_eq!(
        mail,
        vec![
            (
                applicant.clone(),
                format!("【截止提醒】{TITLE}：截止后退回补正还有 3 天截止")
            ),
            (
                applicant.clone(),
                format!("【截止提醒】{TITLE}：截止后退回补正还有 1 天截止")
            ),
            (
                applicant.clone(),
                format!("【今日截止】{TITLE}：截止后退回补正")
            ),
            (city, format!("【超时处理】{TITLE}：截止后退回补正")),
            (applicant, format!("【超时处理】{TITLE}：截止后退回补正")),
        ]
    );
    let lapsed = w.services.store.get_instance(lapsing.id).await.unwrap();
    assert_eq!(lapsed.state, "not_submitted");
    let last = w
        .services
        .store
        .history(lapsing.id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor_id.as_str()),
        ("correction_lapsed", "scheduler")
    );
    let _ = &w.manager;
}

const DEMAND: &str = "商标品牌培育指导站建设";

impl W {
    /// A demand row of the call (feedback on an item of the catalogue), submitted to the
    /// city on `day` at 10:00.
    async fn demand_submitted(&self, day: &str) -> Instance {
        let inst = self.apply("demand-collection", DEMAND, None).await;
        assert_eq!(inst.data["forward_by"], "2024-06-28", "set from the call");
        self.clock.set(local(day, "10:00"));
        self.fire(
            &self.applicant,
            inst.id,
            "submit",
            json!({
                "category": "四、知识产权运用", "project_name": DEMAND, "direction": "品牌培育",
                "applicant_name": "顺德家电产业知识产权联盟", "catalogue_ref": "2022-2-1-5",
                "comments": "建议申报主体扩大到行业协会"
            }),
        )
        .await
        .unwrap()
    }
}

async fn city_forwards_demands_by_the_provinces_closing_date(backend: Backend) {
    let w = world(backend).await;
    // Submitted early (06-03): due at the end of the call's closing date (06-28), not 5
    // working days later (06-11).
    let early = w.demand_submitted("2024-06-03").await;
    assert_eq!(early.state, "city_review");
    assert_eq!(early.due_at, Some(local("2024-06-29", "00:00")));
    // Forwarded in time: on to the province.
    w.clock.set(local("2024-06-24", "15:00"));
    let forwarded = w
        .fire(
            &w.city,
            early.id,
            "forward",
            json!({ "city_notes": "同意报送" }),
        )
        .await
        .unwrap();
    assert_eq!(forwarded.state, "province_review");
    // Submitted on 06-27 (Thursday): the city still has until the end of 06-28.
    let late = w.demand_submitted("2024-06-27").await;
    assert_eq!(late.due_at, Some(local("2024-06-29", "00:00")));
    for (day, time) in [
        ("2024-06-28", "09:00"),
        ("2024-06-29", "09:00"),
        ("2024-06-30", "09:00"),
    ] {
        w.run_at(local(day, time)).await;
    }
    let city = "foshan@example.gov.cn".to_string();
    let manager = "manager@example.gov.cn".to_string();
    let mail: Vec<_> = w
        .deadline_mail()
        .into_iter()
        .filter(|(_, subject)| subject.contains("地市审核统筹"))
        .collect();
    // The late one: due today, then the province alerted. (Its 3- and 1-day reminders
    // fell before its submission.)
    assert_eq!(
        mail,
        vec![
            (city, format!("【今日截止】{DEMAND}：地市审核统筹")),
            (
                manager,
                format!("【逾期督办】地市市场监管局：{DEMAND}（地市审核统筹）已逾期 1 天")
            ),
        ]
    );
    // Forwarding after the province's deadline is refused, and nothing changes.
    match w
        .fire(&w.city, late.id, "forward", json!({ "city_notes": "同意" }))
        .await
    {
        Err(ServiceError::Store(StoreError::Engine(EngineError::DeadlinePassed {
            due_at,
            ..
        }))) => assert_eq!(due_at, local("2024-06-29", "00:00")),
        other => panic!("{other:?}"),
    }
    let still = w.services.store.get_instance(late.id).await.unwrap();
    assert_eq!(
        (still.state.as_str(), still.version),
        ("city_review", late.version)
    );
}

grantflow_testkit::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    city_forwards_by_the_provinces_closing_date,
    city_forwards_demands_by_the_provinces_closing_date,
    a_return_after_closing_opens_the_calls_correction_window,
);
