//! `get-user` Lambda function: wiring only (see `rt_http::handlers::management::get_user`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("get-user", rt_http::handlers::management::get_user).await
}
