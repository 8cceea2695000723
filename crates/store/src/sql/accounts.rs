//! Accounts: organisations, users, roles, API tokens and password resets.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Args, Conn, Dialect, Fail, Get, Pools, R, Row, bad, dup, execute, fetch_all, fetch_optional,
};
use crate::sql::retrying;
use crate::{
    NewOrganisation, NewToken, NewUser, NotifyPref, OrgKind, Organisation, Role, StoreError,
    StoreResult, TokenRecord, User, UserPatch,
};

pub const ORG_COLS: &str = "id, name, kind, parent_id, created_at";

pub fn org<D: Dialect>(row: &Row<D>) -> R<Organisation> {
    let g = Get::<D>(row);
    let kind = g.str("kind")?;
    Ok(Organisation {
        id: g.id("id")?,
        name: g.str("name")?,
        kind: OrgKind::parse(&kind).ok_or_else(|| bad("organisation kind", &kind))?,
        parent_id: g.opt_id("parent_id")?,
        created_at: g.time("created_at")?,
    })
}

/// Users with their roles folded into one comma-separated column.
pub fn user_select<D: Dialect>() -> String {
    format!(
        "SELECT u.id, u.username, u.display_name, u.email, u.org_id, u.lang, u.notify_pref, \
         u.active, u.created_at, (SELECT {}(r.role, ',') FROM user_roles r \
         WHERE r.user_id = u.id) AS roles FROM users u",
        D::STRING_AGG
    )
}

pub fn user<D: Dialect>(row: &Row<D>) -> R<User> {
    let g = Get::<D>(row);
    let roles_text = g.opt_str("roles")?.unwrap_or_default();
    let mut roles = Vec::new();
    for r in roles_text.split(',').filter(|s| !s.is_empty()) {
        roles.push(Role::parse(r).ok_or_else(|| bad("role", r))?);
    }
    roles.sort();
    roles.dedup();
    let pref = g.str("notify_pref")?;
    Ok(User {
        id: g.id("id")?,
        username: g.str("username")?,
        display_name: g.str("display_name")?,
        email: g.str("email")?,
        org_id: g.opt_id("org_id")?,
        roles,
        lang: g.lang("lang")?,
        notify_pref: NotifyPref::parse(&pref).ok_or_else(|| bad("notify_pref", &pref))?,
        active: g.bool("active")?,
        created_at: g.time("created_at")?,
    })
}

pub const TOKEN_COLS: &str = "id, user_id, kind, name, scopes, created_at, expires_at, revoked_at";

pub fn token<D: Dialect>(row: &Row<D>) -> R<TokenRecord> {
    let g = Get::<D>(row);
    Ok(TokenRecord {
        id: g.id("id")?,
        user_id: g.id("user_id")?,
        kind: g.str("kind")?,
        name: g.opt_str("name")?,
        scopes: g.strings("scopes")?,
        created_at: g.time("created_at")?,
        expires_at: g.opt_time("expires_at")?,
        revoked_at: g.opt_time("revoked_at")?,
    })
}

fn users<D: Dialect>(rows: &[Row<D>]) -> R<Vec<User>> {
    rows.iter().map(user::<D>).collect()
}

fn duplicate_user<D: Dialect>(e: Fail, username: &str, email: &str) -> Fail {
    let violated = match &e {
        Fail::Db(db) => D::unique_violation(db),
        Fail::Store(_) => None,
    };
    match violated {
        Some(msg) if msg.contains("email") => Fail::Store(StoreError::Duplicate {
            what: "email",
            value: email.to_string(),
        }),
        Some(_) => Fail::Store(StoreError::Duplicate {
            what: "username",
            value: username.to_string(),
        }),
        None => e,
    }
}

async fn set_roles<D: Dialect>(conn: &mut Conn<D>, user: Uuid, roles: &[Role]) -> R<()> {
    for role in roles {
        D::execute(
            conn,
            "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            Args::new().id(user).text(role.as_str()),
        )
        .await?;
    }
    Ok(())
}

// ---- organisations

pub async fn create_org<D: Dialect>(
    pool: &Pools<D::DB>,
    new: NewOrganisation,
) -> StoreResult<Organisation> {
    let org = Organisation {
        id: Uuid::now_v7(),
        name: new.name.trim().to_string(),
        kind: new.kind,
        parent_id: new.parent_id,
        created_at: super::now(),
    };
    if org.name.is_empty() {
        return Err(StoreError::Invalid("an organisation needs a name".into()));
    }
    let r: R<()> = retrying!(D, async {
        if let Some(parent) = org.parent_id {
            get_org::<D>(pool, parent).await?;
        }
        execute::<D>(
            pool,
            &format!("INSERT INTO organisations ({ORG_COLS}) VALUES ($1, $2, $3, $4, $5)"),
            Args::new()
                .id(org.id)
                .text(&org.name)
                .text(org.kind.as_str())
                .opt_id(org.parent_id)
                .time(org.created_at),
        )
        .await
        .map_err(|e| dup::<D>(e, "organisation", &org.name))?;
        Ok(())
    });
    r.map_err(Fail::store::<D>)?;
    Ok(org)
}

pub async fn get_org<D: Dialect>(pool: &Pools<D::DB>, id: Uuid) -> StoreResult<Organisation> {
    let r: R<Organisation> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("SELECT {ORG_COLS} FROM organisations WHERE id = $1"),
            Args::new().id(id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("organisation", id))?;
        org::<D>(&row)
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn get_orgs<D: Dialect>(
    pool: &Pools<D::DB>,
    ids: &[Uuid],
) -> StoreResult<Vec<Organisation>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let r: R<Vec<Organisation>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!(
                "SELECT {ORG_COLS} FROM organisations WHERE id {} ORDER BY name",
                D::in_ids("$1")
            ),
            Args::new().ids(ids),
        )
        .await?;
        rows.iter().map(org::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn list_orgs<D: Dialect>(pool: &Pools<D::DB>) -> StoreResult<Vec<Organisation>> {
    let r: R<Vec<Organisation>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!(
                "SELECT {ORG_COLS} FROM organisations ORDER BY \
                 CASE kind WHEN 'province' THEN 0 WHEN 'city' THEN 1 ELSE 2 END, name"
            ),
            Args::new(),
        )
        .await?;
        rows.iter().map(org::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

// ---- users

pub async fn create_user<D: Dialect>(pool: &Pools<D::DB>, new: NewUser) -> StoreResult<User> {
    let user = User {
        id: Uuid::now_v7(),
        username: new.username.trim().to_string(),
        display_name: new.display_name,
        email: new.email.trim().to_string(),
        org_id: new.org_id,
        roles: {
            let mut r = new.roles;
            r.sort();
            r.dedup();
            r
        },
        lang: new.lang,
        notify_pref: NotifyPref::default(),
        active: true,
        created_at: super::now(),
    };
    if user.username.is_empty() {
        return Err(StoreError::Invalid("a user needs a username".into()));
    }
    let r: R<()> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        D::execute(
            &mut *tx,
            "INSERT INTO users (id, username, display_name, email, org_id, password_hash, \
             lang, notify_pref, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9)",
            Args::new()
                .id(user.id)
                .text(&user.username)
                .text(&user.display_name)
                .text(&user.email)
                .opt_id(user.org_id)
                .text(&new.password_hash)
                .text(user.lang.tag())
                .text(user.notify_pref.as_str())
                .time(user.created_at),
        )
        .await
        .map_err(|e| duplicate_user::<D>(e.into(), &user.username, &user.email))?;
        set_roles::<D>(&mut *tx, user.id, &user.roles).await?;
        tx.commit().await?;
        Ok(())
    });
    r.map_err(Fail::store::<D>)?;
    Ok(user)
}

pub async fn get_user<D: Dialect>(pool: &Pools<D::DB>, id: Uuid) -> StoreResult<User> {
    let r: R<User> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("{} WHERE u.id = $1", user_select::<D>()),
            Args::new().id(id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))?;
        user::<D>(&row)
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn get_users<D: Dialect>(pool: &Pools<D::DB>, ids: &[Uuid]) -> StoreResult<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{} WHERE u.id {} ORDER BY u.username",
        user_select::<D>(),
        D::in_ids("$1")
    );
    let r: R<Vec<User>> =
        async { users::<D>(&fetch_all::<D>(pool, &sql, Args::new().ids(ids)).await?) }.await;
    r.map_err(Fail::store::<D>)
}

pub async fn find_user_by_username<D: Dialect>(
    pool: &Pools<D::DB>,
    username: &str,
) -> StoreResult<Option<(User, String)>> {
    let sql = user_select::<D>().replacen(" FROM users u", ", u.password_hash FROM users u", 1);
    let r: R<Option<(User, String)>> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("{sql} WHERE u.username = $1"),
            Args::new().text(username.trim()),
        )
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let hash = Get::<D>(&row).str("password_hash")?;
                Ok(Some((user::<D>(&row)?, hash)))
            }
        }
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn find_user_by_email<D: Dialect>(
    pool: &Pools<D::DB>,
    email: &str,
) -> StoreResult<Option<User>> {
    let r: R<Option<User>> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("{} WHERE lower(u.email) = lower($1)", user_select::<D>()),
            Args::new().text(email.trim()),
        )
        .await?;
        row.as_ref().map(user::<D>).transpose()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn list_users<D: Dialect>(pool: &Pools<D::DB>) -> StoreResult<Vec<User>> {
    let sql = format!("{} ORDER BY u.username", user_select::<D>());
    let r: R<Vec<User>> =
        async { users::<D>(&fetch_all::<D>(pool, &sql, Args::new()).await?) }.await;
    r.map_err(Fail::store::<D>)
}

pub async fn update_user<D: Dialect>(
    pool: &Pools<D::DB>,
    id: Uuid,
    patch: UserPatch,
) -> StoreResult<User> {
    let r: R<()> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let exists = D::fetch_optional(
            &mut *tx,
            "SELECT username, email FROM users WHERE id = $1",
            Args::new().id(id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))?;
        let username = Get::<D>(&exists).str("username")?;
        let mut args = Args::new();
        let mut sql = String::from("UPDATE users SET id = id");
        if let Some(v) = &patch.display_name {
            sql += &format!(
                ", display_name = {}",
                args.push(super::Arg::Text(Some(v.clone())))
            );
        }
        if let Some(v) = &patch.email {
            let p = args.push(super::Arg::Text(Some(v.trim().to_string())));
            sql += &format!(", email = {p}");
        }
        if let Some(v) = &patch.org_id {
            sql += &format!(", org_id = {}", args.push(super::Arg::Id(*v)));
        }
        if let Some(v) = &patch.lang {
            let p = args.push(super::Arg::Text(Some(v.tag().to_string())));
            sql += &format!(", lang = {p}");
        }
        if let Some(v) = patch.notify_pref {
            let p = args.push(super::Arg::Text(Some(v.as_str().to_string())));
            sql += &format!(", notify_pref = {p}");
        }
        if let Some(v) = patch.active {
            sql += &format!(", active = {}", args.push(super::Arg::Bool(v)));
        }
        sql += &format!(" WHERE id = {}", args.push(super::Arg::Id(Some(id))));
        D::execute(&mut *tx, &sql, args).await.map_err(|e| {
            duplicate_user::<D>(e.into(), &username, patch.email.as_deref().unwrap_or(""))
        })?;
        if let Some(roles) = &patch.roles {
            D::execute(
                &mut *tx,
                "DELETE FROM user_roles WHERE user_id = $1",
                Args::new().id(id),
            )
            .await?;
            set_roles::<D>(&mut *tx, id, roles).await?;
        }
        tx.commit().await?;
        Ok(())
    });
    r.map_err(Fail::store::<D>)?;
    get_user::<D>(pool, id).await
}

pub async fn set_password_hash<D: Dialect>(
    pool: &Pools<D::DB>,
    id: Uuid,
    password_hash: &str,
) -> StoreResult<()> {
    let changed = execute::<D>(
        pool,
        "UPDATE users SET password_hash = $1 WHERE id = $2",
        Args::new().text(password_hash).id(id),
    )
    .await
    .map_err(Fail::store::<D>)?;
    if changed == 0 {
        return Err(StoreError::not_found("user", id));
    }
    Ok(())
}

pub async fn users_with_role<D: Dialect>(
    pool: &Pools<D::DB>,
    role: Role,
    orgs: Option<&[Uuid]>,
) -> StoreResult<Vec<User>> {
    let mut sql = format!(
        "{} WHERE u.active AND EXISTS (SELECT 1 FROM user_roles r \
         WHERE r.user_id = u.id AND r.role = $1)",
        user_select::<D>()
    );
    let mut args = Args::new().text(role.as_str());
    if let Some(orgs) = orgs {
        if orgs.is_empty() {
            return Ok(Vec::new());
        }
        sql += &format!(" AND u.org_id {}", D::in_ids(&args.next()));
        args = args.ids(orgs);
    }
    sql += " ORDER BY u.username";
    let r: R<Vec<User>> = async { users::<D>(&fetch_all::<D>(pool, &sql, args).await?) }.await;
    r.map_err(Fail::store::<D>)
}

pub async fn change_password<D: Dialect>(
    pool: &Pools<D::DB>,
    id: Uuid,
    password_hash: &str,
    keep: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    let r: R<u64> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let updated = D::execute(
            &mut *tx,
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            Args::new().text(password_hash).id(id),
        )
        .await?;
        if updated == 0 {
            return Err(StoreError::not_found("user", id).into());
        }
        let revoked = D::execute(
            &mut *tx,
            "UPDATE tokens SET revoked_at = $1 \
             WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL",
            Args::new().time(at).id(id).id(keep),
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    });
    r.map_err(Fail::store::<D>)
}

// ---- credentials

pub async fn create_token<D: Dialect>(
    pool: &Pools<D::DB>,
    new: NewToken,
) -> StoreResult<TokenRecord> {
    let token = TokenRecord {
        id: Uuid::now_v7(),
        user_id: new.user_id,
        kind: new.kind,
        name: new.name,
        scopes: new.scopes,
        created_at: super::now(),
        expires_at: new
            .expires_at
            .map(|t| chrono::SubsecRound::trunc_subsecs(t, 6)),
        revoked_at: None,
    };
    execute::<D>(
        pool,
        &format!(
            "INSERT INTO tokens ({TOKEN_COLS}, token_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)"
        ),
        Args::new()
            .id(token.id)
            .id(token.user_id)
            .text(&token.kind)
            .opt_text(token.name.clone())
            .strings(&token.scopes)
            .time(token.created_at)
            .opt_time(token.expires_at)
            .text(&new.token_hash),
    )
    .await
    .map_err(|e| dup::<D>(e, "token", "(hash)").store::<D>())?;
    Ok(token)
}

pub async fn find_token<D: Dialect>(
    pool: &Pools<D::DB>,
    token_hash: &str,
) -> StoreResult<Option<TokenRecord>> {
    let r: R<Option<TokenRecord>> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("SELECT {TOKEN_COLS} FROM tokens WHERE token_hash = $1"),
            Args::new().text(token_hash),
        )
        .await?;
        row.as_ref().map(token::<D>).transpose()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

/// The token and its user in one statement (see `AccountStore::find_token_with_user`).
pub async fn find_token_with_user<D: Dialect>(
    pool: &Pools<D::DB>,
    token_hash: &str,
) -> StoreResult<Option<(TokenRecord, User)>> {
    let sql = user_select::<D>().replacen(
        " FROM users u",
        ", t.id AS t_id, t.kind AS t_kind, t.name AS t_name, t.scopes AS t_scopes, \
         t.created_at AS t_created_at, t.expires_at AS t_expires_at, \
         t.revoked_at AS t_revoked_at FROM tokens t JOIN users u ON u.id = t.user_id",
        1,
    );
    let r: R<Option<(TokenRecord, User)>> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("{sql} WHERE t.token_hash = $1"),
            Args::new().text(token_hash),
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = user::<D>(&row)?;
        let g = Get::<D>(&row);
        let token = TokenRecord {
            id: g.id("t_id")?,
            user_id: user.id,
            kind: g.str("t_kind")?,
            name: g.opt_str("t_name")?,
            scopes: g.strings("t_scopes")?,
            created_at: g.time("t_created_at")?,
            expires_at: g.opt_time("t_expires_at")?,
            revoked_at: g.opt_time("t_revoked_at")?,
        };
        Ok(Some((token, user)))
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn revoke_token<D: Dialect>(
    pool: &Pools<D::DB>,
    id: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let changed = execute::<D>(
        pool,
        "UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2",
        Args::new().time(at).id(id),
    )
    .await
    .map_err(Fail::store::<D>)?;
    if changed == 0 {
        return Err(StoreError::not_found("token", id));
    }
    Ok(())
}

pub async fn revoke_user_tokens<D: Dialect>(
    pool: &Pools<D::DB>,
    user_id: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    execute::<D>(
        pool,
        "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        Args::new().time(at).id(user_id),
    )
    .await
    .map_err(Fail::store::<D>)
}

pub async fn list_tokens<D: Dialect>(
    pool: &Pools<D::DB>,
    user_id: Uuid,
) -> StoreResult<Vec<TokenRecord>> {
    let r: R<Vec<TokenRecord>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!("SELECT {TOKEN_COLS} FROM tokens WHERE user_id = $1 ORDER BY created_at, id"),
            Args::new().id(user_id),
        )
        .await?;
        rows.iter().map(token::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn create_reset_token<D: Dialect>(
    pool: &Pools<D::DB>,
    user_id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    execute::<D>(
        pool,
        "INSERT INTO password_reset_tokens (token_hash, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
        Args::new()
            .text(token_hash)
            .id(user_id)
            .time(super::now())
            .time(expires_at),
    )
    .await
    .map_err(|e| dup::<D>(e, "reset token", "(hash)").store::<D>())?;
    Ok(())
}

const RESET_TOKEN_SELECT: &str =
    "SELECT user_id, expires_at, used_at FROM password_reset_tokens WHERE token_hash = $1";

/// The user of a reset token's row when it is unused and unexpired.
fn live_reset_user<D: Dialect>(row: Option<Row<D>>, now: DateTime<Utc>) -> R<Uuid> {
    let row = row.ok_or(StoreError::InvalidToken)?;
    let g = Get::<D>(&row);
    if g.opt_time("used_at")?.is_some() || g.time("expires_at")? <= now {
        return Err(StoreError::InvalidToken.into());
    }
    g.id("user_id")
}

pub async fn check_reset_token<D: Dialect>(
    pool: &Pools<D::DB>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Uuid> {
    let r: R<Uuid> = async {
        let row =
            fetch_optional::<D>(pool, RESET_TOKEN_SELECT, Args::new().text(token_hash)).await?;
        live_reset_user::<D>(row, now)
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn consume_reset_token<D: Dialect>(
    pool: &Pools<D::DB>,
    token_hash: &str,
    now: DateTime<Utc>,
    new_password_hash: &str,
) -> StoreResult<Uuid> {
    let r: R<Uuid> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let sql = format!("{RESET_TOKEN_SELECT}{}", D::FOR_UPDATE);
        let row = D::fetch_optional(&mut *tx, &sql, Args::new().text(token_hash)).await?;
        let user_id = live_reset_user::<D>(row, now)?;
        // Every outstanding reset link of the user dies with this one.
        D::execute(
            &mut *tx,
            "UPDATE password_reset_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
            Args::new().time(now).id(user_id),
        )
        .await?;
        D::execute(
            &mut *tx,
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            Args::new().text(new_password_hash).id(user_id),
        )
        .await?;
        D::execute(
            &mut *tx,
            "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            Args::new().time(now).id(user_id),
        )
        .await?;
        tx.commit().await?;
        Ok(user_id)
    });
    r.map_err(Fail::store::<D>)
}

// ---- [`AccountStore`] for every SQL backend

#[async_trait::async_trait]
impl<S: super::SqlBackend> crate::AccountStore for S {
    async fn create_org(&self, new: NewOrganisation) -> StoreResult<Organisation> {
        create_org::<S::D>(self.sql_pool(), new).await
    }

    async fn get_org(&self, id: Uuid) -> StoreResult<Organisation> {
        get_org::<S::D>(self.sql_pool(), id).await
    }

    async fn get_orgs(&self, ids: &[Uuid]) -> StoreResult<Vec<Organisation>> {
        get_orgs::<S::D>(self.sql_pool(), ids).await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Organisation>> {
        list_orgs::<S::D>(self.sql_pool()).await
    }

    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        create_user::<S::D>(self.sql_pool(), new).await
    }

    async fn get_user(&self, id: Uuid) -> StoreResult<User> {
        get_user::<S::D>(self.sql_pool(), id).await
    }

    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        get_users::<S::D>(self.sql_pool(), ids).await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        find_user_by_username::<S::D>(self.sql_pool(), username).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        find_user_by_email::<S::D>(self.sql_pool(), email).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        list_users::<S::D>(self.sql_pool()).await
    }

    async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User> {
        update_user::<S::D>(self.sql_pool(), id, patch).await
    }

    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        set_password_hash::<S::D>(self.sql_pool(), id, password_hash).await
    }

    async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        change_password::<S::D>(self.sql_pool(), id, password_hash, keep, at).await
    }

    async fn users_with_role(&self, role: Role, orgs: Option<&[Uuid]>) -> StoreResult<Vec<User>> {
        users_with_role::<S::D>(self.sql_pool(), role, orgs).await
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        create_token::<S::D>(self.sql_pool(), new).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        find_token::<S::D>(self.sql_pool(), token_hash).await
    }

    async fn find_token_with_user(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(TokenRecord, User)>> {
        find_token_with_user::<S::D>(self.sql_pool(), token_hash).await
    }

    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        revoke_token::<S::D>(self.sql_pool(), id, at).await
    }

    async fn revoke_user_tokens(&self, user_id: Uuid, at: DateTime<Utc>) -> StoreResult<u64> {
        revoke_user_tokens::<S::D>(self.sql_pool(), user_id, at).await
    }

    async fn list_tokens(&self, user_id: Uuid) -> StoreResult<Vec<TokenRecord>> {
        list_tokens::<S::D>(self.sql_pool(), user_id).await
    }

    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        create_reset_token::<S::D>(self.sql_pool(), user_id, token_hash, expires_at).await
    }

    async fn check_reset_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Uuid> {
        check_reset_token::<S::D>(self.sql_pool(), token_hash, now).await
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        new_password_hash: &str,
    ) -> StoreResult<Uuid> {
        consume_reset_token::<S::D>(self.sql_pool(), token_hash, now, new_password_hash).await
    }
}
