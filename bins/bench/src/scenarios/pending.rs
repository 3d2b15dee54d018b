//! Placeholders for the scenarios whose features are being built: they report their targets as
//! "not measured yet". Replace each function with a module like [`super::queue`] once the
//! feature exists (schedules: 10,000 enabled per-second schedules on one server, fire lag p99;
//! websockets: 1,000 clients of `/ws/live-jobs`, event delivery p99 and the server's RSS).

use super::{Figure, ScenarioName, Target, Unit};

pub fn schedules() -> Vec<Figure> {
    vec![
        Figure::new(
            ScenarioName::Schedules,
            None,
            "10,000 per-second schedules: fire lag p99",
            Unit::Millis,
        )
        .target(Target::AtMost(1000.0)),
    ]
}

pub fn websockets() -> Vec<Figure> {
    vec![
        Figure::new(
            ScenarioName::Websockets,
            None,
            "1,000 websocket clients: job event delivery p99",
            Unit::Millis,
        )
        .target(Target::AtMost(100.0)),
        Figure::new(
            ScenarioName::Websockets,
            None,
            "server RSS with 1,000 websocket clients",
            Unit::Megabytes,
        )
        .target(Target::AtMost(200.0)),
    ]
}
