//! Logging through `tracing`: human-readable text or JSON lines, on standard error (standard
//! output is kept for the one-time admin password), filtered by `RUST_LOG` (default `info`).

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber. Fails if one is installed already.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(QuietClientErrors)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(QuietClientErrors)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

/// The target and message prefix of the line actix's HTTP/1 layer logs at ERROR for every
/// connection that ends in a protocol or I/O error.
const CONNECTION_ERROR_TARGET: &str = "actix_http::h1::dispatcher";
const CONNECTION_ERROR_PREFIX: &str = "stream error";

/// Keeps actix's "stream error" lines out of the log. actix logs one at ERROR for every
/// connection that ends badly: a request line or header it cannot parse, a client that resets
/// the connection. Each is the client's doing, and anyone can send garbage, so at ERROR they
/// would let any client flood the log and bury the server's own errors. The client has had its
/// answer already (a 400 and a closed connection); nothing is left for an operator to do.
/// Every other event, actix's other errors included, passes untouched.
pub struct QuietClientErrors;

impl<S: Subscriber> Layer<S> for QuietClientErrors {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        !is_client_connection_error(event)
    }
}

fn is_client_connection_error(event: &Event<'_>) -> bool {
    let meta = event.metadata();
    if *meta.level() != Level::ERROR || meta.target() != CONNECTION_ERROR_TARGET {
        return false;
    }
    let mut message = Message(String::new());
    event.record(&mut message);
    message.0.starts_with(CONNECTION_ERROR_PREFIX)
}

/// The `message` field of an event, as text.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A log destination the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn connection_errors_are_kept_out_and_everything_else_passes() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish()
            .with(QuietClientErrors);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "parse error: invalid token");
            tracing::error!(target: "actix_http::h1::dispatcher", "Upgrade handler error: boom");
            tracing::error!(target: "baton_http", "stream error: ours, kept");
            tracing::info!("served");
        });
        let text = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(!text.contains("invalid token"), "{text}");
        assert!(text.contains("Upgrade handler error"), "{text}");
        assert!(text.contains("ours, kept"), "{text}");
        assert!(text.contains("served"), "{text}");
    }
}
