//! One handler per function. Handlers never fail at the Lambda boundary: every expected
//! failure is a response.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Request, Response};
use rt_jwt::VerifyingKey;

use crate::app::{Api, App, Base};
use crate::capability::Kind;

pub mod authorize;
pub mod dashboard;
pub mod delegation;
pub mod jwks;
pub mod management;
pub mod oauth_token;
pub mod openid_configuration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A handler given the state `S` (see [`crate::app`]).
pub type HandlerFn<S> = for<'a> fn(&'a S, Request) -> BoxFuture<'a, Response<Body>>;

/// What a function binary runs for each request, by what it is given.
#[derive(Clone, Copy)]
pub enum Handler {
    Bare(HandlerFn<Base>),
    Jwks(HandlerFn<VerifyingKey>),
    Api(HandlerFn<Api>),
    App(HandlerFn<App>),
}

impl Handler {
    pub fn kind(self) -> Kind {
        match self {
            Handler::Bare(_) => Kind::Bare,
            Handler::Jwks(_) => Kind::Jwks,
            Handler::Api(_) => Kind::Api,
            Handler::App(_) => Kind::App,
        }
    }

    /// Runs the handler on the part of `app` its kind is given (the local server).
    pub async fn call(self, app: &App, req: Request) -> Response<Body> {
        match self {
            Handler::Bare(h) => h(&app.api.base, req).await,
            Handler::Jwks(h) => h(&app.api.verifier, req).await,
            Handler::Api(h) => h(&app.api, req).await,
            Handler::App(h) => h(app, req).await,
        }
    }
}

/// A function and its handler (and so what its binary builds).
#[derive(Clone, Copy)]
pub struct Function {
    /// The binary (= `functions/<name>` = `BuildProperties.Binary` in `template.yaml`).
    pub name: &'static str,
    pub handler: Handler,
}

impl Function {
    pub fn kind(&self) -> Kind {
        self.handler.kind()
    }
}

/// Every function. The local server routes `template.yaml`'s events through this table.
pub const FUNCTIONS: &[Function] = &[
    Function { name: "authorize", handler: Handler::App(authorize::handle) },
    Function { name: "delegation", handler: Handler::App(delegation::handle) },
    Function { name: "jwks", handler: Handler::Jwks(jwks::handle) },
    Function { name: "openid-configuration", handler: Handler::Bare(openid_configuration::handle) },
    Function { name: "oauth-token", handler: Handler::App(oauth_token::handle) },
    Function { name: "list-device-credentials", handler: Handler::Api(management::list_device_credentials) },
    Function { name: "delete-device-credential", handler: Handler::Api(management::delete_device_credential) },
    Function { name: "list-users", handler: Handler::Api(management::list_users) },
    Function { name: "get-user", handler: Handler::Api(management::get_user) },
    Function { name: "create-user", handler: Handler::Api(management::create_user) },
    Function { name: "update-user", handler: Handler::Api(management::update_user) },
    Function { name: "delete-user", handler: Handler::Api(management::delete_user) },
    Function { name: "list-clients", handler: Handler::Api(management::list_clients) },
    Function { name: "get-client", handler: Handler::Api(management::get_client) },
    Function { name: "create-client", handler: Handler::Api(management::create_client) },
    Function { name: "update-client", handler: Handler::Api(management::update_client) },
    Function { name: "delete-client", handler: Handler::Api(management::delete_client) },
    Function { name: "api-preflight", handler: Handler::Bare(management::api_preflight) },
    Function { name: "dashboard-login", handler: Handler::App(dashboard::dashboard_login) },
    Function { name: "dashboard-users", handler: Handler::App(dashboard::dashboard_users) },
    Function { name: "dashboard-user", handler: Handler::App(dashboard::dashboard_user) },
    Function { name: "dashboard-revoke", handler: Handler::App(dashboard::dashboard_revoke) },
    Function { name: "dashboard-assets", handler: Handler::Bare(dashboard::dashboard_assets) },
];

pub fn by_name(name: &str) -> Option<Handler> {
    FUNCTIONS.iter().find(|f| f.name == name).map(|f| f.handler)
}

pub(crate) fn method_not_allowed() -> Response<Body> {
    crate::response::oauth_error(405, "invalid_request", "Method not allowed.")
}
