//! The reads behind the programme reports (项目统计报表): indicator actuals and grades of
//! many projects at once, and every grade of some organisations.

use uuid::Uuid;

use super::{Dialect, Get, Pools, R, Row, fetch_by_ids};
use crate::StoreResult;
use crate::programme::{ActualRecord, GradeRecord};

pub const ACTUAL_COLS: &str = "instance_id, indicator_id, checkpoint, value, explanation, \
     recorded_on, recorded_by, recorded_at";

pub fn actual<D: Dialect>(r: &Row<D>) -> R<ActualRecord> {
    let g = Get::<D>(r);
    Ok(ActualRecord {
        instance_id: g.id("instance_id")?,
        indicator_id: g.str("indicator_id")?,
        checkpoint: g.str("checkpoint")?,
        value: g.json("value")?,
        explanation: g.opt_str("explanation")?,
        recorded_on: g.date("recorded_on")?,
        recorded_by: g.id("recorded_by")?,
        recorded_at: g.time("recorded_at")?,
    })
}

pub async fn actuals_of<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_ids: &[Uuid],
) -> StoreResult<Vec<ActualRecord>> {
    let sql = format!(
        "SELECT {ACTUAL_COLS} FROM indicator_actuals WHERE instance_id {{ids}} \
         ORDER BY instance_id, checkpoint DESC, indicator_id"
    );
    fetch_by_ids::<D, _>(pool, &sql, instance_ids, actual::<D>).await
}

const GRADE_COLS: &str = "e.instance_id, e.call_id, e.total, e.grade, e.evaluated_at";

fn grade_record<D: Dialect>(r: &Row<D>) -> R<GradeRecord> {
    let g = Get::<D>(r);
    Ok(GradeRecord {
        instance_id: g.id("instance_id")?,
        call_id: g.str("call_id")?,
        total: g.f64("total")?,
        grade: g.str("grade")?,
        evaluated_at: g.time("evaluated_at")?,
    })
}

pub async fn grades_of<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_ids: &[Uuid],
) -> StoreResult<Vec<GradeRecord>> {
    let sql = format!(
        "SELECT {GRADE_COLS} FROM evaluations e WHERE e.instance_id {{ids}} \
         ORDER BY e.evaluated_at, e.instance_id"
    );
    fetch_by_ids::<D, _>(pool, &sql, instance_ids, grade_record::<D>).await
}

pub async fn grades_of_orgs<D: Dialect>(
    pool: &Pools<D::DB>,
    org_ids: &[Uuid],
) -> StoreResult<Vec<(Uuid, GradeRecord)>> {
    let sql = format!(
        "SELECT {GRADE_COLS}, i.org_id FROM evaluations e JOIN instances i ON i.id = e.instance_id \
         WHERE i.org_id {{ids}} ORDER BY e.evaluated_at DESC, e.instance_id"
    );
    fetch_by_ids::<D, _>(pool, &sql, org_ids, org_grade_record::<D>).await
}

fn org_grade_record<D: Dialect>(r: &Row<D>) -> R<(Uuid, GradeRecord)> {
    Ok((Get::<D>(r).id("org_id")?, grade_record::<D>(r)?))
}
