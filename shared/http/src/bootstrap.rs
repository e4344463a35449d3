//! What every function binary runs: telemetry, the state its handler is given built once (and
//! nothing more: see [`crate::app`]), then the Lambda runtime loop calling the handler.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response, service_fn};

use crate::app::State;
use crate::handlers::HandlerFn;

/// Initialises JSON logs (level from `RUST_LOG`, default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .try_init();
}

/// Initialises readable logs for local runs (level from `RUST_LOG`, default `info`).
pub fn init_tracing_for_humans() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_smithy_runtime=warn,aws_config=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

/// Runs `handler` as a Lambda function, with the state `S` it is given built from the
/// environment. Returns only if the runtime fails to start.
pub async fn run<S: State>(name: &'static str, handler: HandlerFn<S>) -> Result<(), lambda_http::Error> {
    init_tracing();
    let state: &'static S = match S::from_env().await {
        Ok(state) => Box::leak(Box::new(state)),
        Err(e) => {
            tracing::error!(function = name, error = %e, "cannot start");
            return Err(e.into());
        }
    };
    tracing::info!(function = name, kid = state.kid().unwrap_or("-"), "started");
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<Response<Body>, Infallible>(handler(state, req).await)
    }))
    .await
}
