//! [`crate::ThirdPartyStore`] in SQL: evaluation assignments (with their history) and the
//! third parties' evaluations.

use chrono::SubsecRound;
use uuid::Uuid;

use super::{Args, Dialect, Fail, Get, Pools, R, Row, fetch_all, fetch_optional};
use crate::StoreResult;
use crate::sql::retrying;
use crate::third_party::{EvaluationAssignment, ThirdPartyEvaluation};

fn assignment<D: Dialect>(row: &Row<D>) -> R<EvaluationAssignment> {
    let g = Get::<D>(row);
    Ok(EvaluationAssignment {
        instance_id: g.id("instance_id")?,
        org_id: g.id("org_id")?,
        assigned_by: g.id("assigned_by")?,
        assigned_at: g.time("assigned_at")?,
    })
}

fn evaluation<D: Dialect>(row: &Row<D>) -> R<ThirdPartyEvaluation> {
    let g = Get::<D>(row);
    Ok(ThirdPartyEvaluation {
        instance_id: g.id("instance_id")?,
        org_id: g.id("org_id")?,
        evaluator_id: g.id("evaluator_id")?,
        total: g.f64("total")?,
        grade: g.str("grade")?,
        result: g.json("result")?,
        evaluated_at: g.time("evaluated_at")?,
    })
}

const ASSIGNMENT_COLS: &str = "instance_id, org_id, assigned_by, assigned_at";

pub async fn assign_evaluation<D: Dialect>(
    pool: &Pools<D::DB>,
    a: EvaluationAssignment,
) -> StoreResult<EvaluationAssignment> {
    let a = EvaluationAssignment {
        assigned_at: a.assigned_at.trunc_subsecs(6),
        ..a
    };
    let r: R<EvaluationAssignment> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        D::execute(
            &mut *tx,
            "INSERT INTO evaluation_assignments (instance_id, org_id, assigned_by, assigned_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id) DO UPDATE SET \
             org_id = EXCLUDED.org_id, assigned_by = EXCLUDED.assigned_by, \
             assigned_at = EXCLUDED.assigned_at",
            Args::new()
                .id(a.instance_id)
                .id(a.org_id)
                .id(a.assigned_by)
                .time(a.assigned_at),
        )
        .await?;
        D::execute(
            &mut *tx,
            "INSERT INTO evaluation_assignment_history (id, instance_id, org_id, assigned_by, \
             assigned_at) VALUES ($1, $2, $3, $4, $5)",
            Args::new()
                .id(Uuid::now_v7())
                .id(a.instance_id)
                .id(a.org_id)
                .id(a.assigned_by)
                .time(a.assigned_at),
        )
        .await?;
        tx.commit().await?;
        Ok(a.clone())
    });
    r.map_err(Fail::store::<D>)
}

pub async fn evaluation_assignment<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Option<EvaluationAssignment>> {
    let r: R<Option<EvaluationAssignment>> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("SELECT {ASSIGNMENT_COLS} FROM evaluation_assignments WHERE instance_id = $1"),
            Args::new().id(instance_id),
        )
        .await?;
        row.as_ref().map(assignment::<D>).transpose()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn evaluation_assignment_history<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Vec<EvaluationAssignment>> {
    let r: R<Vec<EvaluationAssignment>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!(
                "SELECT {ASSIGNMENT_COLS} FROM evaluation_assignment_history \
                 WHERE instance_id = $1 ORDER BY assigned_at, id"
            ),
            Args::new().id(instance_id),
        )
        .await?;
        rows.iter().map(assignment::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn is_assigned_to_org<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
    org_id: Uuid,
) -> StoreResult<bool> {
    let r: R<bool> = async {
        let row = fetch_optional::<D>(
            pool,
            "SELECT 1 AS one FROM evaluation_assignments WHERE instance_id = $1 AND org_id = $2",
            Args::new().id(instance_id).id(org_id),
        )
        .await?;
        Ok(row.is_some())
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn save_third_party_evaluation<D: Dialect>(
    pool: &Pools<D::DB>,
    e: ThirdPartyEvaluation,
) -> StoreResult<()> {
    let at = e.evaluated_at.trunc_subsecs(6);
    let r: R<()> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        D::execute(
            &mut *tx,
            "INSERT INTO third_party_evaluations (instance_id, org_id, evaluator_id, total, \
             grade, result, evaluated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (instance_id) DO UPDATE SET org_id = EXCLUDED.org_id, \
             evaluator_id = EXCLUDED.evaluator_id, total = EXCLUDED.total, \
             grade = EXCLUDED.grade, result = EXCLUDED.result, \
             evaluated_at = EXCLUDED.evaluated_at",
            Args::new()
                .id(e.instance_id)
                .id(e.org_id)
                .id(e.evaluator_id)
                .float(e.total)
                .text(e.grade.as_str())
                .json(&e.result)
                .time(at),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    });
    r.map_err(Fail::store::<D>)
}

pub async fn third_party_evaluation<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Option<ThirdPartyEvaluation>> {
    let r: R<Option<ThirdPartyEvaluation>> = async {
        let row = fetch_optional::<D>(
            pool,
            "SELECT instance_id, org_id, evaluator_id, total, grade, result, evaluated_at \
             FROM third_party_evaluations WHERE instance_id = $1",
            Args::new().id(instance_id),
        )
        .await?;
        row.as_ref().map(evaluation::<D>).transpose()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

#[async_trait::async_trait]
impl<S: super::SqlBackend> crate::ThirdPartyStore for S {
    async fn assign_evaluation(
        &self,
        assignment: EvaluationAssignment,
    ) -> StoreResult<EvaluationAssignment> {
        assign_evaluation::<S::D>(self.sql_pool(), assignment).await
    }
    async fn evaluation_assignment(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Option<EvaluationAssignment>> {
        evaluation_assignment::<S::D>(self.sql_pool(), instance_id).await
    }
    async fn evaluation_assignment_history(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Vec<EvaluationAssignment>> {
        evaluation_assignment_history::<S::D>(self.sql_pool(), instance_id).await
    }
    async fn is_assigned_to_org(&self, instance_id: Uuid, org_id: Uuid) -> StoreResult<bool> {
        is_assigned_to_org::<S::D>(self.sql_pool(), instance_id, org_id).await
    }
    async fn save_third_party_evaluation(
        &self,
        evaluation: ThirdPartyEvaluation,
    ) -> StoreResult<()> {
        save_third_party_evaluation::<S::D>(self.sql_pool(), evaluation).await
    }
    async fn third_party_evaluation(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Option<ThirdPartyEvaluation>> {
        third_party_evaluation::<S::D>(self.sql_pool(), instance_id).await
    }
}
