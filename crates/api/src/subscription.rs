//! Live events over the graphql-transport-ws protocol.

use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use grantflow_service::{InstanceEvent, LiveEvent, Services, can_see};
use grantflow_store::User;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::scope;
use crate::context::{rc, store_err, viewer_with_scope};
use crate::error::ApiError;
use crate::types::{InstanceGql, parse_id};

pub struct SubscriptionRoot;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InstanceEventKind {
    /// The first message of every subscription: where the instance is now. Once it has
    /// arrived, no later change is missed.
    Current,
    /// A transition (or deadline extension) that happened.
    Transition,
    /// Changes may have been missed (this replica's feed from the others was interrupted,
    /// or the subscriber fell behind): where the instance is now, as for CURRENT.
    Resync,
}

/// A change to an instance (or, first, its current state).
#[derive(SimpleObject, Clone)]
#[graphql(name = "InstanceEvent")]
pub struct InstanceEventGql {
    pub kind: InstanceEventKind,
    pub instance_id: ID,
    pub version: i64,
    /// The event fired; null for the CURRENT and RESYNC messages.
    pub event: Option<String>,
    pub from_state: String,
    pub to_state: String,
    /// Who fired it; null for the CURRENT and RESYNC messages and for a reviewer of a blind
    /// round.
    pub actor_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&InstanceEvent> for InstanceEventGql {
    fn from(e: &InstanceEvent) -> Self {
        Self {
            kind: InstanceEventKind::Transition,
            instance_id: ID(e.instance_id.to_string()),
            version: e.version,
            event: Some(e.event.clone()),
            from_state: e.from_state.clone(),
            to_state: e.to_state.clone(),
            actor_id: Some(e.actor_id.clone()),
            at: e.at,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TaskChange {
    /// The instance now waits for one of the viewer's roles.
    Added,
    /// It no longer does.
    Removed,
}

#[derive(SimpleObject)]
pub struct TaskEvent {
    pub change: TaskChange,
    pub instance: InstanceGql,
}

/// Whether the state `state` of the instance's workflow waits on one of the user's roles.
fn waits_on(services: &Services, event: &InstanceEvent, state: &str, user: &User) -> bool {
    let Some(wf) = services.workflows.latest(&event.workflow_id) else {
        return false;
    };
    wf.def.state(state).is_some_and(|s| {
        s.assignees
            .iter()
            .any(|a| user.roles.iter().any(|r| r.as_str() == a))
    })
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every change to one instance the viewer may see.
    async fn instance_events(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
    ) -> Result<impl Stream<Item = InstanceEventGql> + use<>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let id = parse_id(&instance_id, "instanceId")?;
        let services = rc(ctx).services.clone();
        // Subscribe before reading the current state, so that nothing falls between.
        let receiver = services.subscribe();
        let instance = match services.store.get_instance(id).await {
            Ok(i) => i,
            Err(grantflow_store::StoreError::NotFound { .. }) => {
                return Err(ApiError::not_found("instance").into());
            }
            Err(e) => return Err(store_err(ctx, e)),
        };
        if !can_see(services.store.as_ref(), &v.user, &instance)
            .await
            .map_err(|e| store_err(ctx, e))?
        {
            return Err(ApiError::not_found("instance").into());
        }
        let current = InstanceEventGql {
            kind: InstanceEventKind::Current,
            instance_id: ID(instance.id.to_string()),
            version: instance.version,
            event: None,
            from_state: instance.state.clone(),
            to_state: instance.state.clone(),
            actor_id: None,
            at: instance.updated_at,
        };
        let blind = services
            .blind_instance_ids(&v.user)
            .await
            .map_err(|e| crate::context::service_err(ctx, e))?
            .contains(&id);
        let viewer = v.user.clone();
        let changes = BroadcastStream::new(receiver).filter_map(move |e| {
            let services = services.clone();
            let user = viewer.clone();
            async move {
                match e {
                    Ok(LiveEvent::Instance(e)) if e.instance_id == id => {
                        let mut event = InstanceEventGql::from(&e);
                        if blind {
                            event.actor_id = None;
                        }
                        Some(event)
                    }
                    Ok(LiveEvent::Instance(_)) => None,
                    // Missed events: say where the instance is now (if still visible).
                    Ok(LiveEvent::Resync) | Err(_) => {
                        let instance = services.store.get_instance(id).await.ok()?;
                        if !can_see(services.store.as_ref(), &user, &instance)
                            .await
                            .ok()?
                        {
                            return None;
                        }
                        Some(InstanceEventGql {
                            kind: InstanceEventKind::Resync,
                            instance_id: ID(instance.id.to_string()),
                            version: instance.version,
                            event: None,
                            from_state: instance.state.clone(),
                            to_state: instance.state,
                            actor_id: None,
                            at: instance.updated_at,
                        })
                    }
                }
            }
        });
        Ok(futures::stream::once(async move { current }).chain(changes))
    }

    /// Instances arriving in (or leaving) a state that waits on the viewer, among those
    /// the viewer may see.
    async fn my_tasks(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = TaskEvent> + use<>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let user = v.user.clone();
        let services = rc(ctx).services.clone();
        let stream = BroadcastStream::new(services.subscribe()).filter_map(move |e| {
            let services = services.clone();
            let user = user.clone();
            async move {
                let Ok(LiveEvent::Instance(e)) = e else {
                    return None;
                };
                let now_waits = waits_on(&services, &e, &e.to_state, &user);
                let was_waiting = waits_on(&services, &e, &e.from_state, &user);
                let change = match (was_waiting, now_waits) {
                    (_, true) => TaskChange::Added,
                    (true, false) => TaskChange::Removed,
                    (false, false) => return None,
                };
                let instance = services.store.get_instance(e.instance_id).await.ok()?;
                if !can_see(services.store.as_ref(), &user, &instance)
                    .await
                    .ok()?
                {
                    return None;
                }
                Some(TaskEvent {
                    change,
                    instance: InstanceGql(instance),
                })
            }
        });
        Ok(stream)
    }
}
