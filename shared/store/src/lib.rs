//! The DynamoDB adapter: the only crate that names `aws-sdk-dynamodb`. It implements the
//! storage ports of `rt-domain` over one table whose keys are all in [`keys`].

pub mod counter;
mod credentials;
pub mod exchange;
pub mod items;
pub mod keys;
mod query;
pub mod table;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client as Ddb;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use rt_domain::client::Client;
use rt_domain::credential::DeviceCredential;
use rt_domain::ids::{ClientId, Email, UserId};
use rt_domain::ports::{
    ClientStore, CreateUser, Freshness, IssueOutcome, PageRequest, StoreError, UpdateUser, UserStore,
};
use rt_domain::user::User;

use crate::items::{Item, s};

pub use aws_sdk_dynamodb;

/// How long a client's configuration may be served from the per-process cache.
const CLIENT_CACHE_TTL: Duration = Duration::from_secs(30);
const CLIENT_CACHE_MAX: usize = 1024;
pub(crate) const COUNTER_HINTS_MAX: usize = 4096;

/// The store: one DynamoDB client and one table name, built once per process.
pub struct DynamoStore {
    ddb: Ddb,
    table: String,
    clients: Mutex<HashMap<ClientId, (Instant, Client)>>,
    /// Last known rate-limit counter per (credential id, address): a guess that saves a round
    /// trip when the same client comes back to the same warm process within a window. Only a
    /// hint — every write is conditional on the exact value it guessed.
    pub(crate) counter_hints: Mutex<HashMap<(String, String), (i64, u32)>>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// Loads the AWS configuration from the environment (region, credentials, and
    /// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` for a local server).
    pub async fn from_env(table: String) -> Self {
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(12))
            .build();
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).load().await;
        Self::new(Ddb::new(&conf), table)
    }

    /// A store over an explicit endpoint with static test credentials (local servers).
    pub fn local(endpoint: &str, table: String) -> Self {
        let conf = aws_sdk_dynamodb::Config::builder()
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

    pub fn new(ddb: Ddb, table: String) -> Self {
        Self { ddb, table, clients: Mutex::new(HashMap::new()), counter_hints: Mutex::new(HashMap::new()) }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn ddb(&self) -> &Ddb {
        &self.ddb
    }

    async fn get_item(&self, key: &keys::Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.pk.clone()))
            .key(keys::SK, s(key.sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    fn key_map(key: &keys::Key) -> Item {
        HashMap::from([(keys::PK.to_owned(), s(key.pk.clone())), (keys::SK.to_owned(), s(key.sk))])
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn check(&self, key: &keys::Key, condition: &str, values: Item) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(key)))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The condition that a user item exists, is not blocked and is at revision `:urev`.
    fn user_is_current(&self, user: &UserId, rev: u32) -> Result<TransactWriteItem, StoreError> {
        self.check(
            &keys::user(user),
            "attribute_exists(pk) AND rev = :urev AND blocked = :no",
            HashMap::from([(":urev".to_owned(), items::n(rev)), (":no".to_owned(), items::b(false))]),
        )
    }

    fn client_exists(&self, client: &ClientId) -> Result<TransactWriteItem, StoreError> {
        self.check(&keys::client(client), "attribute_exists(pk)", HashMap::new())
    }
}

/// Maps an SDK failure to [`StoreError::Unavailable`], logging the whole error chain.
pub(crate) fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or("none").to_owned();
    tracing::error!(error = %DisplayErrorContext(&e), code, "dynamodb request failed");
    StoreError::Unavailable(code)
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

pub(crate) fn is_ccf(code: &str) -> bool {
    code == "ConditionalCheckFailed"
}

impl ClientStore for DynamoStore {
    async fn get_client(&self, id: &ClientId, freshness: Freshness) -> Result<Option<Client>, StoreError> {
        if freshness == Freshness::Cached
            && let Ok(cache) = self.clients.lock()
            && let Some((at, c)) = cache.get(id)
            && at.elapsed() < CLIENT_CACHE_TTL
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
            cache.insert(id.clone(), (Instant::now(), c.clone()));
        }
        Ok(client)
    }

    async fn create_client(&self, client: &Client) -> Result<bool, StoreError> {
        self.put_client(client, "attribute_not_exists(pk)").await
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        self.forget_client(&client.id);
        self.put_client(client, "attribute_exists(pk)").await
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
        let q = query::IndexQuery::gsi2(keys::ALL_CLIENTS.into(), None);
        self.query_page(&q, page).await?.iter().map(items::client_from_item).collect()
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        self.query_count(&query::IndexQuery::gsi2(keys::ALL_CLIENTS.into(), None)).await
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
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn forget_client(&self, id: &ClientId) {
        if let Ok(mut cache) = self.clients.lock() {
            cache.remove(id);
        }
    }
}

impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<CreateUser, StoreError> {
        let r = self
            .ddb
            .transact_write_items()
            .transact_items(self.put_new(items::user_to_item(user))?)
            .transact_items(self.put_new(items::email_to_item(&user.email, &user.id))?)
            .send()
            .await;
        match r {
            Ok(_) => Ok(CreateUser::Created),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if codes.get(1).is_some_and(|(c, _)| is_ccf(c)) => Ok(CreateUser::EmailTaken),
                Some(_) => Err(StoreError::Unavailable("user creation cancelled".into())),
                None => Err(unavailable(e)),
            },
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
            return Ok(None);
        };
        let id = items::get_s(&item, keys::attr::USER_ID)?;
        let id = UserId::parse(id).map_err(|_| StoreError::Corrupt(format!("email item for {email}: bad user id")))?;
        let user = self.get_user(&id).await?;
        // A user whose e-mail changed leaves no stale index entry behind, but guard anyway.
        Ok(user.filter(|u| &u.email == email))
    }

    async fn update_user(&self, old: &User, new: &User) -> Result<UpdateUser, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::user_to_item(new)))
            .condition_expression("attribute_exists(pk) AND rev = :rev AND updated_at = :updated")
            .expression_attribute_values(":rev", items::n(old.rev))
            .expression_attribute_values(":updated", items::n(old.updated_at.millis()))
            .build()
            .map_err(build_err)?;
        let mut tx = self.ddb.transact_write_items().transact_items(TransactWriteItem::builder().put(put).build());
        let moving = old.email != new.email;
        if moving {
            let old_email = keys::email(&old.email);
            let del = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key_map(&old_email)))
                .build()
                .map_err(build_err)?;
            tx = tx
                .transact_items(TransactWriteItem::builder().delete(del).build())
                .transact_items(self.put_new(items::email_to_item(&new.email, &new.id))?);
        }
        match tx.send().await {
            Ok(_) => Ok(UpdateUser::Updated),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if codes.first().is_some_and(|(c, _)| is_ccf(c)) => Ok(UpdateUser::Conflict),
                Some(codes) if moving && codes.get(2).is_some_and(|(c, _)| is_ccf(c)) => Ok(UpdateUser::EmailTaken),
                Some(_) => Err(StoreError::Unavailable("user update cancelled".into())),
                None => Err(unavailable(e)),
            },
        }
    }

    async fn delete_user(&self, user: &User) -> Result<bool, StoreError> {
        let del = |key: &keys::Key| {
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key_map(key)))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build())
                .map_err(build_err)
        };
        let r = self
            .ddb
            .transact_write_items()
            .transact_items(del(&keys::user(&user.id))?)
            .transact_items(del(&keys::email(&user.email))?)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(_) => Ok(false),
                None => Err(unavailable(e)),
            },
        }
    }

    async fn list_users(&self, prefix: Option<&str>, page: PageRequest) -> Result<Vec<User>, StoreError> {
        let q = query::IndexQuery::gsi1(keys::ALL_USERS.into(), prefix.map(str::to_owned));
        self.query_page(&q, page).await?.iter().map(items::user_from_item).collect()
    }

    async fn count_users(&self, prefix: Option<&str>) -> Result<u64, StoreError> {
        self.query_count(&query::IndexQuery::gsi1(keys::ALL_USERS.into(), prefix.map(str::to_owned))).await
    }
}

impl DynamoStore {
    /// Issues a credential: one `TransactWriteItems` (put + user revision check + client check).
    pub(crate) async fn issue(&self, cred: &DeviceCredential) -> Result<IssueOutcome, StoreError> {
        let r = self
            .ddb
            .transact_write_items()
            .transact_items(self.put_new(items::credential_to_item(cred))?)
            .transact_items(self.user_is_current(&cred.user_id, cred.user_rev)?)
            .transact_items(self.client_exists(&cred.client_id)?)
            .client_request_token(rt_domain::random::alphanumeric(32))
            .send()
            .await;
        match r {
            Ok(_) => Ok(IssueOutcome::Issued),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) => {
                    let failed = |i: usize| codes.get(i).is_some_and(|(c, _)| is_ccf(c));
                    if failed(1) {
                        Ok(IssueOutcome::UserChanged)
                    } else if failed(2) {
                        Ok(IssueOutcome::ClientGone)
                    } else {
                        let summary: Vec<&str> = codes.iter().map(|(c, _)| c.as_str()).collect();
                        tracing::warn!(?summary, "credential issue cancelled");
                        Err(StoreError::Unavailable("credential issue cancelled".into()))
                    }
                }
                None => Err(unavailable(e)),
            },
        }
    }
}

pub(crate) fn attr_names<const N: usize>(pairs: [(&str, &str); N]) -> HashMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

pub(crate) fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
