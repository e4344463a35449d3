//! Contention on the caller's own items: DynamoDB cancels a transaction that touches an item of
//! another in-flight transaction (`TransactionConflict`), refuses a single-item write of such an
//! item (`TransactionConflictException`) and throttles a partition over its limit. Each is
//! retried after a jittered, exponentially growing pause, within a time budget; only then does
//! the caller see [`StoreError::Unavailable`] (a 503 with `Retry-After`).
//!
//! The SDK retries throttling of single requests by itself (standard mode, see
//! [`crate::DynamoStore::from_env`]); it does not retry transaction cancellations or conflicts.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// How long one request keeps retrying contention before it gives up.
pub const CONTENTION_BUDGET: Duration = Duration::from_millis(2500);
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

/// Full-jitter exponential backoff within [`CONTENTION_BUDGET`].
#[derive(Debug)]
pub(crate) struct Backoff {
    started: Instant,
    attempt: u32,
}

impl Backoff {
    pub fn start() -> Self {
        Self { started: Instant::now(), attempt: 0 }
    }

    /// Pauses before the next attempt; `false` (without pausing) once the budget is spent.
    pub async fn pause(&mut self) -> bool {
        let cap = FIRST_PAUSE_MS.saturating_mul(1 << self.attempt.min(10)).min(LONGEST_PAUSE_MS);
        let r = u64::from(u16::from_le_bytes(rt_domain::random::bytes::<2>()));
        let pause = Duration::from_millis(1 + r % cap);
        if self.started.elapsed() + pause > CONTENTION_BUDGET {
            return false;
        }
        self.attempt += 1;
        tokio::time::sleep(pause).await;
        true
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}
