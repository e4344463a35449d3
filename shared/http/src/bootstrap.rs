//! What every function binary runs: telemetry, the state its handler is given built once (and
//! nothing more: see [`crate::app`]), then the Lambda runtime loop calling the handler —
//! [`run`] for an HTTP function (API Gateway events), [`run_scheduled`] for a scheduled one.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use lambda_http::{Body, LambdaEvent, Request, Response, service_fn};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::app::State;
use crate::handlers::{HandlerFn, Invocation, ScheduledFn};

/// The log filter of `RUST_LOG` (`target=level` directives, comma-separated, as
/// `info,aws_smithy_runtime=warn`), else `default`. A `Targets` filter, not an `EnvFilter`: the
/// latter's span and field directives need the `regex` crate in every binary
/// (ARCHITECTURE.md, "Footprint"), and no function uses them.
pub fn log_filter(default: &str) -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .or_else(|| default.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Initialises JSON logs (level from `RUST_LOG`, default `info`).
pub fn init_tracing() {
    let _ = tracing_subscriber::registry()
        .with(log_filter("info"))
        .with(
            tracing_subscriber::fmt::layer().json().with_current_span(false).without_time(), // CloudWatch stamps every line
        )
        .try_init();
}

/// Initialises readable logs for local runs (level from `RUST_LOG`, default `info`).
pub fn init_tracing_for_humans() {
    let _ = tracing_subscriber::registry()
        .with(log_filter("info,aws_smithy_runtime=warn,aws_config=warn"))
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .try_init();
}

/// The state `S` built from the environment, once, for the life of the process.
async fn start<S: State>(name: &'static str) -> Result<&'static S, lambda_http::Error> {
    init_tracing();
    match S::from_env().await {
        Ok(state) => {
            let state: &'static S = Box::leak(Box::new(state));
            state.warm_up().await;
            tracing::info!(function = name, kid = state.kid().as_deref().unwrap_or("-"), "started");
            Ok(state)
        }
        Err(e) => {
            tracing::error!(function = name, error = %e, "cannot start");
            Err(e.into())
        }
    }
}

/// Runs `handler` as a Lambda function, with the state `S` it is given built from the
/// environment. Returns only if the runtime fails to start. The functions call it from tokio's
/// current-thread runtime: a sandbox runs one invocation at a time, and a second worker only
/// adds wake-ups across threads (ARCHITECTURE.md, "Runtime").
pub async fn run<S: State>(name: &'static str, handler: HandlerFn<S>) -> Result<(), lambda_http::Error> {
    let state = start::<S>(name).await?;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<Response<Body>, Infallible>(crate::response::with_hsts(handler(state, req).await))
    }))
    .await
}

/// What a scheduled invocation leaves unused of its time: enough for the request in flight
/// when the budget runs out (a DynamoDB operation gives up after 12 s) and the answer.
pub const SCHEDULED_MARGIN: Duration = Duration::from_secs(15);

/// The budget of an invocation whose deadline is long gone when it starts: no deadline Lambda
/// sets, but a runtime emulator's placeholder (`cargo lambda watch` sends 600,000 ms after the
/// epoch).
pub const PLACEHOLDER_DEADLINE_BUDGET: Duration = Duration::from_secs(60);

/// The budget of an invocation that must end by `deadline`, seen at `now` (its start).
pub fn budget(deadline: SystemTime, now: SystemTime) -> Duration {
    match deadline.duration_since(now) {
        Ok(left) => left.saturating_sub(SCHEDULED_MARGIN),
        Err(_) => PLACEHOLDER_DEADLINE_BUDGET,
    }
}

/// Runs a scheduled `handler` as a Lambda function: each invocation (an EventBridge scheduled
/// event, whose content is not used) gets the time left before its deadline, less
/// [`SCHEDULED_MARGIN`] ([`budget`]). A failure fails the invocation (the store error's text,
/// no secret).
/// Returns only if the runtime fails to start.
pub async fn run_scheduled<S: State>(name: &'static str, handler: ScheduledFn<S>) -> Result<(), lambda_http::Error> {
    let state = start::<S>(name).await?;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let invocation = Invocation { budget: budget(event.context.deadline(), SystemTime::now()) };
        handler(state, invocation).await.map_err(lambda_http::Error::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_budget_keeps_a_margin_and_a_placeholder_deadline_gets_a_default() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(budget(now + Duration::from_secs(900), now), Duration::from_secs(885));
        assert_eq!(budget(now + Duration::from_secs(10), now), Duration::ZERO);
        assert_eq!(budget(now, now), Duration::ZERO);
        let emulator = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(budget(emulator, now), PLACEHOLDER_DEADLINE_BUDGET, "cargo lambda watch's placeholder");
    }
}
