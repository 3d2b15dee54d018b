//! Remembered API key checks. An integrator presents its key on every request, and checking it
//! is a database read; at `POST /api/queue`'s 10,000 requests/s (its target) that read cost the
//! database about as much CPU as storing the item. So each server remembers a key it found
//! valid for [`ApiKeyMemo::REFRESH`], as [`super::BanList`] remembers bans: a key revoked on
//! this server stops working at once (the revocation forgets it here), one revoked on another
//! server within that time.
//!
//! Only valid keys are remembered: a wrong key is looked up every time, and counts towards a
//! ban every time. Entries are keyed by the key's SHA-256, so the memo holds no secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_domain::auth::{ApiKey, sha256_hex};
use baton_domain::ids::ApiKeyId;
use baton_domain::ports::ApiKeyRepository;
use baton_domain::services::credentials::{
    CredentialError, MAX_SECRET_BYTES, authenticate_api_key,
};

/// API keys found valid lately, by the SHA-256 of the key.
pub struct ApiKeyMemo {
    keys: Arc<dyn ApiKeyRepository>,
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    key: ApiKey,
    checked: Instant,
}

impl ApiKeyMemo {
    /// How long a successful check is trusted before the database is asked again.
    pub const REFRESH: Duration = Duration::from_secs(1);
    /// Beyond this many remembered keys, stale ones are forgotten (and all, if none is stale).
    const MAX_REMEMBERED: usize = 10_000;

    pub fn new(keys: Arc<dyn ApiKeyRepository>) -> Self {
        Self {
            keys,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The live key `presented` is, as [`authenticate_api_key`] finds it.
    pub async fn authenticate(&self, presented: &str) -> Result<ApiKey, CredentialError> {
        if presented.is_empty() || presented.len() > MAX_SECRET_BYTES {
            return Err(CredentialError::Invalid);
        }
        let hash = sha256_hex(presented);
        if let Some(key) = self.remembered(&hash) {
            return Ok(key);
        }
        let key = authenticate_api_key(self.keys.as_ref(), presented).await?;
        self.remember(hash, &key);
        Ok(key)
    }

    /// Forgets the key with this id at once: it was revoked on this server.
    pub fn forget(&self, id: ApiKeyId) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, s| s.key.id != id);
        }
    }

    fn remembered(&self, hash: &str) -> Option<ApiKey> {
        let seen = self.seen.lock().ok()?;
        let entry = seen.get(hash)?;
        (entry.checked.elapsed() < Self::REFRESH).then(|| entry.key.clone())
    }

    fn remember(&self, hash: String, key: &ApiKey) {
        // A poisoned lock only loses the memo; the database stays the truth.
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() >= Self::MAX_REMEMBERED {
            seen.retain(|_, s| s.checked.elapsed() < Self::REFRESH);
            if seen.len() >= Self::MAX_REMEMBERED {
                seen.clear();
            }
        }
        seen.insert(
            hash,
            Seen {
                key: key.clone(),
                checked: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use baton_domain::auth::Role;
    use baton_domain::{RepoError, RepoResult, Timestamp};

    use super::*;

    /// One live key, `bk_live`, and a count of the look-ups.
    struct OneKey {
        lookups: AtomicUsize,
        revoked: Mutex<bool>,
    }

    fn live_key() -> ApiKey {
        ApiKey {
            id: ApiKeyId::from_uuid(uuid::Uuid::from_u128(1)),
            name: "ci".into(),
            key_hash: sha256_hex("bk_live"),
            roles: vec![Role::Operator],
            created_at: Timestamp::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    #[async_trait]
    impl ApiKeyRepository for OneKey {
        async fn insert_api_key(&self, _: &ApiKey) -> RepoResult<()> {
            Ok(())
        }

        async fn find_api_key_by_hash(&self, key_hash: &str) -> RepoResult<ApiKey> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            if key_hash == sha256_hex("bk_live") && !*self.revoked.lock().unwrap() {
                Ok(live_key())
            } else {
                Err(RepoError::NotFound("API key"))
            }
        }

        async fn list_api_keys(&self) -> RepoResult<Vec<ApiKey>> {
            Ok(vec![])
        }

        async fn revoke_api_key(&self, _: ApiKeyId, _: Timestamp) -> RepoResult<()> {
            *self.revoked.lock().unwrap() = true;
            Ok(())
        }
    }

    fn memo() -> (Arc<OneKey>, ApiKeyMemo) {
        let repo = Arc::new(OneKey {
            lookups: AtomicUsize::new(0),
            revoked: Mutex::new(false),
        });
        let memo = ApiKeyMemo::new(repo.clone());
        (repo, memo)
    }

    #[tokio::test]
    async fn a_valid_key_is_looked_up_once_then_remembered() {
        let (repo, memo) = memo();
        for _ in 0..5 {
            assert_eq!(memo.authenticate("bk_live").await.unwrap(), live_key());
        }
        assert_eq!(repo.lookups.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_wrong_key_is_looked_up_every_time() {
        let (repo, memo) = memo();
        for _ in 0..3 {
            assert!(matches!(
                memo.authenticate("bk_wrong").await,
                Err(CredentialError::Invalid)
            ));
        }
        assert_eq!(repo.lookups.load(Ordering::SeqCst), 3);
        assert!(matches!(
            memo.authenticate("").await,
            Err(CredentialError::Invalid)
        ));
        assert!(matches!(
            memo.authenticate(&"k".repeat(MAX_SECRET_BYTES + 1)).await,
            Err(CredentialError::Invalid)
        ));
    }

    #[tokio::test]
    async fn a_key_revoked_here_is_forgotten_at_once() {
        let (repo, memo) = memo();
        memo.authenticate("bk_live").await.unwrap();
        repo.revoke_api_key(live_key().id, Timestamp::UNIX_EPOCH)
            .await
            .unwrap();
        memo.forget(live_key().id);
        assert!(matches!(
            memo.authenticate("bk_live").await,
            Err(CredentialError::Invalid)
        ));
    }
}
