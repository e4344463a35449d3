//! `dashboard-user` Lambda function: wiring only (see `rt_http::handlers::dashboard::dashboard_user`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("dashboard-user", rt_http::handlers::dashboard::dashboard_user).await
}
