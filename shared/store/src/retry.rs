//! Contention on the caller's own items: DynamoDB cancels a transaction that touches an item of
//! another in-flight transaction (`TransactionConflict`), refuses a single-item write of such an
//! item (`TransactionConflictException`) and throttles a partition over its limit. Each is
//! retried after a jittered, exponentially growing pause, within a time budget; only then does
//! the caller see [`StoreError::Unavailable`] (a 503 with `Retry-After`).
//!
//! The SDK retries throttling of single requests by itself (standard mode, see
//! [`crate::DynamoStore::from_env`]); it does not retry transaction cancellations or conflicts.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use rt_domain::ports::{Contention, StoreError};

/// How long one request keeps retrying contention before it gives up: the functions' 10 s
/// timeout (`template.yaml`) less 3 s for a last attempt, signing and answering, so that a
/// hammered token answers 429s rather than 503s (ARCHITECTURE.md, "The exchange").
pub const CONTENTION_BUDGET: Duration = Duration::from_millis(7000);
const FIRST_PAUSE_MS: u64 = 8;
const LONGEST_PAUSE_MS: u64 = 250;

/// Cancellation reasons that mean "try again", not "the condition is false".
pub(crate) fn is_contention_reason(code: &str) -> bool {
    matches!(code, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
}

/// Error codes of single requests that mean "try again".
pub(crate) fn is_contention_error<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(
        e.code(),
        Some(
            "TransactionConflictException"
                | "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    )
}

/// Sends a single request (`send` builds and sends it anew each time), retrying contention
/// within the budget; returns the last result.
pub(crate) async fn single<T, E, R, F, Fut>(mut send: F) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    let mut backoff = Backoff::start();
    loop {
        match send().await {
            Err(e) if is_contention_error(&e) && backoff.pause().await => {}
            result => return result,
        }
    }
}

/// Full-jitter exponential backoff within [`CONTENTION_BUDGET`], over the contention an
/// operation has met so far (which may span several store calls, [`Contention`]).
pub(crate) type Backoff = Contention;

pub(crate) trait Pause {
    /// Pauses before the next attempt; `false` (without pausing) once the budget is spent.
    async fn pause(&mut self) -> bool;
    /// The error for a request that spent its budget on contention (logged).
    fn give_up(&self, what: &str) -> StoreError;
}

impl Pause for Contention {
    async fn pause(&mut self) -> bool {
        let cap = FIRST_PAUSE_MS.saturating_mul(1 << self.pauses.min(10)).min(LONGEST_PAUSE_MS);
        let r = u64::from(u16::from_le_bytes(rt_domain::random::bytes::<2>()));
        let pause = Duration::from_millis(1 + r % cap);
        if self.since.elapsed() + pause > CONTENTION_BUDGET {
            return false;
        }
        self.pauses += 1;
        tokio::time::sleep(pause).await;
        true
    }

    fn give_up(&self, what: &str) -> StoreError {
        tracing::warn!(what, pauses = self.pauses, "gave up: the items stayed contended");
        StoreError::unavailable(format!("{what}: contention"))
    }
}
