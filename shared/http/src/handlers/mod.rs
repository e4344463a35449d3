//! One handler per function. HTTP handlers never fail at the Lambda boundary: every expected
//! failure is a response. A scheduled handler (no route: an EventBridge schedule invokes it)
//! answers a summary, or fails the invocation when the store does (logged once, retried by
//! Lambda, counted in the function's `Errors` metric).

use std::future::Future;
use std::pin::Pin;

use crate::app::{Api, App, Base, Published, Worker};
use crate::capability::Action::{
    BatchGetItem, BatchWriteItem, ConditionCheckItem, DeleteItem, GetItem, PutItem, Query, UpdateItem,
};
use crate::capability::{Grant, Kind, indexes, table};
use lambda_http::{Body, Request, Response};

pub mod authorize;
pub mod dashboard;
pub mod delegation;
pub mod jwks;
pub mod management;
pub mod oauth_revoke;
pub mod oauth_token;
pub mod openapi;
pub mod openid_configuration;
pub mod sweep;
pub mod userinfo;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A handler given the state `S` (see [`crate::app`]).
pub type HandlerFn<S> = for<'a> fn(&'a S, Request) -> BoxFuture<'a, Response<Body>>;

/// One scheduled invocation: how long it may run (the invocation's deadline less a margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation {
    pub budget: std::time::Duration,
}

/// A scheduled handler given the state `S`: a summary of what it did (counts, nothing
/// secret), or the store failure that stopped it.
pub type ScheduledFn<S> =
    for<'a> fn(&'a S, Invocation) -> BoxFuture<'a, Result<serde_json::Value, rt_domain::ports::StoreError>>;

/// What a function binary runs for each request (or scheduled invocation), by what it is given.
#[derive(Clone, Copy)]
pub enum Handler {
    Bare(HandlerFn<Base>),
    Jwks(HandlerFn<Published>),
    Api(HandlerFn<Api>),
    App(HandlerFn<App>),
    /// Run on a schedule, not on an HTTP route.
    Scheduled(ScheduledFn<Worker>),
}

impl Handler {
    pub fn kind(self) -> Kind {
        match self {
            Handler::Bare(_) => Kind::Bare,
            Handler::Jwks(_) => Kind::Jwks,
            Handler::Api(_) => Kind::Api,
            Handler::App(_) => Kind::App,
            Handler::Scheduled(_) => Kind::Worker,
        }
    }

    /// Runs the handler on the part of `app` its kind is given (the local server). A scheduled
    /// handler has no route (`rt_devkit::template` refuses one): it answers 405.
    pub async fn call(self, app: &App, req: Request) -> Response<Body> {
        match self {
            Handler::Bare(h) => h(&app.api.published.base, req).await,
            Handler::Jwks(h) => h(&app.api.published, req).await,
            Handler::Api(h) => h(&app.api, req).await,
            Handler::App(h) => h(app, req).await,
            Handler::Scheduled(_) => method_not_allowed(),
        }
    }
}

/// A function: its handler (and so what its binary builds) and what it may do to the table.
#[derive(Clone, Copy)]
pub struct Function {
    /// The binary (= `functions/<name>` = `BuildProperties.Binary` in `template.yaml`).
    pub name: &'static str,
    pub handler: Handler,
    /// Every DynamoDB action its code paths send, with the leading keys they touch; nothing
    /// for a function without the table. `template.yaml` grants exactly these.
    pub table: &'static [Grant],
}

impl Function {
    pub fn kind(&self) -> Kind {
        self.handler.kind()
    }
}

/// Every function. The local server routes `template.yaml`'s events through this table; the
/// template's policies are checked against it (ARCHITECTURE.md, *Capabilities per function*).
/// Reading a client goes through the per-process cache (a `GetItem` on a miss); the
/// Management API functions all read the caller's client (`mgmt::principal`).
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "authorize",
        handler: Handler::App(authorize::handle),
        table: &[
            // the client; the login's e-mail item and user; the sign-in throttle's counters
            table(GetItem, &["CLIENT#*", "EMAIL#*", "USER#*", "RL#login-*"]),
            // a failure counts on the two throttle counters; issuing: one more live token on
            // the user's device, conditional on its revision (with the credential's put)
            table(UpdateItem, &["RL#login-*", "USER#*"]),
            // a success clears its (account, address) counter
            table(DeleteItem, &["RL#login-*"]),
            // implicit flow: the credential; code flow: the code (by its hash); the audit
            // event (the user's partition, or a shard of the day's without one)
            table(PutItem, &["DCR#*", "CODE#*", "LOG#*"]),
        ],
    },
    Function {
        name: "delegation",
        handler: Handler::App(delegation::handle),
        table: &[
            // the client; the user for profile claims; the credential after contention
            table(GetItem, &["CLIENT#*", "USER#*", "DCR#*"]),
            // the exchange: update the credential + check the user
            table(UpdateItem, &["DCR#*"]),
            table(ConditionCheckItem, &["USER#*"]),
            // the audit event, after the exchange
            table(PutItem, &["LOG#*"]),
        ],
    },
    Function {
        name: "oauth-revoke",
        handler: Handler::App(oauth_revoke::handle),
        table: &[
            // the client; the credential; its revocation, counted off the user's devices
            table(GetItem, &["CLIENT#*", "DCR#*"]),
            table(DeleteItem, &["DCR#*"]),
            table(UpdateItem, &["USER#*"]),
            // the audit event
            table(PutItem, &["LOG#*"]),
        ],
    },
    Function {
        name: "userinfo",
        handler: Handler::Api(userinfo::handle),
        // the user; the token's client (CORS)
        table: &[table(GetItem, &["USER#*", "CLIENT#*"])],
    },
    Function { name: "jwks", handler: Handler::Jwks(jwks::handle), table: &[] },
    Function { name: "openid-configuration", handler: Handler::Jwks(openid_configuration::handle), table: &[] },
    Function { name: "openapi", handler: Handler::Bare(openapi::handle), table: &[] },
    Function {
        name: "oauth-token",
        handler: Handler::App(oauth_token::handle),
        table: &[
            // the client; the refresh grant: the user for profile claims, the credential
            // after contention; the code grant: the code, the user, a redeemed code's
            // credential
            table(GetItem, &["CLIENT#*", "USER#*", "DCR#*", "CODE#*"]),
            // the exchange: update the credential (count, record, rotate) + check the user;
            // reuse of a retired member: delete the family, count it off the user's devices;
            // the code grant: mark the code redeemed, put the credential, count it on the
            // user's devices (or check the user)
            table(UpdateItem, &["DCR#*", "USER#*", "CODE#*"]),
            table(ConditionCheckItem, &["USER#*"]),
            table(DeleteItem, &["DCR#*"]),
            // the code grant's credential; every grant's audit event
            table(PutItem, &["DCR#*", "LOG#*"]),
        ],
    },
    Function {
        name: "list-device-credentials",
        handler: Handler::Api(management::list_device_credentials),
        table: &[
            table(GetItem, &["CLIENT#*"]),
            // a user's credentials (GSI1 `USER#<uid>`) or a client's (GSI2 `CLIENT#<cid>#<nn>`)
            indexes(Query, &["USER#*", "CLIENT#*"]),
            table(BatchGetItem, &["DCR#*"]),
        ],
    },
    Function {
        name: "delete-device-credential",
        handler: Handler::Api(management::delete_device_credential),
        table: &[
            // revoking: read the credential, delete it and count it off its user's device
            table(GetItem, &["CLIENT#*", "DCR#*"]),
            table(DeleteItem, &["DCR#*"]),
            table(UpdateItem, &["USER#*"]),
            // the audit event, in the credential's user's partition
            table(PutItem, &["LOG#*"]),
        ],
    },
    Function {
        name: "list-users",
        handler: Handler::Api(management::list_users),
        table: &[
            // `q=email:"…"`: the e-mail item, then the user
            table(GetItem, &["CLIENT#*", "EMAIL#*", "USER#*"]),
            indexes(Query, &["USERS"]),
            table(BatchGetItem, &["USER#*"]),
        ],
    },
    Function {
        name: "get-user",
        handler: Handler::Api(management::get_user),
        table: &[table(GetItem, &["CLIENT#*", "USER#*"])],
    },
    Function {
        name: "create-user",
        handler: Handler::Api(management::create_user),
        table: &[table(GetItem, &["CLIENT#*"]), table(PutItem, &["USER#*", "EMAIL#*"])],
    },
    Function {
        name: "update-user",
        handler: Handler::Api(management::update_user),
        table: &[
            table(GetItem, &["CLIENT#*", "USER#*"]),
            table(UpdateItem, &["USER#*"]),
            // an e-mail change moves the e-mail item in the same transaction; a password
            // change or a block is an audit event
            table(PutItem, &["EMAIL#*", "LOG#*"]),
            table(DeleteItem, &["EMAIL#*"]),
            // a password change purges the older revisions' credentials
            indexes(Query, &["USER#*"]),
            table(BatchWriteItem, &["DCR#*"]),
        ],
    },
    Function {
        name: "delete-user",
        handler: Handler::Api(management::delete_user),
        table: &[
            table(GetItem, &["CLIENT#*", "USER#*"]),
            table(DeleteItem, &["USER#*", "EMAIL#*"]),
            indexes(Query, &["USER#*"]),
            table(BatchWriteItem, &["DCR#*"]),
            // the audit event, in the deleted user's partition (kept until its day expires)
            table(PutItem, &["LOG#*"]),
        ],
    },
    Function {
        name: "list-clients",
        handler: Handler::Api(management::list_clients),
        table: &[table(GetItem, &["CLIENT#*"]), indexes(Query, &["CLIENTS"]), table(BatchGetItem, &["CLIENT#*"])],
    },
    Function {
        name: "get-client",
        handler: Handler::Api(management::get_client),
        table: &[table(GetItem, &["CLIENT#*"])],
    },
    Function {
        name: "create-client",
        handler: Handler::Api(management::create_client),
        table: &[table(GetItem, &["CLIENT#*"]), table(PutItem, &["CLIENT#*"])],
    },
    Function {
        name: "update-client",
        handler: Handler::Api(management::update_client),
        table: &[table(GetItem, &["CLIENT#*"]), table(PutItem, &["CLIENT#*"])],
    },
    Function {
        name: "delete-client",
        handler: Handler::Api(management::delete_client),
        table: &[
            table(GetItem, &["CLIENT#*"]),
            table(DeleteItem, &["CLIENT#*", "DCR#*"]),
            // the purge: pages of the client's 16 GSI2 shards `CLIENT#<cid>#<nn>`, each
            // credential revoked and counted off its user's device
            indexes(Query, &["CLIENT#*"]),
            table(BatchGetItem, &["DCR#*"]),
            table(UpdateItem, &["USER#*"]),
        ],
    },
    Function {
        name: "list-logs",
        handler: Handler::Api(management::list_logs),
        table: &[
            table(GetItem, &["CLIENT#*"]),
            // the feed: the day's 32 GSI2 shards `LOGS#<day>#<nn>`, then the events' items
            indexes(Query, &["LOGS#*"]),
            table(BatchGetItem, &["LOG#*"]),
            // `q=user_id:…`: the user's own partition `LOG#<uid>`
            table(Query, &["LOG#*"]),
        ],
    },
    Function {
        name: "list-user-logs",
        handler: Handler::Api(management::list_user_logs),
        // the user's partition `LOG#<uid>` (a page; `Select=COUNT` for the total)
        table: &[table(GetItem, &["CLIENT#*"]), table(Query, &["LOG#*"])],
    },
    Function { name: "api-preflight", handler: Handler::Bare(management::api_preflight), table: &[] },
    Function {
        name: "dashboard-login",
        handler: Handler::App(dashboard::dashboard_login),
        table: &[
            // the session's user; the login's e-mail item and user; the throttle's counters
            table(GetItem, &["USER#*", "EMAIL#*", "RL#login-*"]),
            // a failure counts on the throttle's counters; signing out (`sessions_after`)
            table(UpdateItem, &["RL#login-*", "USER#*"]),
            // a success clears its (account, address) counter
            table(DeleteItem, &["RL#login-*"]),
            // the audit event of a sign-in
            table(PutItem, &["LOG#*"]),
        ],
    },
    Function {
        name: "dashboard-users",
        handler: Handler::App(dashboard::dashboard_users),
        table: &[
            table(GetItem, &["USER#*"]),
            // the users page (GSI1 `USERS`); each user item carries its device count
            indexes(Query, &["USERS"]),
            table(BatchGetItem, &["USER#*"]),
        ],
    },
    Function {
        name: "dashboard-user",
        handler: Handler::App(dashboard::dashboard_user),
        table: &[
            // the session's and the page's user; the devices' clients (names)
            table(GetItem, &["USER#*", "CLIENT#*"]),
            indexes(Query, &["USER#*"]),
            table(BatchGetItem, &["DCR#*"]),
            // the History tab: the user's partition of the audit log
            table(Query, &["LOG#*"]),
        ],
    },
    Function {
        name: "dashboard-revoke",
        handler: Handler::App(dashboard::dashboard_revoke),
        table: &[
            // UNLINK: the user's credentials, then each of the device's deleted and counted
            // off the user's device
            table(GetItem, &["USER#*"]),
            indexes(Query, &["USER#*"]),
            table(BatchGetItem, &["DCR#*"]),
            table(DeleteItem, &["DCR#*"]),
            // Revoke all: the user's revision, then the purge
            table(UpdateItem, &["USER#*"]),
            table(BatchWriteItem, &["DCR#*"]),
            // the audit event
            table(PutItem, &["LOG#*"]),
        ],
    },
    Function { name: "dashboard-assets", handler: Handler::Bare(dashboard::dashboard_assets), table: &[] },
    Function {
        name: "sweep-expired",
        handler: Handler::Scheduled(sweep::sweep_expired),
        table: &[
            // the clients (GSI2 `CLIENTS`) and their items (the policies, strongly consistent);
            // an expiring client's credentials (its 16 GSI2 shards `CLIENT#<cid>#<nn>`) and
            // their items (`last_used_at` is in no index)
            // expired days of the audit log: their 32 GSI2 shards `LOGS#<day>#<nn>`
            indexes(Query, &["CLIENTS", "CLIENT#*", "CODES#*", "LOGS#*"]),
            table(BatchGetItem, &["CLIENT#*", "DCR#*"]),
            // each expired one revoked: deleted and counted off its user's device
            table(DeleteItem, &["DCR#*"]),
            table(UpdateItem, &["USER#*"]),
            // expired authorization codes: their 16 GSI2 partitions `CODES#<nn>` by expiry,
            // deleted 25 at a time; so are the expired audit events (`LOG#…`)
            table(BatchWriteItem, &["CODE#*", "LOG#*"]),
        ],
    },
];

pub fn by_name(name: &str) -> Option<Handler> {
    FUNCTIONS.iter().find(|f| f.name == name).map(|f| f.handler)
}

/// A `POST` endpoint that browsers call cross-origin: `POST` answers with `post`, `OPTIONS`
/// with the CORS preflight, anything else 405.
pub(crate) async fn post_with_preflight(req: &Request, post: impl Future<Output = Response<Body>>) -> Response<Body> {
    match *req.method() {
        http::Method::POST => post.await,
        http::Method::OPTIONS => crate::response::preflight(crate::request::header(req, "origin"), "POST, OPTIONS"),
        _ => method_not_allowed(),
    }
}

pub(crate) fn method_not_allowed() -> Response<Body> {
    crate::oauth::error_response(&crate::oauth::OAuthError::MethodNotAllowed)
}
