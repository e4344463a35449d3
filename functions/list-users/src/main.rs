//! `list-users` Lambda function: wiring only (see `rt_http::handlers::management::list_users`).

#[tokio::main]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("list-users", rt_http::handlers::management::list_users).await
}
