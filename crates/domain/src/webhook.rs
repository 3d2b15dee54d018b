//! Webhooks: a secret URL that starts a job of one workflow when it is POSTed to. A workflow
//! submitted with `trigger_type: webhook` gets one.
//!
//! The URL's token is the only credential, so it is a 256-bit random secret shown once, when
//! the workflow is submitted, and stored only as its SHA-256 like API keys and robot tokens: a
//! copy of the database does not hand out working URLs.

use crate::auth::{SecretError, generate_secret, sha256_hex};
use crate::clock::Timestamp;
use crate::ids::WorkflowId;
use crate::job::Priority;
use crate::workflow::ExecutionMode;

/// A stored webhook: which workflow it starts, and how its jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Lower-case hex SHA-256 of the token; the token itself is never stored.
    pub token_hash: String,
    pub workflow_id: WorkflowId,
    /// The priority of every job the webhook starts.
    pub priority: Priority,
    /// The execution mode of every job the webhook starts.
    pub execution_mode: ExecutionMode,
    pub created_at: Timestamp,
}

impl Webhook {
    /// Tokens start with this, so a leaked one is recognisable in a secret scanner.
    pub const PREFIX: &'static str = "bw_";

    /// Tokens presented longer than this are refused unhashed (security.md: presented keys and
    /// tokens are at most 512 bytes), so a caller cannot make the server hash megabytes.
    pub const MAX_PRESENTED_BYTES: usize = 512;

    /// A new webhook for `workflow_id`: returns the record to store and the token to show once.
    pub fn issue(
        workflow_id: WorkflowId,
        priority: Priority,
        execution_mode: ExecutionMode,
        now: Timestamp,
    ) -> Result<(Self, String), SecretError> {
        let token = generate_secret(Self::PREFIX)?;
        let webhook = Self {
            token_hash: sha256_hex(&token),
            workflow_id,
            priority,
            execution_mode,
            created_at: now,
        };
        Ok((webhook, token))
    }

    /// The hash a presented token is looked up by, or `None` for a token too long to be one.
    pub fn lookup_hash(presented: &str) -> Option<String> {
        (presented.len() <= Self::MAX_PRESENTED_BYTES).then(|| sha256_hex(presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_prefixed_256_bit_secrets_stored_as_their_hash() {
        let now = time::macros::datetime!(2025-01-01 00:00 UTC);
        let workflow = WorkflowId::from_uuid(uuid::Uuid::nil());
        let (webhook, token) =
            Webhook::issue(workflow, Priority::default(), ExecutionMode::Lan, now).unwrap();
        assert!(token.starts_with("bw_"));
        assert_eq!(token.len(), 3 + 64);
        assert_eq!(webhook.token_hash, sha256_hex(&token));
        assert_eq!(Webhook::lookup_hash(&token), Some(webhook.token_hash));
        let (_, other) =
            Webhook::issue(workflow, Priority::default(), ExecutionMode::Lan, now).unwrap();
        assert_ne!(token, other);
    }

    #[test]
    fn overlong_presented_tokens_are_not_hashed() {
        assert!(Webhook::lookup_hash(&"x".repeat(512)).is_some());
        assert!(Webhook::lookup_hash(&"x".repeat(513)).is_none());
    }
}
