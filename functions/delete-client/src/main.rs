//! `delete-client` Lambda function: wiring only (see `rt_http::handlers::management::delete_client`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("delete-client", rt_http::handlers::management::delete_client).await
}
