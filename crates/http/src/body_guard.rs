//! What a request body may cost the server: memory, counted across every request at once, and
//! time.
//!
//! Each route bounds its own body ([`crate::extract::BodyLimit`]), but many clients at once can
//! still fill the memory with bodies that are each under their route's limit. The
//! [`BodyGuard`] keeps a server-wide budget of request-body bytes held at once: a body takes its
//! share as it is read (its whole declared `Content-Length` as soon as a handler starts reading
//! it, or chunk by chunk when it declares none) and gives it back when its request has been
//! answered, which is when the handler has dropped what it read. A body that does not fit in
//! what is left is not read: its request is answered 503 with `Retry-After` and its connection
//! closed, so the client retries later instead of the server buffering without bound.
//!
//! The same watch bounds the time a body may take. A client that has not sent its whole body
//! by the deadline (counted from the end of its headers) is answered 408 and disconnected, so a
//! slow sender cannot hold a connection, a request and its share of the budget for minutes.
//! Reading the headers themselves is bounded by the HTTP server's own request timeout.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::rt::time::{Sleep, sleep};
use actix_web::web::Bytes;
use actix_web::{Error, ResponseError, web};
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::ApiError;

/// How long a client refused for the budget is asked to wait: bodies are read in well under a
/// second on a healthy server, so the budget frees up quickly.
pub const BUDGET_RETRY_SECONDS: u64 = 1;

/// The server-wide budget of request-body bytes and the deadline of each body.
pub struct BodyGuard {
    permits: Arc<Semaphore>,
    capacity: usize,
    body_timeout: Duration,
}

impl BodyGuard {
    /// A guard letting at most `budget_bytes` of request bodies be held at once, each body sent
    /// within `body_timeout`.
    pub fn new(budget_bytes: usize, body_timeout: Duration) -> Self {
        let capacity = budget_bytes.min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            body_timeout,
        }
    }

    /// Bytes of the budget not held by any request right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// The whole budget.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Why a body was not read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// It does not fit in what is left of the budget now.
    Busy,
    /// It declared more than the whole budget: it could never be read.
    LargerThanBudget(usize),
    /// Its client did not send it all before the deadline.
    TooSlow(Duration),
}

impl Refusal {
    fn error(self) -> ApiError {
        match self {
            Self::Busy => ApiError::unavailable_for(
                BUDGET_RETRY_SECONDS,
                "the server is reading as many request bodies as it may at once; retry in a \
                 moment",
            ),
            Self::LargerThanBudget(capacity) => ApiError::payload_too_large(format!(
                "the request body is larger than the {} KB this server reads at once",
                capacity / 1024
            )),
            Self::TooSlow(timeout) => ApiError::request_timeout(format!(
                "the request body was not received within {} s; send it faster or in smaller \
                 requests",
                timeout.as_secs_f64()
            )),
        }
    }
}

/// What one request's body has taken, shared by its payload stream and the middleware.
#[derive(Default)]
struct Watch {
    /// The budget this body holds, `reserved` bytes of it.
    held: Option<OwnedSemaphorePermit>,
    reserved: usize,
    received: usize,
    refusal: Option<Refusal>,
    /// The request has been answered: what still flows (a websocket's frames after the
    /// upgrade) is not a buffered body and passes unwatched.
    answered: bool,
}

impl Watch {
    /// Takes `bytes` more of the budget, or records why not.
    fn reserve(&mut self, permits: &Arc<Semaphore>, capacity: usize, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let wanted = self.reserved.saturating_add(bytes);
        if wanted > capacity {
            self.refusal = Some(Refusal::LargerThanBudget(capacity));
            return false;
        }
        let taken = u32::try_from(bytes)
            .ok()
            .and_then(|n| Arc::clone(permits).try_acquire_many_owned(n).ok());
        match taken {
            Some(permit) => {
                match &mut self.held {
                    Some(held) => held.merge(permit),
                    None => self.held = Some(permit),
                }
                self.reserved = wanted;
                true
            }
            None => {
                self.refusal = Some(Refusal::Busy);
                false
            }
        }
    }
}

/// A request's payload as its handler reads it, counted against the budget and the deadline.
struct GuardedPayload {
    inner: Payload,
    watch: Rc<RefCell<Watch>>,
    permits: Arc<Semaphore>,
    capacity: usize,
    declared: Option<usize>,
    started: bool,
    finished: bool,
    deadline: Pin<Box<Sleep>>,
    body_timeout: Duration,
}

impl GuardedPayload {
    /// Ends the body with an error. The handler sees a broken body; the middleware answers for
    /// it with the refusal the watch recorded.
    fn refuse(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.finished = true;
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::other(
            "the request body was refused",
        )))))
    }
}

impl Stream for GuardedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let watch = Rc::clone(&this.watch);
        let mut watch = watch.borrow_mut();
        if watch.answered {
            return Pin::new(&mut this.inner).poll_next(cx);
        }
        if this.finished {
            return Poll::Ready(None);
        }
        if !this.started {
            this.started = true;
            // The extractor has checked the declared length against the route's limit before
            // its first read, so the whole of it may be taken at once.
            if let Some(declared) = this.declared
                && !watch.reserve(&this.permits, this.capacity, declared)
            {
                return this.refuse();
            }
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                watch.received = watch.received.saturating_add(chunk.len());
                let missing = watch.received.saturating_sub(watch.reserved);
                if !watch.reserve(&this.permits, this.capacity, missing) {
                    return this.refuse();
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    watch.refusal = Some(Refusal::TooSlow(this.body_timeout));
                    return this.refuse();
                }
                Poll::Pending
            }
        }
    }
}

/// Middleware: watches the body of every request that has one. A request whose body was
/// refused is answered with the refusal (503, 413 or 408, in the API's JSON shape) whatever its
/// handler made of the broken body, and its connection is closed, since the rest of its body
/// was never read.
pub async fn watch_bodies<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let Some(guard) = req.app_data::<web::Data<BodyGuard>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let watch = Rc::new(RefCell::new(Watch::default()));
    let guarded = GuardedPayload {
        inner: payload,
        watch: Rc::clone(&watch),
        permits: Arc::clone(&guard.permits),
        capacity: guard.capacity,
        declared,
        started: false,
        finished: false,
        deadline: Box::pin(sleep(guard.body_timeout)),
        body_timeout: guard.body_timeout,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(guarded),
    });
    let answered = next.call(req).await;
    let refusal = {
        let mut watch = watch.borrow_mut();
        watch.answered = true;
        // The handler is done with what it read: the budget it held is free again.
        watch.held = None;
        watch.refusal.take()
    };
    let Some(refusal) = refusal else {
        return Ok(answered?.map_into_left_body());
    };
    // Each refusal is the client's or the load's doing, not a fault of the server: logged at
    // debug, so a flood of them cannot flood the log. Prometheus counts the 503s and 408s.
    tracing::debug!(?refusal, "request body refused");
    let error = refusal.error();
    let request = match answered {
        Ok(response) => response.into_parts().0,
        Err(_) => return Err(error.into()),
    };
    let mut response = error.error_response();
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(request, response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_grow_until_the_budget_is_spent_and_free_it_when_dropped() {
        let guard = BodyGuard::new(100, Duration::from_secs(1));
        let mut first = Watch::default();
        assert!(first.reserve(&guard.permits, guard.capacity, 60));
        assert!(first.reserve(&guard.permits, guard.capacity, 20));
        assert_eq!(guard.available(), 20);
        let mut second = Watch::default();
        assert!(!second.reserve(&guard.permits, guard.capacity, 30));
        assert_eq!(second.refusal, Some(Refusal::Busy));
        let mut huge = Watch::default();
        assert!(!huge.reserve(&guard.permits, guard.capacity, 101));
        assert_eq!(huge.refusal, Some(Refusal::LargerThanBudget(100)));
        first.held = None;
        assert_eq!(guard.available(), 100);
        assert!(second.reserve(&guard.permits, guard.capacity, 30));
    }
}
