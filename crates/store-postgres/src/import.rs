//! `grantflow copy --from sqlite://… --to postgres://…`: a whole deployment moved off its
//! embedded SQLite file into an empty, migrated PostgreSQL database, in one transaction.
//!
//! Tables are read from PostgreSQL's catalogue (so every table of every migration comes
//! along) and filled parents first (by their foreign keys; rows of a table referring to
//! itself, parents first too). SQLite's values are read as text and cast by PostgreSQL to
//! the column's type (`uuid`, `timestamptz`, `json`, `boolean` …), the same text both
//! stores write.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::TryStreamExt;
use grantflow_store::{StoreError, StoreResult};
use sqlx::{Row, SqlitePool};

use crate::PostgresStore;

/// Rows per table on both sides after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub source: i64,
    pub target: i64,
}

struct Column {
    name: String,
    /// PostgreSQL's type name for casts (`uuid`, `timestamptz`, `int8` …).
    cast: String,
}

/// A foreign key: `table.columns` refers to `parent.parent_columns`.
struct ForeignKey {
    table: String,
    parent: String,
    columns: Vec<String>,
    parent_columns: Vec<String>,
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Copy every row of `source` into `target`, which must be migrated to the same version
/// and empty. Returns the row counts of both sides, table by table.
pub async fn import_sqlite(
    source: &SqlitePool,
    target: &PostgresStore,
) -> StoreResult<Vec<TableCount>> {
    let pool = target.pool();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
         AND table_name NOT LIKE '\\_sqlx%' ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let keys = foreign_keys(target).await?;
    let order = parents_first(&tables, &keys)?;

    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SET LOCAL TIME ZONE 'UTC'")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    for table in &order {
        let present: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(table)))
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        if present > 0 {
            return Err(StoreError::Invalid(format!(
                "the target database is not empty (table {table} has {present} rows); copy into a new database"
            )));
        }
    }
    for table in &order {
        let columns = columns(target, table).await?;
        check_source_columns(source, table, &columns).await?;
        let select = format!(
            "SELECT {} FROM {}",
            columns
                .iter()
                .map(|c| format!("CAST({} AS TEXT)", quoted(&c.name)))
                .collect::<Vec<_>>()
                .join(", "),
            quoted(table)
        );
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let mut stream = sqlx::query(&select).fetch(source);
        while let Some(row) = stream.try_next().await.map_err(backend)? {
            let values = (0..columns.len())
                .map(|i| row.try_get::<Option<String>, _>(i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.push(values);
        }
        drop(stream);
        if let Some(self_key) = keys
            .iter()
            .find(|k| &k.table == table && &k.parent == table)
        {
            rows = self_parents_first(rows, &columns, self_key)?;
        }
        insert_rows(&mut tx, table, &columns, rows).await?;
    }
    tx.commit().await.map_err(backend)?;

    let mut counts = Vec::new();
    for table in &tables {
        let source_count: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(table)))
                .fetch_one(source)
                .await
                .map_err(backend)?;
        let target_count: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(table)))
                .fetch_one(pool)
                .await
                .map_err(backend)?;
        counts.push(TableCount {
            table: table.clone(),
            source: source_count,
            target: target_count,
        });
    }
    Ok(counts)
}

async fn foreign_keys(target: &PostgresStore) -> StoreResult<Vec<ForeignKey>> {
    let rows = sqlx::query(
        "SELECT c.oid::bigint AS id, c.conrelid::regclass::text AS child, \
                c.confrelid::regclass::text AS parent, a.attname::text AS col, \
                af.attname::text AS parent_col \
         FROM pg_constraint c \
         CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(attnum, fattnum, n) \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
         JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = k.fattnum \
         WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace \
         ORDER BY c.oid, k.n",
    )
    .fetch_all(target.pool())
    .await
    .map_err(backend)?;
    let mut keys: BTreeMap<i64, ForeignKey> = BTreeMap::new();
    for row in rows {
        let id: i64 = row.try_get("id").map_err(backend)?;
        let key = keys.entry(id).or_insert_with(|| ForeignKey {
            table: row.try_get("child").unwrap_or_default(),
            parent: row.try_get("parent").unwrap_or_default(),
            columns: vec![],
            parent_columns: vec![],
        });
        key.columns.push(row.try_get("col").map_err(backend)?);
        key.parent_columns
            .push(row.try_get("parent_col").map_err(backend)?);
    }
    Ok(keys.into_values().collect())
}

/// Tables ordered so that every table comes after the tables it refers to.
fn parents_first(tables: &[String], keys: &[ForeignKey]) -> StoreResult<Vec<String>> {
    let mut done: Vec<String> = Vec::new();
    let mut left: BTreeSet<&String> = tables.iter().collect();
    while !left.is_empty() {
        let ready: Vec<&String> = left
            .iter()
            .copied()
            .filter(|t| {
                keys.iter()
                    .filter(|k| &k.table == *t && &k.parent != *t)
                    .all(|k| !left.contains(&k.parent))
            })
            .collect();
        if ready.is_empty() {
            return Err(StoreError::Invalid(format!(
                "the foreign keys between {left:?} form a cycle"
            )));
        }
        for t in ready {
            left.remove(t);
            done.push(t.clone());
        }
    }
    Ok(done)
}

/// Rows of a table that refers to itself, each after the row it refers to.
fn self_parents_first(
    rows: Vec<Vec<Option<String>>>,
    columns: &[Column],
    key: &ForeignKey,
) -> StoreResult<Vec<Vec<Option<String>>>> {
    let index = |name: &String| {
        columns
            .iter()
            .position(|c| &c.name == name)
            .ok_or_else(|| StoreError::Invalid(format!("column {name} not found")))
    };
    let child: Vec<usize> = key.columns.iter().map(index).collect::<Result<_, _>>()?;
    let parent: Vec<usize> = key
        .parent_columns
        .iter()
        .map(index)
        .collect::<Result<_, _>>()?;
    let mut inserted: HashSet<Vec<Option<String>>> = HashSet::new();
    let mut left = rows;
    let mut ordered = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let before = left.len();
        let (ready, waiting): (Vec<_>, Vec<_>) = left.into_iter().partition(|row| {
            let refers: Vec<Option<String>> = child.iter().map(|&i| row[i].clone()).collect();
            refers.iter().any(Option::is_none) || inserted.contains(&refers)
        });
        for row in ready {
            inserted.insert(parent.iter().map(|&i| row[i].clone()).collect());
            ordered.push(row);
        }
        left = waiting;
        if left.len() == before {
            return Err(StoreError::Invalid(format!(
                "{} rows of {} refer to rows that do not exist",
                left.len(),
                key.table
            )));
        }
    }
    Ok(ordered)
}

async fn columns(target: &PostgresStore, table: &str) -> StoreResult<Vec<Column>> {
    let rows = sqlx::query(
        "SELECT column_name::text AS name, udt_name::text AS udt FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(target.pool())
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|r| {
            Ok(Column {
                name: r.try_get("name").map_err(backend)?,
                cast: r.try_get("udt").map_err(backend)?,
            })
        })
        .collect()
}

/// The SQLite table has the same columns (both sides at the same migration).
async fn check_source_columns(
    source: &SqlitePool,
    table: &str,
    columns: &[Column],
) -> StoreResult<()> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
        .bind(table)
        .fetch_all(source)
        .await
        .map_err(backend)?;
    let source: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let target: BTreeSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    if source != target {
        return Err(StoreError::Invalid(format!(
            "table {table} differs between the databases (SQLite: {source:?}, PostgreSQL: {target:?}); migrate both to the same version first"
        )));
    }
    Ok(())
}

async fn insert_rows(
    tx: &mut sqlx::PgConnection,
    table: &str,
    columns: &[Column],
    rows: Vec<Vec<Option<String>>>,
) -> StoreResult<()> {
    // PostgreSQL takes at most 65,535 parameters per statement.
    let per_statement = (60_000 / columns.len().max(1)).clamp(1, 500);
    let names = columns
        .iter()
        .map(|c| quoted(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(per_statement) {
        let mut sql = format!("INSERT INTO {} ({names}) VALUES ", quoted(table));
        let mut n = 0;
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push_str(&format!("${n}::{}", quoted(&c.cast)));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(&sql);
        for row in chunk {
            for value in row {
                query = query.bind(value.clone());
            }
        }
        query
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Backend(format!("copying into {table}: {e}")))?;
    }
    Ok(())
}
