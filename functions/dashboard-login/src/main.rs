//! `dashboard-login` Lambda function: wiring only (see `rt_http::handlers::dashboard::dashboard_login`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("dashboard-login", rt_http::handlers::dashboard::dashboard_login).await
}
