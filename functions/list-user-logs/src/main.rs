//! `list-user-logs` Lambda function: wiring only (see `rt_http::handlers::management::list_user_logs`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("list-user-logs", rt_http::handlers::management::list_user_logs).await
}
