//! The AWS settings a function takes from its environment, and nothing else: what Lambda sets
//! (`AWS_REGION`; the execution role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`) and the endpoint overrides of a local run (`AWS_ENDPOINT_URL_<SERVICE>`,
//! `AWS_ENDPOINT_URL`). `aws_config::load_defaults` would also link and run the profile-file,
//! SSO, web-identity (STS), container and instance-metadata providers, none of which a function
//! uses (ARCHITECTURE.md, "Footprint").

use aws_config::SdkConfig;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region, SharedCredentialsProvider};

/// The region, the credentials provider and the behaviour version every service client of a
/// function is built from. The credentials are read on first use; missing ones fail that
/// request (and the warm-up at start says so in the log).
pub fn sdk_config() -> SdkConfig {
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()));
    config.set_region(region());
    config.build()
}

/// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
pub fn region() -> Option<Region> {
    non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")).map(Region::new)
}

/// The endpoint the environment names for a service (`service` as in the variable's name,
/// e.g. `DYNAMODB`, `SECRETS_MANAGER`), else the one for every service, else none (AWS's).
pub fn endpoint_url(service: &str) -> Option<String> {
    non_empty(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| non_empty("AWS_ENDPOINT_URL"))
}

fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
