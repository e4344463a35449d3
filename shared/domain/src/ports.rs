//! Ports: what the use cases need from the outside world. The DynamoDB adapter (`rt-store`)
//! implements the storage traits; `rt-jwt` implements [`TokenSigner`].
//!
//! Storage methods are named after access patterns; each documents its requests and
//! consistency.

use std::future::Future;

use crate::claims::{AccessTokenClaims, IdTokenClaims};
use crate::client::Client;
use crate::clock::Timestamp;
use crate::credential::DeviceCredential;
use crate::ids::{ClientId, Email, UserId};
use crate::ratelimit::RatePolicy;
use crate::scope::Scope;
use crate::token::RefreshToken;
use crate::user::User;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable, throttling or timing out: answer 503 with `Retry-After`.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored item does not have the shape we write: a bug or manual tampering.
    #[error("malformed item: {0}")]
    Corrupt(String),
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A strongly consistent read.
    Fresh,
    /// May come from a short-lived per-process cache (configuration-like data only).
    Cached,
}

pub trait ClientStore: Send + Sync {
    /// One `GetItem` (or none, from the cache, with [`Freshness::Cached`]).
    fn get_client(
        &self,
        id: &ClientId,
        freshness: Freshness,
    ) -> impl Future<Output = Result<Option<Client>, StoreError>> + Send;

    /// One conditional `PutItem`; `false` if the id is taken.
    fn create_client(&self, client: &Client) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateUser {
    Created,
    EmailTaken,
}

pub trait UserStore: Send + Sync {
    /// One `TransactWriteItems`: the user and its e-mail uniqueness item, both conditional.
    fn create_user(&self, user: &User) -> impl Future<Output = Result<CreateUser, StoreError>> + Send;

    /// One strongly consistent `GetItem`.
    fn get_user(&self, id: &UserId) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Two strongly consistent `GetItem`s: the e-mail item, then the user.
    fn get_user_by_email(&self, email: &Email) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueOutcome {
    Issued,
    /// The user was deleted, blocked or changed its password since it was read.
    UserChanged,
    /// The client was deleted since it was read.
    ClientGone,
}

/// One refresh-token exchange: validate, count the rate limit, record the use.
#[derive(Debug)]
pub struct Exchange<'a> {
    pub token: &'a RefreshToken,
    /// The client presenting the token; it must be the one the token was issued to.
    pub client_id: &'a ClientId,
    /// The rate-limit key of the source address ([`crate::ratelimit::address_key`]).
    pub address: &'a str,
    /// The source address as seen, recorded as the last IP.
    pub source_ip: &'a str,
    pub now: Timestamp,
    pub policy: RatePolicy,
    /// Most distinct addresses one token may be used from in one window.
    pub max_addresses: u32,
    /// Claim scopes (`profile`, `email`) the caller would like, each with a guess of whether
    /// the grant includes it (a right guess saves a round trip).
    pub claim_scopes: &'a [(&'static str, bool)],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeOutcome {
    /// Counted and recorded. `used` is the number of requests from this address in the
    /// current window, this one included. `granted_claims` is the part of `claim_scopes` the
    /// grant includes.
    Granted {
        used: u32,
        granted_claims: Scope,
    },
    /// Over the limit for this (token, address); nothing was written.
    RateLimited {
        used: u32,
    },
    /// The token was used from too many addresses in this window.
    TooManyAddresses,
    Rejected(Rejection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No such token, a wrong secret, or revoked.
    Unknown,
    /// Issued to another client.
    WrongClient,
    /// The user was deleted, blocked, or revoked all its tokens (password change).
    UserGone,
    /// The client was deleted.
    ClientGone,
}

pub trait CredentialStore: Send + Sync {
    /// One `TransactWriteItems`: put the credential (new id) and check that the user and its
    /// revision, and the client, are unchanged.
    fn issue_credential(
        &self,
        cred: &DeviceCredential,
    ) -> impl Future<Output = Result<IssueOutcome, StoreError>> + Send;

    /// One `TransactWriteItems` on the common path: a conditional update of the credential
    /// (secret hash, client, user revision, rate-limit counter, last use) together with
    /// condition checks on the user and client items. Strongly consistent; at most once.
    fn exchange(&self, ex: &Exchange<'_>) -> impl Future<Output = Result<ExchangeOutcome, StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Requests in the current window, this one included when `allowed`.
    pub used: u32,
    pub allowed: bool,
}

pub trait CounterStore: Send + Sync {
    /// Counts one request against a fixed-window counter item (`key`), refusing it if the
    /// window already holds `policy.limit`. One conditional `UpdateItem` on the common path.
    fn count(
        &self,
        key: &str,
        policy: RatePolicy,
        now: Timestamp,
    ) -> impl Future<Output = Result<Count, StoreError>> + Send;
}

/// Everything the use cases need from storage.
pub trait Store: ClientStore + UserStore + CredentialStore + CounterStore {}
impl<T: ClientStore + UserStore + CredentialStore + CounterStore> Store for T {}

#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

pub trait TokenSigner: Send + Sync {
    fn sign_id_token(&self, claims: &IdTokenClaims) -> Result<String, SignError>;
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, SignError>;
}
