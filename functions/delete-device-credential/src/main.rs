//! `delete-device-credential` Lambda function: wiring only (see `rt_http::handlers::management::delete_device_credential`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rt_http::Error> {
    rt_http::bootstrap::run("delete-device-credential", rt_http::handlers::management::delete_device_credential).await
}
