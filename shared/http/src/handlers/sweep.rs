//! `sweep-expired`: run on a schedule (`SweepSchedule` in `template.yaml`), not on a route.
//! Removes the records that have expired (`rt_domain::sweep`) and answers what it did.

use rt_domain::ports::StoreError;
use rt_domain::sweep::{self, SweepReport};
use serde_json::{Value, json};

use super::{BoxFuture, Invocation};
use crate::app::Worker;
use crate::failure::Chain;

/// The summary a sweep answers and logs: counts only.
pub fn summary(r: &SweepReport) -> Value {
    json!({
        "complete": r.complete(),
        "removed": r.removed(),
        "clients_swept": r.clients_swept,
        "credentials_examined": r.credentials_examined,
        "steps": r.steps.iter().map(|s| json!({"step": s.step, "removed": s.removed, "complete": s.complete})).collect::<Vec<_>>(),
    })
}

/// One sweep within the invocation's budget.
pub fn sweep_expired(w: &Worker, run: Invocation) -> BoxFuture<'_, Result<Value, StoreError>> {
    Box::pin(async move {
        match sweep::sweep(&w.store, w.clock.now(), run.budget, w.log_retention_days).await {
            Ok(report) => {
                tracing::info!(
                    removed = report.removed(),
                    complete = report.complete(),
                    clients_swept = report.clients_swept,
                    credentials_examined = report.credentials_examined,
                    budget_ms = u64::try_from(run.budget.as_millis()).unwrap_or(u64::MAX),
                    "sweep done"
                );
                Ok(summary(&report))
            }
            Err(e) => {
                tracing::error!(error = %Chain(&e), "sweep failed");
                Err(e)
            }
        }
    })
}
