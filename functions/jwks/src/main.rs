//! `jwks` Lambda function: wiring only (see `rt_http::handlers::jwks`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("jwks", rt_http::handlers::jwks::handle).await
}
