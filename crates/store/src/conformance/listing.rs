//! Instance listings: filters, visibility and keyset pagination.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use crate::{Instance, InstanceFilter, NewInstance, SortKey, SortOrder, Store, Visibility};

use super::Harness;
use super::fixtures::*;

pub async fn list_filters(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let alpha = new_application(s, &wf, &w.unit, &w.applicant, "Alpha 专利导航", t(0)).await;
    let beta = new_application(s, &wf, &w.unit_b, &w.applicant_b, "beta 商标品牌", t(1)).await;
    let gamma = new_application(
        s,
        &wf,
        &w.other_unit,
        &w.other_applicant,
        "gamma 100%_done",
        t(2),
    )
    .await;
    let beta = ok(
        s,
        Fire::new(
            &wf,
            &beta,
            actor(&w.applicant_b, "applicant"),
            "submit",
            t(3),
        )
        .input(submit_input()),
    )
    .await;
    let gamma = ok(
        s,
        Fire::new(
            &wf,
            &gamma,
            actor(&w.other_applicant, "applicant"),
            "withdraw",
            t(4),
        ),
    )
    .await;
    let child = s
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "change-request".into(),
            workflow_version: 1,
            state: "requested".into(),
            stage: "change".into(),
            data: json!({ "change": "延期三个月" }),
            parent_id: Some(alpha.id),
            org_id: w.unit.id,
            title: "变更申请".into(),
            created_by: w.applicant.id,
            created_at: t(5),
            due_at: Some(t(10)),
            timers: vec![],
        })
        .await
        .unwrap();
    let all = Visibility::All;
    let f = InstanceFilter::default();
    assert_eq!(
        sorted(all_ids(s, &all, &f).await),
        sorted(vec![alpha.id, beta.id, child.id]),
        "final ones are left out by default"
    );
    let with_final = InstanceFilter {
        include_final: true,
        ..Default::default()
    };
    assert_eq!(all_ids(s, &all, &with_final).await.len(), 4);
    let q = |f: InstanceFilter| InstanceFilter {
        include_final: true,
        ..f
    };
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                workflow_id: Some("change-request".into()),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert_eq!(
        sorted(
            all_ids(
                s,
                &all,
                &q(InstanceFilter {
                    states: vec!["city_review".into(), "withdrawn".into()],
                    ..Default::default()
                })
            )
            .await
        ),
        sorted(vec![beta.id, gamma.id])
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                stage: Some("closed".into()),
                ..Default::default()
            })
        )
        .await,
        vec![gamma.id]
    );
    assert_eq!(
        sorted(
            all_ids(
                s,
                &all,
                &q(InstanceFilter {
                    org_id: Some(w.unit.id),
                    ..Default::default()
                })
            )
            .await
        ),
        sorted(vec![alpha.id, child.id])
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                parent_id: Some(alpha.id),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    // Overdue at t(11): the child's deadline t(10) has passed; gamma is final.
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                overdue_at: Some(t(11)),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                overdue_at: Some(t(10)),
                ..Default::default()
            })
        )
        .await
        .is_empty(),
        "due at t(10) is not overdue at t(10)"
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                due_before: Some(t(10)),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert_eq!(
        sorted(
            all_ids(
                s,
                &all,
                &q(InstanceFilter {
                    due_after: Some(t(11)),
                    ..Default::default()
                })
            )
            .await
        ),
        sorted(vec![alpha.id, beta.id]),
        "gamma has no deadline once withdrawn"
    );
    // Text: case-insensitive in the title, also in the data; LIKE wildcards are literal.
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("ALPHA".into()),
                ..Default::default()
            })
        )
        .await,
        vec![alpha.id]
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("延期".into()),
                ..Default::default()
            })
        )
        .await,
        vec![child.id]
    );
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("100%_".into()),
                ..Default::default()
            })
        )
        .await,
        vec![gamma.id]
    );
    assert!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                text: Some("1%0".into()),
                ..Default::default()
            })
        )
        .await
        .is_empty()
    );
    // Filters combine.
    assert_eq!(
        all_ids(
            s,
            &all,
            &q(InstanceFilter {
                org_id: Some(w.unit.id),
                workflow_id: Some("funded-project".into()),
                ..Default::default()
            })
        )
        .await,
        vec![alpha.id]
    );
}

pub async fn list_visibility(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let a = new_application(s, &wf, &w.unit, &w.applicant, "a", t(0)).await;
    let b = new_application(s, &wf, &w.unit_b, &w.applicant_b, "b", t(1)).await;
    let c = new_application(s, &wf, &w.other_unit, &w.other_applicant, "c", t(2)).await;
    s.assign_expert(b.id, w.expert.id).await.unwrap();
    s.assign_expert(c.id, w.expert.id).await.unwrap();
    s.assign_expert(a.id, w.expert_b.id).await.unwrap();
    let f = InstanceFilter::default();
    assert_eq!(
        sorted(all_ids(s, &Visibility::All, &f).await),
        sorted(vec![a.id, b.id, c.id])
    );
    assert_eq!(
        all_ids(s, &Visibility::Org(w.unit.id), &f).await,
        vec![a.id],
        "an applicant sees its own unit only"
    );
    assert_eq!(
        sorted(all_ids(s, &Visibility::City(w.city.id), &f).await),
        sorted(vec![a.id, b.id]),
        "a city sees its units"
    );
    assert_eq!(
        all_ids(s, &Visibility::City(w.other_city.id), &f).await,
        vec![c.id]
    );
    assert_eq!(
        sorted(all_ids(s, &Visibility::AssignedExpert(w.expert.id), &f).await),
        sorted(vec![b.id, c.id])
    );
    assert_eq!(
        all_ids(s, &Visibility::AssignedExpert(w.admin.id), &f).await,
        Vec::<Uuid>::new()
    );
    let nothing = s
        .list_instances(
            &Visibility::Nothing,
            &f,
            &page(10, SortKey::CreatedAt, SortOrder::Asc),
        )
        .await
        .unwrap();
    assert!(nothing.items.is_empty());
    assert_eq!(nothing.total_count, 0);
    assert!(!nothing.has_next_page);
    // Visibility and filters combine: an applicant filtering on another unit gets nothing.
    let other = InstanceFilter {
        org_id: Some(w.other_unit.id),
        ..Default::default()
    };
    assert!(
        all_ids(s, &Visibility::Org(w.unit.id), &other)
            .await
            .is_empty()
    );
    let _ = &w.province;
}

pub async fn list_sorting_and_keyset_pagination(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let mut made = Vec::new();
    for i in 0..23i64 {
        // Repeated titles and creation times, so that the id tie-break matters; some
        // instances have no deadline.
        let title = format!("project {:02}", i % 7);
        let inst = s
            .create_instance(NewInstance {
                id: Uuid::now_v7(),
                workflow_id: wf.def.id.clone(),
                workflow_version: wf.def.version,
                state: "drafting".into(),
                stage: "application".into(),
                data: json!({}),
                parent_id: None,
                org_id: w.unit.id,
                title,
                created_by: w.applicant.id,
                created_at: t(i % 5),
                due_at: if i % 4 == 0 {
                    None
                } else {
                    Some(t(100 + i % 6))
                },
                timers: vec![],
            })
            .await
            .unwrap();
        made.push(inst);
    }
    for sort in [
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
        SortKey::DueAt,
        SortKey::Title,
    ] {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let key = |i: &Instance| -> Option<String> {
                match sort {
                    SortKey::CreatedAt => Some(i.created_at.to_rfc3339()),
                    SortKey::UpdatedAt => Some(i.updated_at.to_rfc3339()),
                    SortKey::DueAt => i.due_at.map(|d| d.to_rfc3339()),
                    SortKey::Title => Some(i.title.clone()),
                }
            };
            let mut expected = made.clone();
            expected.sort_by(|a, b| {
                let (ka, kb) = (key(a), key(b));
                // Rows without a key come last in either direction.
                match (ka, kb) {
                    (None, None) => match order {
                        SortOrder::Asc => a.id.cmp(&b.id),
                        SortOrder::Desc => b.id.cmp(&a.id),
                    },
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => match order {
                        SortOrder::Asc => x.cmp(&y).then(a.id.cmp(&b.id)),
                        SortOrder::Desc => y.cmp(&x).then(b.id.cmp(&a.id)),
                    },
                }
            });
            let expected: Vec<Uuid> = expected.iter().map(|i| i.id).collect();
            let mut got = Vec::new();
            let mut request = page(5, sort, order);
            let mut pages = 0;
            loop {
                let p = s
                    .list_instances(&Visibility::All, &InstanceFilter::default(), &request)
                    .await
                    .unwrap();
                assert_eq!(p.total_count, 23);
                pages += 1;
                assert!(p.items.len() <= 5);
                got.extend(p.items.iter().map(|(i, _)| i.id));
                if !p.has_next_page {
                    break;
                }
                request.after = Some(
                    p.items
                        .last()
                        .expect("a page before the end is not empty")
                        .1
                        .clone(),
                );
                assert!(pages < 10, "pagination ends");
            }
            assert_eq!(pages, 5, "{sort:?} {order:?}");
            assert_eq!(
                got, expected,
                "{sort:?} {order:?}: every row once, in order"
            );
        }
    }
    // A page of one reports whether more follow.
    let p = s
        .list_instances(
            &Visibility::All,
            &InstanceFilter::default(),
            &page(23, SortKey::CreatedAt, SortOrder::Desc),
        )
        .await
        .unwrap();
    assert_eq!(p.items.len(), 23);
    assert!(!p.has_next_page);
}
