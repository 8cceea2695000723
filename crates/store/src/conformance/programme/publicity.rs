//! 公示 objections hold approval inside the transition's transaction: a transition asked to
//! wait for objections (`TransitionRequest::refuse_while_objected`) counts them with the
//! instance locked, so an objection committed just before is never missed, and one
//! submitted just after finds the project gone from publicity.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::public::{ObjectionStatus, PublicObjection, ResolveObjection};

const UNDER_PUBLICITY: [&str; 2] = ["publicity", "objection_review"];

/// A project of `w.unit` in `publicity` (approved, its 公示 running).
async fn under_publicity(s: &dyn Store, w: &crate::conformance::World, title: &str) -> Instance {
    let wf = funded_project();
    s.create_instance(NewInstance {
        id: Uuid::now_v7(),
        workflow_id: wf.def.id.clone(),
        workflow_version: wf.def.version,
        state: "publicity".into(),
        stage: "approval".into(),
        data: json!({
            "call_id": "2024-call", "part": "retained_provincial", "applicant_kind": "unit",
            "budget": "300000.00", "approved_budget": "250000.00", "approved_on": "2024-06-03",
        }),
        parent_id: None,
        org_id: w.unit.id,
        title: title.into(),
        created_by: w.applicant.id,
        created_at: t(0),
        due_at: None,
        timers: Vec::new(),
    })
    .await
    .unwrap()
}

async fn object(s: &dyn Store, instance_id: Uuid, hours: i64) -> Option<PublicObjection> {
    let states: Vec<String> = UNDER_PUBLICITY.iter().map(ToString::to_string).collect();
    s.submit_objection(
        PublicObjection {
            id: Uuid::now_v7(),
            instance_id,
            name: "张三".into(),
            contact: "13800000000".into(),
            reason: "申报材料与实际不符".into(),
            submitted_at: t(hours),
            status: ObjectionStatus::Open,
            resolution: None,
            resolved_by: None,
            resolved_at: None,
        },
        "funded-project",
        &states,
    )
    .await
    .unwrap()
}

/// An open objection refuses the held transition with the count and writes nothing; once
/// it is resolved the same transition passes. Transitions not asked to wait pass anyway.
pub async fn open_objections_hold_the_transition(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let manager = actor(&w.manager, "manager");
    let p = under_publicity(s, &w, "公示中的项目").await;
    let records = s.history(p.id).await.unwrap().len();
    let first = object(s, p.id, 1).await.expect("stored under publicity");
    object(s, p.id, 2).await.expect("a second one");
    let refused = Fire::new(&wf, &p, manager.clone(), "publicity_ended", t(3))
        .held_by_objections()
        .run(s)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::ObjectionsOpen { open: 2 }),
        "{refused:?}"
    );
    assert_eq!(s.get_instance(p.id).await.unwrap(), p, "nothing written");
    assert_eq!(s.history(p.id).await.unwrap().len(), records);
    for (i, o) in s
        .objections(Some(p.id), true, 10)
        .await
        .unwrap()
        .into_iter()
        .enumerate()
    {
        s.resolve_objection(ResolveObjection {
            objection_id: o.id,
            outcome: ObjectionStatus::Dismissed,
            reason: "经核实，异议不成立".into(),
            resolved_by: w.manager.id,
            at: t(4 + i as i64),
        })
        .await
        .unwrap()
        .expect("was open");
    }
    assert_eq!(
        s.get_objection(first.id).await.unwrap().status,
        ObjectionStatus::Dismissed
    );
    let ended = Fire::new(&wf, &p, manager.clone(), "publicity_ended", t(6))
        .held_by_objections()
        .run(s)
        .await
        .unwrap()
        .instance;
    assert_eq!(ended.state, "task_book");
    // Out of publicity: the public can no longer object.
    assert_eq!(object(s, p.id, 7).await, None);
    // A transition not asked to wait is not held.
    let q = under_publicity(s, &w, "另一个项目").await;
    object(s, q.id, 1).await.unwrap();
    let q = Fire::new(&wf, &q, manager, "publicity_ended", t(2))
        .run(s)
        .await
        .unwrap()
        .instance;
    assert_eq!(q.state, "task_book");
}

/// An objection and the end of publicity, started at once, many times over: either the
/// objection is stored and the transition refused, or the transition commits and the
/// objection is turned away; never both, never neither.
pub async fn an_objection_racing_the_transition_is_never_lost(
    store: Arc<dyn Store>,
    _h: &dyn Harness,
) {
    let w = world(store.as_ref()).await;
    let wf = funded_project();
    const ROUNDS: usize = 12;
    let mut seen = (0, 0);
    for round in 0..ROUNDS {
        let p = under_publicity(store.as_ref(), &w, &format!("项目{round}")).await;
        let barrier = Arc::new(Barrier::new(2));
        let objecting = {
            let (store, barrier, id) = (store.clone(), barrier.clone(), p.id);
            tokio::spawn(async move {
                barrier.wait().await;
                object(store.as_ref(), id, 1).await
            })
        };
        let ending = {
            let (store, barrier, wf) = (store.clone(), barrier.clone(), wf.clone());
            let (p, manager) = (p.clone(), actor(&w.manager, "manager"));
            tokio::spawn(async move {
                barrier.wait().await;
                Fire::new(&wf, &p, manager, "publicity_ended", t(1))
                    .held_by_objections()
                    .run(store.as_ref())
                    .await
            })
        };
        let objection = objecting.await.unwrap();
        let ended = ending.await.unwrap();
        let now = store.get_instance(p.id).await.unwrap();
        match (&objection, &ended) {
            (Some(_), Err(StoreError::ObjectionsOpen { open: 1 })) => {
                assert_eq!(now.state, "publicity", "round {round}");
                seen.0 += 1;
            }
            (None, Ok(applied)) => {
                assert_eq!(applied.instance.state, "task_book", "round {round}");
                assert_eq!(now.state, "task_book", "round {round}");
                seen.1 += 1;
            }
            other => panic!("round {round}: objection and transition both or neither: {other:?}"),
        }
        let open = store.objections(Some(p.id), true, 10).await.unwrap().len();
        assert_eq!(open, usize::from(objection.is_some()), "round {round}");
    }
    assert_eq!(seen.0 + seen.1, ROUNDS);
}
