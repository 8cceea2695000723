//! The mutation root: sessions and tokens, administration, instances and transitions.

use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use grantflow_service::{CreateInstance, FireEvent};
use grantflow_store::{
    Lang, NewOrganisation, NewOutboxMessage, NewToken, NewUser, Role, UserPatch,
};
use serde_json::json;

use crate::auth::{self, scope};
use crate::context::{
    argon2, guards, rc, service_err, store_err, viewer, viewer_with_role, viewer_with_scope,
    viewer_with_session,
};
use crate::error::ApiError;
use crate::types::{
    HistoryEntryGql, InstanceGql, NotifyPrefGql, OrgKindGql, OrganisationGql, RoleGql, TokenGql,
    UserGql, parse_id,
};

/// The core mutations; [`MutationRoot`] merges them with those of the review and
/// programme modules.
#[derive(Default)]
pub struct CoreMutation;

/// The mutation root of the schema.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    CoreMutation,
    crate::programme::ProgrammeMutation,
    crate::programme::FundingMutation,
    crate::review::ReviewMutation,
    crate::public::PublicMutation,
    crate::programme::ThirdPartyMutation,
);

#[derive(SimpleObject)]
pub struct LoginPayload {
    /// The bearer token: send it as `Authorization: Bearer <token>`. Shown only once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub viewer: UserGql,
}

#[derive(SimpleObject)]
pub struct ApiTokenPayload {
    /// The secret; shown only once, stored only as a hash.
    pub token: String,
    pub record: TokenGql,
}

#[derive(SimpleObject)]
pub struct TransitionPayload {
    pub instance: InstanceGql,
    pub history_entry: HistoryEntryGql,
    /// True when this is the stored result of an earlier request with the same
    /// idempotency key (nothing was changed).
    pub replayed: bool,
}

#[derive(InputObject)]
pub struct CreateInstanceInput {
    pub workflow_id: String,
    pub title: String,
    /// The unit the instance belongs to (managers only; others create for their own unit).
    pub organisation_id: Option<ID>,
    pub parent_id: Option<ID>,
    /// Initial data, checked against the workflow's fields. The fields the service sets
    /// from the call (`call_id`, `closing_date`, `catalogue_item`, `part`,
    /// `applicant_kind`, …) are refused here (`SET_BY_SERVICE`).
    pub data: Option<Json<serde_json::Value>>,
    /// The stored call an application (`funded-project`) or a demand
    /// (`demand-collection`) belongs to: required for those workflows.
    pub call_id: Option<ID>,
    /// The catalogue item of the call an application is for (`2022-3-1-20`).
    pub catalogue_item: Option<String>,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub password: String,
    pub roles: Vec<RoleGql>,
    pub organisation_id: Option<ID>,
    /// `zh-CN` (default) or `en`.
    pub lang: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Option<Vec<RoleGql>>,
    pub organisation_id: Option<ID>,
    pub lang: Option<String>,
    pub active: Option<bool>,
}

fn check_email(email: &str) -> Result<(), ApiError> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "email",
            "电子邮箱格式不正确",
            "the e-mail address is not valid",
        ))
    }
}

/// The language a `lang` argument names: exactly `zh-CN` or `en`.
fn parse_lang(lang: &str) -> Result<Lang, ApiError> {
    Lang::from_tag(lang).ok_or_else(|| {
        ApiError::invalid_field("lang", "语言须为 zh-CN 或 en", "lang must be zh-CN or en")
    })
}

fn check_username(username: &str) -> Result<(), ApiError> {
    let ok = (3..=64).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "username",
            "用户名须为 3–64 位字母、数字或 . _ -",
            "the username must be 3–64 letters, digits or . _ -",
        ))
    }
}

fn strong_password(field: &str, password: &str) -> Result<(), ApiError> {
    auth::check_password_strength(password)
        .map_err(|(zh, en)| ApiError::invalid_field(field, zh, en))
}

#[Object]
impl CoreMutation {
    /// Exchange a username and password for a session token.
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<LoginPayload> {
        let r = rc(ctx);
        // Every attempt counts, however many share a request; a locked account or address
        // is refused before any password work.
        if let Err(wait) = guards(ctx)
            .logins
            .begin(&username, r.client_addr, r.services.now())
        {
            return Err(ApiError::new(crate::error::Code::RateLimited)
                .with_message(
                    format!("登录尝试过多，请 {wait} 秒后再试"),
                    format!("too many login attempts; try again in {wait} s"),
                )
                .with_details(json!({ "reason": "TOO_MANY_ATTEMPTS", "retryAfterSeconds": wait }))
                .into());
        }
        let store = r.services.store.as_ref();
        let found = store
            .find_user_by_username(username.trim())
            .await
            .map_err(|e| store_err(ctx, e))?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let password_ok = argon2(ctx, move || {
            // Verify against a dummy hash so that timing does not reveal unknown usernames
            // (computed once, here too: off the async workers).
            let hash: &str = match &hash {
                Some(h) => h,
                None => auth::dummy_hash(),
            };
            auth::verify_password(&password, hash)
        })
        .await?;
        let user = match user {
            Some(u) if password_ok && u.active => u,
            _ => {
                return Err(ApiError::unauthenticated()
                    .with_message("用户名或密码错误", "wrong username or password")
                    .into());
            }
        };
        guards(ctx).logins.succeeded(&username, r.client_addr);
        let now = r.services.now();
        let expires_at = now + Duration::hours(r.settings.session_ttl_hours);
        let (token, token_hash) = auth::new_token(auth::SESSION_PREFIX);
        store
            .create_token(NewToken {
                user_id: user.id,
                token_hash,
                kind: "session".into(),
                name: None,
                scopes: auth::scope::ALL.iter().map(ToString::to_string).collect(),
                expires_at: Some(expires_at),
            })
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(LoginPayload {
            token,
            expires_at,
            viewer: UserGql(user),
        })
    }

    /// Revoke the token this request was made with.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let v = viewer(ctx)?;
        let r = rc(ctx);
        r.services
            .store
            .revoke_token(v.token.id, r.services.now())
            .await
            .map_err(|e| store_err(ctx, e))?;
        guards(ctx).credentials_changed(v.user.id);
        Ok(true)
    }

    /// Revoke every session and API token of the viewer; returns how many were live.
    /// Needs a login session.
    async fn revoke_all_tokens(&self, ctx: &Context<'_>) -> Result<u64> {
        let v = viewer_with_session(ctx)?;
        let r = rc(ctx);
        let n = r
            .services
            .store
            .revoke_user_tokens(v.user.id, r.services.now())
            .await
            .map_err(|e| store_err(ctx, e))?;
        guards(ctx).credentials_changed(v.user.id);
        Ok(n)
    }

    /// A long-lived token for a non-interactive client (e.g. a reviewer's tool), limited
    /// to the given scopes: read, transition, review, admin.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        scopes: Vec<String>,
        expires_in_days: Option<u32>,
    ) -> Result<ApiTokenPayload> {
        let v = viewer_with_session(ctx)?;
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::invalid_field(
                "name",
                "令牌名称须为 1–100 字",
                "the name must be 1–100 characters",
            )
            .into());
        }
        if scopes.is_empty() || scopes.iter().any(|s| !scope::ALL.contains(&s.as_str())) {
            return Err(ApiError::invalid_field(
                "scopes",
                "权限范围须为 read、transition、review、admin 中的一项或多项",
                "scopes must be among read, transition, review, admin",
            )
            .into());
        }
        if scopes.iter().any(|s| s == scope::ADMIN) && !v.has_role(Role::Admin) {
            return Err(ApiError::forbidden().into());
        }
        let days = expires_in_days.unwrap_or(365).clamp(1, 730);
        let r = rc(ctx);
        let (token, token_hash) = auth::new_token(auth::API_PREFIX);
        let record = r
            .services
            .store
            .create_token(NewToken {
                user_id: v.user.id,
                token_hash,
                kind: "api".into(),
                name: Some(name),
                scopes,
                expires_at: Some(r.services.now() + Duration::days(i64::from(days))),
            })
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(ApiTokenPayload {
            token,
            record: TokenGql(record),
        })
    }

    /// Revoke one of the viewer's tokens (from a login session; an API token revokes
    /// itself with `logout`).
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let v = viewer_with_session(ctx)?;
        let id = parse_id(&id, "id")?;
        let r = rc(ctx);
        let tokens = r
            .services
            .store
            .list_tokens(v.user.id)
            .await
            .map_err(|e| store_err(ctx, e))?;
        if !tokens.iter().any(|t| t.id == id) {
            return Err(ApiError::not_found("token").into());
        }
        r.services
            .store
            .revoke_token(id, r.services.now())
            .await
            .map_err(|e| store_err(ctx, e))?;
        guards(ctx).credentials_changed(v.user.id);
        Ok(true)
    }

    /// Send a one-time reset token by e-mail. Always answers true, so that it does not
    /// reveal which addresses have accounts.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let r = rc(ctx);
        let store = r.services.store.as_ref();
        let Some(user) = store
            .find_user_by_email(email.trim())
            .await
            .map_err(|e| store_err(ctx, e))?
        else {
            return Ok(true);
        };
        if !user.active {
            return Ok(true);
        }
        let now = r.services.now();
        let expires_at = now + Duration::minutes(r.settings.reset_ttl_minutes);
        let (token, token_hash) = auth::new_token(auth::RESET_PREFIX);
        store
            .create_reset_token(user.id, &token_hash, expires_at)
            .await
            .map_err(|e| store_err(ctx, e))?;
        store
            .enqueue(vec![NewOutboxMessage {
                idempotency_key: format!("reset:{token_hash}"),
                recipient_user_id: Some(user.id),
                to_address: user.email.clone(),
                to_name: user.display_name.clone(),
                template: "password_reset".into(),
                lang: user.lang,
                context: json!({
                    "recipient_name": user.display_name,
                    "token": token,
                    "expires_at": expires_at,
                    "link": format!("{}/reset-password?token={token}", r.services.public_url),
                }),
                instance_id: None,
                kind: "password_reset".into(),
                not_before: now,
            }])
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(true)
    }

    /// Set a new password with an e-mailed reset token; every session is revoked.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> Result<bool> {
        strong_password("newPassword", &new_password)?;
        let r = rc(ctx);
        let token_hash = auth::token_hash(token.trim());
        // The token first: hashing costs 19 MiB and two passes of argon2, which a request
        // with a made-up token must not get to spend.
        r.services
            .store
            .check_reset_token(&token_hash, r.services.now())
            .await
            .map_err(|e| store_err(ctx, e))?;
        let hash = argon2(ctx, move || auth::hash_password(&new_password)).await?;
        let user = r
            .services
            .store
            .consume_reset_token(&token_hash, r.services.now(), &hash)
            .await
            .map_err(|e| store_err(ctx, e))?;
        guards(ctx).credentials_changed(user);
        Ok(true)
    }

    /// Change the viewer's password (from a login session); every other session and API
    /// token of the viewer is revoked.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        old_password: String,
        new_password: String,
    ) -> Result<bool> {
        let v = viewer_with_session(ctx)?;
        strong_password("newPassword", &new_password)?;
        let r = rc(ctx);
        let store = r.services.store.as_ref();
        let Some((_, hash)) = store
            .find_user_by_username(&v.user.username)
            .await
            .map_err(|e| store_err(ctx, e))?
        else {
            return Err(ApiError::unauthenticated().into());
        };
        let ok = argon2(ctx, move || auth::verify_password(&old_password, &hash)).await?;
        if !ok {
            return Err(ApiError::invalid_field(
                "oldPassword",
                "原密码不正确",
                "the current password is wrong",
            )
            .into());
        }
        let new_hash = argon2(ctx, move || auth::hash_password(&new_password)).await?;
        // Every other session and API token ends with the old password: whoever knew it
        // may have signed in with it.
        store
            .change_password(v.user.id, &new_hash, v.token.id, r.services.now())
            .await
            .map_err(|e| store_err(ctx, e))?;
        guards(ctx).credentials_changed(v.user.id);
        Ok(true)
    }

    /// Choose how deadline e-mails arrive: IMMEDIATE, DIGEST_ONLY or NONE (escalations
    /// always go out). Needs a login session.
    async fn set_notification_preference(
        &self,
        ctx: &Context<'_>,
        preference: NotifyPrefGql,
    ) -> Result<UserGql> {
        let v = viewer_with_session(ctx)?;
        let user = rc(ctx)
            .services
            .store
            .update_user(
                v.user.id,
                UserPatch {
                    notify_pref: Some(preference.into()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(UserGql(user))
    }

    // ------------------------------------------------------------ administration

    async fn create_organisation(
        &self,
        ctx: &Context<'_>,
        name: String,
        kind: OrgKindGql,
        parent_id: Option<ID>,
    ) -> Result<OrganisationGql> {
        viewer_with_role(ctx, &[Role::Admin])?;
        viewer_with_scope(ctx, scope::ADMIN)?;
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::invalid_field(
                "name",
                "名称须为 1–200 字",
                "the name must be 1–200 characters",
            )
            .into());
        }
        let parent_id = parent_id
            .as_ref()
            .map(|p| parse_id(p, "parentId"))
            .transpose()?;
        let store = rc(ctx).services.store.as_ref();
        // The hierarchy: the province; under it cities, provincial organisations, the
        // protection centres and third parties; units under their city.
        let expected_parent = grantflow_store::OrgKind::from(kind).expected_parent();
        match (expected_parent, parent_id) {
            (None, None) => {}
            (Some(k), Some(p)) => {
                let parent = store.get_org(p).await.map_err(|e| store_err(ctx, e))?;
                if parent.kind != k {
                    return Err(ApiError::invalid_field(
                        "parentId",
                        "上级单位不符：地市内单位隶属地市局，其他单位隶属省局",
                        "wrong parent: a unit in a city hangs under its city bureau, every other organisation under the province",
                    )
                    .into());
                }
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "parentId",
                    "省局没有上级；其他单位必须指定上级",
                    "the province has no parent; every other organisation needs one",
                )
                .into());
            }
        }
        let org = store
            .create_org(NewOrganisation {
                name,
                kind: kind.into(),
                parent_id,
            })
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(OrganisationGql(org))
    }

    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<UserGql> {
        viewer_with_role(ctx, &[Role::Admin])?;
        viewer_with_scope(ctx, scope::ADMIN)?;
        check_username(&input.username)?;
        check_email(&input.email)?;
        strong_password("password", &input.password)?;
        let lang = input.lang.as_deref().map_or(Ok(Lang::ZhCn), parse_lang)?;
        if input.display_name.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "displayName",
                "姓名不能为空",
                "the display name is required",
            )
            .into());
        }
        let org_id = input
            .organisation_id
            .as_ref()
            .map(|o| parse_id(o, "organisationId"))
            .transpose()?;
        let r = rc(ctx);
        if let Some(org) = org_id {
            r.services
                .store
                .get_org(org)
                .await
                .map_err(|e| store_err(ctx, e))?;
        }
        let password = input.password;
        let hash = argon2(ctx, move || auth::hash_password(&password)).await?;
        let user = r
            .services
            .store
            .create_user(NewUser {
                username: input.username,
                display_name: input.display_name.trim().to_string(),
                email: input.email.trim().to_string(),
                org_id,
                roles: input.roles.into_iter().map(Into::into).collect(),
                password_hash: hash,
                lang,
            })
            .await
            .map_err(|e| store_err(ctx, e))?;
        Ok(UserGql(user))
    }

    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateUserInput,
    ) -> Result<UserGql> {
        viewer_with_role(ctx, &[Role::Admin])?;
        viewer_with_scope(ctx, scope::ADMIN)?;
        let id = parse_id(&id, "id")?;
        if let Some(e) = &input.email {
            check_email(e)?;
        }
        let lang = input.lang.as_deref().map(parse_lang).transpose()?;
        let org = input
            .organisation_id
            .as_ref()
            .map(|o| parse_id(o, "organisationId"))
            .transpose()?;
        let user = rc(ctx)
            .services
            .store
            .update_user(
                id,
                UserPatch {
                    display_name: input.display_name,
                    email: input.email,
                    roles: input.roles.map(|r| r.into_iter().map(Into::into).collect()),
                    org_id: org.map(Some),
                    lang,
                    notify_pref: None,
                    active: input.active,
                },
            )
            .await
            .map_err(|e| store_err(ctx, e))?;
        if user.active {
            // Open sockets re-read the user (roles, organisation) at once.
            guards(ctx).credentials_changed(user.id);
            return Ok(UserGql(user));
        }
        // A deactivated user loses every session at once.
        let r = rc(ctx);
        r.services
            .store
            .revoke_user_tokens(user.id, r.services.now())
            .await
            .map_err(|e| store_err(ctx, e))?;
        guards(ctx).credentials_changed(user.id);
        Ok(UserGql(user))
    }

    // ------------------------------------------------------------ instances

    /// Start an instance of a workflow (its latest version) in the initial state.
    async fn create_instance(
        &self,
        ctx: &Context<'_>,
        input: CreateInstanceInput,
    ) -> Result<InstanceGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let req = CreateInstance {
            workflow_id: input.workflow_id,
            org_id: input
                .organisation_id
                .as_ref()
                .map(|o| parse_id(o, "organisationId"))
                .transpose()?,
            parent_id: input
                .parent_id
                .as_ref()
                .map(|p| parse_id(p, "parentId"))
                .transpose()?,
            title: input.title,
            data: input.data.map(|j| j.0).unwrap_or(serde_json::Value::Null),
            // An id that is not even a UUID names no stored call: UNKNOWN_CALL like any.
            call_id: input
                .call_id
                .as_ref()
                .map(|c| uuid::Uuid::parse_str(c.as_str()).unwrap_or(uuid::Uuid::nil())),
            catalogue_item: input.catalogue_item.map(|c| c.chars().take(64).collect()),
        };
        let instance = rc(ctx)
            .services
            .create_instance(&v.user, req)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(InstanceGql(instance))
    }

    /// Fire an event. `expectedVersion` is the version the client last read (CONFLICT
    /// otherwise); the same `idempotencyKey` returns the first result and changes nothing.
    #[allow(
        clippy::too_many_arguments,
        reason = "each argument is a GraphQL argument"
    )]
    async fn transition(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        event: String,
        expected_version: i64,
        idempotency_key: Option<String>,
        input: Option<Json<serde_json::Value>>,
        reason: Option<String>,
    ) -> Result<TransitionPayload> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        if let Some(k) = &idempotency_key
            && (k.is_empty() || k.len() > 200)
        {
            return Err(ApiError::invalid_field(
                "idempotencyKey",
                "幂等键须为 1–200 个字符",
                "the idempotency key must be 1–200 characters",
            )
            .into());
        }
        if reason.as_ref().is_some_and(|r| r.chars().count() > 4000) {
            return Err(ApiError::invalid_field(
                "reason",
                "理由不能超过 4000 字",
                "the reason may not exceed 4000 characters",
            )
            .into());
        }
        let applied = rc(ctx)
            .services
            .fire(
                &v.user,
                FireEvent {
                    instance_id: parse_id(&instance_id, "instanceId")?,
                    event,
                    expected_version,
                    idempotency_key,
                    input: input.map(|j| j.0).unwrap_or(serde_json::Value::Null),
                    reason,
                },
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(TransitionPayload {
            instance: InstanceGql(applied.instance),
            history_entry: applied.record.into(),
            replayed: applied.replayed,
        })
    }

    /// Move the current state's deadline to the end of `newDueDate` (managers, with a
    /// reason); reminders and the timeout are recomputed.
    async fn extend_deadline(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        expected_version: i64,
        #[graphql(validator(custom = "crate::types::DateInRange"))] new_due_date: NaiveDate,
        reason: String,
    ) -> Result<TransitionPayload> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let applied = rc(ctx)
            .services
            .extend_deadline(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                expected_version,
                new_due_date,
                &reason,
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(TransitionPayload {
            instance: InstanceGql(applied.instance),
            history_entry: applied.record.into(),
            replayed: false,
        })
    }
}
