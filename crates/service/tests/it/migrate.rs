//! Moving running instances to a new version of their workflow: an explicit, validated
//! state mapping; each move audited; refusals leave the instance where it was.

use std::collections::BTreeMap;

use grantflow_service::{CreateInstance, FireEvent, ServiceError};
use grantflow_store::{OrgKind, Role};
use grantflow_testkit::{Backend, ServiceWorld, registry_from, start_time};
use serde_json::json;

const V1: &str = include_str!("../../../../workflows/change-request.toml");

/// Version 2 renames `review` to `province_review`.
fn v2() -> String {
    V1.replace("version = 1", "version = 2")
        .replace("id = \"review\"", "id = \"province_review\"")
        .replace("to = \"review\"", "to = \"province_review\"")
        .replace("from = \"review\"", "from = \"province_review\"")
        .replace(
            "from = [\"drafting\", \"review\"]",
            "from = [\"drafting\", \"province_review\"]",
        )
}

async fn instances_move_to_a_new_version_along_a_validated_mapping(backend: Backend) {
    let w = ServiceWorld::with(
        backend,
        registry_from(&[("v1.toml", V1), ("v2.toml", &v2())]),
        start_time(),
    )
    .await;
    let (services, store) = (&w.services, w.services.store.clone());
    let province = w.org("省局", OrgKind::Province, None).await;
    let applicant = w.user("unit", Some(&province), &[Role::Applicant]).await;
    let create = |title: &str| CreateInstance {
        workflow_id: "change-request".into(),
        org_id: None,
        parent_id: None,
        title: title.into(),
        data: json!({}),
        call_id: None,
        catalogue_item: None,
    };
    // `latest` is version 2 now: create v1 instances through the store's view of the
    // service by starting them and then checking their version.
    let drafting = services
        .create_instance(&applicant, create("仍在填写"))
        .await
        .unwrap();
    assert_eq!(
        drafting.workflow_version, 2,
        "new instances start on the latest version"
    );

    // Put two instances on version 1 the way an older server would have: same service,
    // registry with only version 1.
    let old = w.services_on(store.clone(), registry_from(&[("v1.toml", V1)]));
    let a = old
        .create_instance(&applicant, create("草稿"))
        .await
        .unwrap();
    let b = old
        .create_instance(&applicant, create("审核中"))
        .await
        .unwrap();
    old.fire(
        &applicant,
        FireEvent {
            instance_id: b.id,
            event: "submit".into(),
            expected_version: 0,
            idempotency_key: None,
            input: json!({ "change_type": "schedule", "change_summary": "延期两个月" }),
            reason: None,
        },
    )
    .await
    .unwrap();

    // Without a mapping for the renamed state the plan is refused as a whole.
    let refused = services
        .migrate_instances(
            "operator",
            "change-request",
            1,
            2,
            &BTreeMap::new(),
            "升级",
            true,
        )
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Invalid(_))),
        "{refused:?}"
    );

    let mapping = BTreeMap::from([("review".to_string(), "province_review".to_string())]);
    let dry = services
        .migrate_instances("operator", "change-request", 1, 2, &mapping, "升级", false)
        .await
        .unwrap();
    assert_eq!(dry.len(), 2);
    assert_eq!(
        store.get_instance(b.id).await.unwrap().workflow_version,
        1,
        "a dry run writes nothing"
    );

    let done = services
        .migrate_instances(
            "operator",
            "change-request",
            1,
            2,
            &mapping,
            "升级到 2025 版流程",
            true,
        )
        .await
        .unwrap();
    let moved_b = done.iter().find(|o| o.instance_id == b.id).unwrap();
    assert_eq!(moved_b.from_state, "review");
    assert_eq!(moved_b.to_state.as_deref(), Some("province_review"));
    let b_now = store.get_instance(b.id).await.unwrap();
    assert_eq!(
        (b_now.workflow_version, b_now.state.as_str(), b_now.version),
        (2, "province_review", 2)
    );
    assert!(b_now.due_at.is_some(), "the running deadline is kept");
    let a_now = store.get_instance(a.id).await.unwrap();
    assert_eq!(
        (a_now.workflow_version, a_now.state.as_str()),
        (2, "drafting")
    );
    let history = store.history(b.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.event, "migrate_version");
    assert_eq!(last.reason.as_deref(), Some("升级到 2025 版流程"));
    // The migrated instance goes on under the new version.
    let manager = w.user("mgr", Some(&province), &[Role::Manager]).await;
    let approved = services
        .fire(
            &manager,
            FireEvent {
                instance_id: b.id,
                event: "approve".into(),
                expected_version: 2,
                idempotency_key: None,
                input: json!({}),
                reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(approved.instance.state, "approved");
    let report = grantflow_store::audit::verify_all(store.as_ref())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report}");
    // Nothing is left on version 1.
    let again = services
        .migrate_instances("operator", "change-request", 1, 2, &mapping, "再次", true)
        .await
        .unwrap();
    assert!(again.is_empty());
}

grantflow_testkit::on_both_backends!(instances_move_to_a_new_version_along_a_validated_mapping,);
