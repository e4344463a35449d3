//! `update-client` Lambda function: wiring only (see `rt_http::handlers::management::update_client`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("update-client", rt_http::handlers::management::update_client).await
}
