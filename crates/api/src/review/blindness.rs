//! Blindness for the instance type: the viewer's own assignments, loaded once per
//! request, decide whether an instance is shown redacted.

use super::*;

/// Loader key: every assignment of one expert (the viewer), loaded once per request
/// however many instances a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReviewerKey(pub uuid::Uuid);

impl Loader<ReviewerKey> for StoreLoader {
    type Value = Arc<Vec<AssignmentRecord>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ReviewerKey],
    ) -> Result<HashMap<ReviewerKey, Self::Value>, LoadError> {
        let mut out = HashMap::new();
        for key in keys {
            let records = self
                .store()
                .expert_queue(key.0, true)
                .await
                .map_err(|e| LoadError(Arc::new(e.to_string())))?;
            out.insert(*key, Arc::new(records));
        }
        Ok(out)
    }
}

/// The viewer's assignments on `instance`, when the viewer sees it only as a reviewer.
pub(super) async fn reviewer_assignments(
    ctx: &Context<'_>,
    instance: &Instance,
) -> Result<Option<Vec<AssignmentRecord>>> {
    let Some(v) = rc(ctx).viewer.as_ref() else {
        return Ok(None);
    };
    if !sees_only_as_reviewer(&v.user, instance) {
        return Ok(None);
    }
    let all = rc(ctx)
        .loader
        .load_one(ReviewerKey(v.user.id))
        .await
        .map_err(|e| internal(ctx, e))?
        .unwrap_or_default();
    Ok(Some(
        all.iter()
            .filter(|a| a.instance_id == instance.id)
            .cloned()
            .collect(),
    ))
}

/// Whether the viewer reviews the instance in a blind round: organisation, creator and
/// history are then hidden, and title and data redacted.
pub async fn hides_applicant(ctx: &Context<'_>, instance: &Instance) -> Result<bool> {
    let Some(mine) = reviewer_assignments(ctx, instance).await? else {
        return Ok(false);
    };
    if mine.is_empty() {
        return Ok(false);
    }
    let wf = rc(ctx)
        .services
        .workflow_of(instance)
        .map_err(|e| crate::context::service_err(ctx, e))?;
    Ok(mine
        .iter()
        .any(|a| wf.def.reviews.get(&a.round_id).is_some_and(|r| r.blind)))
}

/// The title and data of an instance as the viewer may see them: `Some` with the
/// applicant's identity redacted when the viewer reviews it in a blind round.
pub async fn blind_view(ctx: &Context<'_>, instance: &Instance) -> Result<Option<(String, Value)>> {
    if !hides_applicant(ctx, instance).await? {
        return Ok(None);
    }
    let org = rc(ctx)
        .loader
        .load_one(OrgId(instance.org_id))
        .await
        .map_err(|e| internal(ctx, e))?
        .map(|o| o.name)
        .unwrap_or_default();
    let creator = rc(ctx)
        .loader
        .load_one(UserId(instance.created_by))
        .await
        .map_err(|e| internal(ctx, e))?
        .map(|u| u.display_name)
        .unwrap_or_default();
    Ok(Some(redact_instance(instance, &org, &creator)))
}

/// Whether the viewer may read the aggregated review result: not an expert who has not
/// submitted their own scores on the instance.
pub async fn may_see_result(ctx: &Context<'_>, instance: &Instance) -> Result<bool> {
    match reviewer_assignments(ctx, instance).await? {
        None => Ok(true),
        // Their assignment in the latest round on the instance: the one the result is of.
        Some(mine) => Ok(mine
            .iter()
            .max_by_key(|a| (a.cycle, a.assigned_at))
            .is_some_and(|a| a.state == "submitted")),
    }
}
