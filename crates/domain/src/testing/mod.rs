//! Test support for teams embedding the domain (cargo feature `testing`): an in-memory adapter
//! of every storage port, a clock the test sets, predictable ids, and the storage contract
//! suite that any implementation of the ports can be run against.
//!
//! The in-memory store keeps the promises the ports document, as the database adapters do:
//! optimistic versions, uniqueness, claim order and leases, events with growing sequence
//! numbers. It is meant for tests and examples, not for production: it keeps everything in one
//! process's memory behind one lock.

mod clock;
pub mod contract;
mod executor;
mod memory;

pub use clock::{ManualClock, SequentialIds};
pub use executor::block_on;
pub use memory::InMemoryStore;
