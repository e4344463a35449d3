//! `openapi` Lambda function: wiring only (see `rt_http::handlers::openapi`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("openapi", rt_http::handlers::openapi::handle).await
}
