//! One handler per function. Handlers never fail at the Lambda boundary: every expected
//! failure is a response.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Request, Response};

use crate::app::App;

pub mod authorize;
pub mod dashboard;
pub mod delegation;
pub mod jwks;
pub mod management;
pub mod oauth_token;
pub mod openid_configuration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a function binary runs for each request.
pub type Handler = for<'a> fn(&'a App, Request) -> BoxFuture<'a, Response<Body>>;

/// Every function, by its binary name (= `functions/<name>` = `BuildProperties.Binary` in
/// `template.yaml`). The local server routes `template.yaml`'s events through this table.
pub const FUNCTIONS: &[(&str, Handler)] = &[
    ("authorize", authorize::handle),
    ("delegation", delegation::handle),
    ("jwks", jwks::handle),
    ("openid-configuration", openid_configuration::handle),
    ("oauth-token", oauth_token::handle),
    ("list-device-credentials", management::list_device_credentials),
    ("delete-device-credential", management::delete_device_credential),
    ("list-users", management::list_users),
    ("get-user", management::get_user),
    ("create-user", management::create_user),
    ("update-user", management::update_user),
    ("delete-user", management::delete_user),
    ("list-clients", management::list_clients),
    ("get-client", management::get_client),
    ("create-client", management::create_client),
    ("update-client", management::update_client),
    ("delete-client", management::delete_client),
    ("api-preflight", management::api_preflight),
    ("dashboard-login", dashboard::dashboard_login),
    ("dashboard-users", dashboard::dashboard_users),
    ("dashboard-user", dashboard::dashboard_user),
    ("dashboard-revoke", dashboard::dashboard_revoke),
    ("dashboard-assets", dashboard::dashboard_assets),
];

pub fn by_name(name: &str) -> Option<Handler> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

pub(crate) fn method_not_allowed() -> Response<Body> {
    crate::oauth::error_response(&crate::oauth::OAuthError::MethodNotAllowed)
}
