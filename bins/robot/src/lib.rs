//! The reference Baton robot: it speaks docs/robot-protocol.md to a server, runs the built-in
//! node types (docs/robot.md), and is the example a team follows to write a robot of its own.
//!
//! `config` is the command line, `robot` the claim loop, `runner` one job, `graph` the order of
//! a workflow's nodes, `nodes` the node types, `client` the protocol's calls.

mod backoff;
pub mod client;
pub mod config;
mod graph;
pub mod nodes;
mod robot;
mod runner;
mod shutdown;
mod system;
pub mod telemetry;
mod text;

pub use robot::run;
