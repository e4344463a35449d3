//! `openid-configuration` Lambda function: wiring only (see `rt_http::handlers::openid_configuration`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("openid-configuration", rt_http::handlers::openid_configuration::handle).await
}
