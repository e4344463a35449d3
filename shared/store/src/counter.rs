//! Fixed-window counters in their own items (login attempts), reset in place: one step of
//! [`rt_domain::ratelimit::count`] as one conditional `UpdateItem`.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use rt_domain::ports::{CounterStore, StoreError};
use rt_domain::ratelimit::{Counter, Step};

use crate::items::{self, n, s};
use crate::keys::{self, attr};
use crate::{DynamoStore, attr_names, unavailable, values};

impl CounterStore for DynamoStore {
    async fn write_counter(&self, name: &str, step: Step) -> Result<Option<Option<Counter>>, StoreError> {
        let key = keys::counter(name);
        let after = step.after();
        let req = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.pk.clone()))
            .key(keys::SK, s(key.sk))
            .set_expression_attribute_names(Some(attr_names([
                ("#w", attr::WINDOW),
                ("#n", attr::COUNT),
                ("#k", keys::KIND),
            ])))
            .update_expression("SET #w = :w, #n = :n, #k = :kind")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let req = match step {
            Step::Start { window } => {
                req.condition_expression("attribute_not_exists(#w) OR #w < :w").set_expression_attribute_values(Some(
                    values([(":w", n(window)), (":n", n(after.count)), (":kind", s(keys::KIND_COUNTER))]),
                ))
            }
            Step::Increment { window, expected } => {
                req.condition_expression("#w = :w AND #n = :expected").set_expression_attribute_values(Some(values([
                    (":w", n(window)),
                    (":expected", n(expected)),
                    (":n", n(after.count)),
                    (":kind", s(keys::KIND_COUNTER)),
                ])))
            }
        };
        match req.send().await {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Some(c.item().map(items::counter_from).transpose()?))
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn read_counter(&self, name: &str) -> Result<Option<Counter>, StoreError> {
        let out = self.read(&keys::counter(name)).consistent_read(false).send().await.map_err(unavailable)?;
        out.item.as_ref().map(items::counter_from).transpose()
    }

    async fn reset_counter(&self, name: &str) -> Result<(), StoreError> {
        let key = keys::counter(name);
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.pk))
            .key(keys::SK, s(key.sk))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
