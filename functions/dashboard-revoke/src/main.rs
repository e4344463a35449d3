//! `dashboard-revoke` Lambda function: wiring only (see `rt_http::handlers::dashboard::dashboard_revoke`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("dashboard-revoke", rt_http::handlers::dashboard::dashboard_revoke).await
}
