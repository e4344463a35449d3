//! The Management API's use cases: who may call them (scopes), what they refuse, and the
//! operations on device credentials, users and clients. Typed commands in, typed results and
//! typed errors out; the Auth0 `/api/v2` wire (JSON bodies, views, paging parameters, field
//! selection, statuses and the error envelope) is `rt_http::api_v2`.

pub mod clients;
pub mod device_credentials;
pub mod logs;
pub mod users;

use std::fmt;

use crate::client::{SigningAlg, TokenEndpointAuthMethod};
use crate::ids::ClientId;
use crate::password::PasswordError;
use crate::ports::{PageRequest, StoreError};
use crate::scope::Scope;

/// Every Management API scope this service knows.
pub const SCOPES: &[&str] = &[
    "read:device_credentials",
    "delete:device_credentials",
    "read:logs",
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "read:clients",
    "create:clients",
    "update:clients",
    "delete:clients",
    "create:client_grants",
    "update:client_grants",
];

/// How long a bulk revocation may spend removing records before answering; the tokens are
/// already unusable, and a repeated request finishes the cleanup.
pub const PURGE_BUDGET: std::time::Duration = std::time::Duration::from_secs(6);

/// The caller of the Management API, from a verified access token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub client_id: ClientId,
    pub scopes: Scope,
}

impl Principal {
    /// Passes if the token has any of `scopes`.
    pub fn require(&self, scopes: &'static [&'static str]) -> Result<(), MgmtError> {
        if scopes.iter().any(|s| self.scopes.contains(s)) { Ok(()) } else { Err(MgmtError::InsufficientScope(scopes)) }
    }

    /// Passes if the token itself holds every scope in `granted`: a caller hands out only
    /// what it has, so no chain of grants ends with more than its start.
    pub fn may_grant<'a>(&self, granted: impl IntoIterator<Item = &'a String>) -> Result<(), MgmtError> {
        for g in granted {
            if !self.scopes.contains(g) {
                // Known scopes only reach here (`apply` refuses the rest); name the missing one.
                let missing = SCOPES.iter().position(|s| s == g).and_then(|i| SCOPES.get(i..=i)).unwrap_or(SCOPES);
                return Err(MgmtError::InsufficientScope(missing));
            }
        }
        Ok(())
    }
}

/// Which page of a listing, and whether to count every match as well (one more query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: PageRequest,
    pub with_total: bool,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub request: PageRequest,
    /// Every match, when [`Paging::with_total`] asked for it.
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// A listing that matches nothing.
    pub fn empty(paging: Paging) -> Self {
        Self { items: vec![], request: paging.page, total: paging.with_total.then_some(0) }
    }
}

/// What a use case was asked to find or change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Client,
    DeviceCredential,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "user",
            Self::Client => "client",
            Self::DeviceCredential => "device credential",
        })
    }
}

/// Why a change could not be made as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("a user with this e-mail address already exists")]
    UserExists,
    #[error("another user has the new e-mail address")]
    EmailTaken,
    #[error("the user kept changing while it was updated")]
    ConcurrentUpdate,
    #[error("the new client's id is taken")]
    ClientIdTaken,
}

/// A client setting that breaks a rule of the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("a client's name must not be empty")]
    EmptyName,
    #[error("'{0}' is not an absolute callback URL without a fragment")]
    Callback(String),
    #[error("'{0}' is not an origin (scheme://host[:port])")]
    Origin(String),
    #[error("grant type '{0}' is not supported")]
    GrantType(String),
    #[error("the id_token lifetime is out of range")]
    IdTokenLifetime,
    #[error("'{0}' is not a Management API scope")]
    UnknownScope(String),
    #[error("only machine-to-machine clients may hold Management API scopes")]
    ScopesNeedMachineToMachine,
    #[error("'{0}' is not an absolute logout URL without a fragment")]
    LogoutUrl(String),
    /// `token_endpoint_auth_method` disagrees with the secret: `none` for a client with a
    /// secret, or a secret method for a client without one.
    #[error("token endpoint auth method '{}' does not fit a client {} a secret", .0.as_str(), if .0.uses_secret() { "without" } else { "with" })]
    AuthMethod(TokenEndpointAuthMethod),
    #[error("the refresh token leeway is out of range")]
    RefreshTokenLeeway,
    #[error("the refresh token lifetime is out of range")]
    RefreshTokenLifetime,
    #[error("the refresh token idle lifetime is out of range")]
    RefreshTokenIdleLifetime,
    #[error("the refresh token idle lifetime exceeds its lifetime")]
    IdleLifetimeExceedsLifetime,
    #[error("rotating refresh tokens must be expiring")]
    RotationNeedsExpiration,
    /// A `jwt_configuration.alg` the service has no signing key for (RS256 always has one).
    #[error("'{}' is not a configured signing algorithm", .0.as_str())]
    SigningAlgNotConfigured(SigningAlg),
    /// An offset page deeper than [`logs::MAX_PAGE_DEPTH`]: checkpoint paging goes further.
    #[error("pages reach at most 1000 entries deep; use from and take")]
    PageTooDeep,
}

/// Why a Management API use case refused or failed. No statuses: `rt_http::api_v2` maps each
/// to Auth0's envelope.
#[derive(Debug, thiserror::Error)]
pub enum MgmtError {
    #[error("insufficient scope: one of {} is required", .0.join(", "))]
    InsufficientScope(&'static [&'static str]),
    #[error("no such {0}")]
    NotFound(Entity),
    #[error(transparent)]
    Conflict(Conflict),
    #[error(transparent)]
    Invalid(Invalid),
    #[error("the password does not meet the policy")]
    PasswordPolicy(#[source] PasswordError),
    #[error("the password could not be hashed")]
    Hashing(#[source] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Conflict> for MgmtError {
    fn from(c: Conflict) -> Self {
        Self::Conflict(c)
    }
}

impl From<Invalid> for MgmtError {
    fn from(i: Invalid) -> Self {
        Self::Invalid(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_required() {
        let who = Principal { client_id: ClientId::generate(), scopes: Scope::parse("read:users").expect("scope") };
        assert!(who.require(users::READ).is_ok());
        assert!(matches!(who.require(users::DELETE), Err(MgmtError::InsufficientScope(s)) if s == users::DELETE));
    }

    #[test]
    fn an_empty_page_counts_zero_only_when_asked() {
        let page = PageRequest { page: 2, per_page: 10 };
        assert_eq!(Page::<u8>::empty(Paging { page, with_total: true }).total, Some(0));
        assert_eq!(Page::<u8>::empty(Paging { page, with_total: false }).total, None);
    }
}
