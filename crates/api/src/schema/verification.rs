//! Whole-log verifications, one at a time per node.
//!
//! A whole-log verification reads every event (69 s for the whole city) on blocking threads. A
//! request that gives up (its timeout, a closed connection) stops waiting, but that work goes
//! on; without a bound, an auditor's retries would stack verifications until the node does
//! nothing else. So each verification runs in its own task that holds the node's one permit
//! until the work is done, whoever still waits for it; a request that finds the permit taken
//! is refused with `RATE_LIMITED` and a time to retry, before any work. The event log and the
//! access log have a permit each, so that one request may verify both.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// How long a refused auditor is told to wait.
const RETRY_AFTER_SECS: u64 = 10;

/// The permits of a node: one per log.
#[derive(Clone, Default)]
pub struct VerificationGates {
    pub events: Verifications,
    pub access: Verifications,
}

/// One log's one permit for a whole-log verification. Cheap to clone.
#[derive(Clone)]
pub struct Verifications(Arc<Semaphore>);

impl Default for Verifications {
    fn default() -> Self {
        Verifications(Arc::new(Semaphore::new(1)))
    }
}

impl Verifications {
    fn start(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.0
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::RateLimited {
                message: format!(
                    "a whole-log verification is already running on this node; retry in \
                 {RETRY_AFTER_SECS} s"
                ),
                retry_after_secs: RETRY_AFTER_SECS,
            })
    }

    /// Runs `work` in its own task holding the permit until `work` is done.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.start()?;
        tokio::spawn(async move {
            let _permit = permit;
            work.await
        })
        .await
        .map_err(|e| ApiError::internal(format!("verification task failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[tokio::test]
    async fn one_at_a_time_and_held_until_the_work_is_done() {
        let v = Verifications::default();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn({
            let v = v.clone();
            async move {
                v.run(async move {
                    let _ = wait.await;
                    1
                })
                .await
            }
        });
        tokio::task::yield_now().await;
        while v.0.available_permits() == 1 {
            tokio::task::yield_now().await;
        }
        let refused = v.run(async { 2 }).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        // The first requester gives up; its work still holds the permit.
        first.abort();
        let _ = first.await;
        assert!(
            v.run(async { 3 }).await.is_err(),
            "the permit went with the requester"
        );
        release.send(()).unwrap();
        while v.0.available_permits() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(v.run(async { 4 }).await.unwrap(), 4);
    }
}
