//! The expert pool: profiles, declared collaborations and an applicant's exclusions.

use super::*;

pub async fn expert_profiles_upsert_and_list(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    world(s).await;
    let e = expert_user(s, "e_profile", None).await;
    assert_eq!(s.expert_profile(e.id).await.unwrap(), None);
    let created = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: e.id,
            categories: vec![4, 2, 4],
            keywords: vec!["专利运营".into(), "质押融资".into()],
            workload_cap: 6,
            status: "active".into(),
            at: t(0),
        })
        .await
        .unwrap();
    assert_eq!(created.categories, vec![2, 4], "sorted, without repeats");
    assert_eq!(created.keywords, vec!["专利运营", "质押融资"]);
    assert_eq!(
        (created.workload_cap, created.status.as_str()),
        (6, "active")
    );
    let updated = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: e.id,
            categories: vec![8],
            keywords: vec![],
            workload_cap: 2,
            status: "suspended".into(),
            at: t(5),
        })
        .await
        .unwrap();
    assert_eq!(updated.created_at, created.created_at, "created once");
    assert_eq!(updated.updated_at, t(5));
    assert_eq!(
        (
            updated.categories.clone(),
            updated.workload_cap,
            updated.status.as_str()
        ),
        (vec![8], 2, "suspended")
    );
    assert_eq!(s.expert_profile(e.id).await.unwrap(), Some(updated.clone()));
    let other = expert_user(s, "e_profile_2", None).await;
    profile(s, &other, 3, "retired").await;
    let all = s.expert_profiles().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.windows(2).all(|w| w[0].user_id < w[1].user_id),
        "by user id"
    );
    // A bad status or a user that does not exist is refused by the database, and the
    // stored profiles stay as they were.
    let profiles = s.expert_profiles().await.unwrap();
    let bad = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: e.id,
            categories: vec![1],
            keywords: vec![],
            workload_cap: 2,
            status: "on_holiday".into(),
            at: t(6),
        })
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    let nobody = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: Uuid::now_v7(),
            categories: vec![1],
            keywords: vec![],
            workload_cap: 2,
            status: "active".into(),
            at: t(6),
        })
        .await;
    assert!(matches!(nobody, Err(StoreError::Invalid(_))), "{nobody:?}");
    assert_eq!(s.expert_profiles().await.unwrap(), profiles, "unchanged");
}

pub async fn collaborations_are_recorded(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let until: NaiveDate = "2023-12-31".parse().unwrap();
    let c = s
        .add_collaboration(NewCollaboration {
            expert_id: w.expert.id,
            org_id: w.unit.id,
            until,
            note: Some("联合课题".into()),
            at: t(0),
        })
        .await
        .unwrap();
    s.add_collaboration(NewCollaboration {
        expert_id: w.expert_b.id,
        org_id: w.unit_b.id,
        until,
        note: None,
        at: t(0),
    })
    .await
    .unwrap();
    let dup = s
        .add_collaboration(NewCollaboration {
            expert_id: w.expert.id,
            org_id: w.unit.id,
            until,
            note: None,
            at: t(1),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
    let mine = s.collaborations(Some(w.expert.id)).await.unwrap();
    assert_eq!(mine, vec![c]);
    assert_eq!(mine[0].until, until);
    assert_eq!(s.collaborations(None).await.unwrap().len(), 2);
}

pub async fn exclusions_replace_and_call_instances(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let a = new_application(s, &wf, &w.unit, &w.applicant, "甲", t(0)).await;
    let b = new_application(s, &wf, &w.unit_b, &w.applicant_b, "乙", t(1)).await;
    assert!(s.exclusions(a.id).await.unwrap().is_empty());
    s.set_exclusions(a.id, &[w.unit_b.id, w.other_unit.id], w.applicant.id, t(2))
        .await
        .unwrap();
    let mut expected = vec![w.unit_b.id, w.other_unit.id];
    expected.sort();
    assert_eq!(s.exclusions(a.id).await.unwrap(), expected);
    s.set_exclusions(a.id, &[w.city.id], w.applicant.id, t(3))
        .await
        .unwrap();
    assert_eq!(
        s.exclusions(a.id).await.unwrap(),
        vec![w.city.id],
        "replaced"
    );
    assert!(s.exclusions(b.id).await.unwrap().is_empty());
    let unknown = s
        .set_exclusions(a.id, &[Uuid::now_v7()], w.applicant.id, t(4))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Invalid(_))),
        "an unknown organisation is refused: {unknown:?}"
    );
    assert_eq!(
        s.exclusions(a.id).await.unwrap(),
        vec![w.city.id],
        "unchanged"
    );

    let ids: Vec<Uuid> = s
        .call_instances("funded-project", "2024-call")
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![a.id, b.id], "oldest first");
    assert!(
        s.call_instances("funded-project", "2023-call")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.call_instances("demand-collection", "2024-call")
            .await
            .unwrap()
            .is_empty()
    );
}
