//! The one place a `/api/v2` failure becomes a status and Auth0's (Hapi/Boom) envelope
//! `{statusCode, error, message, errorCode}`. Server-side failures are logged here, once.

use std::borrow::Cow;

use lambda_http::{Body, Response};
use rt_domain::client::{
    ID_TOKEN_LIFETIME_RANGE, REFRESH_TOKEN_LEEWAY_MAX, REFRESH_TOKEN_LIFETIME_RANGE, TokenEndpointAuthMethod,
};
use rt_domain::management::{Conflict, Entity, Invalid, MgmtError};
use rt_domain::ports::StoreError;
use serde_json::{Map, Value};

use crate::failure;
use crate::request::InputError;
use crate::response::json;

/// Why the bearer token was refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthorized {
    Missing,
    /// Not `Bearer <token>`.
    Scheme,
    Expired,
    Signature,
    Invalid,
    /// The token's client is gone.
    UnknownClient,
}

/// A failure of a Management API call: the use case's refusals and the wire's own.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Mgmt(#[from] MgmtError),
    #[error("unauthorized: {0:?}")]
    Unauthorized(Unauthorized),
    /// The request could not be read (query string, size, content type).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The path is not what the route expects.
    #[error("{0}")]
    Uri(Cow<'static, str>),
    /// The JSON body is not what the operation accepts.
    #[error("{0}")]
    Body(Cow<'static, str>),
    /// The query string is not what the operation accepts.
    #[error("{0}")]
    Query(Cow<'static, str>),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Mgmt(e.into())
    }
}

const INVALID_BODY: Option<&str> = Some("invalid_body");
const INVALID_QUERY: Option<&str> = Some("invalid_query_string");

/// A payload problem, in Auth0's words.
pub fn payload(what: impl std::fmt::Display) -> ApiError {
    ApiError::Body(format!("Payload validation error: {what}").into())
}

fn invalid(i: &Invalid) -> String {
    match i {
        Invalid::EmptyName => "Payload validation error: 'name' must not be empty".into(),
        Invalid::Callback(c) => format!("Payload validation error: invalid callback URL '{c}'"),
        Invalid::Origin(o) => format!("Payload validation error: invalid origin '{o}' (scheme://host[:port])"),
        Invalid::GrantType(g) => format!("Payload validation error: unsupported grant type '{g}'"),
        Invalid::IdTokenLifetime => lifetime_message(),
        Invalid::UnknownScope(s) => format!("Payload validation error: unknown Management API scope '{s}'"),
        Invalid::ScopesNeedMachineToMachine => {
            "Only machine-to-machine (non_interactive) clients may hold Management API scopes".into()
        }
        Invalid::LogoutUrl(u) => format!("Payload validation error: invalid logout URL '{u}'"),
        Invalid::AuthMethod(TokenEndpointAuthMethod::None) => "Payload validation error: \
            token_endpoint_auth_method 'none' is for public clients (native, spa); this client has a secret"
            .into(),
        Invalid::AuthMethod(m) => format!(
            "Payload validation error: token_endpoint_auth_method '{}' needs a client secret; \
             public clients (native, spa) use 'none'",
            m.as_str()
        ),
        Invalid::RefreshTokenLeeway => {
            format!("Payload validation error: 'refresh_token.leeway' must be in 0..={REFRESH_TOKEN_LEEWAY_MAX}")
        }
        Invalid::RefreshTokenLifetime => refresh_lifetime_message("token_lifetime"),
        Invalid::RefreshTokenIdleLifetime => refresh_lifetime_message("idle_token_lifetime"),
        Invalid::IdleLifetimeExceedsLifetime => "Payload validation error: 'refresh_token.idle_token_lifetime' \
            must not exceed 'refresh_token.token_lifetime'"
            .into(),
        Invalid::PageTooDeep => "Query validation error: page * per_page must not exceed 1000; \
                                 use checkpoint paging (from and take) to read further"
            .into(),
        Invalid::RotationNeedsExpiration => "Payload validation error: rotating refresh tokens must be expiring \
            ('refresh_token.expiration_type': 'expiring')"
            .into(),
        Invalid::SigningAlgNotConfigured(a) => format!(
            "Payload validation error: 'jwt_configuration.alg' {} has no signing key on this service",
            a.as_str()
        ),
    }
}

fn refresh_lifetime_message(field: &str) -> String {
    format!("Payload validation error: 'refresh_token.{field}' must be in {REFRESH_TOKEN_LIFETIME_RANGE:?}")
}

/// What a bad `jwt_configuration.lifetime_in_seconds` is told, whether the wire or the domain
/// refuses it.
pub fn lifetime_message() -> String {
    format!("Payload validation error: 'lifetime_in_seconds' must be in {ID_TOKEN_LIFETIME_RANGE:?}")
}

/// Status, message and `errorCode`.
fn describe(e: &ApiError) -> (u16, Cow<'_, str>, Option<&'static str>) {
    match e {
        ApiError::Mgmt(m) => match m {
            MgmtError::InsufficientScope(expected) => (
                403,
                format!("Insufficient scope, expected any of: {}", expected.join(",")).into(),
                Some("insufficient_scope"),
            ),
            MgmtError::NotFound(Entity::User) => (404, "The user does not exist.".into(), Some("inexistent_user")),
            MgmtError::NotFound(Entity::Client) => (404, "The client does not exist".into(), Some("inexistent_client")),
            MgmtError::NotFound(Entity::DeviceCredential) => {
                (404, "The device credential does not exist".into(), Some("inexistent_device_credential"))
            }
            MgmtError::Conflict(c) => match c {
                Conflict::UserExists => (409, "The user already exists.".into(), Some("auth0_idp_error")),
                Conflict::EmailTaken => (409, "The specified new email already exists".into(), Some("email_conflict")),
                Conflict::ConcurrentUpdate => {
                    (409, "The user was changed concurrently; try again.".into(), Some("concurrent_update"))
                }
                Conflict::ClientIdTaken => {
                    (409, "A client with this id already exists".into(), Some("client_conflict"))
                }
            },
            MgmtError::Invalid(i @ Invalid::PageTooDeep) => (400, invalid(i).into(), INVALID_QUERY),
            MgmtError::Invalid(i) => (400, invalid(i).into(), INVALID_BODY),
            MgmtError::PasswordPolicy(p) => (400, format!("PasswordStrengthError: {p}").into(), INVALID_BODY),
            MgmtError::Hashing(_) => (500, "Internal error.".into(), None),
            MgmtError::Store(s) => match failure::store_status(s) {
                503 => (
                    503,
                    "The service is temporarily unavailable, try again shortly.".into(),
                    Some("temporarily_unavailable"),
                ),
                status => (status, "Internal error.".into(), None),
            },
        },
        ApiError::Unauthorized(u) => {
            let message = match u {
                Unauthorized::Missing => "Missing authentication",
                Unauthorized::Scheme => "Bad HTTP authentication header format",
                Unauthorized::Expired => "Expired token",
                Unauthorized::Signature => "Invalid signature received for JSON Web Token validation",
                Unauthorized::Invalid => "Invalid token",
                Unauthorized::UnknownClient => "Client is not global.",
            };
            (401, message.into(), (*u == Unauthorized::Scheme).then_some("Bearer"))
        }
        ApiError::Input(i @ InputError::TooLarge(_)) => (413, i.to_string().into(), None),
        ApiError::Input(i @ InputError::ContentType) => (415, i.to_string().into(), None),
        ApiError::Input(i) => (400, format!("Invalid request query string: {i}").into(), INVALID_QUERY),
        ApiError::Uri(m) | ApiError::Body(m) => (400, m.as_ref().into(), INVALID_BODY),
        ApiError::Query(m) => (400, m.as_ref().into(), INVALID_QUERY),
    }
}

/// The HTTP reason phrase, as Auth0 puts it in `error`.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// The envelope of `e`, as Auth0 writes it.
pub fn envelope(e: &ApiError) -> (u16, Value) {
    let (status, message, code) = describe(e);
    let mut m = Map::new();
    m.insert("statusCode".into(), status.into());
    m.insert("error".into(), reason(status).into());
    m.insert("message".into(), message.into_owned().into());
    if let Some(code) = code {
        m.insert("errorCode".into(), code.into());
    }
    (status, Value::Object(m))
}

/// The answer to `e`.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let (status, body) = envelope(e);
    if status >= 500 {
        failure::log("api_v2", status, e);
    }
    json(status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes() {
        let scope = ApiError::Mgmt(MgmtError::InsufficientScope(rt_domain::management::device_credentials::READ));
        assert_eq!(
            envelope(&scope),
            (
                403,
                json!({"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:device_credentials","errorCode":"insufficient_scope"})
            )
        );
        assert_eq!(envelope(&ApiError::Unauthorized(Unauthorized::Missing)).1.get("errorCode"), None);
        assert_eq!(envelope(&ApiError::Unauthorized(Unauthorized::Scheme)).1["errorCode"], "Bearer");
        let gone = ApiError::from(StoreError::unavailable("the table"));
        let (status, body) = envelope(&gone);
        assert_eq!((status, &body["errorCode"]), (503, &json!("temporarily_unavailable")));
        assert!(!body.to_string().contains("the table"), "no cause in the answer");
        let r = error_response(&gone);
        assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        let (status, body) = envelope(&ApiError::Input(InputError::TooLarge(crate::api_v2::MAX_BODY)));
        assert_eq!(
            (status, &body["message"]),
            (413, &serde_json::json!("Request body too large (limit 65536 bytes)."))
        );
        assert_eq!(envelope(&ApiError::Input(InputError::Encoding)).1["errorCode"], "invalid_query_string");
        let m2m = ApiError::Mgmt(Invalid::ScopesNeedMachineToMachine.into());
        assert_eq!(
            envelope(&m2m).1["message"],
            "Only machine-to-machine (non_interactive) clients may hold Management API scopes"
        );
        let rotation = envelope(&ApiError::Mgmt(Invalid::RotationNeedsExpiration.into()));
        assert_eq!((rotation.0, &rotation.1["errorCode"]), (400, &json!("invalid_body")));
        assert_eq!(
            envelope(&ApiError::Mgmt(Invalid::RefreshTokenLifetime.into())).1["message"],
            "Payload validation error: 'refresh_token.token_lifetime' must be in 1..=31557600"
        );
    }
}
