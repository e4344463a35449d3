//! `POST /delegation` (legacy Auth0): a refresh token for a fresh id_token.

use crate::params::Params;
use lambda_http::{Body, Request, Response};
use rt_domain::client::GRANT_JWT_BEARER;
use rt_domain::delegation::{self as uc, DelegationError, DelegationRequest, DelegationScope, INVALID_REFRESH_TOKEN};
use rt_domain::ids::ClientId;
use rt_domain::token::RefreshToken;
use serde::Serialize;

use super::BoxFuture;
use crate::app::App;
use crate::audit;
use crate::oauth::{OAuthError, error_response};
use crate::request;
use crate::response::{json, with_client_cors, with_rate};
use rt_domain::Timestamp;
use rt_domain::audit::{Actor, AuditEvent, EventType, Grant, Reason, Revocation};

#[derive(Serialize)]
struct Success<'a> {
    token_type: &'static str,
    expires_in: i64,
    id_token: &'a str,
}

pub fn handle(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move { super::post_with_preflight(&req, post(app, &req)).await })
}

/// Reads the request parameters as auth0.js, node-auth0 and the seed send them. A malformed
/// refresh token is refused here, before any database request.
pub fn parse_request(p: &Params) -> Result<DelegationRequest, OAuthError> {
    let missing = |name: &str| OAuthError::InvalidRequest(format!("Missing required parameter: {name}").into());
    let grant = p.get("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant != GRANT_JWT_BEARER {
        return Err(OAuthError::UnsupportedGrantType(
            "Unsupported grant type: only urn:ietf:params:oauth:grant-type:jwt-bearer is accepted here.".into(),
        ));
    }
    let client_id = p.get("client_id").ok_or_else(|| missing("client_id"))?;
    let client_id = ClientId::parse(client_id).map_err(|_| DelegationError::InvalidClient)?;
    if let Some(target) = p.get("target")
        && target != client_id.as_str()
    {
        return Err(OAuthError::InvalidRequest(
            "target must be the client_id: delegation to another application is not enabled".into(),
        ));
    }
    if let Some(api) = p.get("api_type")
        && api != "app"
        && api != "auth0"
    {
        return Err(OAuthError::InvalidRequest("api_type must be 'app' or 'auth0'".into()));
    }
    let scope = DelegationScope::parse(p.get("scope")).map_err(|e| OAuthError::InvalidScope(e.to_string().into()))?;
    let token = match (p.get("refresh_token"), p.get("id_token")) {
        (Some(rt), None) => {
            RefreshToken::parse(rt).map_err(|_| DelegationError::InvalidGrant(INVALID_REFRESH_TOKEN))?
        }
        (None, Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "Delegation with an id_token is not supported; send a refresh_token".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest("Send either refresh_token or id_token, not both".into()));
        }
        (None, None) => return Err(missing("refresh_token")),
    };
    Ok(DelegationRequest { client_id, token, scope })
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let parsed = match request::body_params(req).map_err(OAuthError::from).and_then(|p| parse_request(&p)) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let now = app.clock.now();
    let ip = request::source_ip(req);
    let result = uc::delegate(&app.store, &app.keys, &app.delegation, &parsed, ip, now).await;
    let kind = match &result {
        Ok(_) => Some(Grant::Delegation.success()),
        Err(e) => Grant::of_delegation_error(e),
    };
    if let Some(kind) = kind {
        let e = exchange_event(kind, req, &parsed.token, now);
        let e = audit::with_client(&app.store, e, Some(parsed.client_id.as_str())).await;
        audit::record(&app.store, &e).await;
    }
    let response = match result {
        Ok(d) => {
            // The audit event records every exchange; this line is for local debugging only and
            // costs nothing (a cached callsite check) at the default level.
            tracing::debug!(credential = %parsed.token.id(), remaining = d.rate.remaining, "delegation");
            with_rate(
                json(200, &Success { token_type: "Bearer", expires_in: d.expires_in, id_token: &d.id_token }),
                &d.rate,
            )
        }
        Err(e) => {
            let e = OAuthError::from(e);
            tracing::info!(credential = %parsed.token.id(), error = e.status_and_code().1, "delegation refused");
            error_response(&e)
        }
    };
    with_client_cors(&app.store, req, Some(parsed.client_id.as_str()), response).await
}

/// The audit event of an exchange of `token` (`/delegation`, the refresh grant): the
/// credential's id always; the user only where the exchange proved the token genuine (granted,
/// rate limited, reused) — an unknown token's user id is only what it claims.
pub(crate) fn exchange_event(kind: EventType, req: &Request, token: &RefreshToken, now: Timestamp) -> AuditEvent {
    let e = if kind == EventType::RefreshTokenReuse {
        AuditEvent::revoked(Revocation { reason: Reason::Reuse, by: Actor::Service }, now, audit::source(req))
    } else {
        AuditEvent::new(kind, now, audit::source(req))
    };
    let e = e.credential(Some(token.id()));
    let proven = !kind.is_failure() || matches!(kind, EventType::RateLimited | EventType::RefreshTokenReuse);
    if proven { e.user(token.user(), None) } else { e }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied()).expect("unique")
    }

    fn code(p: &[(&str, &str)]) -> &'static str {
        parse_request(&params(p)).expect_err("refused").status_and_code().1
    }

    #[test]
    fn request_errors_name_the_problem() {
        assert_eq!(code(&[]), "invalid_request");
        assert_eq!(code(&[("grant_type", "refresh_token")]), "unsupported_grant_type");
        let e = parse_request(&params(&[("grant_type", GRANT_JWT_BEARER), ("client_id", "abc")])).expect_err("no rt");
        assert_eq!(e.to_string(), "Missing required parameter: refresh_token");
        let e = parse_request(&params(&[
            ("grant_type", GRANT_JWT_BEARER),
            ("client_id", "abc"),
            ("refresh_token", "nope"),
        ]))
        .expect_err("bad rt");
        assert_eq!(e.to_string(), INVALID_REFRESH_TOKEN);
        assert_eq!(e.status_and_code(), (403, "invalid_grant"));
        let target =
            [("grant_type", GRANT_JWT_BEARER), ("client_id", "abc"), ("target", "other"), ("refresh_token", "x")];
        assert_eq!(code(&target), "invalid_request");
        let scope = [("grant_type", GRANT_JWT_BEARER), ("client_id", "abc"), ("scope", "openid admin")];
        assert_eq!(code(&scope), "invalid_scope");
    }
}
