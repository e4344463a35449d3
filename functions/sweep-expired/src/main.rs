//! `sweep-expired` Lambda function, run on a schedule: wiring only (see
//! `rt_http::handlers::sweep::sweep_expired`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run_scheduled("sweep-expired", rt_http::handlers::sweep::sweep_expired).await
}
