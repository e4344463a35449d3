//! `list-device-credentials` Lambda function: wiring only (see `rt_http::handlers::management::list_device_credentials`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("list-device-credentials", rt_http::handlers::management::list_device_credentials).await
}
