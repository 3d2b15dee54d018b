//! [`AccessGuardRepository`] in memory.

use async_trait::async_trait;

use super::{FailureWindow, InMemoryStore};
use crate::clock::Timestamp;
use crate::error::RepoResult;
use crate::ports::{AccessGuardRepository, FailureKind};

#[async_trait]
impl AccessGuardRepository for InMemoryStore {
    async fn revoke_token(&self, jti: &str, expires_at: Timestamp) -> RepoResult<bool> {
        let mut state = self.state();
        if state.revoked_tokens.contains_key(jti) {
            return Ok(false);
        }
        state.revoked_tokens.insert(jti.to_owned(), expires_at);
        Ok(true)
    }

    async fn is_token_revoked(&self, jti: &str) -> RepoResult<bool> {
        Ok(self.state().revoked_tokens.contains_key(jti))
    }

    async fn purge_expired_revocations(&self, now: Timestamp) -> RepoResult<u64> {
        let mut state = self.state();
        let before = state.revoked_tokens.len();
        state.revoked_tokens.retain(|_, expires| *expires > now);
        Ok((before - state.revoked_tokens.len()) as u64)
    }

    async fn record_auth_failure(
        &self,
        ip: &str,
        kind: FailureKind,
        now: Timestamp,
        window_start: Timestamp,
    ) -> RepoResult<u32> {
        let mut state = self.state();
        let window = state
            .auth_failures
            .entry(ip.to_owned())
            .or_insert(FailureWindow {
                started: now,
                failures: 0,
                password_failures: 0,
            });
        // A window that started before `window_start` is over: counting starts again now.
        if window.started < window_start {
            *window = FailureWindow {
                started: now,
                failures: 0,
                password_failures: 0,
            };
        }
        window.failures += 1;
        if kind == FailureKind::Password {
            window.password_failures += 1;
        }
        Ok(window.failures)
    }

    async fn clear_key_failures(&self, ip: &str) -> RepoResult<()> {
        if let Some(window) = self.state().auth_failures.get_mut(ip) {
            window.failures = window.password_failures;
        }
        Ok(())
    }

    async fn clear_auth_failures(&self, ip: &str) -> RepoResult<()> {
        self.state().auth_failures.remove(ip);
        Ok(())
    }

    async fn ban_ip(&self, ip: &str, until: Timestamp) -> RepoResult<()> {
        let mut state = self.state();
        let ban = state.bans.entry(ip.to_owned()).or_insert(until);
        *ban = (*ban).max(until);
        Ok(())
    }

    async fn active_ban(&self, ip: &str, now: Timestamp) -> RepoResult<Option<Timestamp>> {
        Ok(self
            .state()
            .bans
            .get(ip)
            .copied()
            .filter(|until| *until > now))
    }
}
