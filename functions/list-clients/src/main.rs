//! `list-clients` Lambda function: wiring only (see `rt_http::handlers::management::list_clients`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("list-clients", rt_http::handlers::management::list_clients).await
}
