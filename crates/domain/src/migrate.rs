//! Moving running instances from one version of a workflow to another.
//!
//! Instances stay on the version they started with unless an operator migrates them. A
//! migration is planned once per pair of versions: every state of the old version in
//! which an instance can still be running (every non-final state) must map to a state of
//! the new version. A state whose id also exists in the new version maps to it unless
//! the mapping says otherwise. Each instance is then moved with [`migrate_snapshot`],
//! which refuses when the instance lacks data its new state requires.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::Snapshot;
use crate::input::is_present;
use crate::workflow::CompiledWorkflow;

/// How the states of one workflow version map onto another's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationPlan {
    pub workflow_id: String,
    pub from_version: u32,
    pub from_hash: String,
    pub to_version: u32,
    pub to_hash: String,
    /// Old state → new state, for every non-final state of the old version and for each
    /// final state whose id exists in the new version.
    pub states: BTreeMap<String, String>,
    /// Data fields each target state requires (from the new version).
    pub requires: BTreeMap<String, Vec<String>>,
    /// Targets that have a deadline in the new version (the instance keeps its due time).
    pub targets_with_deadline: Vec<String>,
}

impl MigrationPlan {
    /// The new state of an instance now in `state`.
    pub fn target(&self, state: &str) -> Option<&str> {
        self.states.get(state).map(String::as_str)
    }
}

/// Why a migration cannot be planned, or an instance cannot be moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MigrationError {
    #[error("cannot migrate workflow `{from}` to a different workflow `{to}`")]
    DifferentWorkflow { from: String, to: String },
    #[error("`{id}` version {version} would migrate to itself: the target must be another version")]
    SameVersion { id: String, version: u32 },
    #[error("the mapping names `{state}`, which is not a state of version {version}")]
    UnknownSourceState { state: String, version: u32 },
    #[error(
        "state `{state}` has no counterpart in version {version}: map it to one of {candidates:?}"
    )]
    UnmappedState {
        state: String,
        version: u32,
        candidates: Vec<String>,
    },
    #[error("state `{state}` is mapped to `{target}`, which version {version} does not define")]
    UnknownTargetState {
        state: String,
        target: String,
        version: u32,
    },
    #[error(
        "running state `{state}` is mapped to final state `{target}`: a migration never closes an instance"
    )]
    TargetIsFinal { state: String, target: String },
    #[error("the instance is in state `{state}`, which the plan does not map")]
    StateNotMapped { state: String },
    #[error("state `{target}` requires {missing:?}, which the instance (now in `{state}`) lacks")]
    MissingRequired {
        state: String,
        target: String,
        missing: Vec<String>,
    },
}

/// Plan the migration of instances of `from` to `to`, with `mapping` naming the new state
/// of each old state whose id does not exist in `to` (or that should move elsewhere).
/// Every problem is reported at once.
pub fn plan_migration(
    from: &CompiledWorkflow,
    to: &CompiledWorkflow,
    mapping: &BTreeMap<String, String>,
) -> Result<MigrationPlan, Vec<MigrationError>> {
    let mut errors = Vec::new();
    if from.id() != to.id() {
        errors.push(MigrationError::DifferentWorkflow {
            from: from.id().to_string(),
            to: to.id().to_string(),
        });
    } else if from.version() == to.version() {
        errors.push(MigrationError::SameVersion {
            id: from.id().to_string(),
            version: from.version(),
        });
    }
    for state in mapping.keys() {
        if from.def.state(state).is_none() {
            errors.push(MigrationError::UnknownSourceState {
                state: state.clone(),
                version: from.version(),
            });
        }
    }
    let candidates: Vec<String> = to
        .def
        .states
        .iter()
        .filter(|s| !s.is_final)
        .map(|s| s.id.clone())
        .collect();
    let mut states = BTreeMap::new();
    for s in &from.def.states {
        let target = match mapping.get(&s.id) {
            Some(t) => t.clone(),
            None if to.def.state(&s.id).is_some() => s.id.clone(),
            None if s.is_final => continue,
            None => {
                errors.push(MigrationError::UnmappedState {
                    state: s.id.clone(),
                    version: to.version(),
                    candidates: candidates.clone(),
                });
                continue;
            }
        };
        match to.def.state(&target) {
            None => errors.push(MigrationError::UnknownTargetState {
                state: s.id.clone(),
                target,
                version: to.version(),
            }),
            Some(t) if t.is_final && !s.is_final => errors.push(MigrationError::TargetIsFinal {
                state: s.id.clone(),
                target,
            }),
            Some(_) => {
                states.insert(s.id.clone(), target);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut requires = BTreeMap::new();
    let mut targets_with_deadline = Vec::new();
    for target in states.values() {
        let t = to.def.state(target).expect("checked above");
        requires.insert(target.clone(), t.requires.clone());
        if t.deadline.is_some() && !targets_with_deadline.contains(target) {
            targets_with_deadline.push(target.clone());
        }
    }
    targets_with_deadline.sort();
    Ok(MigrationPlan {
        workflow_id: from.id().to_string(),
        from_version: from.version(),
        from_hash: from.hash.clone(),
        to_version: to.version(),
        to_hash: to.hash.clone(),
        states,
        requires,
        targets_with_deadline,
    })
}

/// Move one instance along a plan: its new state, the same data, version and review
/// result. The due time of the current state entry is kept when the new state has a
/// deadline and dropped otherwise (the caller reschedules timers from it). Refused when
/// the instance lacks data the new state requires.
pub fn migrate_snapshot(
    plan: &MigrationPlan,
    snapshot: &Snapshot,
) -> Result<Snapshot, MigrationError> {
    let target = plan
        .target(&snapshot.state)
        .ok_or_else(|| MigrationError::StateNotMapped {
            state: snapshot.state.clone(),
        })?;
    let missing: Vec<String> = plan
        .requires
        .get(target)
        .into_iter()
        .flatten()
        .filter(|f| !is_present(snapshot.data.get(f.as_str())))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(MigrationError::MissingRequired {
            state: snapshot.state.clone(),
            target: target.to_string(),
            missing,
        });
    }
    let keeps_deadline = plan.targets_with_deadline.iter().any(|t| t == target);
    Ok(Snapshot {
        state: target.to_string(),
        data: snapshot.data.clone(),
        version: snapshot.version,
        due_at: if keeps_deadline {
            snapshot.due_at
        } else {
            None
        },
        review: snapshot.review.clone(),
        budget: snapshot.budget.clone(),
    })
}
