//! The user directory for pickers: a programme manager choosing an expert for the pool (or
//! an admin) searches active users by role and by text instead of typing an id.
//!
//! The directory of a provincial programme is a few thousand accounts at most, listed by
//! the store; the filter and the page are cut here, so the store keeps
//! one user listing. Managers already see users' names and e-mails on instances they
//! manage; nothing here is more than that.

use async_graphql::{Context, Object, Result, SimpleObject};
use grantflow_store::Role;

use crate::auth::scope;
use crate::context::{rc, store_err, viewer_with_role, viewer_with_scope};
use crate::error::ApiError;
use crate::query::check_first;
use crate::types::{RoleGql, UserGql};

/// The longest search text: longer texts match nothing a shorter one would miss.
pub const MAX_SEARCH: usize = 100;

/// One page of the directory.
#[derive(SimpleObject)]
pub struct UserPage {
    pub users: Vec<UserGql>,
    /// More users match after this page: ask again with `after: endCursor`.
    pub has_next_page: bool,
    /// The last user's username on this page (the `after` of the next page).
    pub end_cursor: Option<String>,
    /// Users matching the filter, all pages together.
    pub total_count: usize,
}

#[derive(Default)]
pub struct DirectoryQuery;

#[Object]
impl DirectoryQuery {
    /// Active users for pickers (managers and admins), in username order: only those with
    /// `role` when given, and only those whose username or display name contains `search`
    /// (case-insensitive, at most 100 characters). `first` is 1 to 100; `after` is the
    /// previous page's `endCursor`.
    #[graphql(complexity = "(first as usize).saturating_mul(child_complexity)")]
    async fn user_directory(
        &self,
        ctx: &Context<'_>,
        role: Option<RoleGql>,
        search: Option<String>,
        #[graphql(default = 20)] first: u32,
        after: Option<String>,
    ) -> Result<UserPage> {
        viewer_with_role(ctx, &[Role::Manager, Role::Admin])?;
        viewer_with_scope(ctx, scope::READ)?;
        check_first(first)?;
        let search = search.map(|s| s.trim().to_lowercase());
        if search
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_SEARCH)
        {
            return Err(ApiError::invalid_field(
                "search",
                &format!("搜索文字最多 {MAX_SEARCH} 个字符"),
                &format!("`search` is at most {MAX_SEARCH} characters"),
            )
            .into());
        }
        let role: Option<Role> = role.map(Into::into);
        let users = rc(ctx)
            .services
            .store
            .list_users()
            .await
            .map_err(|e| store_err(ctx, e))?;
        // Byte order, as `after` compares (PostgreSQL's collation may order differently).
        let mut users = users;
        users.sort_by(|a, b| a.username.cmp(&b.username));
        let matching: Vec<_> = users
            .into_iter()
            .filter(|u| u.active)
            .filter(|u| role.is_none_or(|r| u.roles.contains(&r)))
            .filter(|u| {
                search.as_deref().is_none_or(|s| {
                    u.username.to_lowercase().contains(s)
                        || u.display_name.to_lowercase().contains(s)
                })
            })
            .collect();
        let total_count = matching.len();
        let mut page: Vec<_> = matching
            .into_iter()
            .filter(|u| after.as_deref().is_none_or(|a| u.username.as_str() > a))
            .take(first as usize + 1)
            .collect();
        let has_next_page = page.len() > first as usize;
        page.truncate(first as usize);
        Ok(UserPage {
            end_cursor: page.last().map(|u| u.username.clone()),
            users: page.into_iter().map(UserGql).collect(),
            has_next_page,
            total_count,
        })
    }
}
