//! The authorization-code port: one item per code, keyed by the code's hash.

use std::time::Duration;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use rt_domain::clock::Timestamp;
use rt_domain::code::AuthorizationCode;
use rt_domain::credential::DeviceCredential;
use rt_domain::ports::{CodeStore, Purge, Redeem, StoreError};
use rt_domain::token::SecretHash;

use crate::keys::{self, attr};
use crate::query::IndexQuery;
use crate::{ABSENT, DynamoStore, PK_NAME, PRESENT, Part, Transaction, attr_names, build_err, items, retry, written};

impl CodeStore for DynamoStore {
    async fn put_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let item = items::code_to_item(code);
        let r = retry::single(|| {
            self.ddb
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(ABSENT)
                .set_expression_attribute_names(Some(attr_names([PK_NAME])))
                .send()
        })
        .await;
        if written(r)? { Ok(()) } else { Err(StoreError::unavailable("authorization code collision")) }
    }

    async fn get_code(&self, hash: &SecretHash) -> Result<Option<AuthorizationCode>, StoreError> {
        match self.get_item(&keys::code(hash)).await? {
            Some(item) => Ok(Some(items::code_from_item(hash, &item)?)),
            None => Ok(None),
        }
    }

    async fn redeem_code(
        &self,
        code: &AuthorizationCode,
        at: Timestamp,
        cred: Option<&DeviceCredential>,
    ) -> Result<Redeem, StoreError> {
        let mut parts = vec![(Part::Code, self.mark_redeemed(code, at, cred)?)];
        match cred {
            Some(cred) => {
                parts.push((Part::Credential, self.put_new(items::credential_to_item(cred))?));
                parts.push((Part::User, self.device_count(cred, 1)?));
            }
            None => parts.push((Part::User, self.user_is_current(&code.user_id, code.user_rev)?)),
        }
        match self.transact_counting_devices(&parts, &code.user_id, "redeem code").await? {
            Transaction::Committed => Ok(Redeem::Redeemed),
            Transaction::Cancelled(reasons) if reasons.failed(Part::Code) => Ok(Redeem::AlreadyRedeemed),
            Transaction::Cancelled(reasons) if reasons.failed(Part::User) => Ok(Redeem::UserChanged),
            Transaction::Cancelled(reasons) => {
                Err(StoreError::unavailable(format!("code redemption cancelled: {reasons}")))
            }
        }
    }

    /// The expired codes of every shard (GSI2, by expiry): `Query` pages and `BatchWriteItem`.
    async fn purge_expired_codes(&self, now: Timestamp, budget: Duration) -> Result<Purge, StoreError> {
        let q = IndexQuery::gsi2((0..keys::CODE_SHARDS).map(keys::codes_partition).collect(), None);
        let cutoff = keys::code_by_expiry_sk(now);
        let keep =
            |item: &items::Item| item.get(keys::GSI2_SK).and_then(|v| v.as_s().ok()).is_none_or(|sk| *sk >= cutoff);
        self.purge(&q, keep, budget).await
    }
}

impl DynamoStore {
    /// The code marked redeemed at `at` (with the credential it issues), if it exists and is
    /// not redeemed yet.
    fn mark_redeemed(
        &self,
        code: &AuthorizationCode,
        at: Timestamp,
        cred: Option<&DeviceCredential>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&keys::code(&code.hash))))
            .condition_expression(format!("{PRESENT} AND attribute_not_exists(#red)"))
            .expression_attribute_names(PK_NAME.0, PK_NAME.1)
            .expression_attribute_names("#red", attr::REDEEMED_AT)
            .expression_attribute_values(":at", items::n(at.millis()));
        u = match cred {
            Some(c) => u
                .update_expression("SET #red = :at, #iss = :iss")
                .expression_attribute_names("#iss", attr::ISSUED)
                .expression_attribute_values(":iss", items::s(c.id.as_str())),
            None => u.update_expression("SET #red = :at"),
        };
        Ok(TransactWriteItem::builder().update(u.build().map_err(build_err)?).build())
    }
}
