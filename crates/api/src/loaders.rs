//! DataLoaders: organisations, users and instances referenced from lists are fetched in
//! one batched store call per kind, whatever the page size.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use grantflow_service::Services;
use grantflow_service::programme::PreviousGrade;
use grantflow_store::{Instance, Organisation, Store, User};
use uuid::Uuid;

pub struct StoreLoader {
    store: Arc<dyn Store>,
    /// For loads that are the services' (a unit's previous grades).
    services: Services,
}

impl StoreLoader {
    pub fn new(services: Services) -> Self {
        Self {
            store: services.store.clone(),
            services,
        }
    }

    /// The store, for loaders of other modules (`review::ReviewerKey`).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Keys of the loader: one per kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrgId(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub Uuid);

/// The error type loaders share; resolvers turn it into INTERNAL.
#[derive(Debug, Clone)]
pub struct LoadError(pub Arc<String>);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[allow(clippy::needless_pass_by_value, reason = "used as `map_err(load_err)`")]
fn load_err(e: grantflow_store::StoreError) -> LoadError {
    LoadError(Arc::new(e.to_string()))
}

impl Loader<OrgId> for StoreLoader {
    type Value = Organisation;
    type Error = LoadError;

    async fn load(&self, keys: &[OrgId]) -> Result<HashMap<OrgId, Organisation>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let orgs = self.store.get_orgs(&ids).await.map_err(load_err)?;
        Ok(orgs.into_iter().map(|o| (OrgId(o.id), o)).collect())
    }
}

impl Loader<UserId> for StoreLoader {
    type Value = User;
    type Error = LoadError;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, User>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let users = self.store.get_users(&ids).await.map_err(load_err)?;
        Ok(users.into_iter().map(|u| (UserId(u.id), u)).collect())
    }
}

impl Loader<InstanceId> for StoreLoader {
    type Value = Instance;
    type Error = LoadError;

    async fn load(&self, keys: &[InstanceId]) -> Result<HashMap<InstanceId, Instance>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let items = self.store.get_instances(&ids).await.map_err(load_err)?;
        Ok(items.into_iter().map(|i| (InstanceId(i.id), i)).collect())
    }
}

/// Whether an expert is assigned to review an instance (the visibility of instances
/// reached by reference, e.g. `Instance.parent`): one store call per expert and batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub expert_id: Uuid,
    pub instance_id: Uuid,
}

impl Loader<Assignment> for StoreLoader {
    /// Whether assigned; every key gets an answer.
    type Value = bool;
    type Error = LoadError;

    async fn load(&self, keys: &[Assignment]) -> Result<HashMap<Assignment, bool>, LoadError> {
        let mut by_expert: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for k in keys {
            by_expert
                .entry(k.expert_id)
                .or_default()
                .push(k.instance_id);
        }
        let mut out: HashMap<Assignment, bool> = keys.iter().map(|k| (*k, false)).collect();
        for (expert_id, ids) in by_expert {
            for instance_id in self
                .store
                .assigned_instances(expert_id, &ids)
                .await
                .map_err(load_err)?
            {
                out.insert(
                    Assignment {
                        expert_id,
                        instance_id,
                    },
                    true,
                );
            }
        }
        Ok(out)
    }
}

/// The grades of a unit's evaluated projects, newest first (`Instance.previousGrades`,
/// which leaves out the instance's own): one batch of units costs
/// [`Services::grades_of_units`]' three store calls, whatever their number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnitGrades(pub Uuid);

impl Loader<UnitGrades> for StoreLoader {
    /// Every key gets an answer (a unit without grades: empty).
    type Value = Arc<Vec<PreviousGrade>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[UnitGrades],
    ) -> Result<HashMap<UnitGrades, Arc<Vec<PreviousGrade>>>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut by_unit = self
            .services
            .grades_of_units(&ids)
            .await
            .map_err(|e| LoadError(Arc::new(e.to_string())))?;
        Ok(keys
            .iter()
            .map(|k| (*k, Arc::new(by_unit.remove(&k.0).unwrap_or_default())))
            .collect())
    }
}
