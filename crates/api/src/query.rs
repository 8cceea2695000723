//! The query root.

use std::collections::BTreeSet;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use base64::Engine;
use chrono::{DateTime, Utc};
use grantflow_service::access::decided_without_store;
use grantflow_service::{Services, can_see, visibility_for};
use grantflow_store::{
    Cursor, Instance, InstanceFilter, OutboxStatus, PageRequest, Role, SortKey, SortOrder, User,
};
use uuid::Uuid;

use crate::auth::scope;
use crate::context::{rc, store_err, viewer_with_role, viewer_with_scope};
use crate::error::ApiError;
use crate::loaders::{Assignment, InstanceId, OrgId, UnitGrades, UserId};
use crate::types::{
    InstanceGql, OrganisationGql, OutboxMessageGql, TokenGql, UserGql, WorkflowGql, parse_id,
};

/// The core queries; [`QueryRoot`] merges them with those of the review and programme
/// modules.
#[derive(Default)]
pub struct CoreQuery;

/// The query root of the schema.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    CoreQuery,
    crate::programme::ProgrammeQuery,
    crate::programme::FundingQuery,
    crate::programme::ReportQuery,
    crate::review::ReviewQuery,
    crate::public::PublicQuery,
    crate::programme::ThirdPartyQuery,
    crate::directory::DirectoryQuery,
);

/// The largest page a client may ask for.
pub const MAX_PAGE: u32 = 100;

/// A page size `first` outside 1..=[`MAX_PAGE`] is INVALID_INPUT naming `first`.
pub fn check_first(first: u32) -> Result<(), ApiError> {
    if first == 0 || first > MAX_PAGE {
        return Err(ApiError::invalid_field(
            "first",
            &format!("每页数量须在 1 到 {MAX_PAGE} 之间"),
            &format!("`first` must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(())
}

#[derive(InputObject, Default)]
pub struct InstanceFilterInput {
    pub workflow_id: Option<String>,
    pub states: Option<Vec<String>>,
    pub stage: Option<String>,
    pub organisation_id: Option<ID>,
    pub parent_id: Option<ID>,
    /// Only instances whose deadline has passed.
    pub overdue: Option<bool>,
    #[graphql(validator(custom = "crate::types::DateInRange"))]
    pub deadline_before: Option<DateTime<Utc>>,
    #[graphql(validator(custom = "crate::types::DateInRange"))]
    pub deadline_after: Option<DateTime<Utc>>,
    /// Case-insensitive text in the title or the data (at most 200 characters: longer
    /// patterns buy nothing, and SQLite refuses LIKE patterns over 50,000 bytes).
    #[graphql(validator(max_length = 200))]
    pub text: Option<String>,
    /// Include archived, rejected and other final instances (default true).
    pub include_final: Option<bool>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum InstanceSortField {
    #[default]
    CreatedAt,
    UpdatedAt,
    DueAt,
    Title,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum SortDirection {
    Asc,
    #[default]
    Desc,
}

#[derive(InputObject, Default)]
pub struct InstanceSort {
    #[graphql(default)]
    pub field: InstanceSortField,
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct InstanceEdge {
    pub cursor: String,
    pub node: InstanceGql,
}

#[derive(SimpleObject)]
pub struct InstanceConnection {
    pub edges: Vec<InstanceEdge>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

/// A cursor names the last row by id and carries a sort key only when the key is a time:
/// a title never travels in a cursor (it would show a blind reviewer the title before
/// redaction); [`resolve_cursor`] reads it back from the row.
pub fn encode_cursor(c: &Cursor, sort: SortKey) -> String {
    let c = Cursor {
        key: if sort == SortKey::Title {
            None
        } else {
            c.key.clone()
        },
        id: c.id,
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&c).unwrap_or_default())
}

/// Completes a decoded cursor of a title-sorted list with the row's title, read from an
/// instance the viewer may see (any other id is an invalid cursor, as a made-up one is).
async fn resolve_cursor(
    ctx: &Context<'_>,
    user: &User,
    sort: SortKey,
    mut c: Cursor,
) -> Result<Cursor> {
    if sort != SortKey::Title {
        return Ok(c);
    }
    let invalid = || ApiError::invalid_field("after", "分页游标无效", "the cursor is not valid");
    let services = &rc(ctx).services;
    let anchor = match services.store.get_instance(c.id).await {
        Ok(i) => i,
        Err(grantflow_store::StoreError::NotFound { .. }) => return Err(invalid().into()),
        Err(e) => return Err(store_err(ctx, e)),
    };
    let visible = grantflow_service::can_see(services.store.as_ref(), user, &anchor)
        .await
        .map_err(|e| store_err(ctx, e))?;
    if !visible {
        return Err(invalid().into());
    }
    c.key = Some(anchor.title);
    Ok(c)
}

/// The store's filter for a filter input; `identity_hidden` is left to the caller.
pub fn instance_filter(f: InstanceFilterInput, now: DateTime<Utc>) -> Result<InstanceFilter> {
    let parse_opt =
        |id: &Option<ID>, what: &str| id.as_ref().map(|i| parse_id(i, what)).transpose();
    Ok(InstanceFilter {
        workflow_id: f.workflow_id,
        states: f.states.unwrap_or_default(),
        stage: f.stage,
        org_id: parse_opt(&f.organisation_id, "organisationId")?,
        parent_id: parse_opt(&f.parent_id, "parentId")?,
        overdue_at: f.overdue.unwrap_or(false).then_some(now),
        due_before: f.deadline_before,
        due_after: f.deadline_after,
        text: f.text.filter(|t| !t.trim().is_empty()),
        include_final: f.include_final.unwrap_or(true),
        identity_hidden: Vec::new(),
    })
}

pub fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::invalid_field("after", "分页游标无效", "the cursor is not valid"))
}

#[Object]
impl CoreQuery {
    /// The authenticated user.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<UserGql> {
        Ok(UserGql(viewer_with_scope(ctx, scope::READ)?.user.clone()))
    }

    /// The viewer's sessions and API tokens.
    async fn my_tokens(&self, ctx: &Context<'_>) -> Result<Vec<TokenGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let tokens = rc(ctx)
            .services
            .store
            .list_tokens(v.user.id)
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(tokens.into_iter().map(TokenGql).collect())
    }

    /// The organisation hierarchy (province → cities → units).
    async fn organisations(&self, ctx: &Context<'_>) -> Result<Vec<OrganisationGql>> {
        viewer_with_scope(ctx, scope::READ)?;
        let orgs = rc(ctx)
            .services
            .store
            .list_orgs()
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(orgs.into_iter().map(OrganisationGql).collect())
    }

    async fn organisation(&self, ctx: &Context<'_>, id: ID) -> Result<OrganisationGql> {
        viewer_with_scope(ctx, scope::READ)?;
        let id = parse_id(&id, "id")?;
        let org = rc(ctx)
            .services
            .store
            .get_org(id)
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(OrganisationGql(org))
    }

    /// Every user (admins only).
    async fn users(&self, ctx: &Context<'_>) -> Result<Vec<UserGql>> {
        viewer_with_role(ctx, &[Role::Admin])?;
        viewer_with_scope(ctx, scope::ADMIN)?;
        let users = rc(ctx)
            .services
            .store
            .list_users()
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(users.into_iter().map(UserGql).collect())
    }

    /// One user (admins, or the user themself).
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<UserGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let id = parse_id(&id, "id")?;
        if v.user.id != id && !v.has_role(Role::Admin) {
            return Err(ApiError::not_found("user").into());
        }
        let user = rc(ctx)
            .services
            .store
            .get_user(id)
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(UserGql(user))
    }

    /// Loaded workflows, every version.
    async fn workflows(&self, ctx: &Context<'_>) -> Result<Vec<WorkflowGql>> {
        viewer_with_scope(ctx, scope::READ)?;
        Ok(rc(ctx)
            .services
            .workflows
            .all()
            .cloned()
            .map(WorkflowGql)
            .collect())
    }

    /// One workflow; the latest version unless `version` is given.
    async fn workflow(
        &self,
        ctx: &Context<'_>,
        id: String,
        version: Option<u32>,
    ) -> Result<WorkflowGql> {
        viewer_with_scope(ctx, scope::READ)?;
        let reg = &rc(ctx).services.workflows;
        let wf = match version {
            Some(v) => reg.get(&id, v),
            None => reg.latest(&id),
        };
        wf.map(WorkflowGql)
            .ok_or_else(|| ApiError::not_found("workflow").into())
    }

    /// One instance, if the viewer may see it (otherwise NOT_FOUND: existence is not
    /// revealed).
    async fn instance(&self, ctx: &Context<'_>, id: ID) -> Result<InstanceGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let id = parse_id(&id, "id")?;
        let store = rc(ctx).services.store.as_ref();
        let instance = match store.get_instance(id).await {
            Ok(i) => i,
            Err(grantflow_store::StoreError::NotFound { .. }) => {
                return Err(ApiError::not_found("instance").into());
            }
            Err(e) => return Err(store_err(ctx, e)),
        };
        if !can_see(store, &v.user, &instance)
            .await
            .map_err(|e| store_err(ctx, e))?
        {
            return Err(ApiError::not_found("instance").into());
        }
        Ok(InstanceGql(instance))
    }

    /// Instances the viewer may see, with filters, sorting and cursor pagination.
    #[graphql(complexity = "(first as usize).saturating_mul(child_complexity)")]
    async fn instances(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: u32,
        after: Option<String>,
        filter: Option<InstanceFilterInput>,
        sort: Option<InstanceSort>,
    ) -> Result<InstanceConnection> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        check_first(first)?;
        let filter = instance_filter(filter.unwrap_or_default(), rc(ctx).services.now())?;
        let filter = rc(ctx)
            .services
            .filter_for(&v.user, &filter)
            .await
            .map_err(|e| crate::context::service_err(ctx, e))?;
        let sort_in = sort.unwrap_or_default();
        let sort = sort_in.field;
        let sort = match sort {
            InstanceSortField::CreatedAt => SortKey::CreatedAt,
            InstanceSortField::UpdatedAt => SortKey::UpdatedAt,
            InstanceSortField::DueAt => SortKey::DueAt,
            InstanceSortField::Title => SortKey::Title,
        };
        let order = match sort_in.direction {
            SortDirection::Asc => SortOrder::Asc,
            SortDirection::Desc => SortOrder::Desc,
        };
        let after = match after.as_deref().map(decode_cursor).transpose()? {
            Some(c) => Some(resolve_cursor(ctx, &v.user, sort, c).await?),
            None => None,
        };
        let page = PageRequest {
            first,
            after,
            sort,
            order,
            // Counting reads every matching row: only when the client asks for the total.
            with_total: ctx.look_ahead().field("totalCount").exists(),
        };
        let result = rc(ctx)
            .services
            .store
            .list_instances(&visibility_for(&v.user), &filter, &page)
            .await
            .map_err(|e| store_err(ctx, e))?;
        let instances: Vec<&Instance> = result.items.iter().map(|(i, _)| i).collect();
        prefetch(ctx, &v.user, &instances).await?;
        let edges: Vec<InstanceEdge> = result
            .items
            .into_iter()
            .map(|(instance, cursor)| InstanceEdge {
                cursor: encode_cursor(&cursor, page.sort),
                node: InstanceGql(instance),
            })
            .collect();
        Ok(InstanceConnection {
            page_info: PageInfo {
                has_next_page: result.has_next_page,
                has_previous_page: page.after.is_some(),
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: result.total_count,
        })
    }

    /// The outbox of e-mails (managers): filter by status, e.g. DEAD for dead letters.
    #[graphql(complexity = "(limit.min(500) as usize).saturating_mul(child_complexity)")]
    async fn outbox(
        &self,
        ctx: &Context<'_>,
        status: Option<OutboxStatusGql>,
        #[graphql(default = 100)] limit: u32,
    ) -> Result<Vec<OutboxMessageGql>> {
        viewer_with_role(ctx, &[Role::Manager])?;
        viewer_with_scope(ctx, scope::READ)?;
        let msgs = rc(ctx)
            .services
            .store
            .list_outbox(status.map(Into::into), None, limit.min(500))
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(msgs.into_iter().map(Into::into).collect())
    }
}

/// Load what the selection asks of a page of instances — organisations, creators,
/// parents and whether an expert may see those — in one store call per kind, into the
/// request's loader cache: the nested fields then cost no store call, and a page of 50
/// costs what a page of 5 does.
async fn prefetch(ctx: &Context<'_>, user: &User, page: &[&Instance]) -> Result<()> {
    fn distinct(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
        let set: BTreeSet<Uuid> = ids.collect();
        set.into_iter().collect()
    }
    let node = ctx.look_ahead().field("edges").field("node");
    let r = rc(ctx);
    let store = r.services.store.as_ref();
    if node.field("organisation").exists() {
        let ids = distinct(page.iter().map(|i| i.org_id));
        let orgs = store.get_orgs(&ids).await.map_err(|e| store_err(ctx, e))?;
        r.loader
            .feed_many(orgs.into_iter().map(|o| (OrgId(o.id), o)))
            .await;
    }
    if node.field("createdBy").exists() {
        let ids = distinct(page.iter().map(|i| i.created_by));
        let users = store.get_users(&ids).await.map_err(|e| store_err(ctx, e))?;
        r.loader
            .feed_many(users.into_iter().map(|u| (UserId(u.id), u)))
            .await;
    }
    if node.field("previousGrades").exists() {
        // The units whose grades may show on this page (a blind round only hides more).
        let units = distinct(
            page.iter()
                .filter(|i| Services::shows_previous_grades(user, i, false))
                .map(|i| i.org_id),
        );
        if !units.is_empty() {
            r.loader
                .load_many(units.into_iter().map(UnitGrades))
                .await
                .map_err(|e| ApiError::internal(&r.request_id, &e))?;
        }
    }
    if node.field("parent").exists() {
        let ids = distinct(page.iter().filter_map(|i| i.parent_id));
        if ids.is_empty() {
            return Ok(());
        }
        let parents = store
            .get_instances(&ids)
            .await
            .map_err(|e| store_err(ctx, e))?;
        let undecided: Vec<Uuid> = parents
            .iter()
            .filter(|p| decided_without_store(user, p).is_none())
            .map(|p| p.id)
            .collect();
        if !undecided.is_empty() {
            let assigned: BTreeSet<Uuid> = store
                .assigned_instances(user.id, &undecided)
                .await
                .map_err(|e| store_err(ctx, e))?
                .into_iter()
                .collect();
            r.loader
                .feed_many(undecided.iter().map(|id| {
                    let key = Assignment {
                        expert_id: user.id,
                        instance_id: *id,
                    };
                    (key, assigned.contains(id))
                }))
                .await;
        }
        r.loader
            .feed_many(parents.into_iter().map(|p| (InstanceId(p.id), p)))
            .await;
    }
    Ok(())
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "OutboxStatus")]
pub enum OutboxStatusGql {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl From<OutboxStatusGql> for OutboxStatus {
    fn from(s: OutboxStatusGql) -> Self {
        match s {
            OutboxStatusGql::Pending => Self::Pending,
            OutboxStatusGql::Sending => Self::Sending,
            OutboxStatusGql::Sent => Self::Sent,
            OutboxStatusGql::Dead => Self::Dead,
        }
    }
}
