//! Fixed-window counters in their own items (login attempts), reset in place.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use rt_domain::clock::Timestamp;
use rt_domain::ports::{Count, CounterStore, StoreError};
use rt_domain::ratelimit::RatePolicy;

use crate::items::{self, Item, n, s};
use crate::keys::{self, attr};
use crate::{DynamoStore, attr_names, unavailable, values};

enum Plan {
    /// The window in the item is older than ours (or there is no item): start it at 1.
    Fresh,
    /// The item is in window `w`: add one while below the limit.
    Increment(i64),
}

impl CounterStore for DynamoStore {
    /// One conditional `UpdateItem` when the window is new (the common case for well-behaved
    /// callers), two when it is already running.
    async fn count(&self, name: &str, policy: RatePolicy, now: Timestamp) -> Result<Count, StoreError> {
        let key = keys::counter(name);
        let window = policy.window(now).index;
        let mut plan = Plan::Fresh;
        for _ in 0..4 {
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
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            let req = match plan {
                Plan::Fresh => req
                    .condition_expression("attribute_not_exists(#w) OR #w < :w")
                    .update_expression("SET #w = :w, #n = :one, #k = :kind")
                    .set_expression_attribute_values(Some(values([
                        (":w", n(window)),
                        (":one", n(1)),
                        (":kind", s(keys::KIND_COUNTER)),
                    ]))),
                Plan::Increment(w) => req
                    .condition_expression("#w = :w AND #n < :limit")
                    .update_expression("SET #n = #n + :one, #k = :kind")
                    .set_expression_attribute_values(Some(values([
                        (":w", n(w)),
                        (":one", n(1)),
                        (":limit", n(policy.limit)),
                        (":kind", s(keys::KIND_COUNTER)),
                    ]))),
            };
            match req.send().await {
                Ok(out) => {
                    let item: Item = out.attributes.unwrap_or_default();
                    return Ok(Count { used: items::get_u32(&item, attr::COUNT)?, allowed: true });
                }
                Err(e) => {
                    let old = match e.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                        _ => return Err(unavailable(e)),
                    };
                    let Some(old) = old else { continue };
                    let (w, used) = (items::get_i64(&old, attr::WINDOW)?, items::get_u32(&old, attr::COUNT)?);
                    if w < window {
                        plan = Plan::Fresh;
                    } else if used >= policy.limit {
                        return Ok(Count { used, allowed: false });
                    } else {
                        // Same window, or a window ahead of ours (clock skew between callers).
                        plan = Plan::Increment(w);
                    }
                }
            }
        }
        Err(StoreError::unavailable("rate-limit counter did not converge"))
    }
}
