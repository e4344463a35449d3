//! `dashboard-assets` Lambda function: wiring only (see `rt_http::handlers::dashboard::dashboard_assets`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("dashboard-assets", rt_http::handlers::dashboard::dashboard_assets).await
}
