//! Work queues: timer claims and leases, the outbox, cron ticks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;

use crate::{DeliveryOutcome, OutboxStatus, Store, TimerStatus};

use super::Harness;
use super::fixtures::*;

pub async fn claim_due_timers_and_leases(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let first = &timers[0]; // reminder:7d
    let lease = Duration::from_secs(300);
    assert!(
        s.claim_due_timers(first.fire_at - chrono::Duration::seconds(1), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let c1 = s.claim_due_timers(first.fire_at, 10, lease).await.unwrap();
    assert_eq!(c1.len(), 1, "only what is due");
    assert_eq!(c1[0].timer.id, first.id);
    assert_eq!(c1[0].timer.status, TimerStatus::Claimed);
    assert!(
        s.claim_due_timers(first.fire_at, 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "held by the lease"
    );
    // The first claimer stalls; after its lease another one takes over with a new token.
    let later = first.fire_at + chrono::Duration::seconds(301);
    let c2 = s.claim_due_timers(later, 10, lease).await.unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].timer.id, first.id);
    assert!(c2[0].token > c1[0].token, "a new fencing token");
    let msg = message("reminder-1", later);
    assert!(
        !s.complete_timer(first.id, c1[0].token, vec![msg.clone()], later)
            .await
            .unwrap(),
        "a stale token is refused"
    );
    assert!(
        s.list_outbox(None, None, 10).await.unwrap().is_empty(),
        "and enqueues nothing"
    );
    assert!(
        s.complete_timer(first.id, c2[0].token, vec![msg], later)
            .await
            .unwrap()
    );
    assert_eq!(s.list_outbox(None, None, 10).await.unwrap().len(), 1);
    assert!(
        !s.complete_timer(first.id, c2[0].token, vec![], later)
            .await
            .unwrap(),
        "done once"
    );
    let done = s
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == first.id)
        .unwrap();
    assert_eq!(done.status, TimerStatus::Done);
    assert_eq!(done.fired_at, Some(later));
    // The limit is respected, earliest first.
    let end = inst.due_at.unwrap() + chrono::Duration::days(1);
    let some = s.claim_due_timers(end, 2, lease).await.unwrap();
    assert_eq!(some.len(), 2);
    assert_eq!(some[0].timer.key, "reminder:3d");
    assert_eq!(some[1].timer.key, "reminder:1d");
    assert_eq!(s.claim_due_timers(end, 10, lease).await.unwrap().len(), 2);
}

/// Several schedulers claiming at once: every due timer and message is claimed exactly
/// once between them.
pub async fn concurrent_claims_never_overlap(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let wf = funded_project();
    for k in 0..6 {
        new_application(
            store.as_ref(),
            &wf,
            &w.unit,
            &w.applicant,
            &format!("项目 {k}"),
            t(0),
        )
        .await;
    }
    let messages: Vec<_> = (0..30).map(|k| message(&format!("m{k}"), t(0))).collect();
    store.enqueue(messages).await.unwrap();
    // Everything of the drafting ladders is due by the closing day's end: 6 × 5 timers.
    let at = Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut timers = Vec::new();
            let mut messages = Vec::new();
            loop {
                let t = store
                    .claim_due_timers(at, 3, Duration::from_secs(600))
                    .await
                    .unwrap();
                let m = store
                    .claim_outbox(at, 3, Duration::from_secs(600))
                    .await
                    .unwrap();
                if t.is_empty() && m.is_empty() {
                    break;
                }
                timers.extend(t.into_iter().map(|c| c.timer.id));
                messages.extend(m.into_iter().map(|c| c.message.id));
            }
            (timers, messages)
        }));
    }
    let mut timers = Vec::new();
    let mut messages = Vec::new();
    for task in futures::future::join_all(tasks).await {
        let (t, m) = task.expect("claimer");
        timers.extend(t);
        messages.extend(m);
    }
    let distinct: HashSet<_> = timers.iter().collect();
    assert_eq!(
        (timers.len(), distinct.len()),
        (30, 30),
        "each timer claimed once"
    );
    let distinct: HashSet<_> = messages.iter().collect();
    assert_eq!(
        (messages.len(), distinct.len()),
        (30, 30),
        "each message claimed once"
    );
}

pub async fn outbox_claim_and_finish(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let now = t(0);
    let lease = Duration::from_secs(60);
    let n = s
        .enqueue(vec![
            message("a", now),
            message("b", now),
            message("later", now + chrono::Duration::hours(1)),
        ])
        .await
        .unwrap();
    assert_eq!(n, 3);
    let claimed = s.claim_outbox(now, 10, lease).await.unwrap();
    let keys: Vec<_> = claimed
        .iter()
        .map(|c| c.message.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), 2, "only messages due now: {keys:?}");
    assert!(
        claimed
            .iter()
            .all(|c| c.message.status == OutboxStatus::Sending && c.message.attempts == 1)
    );
    assert!(
        s.claim_outbox(now, 10, lease).await.unwrap().is_empty(),
        "held by the lease"
    );
    let (a, b) = (&claimed[0], &claimed[1]);
    assert!(
        s.finish_delivery(a.message.id, a.token, DeliveryOutcome::Sent, now)
            .await
            .unwrap()
    );
    assert!(
        !s.finish_delivery(a.message.id, a.token, DeliveryOutcome::Sent, now)
            .await
            .unwrap(),
        "finished once"
    );
    let retry_at = now + chrono::Duration::minutes(10);
    assert!(
        s.finish_delivery(
            b.message.id,
            b.token,
            DeliveryOutcome::Retry {
                next_attempt_at: retry_at,
                error: "421 try later".into()
            },
            now,
        )
        .await
        .unwrap()
    );
    let sent = s
        .list_outbox(Some(OutboxStatus::Sent), None, 10)
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].sent_at, Some(now));
    let pending = s
        .list_outbox(Some(OutboxStatus::Pending), None, 10)
        .await
        .unwrap();
    let retried = pending.iter().find(|m| m.id == b.message.id).unwrap();
    assert_eq!(retried.next_attempt_at, retry_at);
    assert_eq!(retried.last_error.as_deref(), Some("421 try later"));
    assert!(
        s.claim_outbox(now + chrono::Duration::minutes(5), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.claim_outbox(retry_at, 10, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message.attempts, 2);
    // A sender that stalls past its lease loses the message to the next one.
    let stolen = s
        .claim_outbox(retry_at + chrono::Duration::seconds(61), 10, lease)
        .await
        .unwrap();
    assert_eq!(stolen.len(), 1);
    assert!(stolen[0].token > again[0].token);
    assert!(
        !s.finish_delivery(
            again[0].message.id,
            again[0].token,
            DeliveryOutcome::Sent,
            retry_at
        )
        .await
        .unwrap()
    );
    assert!(
        s.finish_delivery(
            stolen[0].message.id,
            stolen[0].token,
            DeliveryOutcome::Dead {
                error: "550 no such user".into()
            },
            retry_at
        )
        .await
        .unwrap()
    );
    let dead = s
        .list_outbox(Some(OutboxStatus::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(dead[0].attempts, 3);
    assert!(
        s.claim_outbox(now + chrono::Duration::days(1), 10, lease)
            .await
            .unwrap()
            .iter()
            .all(|c| c.message.idempotency_key == "later")
    );
}

pub async fn enqueue_deduplicates_by_key(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let now = t(0);
    assert_eq!(
        s.enqueue(vec![message("x", now), message("y", now)])
            .await
            .unwrap(),
        2
    );
    let mut changed = message("x", now);
    changed.to_address = "other@example.org".into();
    assert_eq!(
        s.enqueue(vec![changed, message("z", now)]).await.unwrap(),
        1
    );
    let all = s.list_outbox(None, None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    let x = all.iter().find(|m| m.idempotency_key == "x").unwrap();
    assert_eq!(
        x.to_address, "someone@example.org",
        "the first message is kept"
    );
    assert_eq!(x.context, json!({ "count": 3 }));
    assert_eq!(
        s.list_outbox(None, None, 2).await.unwrap().len(),
        2,
        "limit"
    );
}

pub async fn record_tick_once(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let tick = t(0);
    assert_eq!(s.last_tick("digest").await.unwrap(), None);
    assert!(
        s.record_tick("digest", tick, vec![message("digest:1", tick)])
            .await
            .unwrap()
    );
    assert!(
        !s.record_tick("digest", tick, vec![message("digest:1b", tick)])
            .await
            .unwrap(),
        "another process ran it"
    );
    assert_eq!(
        s.list_outbox(None, None, 10).await.unwrap().len(),
        1,
        "its messages are not enqueued"
    );
    assert!(
        s.record_tick("digest", tick + chrono::Duration::days(1), vec![])
            .await
            .unwrap()
    );
    assert!(
        s.record_tick("escalations", tick, vec![]).await.unwrap(),
        "ticks are per schedule"
    );
    assert_eq!(
        s.last_tick("digest").await.unwrap(),
        Some(tick + chrono::Duration::days(1))
    );
}

/// A scheduler shutting down gives its claims back: the rows are pending again at once
/// (a message without counting the attempt), a stale token changes nothing, and the
/// counts for `/metrics` follow.
pub async fn claims_are_released_and_counted(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let first = &timers[0];
    let lease = Duration::from_secs(300);
    let now = first.fire_at;
    s.enqueue(vec![message("m", now)]).await.unwrap();

    let stats = s.queue_stats(now).await.unwrap();
    assert_eq!(stats.timers_due, 1, "{stats:?}");
    assert_eq!(stats.timers_pending, timers.len() as i64, "{stats:?}");
    assert_eq!(stats.timers_claimed, 0);
    assert!(
        stats.outbox.contains(&(OutboxStatus::Pending, 1)),
        "{stats:?}"
    );
    assert!(
        stats.outbox.contains(&(OutboxStatus::Dead, 0)),
        "every status listed"
    );

    let timer = s.claim_due_timers(now, 10, lease).await.unwrap();
    let msg = s.claim_outbox(now, 10, lease).await.unwrap();
    assert_eq!((timer.len(), msg.len()), (1, 1));
    let stats = s.queue_stats(now).await.unwrap();
    assert_eq!((stats.timers_due, stats.timers_claimed), (0, 1));
    assert!(stats.outbox.contains(&(OutboxStatus::Sending, 1)));

    // A stale token releases nothing.
    assert_eq!(
        s.release_claims(
            &[(timer[0].timer.id, timer[0].token + 1)],
            &[(msg[0].message.id, msg[0].token + 1)]
        )
        .await
        .unwrap(),
        0
    );
    assert_eq!(
        s.release_claims(
            &[(timer[0].timer.id, timer[0].token)],
            &[(msg[0].message.id, msg[0].token)]
        )
        .await
        .unwrap(),
        2
    );
    // Claimable again at once, well inside the old lease.
    let again = s.claim_due_timers(now, 10, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].token > timer[0].token, "a new fencing token");
    let again = s.claim_outbox(now, 10, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].message.attempts, 1,
        "the released attempt was not counted"
    );
}
