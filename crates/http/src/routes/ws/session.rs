//! One client's connection: its updates out, `ping` → `pong` in, and how it ends.
//!
//! Each client is a task of its own on the worker that accepted it, reading its feed from its
//! own broadcast receiver, so the only client a slow reader can slow down is itself:
//! - a client more than `LiveHub::CAPACITY` updates behind is disconnected (1008), since it
//!   has missed updates and should reconnect and re-read the state over REST;
//! - a frame the connection cannot take within [`SEND_TIMEOUT`] (the client stopped reading and
//!   every buffer is full) ends the connection;
//! - a client that sends nothing, not even the pong every websocket client answers a ping
//!   with, for [`IDLE_TIMEOUT`] is disconnected (1008), so dead peers do not pile up.

use std::time::Duration;

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::time::{Instant, interval_at, timeout};

use crate::live::{Feed, Update};

/// How often the server pings a client (a protocol ping, which clients answer by themselves).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// How long a client may stay silent (no frame, not even a pong) before it is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one frame may wait for room in the connection before the client is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame a client may send. Clients send `ping` and control frames only.
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;

/// A connected, authorised client.
pub struct Client {
    pub feed: Feed,
    pub session: Session,
    pub stream: MessageStream,
    pub updates: Receiver<Update>,
    pub closing: watch::Receiver<bool>,
    /// Who the client is, for the log.
    pub who: String,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client sent a close frame.
    ClientClosed,
    /// The connection ended without a close frame.
    ClientGone,
    /// The server is stopping.
    ServerClosing,
    /// The client fell this many updates behind.
    Lagged(u64),
    /// A frame could not be handed to the connection in time.
    Stalled,
    /// The client sent nothing for too long.
    Silent,
    /// The client broke the websocket protocol.
    ProtocolError,
}

impl Ending {
    /// The close frame to send, if one can still be sent.
    fn close_reason(self) -> Option<CloseReason> {
        let (code, description) = match self {
            Self::ClientGone | Self::Stalled => return None,
            Self::ClientClosed => (CloseCode::Normal, String::new()),
            Self::ServerClosing => (CloseCode::Away, "the server is shutting down".to_owned()),
            Self::Lagged(missed) => (
                CloseCode::Policy,
                format!("too slow: {missed} updates were missed; reconnect"),
            ),
            Self::Silent => (
                CloseCode::Policy,
                format!(
                    "nothing received for {} s (answer pings or send `ping`)",
                    IDLE_TIMEOUT.as_secs()
                ),
            ),
            Self::ProtocolError => (CloseCode::Protocol, "websocket protocol error".to_owned()),
        };
        Some(CloseReason {
            code,
            description: (!description.is_empty()).then_some(description),
        })
    }
}

impl Client {
    /// Serves the client until one side ends the connection: `first` (if any) is sent at once.
    pub async fn run(mut self, first: Option<Update>) {
        tracing::debug!(feed = self.feed.path(), who = %self.who, "websocket opened");
        let ending = self.serve(first).await;
        tracing::debug!(feed = self.feed.path(), who = %self.who, ?ending, "websocket closed");
        if let Some(reason) = ending.close_reason() {
            // The close frame goes through the same buffer as updates: bounded like them.
            let _ = timeout(SEND_TIMEOUT, self.session.close(Some(reason))).await;
        }
    }

    async fn serve(&mut self, first: Option<Update>) -> Ending {
        if *self.closing.borrow_and_update() {
            return Ending::ServerClosing;
        }
        if let Some(first) = first
            && let Err(ending) = self.send(&first).await
        {
            return ending;
        }
        let mut pings = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                // Shutdown first, then the client's frames, then updates: a client that sent a
                // close frame gets no more updates.
                biased;
                _ = self.closing.changed() => return Ending::ServerClosing,
                frame = self.stream.recv() => {
                    last_heard = Instant::now();
                    match frame {
                        None => return Ending::ClientGone,
                        Some(Err(_)) => return Ending::ProtocolError,
                        Some(Ok(Message::Close(_))) => return Ending::ClientClosed,
                        Some(Ok(Message::Ping(payload))) => {
                            let pong = timeout(SEND_TIMEOUT, self.session.pong(&payload)).await;
                            if let Err(ending) = sent(pong) {
                                return ending;
                            }
                        }
                        Some(Ok(Message::Text(text))) if text.trim() == "ping" => {
                            if let Err(ending) = self.send("pong").await {
                                return ending;
                            }
                        }
                        // Anything else a client says is not part of the protocol: ignored.
                        Some(Ok(_)) => {}
                    }
                }
                update = self.updates.recv() => match update {
                    Ok(update) => {
                        if let Err(ending) = self.send(&update).await {
                            return ending;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => return Ending::Lagged(missed),
                    Err(RecvError::Closed) => return Ending::ServerClosing,
                },
                _ = pings.tick() => {
                    if last_heard.elapsed() > IDLE_TIMEOUT {
                        return Ending::Silent;
                    }
                    if let Err(ending) = sent(timeout(SEND_TIMEOUT, self.session.ping(b"")).await) {
                        return ending;
                    }
                }
            }
        }
    }

    async fn send(&mut self, text: &str) -> Result<(), Ending> {
        sent(timeout(SEND_TIMEOUT, self.session.text(text.to_owned())).await)
    }
}

/// How a bounded send went.
fn sent(
    outcome: Result<Result<(), actix_ws::Closed>, tokio::time::error::Elapsed>,
) -> Result<(), Ending> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(actix_ws::Closed)) => Err(Ending::ClientGone),
        Err(_) => Err(Ending::Stalled),
    }
}
