//! The DynamoDB adapter: the only crate that names `aws-sdk-dynamodb`. It implements the
//! storage ports of `rt-domain` over one table whose keys are all in [`keys`].

pub mod aws_env;
mod codes;
pub mod counter;
mod credentials;
pub mod exchange;
pub mod items;
pub mod keys;
mod logs;
mod query;
pub mod retry;
pub mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client as Ddb;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use rt_domain::client::Client;
use rt_domain::clock::{Clock, SystemClock, Timestamp};
use rt_domain::credential::DeviceCredential;
use rt_domain::ids::{ClientId, Email, UserId};
use rt_domain::ports::{
    ClientStore, CreateUser, Freshness, IssueOutcome, PageRequest, StoreError, UpdateUser, UserBatch, UserStore,
    WalkCursor,
};
use rt_domain::user::User;

use crate::items::{Item, s};
use crate::retry::{Backoff, Pause};

pub use aws_sdk_dynamodb;

/// The SDK's own retries (throttling and transient faults of single requests): three attempts,
/// pauses from 25 ms, so that a request gives up in well under a second instead of the
/// default's seconds.
fn retry_config() -> aws_sdk_dynamodb::config::retry::RetryConfig {
    aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(25))
        .with_max_backoff(Duration::from_millis(400))
}

/// What every store's client is configured with: the retries of [`retry_config`], and no
/// stalled-stream protection (its per-request timers cost CPU on every call; DynamoDB's
/// answers are small and the attempt timeout bounds a stalled one).
fn tuned(builder: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
    builder
        .retry_config(retry_config())
        .stalled_stream_protection(aws_sdk_dynamodb::config::StalledStreamProtectionConfig::disabled())
}

/// How long a client's configuration may be served from the per-process cache. This bounds
/// how long a changed or deleted client takes to reach every warm function (ARCHITECTURE.md).
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(30);
const CLIENT_CACHE_MAX: usize = 1024;

/// The store: one DynamoDB client and one table name, built once per process.
pub struct DynamoStore {
    ddb: Ddb,
    table: String,
    clients: Mutex<HashMap<ClientId, (Timestamp, Client)>>,
    /// What the client cache measures its lifetime with.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// The store a function builds at start, from its environment alone: the region
    /// (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: what Lambda sets) and
    /// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` for another server ([`aws_env`]).
    /// No profile files, instance metadata or STS: a function never needs them, and leaving
    /// them out saves size and start-up time (ARCHITECTURE.md, "Footprint").
    pub fn from_env(table: String) -> Self {
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(12))
            .build();
        let mut conf = tuned(aws_sdk_dynamodb::config::Builder::from(&aws_env::sdk_config())).timeout_config(timeouts);
        conf.set_endpoint_url(aws_env::endpoint_url("DYNAMODB"));
        let conf = conf.build();
        Self::new(Ddb::from_conf(conf), table)
    }

    /// A store over an explicit endpoint with static test credentials (local servers).
    pub fn local(endpoint: &str, table: String) -> Self {
        let conf = tuned(aws_sdk_dynamodb::Config::builder())
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "static"))
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .build(),
            )
            .build();
        Self::new(Ddb::from_conf(conf), table)
    }

    /// Opens the connection to DynamoDB (and loads the credentials and signs once) before the
    /// first request needs it: a function calls this during its init phase, which Lambda runs
    /// at full CPU and outside any caller's latency. The request is a `GetItem` of a key no
    /// item has and no function may read: its answer, `AccessDeniedException` from DynamoDB
    /// (no capacity used) or nothing from a local server, is not used; failures are logged at
    /// debug and the function starts anyway.
    pub async fn warm_up(&self) {
        if let Err(e) = self.read(&keys::warm_up()).send().await {
            tracing::debug!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(e), "warm-up request refused");
        }
    }

    pub fn new(ddb: Ddb, table: String) -> Self {
        Self { ddb, table, clients: Mutex::new(HashMap::new()), clock: Arc::new(SystemClock) }
    }

    /// The clock the client cache ages by (the application's clock; tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn ddb(&self) -> &Ddb {
        &self.ddb
    }

    /// A strongly consistent `GetItem` of `key`, to send.
    pub(crate) fn read(
        &self,
        key: &keys::Key,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.pk.clone()))
            .key(keys::SK, s(key.sk))
            .consistent_read(true)
    }

    async fn get_item(&self, key: &keys::Key) -> Result<Option<Item>, StoreError> {
        Ok(self.read(key).send().await.map_err(unavailable)?.item)
    }

    fn key_map(key: &keys::Key) -> Item {
        HashMap::from([(keys::PK.to_owned(), s(key.pk.clone())), (keys::SK.to_owned(), s(key.sk))])
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(ABSENT)
            .set_expression_attribute_names(Some(attr_names([PK_NAME])))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `delta` more live tokens on `cred`'s device in its user's device map, conditional on the
    /// user existing at the credential's revision (and, when adding, not blocked; when
    /// removing, on the count being positive).
    fn device_count(&self, cred: &DeviceCredential, delta: i8) -> Result<TransactWriteItem, StoreError> {
        self.device_count_of(&cred.user_id, cred.user_rev, cred.device_name.as_str(), delta)
    }

    /// [`Self::device_count`] by the user, revision and device name.
    pub(crate) fn device_count_of(
        &self,
        user: &UserId,
        user_rev: u32,
        device: &str,
        delta: i8,
    ) -> Result<TransactWriteItem, StoreError> {
        let (condition, update) = if delta > 0 {
            (
                format!("{PRESENT} AND #rev = :urev AND #blocked = :no"),
                "SET #dv.#d = if_not_exists(#dv.#d, :zero) + :one",
            )
        } else {
            (format!("{PRESENT} AND #rev = :urev AND #dv.#d > :zero"), "SET #dv.#d = #dv.#d - :one")
        };
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&keys::user(user))))
            .condition_expression(condition)
            .update_expression(update)
            .set_expression_attribute_names(Some(attr_names([
                PK_NAME,
                ("#rev", keys::attr::REV),
                ("#dv", keys::attr::DEVICES),
                ("#d", device),
            ])))
            .set_expression_attribute_values(Some(values([
                (":urev", items::n(user_rev)),
                (":zero", items::n(0)),
                (":one", items::n(1)),
            ])));
        if delta > 0 {
            u = u
                .expression_attribute_names("#blocked", keys::attr::BLOCKED)
                .expression_attribute_values(":no", items::b(false));
        }
        Ok(TransactWriteItem::builder().update(u.build().map_err(build_err)?).build())
    }

    /// The condition that a user item exists, is not blocked and is at revision `rev`.
    fn user_is_current(&self, user: &UserId, rev: u32) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&keys::user(user))))
            .condition_expression(format!("{PRESENT} AND #rev = :urev AND #blocked = :no"))
            .set_expression_attribute_names(Some(attr_names([
                PK_NAME,
                ("#rev", keys::attr::REV),
                ("#blocked", keys::attr::BLOCKED),
            ])))
            .set_expression_attribute_values(Some(values([(":urev", items::n(rev)), (":no", items::b(false))])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// The condition that the item exists / does not exist (with [`PK_NAME`]).
pub(crate) const PRESENT: &str = "attribute_exists(#pk)";
pub(crate) const ABSENT: &str = "attribute_not_exists(#pk)";
pub(crate) const PK_NAME: (&str, &str) = ("#pk", keys::PK);

/// The role of an item in a transaction: cancellation reasons are read by it, not by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Code,
    Credential,
    User,
    Email,
    OldEmail,
}

/// The per-item reasons of a refused transaction, by part.
#[derive(Debug, Default)]
pub(crate) struct Reasons(Vec<(Part, String, Option<Item>)>);

impl Reasons {
    /// Pairs DynamoDB's reasons (one per item, in order) with the transaction's parts.
    fn of(parts: &[Part], raw: Vec<(String, Option<Item>)>) -> Self {
        Self(parts.iter().zip(raw).map(|(p, (code, item))| (*p, code, item)).collect())
    }

    fn code(&self, part: Part) -> Option<&str> {
        self.0.iter().find(|(p, _, _)| *p == part).map(|(_, c, _)| c.as_str())
    }

    /// Whether `part`'s condition was false.
    pub fn failed(&self, part: Part) -> bool {
        self.code(part) == Some("ConditionalCheckFailed")
    }

    /// `part`'s old image, where the transaction asked for it.
    pub fn old(&self, part: Part) -> Option<&Item> {
        self.0.iter().find(|(p, _, _)| *p == part).and_then(|(_, _, item)| item.as_ref())
    }
}

impl std::fmt::Display for Reasons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(p, c, _)| format!("{p:?}: {c}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// Why a transaction attempt was refused.
pub(crate) enum Refusal {
    /// Contention (a conflict with another request in flight, or throttling): try again.
    Contended,
    /// A condition (or another rule) failed.
    Cancelled(Reasons),
}

/// Classifies a failed `TransactWriteItems` of `parts`; anything but a cancellation or
/// contention is [`StoreError::Unavailable`].
pub(crate) fn refusal<R: std::fmt::Debug + Send + Sync + 'static>(
    e: SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
    parts: &[Part],
) -> Result<Refusal, StoreError> {
    match cancellation_codes(&e) {
        Some(codes) if codes.iter().any(|(c, _)| retry::is_contention_reason(c)) => Ok(Refusal::Contended),
        Some(codes) => Ok(Refusal::Cancelled(Reasons::of(parts, codes))),
        None if retry::is_contention_error(&e) => Ok(Refusal::Contended),
        None => Err(unavailable(e)),
    }
}

/// How a transaction ended.
pub(crate) enum Transaction {
    Committed,
    /// Cancelled for a reason other than contention.
    Cancelled(Reasons),
}

impl DynamoStore {
    /// Sends a transaction of named parts, retrying contention (conflicts, throttling) within
    /// the budget.
    pub(crate) async fn transact(
        &self,
        items: &[(Part, TransactWriteItem)],
        what: &str,
    ) -> Result<Transaction, StoreError> {
        let parts: Vec<Part> = items.iter().map(|(p, _)| *p).collect();
        let items: Vec<TransactWriteItem> = items.iter().map(|(_, i)| i.clone()).collect();
        let mut backoff = Backoff::start();
        loop {
            let e = match self.ddb.transact_write_items().set_transact_items(Some(items.clone())).send().await {
                Ok(_) => return Ok(Transaction::Committed),
                Err(e) => e,
            };
            match refusal(e, &parts)? {
                Refusal::Cancelled(reasons) => return Ok(Transaction::Cancelled(reasons)),
                Refusal::Contended if backoff.pause().await => {}
                Refusal::Contended => return Err(backoff.give_up(what)),
            }
        }
    }
}

impl DynamoStore {
    /// [`Self::transact`] of a transaction that counts a token on `user`'s device map: a user
    /// item from before device counts gets its (empty) map first, then the transaction again.
    pub(crate) async fn transact_counting_devices(
        &self,
        items: &[(Part, TransactWriteItem)],
        user: &UserId,
        what: &str,
    ) -> Result<Transaction, StoreError> {
        match self.transact(items, what).await {
            Err(e) if is_missing_map(&e) => {
                self.add_device_map(user).await?;
                self.transact(items, what).await
            }
            other => other,
        }
    }
}

/// Whether a transaction failed because an update names a path inside a map the item lacks
/// (user items written before device counts).
pub(crate) fn is_missing_map(e: &StoreError) -> bool {
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    matches!(e, StoreError::Unavailable { cause: Some(cause), .. }
        if cause
            .downcast_ref::<SdkError<TransactWriteItemsError, HttpResponse>>()
            .is_some_and(|e| e.code() == Some("ValidationException") && e.message().is_some_and(|m| m.contains("document path"))))
}

impl DynamoStore {
    /// Gives a user item its device map if it has none (one conditional `UpdateItem`).
    async fn add_device_map(&self, user: &UserId) -> Result<(), StoreError> {
        let r = retry::single(|| {
            self.ddb
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key_map(&keys::user(user))))
                .condition_expression(PRESENT)
                .update_expression("SET #dv = if_not_exists(#dv, :none)")
                .set_expression_attribute_names(Some(attr_names([PK_NAME, ("#dv", keys::attr::DEVICES)])))
                .expression_attribute_values(":none", AttributeValue::M(HashMap::new()))
                .send()
        })
        .await;
        // No user (`false`): the transaction's condition will say so.
        written(r).map(|_| ())
    }
}

/// The result of a conditional single-item write: `true` written, `false` when its condition
/// was false.
pub(crate) fn written<T, E, R>(r: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

/// Maps an SDK failure to [`StoreError::Unavailable`], keeping the SDK error as its cause.
pub(crate) fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let what = format!("dynamodb: {}", e.code().unwrap_or("no error code"));
    StoreError::unavailable_because(what, e)
}

pub(crate) fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Corrupt(format!("request builder: {e}"))
}

/// Cancellation reason codes of a cancelled transaction, or `None` for other failures.
pub(crate) fn cancellation_codes<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<(String, Option<Item>)>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match e.as_service_error() {
        Some(E::TransactionCanceledException(c)) => Some(
            c.cancellation_reasons()
                .iter()
                .map(|r| (r.code().unwrap_or("None").to_owned(), r.item().cloned()))
                .collect(),
        ),
        _ => None,
    }
}

impl ClientStore for DynamoStore {
    async fn get_client(&self, id: &ClientId, freshness: Freshness) -> Result<Option<Client>, StoreError> {
        if freshness == Freshness::Cached
            && let Ok(cache) = self.clients.lock()
            && let Some((at, c)) = cache.get(id)
            && self.clock.now().millis().saturating_sub(at.millis()) < CLIENT_CACHE_TTL.as_millis() as i64
        {
            return Ok(Some(c.clone()));
        }
        let client = match self.get_item(&keys::client(id)).await? {
            Some(item) => Some(items::client_from_item(&item)?),
            None => None,
        };
        if let (Some(c), Ok(mut cache)) = (&client, self.clients.lock()) {
            if cache.len() >= CLIENT_CACHE_MAX {
                cache.clear();
            }
            cache.insert(id.clone(), (self.clock.now(), c.clone()));
        }
        Ok(client)
    }

    async fn create_client(&self, client: &Client) -> Result<bool, StoreError> {
        self.put_client(client, ABSENT).await
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        self.forget_client(&client.id);
        self.put_client(client, PRESENT).await
    }

    async fn delete_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.forget_client(id);
        let key = keys::client(id);
        let out = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.pk))
            .key(keys::SK, s(key.sk))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        out.attributes.map(|a| items::client_from_item(&a)).transpose()
    }

    async fn list_clients(&self, page: PageRequest) -> Result<Vec<Client>, StoreError> {
        let q = query::IndexQuery::gsi2(vec![keys::ALL_CLIENTS.into()], None);
        self.query_page(&q, page).await?.iter().map(items::client_from_item).collect()
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        self.query_count(&query::IndexQuery::gsi2(vec![keys::ALL_CLIENTS.into()], None)).await
    }
}

impl DynamoStore {
    /// One conditional `PutItem` of a client; `false` when `condition` does not hold.
    async fn put_client(&self, client: &Client, condition: &str) -> Result<bool, StoreError> {
        let r = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::client_to_item(client)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(attr_names([PK_NAME])))
            .send()
            .await;
        written(r)
    }

    fn forget_client(&self, id: &ClientId) {
        if let Ok(mut cache) = self.clients.lock() {
            cache.remove(id);
        }
    }
}

impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<CreateUser, StoreError> {
        let items = [
            (Part::User, self.put_new(items::user_to_item(user))?),
            (Part::Email, self.put_new(items::email_to_item(&user.email, &user.id))?),
        ];
        match self.transact(&items, "create user").await? {
            Transaction::Committed => Ok(CreateUser::Created),
            Transaction::Cancelled(reasons) if reasons.failed(Part::Email) => Ok(CreateUser::EmailTaken),
            Transaction::Cancelled(_) => Err(StoreError::unavailable("user creation cancelled")),
        }
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        match self.get_item(&keys::user(id)).await? {
            Some(item) => Ok(Some(items::user_from_item(&item)?)),
            None => Ok(None),
        }
    }

    async fn get_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let Some(item) = self.get_item(&keys::email(email)).await? else {
            // The second read an existing account costs, of a user that never exists: an
            // unknown e-mail takes as long as a known one (no sign-in timing oracle).
            self.get_user(&UserId::from_bytes([0; 12])).await?;
            return Ok(None);
        };
        let id = items::get_s(&item, keys::attr::USER_ID)?;
        let id = UserId::parse(id).map_err(|_| StoreError::Corrupt(format!("email item for {email}: bad user id")))?;
        let user = self.get_user(&id).await?;
        // A user whose e-mail changed leaves no stale index entry behind, but guard anyway.
        Ok(user.filter(|u| &u.email == email))
    }

    async fn update_user(&self, old: &User, new: &User) -> Result<UpdateUser, StoreError> {
        // Only the attributes that change are written: a revision bump, a block or a sign-out
        // touches no index key, so it writes the user item alone (no index partition shared by
        // all users). The e-mail moves its uniqueness item in the same transaction.
        let update = self.user_update(old, new)?;
        if old.email == new.email {
            return self.update_alone(update).await;
        }
        let old_email = keys::email(&old.email);
        let del = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&old_email)))
            .build()
            .map_err(build_err)?;
        let items = [
            (Part::User, TransactWriteItem::builder().update(update).build()),
            (Part::OldEmail, TransactWriteItem::builder().delete(del).build()),
            (Part::Email, self.put_new(items::email_to_item(&new.email, &new.id))?),
        ];
        match self.transact(&items, "update user").await? {
            Transaction::Committed => Ok(UpdateUser::Updated),
            Transaction::Cancelled(reasons) if reasons.failed(Part::User) => Ok(UpdateUser::Conflict),
            Transaction::Cancelled(reasons) if reasons.failed(Part::Email) => Ok(UpdateUser::EmailTaken),
            Transaction::Cancelled(_) => Err(StoreError::unavailable("user update cancelled")),
        }
    }

    async fn delete_user(&self, user: &User) -> Result<bool, StoreError> {
        let del = |key: &keys::Key| {
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key_map(key)))
                .condition_expression(PRESENT)
                .set_expression_attribute_names(Some(attr_names([PK_NAME])))
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build())
                .map_err(build_err)
        };
        let items = [(Part::User, del(&keys::user(&user.id))?), (Part::Email, del(&keys::email(&user.email))?)];
        Ok(matches!(self.transact(&items, "delete user").await?, Transaction::Committed))
    }

    async fn list_users(&self, prefix: Option<&str>, page: PageRequest) -> Result<Vec<User>, StoreError> {
        let q = query::IndexQuery::gsi1(keys::ALL_USERS.into(), prefix.map(str::to_owned));
        self.query_page(&q, page).await?.iter().map(items::user_from_item).collect()
    }

    async fn walk_users(
        &self,
        prefix: Option<&str>,
        after: Option<&WalkCursor>,
        limit: u32,
    ) -> Result<UserBatch, StoreError> {
        let q = query::IndexQuery::gsi1(keys::ALL_USERS.into(), prefix.map(str::to_owned));
        let limit = limit.clamp(1, rt_domain::ports::WALK_BATCH_MAX);
        let (items, next) = self.walk_page(&q, after.map(WalkCursor::as_str), limit).await?;
        Ok(UserBatch {
            items: items.iter().map(items::user_from_item).collect::<Result<_, _>>()?,
            next: next.map(WalkCursor::new),
        })
    }

    async fn count_users(&self, prefix: Option<&str>) -> Result<u64, StoreError> {
        self.query_count(&query::IndexQuery::gsi1(keys::ALL_USERS.into(), prefix.map(str::to_owned))).await
    }
}

impl DynamoStore {
    /// Revokes one credential and counts it off its device in the user's map: one
    /// `TransactWriteItems`. When the user is gone or at a newer revision (its map was reset),
    /// the record alone is deleted. `false` when there was no record.
    pub(crate) async fn revoke(&self, cred: &DeviceCredential) -> Result<bool, StoreError> {
        let del = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&keys::credential(&cred.id))))
            .condition_expression(PRESENT)
            .set_expression_attribute_names(Some(attr_names([PK_NAME])))
            .build()
            .map_err(build_err)?;
        let items = [
            (Part::Credential, TransactWriteItem::builder().delete(del).build()),
            (Part::User, self.device_count(cred, -1)?),
        ];
        let result = match self.transact(&items, "revoke credential").await {
            // A user item from before device counts (no map): nothing to count off.
            Err(e) if is_missing_map(&e) => return self.delete_credential(&cred.id).await,
            other => other?,
        };
        match result {
            Transaction::Committed => Ok(true),
            Transaction::Cancelled(reasons) if reasons.failed(Part::Credential) => Ok(false),
            Transaction::Cancelled(reasons) if reasons.failed(Part::User) => self.delete_credential(&cred.id).await,
            Transaction::Cancelled(reasons) => {
                Err(StoreError::unavailable(format!("credential revocation cancelled: {reasons}")))
            }
        }
    }

    /// Issues a credential: one `TransactWriteItems` (put if absent + check of the user's
    /// revision), retried on contention. The client item is not part of it: that item is
    /// shared by every user of the application (see [`CLIENT_CACHE_TTL`]).
    pub(crate) async fn issue(&self, cred: &DeviceCredential) -> Result<IssueOutcome, StoreError> {
        let items = [
            (Part::Credential, self.put_new(items::credential_to_item(cred))?),
            (Part::User, self.device_count(cred, 1)?),
        ];
        match self.transact_counting_devices(&items, &cred.user_id, "issue credential").await? {
            Transaction::Committed => Ok(IssueOutcome::Issued),
            Transaction::Cancelled(reasons) if reasons.failed(Part::User) => Ok(IssueOutcome::UserChanged),
            Transaction::Cancelled(reasons) => {
                tracing::warn!(reasons = %reasons, "credential issue cancelled");
                Err(StoreError::unavailable(format!("credential issue cancelled: {reasons}")))
            }
        }
    }

    /// The `Update` that turns the stored `old` into `new`: a `SET` of the attributes that
    /// differ (and `updated_at`), conditional on the stored revision and `updated_at`.
    fn user_update(&self, old: &User, new: &User) -> Result<Update, StoreError> {
        let before = items::user_to_item(old);
        let mut after: Vec<(String, AttributeValue)> = items::user_to_item(new).into_iter().collect();
        after.sort_by(|a, b| a.0.cmp(&b.0));
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&keys::user(&new.id))))
            .condition_expression(format!("{PRESENT} AND #rev = :rev0 AND #upd = :upd0"))
            .expression_attribute_names(PK_NAME.0, PK_NAME.1)
            .expression_attribute_names("#rev", keys::attr::REV)
            .expression_attribute_names("#upd", keys::attr::UPDATED_AT)
            .expression_attribute_values(":rev0", items::n(old.rev))
            .expression_attribute_values(":upd0", items::n(old.updated_at.millis()));
        let mut sets = Vec::new();
        for (i, (name, value)) in after.into_iter().enumerate() {
            let changed = before.get(&name) != Some(&value) || name == keys::attr::UPDATED_AT;
            if name == keys::PK || name == keys::SK || !changed {
                continue;
            }
            sets.push(format!("#a{i} = :a{i}"));
            u = u
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        if new.rev != old.rev {
            // A new revision: every token so far is dead, and so are their devices.
            sets.push("#dv = :nodevices".into());
            u = u
                .expression_attribute_names("#dv", keys::attr::DEVICES)
                .expression_attribute_values(":nodevices", AttributeValue::M(HashMap::new()));
        }
        u.update_expression(format!("SET {}", sets.join(", "))).build().map_err(build_err)
    }

    /// A user update without an e-mail change: one conditional `UpdateItem`.
    async fn update_alone(&self, u: Update) -> Result<UpdateUser, StoreError> {
        let r = retry::single(|| {
            self.ddb
                .update_item()
                .table_name(u.table_name())
                .set_key(Some(u.key().clone()))
                .update_expression(u.update_expression())
                .set_condition_expression(u.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(u.expression_attribute_names().cloned())
                .set_expression_attribute_values(u.expression_attribute_values().cloned())
                .send()
        })
        .await;
        Ok(if written(r)? { UpdateUser::Updated } else { UpdateUser::Conflict })
    }
}

pub(crate) fn attr_names<const N: usize>(pairs: [(&str, &str); N]) -> HashMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

pub(crate) fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
