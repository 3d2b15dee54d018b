//! One module per port. Each maps rows to domain types at the edge, so nothing above this crate
//! sees a diesel type. Files import downward only: `rows` and `event_rows` at the bottom, then
//! `batch`; an aggregate split over several files keeps its rows in a `row` module of its own,
//! which the repository and its helper modules import, so a child never imports its parent.

mod access_guard;
pub(crate) mod batch;
pub(crate) mod event_rows;
mod events;
mod flows;
mod job_stats;
pub(crate) mod jobs;
mod queues;
mod robots;
pub(crate) mod rows;
mod triggers;
mod users;
mod webhooks;
mod workflows;
