//! `authorize` Lambda function: wiring only (see `rt_http::handlers::authorize`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("authorize", rt_http::handlers::authorize::handle).await
}
