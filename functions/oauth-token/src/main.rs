//! `oauth-token` Lambda function: wiring only (see `rt_http::handlers::oauth_token`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("oauth-token", rt_http::handlers::oauth_token::handle).await
}
