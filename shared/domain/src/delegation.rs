//! Use case: `POST /delegation` — trade a refresh token for a fresh id_token (legacy Auth0).

use crate::claims::IdTokenClaims;
use crate::client::GRANT_JWT_BEARER;
use crate::clock::Timestamp;
use crate::exchange::{self, Expiry, Hints, Outcome, Presented, Rejection};
use crate::ids::ClientId;
use crate::ports::{Freshness, SignError, Store, StoreError, TokenSigner};
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
    /// The `scope` of a request (absent: `openid`).
    pub fn parse(s: Option<&str>) -> Result<Self, UnsupportedScope> {
        let Some(s) = s else { return Ok(Self::OpenId) };
        if s == "passthrough" {
            return Ok(Self::Passthrough);
        }
        let scope = Scope::parse(s).map_err(|_| UnsupportedScope)?;
        let allowed = Scope::from_iter([OPENID, PROFILE, EMAIL]);
        if !scope.contains(OPENID) || !scope.is_subset(&allowed) {
            return Err(UnsupportedScope);
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

/// A scope `/delegation` does not issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("scope must be 'openid', 'openid profile email' or 'passthrough'.")]
pub struct UnsupportedScope;

/// Why an exchange was refused or failed. The descriptions of the refusals are what the
/// client reads; `rt_http::oauth` decides the status and the RFC 6749 code.
#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error("Unknown client.")]
    InvalidClient,
    #[error("Grant type 'urn:ietf:params:oauth:grant-type:jwt-bearer' not allowed for the client.")]
    UnauthorizedClient,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("Too many requests with this refresh token from this address.")]
    RateLimited(RateStatus),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot sign the id_token")]
    Sign(#[source] SignError),
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
        // No successor can be handed out here: rotating tokens are for `/oauth/token`.
        rotation: None,
        leeway_secs: 0,
        migrate: false,
        demote: false,
        expiry: Expiry {
            absolute_secs: client.refresh_token.absolute_lifetime(),
            idle_secs: client.refresh_token.idle_lifetime(),
        },
    };
    let (used, granted) = match exchange::run(store, &settings.hints, &presented).await? {
        Outcome::Granted { used, granted_claims, .. } => (used, granted_claims),
        Outcome::RateLimited { used } => {
            return Err(DelegationError::RateLimited(settings.policy.status(now, used, true)));
        }
        Outcome::Rejected(Rejection::WrongClient) => {
            return Err(DelegationError::InvalidGrant("The refresh token was not issued to this client."));
        }
        Outcome::Rejected(Rejection::Unknown | Rejection::UserGone | Rejection::Reused) => {
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
    let id_token = signer.sign_id_token(client.signing_alg, &claims).map_err(DelegationError::Sign)?;
    Ok(Delegated { id_token, expires_in: exp - iat, rate: settings.policy.status(now, used, false) })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
