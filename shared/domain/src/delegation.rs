//! Use case: `POST /delegation` — trade a refresh token for a fresh id_token (legacy Auth0).

use crate::claims::IdTokenClaims;
use crate::client::GRANT_JWT_BEARER;
use crate::clock::Timestamp;
use crate::exchange::{self, Hints, Outcome, Presented, Rejection};
use crate::ids::ClientId;
use crate::params::Params;
use crate::ports::{Freshness, Store, TokenSigner};
use crate::ratelimit::{RatePolicy, RateStatus, address_key};
use crate::scope::{EMAIL, OPENID, PROFILE, Scope};
use crate::token::RefreshToken;
use std::net::IpAddr;

/// The exact text SDKs match (spa-js falls back on the substring "invalid refresh token").
pub const INVALID_REFRESH_TOKEN: &str = "Unknown or invalid refresh token.";

#[derive(Debug)]
pub struct Settings {
    pub issuer: String,
    pub policy: RatePolicy,
    pub max_addresses: u32,
    /// This process's last known rate-limit counters (saves a round trip, nothing more).
    pub hints: Hints,
}

/// Which claims the new id_token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegationScope {
    /// `openid` (the default): iss, sub, aud, iat, exp.
    OpenId,
    /// `openid profile email` or a subset: those claims, if the grant includes them.
    Claims { profile: bool, email: bool },
    /// `passthrough`: the claims of the original grant.
    Passthrough,
}

impl DelegationScope {
    pub fn parse(s: Option<&str>) -> Result<Self, DelegationError> {
        let Some(s) = s else { return Ok(Self::OpenId) };
        if s == "passthrough" {
            return Ok(Self::Passthrough);
        }
        let scope = Scope::parse(s).map_err(|_| DelegationError::InvalidScope)?;
        let allowed = Scope::from_iter([OPENID, PROFILE, EMAIL]);
        if !scope.contains(OPENID) || !scope.is_subset(&allowed) {
            return Err(DelegationError::InvalidScope);
        }
        let (profile, email) = (scope.contains(PROFILE), scope.contains(EMAIL));
        Ok(if profile || email { Self::Claims { profile, email } } else { Self::OpenId })
    }

    fn claim_scopes(&self) -> Vec<(&'static str, bool)> {
        match self {
            Self::OpenId => vec![],
            Self::Claims { profile, email } => {
                let mut v = vec![];
                if *profile {
                    v.push((PROFILE, true));
                }
                if *email {
                    v.push((EMAIL, true));
                }
                v
            }
            // Most grants are `openid offline_access`: guess "not granted" to save a round trip.
            Self::Passthrough => vec![(PROFILE, false), (EMAIL, false)],
        }
    }
}

#[derive(Debug)]
pub struct DelegationRequest {
    pub client_id: ClientId,
    pub token: RefreshToken,
    pub scope: DelegationScope,
}

#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Unsupported grant type: only urn:ietf:params:oauth:grant-type:jwt-bearer is accepted here.")]
    UnsupportedGrantType,
    #[error("Unknown client.")]
    InvalidClient,
    #[error("Grant type 'urn:ietf:params:oauth:grant-type:jwt-bearer' not allowed for the client.")]
    UnauthorizedClient,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("scope must be 'openid', 'openid profile email' or 'passthrough'.")]
    InvalidScope,
    #[error("Too many requests with this refresh token from this address.")]
    RateLimited(RateStatus),
    #[error("Temporarily unavailable, try again later.")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl DelegationError {
    /// The RFC 6749 error code on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidScope => "invalid_scope",
            Self::RateLimited(_) => "too_many_requests",
            Self::Unavailable => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }
}

impl From<crate::ports::StoreError> for DelegationError {
    fn from(e: crate::ports::StoreError) -> Self {
        match e {
            crate::ports::StoreError::Unavailable { .. } => Self::Unavailable,
            crate::ports::StoreError::Corrupt(m) => Self::Internal(m),
        }
    }
}

/// Reads the request parameters as auth0.js, node-auth0 and the seed send them.
pub fn parse_request(p: &Params) -> Result<DelegationRequest, DelegationError> {
    let grant = p
        .get("grant_type")
        .ok_or_else(|| DelegationError::InvalidRequest("Missing required parameter: grant_type".into()))?;
    if grant != GRANT_JWT_BEARER {
        return Err(DelegationError::UnsupportedGrantType);
    }
    let client_id = p
        .get("client_id")
        .ok_or_else(|| DelegationError::InvalidRequest("Missing required parameter: client_id".into()))?;
    let client_id = ClientId::parse(client_id).map_err(|_| DelegationError::InvalidClient)?;
    if let Some(target) = p.get("target")
        && target != client_id.as_str()
    {
        return Err(DelegationError::InvalidRequest(
            "target must be the client_id: delegation to another application is not enabled".into(),
        ));
    }
    if let Some(api) = p.get("api_type")
        && api != "app"
        && api != "auth0"
    {
        return Err(DelegationError::InvalidRequest("api_type must be 'app' or 'auth0'".into()));
    }
    let scope = DelegationScope::parse(p.get("scope"))?;
    let token = match (p.get("refresh_token"), p.get("id_token")) {
        (Some(rt), None) => {
            RefreshToken::parse(rt).map_err(|_| DelegationError::InvalidGrant(INVALID_REFRESH_TOKEN))?
        }
        (None, Some(_)) => {
            return Err(DelegationError::InvalidRequest(
                "Delegation with an id_token is not supported; send a refresh_token".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(DelegationError::InvalidRequest("Send either refresh_token or id_token, not both".into()));
        }
        (None, None) => {
            return Err(DelegationError::InvalidRequest("Missing required parameter: refresh_token".into()));
        }
    };
    Ok(DelegationRequest { client_id, token, scope })
}

#[derive(Debug)]
pub struct Delegated {
    pub id_token: String,
    /// Exactly `exp - iat` of `id_token`.
    pub expires_in: i64,
    pub rate: RateStatus,
}

/// Validates the token, counts the rate limit and records the use (one DynamoDB request on
/// the common path), then mints the id_token.
pub async fn delegate<S: Store, T: TokenSigner>(
    store: &S,
    signer: &T,
    settings: &Settings,
    req: &DelegationRequest,
    ip: IpAddr,
    now: Timestamp,
) -> Result<Delegated, DelegationError> {
    let address = address_key(ip);
    let source_ip = ip.to_string();
    // The client's existence and settings come from the per-process cache (at most
    // CLIENT_CACHE_TTL old): the client item is shared by every user of the application, so
    // the exchange does not touch it.
    let client = store.get_client(&req.client_id, Freshness::Cached).await?.ok_or(DelegationError::InvalidClient)?;
    if !client.allows_grant(GRANT_JWT_BEARER) {
        return Err(DelegationError::UnauthorizedClient);
    }
    let claims = req.scope.claim_scopes();
    let presented = Presented {
        token: &req.token,
        client_id: &req.client_id,
        address: &address,
        source_ip: &source_ip,
        now,
        policy: settings.policy,
        max_addresses: settings.max_addresses,
        claims: &claims,
    };
    let (used, granted) = match exchange::run(store, &settings.hints, &presented).await? {
        Outcome::Granted { used, granted_claims } => (used, granted_claims),
        Outcome::RateLimited { used } => {
            return Err(DelegationError::RateLimited(settings.policy.status(now, used, true)));
        }
        Outcome::TooManyAddresses => {
            return Err(DelegationError::RateLimited(settings.policy.status(now, settings.policy.limit, true)));
        }
        Outcome::Rejected(Rejection::WrongClient) => {
            return Err(DelegationError::InvalidGrant("The refresh token was not issued to this client."));
        }
        Outcome::Rejected(Rejection::Unknown | Rejection::UserGone) => {
            return Err(DelegationError::InvalidGrant(INVALID_REFRESH_TOKEN));
        }
    };
    let iat = now.secs();
    let exp = iat + i64::from(client.id_token_lifetime_secs);
    let mut claims =
        IdTokenClaims::new(settings.issuer.clone(), req.token.user().to_string(), req.client_id.to_string(), iat, exp);
    if !granted.is_empty() {
        let user =
            store.get_user(req.token.user()).await?.ok_or(DelegationError::InvalidGrant(INVALID_REFRESH_TOKEN))?;
        crate::authorize::add_profile_claims(&mut claims, &user, &granted);
    }
    let id_token = signer.sign_id_token(&claims).map_err(|e| DelegationError::Internal(e.to_string()))?;
    Ok(Delegated { id_token, expires_in: exp - iat, rate: settings.policy.status(now, used, false) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied()).expect("unique")
    }

    #[test]
    fn scope_forms() {
        assert_eq!(DelegationScope::parse(None).ok(), Some(DelegationScope::OpenId));
        assert_eq!(DelegationScope::parse(Some("openid")).ok(), Some(DelegationScope::OpenId));
        assert_eq!(
            DelegationScope::parse(Some("openid profile email")).ok(),
            Some(DelegationScope::Claims { profile: true, email: true })
        );
        assert_eq!(DelegationScope::parse(Some("passthrough")).ok(), Some(DelegationScope::Passthrough));
        assert!(DelegationScope::parse(Some("profile")).is_err());
        assert!(DelegationScope::parse(Some("openid admin")).is_err());
    }

    #[test]
    fn request_errors_name_the_problem() {
        let e = parse_request(&params(&[])).expect_err("missing");
        assert_eq!(e.code(), "invalid_request");
        let e = parse_request(&params(&[("grant_type", "refresh_token")])).expect_err("bad grant");
        assert_eq!(e.code(), "unsupported_grant_type");
        let e = parse_request(&params(&[("grant_type", GRANT_JWT_BEARER), ("client_id", "abc")])).expect_err("no rt");
        assert_eq!(e.to_string(), "Missing required parameter: refresh_token");
        let e = parse_request(&params(&[
            ("grant_type", GRANT_JWT_BEARER),
            ("client_id", "abc"),
            ("refresh_token", "nope"),
        ]))
        .expect_err("bad rt");
        assert_eq!(e.to_string(), INVALID_REFRESH_TOKEN);
        let e = parse_request(&params(&[
            ("grant_type", GRANT_JWT_BEARER),
            ("client_id", "abc"),
            ("target", "other"),
            ("refresh_token", "nope"),
        ]))
        .expect_err("target");
        assert_eq!(e.code(), "invalid_request");
    }
}
