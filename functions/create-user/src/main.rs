//! `create-user` Lambda function: wiring only (see `rt_http::handlers::management::create_user`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("create-user", rt_http::handlers::management::create_user).await
}
