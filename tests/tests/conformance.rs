//! The conformance suite: every example request and response of the four seed documents
//! (`tests/fixtures/seeds/`, verbatim copies of the contract's documents) replayed against the
//! real server, on SQLite and on PostgreSQL, and compared field by field.
//!
//! An answer conforms to an example when every field the example shows is present with the same
//! JSON type, at every depth (`check.rs` has the rules); where the request determines a value
//! (an echoed name, `success: true`, `token_type: "bearer"`, a message naming an id), the value
//! is pinned too; and the status is the documented one. Fields beyond the examples are allowed
//! and printed (`--no-capture` shows them). The examples are parsed out of the documents at
//! test time (`seeds.rs`), so the suite replays what the documents say.
//!
//! Where a scenario has to put the server in an example's state (a busy robot, a job with node
//! executions, an agent with two messages), it does so through the API, as a client would.
//! Deliberate departures from the examples are made explicit where they apply and listed in
//! `docs/conformance.md`: ids are UUID strings (as all of Baton's are), the admin's password has at
//! least 8 characters (so not the documents' `secret`), and Baton's health `service` is its own
//! name.
//!
//! Run with `cargo nextest run -p baton-tests --test conformance`.

// A test crate: a panic is a failed assertion with its location, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The parts live in `conformance/`; this file is the test crate's root, so they are named by
// path (a root module looks for its children beside it, not in a directory of its name).

#[path = "conformance/activeworkflow.rs"]
mod activeworkflow;
#[path = "conformance/auth.rs"]
mod auth;
#[path = "conformance/check.rs"]
mod check;
#[path = "conformance/env.rs"]
mod env;
#[path = "conformance/flows.rs"]
mod flows;
#[path = "conformance/health.rs"]
mod health;
#[path = "conformance/metrics.rs"]
mod metrics;
#[path = "conformance/pyorchestrator.rs"]
mod pyorchestrator;
#[path = "conformance/schedules.rs"]
mod schedules;
#[path = "conformance/seeds.rs"]
mod seeds;
#[path = "conformance/websockets.rs"]
mod websockets;
#[path = "conformance/workflows.rs"]
mod workflows;

use baton_storage::testing::TestDatabase;

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database,
/// as the tests `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_databases {
    ($($name:ident => $flow:path),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                $flow(TestDatabase::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                $flow(TestDatabase::postgres().await).await;
            }
        }
    )*};
}

on_both_databases!(
    casare_auth => auth::auth,
    casare_dev_mode => auth::dev_mode,
    casare_workflows => workflows::workflows,
    casare_schedules => schedules::schedules,
    casare_metrics => metrics::metrics,
    casare_health => health::health,
    casare_websockets => websockets::websockets,
    activeworkflow_agents_messages_workflows => activeworkflow::activeworkflow,
    flows_crud_status_and_commands => flows::flows,
    pyorchestrator_queue => pyorchestrator::queue,
    pyorchestrator_trigger => pyorchestrator::trigger,
    pyorchestrator_rate_limits => pyorchestrator::rate_limits,
    pyorchestrator_bans => pyorchestrator::bans,
);

/// Degraded and not ready: needs a database that can be taken away, so PostgreSQL only.
#[tokio::test(flavor = "multi_thread")]
async fn casare_health_without_a_database() {
    health::health_without_a_database().await;
}
