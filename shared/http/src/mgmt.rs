//! Management API (`/api/v2`) plumbing: bearer-token authentication, the Auth0 error
//! envelope, JSON bodies, CORS for browser callers.

use std::future::Future;

use lambda_http::{Body, Request, RequestExt as _, Response};
use rt_domain::claims::AccessTokenClaims;
use rt_domain::ids::ClientId;
use rt_domain::management::{MgmtError, Principal};
use rt_domain::params::Params;
use rt_domain::ports::{ClientStore, Freshness};
use rt_domain::scope::Scope;
use rt_jwt::VerifyError;
use serde_json::Value;

use crate::app::Api;
use crate::request::{self, InputError};
use crate::response::{json, preflight, with_cors, with_header};

/// Largest Management API request body.
pub const MAX_BODY: usize = 64 * 1024;

pub fn error(e: &MgmtError) -> Response<Body> {
    let r = json(e.status, &e.body());
    if e.status == 503 { with_header(r, "retry-after", "1") } else { r }
}

fn input(e: &InputError) -> MgmtError {
    match e {
        InputError::TooLarge | InputError::ContentType => MgmtError::new(e.status(), e.to_string(), None),
        _ => MgmtError::bad_query(format!("Invalid request query string: {e}")),
    }
}

/// Verifies `Authorization: Bearer <access token>`: RS256 with our key, `iss`, `aud` =
/// `{issuer}api/v2/`, `exp`, a client-credentials token of a client that still exists.
pub async fn principal(app: &Api, req: &Request) -> Result<Principal, MgmtError> {
    let Some(h) = request::header(req, "authorization") else {
        return Err(MgmtError::unauthorized("Missing authentication"));
    };
    let token = match h.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
        _ => return Err(MgmtError::new(401, "Bad HTTP authentication header format", Some("Bearer"))),
    };
    let audience = format!("{}api/v2/", app.issuer);
    let claims: AccessTokenClaims =
        app.verifier.verify(token, &app.issuer, &audience, app.clock.now().secs()).map_err(|e| {
            MgmtError::unauthorized(match e {
                VerifyError::Expired => "Expired token",
                VerifyError::Signature | VerifyError::UnknownKey | VerifyError::Algorithm => {
                    "Invalid signature received for JSON Web Token validation"
                }
                _ => "Invalid token",
            })
        })?;
    let client_id = ClientId::parse(&claims.azp).map_err(|_| MgmtError::unauthorized("Invalid token"))?;
    if claims.gty.as_deref() != Some("client-credentials") || claims.sub != format!("{client_id}@clients") {
        return Err(MgmtError::unauthorized("Invalid token"));
    }
    // A deleted client's tokens stop working (within the 30 s client cache).
    if app.store.get_client(&client_id, Freshness::Cached).await?.is_none() {
        return Err(MgmtError::unauthorized("Client is not global."));
    }
    let scopes = Scope::parse(&claims.scope).map_err(|_| MgmtError::unauthorized("Invalid token"))?;
    Ok(Principal { client_id, scopes })
}

/// The query string.
pub fn query(req: &Request) -> Result<Params, MgmtError> {
    request::query(req).map_err(|e| input(&e))
}

/// A path parameter as API Gateway passes it (still percent-encoded).
pub fn path(req: &Request, name: &str) -> Result<String, MgmtError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| MgmtError::bad_request(format!("Invalid request URI: missing {name}")))
}

/// A JSON body (`application/json`, at most 64 KiB).
pub fn json_body(req: &Request) -> Result<Value, MgmtError> {
    let body = request::body_bytes(req);
    if body.len() > MAX_BODY {
        return Err(input(&InputError::TooLarge));
    }
    let ct = request::header(req, "content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(input(&InputError::ContentType));
    }
    serde_json::from_slice(body).map_err(|_| MgmtError::bad_request("Payload validation error: invalid JSON"))
}

pub enum Reply {
    Json(u16, Value),
    NoContent,
}

/// Authenticates, runs `op`, and answers in the Management envelope with CORS for the
/// caller's registered origins.
pub async fn call<'a, F, Fut>(app: &'a Api, req: &'a Request, op: F) -> Response<Body>
where
    F: FnOnce(Principal) -> Fut,
    Fut: Future<Output = Result<Reply, MgmtError>> + 'a,
{
    let who = match principal(app, req).await {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let client = who.client_id.clone();
    let response = match op(who).await {
        Ok(Reply::Json(status, v)) => json(status, &v),
        Ok(Reply::NoContent) => Response::builder().status(204).body(Body::Empty).unwrap_or_default(),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(status = e.status, message = %e.message, "management");
            }
            error(&e)
        }
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
