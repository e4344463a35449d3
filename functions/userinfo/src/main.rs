//! `userinfo` Lambda function: wiring only (see `rt_http::handlers::userinfo`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("userinfo", rt_http::handlers::userinfo::handle).await
}
