//! `delegation` Lambda function: wiring only (see `rt_http::handlers::delegation`).

#[tokio::main]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("delegation", rt_http::handlers::delegation::handle).await
}
