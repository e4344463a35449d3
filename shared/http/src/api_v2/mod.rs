//! The Auth0 Management API wire (`/api/v2`). The use cases are `rt_domain::management`; this
//! module is everything Auth0-shaped around them:
//! - `mod.rs`: bearer-token authentication, reading the query, path and JSON body, running an
//!   operation and answering with CORS for the caller's registered origins;
//! - `error.rs`: the one mapping of every failure to a status and `{statusCode, error,
//!   message, errorCode}`;
//! - `listing.rs`: paging parameters, `include_totals`, field selection, page envelopes;
//! - `body.rs`: strict reading of JSON objects;
//! - `users.rs`, `clients.rs`, `device_credentials.rs`, `logs.rs`: per resource, the Auth0 view of the
//!   domain type, the parsing of requests into typed commands, and one function per operation.
//!
//! Each operation reads the request (an unreadable one is refused first), checks the caller's
//! scope with the use case's own requirement (so that a caller without it learns nothing about
//! its parameters, as Auth0 answers), parses the parameters into a typed command, runs the use
//! case (which checks the scope again: it is the authority) and writes the view.

pub mod body;
pub mod clients;
pub mod device_credentials;
pub mod error;
pub mod listing;
pub mod logs;
pub mod users;

use std::future::Future;

use crate::params::Params;
use lambda_http::{Body, Request, Response};
use rt_domain::claims::AccessTokenClaims;
use rt_domain::ids::ClientId;
use rt_domain::management::Principal;
use rt_domain::ports::{ClientStore, Freshness};
use rt_domain::scope::Scope;
use rt_jwt::VerifyError;
use serde_json::Value;

pub use self::error::{ApiError, Unauthorized, error_response};
use crate::app::Api;
use crate::request::{self, InputError};
use crate::response::{json, no_content, preflight, with_cors};

/// Largest Management API request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Verifies `Authorization: Bearer <access token>`: the published key its `kid` names, with that
/// key's algorithm (RS256, PS256, ES256 or EdDSA), `iss`, `aud` =
/// `{issuer}api/v2/`, `exp`, a client-credentials token of a client that still exists.
pub async fn principal(app: &Api, req: &Request) -> Result<Principal, ApiError> {
    let Some(h) = request::header(req, "authorization") else {
        return Err(ApiError::Unauthorized(Unauthorized::Missing));
    };
    let token = match h.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
        _ => return Err(ApiError::Unauthorized(Unauthorized::Scheme)),
    };
    let invalid = || ApiError::Unauthorized(Unauthorized::Invalid);
    let audience = format!("{}api/v2/", app.issuer);
    let claims: AccessTokenClaims =
        app.verifier.verify(token, &app.issuer, &audience, app.clock.now().secs()).map_err(|e| {
            ApiError::Unauthorized(match e {
                VerifyError::Expired => Unauthorized::Expired,
                VerifyError::Signature | VerifyError::UnknownKey | VerifyError::Algorithm => Unauthorized::Signature,
                _ => Unauthorized::Invalid,
            })
        })?;
    let client_id = ClientId::parse(&claims.azp).map_err(|_| invalid())?;
    if claims.gty.as_deref() != Some("client-credentials") || claims.sub != format!("{client_id}@clients") {
        return Err(invalid());
    }
    // A deleted client's tokens stop working, and a token is worth only the scopes its client
    // still holds: both checked on every call (against the 30 s client cache).
    let Some(client) = app.store.get_client(&client_id, Freshness::Cached).await? else {
        return Err(ApiError::Unauthorized(Unauthorized::UnknownClient));
    };
    let granted = Scope::parse(&claims.scope).map_err(|_| invalid())?;
    let scopes = granted.iter().filter(|s| client.management_scopes.iter().any(|held| held == s)).collect();
    Ok(Principal { client_id, scopes })
}

/// The query string.
pub fn query(req: &Request) -> Result<Params, ApiError> {
    Ok(request::query(req)?)
}

/// A path parameter as API Gateway passes it (still percent-encoded).
pub fn path(req: &Request, name: &str) -> Result<String, ApiError> {
    request::path_parameter(req, name)
        .ok_or_else(|| ApiError::Uri(format!("Invalid request URI: missing {name}").into()))
}

/// A percent-decoded path parameter (`auth0%7C…` → `auth0|…`).
pub fn decode(raw: &str) -> Result<String, ApiError> {
    request::decode_path_segment(raw).map_err(|_| ApiError::Uri("Invalid request URI: bad percent-encoding".into()))
}

/// A JSON body (`application/json`, at most 64 KiB).
pub fn json_body(req: &Request) -> Result<Value, ApiError> {
    let body = request::body_bytes(req);
    if body.len() > MAX_BODY {
        return Err(InputError::TooLarge(MAX_BODY).into());
    }
    let ct = request::header(req, "content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(InputError::ContentType.into());
    }
    serde_json::from_slice(body).map_err(|_| error::payload("invalid JSON"))
}

/// A successful answer.
pub enum Reply {
    Json(u16, Value),
    NoContent,
}

/// Authenticates, runs `op`, and answers (in the Management envelope on failure) with CORS
/// for the caller's registered origins.
pub async fn call<'a, F, Fut>(app: &'a Api, req: &'a Request, op: F) -> Response<Body>
where
    F: FnOnce(Principal) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>> + 'a,
{
    let who = match principal(app, req).await {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let client = who.client_id.clone();
    let response = match op(who).await {
        Ok(Reply::Json(status, v)) => json(status, &v),
        Ok(Reply::NoContent) => no_content(),
        Err(e) => error_response(&e),
    };
    match request::header(req, "origin") {
        Some(origin) => match app.store.get_client(&client, Freshness::Cached).await {
            Ok(Some(c)) if c.allows_origin(origin) => with_cors(response, origin),
            _ => response,
        },
        None => response,
    }
}

/// `OPTIONS /api/v2/{proxy+}`: the preflight. The actual response carries
/// `Access-Control-Allow-Origin` only for origins the calling client registered.
pub fn preflight_response(req: &Request) -> Response<Body> {
    preflight(request::header(req, "origin"), "GET, POST, PATCH, DELETE, OPTIONS")
}
