//! `dashboard-users` Lambda function: wiring only (see `rt_http::handlers::dashboard::dashboard_users`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("dashboard-users", rt_http::handlers::dashboard::dashboard_users).await
}
