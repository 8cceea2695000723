//! The reads behind the programme reports: actuals, grades and disbursed totals of many
//! projects at once.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What reports read: actuals and grades of many projects in one query each, a unit's
/// grades across calls, and the disbursed totals (zero for a project paid nothing).
pub async fn reports_read_in_bulk(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let p = new_application(s, &wf, &w.unit, &w.applicant, "甲", t(0)).await;
    let q = new_application(s, &wf, &w.unit, &w.applicant, "乙", t(0)).await;
    let other = new_application(s, &wf, &w.other_unit, &w.other_applicant, "丙", t(0)).await;
    let actual = |instance: Uuid, indicator: &str, value: Value| ActualRecord {
        instance_id: instance,
        indicator_id: indicator.into(),
        checkpoint: "acceptance".into(),
        value,
        explanation: None,
        recorded_on: day(2024, 9, 1),
        recorded_by: w.manager.id,
        recorded_at: t(1),
    };
    s.record_actuals(vec![
        actual(p.id, "调解案件数", json!(120)),
        actual(q.id, "调解案件数", json!(80)),
        actual(other.id, "调解案件数", json!(5)),
    ])
    .await
    .unwrap();
    let both = s.actuals_of(&[p.id, q.id]).await.unwrap();
    let mut values: Vec<(Uuid, Value)> = both
        .iter()
        .map(|a| (a.instance_id, a.value.clone()))
        .collect();
    values.sort_by_key(|(id, _)| *id);
    let mut expected = vec![(p.id, json!(120)), (q.id, json!(80))];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(values, expected);
    assert!(s.actuals_of(&[]).await.unwrap().is_empty());

    let mut first = evaluation(p.id, "call-2021", 91.0, "优", w.manager.id);
    first.evaluated_at = t(30);
    s.save_evaluation(first).await.unwrap();
    let mut second = evaluation(q.id, "call-2022", 72.5, "中", w.manager.id);
    second.evaluated_at = t(40);
    s.save_evaluation(second).await.unwrap();
    s.save_evaluation(evaluation(other.id, "call-2022", 55.0, "差", w.manager.id))
        .await
        .unwrap();
    let grades = s.grades_of(&[p.id, q.id]).await.unwrap();
    assert_eq!(
        grades
            .iter()
            .map(|g| (g.instance_id, g.call_id.as_str(), g.total, g.grade.as_str()))
            .collect::<Vec<_>>(),
        [
            (p.id, "call-2021", 91.0, "优"),
            (q.id, "call-2022", 72.5, "中")
        ]
    );
    // Units' grades, each with its unit, newest first; a unit without any has none.
    let of_units = s
        .grades_of_orgs(&[w.unit.id, w.other_unit.id, w.city.id])
        .await
        .unwrap();
    let of = |org: uuid::Uuid| {
        of_units
            .iter()
            .filter(|(o, _)| *o == org)
            .map(|(_, g)| g.instance_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(w.unit.id), [q.id, p.id]);
    assert_eq!(of(w.other_unit.id), [other.id]);
    assert_eq!(of_units.len(), 3);
    assert!(
        of_units
            .windows(2)
            .all(|w| w[0].1.evaluated_at >= w[1].1.evaluated_at)
    );
    assert_eq!(s.grades_of_orgs(&[w.city.id]).await.unwrap(), []);
    assert!(s.grades_of_orgs(&[]).await.unwrap().is_empty());
    // Nothing was paid: every project's disbursed total is zero, in the given order.
    let totals = s.disbursed_totals(&[p.id, q.id, other.id]).await.unwrap();
    assert_eq!(
        totals
            .iter()
            .map(|t| (t.instance_id, t.disbursed))
            .collect::<Vec<_>>(),
        [
            (p.id, Money::ZERO),
            (q.id, Money::ZERO),
            (other.id, Money::ZERO)
        ]
    );
}
