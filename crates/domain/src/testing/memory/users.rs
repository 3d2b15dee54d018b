//! [`UserRepository`] and [`ApiKeyRepository`] in memory.

use async_trait::async_trait;

use super::InMemoryStore;
use crate::auth::{ApiKey, Role, User, Username};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::ids::ApiKeyId;
use crate::ports::{ApiKeyRepository, UserDeletion, UserRepository};

#[async_trait]
impl UserRepository for InMemoryStore {
    async fn insert_user(&self, user: &User) -> RepoResult<()> {
        let mut state = self.state();
        if state.users.contains_key(user.username.as_str()) {
            return Err(RepoError::Conflict(format!(
                "user '{}' already exists",
                user.username
            )));
        }
        state
            .users
            .insert(user.username.as_str().to_owned(), user.clone());
        Ok(())
    }

    async fn get_user(&self, username: &Username) -> RepoResult<User> {
        self.state()
            .users
            .get(username.as_str())
            .cloned()
            .ok_or(RepoError::NotFound("user"))
    }

    async fn list_users(&self) -> RepoResult<Vec<User>> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn delete_user_unless_last_admin(&self, username: &Username) -> RepoResult<UserDeletion> {
        // One lock covers the count and the removal, so two deletes cannot both see two admins.
        let mut state = self.state();
        let user = state
            .users
            .get(username.as_str())
            .ok_or(RepoError::NotFound("user"))?;
        if user.roles.contains(&Role::Admin) {
            let admins = state
                .users
                .values()
                .filter(|u| u.roles.contains(&Role::Admin))
                .count();
            if admins <= 1 {
                return Ok(UserDeletion::LastAdmin);
            }
        }
        state.users.remove(username.as_str());
        Ok(UserDeletion::Deleted)
    }

    async fn count_users(&self) -> RepoResult<u64> {
        Ok(self.state().users.len() as u64)
    }
}

#[async_trait]
impl ApiKeyRepository for InMemoryStore {
    async fn insert_api_key(&self, key: &ApiKey) -> RepoResult<()> {
        let mut state = self.state();
        if state
            .api_keys
            .iter()
            .any(|k| k.id == key.id || k.key_hash == key.key_hash)
        {
            return Err(RepoError::Conflict(
                "an API key with this id or hash already exists".to_owned(),
            ));
        }
        state.api_keys.push(key.clone());
        Ok(())
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> RepoResult<ApiKey> {
        self.state()
            .api_keys
            .iter()
            .find(|k| k.key_hash == key_hash && k.revoked_at.is_none())
            .cloned()
            .ok_or(RepoError::NotFound("API key"))
    }

    async fn list_api_keys(&self) -> RepoResult<Vec<ApiKey>> {
        let mut keys = self.state().api_keys.clone();
        keys.sort_by_key(|k| (k.created_at, k.id));
        Ok(keys)
    }

    async fn revoke_api_key(&self, id: ApiKeyId, now: Timestamp) -> RepoResult<()> {
        let mut state = self.state();
        let key = state
            .api_keys
            .iter_mut()
            .find(|k| k.id == id && k.revoked_at.is_none())
            .ok_or(RepoError::NotFound("API key"))?;
        key.revoked_at = Some(now);
        Ok(())
    }
}
