//! `list-users` Lambda function: wiring only (see `rt_http::handlers::management::list_users`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("list-users", rt_http::handlers::management::list_users).await
}
