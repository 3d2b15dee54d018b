//! The storage contract suite: every port's promises as tests that any implementation of
//! [`Store`] can run, the in-memory store, the database adapters and an embedder's own alike.
//!
//! Each test is an `async fn name(db: SharedStore)` of the module of its port, run on a fresh,
//! empty store. [`contract_suite!`](crate::contract_suite) generates one `#[tokio::test]` per
//! contract test in the crate that invokes it (which needs `tokio` with its `macros` and
//! `rt-multi-thread` features as a dev-dependency), named `<module>::<backend>::<test>`:
//!
//! ```ignore
//! // tests/contract.rs of a crate with its own store
//! baton_domain::contract_suite!(
//!     my_store => async { my_crate::MyStore::connect_to_a_fresh_database().await }
//! );
//! ```
//!
//! A backend's expression is evaluated once per test and must be a future resolving to the
//! store, or to a [`Fixture`] when something must live as long as the test (a temporary
//! database). Several backends may be named at once: `sqlite => ..., postgres => ...`.
//!
//! The suite needs no async runtime of its own: tests that race callers against each other
//! join their futures, so the store sees the calls interleaved and, when it waits on I/O,
//! concurrently.
// Test code: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;
use std::sync::Arc;

use crate::ports::Store;

mod barrier;

pub mod access_guard;
pub mod events;
pub mod fixtures;
pub mod flows;
pub mod job_stats;
pub mod jobs;
pub mod messages;
pub mod queue_counts;
pub mod queue_inserts;
pub mod queues;
pub mod robots;
pub mod triggers;
pub mod users;
pub mod webhooks;
pub mod workflows;

pub use barrier::Barrier;

/// The store a contract test runs against.
pub type SharedStore = Arc<dyn Store>;

/// A store for one test, with whatever must live as long as the test does.
pub struct Fixture {
    store: SharedStore,
    _keep: Option<Box<dyn Any + Send>>,
}

impl Fixture {
    pub fn new(store: impl Store + 'static) -> Self {
        Self {
            store: Arc::new(store),
            _keep: None,
        }
    }

    /// Keeps `guard` (say, a temporary database that is dropped with it) until the test ends.
    pub fn keeping(mut self, guard: impl Send + 'static) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }

    /// The store, to hand to a contract test.
    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }
}

impl<S: Store + 'static> From<S> for Fixture {
    fn from(store: S) -> Self {
        Self::new(store)
    }
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

/// Generates one `#[tokio::test]` per contract test and backend, named
/// `<module>::<backend>::<test>`: `contract_suite!(name => store_future, ...)`. See the
/// [`testing::contract`](crate::testing::contract) module.
#[macro_export]
macro_rules! contract_suite {
    ($($backend:ident => $fixture:expr),+ $(,)?) => {
        $crate::__contract_access_guard!($($backend => $fixture),+);
        $crate::__contract_events!($($backend => $fixture),+);
        $crate::__contract_flows!($($backend => $fixture),+);
        $crate::__contract_job_stats!($($backend => $fixture),+);
        $crate::__contract_jobs!($($backend => $fixture),+);
        $crate::__contract_messages!($($backend => $fixture),+);
        $crate::__contract_queue_counts!($($backend => $fixture),+);
        $crate::__contract_queue_inserts!($($backend => $fixture),+);
        $crate::__contract_queues!($($backend => $fixture),+);
        $crate::__contract_robots!($($backend => $fixture),+);
        $crate::__contract_triggers!($($backend => $fixture),+);
        $crate::__contract_users!($($backend => $fixture),+);
        $crate::__contract_webhooks!($($backend => $fixture),+);
        $crate::__contract_workflows!($($backend => $fixture),+);
    };
}

/// One module of the suite: `mod <module> { mod <backend> { tests } ... }`.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_module {
    ($module:ident $names:tt $($backend:ident => $fixture:expr),+) => {
        mod $module {
            // The store expressions name what the invoking module has in scope.
            #[allow(unused_imports)]
            use super::*;
            $( $crate::__contract_backend!($module $backend ($fixture) $names); )+
        }
    };
}

/// One backend's tests of one module.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_backend {
    ($module:ident $backend:ident $fixture:tt [$($name:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = $crate::testing::contract::Fixture::from($fixture.await);
                    $crate::testing::contract::$module::$name(fixture.store()).await;
                }
            )*
        }
    };
}
