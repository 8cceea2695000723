//! Batched work (issue 16): timers completed in batches keep their fencing and are
//! completed (and their messages enqueued) exactly once, also with two schedulers
//! racing; many concurrent writers all commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::{Store, TimerStatus};

use super::Harness;
use super::fixtures::*;

/// A batch completes exactly the timers whose token still holds, enqueues the messages
/// of those only, and a repeated batch changes nothing.
pub async fn complete_timers_batch_is_fenced(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "批量", t(0)).await;
    let lease = Duration::from_secs(300);
    let at = Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap();
    let first = s.claim_due_timers(at, 3, lease).await.unwrap();
    assert_eq!(first.len(), 3, "three timers of the ladder are due");
    // The first claimer stalls: after its lease the first timer is claimed again.
    let later = at + chrono::Duration::seconds(301);
    let retaken = s.claim_due_timers(later, 1, lease).await.unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].timer.id, first[0].timer.id);
    let (a, b, c) = (&first[0], &first[1], &first[2]);
    let batch = vec![
        (a.timer.id, a.token, vec![message("a-1", later)]),
        (
            b.timer.id,
            b.token,
            vec![message("b-1", later), message("b-2", later)],
        ),
        (c.timer.id, c.token, vec![]),
    ];
    let done = s.complete_timers(batch.clone(), later).await.unwrap();
    assert_eq!(done, vec![false, true, true], "the stale token is refused");
    let mut keys: Vec<String> = s
        .list_outbox(None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.idempotency_key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["b-1", "b-2"], "only the completed timers' messages");
    let status: HashMap<_, _> = s
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id, (t.status, t.fired_at)))
        .collect();
    assert_eq!(
        status[&a.timer.id].0,
        TimerStatus::Claimed,
        "held by the other"
    );
    assert_eq!(status[&b.timer.id], (TimerStatus::Done, Some(later)));
    assert_eq!(status[&c.timer.id], (TimerStatus::Done, Some(later)));
    // Again: nothing more is completed or enqueued.
    let again = s.complete_timers(batch, later).await.unwrap();
    assert_eq!(again, vec![false, false, false]);
    assert_eq!(s.list_outbox(None, None, 10).await.unwrap().len(), 2);
    // The holder of the new token completes it.
    let done = s
        .complete_timers(
            vec![(a.timer.id, retaken[0].token, vec![message("a-1", later)])],
            later,
        )
        .await
        .unwrap();
    assert_eq!(done, vec![true]);
    assert_eq!(s.list_outbox(None, None, 10).await.unwrap().len(), 3);
    assert!(s.complete_timers(vec![], later).await.unwrap().is_empty());
}

/// Two schedulers completing the same claimed batch at once: each timer is completed by
/// exactly one of them, and each message is enqueued once.
pub async fn complete_timers_racing_schedulers(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let wf = funded_project();
    for k in 0..4 {
        new_application(
            store.as_ref(),
            &wf,
            &w.unit,
            &w.applicant,
            &format!("竞争 {k}"),
            t(0),
        )
        .await;
    }
    let at = Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap();
    let claimed = store
        .claim_due_timers(at, 100, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 20, "4 × 5 timers of the drafting ladders");
    let batch: Vec<_> = claimed
        .iter()
        .map(|c| {
            (
                c.timer.id,
                c.token,
                vec![message(&format!("timer:{}", c.timer.id), at)],
            )
        })
        .collect();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            let batch = batch.clone();
            tokio::spawn(async move { store.complete_timers(batch, at).await.unwrap() })
        })
        .collect();
    let results: Vec<Vec<bool>> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|r| r.expect("racer"))
        .collect();
    for i in 0..batch.len() {
        assert_eq!(
            results.iter().filter(|r| r[i]).count(),
            1,
            "timer {i} is completed by exactly one scheduler: {results:?}"
        );
    }
    let outbox = store.list_outbox(None, None, 100).await.unwrap();
    assert_eq!(outbox.len(), 20, "one message per timer");
}

/// Many writers at once (transitions, new instances, single-statement writes) all
/// commit, and readers are answered meanwhile.
pub async fn many_concurrent_writers_all_commit(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = Arc::new(world(store.as_ref()).await);
    let wf = funded_project();
    let mut tasks = Vec::new();
    for k in 0..16 {
        let (store, w, wf) = (store.clone(), w.clone(), wf.clone());
        tasks.push(tokio::spawn(async move {
            let inst = new_application(
                store.as_ref(),
                &wf,
                &w.unit,
                &w.applicant,
                &format!("并发 {k}"),
                t(0),
            )
            .await;
            store
                .enqueue(vec![message(&format!("w{k}"), t(0))])
                .await
                .unwrap();
            store.get_instance(inst.id).await.unwrap();
            inst.id
        }));
    }
    let mut ids = Vec::new();
    for task in futures::future::join_all(tasks).await {
        ids.push(task.expect("writer"));
    }
    assert_eq!(store.get_instances(&ids).await.unwrap().len(), 16);
    assert_eq!(store.list_outbox(None, None, 100).await.unwrap().len(), 16);
}
