//! `get-client` Lambda function: wiring only (see `rt_http::handlers::management::get_client`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("get-client", rt_http::handlers::management::get_client).await
}
