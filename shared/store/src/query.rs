//! Queries on the indexes: offset pages (keys from the index, items by `BatchGetItem`), counts,
//! and bulk removal of credential records. A listing may span several partitions of an index
//! (a client's credentials are sharded): their pages are merged in sort-key order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, Select, WriteRequest};
use futures::future::try_join_all;
use rt_domain::ports::{PageRequest, Purge, StoreError};

use crate::items::{Item, s};
use crate::keys;
use crate::{DynamoStore, attr_names, unavailable};

/// `BatchGetItem` takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;

/// A key condition on one index (or the table itself: `index` `None`): partition values
/// (merged in sort-key order) and an optional sort-key prefix.
#[derive(Debug, Clone)]
pub(crate) struct IndexQuery {
    pub index: Option<&'static str>,
    pub pk_attr: &'static str,
    pub sk_attr: &'static str,
    pub pks: Vec<String>,
    pub prefix: Option<String>,
}

impl IndexQuery {
    pub fn gsi1(pk: String, prefix: Option<String>) -> Self {
        Self { index: Some(keys::GSI1), pk_attr: keys::GSI1_PK, sk_attr: keys::GSI1_SK, pks: vec![pk], prefix }
    }
    pub fn gsi2(pks: Vec<String>, prefix: Option<String>) -> Self {
        Self { index: Some(keys::GSI2), pk_attr: keys::GSI2_PK, sk_attr: keys::GSI2_SK, pks, prefix }
    }
    /// One partition of the table itself.
    pub fn table(pk: String) -> Self {
        Self { index: None, pk_attr: keys::PK, sk_attr: keys::SK, pks: vec![pk], prefix: None }
    }
}

fn sk_of<'a>(q: &IndexQuery, item: &'a Item) -> &'a str {
    item.get(q.sk_attr).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("")
}

fn primary_key(item: &Item) -> Option<Item> {
    Some(Item::from([
        (keys::PK.to_owned(), item.get(keys::PK)?.clone()),
        (keys::SK.to_owned(), item.get(keys::SK)?.clone()),
    ]))
}

impl DynamoStore {
    fn query_builder(
        &self,
        q: &IndexQuery,
        pk: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut b = self
            .ddb
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_owned))
            .expression_attribute_values(":pk", s(pk));
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

    /// The first `want` index entries of one partition, in sort-key order.
    async fn first_entries(&self, q: &IndexQuery, pk: &str, want: u64) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let left = want.saturating_sub(out.len() as u64);
            if left == 0 {
                return Ok(out);
            }
            let limit = i32::try_from(left.min(1000)).unwrap_or(1000);
            let r = self
                .query_builder(q, pk)
                .limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            out.extend(r.items.unwrap_or_default());
            start = r.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Items `page.skip() .. page.skip() + per_page` in sort-key order: index entries read
    /// from every partition of `q` (concurrently; the skipped ones too — DynamoDB has no
    /// offsets), then the items themselves, strongly consistent, with `BatchGetItem`. An item
    /// deleted in between is left out.
    pub(crate) async fn query_page(&self, q: &IndexQuery, page: PageRequest) -> Result<Vec<Item>, StoreError> {
        let skip = page.skip();
        let want = skip + u64::from(page.per_page);
        let parts = try_join_all(q.pks.iter().map(|pk| self.first_entries(q, pk, want))).await?;
        let mut entries: Vec<Item> = parts.into_iter().flatten().collect();
        entries.sort_by(|a, b| sk_of(q, a).cmp(sk_of(q, b)));
        let keys: Vec<Item> = entries
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(page.per_page as usize)
            .filter_map(primary_key)
            .collect();
        self.get_items(&keys).await
    }

    /// One batch of a walk over `q` in sort-key order: the entries after the sort key `after`
    /// (from the start of the prefix when `None`), at most `limit` of them, merged over every
    /// partition (one `Query` each, concurrently, from the cursor), then their items
    /// (strongly consistent `BatchGetItem`). Also returns the sort key of the last entry
    /// taken when more may follow: the cursor of the next batch.
    pub(crate) async fn walk_page(
        &self,
        q: &IndexQuery,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let prefix = q.prefix.clone().unwrap_or_default();
        // A cursor may come from a caller (checkpoint paging): one before the prefix starts
        // the walk at the prefix, one past its end finds nothing (DynamoDB refuses a `BETWEEN`
        // whose bounds are reversed).
        let after = after.filter(|a| *a >= prefix.as_str());
        let from = after.map_or(prefix.clone(), str::to_owned);
        let to = (!prefix.is_empty()).then(|| keys::prefix_end(&prefix));
        if to.as_ref().is_some_and(|to| from > *to) {
            return Ok((vec![], None));
        }
        let condition = match (&to, from.is_empty()) {
            (Some(_), _) => "#pk = :pk AND #sk BETWEEN :from AND :to",
            (None, false) => "#pk = :pk AND #sk >= :from",
            (None, true) => "#pk = :pk",
        };
        // `BETWEEN` and `>=` include the cursor's own entry: ask for one more.
        let ask = i32::try_from(limit.saturating_add(u32::from(after.is_some()))).unwrap_or(i32::MAX);
        let parts = try_join_all(q.pks.iter().map(|pk| {
            let mut values = vec![(":pk", s(pk))];
            if !from.is_empty() {
                values.push((":from", s(from.clone())));
            }
            if let Some(to) = &to {
                values.push((":to", s(to.clone())));
            }
            // Every placeholder must be used: `#sk` only with a bound on it.
            let names = if from.is_empty() {
                attr_names([("#pk", q.pk_attr)])
            } else {
                attr_names([("#pk", q.pk_attr), ("#sk", q.sk_attr)])
            };
            self.ddb
                .query()
                .table_name(&self.table)
                .set_index_name(q.index.map(str::to_owned))
                .key_condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
                .limit(ask)
                .send()
        }))
        .await
        .map_err(unavailable)?;
        let mut more = false;
        let mut entries: Vec<Item> = Vec::new();
        for part in parts {
            more |= part.last_evaluated_key.is_some();
            entries.extend(part.items.unwrap_or_default().into_iter().filter(|e| Some(sk_of(q, e)) != after));
        }
        entries.sort_by(|a, b| sk_of(q, a).cmp(sk_of(q, b)));
        let limit = limit as usize;
        more |= entries.len() > limit;
        entries.truncate(limit);
        let next = if more { entries.last().map(|e| sk_of(q, e).to_owned()) } else { None };
        let keys: Vec<Item> = entries.iter().filter_map(primary_key).collect();
        Ok((self.get_items(&keys).await?, next))
    }

    /// The items under `keys` (strongly consistent `BatchGetItem`s, 100 keys each, unprocessed
    /// keys retried), in the order of `keys`; missing items are left out.
    pub(crate) async fn get_items(&self, keys: &[Item]) -> Result<Vec<Item>, StoreError> {
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        let id = |i: &Item| -> (String, String) {
            let part = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            (part(keys::PK), part(keys::SK))
        };
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(crate::build_err)?,
            );
            let mut delay = Duration::from_millis(20);
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Some(request) = pending.take() {
                let r =
                    self.ddb.batch_get_item().request_items(&self.table, request).send().await.map_err(unavailable)?;
                for item in r.responses.and_then(|mut m| m.remove(&self.table)).unwrap_or_default() {
                    found.insert(id(&item), item);
                }
                pending = r.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    if Instant::now() + delay > deadline {
                        return Err(StoreError::unavailable("BatchGetItem kept returning unprocessed keys"));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
        Ok(keys.iter().filter_map(|k| found.remove(&id(k))).collect())
    }

    /// Number of items under the key condition (`Select=COUNT`, all pages, all partitions).
    pub(crate) async fn query_count(&self, q: &IndexQuery) -> Result<u64, StoreError> {
        let counts = try_join_all(q.pks.iter().map(|pk| async move {
            let mut total = 0u64;
            let mut start = None;
            loop {
                let r = self
                    .query_builder(q, pk)
                    .select(Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(unavailable)?;
                total += u64::try_from(r.count).unwrap_or(0);
                start = r.last_evaluated_key;
                if start.is_none() {
                    return Ok::<u64, StoreError>(total);
                }
            }
        }))
        .await?;
        Ok(counts.into_iter().sum())
    }

    /// Deletes the base-table items found under `q` for which `keep` (which sees the index
    /// entry) is false: query pages, `BatchWriteItem` 25 at a time, unprocessed items retried
    /// with backoff. Stops when a query from the start finds nothing more to delete, or when
    /// `budget` is spent.
    pub(crate) async fn purge(
        &self,
        q: &IndexQuery,
        keep: impl Fn(&Item) -> bool,
        budget: Duration,
    ) -> Result<Purge, StoreError> {
        let deadline = Instant::now() + budget;
        let mut deleted = 0u64;
        for pk in &q.pks {
            loop {
                let mut start = None;
                let mut found = 0u64;
                loop {
                    if Instant::now() > deadline {
                        return Ok(Purge { deleted, complete: false });
                    }
                    let r = self
                        .query_builder(q, pk)
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
                        .filter_map(|i| primary_key(&i))
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
                    break;
                }
            }
        }
        Ok(Purge { deleted, complete: true })
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
                    return Err(StoreError::unavailable("BatchWriteItem kept returning unprocessed items"));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
        Ok(())
    }
}
