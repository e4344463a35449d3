//! Queries on the indexes: offset pages, counts, and bulk removal of credential records.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{DeleteRequest, Select, WriteRequest};
use rt_domain::ports::{PageRequest, Purge, StoreError};

use crate::items::{Item, s};
use crate::keys;
use crate::{DynamoStore, attr_names, unavailable};

/// A key condition on one index: partition value and optional sort-key prefix.
#[derive(Debug, Clone)]
pub(crate) struct IndexQuery {
    pub index: &'static str,
    pub pk_attr: &'static str,
    pub sk_attr: &'static str,
    pub pk: String,
    pub prefix: Option<String>,
}

impl IndexQuery {
    pub fn gsi1(pk: String, prefix: Option<String>) -> Self {
        Self { index: keys::GSI1, pk_attr: keys::GSI1_PK, sk_attr: keys::GSI1_SK, pk, prefix }
    }
    pub fn gsi2(pk: String, prefix: Option<String>) -> Self {
        Self { index: keys::GSI2, pk_attr: keys::GSI2_PK, sk_attr: keys::GSI2_SK, pk, prefix }
    }
}

impl DynamoStore {
    fn query_builder(&self, q: &IndexQuery) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut b = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name(q.index)
            .expression_attribute_values(":pk", s(q.pk.clone()));
        b = match &q.prefix {
            Some(p) => b
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .set_expression_attribute_names(Some(attr_names([("#pk", q.pk_attr), ("#sk", q.sk_attr)])))
                .expression_attribute_values(":prefix", s(p.clone())),
            None => b
                .key_condition_expression("#pk = :pk")
                .set_expression_attribute_names(Some(attr_names([("#pk", q.pk_attr)]))),
        };
        b
    }

    /// Items `page.skip() .. page.skip() + per_page` in sort-key order. DynamoDB has no
    /// offsets: the skipped items are read and dropped (fine for the page depths of a UI).
    pub(crate) async fn query_page(&self, q: &IndexQuery, page: PageRequest) -> Result<Vec<Item>, StoreError> {
        let skip = page.skip();
        let want = skip + u64::from(page.per_page);
        let mut seen = 0u64;
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let limit = i32::try_from((want - seen).min(1000)).unwrap_or(1000);
            let r =
                self.query_builder(q).limit(limit).set_exclusive_start_key(start).send().await.map_err(unavailable)?;
            for item in r.items.unwrap_or_default() {
                if seen >= skip && seen < want {
                    out.push(item);
                }
                seen += 1;
            }
            start = r.last_evaluated_key;
            if seen >= want || start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Number of items under the key condition (`Select=COUNT`, all pages).
    pub(crate) async fn query_count(&self, q: &IndexQuery) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let mut start = None;
        loop {
            let r = self
                .query_builder(q)
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            total += u64::try_from(r.count).unwrap_or(0);
            start = r.last_evaluated_key;
            if start.is_none() {
                return Ok(total);
            }
        }
    }

    /// Deletes the base-table items found under `q` for which `keep` is false: query pages,
    /// `BatchWriteItem` 25 at a time, unprocessed items retried with backoff. Stops when a
    /// query from the start finds nothing more to delete, or when `budget` is spent.
    pub(crate) async fn purge(
        &self,
        q: &IndexQuery,
        keep: impl Fn(&Item) -> bool,
        budget: Duration,
    ) -> Result<Purge, StoreError> {
        let deadline = Instant::now() + budget;
        let mut deleted = 0u64;
        loop {
            let mut start = None;
            let mut found = 0u64;
            loop {
                if Instant::now() > deadline {
                    return Ok(Purge { deleted, complete: false });
                }
                let r = self
                    .query_builder(q)
                    .limit(500)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(unavailable)?;
                let doomed: Vec<Item> = r
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| !keep(i))
                    .filter_map(|i| {
                        Some(Item::from([
                            (keys::PK.to_owned(), i.get(keys::PK)?.clone()),
                            (keys::SK.to_owned(), i.get(keys::SK)?.clone()),
                        ]))
                    })
                    .collect();
                found += doomed.len() as u64;
                for chunk in doomed.chunks(25) {
                    self.batch_delete(chunk.to_vec(), deadline).await?;
                    deleted += chunk.len() as u64;
                }
                start = r.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            if found == 0 {
                return Ok(Purge { deleted, complete: true });
            }
        }
    }

    async fn batch_delete(&self, keys: Vec<Item>, deadline: Instant) -> Result<(), StoreError> {
        let mut pending: Vec<WriteRequest> = keys
            .into_iter()
            .filter_map(|k| DeleteRequest::builder().set_key(Some(k)).build().ok())
            .map(|d| WriteRequest::builder().delete_request(d).build())
            .collect();
        let mut delay = Duration::from_millis(20);
        while !pending.is_empty() {
            let r =
                self.ddb.batch_write_item().request_items(&self.table, pending).send().await.map_err(unavailable)?;
            pending = r.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            if !pending.is_empty() {
                if Instant::now() + delay > deadline {
                    return Err(StoreError::Unavailable("BatchWriteItem kept returning unprocessed items".into()));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
        Ok(())
    }
}
