//! `oauth-revoke` Lambda function: wiring only (see `rt_http::handlers::oauth_revoke`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("oauth-revoke", rt_http::handlers::oauth_revoke::handle).await
}
