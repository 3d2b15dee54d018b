//! Use-case services: the domain's rules applied through its ports. Adapters call these rather
//! than the repositories, so a rule is written once whichever API reaches it.

pub mod credentials;
pub mod flows;
pub mod jobs;
pub mod metrics;
pub mod queue;
pub mod schedules;
pub mod sessions;
pub mod triggers;
pub mod users;
pub mod workflows;

use crate::error::{RepoError, TransitionError, ValidationError};

/// What a use case can fail with; adapters map each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}
