//! Baton's domain: entities, value types, state machines, validation, and the ports adapters
//! implement. It performs no I/O and depends on no database, web framework or async runtime, so
//! teams can embed it in their own services.
//!
//! Types here cannot hold invalid values: every constructor that takes outside input validates
//! it and reports every broken rule at once as a [`ValidationError`]; every state change is a
//! method returning `Result`, so an illegal transition is a [`TransitionError`], never a
//! silent overwrite.

pub mod agent;
pub mod auth;
pub mod clock;
pub mod error;
pub mod event;
pub mod flow;
pub mod ids;
pub mod instant;
pub mod job;
pub mod ports;
pub mod queue;
pub mod robot;
pub mod schedule;
pub mod services;
pub mod session;
pub mod text;
pub mod trigger;
pub mod webhook;
pub mod workflow;

pub use clock::{Clock, IdGenerator, SystemClock, Timestamp, UuidV7Generator};
pub use error::{FieldError, RepoError, RepoResult, TransitionError, ValidationError};
