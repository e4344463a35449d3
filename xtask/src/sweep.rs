//! `cargo xtask sweep`: one run of the scheduled sweep (`sweep-expired`: the same handler the
//! Lambda function runs) against the table of `cargo xtask dev`, or the DynamoDB that
//! `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` name (`TABLE_NAME`, default
//! `refresh-tokens`).

use std::sync::Arc;
use std::time::Duration;

use rt_devkit::paths;
use rt_domain::clock::SystemClock;
use rt_http::app::Worker;
use rt_http::handlers::Invocation;
use rt_store::DynamoStore;

use crate::Result;

/// Where `cargo xtask dev` writes the endpoint of the DynamoDB it serves from.
pub fn endpoint_file() -> std::path::PathBuf {
    paths::dev_dir().join("dynamodb-endpoint")
}

pub fn main(args: &[String]) -> Result<()> {
    let mut budget = Duration::from_secs(60);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--budget" => {
                let secs: u64 = it.next().and_then(|s| s.parse().ok()).ok_or("--budget needs a number of seconds")?;
                budget = Duration::from_secs(secs);
            }
            other => {
                return Err(format!("unknown argument {other}; usage: cargo xtask sweep [--budget SECONDS]").into());
            }
        }
    }
    let external = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).ok();
    let endpoint = external
        .clone()
        .or_else(|| std::fs::read_to_string(endpoint_file()).ok().map(|s| s.trim().to_owned()))
        .ok_or("no DynamoDB to sweep: run `cargo xtask dev` first, or set AWS_ENDPOINT_URL_DYNAMODB")?;
    let table = std::env::var("TABLE_NAME").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "refresh-tokens".into());
    rt_http::bootstrap::init_tracing_for_humans();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // As `cargo xtask dev`: a local server takes any credentials, others those of the environment.
        let store = if external.is_some() && std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            DynamoStore::from_env(table.clone())
        } else {
            DynamoStore::local(&endpoint, table.clone())
        };
        // The retention as the deployed function reads it (LOG_RETENTION_DAYS, default 30).
        let log_retention_days = rt_http::config::WorkerConfig::from_lookup(|k| match k {
            rt_http::config::TABLE_NAME => Some(table.clone()),
            _ => std::env::var(k).ok(),
        })?
        .log_retention_days;
        let worker = Worker { store, clock: Arc::new(SystemClock), log_retention_days };
        eprintln!("xtask: sweeping table '{table}' on {endpoint} (budget {} s)", budget.as_secs());
        let summary = rt_http::handlers::sweep::sweep_expired(&worker, Invocation { budget }).await?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        Ok(())
    })
}
