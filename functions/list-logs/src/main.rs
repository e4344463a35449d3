//! `list-logs` Lambda function: wiring only (see `rt_http::handlers::management::list_logs`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("list-logs", rt_http::handlers::management::list_logs).await
}
