//! The two error families of the domain: invalid input, and storage failures.

use std::fmt;

/// One rejected field of an input, with a sentence a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the client spelled it (e.g. `queue_name`, `workflow_json.nodes[3].id`).
    pub field: String,
    /// What was wrong and what would be accepted.
    pub message: String,
}

/// Input that breaks a domain rule. Adapters answer it with 400 and the per-field list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub errors: Vec<FieldError>,
}

impl ValidationError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            errors: vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
        }
    }

    /// Merges several checks so a client learns every problem of one request at once.
    pub fn merge(mut self, other: ValidationError) -> Self {
        self.errors.extend(other.errors);
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Collects field errors while a whole input is checked, so every problem is reported together.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value of a successful check, or records its errors and yields `None`.
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.errors.extend(err.errors);
                None
            }
        }
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn finish(self) -> Result<(), ValidationError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                errors: self.errors,
            })
        }
    }
}

/// A state change the entity's rules forbid (e.g. completing a cancelled job). Adapters answer 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a {entity} that is {state}")]
pub struct TransitionError {
    pub entity: &'static str,
    pub action: &'static str,
    pub state: String,
}

/// What a storage port may fail with. Every port method documents which of these it returns.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The addressed record does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule or an optimistic version check refused the write; nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or the pool is exhausted; the caller may retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else the driver reported. Logged by the adapter's caller, never shown to clients.
    #[error("storage failure: {0}")]
    Internal(String),
}

/// The result type of every storage port.
pub type RepoResult<T> = Result<T, RepoError>;
