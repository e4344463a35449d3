//! The credential port: issue, exchange, read, revoke, list, count and purge.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::ReturnValue;
use rt_domain::credential::DeviceCredential;
use rt_domain::exchange::Written;
use rt_domain::ids::{ClientId, DeviceCredentialId, UserId};
use rt_domain::ports::{
    Contention, CredentialBatch, CredentialFilter, CredentialStore, ExchangeWrite, IssueOutcome, PageRequest, Purge,
    StoreError, WALK_BATCH_MAX, WalkCursor,
};

use crate::DynamoStore;
use crate::items::{self, s};
use crate::keys::{self, attr};
use crate::query::IndexQuery;
use crate::retry;

fn filter_query(f: &CredentialFilter) -> IndexQuery {
    match f {
        CredentialFilter::User { user, client } => {
            IndexQuery::gsi1(keys::credentials_of_user(user), Some(keys::credential_by_user_sk_prefix(client.as_ref())))
        }
        CredentialFilter::Client(client) => {
            IndexQuery::gsi2(keys::credentials_of_client_all(client), Some(keys::credential_by_user_sk_prefix(None)))
        }
    }
}

impl CredentialStore for DynamoStore {
    async fn issue_credential(&self, cred: &DeviceCredential) -> Result<IssueOutcome, StoreError> {
        self.issue(cred).await
    }

    async fn write_exchange(&self, w: &ExchangeWrite<'_>, contention: &mut Contention) -> Result<Written, StoreError> {
        self.write_exchange_plan(w, contention).await
    }

    async fn get_credential(&self, id: &DeviceCredentialId) -> Result<Option<DeviceCredential>, StoreError> {
        match self.get_item(&keys::credential(id)).await? {
            Some(item) => Ok(Some(items::credential_from_item(&item)?)),
            None => Ok(None),
        }
    }

    async fn revoke_credential(&self, id: &DeviceCredentialId) -> Result<bool, StoreError> {
        match self.get_item(&keys::credential(id)).await? {
            Some(item) => self.revoke(&items::credential_from_item(&item)?).await,
            None => Ok(false),
        }
    }

    async fn revoke_read_credential(&self, cred: &DeviceCredential) -> Result<bool, StoreError> {
        self.revoke(cred).await
    }

    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
        page: PageRequest,
    ) -> Result<Vec<DeviceCredential>, StoreError> {
        self.query_page(&filter_query(filter), page).await?.iter().map(items::credential_from_item).collect()
    }

    async fn count_credentials(&self, filter: &CredentialFilter) -> Result<u64, StoreError> {
        self.query_count(&filter_query(filter)).await
    }

    /// The cursor is the index sort key of the last entry of the batch (`DCR#<cid>#<created>#<id>`
    /// on GSI1, `DCR#<uid>#<created>#<id>` on GSI2).
    async fn walk_credentials(
        &self,
        filter: &CredentialFilter,
        after: Option<&WalkCursor>,
        limit: u32,
    ) -> Result<CredentialBatch, StoreError> {
        let limit = limit.clamp(1, WALK_BATCH_MAX);
        let (items, next) = self.walk_page(&filter_query(filter), after.map(WalkCursor::as_str), limit).await?;
        Ok(CredentialBatch {
            items: items.iter().map(items::credential_from_item).collect::<Result<_, _>>()?,
            next: next.map(WalkCursor::new),
        })
    }

    async fn purge_user_credentials(
        &self,
        user: &UserId,
        below_rev: Option<u32>,
        budget: Duration,
    ) -> Result<Purge, StoreError> {
        let q = filter_query(&CredentialFilter::User { user: user.clone(), client: None });
        let keep = |item: &items::Item| match below_rev {
            None => false,
            Some(rev) => items::get_u32(item, attr::USER_REV).is_ok_and(|r| r >= rev),
        };
        self.purge(&q, keep, budget).await
    }

    /// Revokes them one by one (each counted off its user's devices), 100 at a time.
    async fn purge_client_credentials(&self, client: &ClientId, budget: Duration) -> Result<Purge, StoreError> {
        let deadline = Instant::now() + budget;
        let q = filter_query(&CredentialFilter::Client(client.clone()));
        let mut deleted = 0u64;
        loop {
            let batch = self.query_page(&q, PageRequest { page: 0, per_page: 100 }).await?;
            if batch.is_empty() {
                return Ok(Purge { deleted, complete: true });
            }
            for item in batch {
                if Instant::now() > deadline {
                    return Ok(Purge { deleted, complete: false });
                }
                if self.revoke(&items::credential_from_item(&item)?).await? {
                    deleted += 1;
                }
            }
        }
    }
}

impl DynamoStore {
    /// Deletes a credential record alone: one conditional `DeleteItem`; `false` if there was none.
    pub(crate) async fn delete_credential(&self, id: &DeviceCredentialId) -> Result<bool, StoreError> {
        let key = keys::credential(id);
        // An exchange of this very token may be in flight (TransactionConflictException).
        let r = retry::single(|| {
            self.ddb
                .delete_item()
                .table_name(&self.table)
                .key(keys::PK, s(key.pk.clone()))
                .key(keys::SK, s(key.sk))
                .condition_expression(crate::PRESENT)
                .set_expression_attribute_names(Some(crate::attr_names([crate::PK_NAME])))
                .return_values(ReturnValue::None)
                .send()
        })
        .await;
        crate::written(r)
    }
}
