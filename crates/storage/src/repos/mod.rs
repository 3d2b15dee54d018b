//! One module per port. Each maps rows to domain types at the edge, so nothing above this crate
//! sees a diesel type.

mod access_guard;
pub(crate) mod event_rows;
pub(crate) mod rows;
mod users;
