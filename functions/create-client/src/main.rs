//! `create-client` Lambda function: wiring only (see `rt_http::handlers::management::create_client`).

#[tokio::main]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("create-client", rt_http::handlers::management::create_client).await
}
