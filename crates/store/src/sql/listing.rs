//! Instance listings: visibility, filters, sorting and keyset pagination, with the total
//! count (when asked for), in two statements.

use chrono::{DateTime, Utc};

use super::instances::{INSTANCE_COLS, instances};
use super::{Arg, Args, Dialect, Fail, Get, Pools, R, fetch_all};
use crate::support::like_pattern;
use crate::{
    Cursor, EXPERT_GRANT_IS_LIVE, Instance, InstanceFilter, Page, PageRequest, SortKey, SortOrder,
    StoreError, StoreResult, Visibility,
};

fn prefixed(cols: &str, prefix: &str) -> String {
    cols.split(',')
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sort_column(sort: SortKey) -> &'static str {
    match sort {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::DueAt => "due_at",
        SortKey::Title => "title",
    }
}

/// Cursor keys are RFC 3339 with microseconds.
fn cursor_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The condition that an instance row `i` is within `visibility` (`None`: every row),
/// its arguments appended to `args`. Listings filter by it and a transition checks it on
/// the row it locks ([`visible_to_any`]): one SQL decides what a viewer sees.
fn visible_to(args: &mut Args, visibility: &Visibility) -> Option<String> {
    match visibility {
        Visibility::All => None,
        Visibility::Org(org) => Some(format!("i.org_id = {}", args.push(Arg::Id(Some(*org))))),
        Visibility::City(city) => Some(format!("i.city_id = {}", args.push(Arg::Id(Some(*city))))),
        Visibility::AssignedExpert(user) => Some(format!(
            "EXISTS (SELECT 1 FROM expert_assignments e \
             WHERE e.instance_id = i.id AND {EXPERT_GRANT_IS_LIVE} AND e.user_id = {})",
            args.push(Arg::Id(Some(*user)))
        )),
        Visibility::ThirdParty(org) => Some(format!(
            "EXISTS (SELECT 1 FROM evaluation_assignments ea \
             WHERE ea.instance_id = i.id AND ea.org_id = {})",
            args.push(Arg::Id(Some(*org)))
        )),
        Visibility::Nothing => Some("1 = 0".to_string()),
    }
}

/// The condition that an instance row `i` is within any of `scopes` (a person's roles
/// together; none: no row), or `None` when one of them is every row.
pub(super) fn visible_to_any(args: &mut Args, scopes: &[Visibility]) -> Option<String> {
    if scopes.contains(&Visibility::All) {
        return None;
    }
    if scopes.is_empty() {
        return Some("1 = 0".to_string());
    }
    let any = scopes
        .iter()
        .filter_map(|v| visible_to(args, v))
        .collect::<Vec<_>>()
        .join(" OR ");
    Some(format!("({any})"))
}

/// The `WHERE` clause of an instance listing, its arguments appended to `args`.
fn filters<D: Dialect>(args: &mut Args, visibility: &Visibility, f: &InstanceFilter) -> String {
    let mut w = String::from(" WHERE 1 = 1");
    if let Some(visible) = visible_to(args, visibility) {
        w += &format!(" AND {visible}");
    }
    if let Some(wf) = &f.workflow_id {
        w += &format!(
            " AND i.workflow_id = {}",
            args.push(Arg::Text(Some(wf.clone())))
        );
    }
    if !f.states.is_empty() {
        let list = f
            .states
            .iter()
            .map(|s| args.push(Arg::Text(Some(s.clone()))))
            .collect::<Vec<_>>()
            .join(", ");
        w += &format!(" AND i.state IN ({list})");
    }
    if let Some(stage) = &f.stage {
        w += &format!(
            " AND i.stage = {}",
            args.push(Arg::Text(Some(stage.clone())))
        );
    }
    if let Some(org) = f.org_id {
        w += &format!(" AND i.org_id = {}", args.push(Arg::Id(Some(org))));
    }
    if let Some(parent) = f.parent_id {
        w += &format!(" AND i.parent_id = {}", args.push(Arg::Id(Some(parent))));
    }
    if let Some(now) = f.overdue_at {
        let p = args.push(Arg::Time(Some(now)));
        w += &format!(" AND i.is_final = FALSE AND i.due_at < {p}");
    }
    if let Some(t) = f.due_before {
        w += &format!(" AND i.due_at <= {}", args.push(Arg::Time(Some(t))));
    }
    if let Some(t) = f.due_after {
        w += &format!(" AND i.due_at >= {}", args.push(Arg::Time(Some(t))));
    }
    if let Some(text) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // Case-insensitive for ASCII on both databases; CJK has no case.
        let p = args.push(Arg::Text(Some(like_pattern(text))));
        w += &format!(
            " AND (i.title {like} {p} ESCAPE '\\' OR {data} {like} {p} ESCAPE '\\')",
            like = D::ILIKE,
            data = D::json_text("i.data"),
        );
    }
    let identity_filtered =
        f.org_id.is_some() || f.text.as_deref().is_some_and(|t| !t.trim().is_empty());
    if identity_filtered && !f.identity_hidden.is_empty() {
        let p = args.push(Arg::Ids(f.identity_hidden.clone()));
        w += &format!(" AND NOT (i.id {})", D::in_ids(&p));
    }
    if !f.include_final {
        w += " AND i.is_final = FALSE";
    }
    w
}

pub async fn list_instances<D: Dialect>(
    pool: &Pools<D::DB>,
    visibility: &Visibility,
    filter: &InstanceFilter,
    page: &PageRequest,
) -> StoreResult<Page<Instance>> {
    let r: R<Page<Instance>> = async {
        if *visibility == Visibility::Nothing {
            return Ok(Page {
                items: Vec::new(),
                has_next_page: false,
                total_count: 0,
            });
        }
        let mut count_args = Args::new();
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM instances i{}",
            filters::<D>(&mut count_args, visibility, filter)
        );
        let total_count = if page.with_total {
            match super::fetch_optional::<D>(pool, &count_sql, count_args).await? {
                Some(row) => Get::<D>(&row).i64("n")?,
                None => 0,
            }
        } else {
            0
        };

        let col = sort_column(page.sort);
        let nullable = page.sort == SortKey::DueAt;
        let (cmp, dir) = match page.order {
            SortOrder::Asc => (">", "ASC"),
            SortOrder::Desc => ("<", "DESC"),
        };
        let mut args = Args::new();
        let mut sql = format!(
            "SELECT {} FROM instances i{}",
            prefixed(INSTANCE_COLS, "i."),
            filters::<D>(&mut args, visibility, filter)
        );
        if let Some(after) = &page.after {
            let key = match (&after.key, page.sort) {
                (Some(k), SortKey::Title) => Some(Arg::Text(Some(k.clone()))),
                (Some(k), _) => {
                    let at = DateTime::parse_from_rfc3339(k)
                        .map_err(|_| {
                            StoreError::Invalid(format!("the cursor key `{k}` is not a time"))
                        })?
                        .with_timezone(&Utc);
                    Some(Arg::Time(Some(at)))
                }
                (None, _) => None,
            };
            match key {
                // A column that is never NULL: one row-value comparison, which both
                // databases answer by a range scan of the `(column, id)` index.
                Some(k) if !nullable => {
                    let k = args.push(k);
                    let id = args.push(Arg::Id(Some(after.id)));
                    sql += &format!(" AND (i.{col}, i.id) {cmp} ({k}, {id})");
                }
                // Rows with a key sort before rows without one, in both directions.
                Some(k) => {
                    let k = args.push(k);
                    let id = args.push(Arg::Id(Some(after.id)));
                    sql += &format!(
                        " AND ((i.{col} {cmp} {k}) OR (i.{col} = {k} AND i.id {cmp} {id}) \
                         OR i.{col} IS NULL)"
                    );
                }
                // In the trailing rows without a key: order by id alone.
                None => {
                    let id = args.push(Arg::Id(Some(after.id)));
                    sql += &format!(" AND i.{col} IS NULL AND i.id {cmp} {id}");
                }
            }
        }
        let limit = args.push(Arg::Int(Some(i64::from(page.first) + 1)));
        // Only `due_at` can be NULL; ordering by `(col IS NULL)` as well would keep the
        // other sorts from reading their index in order (a sort of every row instead).
        let nulls_last = if nullable {
            format!("(i.{col} IS NULL), ")
        } else {
            String::new()
        };
        sql += &format!(" ORDER BY {nulls_last}i.{col} {dir}, i.id {dir} LIMIT {limit}");
        let mut items = instances::<D>(&fetch_all::<D>(pool, &sql, args).await?)?;
        let has_next_page = items.len() > page.first as usize;
        items.truncate(page.first as usize);
        let items = items
            .into_iter()
            .map(|i| {
                let key = match page.sort {
                    SortKey::CreatedAt => Some(cursor_time(i.created_at)),
                    SortKey::UpdatedAt => Some(cursor_time(i.updated_at)),
                    SortKey::DueAt => i.due_at.map(cursor_time),
                    SortKey::Title => Some(i.title.clone()),
                };
                let cursor = Cursor { key, id: i.id };
                (i, cursor)
            })
            .collect();
        Ok(Page {
            items,
            has_next_page,
            total_count,
        })
    }
    .await;
    r.map_err(Fail::store::<D>)
}
