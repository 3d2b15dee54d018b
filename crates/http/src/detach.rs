//! Every request runs to completion on a task of its own, even when its client goes away.
//!
//! actix drops a request's future when the client disconnects. Dropping a future in the middle
//! of a storage call is not safe on SQLite: diesel-async's `SyncConnectionWrapper` then blocks
//! until its query finishes with `block_in_place`, which panics on the single-threaded runtime
//! of an actix worker. Running the request as its own task means a disconnect detaches it
//! instead: it finishes (its writes complete or roll back as a whole) and its response is
//! discarded. A panic inside a handler becomes a logged 500 instead of a lost worker.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::errors::ApiError;

/// Middleware: runs the rest of the request on a task of its own. Register it outermost.
///
/// The request is not cloned before it is handed on: actix's router needs the only reference
/// to it. A task that panicked therefore answers through the error path, which renders
/// [`ApiError`]'s JSON body.
pub async fn run_to_completion<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    match actix_web::rt::spawn(next.call(req)).await {
        Ok(result) => result,
        Err(join_error) => {
            Err(ApiError::internal(format!("request task failed: {join_error}")).into())
        }
    }
}

/// Runs `work` as a task of its own and waits for it: an extractor whose sibling fails (a
/// malformed body beside a credential check) is dropped by actix, and this keeps the storage
/// call inside it from being dropped half-way.
pub async fn detached<T: 'static>(
    work: impl Future<Output = Result<T, ApiError>> + 'static,
) -> Result<T, ApiError> {
    actix_web::rt::spawn(work)
        .await
        .map_err(|e| ApiError::internal(format!("detached task failed: {e}")))?
}
