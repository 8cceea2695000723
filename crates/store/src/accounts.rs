//! [`AccountStore`]: organisations, users, sessions and API tokens, password resets.
//! Its SQL, the same for every backend, and its implementation for every `SqlBackend` are
//! in `crate::sql::accounts` (feature `sql`); [`crate::Store`] is all the aggregates together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    NewOrganisation, NewToken, NewUser, Organisation, Role, StoreResult, TokenRecord, User,
    UserPatch,
};

/// Organisations, users, sessions and API tokens, password resets.
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_org(&self, new: NewOrganisation) -> StoreResult<Organisation>;
    async fn get_org(&self, id: Uuid) -> StoreResult<Organisation>;
    async fn get_orgs(&self, ids: &[Uuid]) -> StoreResult<Vec<Organisation>>;
    async fn list_orgs(&self) -> StoreResult<Vec<Organisation>>;
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    async fn get_user(&self, id: Uuid) -> StoreResult<User>;
    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>>;
    /// The user and their password hash, for login.
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User>;
    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> StoreResult<()>;
    /// In one transaction: set the password hash and revoke every live token of the user
    /// but `keep` (the session that changed it). Returns how many were revoked.
    async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Active users holding `role`, optionally only in the given organisations.
    async fn users_with_role(&self, role: Role, orgs: Option<&[Uuid]>) -> StoreResult<Vec<User>>;
    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord>;
    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// The token and its user, for the bearer check of every request: one statement on
    /// the SQL stores (this default makes two reads).
    async fn find_token_with_user(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(TokenRecord, User)>> {
        let Some(token) = self.find_token(token_hash).await? else {
            return Ok(None);
        };
        let user = self.get_user(token.user_id).await?;
        Ok(Some((token, user)))
    }
    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()>;
    /// Revoke every token of a user; returns how many were live.
    async fn revoke_user_tokens(&self, user_id: Uuid, at: DateTime<Utc>) -> StoreResult<u64>;
    async fn list_tokens(&self, user_id: Uuid) -> StoreResult<Vec<TokenRecord>>;
    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The user of an unused, unexpired reset token (`InvalidToken` otherwise), changing
    /// nothing: checked before the new password is hashed, which is expensive.
    async fn check_reset_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Uuid>;
    /// In one transaction: check the reset token is unused and unexpired, mark it used,
    /// set the new password hash and revoke the user's tokens. Returns the user id.
    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        new_password_hash: &str,
    ) -> StoreResult<Uuid>;
}
