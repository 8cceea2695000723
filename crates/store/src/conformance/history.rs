//! The audit history: the hash chain, concurrent writers, tampering and append-only storage.

use std::sync::Arc;

use crate::{Store, StoreError, audit};

use super::Harness;
use super::fixtures::*;

pub async fn history_chain_verifies(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let empty = audit::verify_all(s).await.unwrap();
    assert!(empty.is_ok());
    assert_eq!(empty.instances_checked, 0);
    for k in 0..3 {
        let inst = new_application(s, &wf, &w.unit, &w.applicant, &format!("项目 {k}"), t(0)).await;
        let inst = ok(
            s,
            Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
                .input(submit_input()),
        )
        .await;
        if k > 0 {
            // Non-ASCII reasons and input survive the round trip byte for byte.
            ok(
                s,
                Fire::new(&wf, &inst, actor(&w.city_user, "city"), "city_return", t(2))
                    .reason("请补充「绩效目标」✓"),
            )
            .await;
        }
    }
    let report = audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.instances_checked, 3);
    assert_eq!(report.records_checked, 5);
}

pub async fn race_fifty_writers(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let wf = funded_project();
    let inst = new_application(store.as_ref(), &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    let mut tasks = Vec::new();
    for k in 0..50 {
        let store = store.clone();
        let wf = wf.clone();
        let inst = inst.clone();
        let applicant = applicant.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("race-{k}");
            Fire::new(&wf, &inst, applicant, "submit", t(1))
                .input(submit_input())
                .key(&key)
                .run(store.as_ref())
                .await
        }));
    }
    let mut applied = 0;
    let mut conflicts = 0;
    for task in futures::future::join_all(tasks).await {
        match task.expect("task") {
            Ok(a) => {
                applied += 1;
                assert_eq!(a.instance.version, 1);
            }
            Err(StoreError::Conflict {
                current_version: 1,
                expected_version: 0,
            }) => conflicts += 1,
            Err(e) => panic!("each writer either wins or sees a conflict, got {e:?}"),
        }
    }
    assert_eq!((applied, conflicts), (1, 49));
    assert_eq!(store.history(inst.id).await.unwrap().len(), 1);
    assert_eq!(store.get_instance(inst.id).await.unwrap().version, 1);
    let city_timers = store
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.state_entry == 1)
        .count();
    // 3 and 1 days before the closing date, at it, the escalation the day after (issue 12).
    assert_eq!(city_timers, 4, "the new state's timers are scheduled once");
    assert_eq!(
        store
            .list_outbox(None, Some(inst.id), 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn tamper_is_detected(store: Arc<dyn Store>, h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let clean = new_application(s, &wf, &w.unit, &w.applicant, "未改动", t(0)).await;
    ok(
        s,
        Fire::new(
            &wf,
            &clean,
            actor(&w.applicant, "applicant"),
            "submit",
            t(1),
        )
        .input(submit_input()),
    )
    .await;
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "被篡改", t(0)).await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.city_user, "city"), "city_return", t(2)).reason("材料不全"),
    )
    .await;
    ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(3))
            .input(submit_input()),
    )
    .await;
    assert!(audit::verify_all(s).await.unwrap().is_ok());
    h.tamper_history(inst.id, 2).await;
    let report = audit::verify_all(s).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(
        report.failures.len(),
        1,
        "only the tampered instance: {report}"
    );
    let f = report.first_failure().unwrap();
    assert_eq!((f.instance_id, f.seq), (inst.id, 2), "{report}");
    assert!(f.what.contains("edited"), "{f}");
    assert!(report.to_string().contains(&inst.id.to_string()));
}

/// `audit verify` reads the history a page of instances at a time, in two ranges at once:
/// with pages of one to three, seven instances created at the same instant (ties broken
/// by id, also at the cut between the ranges) are each checked once, and the report is
/// the one of a single page.
pub async fn audit_pages_cover_every_instance_once(store: Arc<dyn Store>, h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let mut tampered = None;
    for k in 0..7 {
        let inst = new_application(s, &wf, &w.unit, &w.applicant, &format!("项目 {k}"), t(0)).await;
        if k % 2 == 0 {
            let inst = ok(
                s,
                Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
                    .input(submit_input()),
            )
            .await;
            if k == 4 {
                tampered = Some(inst.id);
            }
        }
    }
    let tampered = tampered.unwrap();
    h.tamper_history(tampered, 1).await;
    // The two ranges meet after the third instance in (created_at, id) order.
    assert_eq!(s.audit_split(audit::AUDIT_RANGES).await.unwrap().len(), 1);
    let one_page = audit::verify_all_paged(s, 100).await.unwrap();
    assert_eq!(one_page.instances_checked, 7);
    assert_eq!(one_page.records_checked, 4);
    for size in [1, 2, 3] {
        let paged = audit::verify_all_paged(s, size).await.unwrap();
        assert_eq!(paged, one_page, "pages of {size}");
    }
    assert_eq!(one_page.failures.len(), 1, "{one_page}");
    assert_eq!(one_page.failures[0].instance_id, tampered);
}

pub async fn history_is_append_only(store: Arc<dyn Store>, h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let refused = h.raw_update_history(inst.id, 1).await;
    assert!(
        matches!(&refused, Err(msg) if msg.contains("append-only")),
        "the database refuses edits to the history: {refused:?}"
    );
    assert!(audit::verify_all(s).await.unwrap().is_ok());
}
