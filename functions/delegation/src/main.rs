//! `delegation` Lambda function: wiring only (see `rt_http::handlers::delegation`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("delegation", rt_http::handlers::delegation::handle).await
}
