//! `api-preflight` Lambda function: wiring only (see `rt_http::handlers::management::api_preflight`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("api-preflight", rt_http::handlers::management::api_preflight).await
}
