//! Ports: what the use cases need from the outside world. The DynamoDB adapter (`rt-store`)
//! implements the storage traits; `rt-jwt` implements [`TokenSigner`].
//!
//! Storage methods are named after access patterns; each documents its requests and
//! consistency.

use std::future::Future;

use crate::audit::{AuditEvent, Direction, LogDay};
use crate::claims::{AccessTokenClaims, IdTokenClaims};
use crate::client::{Client, SigningAlg};
use crate::code::AuthorizationCode;
use crate::credential::DeviceCredential;
use crate::exchange::{Action, Presented, Written};
use crate::ids::{ClientId, DeviceCredentialId, Email, UserId};
use crate::ratelimit::{Counter, Step};
use crate::token::SecretHash;
use crate::user::User;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable, throttling or timing out: answer 503 with `Retry-After`.
    /// `cause` is the adapter's error, kept for the log line.
    #[error("database unavailable: {what}")]
    Unavailable {
        what: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored item does not have the shape we write: a bug or manual tampering.
    #[error("malformed item: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Unavailable for a reason of our own (no underlying error).
    pub fn unavailable(what: impl Into<String>) -> Self {
        Self::Unavailable { what: what.into(), cause: None }
    }

    /// Unavailable because of `cause`.
    pub fn unavailable_because(what: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable { what: what.into(), cause: Some(Box::new(cause)) }
    }
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

    /// One `PutItem` conditional on the client still existing; `false` if it is gone.
    fn update_client(&self, client: &Client) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One `DeleteItem` returning the old item. The client's refresh tokens are refused from
    /// then on wherever the client is read ([`Freshness::Cached`]: at once in this process,
    /// within the cache lifetime everywhere else); their records are removed by
    /// [`CredentialStore::purge_client_credentials`].
    fn delete_client(&self, id: &ClientId) -> impl Future<Output = Result<Option<Client>, StoreError>> + Send;

    /// One page of clients by id (`Query` on GSI2 `CLIENTS`, eventually consistent).
    fn list_clients(&self, page: PageRequest) -> impl Future<Output = Result<Vec<Client>, StoreError>> + Send;

    /// Number of clients (`Query` with `Select=COUNT`).
    fn count_clients(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Offset paging as the Management API has it: `page` is 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    pub fn skip(&self) -> u64 {
        u64::from(self.page) * u64::from(self.per_page)
    }
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

    /// Two strongly consistent `GetItem`s: the e-mail item, then the user — two for an unknown
    /// e-mail as well (of a user that never exists), so that both take as long.
    fn get_user_by_email(&self, email: &Email) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Replaces `old` by `new` (same id): one `TransactWriteItems`, conditional on the stored
    /// user still being at `old.rev` and `old.updated_at`; moves the e-mail uniqueness item
    /// when the e-mail changes.
    fn update_user(&self, old: &User, new: &User) -> impl Future<Output = Result<UpdateUser, StoreError>> + Send;

    /// Deletes the user and its e-mail item (one `TransactWriteItems`). Every refresh token
    /// of the user stops working at once; [`CredentialStore::purge_user_credentials`] removes
    /// their records.
    fn delete_user(&self, user: &User) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of users by e-mail, optionally only e-mails starting with `prefix`
    /// (`Query` on GSI1 `USERS`, eventually consistent).
    fn list_users(
        &self,
        prefix: Option<&str>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;

    /// Up to `limit` users by e-mail after the position `after` (from the start when `None`),
    /// optionally only e-mails starting with `prefix`, and the position of the next batch
    /// (`None`: the end). Checkpoint paging: its cost does not grow with the depth.
    /// One `Query` on GSI1 `USERS` from the cursor + one `BatchGetItem`.
    fn walk_users(
        &self,
        prefix: Option<&str>,
        after: Option<&WalkCursor>,
        limit: u32,
    ) -> impl Future<Output = Result<UserBatch, StoreError>> + Send;

    /// Number of users (with that e-mail prefix).
    fn count_users(&self, prefix: Option<&str>) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateUser {
    Updated,
    /// Changed or deleted concurrently: read again.
    Conflict,
    EmailTaken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueOutcome {
    Issued,
    /// The user was deleted, blocked or changed its password since it was read.
    UserChanged,
}

/// Contention one operation has met so far (pauses taken, since when): a store's backoff grows
/// across the rounds of a state machine and stays within one time budget.
#[derive(Debug, Clone, Copy)]
pub struct Contention {
    pub pauses: u32,
    pub since: std::time::Instant,
}

impl Contention {
    pub fn start() -> Self {
        Self { pauses: 0, since: std::time::Instant::now() }
    }
}

/// One write of the exchange state machine ([`crate::exchange`]): `action` on the credential
/// of `req.token` (a plan also records the use by `req`).
#[derive(Debug)]
pub struct ExchangeWrite<'a> {
    pub req: &'a Presented<'a>,
    pub action: &'a Action,
}

pub trait CredentialStore: Send + Sync {
    /// One `TransactWriteItems`: put the credential (new id) and check that the user is still
    /// at its revision and not blocked. Contention is retried within a budget.
    fn issue_credential(
        &self,
        cred: &DeviceCredential,
    ) -> impl Future<Output = Result<IssueOutcome, StoreError>> + Send;

    /// Writes one plan of the exchange: the credential changed as planned if it is in the state
    /// the plan assumes ([`crate::exchange::holds`]) and the user is still current, else
    /// nothing. A refusal comes back with the credential's state. DynamoDB: one
    /// `TransactWriteItems` (a conditional update of the credential and a condition check on
    /// the user item — the caller's own items only). Contention on those items is retried
    /// (the same write, after a pause) within a budget, then `Unavailable`.
    fn write_exchange(
        &self,
        w: &ExchangeWrite<'_>,
        contention: &mut Contention,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;

    /// One strongly consistent `GetItem`.
    fn get_credential(
        &self,
        id: &DeviceCredentialId,
    ) -> impl Future<Output = Result<Option<DeviceCredential>, StoreError>> + Send;

    /// Revokes one refresh token: a strongly consistent `GetItem`, then
    /// [`Self::revoke_read_credential`]. `false` if there was none. The next exchange of it
    /// fails (the exchange requires the record).
    fn revoke_credential(&self, id: &DeviceCredentialId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes a credential the caller has just read (a listing, a lookup): one
    /// `TransactWriteItems` deleting it and counting it off its user's devices. `false` if it
    /// was gone meanwhile.
    fn revoke_read_credential(&self, cred: &DeviceCredential) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of credentials: of a user (GSI1, optionally of one client) or of a client
    /// (the client's GSI2 shards, merged), oldest first per user: keys from the index
    /// (eventually consistent), items by strongly consistent `BatchGetItem`.
    fn list_credentials(
        &self,
        filter: &CredentialFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Vec<DeviceCredential>, StoreError>> + Send;

    /// Number of credentials matching `filter` (`Query` with `Select=COUNT`).
    fn count_credentials(&self, filter: &CredentialFilter) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The credentials matching `filter` a batch at a time, in the order of
    /// [`Self::list_credentials`], for the walks that must look at every one (the sweep of
    /// expired records, a listing that leaves expired credentials out): at most `limit` (1 to
    /// [`WALK_BATCH_MAX`]) after `after` (the `next` of the previous batch; `None`: from the
    /// start); `next` is `None` after the last batch. Revoking credentials already walked does
    /// not disturb the walk. DynamoDB, per batch: one `Query` per index partition (`Limit`
    /// `limit`, from the cursor; eventually consistent: a credential issued meanwhile may be
    /// missed) and one strongly consistent `BatchGetItem`; an item deleted meanwhile is left
    /// out, so a batch may be short without being the last.
    fn walk_credentials(
        &self,
        filter: &CredentialFilter,
        after: Option<&WalkCursor>,
        limit: u32,
    ) -> impl Future<Output = Result<CredentialBatch, StoreError>> + Send;

    /// Removes the records of a user's credentials (all, or those of `only` issued under an
    /// older revision than `below_rev`): `Query` pages and `BatchWriteItem` deletes with
    /// unprocessed items retried, until a query finds none or `budget` runs out. Re-runnable.
    fn purge_user_credentials(
        &self,
        user: &UserId,
        below_rev: Option<u32>,
        budget: std::time::Duration,
    ) -> impl Future<Output = Result<Purge, StoreError>> + Send;

    /// Removes the records of a client's credentials, as [`Self::purge_user_credentials`].
    fn purge_client_credentials(
        &self,
        client: &ClientId,
        budget: std::time::Duration,
    ) -> impl Future<Output = Result<Purge, StoreError>> + Send;
}

/// Which credentials to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialFilter {
    User { user: UserId, client: Option<ClientId> },
    Client(ClientId),
}

/// Most credentials one batch of [`CredentialStore::walk_credentials`] holds (what one
/// `BatchGetItem` reads).
pub const WALK_BATCH_MAX: u32 = 100;

/// Where a walk over credentials resumes: the position, in the walk's order, of the last
/// credential a batch looked at. Opaque: made and read by the store that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkCursor(String);

impl WalkCursor {
    /// A store's own encoding of a position.
    pub fn new(position: String) -> Self {
        Self(position)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One batch of a walk over users: the users, and where the next batch starts (`None`: the
/// end).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserBatch {
    pub items: Vec<User>,
    pub next: Option<WalkCursor>,
}

/// One batch of a walk: the credentials, and where the next batch starts (`None`: the end).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialBatch {
    pub items: Vec<DeviceCredential>,
    pub next: Option<WalkCursor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purge {
    pub deleted: u64,
    /// `false` when the budget ran out first; run again to finish.
    pub complete: bool,
}

pub trait CounterStore: Send + Sync {
    /// One step of the fixed-window counter `key` ([`crate::ratelimit::count`]): written if it
    /// holds for the stored counter (`Ok(None)`), else nothing, answering the stored counter
    /// (`Ok(Some(current))`). One conditional `UpdateItem`.
    fn write_counter(
        &self,
        key: &str,
        step: Step,
    ) -> impl Future<Output = Result<Option<Option<Counter>>, StoreError>> + Send;

    /// The counter `key` as stored. One eventually consistent `GetItem` (0.5 RCU): a check
    /// before the work it guards, which a racing write may pass by a request or two.
    fn read_counter(&self, key: &str) -> impl Future<Output = Result<Option<Counter>, StoreError>> + Send;

    /// Removes the counter `key` (done, too, when there is none). One `DeleteItem`.
    fn reset_counter(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How a redemption of an authorization code ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeem {
    /// The code is marked redeemed and the refresh token (if any) issued, together.
    Redeemed,
    /// Someone redeemed it first (or it is gone): nothing was written.
    AlreadyRedeemed,
    /// The user was deleted, blocked or changed its password since signing in.
    UserChanged,
}

pub trait CodeStore: Send + Sync {
    /// One `PutItem`, conditional on the key being new.
    fn put_code(&self, code: &AuthorizationCode) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One strongly consistent `GetItem` by the code's hash.
    fn get_code(&self, hash: &SecretHash)
    -> impl Future<Output = Result<Option<AuthorizationCode>, StoreError>> + Send;

    /// Redeems `code` at `at`: one `TransactWriteItems` of the code marked redeemed (if it is
    /// not yet) and, with `cred`, the credential put and counted on its user's devices (user
    /// current, not blocked), else a condition check on the user — the caller's own items only.
    fn redeem_code(
        &self,
        code: &AuthorizationCode,
        at: crate::clock::Timestamp,
        cred: Option<&DeviceCredential>,
    ) -> impl Future<Output = Result<Redeem, StoreError>> + Send;

    /// Removes the codes that expired before `now` (redeemed or not): `Query` pages of the
    /// codes' index partitions and `BatchWriteItem` deletes, until none is left or `budget`
    /// runs out. Re-runnable.
    fn purge_expired_codes(
        &self,
        now: crate::clock::Timestamp,
        budget: std::time::Duration,
    ) -> impl Future<Output = Result<Purge, StoreError>> + Send;
}

/// Most events one read of [`AuditLog`] returns.
pub const LOG_BATCH_MAX: u32 = 100;

/// The audit log ([`crate::audit`]): each event is written once, alone, into its user's
/// partition (or, without a user, a partition of its day's shard) and one of the day's
/// shards of the tenant-wide feed. Events are never updated; the sweep removes whole days.
pub trait AuditLog: Send + Sync {
    /// One `PutItem` (conditional on the id being new), after the use case: never in its
    /// transaction. The SDK's retries are the only retry ([`crate::audit::record`] logs a
    /// failure and goes on).
    fn record_event(&self, e: &AuditEvent) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// At most `limit` (1 to [`LOG_BATCH_MAX`]) of a user's events in `direction`: one
    /// strongly consistent `Query` of the user's own partition.
    fn user_events(
        &self,
        user: &UserId,
        direction: &Direction,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, StoreError>> + Send;

    /// Number of a user's events (`Query` with `Select=COUNT`).
    fn count_user_events(&self, user: &UserId) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// At most `limit` (1 to [`LOG_BATCH_MAX`]) events of one UTC day in `direction`, every
    /// user's and none: one `Query` per shard of the day (concurrently, eventually consistent:
    /// an event written a moment ago may be missing), merged by log id, then the items
    /// (strongly consistent `BatchGetItem`).
    fn day_events(
        &self,
        day: LogDay,
        direction: &Direction,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, StoreError>> + Send;

    /// Removes every event of `day`: the day's shards, a `Query` page at a time, and
    /// `BatchWriteItem` deletes of the items, until none is left or `budget` runs out.
    /// Re-runnable.
    fn purge_log_day(
        &self,
        day: LogDay,
        budget: std::time::Duration,
    ) -> impl Future<Output = Result<Purge, StoreError>> + Send;
}

/// Everything the use cases need from storage.
pub trait Store: ClientStore + UserStore + CredentialStore + CounterStore + CodeStore + AuditLog {}
impl<T: ClientStore + UserStore + CredentialStore + CounterStore + CodeStore + AuditLog> Store for T {}

#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// Signs with the current key of the client's algorithm ([`crate::client::SigningAlg`]).
pub trait TokenSigner: Send + Sync {
    fn sign_id_token(&self, alg: SigningAlg, claims: &IdTokenClaims) -> Result<String, SignError>;
    fn sign_access_token(&self, alg: SigningAlg, claims: &AccessTokenClaims) -> Result<String, SignError>;

    /// The algorithm of an access token whose only audience is this service's `/userinfo`
    /// ([`AccessTokenClaims::for_userinfo`]). Such a token is opaque to applications (Auth0's
    /// are not even JWTs) and only `/userinfo` verifies it, so a signer may sign it with a
    /// cheaper algorithm than the client's: an RS256 signature is most of an exchange's CPU
    /// (ARCHITECTURE.md, *Speed and footprint*). By default, the client's algorithm.
    fn userinfo_alg(&self, client_alg: SigningAlg) -> SigningAlg {
        client_alg
    }
}
