//! The audit-log port: one item per event, in its user's partition (or its day's shard), with
//! a GSI2 entry in one of its day's [`keys::LOG_SHARDS`] feed partitions.

use std::time::Duration;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use futures::future::try_join_all;
use rt_domain::audit::{AuditEvent, Direction, LogDay, LogId};
use rt_domain::ids::UserId;
use rt_domain::ports::{AuditLog, LOG_BATCH_MAX, Purge, StoreError};

use crate::items::{self, Item, s};
use crate::keys;
use crate::query::IndexQuery;
use crate::{ABSENT, DynamoStore, PK_NAME, attr_names, unavailable, written};

/// The key condition of a walk beyond `direction`'s cursor, and whether it reads forward.
fn cursor(direction: &Direction) -> (Option<(&'static str, &LogId)>, bool) {
    match direction {
        Direction::NewestFirst { before } => (before.as_ref().map(|b| ("<", b)), false),
        Direction::OldestFirst { after } => (after.as_ref().map(|a| (">", a)), true),
    }
}

/// `q` on the partition `pk` of (`pk_attr`, `sk_attr`), beyond the cursor, in the direction's
/// order, at most `limit`.
fn bounded(
    q: QueryFluentBuilder,
    (pk_attr, sk_attr): (&str, &str),
    pk: String,
    direction: &Direction,
    limit: u32,
) -> QueryFluentBuilder {
    let (bound, forward) = cursor(direction);
    let q = q
        .expression_attribute_values(":pk", s(pk))
        .scan_index_forward(forward)
        .limit(i32::try_from(limit.clamp(1, LOG_BATCH_MAX)).unwrap_or(1));
    match bound {
        Some((op, id)) => q
            .key_condition_expression(format!("#pk = :pk AND #sk {op} :c"))
            .set_expression_attribute_names(Some(attr_names([("#pk", pk_attr), ("#sk", sk_attr)])))
            .expression_attribute_values(":c", s(id.as_str())),
        None => {
            q.key_condition_expression("#pk = :pk").set_expression_attribute_names(Some(attr_names([("#pk", pk_attr)])))
        }
    }
}

fn sk_of(item: &Item) -> &str {
    items::opt_s(item, keys::GSI2_SK).unwrap_or("")
}

impl AuditLog for DynamoStore {
    async fn record_event(&self, e: &AuditEvent) -> Result<(), StoreError> {
        // No contention retry here (a new key conflicts with nothing): the SDK's own three
        // attempts are the bounded retry, so that a log write never holds an answer long.
        let r = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::event_to_item(e)))
            .condition_expression(ABSENT)
            .set_expression_attribute_names(Some(attr_names([PK_NAME])))
            .send()
            .await;
        if written(r)? { Ok(()) } else { Err(StoreError::unavailable("log id collision")) }
    }

    async fn user_events(
        &self,
        user: &UserId,
        direction: &Direction,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let q = self.ddb.query().table_name(&self.table).consistent_read(true);
        let r = bounded(q, (keys::PK, keys::SK), keys::user_log(user), direction, limit)
            .send()
            .await
            .map_err(unavailable)?;
        r.items.unwrap_or_default().iter().map(items::event_from_item).collect()
    }

    async fn count_user_events(&self, user: &UserId) -> Result<u64, StoreError> {
        self.query_count(&IndexQuery::table(keys::user_log(user))).await
    }

    async fn day_events(&self, day: LogDay, direction: &Direction, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = limit.clamp(1, LOG_BATCH_MAX);
        let parts = try_join_all(keys::log_feed_all(day).into_iter().map(|pk| {
            let q = self.ddb.query().table_name(&self.table).index_name(keys::GSI2);
            bounded(q, (keys::GSI2_PK, keys::GSI2_SK), pk, direction, limit).send()
        }))
        .await
        .map_err(unavailable)?;
        let mut entries: Vec<Item> = parts.into_iter().flat_map(|p| p.items.unwrap_or_default()).collect();
        entries.sort_by(|a, b| sk_of(a).cmp(sk_of(b)));
        if direction.newest_first() {
            entries.reverse();
        }
        entries.truncate(limit as usize);
        let keys: Vec<Item> = entries
            .iter()
            .filter_map(|e| {
                Some(Item::from([
                    (keys::PK.to_owned(), e.get(keys::PK)?.clone()),
                    (keys::SK.to_owned(), e.get(keys::SK)?.clone()),
                ]))
            })
            .collect();
        self.get_items(&keys).await?.iter().map(items::event_from_item).collect()
    }

    async fn purge_log_day(&self, day: LogDay, budget: Duration) -> Result<Purge, StoreError> {
        self.purge(&IndexQuery::gsi2(keys::log_feed_all(day), None), |_| false, budget).await
    }
}
