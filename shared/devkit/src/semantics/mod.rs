//! A DynamoDB-semantics layer: an HTTP proxy in front of a DynamoDB-compatible server (moto)
//! that adds the rules of the real service that moto skips, so that tests see what production
//! would. moto serves one request at a time and never conflicts, throttles or checks unused
//! placeholders; DynamoDB is concurrent, optimistic and limited per partition key.
//!
//! Each rule is configurable ([`Rules`]) and every rule that fires is recorded as an
//! [`Event`]:
//! - **latency** per request, longer for transactions, during which the request is in flight;
//! - **transaction conflicts** (Developer Guide, "Transaction conflict handling"): an item of a
//!   `TransactWriteItems` that is part of another in-flight `TransactWriteItems` cancels it
//!   (`TransactionCanceledException`, reason `TransactionConflict` at that position;
//!   `ConditionCheck` items included); a `PutItem`/`UpdateItem`/`DeleteItem` of an item in an
//!   in-flight transaction fails with `TransactionConflictException`; an item of a
//!   `TransactGetItems` that is being written cancels it. A `BatchWriteItem` entry for such an
//!   item comes back in `UnprocessedItems`;
//! - **per-partition throughput**: a token bucket per partition key of the table and of every
//!   global secondary index a write reaches (1,000 write units/s and 3,000 read units/s on
//!   DynamoDB, at most one second of burst), write units per started KB (×2 in a transaction,
//!   `ConditionCheck` included), read units per started 4 KB (½ when eventually consistent).
//!   An index is reached by every write of an item carrying its key with `ALL`, and by writes of
//!   a key or projected attribute with `KEYS_ONLY`/`INCLUDE`. Over the limit:
//!   `ProvisionedThroughputExceededException` (reason `ThrottlingError` in a transaction);
//! - **validation**: an `ExpressionAttributeNames`/`ExpressionAttributeValues` entry that no
//!   expression uses, a key-condition operand or item key over the key size limits (2,048 bytes
//!   for a partition key, 1,024 for a sort key) → `ValidationException`;
//! - **item size**: items over 400 KB → `ValidationException`.
//!
//! The layer runs on its own thread with its own runtime, so it outlives any test's runtime.

pub mod expr;
pub mod model;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

use expr::{key_condition_operands, unused_placeholders, update_actions};
use model::{
    Bucket, Item, ItemKey, MAX_HASH_KEY_BYTES, MAX_ITEM_BYTES, MAX_RANGE_KEY_BYTES, Partition, Schema, WriteKind,
    WritePlan, item_size, per_partition, plan_write, read_units, scalar,
};

/// Per-partition throughput limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub write_units_per_second: f64,
    pub read_units_per_second: f64,
}

impl Throughput {
    /// DynamoDB's limits per partition key.
    pub const DYNAMODB: Self = Self { write_units_per_second: 1000.0, read_units_per_second: 3000.0 };

    /// DynamoDB's limits scaled by `factor` (tests scale traffic and limits down together).
    pub fn scaled(factor: f64) -> Self {
        Self {
            write_units_per_second: Self::DYNAMODB.write_units_per_second * factor,
            read_units_per_second: Self::DYNAMODB.read_units_per_second * factor,
        }
    }
}

/// Which of DynamoDB's rules the layer applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Time a single-item request (`GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`) and a
    /// refused request take.
    pub single_latency: Duration,
    /// Time a `TransactWriteItems` / `TransactGetItems` holds its items in flight.
    pub transaction_latency: Duration,
    /// Time a `Query`, `BatchGetItem` or `BatchWriteItem` takes.
    pub multi_latency: Duration,
    pub conflicts: bool,
    pub throughput: Option<Throughput>,
    pub validation: bool,
    pub item_size_limit: bool,
}

impl Rules {
    /// Everything on, with latencies like DynamoDB's within a region and its real limits.
    pub fn dynamodb() -> Self {
        Self {
            single_latency: Duration::from_millis(4),
            transaction_latency: Duration::from_millis(12),
            multi_latency: Duration::from_millis(6),
            conflicts: true,
            throughput: Some(Throughput::DYNAMODB),
            validation: true,
            item_size_limit: true,
        }
    }

    /// Everything on, with short latencies: what every test runs through.
    pub fn for_tests() -> Self {
        Self {
            single_latency: Duration::from_millis(1),
            transaction_latency: Duration::from_millis(3),
            multi_latency: Duration::from_millis(1),
            ..Self::dynamodb()
        }
    }

    /// Whether a rule needs the current state of the items a write touches.
    fn tracks_items(&self) -> bool {
        self.throughput.is_some() || self.item_size_limit
    }

    /// Nothing but forwarding.
    pub fn none() -> Self {
        Self {
            single_latency: Duration::ZERO,
            transaction_latency: Duration::ZERO,
            multi_latency: Duration::ZERO,
            conflicts: false,
            throughput: None,
            validation: false,
            item_size_limit: false,
        }
    }
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A request refused because `item` is part of an in-flight transaction (or write).
    Conflict { operation: String, item: ItemKey },
    /// A request refused because `partition` had not `needed` units left.
    Throttled { operation: String, partition: Partition, needed: f64 },
    /// A request refused as invalid.
    Invalid { operation: String, message: String },
}

/// What one request reached, as IAM authorises it: the action (the items of a
/// `TransactWriteItems` as `PutItem`, `UpdateItem`, `DeleteItem` and `ConditionCheckItem`, of a
/// `TransactGetItems` as `GetItem`; every key of a batch as the batch's action), the index a
/// `Query` reads, and the partition key (`dynamodb:LeadingKeys`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub action: String,
    pub index: Option<String>,
    pub leading_key: String,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.index {
            Some(i) => write!(f, "{} on index {i} of {}", self.action, self.leading_key),
            None => write!(f, "{} of {}", self.action, self.leading_key),
        }
    }
}

/// Units consumed on one partition since the start (or the last [`Layer::reset`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Consumed {
    pub read: f64,
    pub write: f64,
}

#[derive(Default)]
struct State {
    /// Items of in-flight `TransactWriteItems`, with how many hold each.
    transaction_items: HashMap<ItemKey, u32>,
    /// Items of in-flight single-item and batch writes.
    written_items: HashMap<ItemKey, u32>,
    write_buckets: HashMap<Partition, Bucket>,
    read_buckets: HashMap<Partition, Bucket>,
    consumed: HashMap<Partition, Consumed>,
    /// What the layer knows of items: `Some(item)`, or `None` for "does not exist".
    images: HashMap<ItemKey, Option<Item>>,
    schemas: HashMap<String, Schema>,
    events: Vec<Event>,
    operations: Vec<String>,
    /// Whether requests' accesses are recorded (see [`Layer::record_accesses`]).
    recording: bool,
    accesses: Vec<Access>,
}

const MAX_EVENTS: usize = 200_000;

impl State {
    fn event(&mut self, e: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(e);
        }
    }
}

struct Shared {
    upstream: String,
    rules: Mutex<Rules>,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn rules(&self) -> Rules {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// A running layer; stopped when dropped.
pub struct Layer {
    endpoint: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl Layer {
    /// Starts a layer on a free loopback port in front of `upstream` (a DynamoDB endpoint).
    pub fn start(upstream: &str, rules: Rules) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rules: Mutex::new(rules),
            state: Mutex::new(State::default()),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("dynamodb-semantics".into()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else {
                return;
            };
            rt.block_on(serve(listener, s, stopped));
        })?;
        Ok(Self { endpoint, shared, stop: Some(stop), thread: Some(thread) })
    }

    /// The endpoint to give to the DynamoDB client.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Changes the rules from the next request on.
    pub fn set_rules(&self, rules: Rules) {
        *self.shared.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = rules;
    }

    /// The operations (`GetItem`, `TransactWriteItems`, …) seen since the last call.
    pub fn take_operations(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.state().operations)
    }

    /// Records from now on what each request reaches (off by default: it costs every request
    /// a little, and the load tests measure time).
    pub fn record_accesses(&self, on: bool) {
        self.shared.state().recording = on;
    }

    /// What the requests since the last call reached (see [`Access`]), while recording.
    pub fn take_accesses(&self) -> Vec<Access> {
        std::mem::take(&mut self.shared.state().accesses)
    }

    /// Every rule that fired since the start or the last [`Self::reset`].
    pub fn events(&self) -> Vec<Event> {
        self.shared.state().events.clone()
    }

    /// Units consumed per partition, most written first.
    pub fn consumed(&self) -> Vec<(Partition, Consumed)> {
        let mut v: Vec<(Partition, Consumed)> =
            self.shared.state().consumed.iter().map(|(p, c)| (p.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.write.total_cmp(&a.1.write).then(b.1.read.total_cmp(&a.1.read)));
        v
    }

    /// Forgets events, consumed units and operations, and refills every bucket.
    pub fn reset(&self) {
        let mut s = self.shared.state();
        s.events.clear();
        s.consumed.clear();
        s.operations.clear();
        s.accesses.clear();
        s.write_buckets.clear();
        s.read_buckets.clear();
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Upstream = Client<HttpConnector, Full<Bytes>>;

struct Ctx {
    shared: Arc<Shared>,
    client: Upstream,
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let client: Upstream =
        Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build_http();
    let ctx = Arc::new(Ctx { shared, client });
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stopped => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

type Response = hyper::Response<Full<Bytes>>;

fn json_response(status: u16, body: &Value) -> Response {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-amz-json-1.0"));
    r
}

fn error(kind: &str, message: &str) -> Response {
    let ty = if kind == "ValidationException" {
        "com.amazon.coral.validate#ValidationException".to_owned()
    } else {
        format!("com.amazonaws.dynamodb.v20120810#{kind}")
    };
    json_response(400, &json!({ "__type": ty, "message": message }))
}

const CONFLICT_MESSAGE: &str = "Transaction is ongoing for the item";
const THROTTLE_MESSAGE: &str = "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly.";

/// A `TransactionCanceledException` of `n` items, with `code` at `positions`.
fn cancelled_at(n: usize, positions: &[usize], code: &str) -> Response {
    let reasons: Vec<Option<&str>> = (0..n).map(|i| positions.contains(&i).then_some(code)).collect();
    cancelled(&reasons)
}

fn cancelled(reasons: &[Option<&str>]) -> Response {
    let codes: Vec<&str> = reasons.iter().map(|r| r.unwrap_or("None")).collect();
    let list: Vec<Value> = reasons
        .iter()
        .map(|r| match r {
            Some(code @ "TransactionConflict") => json!({"Code": code, "Message": CONFLICT_MESSAGE}),
            Some(code) => json!({"Code": code, "Message": THROTTLE_MESSAGE}),
            None => json!({"Code": "None"}),
        })
        .collect();
    json_response(
        400,
        &json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
            "CancellationReasons": list,
        }),
    )
}

/// One request as received.
struct Call {
    headers: http::HeaderMap,
    op: String,
    body: Value,
    rules: Rules,
}

/// An answer from upstream.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status == 200
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn into_response(self) -> Response {
        let mut r = hyper::Response::new(Full::new(self.body));
        *r.status_mut() = http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        *r.headers_mut() = self.headers;
        r.headers_mut().remove(http::header::CONTENT_LENGTH);
        r.headers_mut().remove(http::header::TRANSFER_ENCODING);
        // Hop-by-hop: upstream's connection is not the client's (a `Connection: close` from
        // upstream would close the client's keep-alive connection).
        r.headers_mut().remove(http::header::CONNECTION);
        r.headers_mut().remove("keep-alive");
        r
    }
}

impl Ctx {
    async fn send(&self, headers: &http::HeaderMap, op: &str, body: Bytes) -> Answer {
        let mut req = hyper::Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = match format!("{}/", self.shared.upstream).parse() {
            Ok(u) => u,
            Err(_) => return Answer { status: 502, headers: http::HeaderMap::new(), body: Bytes::new() },
        };
        for (k, v) in headers {
            if k != http::header::CONTENT_LENGTH && k != http::header::HOST && k != "x-amz-target" {
                req.headers_mut().append(k.clone(), v.clone());
            }
        }
        if let Ok(t) = http::HeaderValue::from_str(&format!("DynamoDB_20120810.{op}")) {
            req.headers_mut().insert("x-amz-target", t);
        }
        match self.client.request(req).await {
            Ok(r) => {
                let (parts, body) = r.into_parts();
                let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                Answer { status: parts.status.as_u16(), headers: parts.headers, body }
            }
            Err(e) => Answer {
                status: 502,
                headers: http::HeaderMap::new(),
                body: Bytes::from(format!("dynamodb semantics layer: upstream failed: {e}")),
            },
        }
    }

    async fn forward(&self, call: &Call) -> Answer {
        self.send(&call.headers, &call.op, Bytes::from(call.body.to_string())).await
    }

    async fn schema(&self, headers: &http::HeaderMap, table: &str) -> Option<Schema> {
        if let Some(s) = self.shared.state().schemas.get(table) {
            return Some(s.clone());
        }
        let a = self.send(headers, "DescribeTable", Bytes::from(json!({ "TableName": table }).to_string())).await;
        let schema = Schema::from_description(a.json().get("Table")?)?;
        self.shared.state().schemas.insert(table.to_owned(), schema.clone());
        Some(schema)
    }

    /// The current item under `key` (`key_attrs` is its `Key` map), from what the layer knows
    /// or with a strongly consistent read upstream (not charged).
    async fn image(&self, headers: &http::HeaderMap, key: &ItemKey, key_attrs: &Item) -> Option<Item> {
        if let Some(known) = self.shared.state().images.get(key) {
            return known.clone();
        }
        let req = json!({ "TableName": key.table, "Key": key_attrs, "ConsistentRead": true });
        let a = self.send(headers, "GetItem", Bytes::from(req.to_string())).await;
        if !a.ok() {
            return None;
        }
        let item = a.json().get("Item").and_then(Value::as_object).cloned();
        self.shared.state().images.insert(key.clone(), item.clone());
        item
    }
}

async fn handle(ctx: &Ctx, req: hyper::Request<Incoming>) -> Response {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let op = target.rsplit('.').next().unwrap_or(target).to_owned();
    ctx.shared.state().operations.push(op.clone());
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return ctx.send(&parts.headers, &op, body).await.into_response();
    };
    let call = Call { headers: parts.headers, op, body: json, rules: ctx.shared.rules() };
    let recording = ctx.shared.state().recording;
    if recording {
        let accesses = accesses(ctx, &call).await;
        let mut s = ctx.shared.state();
        if s.accesses.len() < MAX_EVENTS {
            s.accesses.extend(accesses);
        }
    }
    if call.rules.validation
        && let Some(message) = validate(ctx, &call).await
    {
        ctx.shared.state().event(Event::Invalid { operation: call.op.clone(), message: message.clone() });
        return error("ValidationException", &message);
    }
    match call.op.as_str() {
        "TransactWriteItems" => transact_write(ctx, &call).await,
        "PutItem" | "UpdateItem" | "DeleteItem" => single_write(ctx, &call).await,
        "BatchWriteItem" => batch_write(ctx, &call).await,
        "TransactGetItems" => transact_get(ctx, &call).await,
        "GetItem" | "Query" | "BatchGetItem" => read(ctx, &call).await,
        "DeleteTable" => {
            let a = ctx.forward(&call).await;
            if let Some(t) = call.body.get("TableName").and_then(Value::as_str) {
                let mut s = ctx.shared.state();
                s.schemas.remove(t);
                s.images.retain(|k, _| k.table != t);
            }
            a.into_response()
        }
        _ => ctx.forward(&call).await.into_response(),
    }
}

/// What `call` reaches (see [`Access`]).
async fn accesses(ctx: &Ctx, call: &Call) -> Vec<Access> {
    let body = &call.body;
    // (action, table, index, key or item): every item or partition the request names.
    let mut reached: Vec<(String, String, Option<String>, Item)> = Vec::new();
    let table = |a: &Value| a.get("TableName").and_then(Value::as_str).unwrap_or("").to_owned();
    match call.op.as_str() {
        "GetItem" | "UpdateItem" | "DeleteItem" => {
            reached.push((call.op.clone(), table(body), None, obj(body.get("Key"))));
        }
        "PutItem" => reached.push((call.op.clone(), table(body), None, obj(body.get("Item")))),
        "Query" => {
            let index = body.get("IndexName").and_then(Value::as_str).map(str::to_owned);
            reached.push((call.op.clone(), table(body), index, Item::new()));
        }
        "BatchGetItem" | "BatchWriteItem" => {
            for (t, a) in body.get("RequestItems").and_then(Value::as_object).into_iter().flatten() {
                let requests: Vec<&Value> = match a.get("Keys").and_then(Value::as_array) {
                    Some(keys) => keys.iter().collect(),
                    None => a.as_array().into_iter().flatten().collect(),
                };
                for r in requests {
                    let key = match (r.get("PutRequest"), r.get("DeleteRequest")) {
                        (Some(p), _) => p.get("Item"),
                        (_, Some(d)) => d.get("Key"),
                        _ => Some(r),
                    };
                    reached.push((call.op.clone(), t.clone(), None, obj(key)));
                }
            }
        }
        "TransactWriteItems" | "TransactGetItems" => {
            for t in body.get("TransactItems").and_then(Value::as_array).into_iter().flatten() {
                let Some((verb, a)) = t.as_object().and_then(|o| o.iter().next()) else { continue };
                let action = match verb.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => other,
                };
                let key = if verb == "Put" { a.get("Item") } else { a.get("Key") };
                reached.push((action.to_owned(), table(a), None, obj(key)));
            }
        }
        _ => {}
    }
    let mut out = Vec::new();
    let mut schemas: HashMap<String, Option<Schema>> = HashMap::new();
    for (action, table, index, key) in reached {
        if !schemas.contains_key(&table) {
            schemas.insert(table.clone(), ctx.schema(&call.headers, &table).await);
        }
        let Some(Some(schema)) = schemas.get(&table) else { continue };
        let leading_key = if action == "Query" {
            let hash = match &index {
                Some(i) => schema.index(i).map(|ix| ix.hash.clone()),
                None => Some(schema.hash.clone()),
            };
            let kc = body.get("KeyConditionExpression").and_then(Value::as_str).unwrap_or("");
            let values = values_of(body);
            key_condition_operands(kc, &names_of(body))
                .into_iter()
                .find(|(attr, _)| Some(attr) == hash.as_ref())
                .and_then(|(_, placeholder)| values.get(&placeholder).and_then(scalar).map(str::to_owned))
        } else {
            key.get(&schema.hash).and_then(scalar).map(str::to_owned)
        };
        out.push(Access { action, index, leading_key: leading_key.unwrap_or_default() });
    }
    out
}

fn names_of(action: &Value) -> HashMap<String, String> {
    action
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

fn values_of(action: &Value) -> HashMap<String, Value> {
    action
        .get("ExpressionAttributeValues")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn obj(v: Option<&Value>) -> Item {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

/// The actions of a request that carry expressions, each with its table.
fn actions_of(call: &Call) -> Vec<(String, &Value)> {
    let table = |a: &Value| a.get("TableName").and_then(Value::as_str).unwrap_or("").to_owned();
    match call.op.as_str() {
        "TransactWriteItems" | "TransactGetItems" => call
            .body
            .get("TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_object()?.values().next())
            .map(|a| (table(a), a))
            .collect(),
        "BatchGetItem" => call
            .body
            .get("RequestItems")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(t, a)| (t.clone(), a))
            .collect(),
        _ => vec![(table(&call.body), &call.body)],
    }
}

fn key_too_large(schema: &Schema, item: &Item) -> Option<String> {
    let size = |name: &str| item.get(name).and_then(scalar).map(str::len);
    let hashes = std::iter::once(&schema.hash).chain(schema.indexes.iter().map(|i| &i.hash));
    let ranges = schema.range.iter().chain(schema.indexes.iter().filter_map(|i| i.range.as_ref()));
    if hashes.into_iter().any(|h| size(h).is_some_and(|s| s > MAX_HASH_KEY_BYTES)) {
        return Some(format!(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of{MAX_HASH_KEY_BYTES} bytes"
        ));
    }
    if ranges.into_iter().any(|r| size(r).is_some_and(|s| s > MAX_RANGE_KEY_BYTES)) {
        return Some(format!(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of {MAX_RANGE_KEY_BYTES} bytes"
        ));
    }
    None
}

/// DynamoDB's request validation that moto skips.
async fn validate(ctx: &Ctx, call: &Call) -> Option<String> {
    for (table, action) in actions_of(call) {
        if let Some(m) = unused_placeholders(action) {
            return Some(m);
        }
        if call.op == "Query"
            && let Some(kc) = action.get("KeyConditionExpression").and_then(Value::as_str)
            && let Some(schema) = ctx.schema(&call.headers, &table).await
        {
            let (hash, range) = match action.get("IndexName").and_then(Value::as_str) {
                Some(i) => match schema.index(i) {
                    Some(ix) => (ix.hash.clone(), ix.range.clone()),
                    None => continue,
                },
                None => (schema.hash.clone(), schema.range.clone()),
            };
            let values = values_of(action);
            for (attr, placeholder) in key_condition_operands(kc, &names_of(action)) {
                let len = values.get(&placeholder).and_then(scalar).map_or(0, str::len);
                if attr == hash && len > MAX_HASH_KEY_BYTES {
                    return Some(format!(
                        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of{MAX_HASH_KEY_BYTES} bytes"
                    ));
                }
                if range.as_deref() == Some(attr.as_str()) && len > MAX_RANGE_KEY_BYTES {
                    return Some(format!(
                        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of {MAX_RANGE_KEY_BYTES} bytes"
                    ));
                }
            }
        }
        let key_or_item = action.get("Item").or_else(|| action.get("Key"));
        if let Some(item) = key_or_item.and_then(Value::as_object)
            && let Some(schema) = ctx.schema(&call.headers, &table).await
            && let Some(m) = key_too_large(&schema, item)
        {
            return Some(m);
        }
    }
    None
}

/// One write of a transaction or of a single-item request.
struct Write {
    key: ItemKey,
    key_attrs: Item,
    kind: WriteKind,
}

async fn write_of(ctx: &Ctx, headers: &http::HeaderMap, verb: &str, action: &Value) -> Option<Write> {
    let table = action.get("TableName").and_then(Value::as_str)?;
    let schema = ctx.schema(headers, table).await?;
    let (key_attrs, kind) = match verb {
        "Put" | "PutItem" | "PutRequest" => {
            let item = obj(action.get("Item"));
            (schema.key_attributes(&item), WriteKind::Put(item))
        }
        "Update" | "UpdateItem" => {
            let expr = action.get("UpdateExpression").and_then(Value::as_str).unwrap_or("");
            let actions = update_actions(expr, &names_of(action), &values_of(action));
            (obj(action.get("Key")), WriteKind::Update(actions))
        }
        "Delete" | "DeleteItem" | "DeleteRequest" => (obj(action.get("Key")), WriteKind::Delete),
        "ConditionCheck" => (obj(action.get("Key")), WriteKind::Check),
        _ => return None,
    };
    let key = schema.key_of(table, &key_attrs)?;
    Some(Write { key, key_attrs, kind })
}

/// Registers items as in flight; unregisters them when dropped.
struct InFlight<'a> {
    shared: &'a Shared,
    keys: Vec<ItemKey>,
    transaction: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = self.shared.state();
        let map = if self.transaction { &mut s.transaction_items } else { &mut s.written_items };
        for k in &self.keys {
            if let Some(n) = map.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(k);
                }
            }
        }
    }
}

/// Checks `keys` against in-flight transactions (and, for reads of a transaction, in-flight
/// writes); registers them when free. Returns the positions that conflict.
fn enter<'a>(
    shared: &'a Shared,
    op: &str,
    keys: &[ItemKey],
    transaction: bool,
    check_writes: bool,
    conflicts: bool,
) -> Result<InFlight<'a>, Vec<usize>> {
    let mut s = shared.state();
    if conflicts {
        let busy: Vec<usize> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| s.transaction_items.contains_key(k) || (check_writes && s.written_items.contains_key(k)))
            .map(|(i, _)| i)
            .collect();
        if !busy.is_empty() {
            for &i in &busy {
                if let Some(k) = keys.get(i) {
                    s.event(Event::Conflict { operation: op.to_owned(), item: k.clone() });
                }
            }
            return Err(busy);
        }
    }
    let map = if transaction { &mut s.transaction_items } else { &mut s.written_items };
    for k in keys {
        *map.entry(k.clone()).or_default() += 1;
    }
    Ok(InFlight { shared, keys: keys.to_vec(), transaction })
}

/// Takes the write units of `plans` from their partitions' buckets, all or nothing. Returns
/// the indexes of the plans that hit a partition without enough units.
fn take_write_units(
    shared: &Shared,
    op: &str,
    plans: &[&WritePlan],
    limits: Option<Throughput>,
) -> Result<(), Vec<usize>> {
    let mut s = shared.state();
    let totals = per_partition(plans.iter().flat_map(|p| p.units.iter().cloned()));
    if let Some(limits) = limits {
        let rate = limits.write_units_per_second;
        let mut short = HashSet::new();
        for (p, units) in &totals {
            let bucket = s.write_buckets.entry(p.clone()).or_insert_with(|| Bucket::full(rate));
            let mut probe = *bucket;
            if !probe.take(rate, *units) {
                short.insert(p.clone());
            }
        }
        if !short.is_empty() {
            let mut hit = Vec::new();
            for (i, plan) in plans.iter().enumerate() {
                for (p, units) in &plan.units {
                    if short.contains(p) {
                        s.event(Event::Throttled { operation: op.to_owned(), partition: p.clone(), needed: *units });
                        hit.push(i);
                    }
                }
            }
            hit.dedup();
            return Err(hit);
        }
        for (p, units) in &totals {
            if let Some(b) = s.write_buckets.get_mut(p) {
                b.take(rate, *units);
            }
        }
    }
    for (p, units) in totals {
        s.consumed.entry(p).or_default().write += units;
    }
    Ok(())
}

fn size_error(plans: &[&WritePlan], writes: &[&Write]) -> Option<&'static str> {
    for (plan, w) in plans.iter().zip(writes) {
        if plan.new_size() > MAX_ITEM_BYTES {
            return Some(match w.kind {
                WriteKind::Update(_) => "Item size to update has exceeded the maximum allowed size",
                _ => "Item size has exceeded the maximum allowed size",
            });
        }
    }
    None
}

/// Why planned writes were refused.
enum Refusal {
    Invalid(&'static str),
    /// The writes (by index) that hit a partition without enough units.
    Throttled(Vec<usize>),
}

/// The item-size and throughput rules for planned writes; takes their units when admitted.
fn admit(shared: &Shared, call: &Call, writes: &[&Write], plans: &[WritePlan]) -> Result<(), Refusal> {
    let plan_refs: Vec<&WritePlan> = plans.iter().collect();
    if call.rules.item_size_limit
        && let Some(m) = size_error(&plan_refs, writes)
    {
        shared.state().event(Event::Invalid { operation: call.op.clone(), message: m.into() });
        return Err(Refusal::Invalid(m));
    }
    take_write_units(shared, &call.op, &plan_refs, call.rules.throughput).map_err(Refusal::Throttled)
}

/// Plans the writes (reading the current items when a rule needs them).
async fn plan(ctx: &Ctx, call: &Call, writes: &[&Write], transactional: bool) -> Vec<WritePlan> {
    let mut plans = Vec::new();
    for w in writes {
        let before =
            if call.rules.tracks_items() { ctx.image(&call.headers, &w.key, &w.key_attrs).await } else { None };
        let schema = ctx.schema(&call.headers, &w.key.table).await;
        match schema {
            Some(schema) => {
                plans.push(plan_write(&schema, &w.key, &w.key_attrs, before.as_ref(), &w.kind, transactional))
            }
            None => plans.push(WritePlan { units: vec![], after: None, exact: false }),
        }
    }
    plans
}

/// Records what the layer now knows of the items a successful write touched.
fn remember(shared: &Shared, call: &Call, writes: &[&Write], plans: &[WritePlan]) {
    let images_known = call.rules.tracks_items();
    let mut s = shared.state();
    for (w, p) in writes.iter().zip(plans) {
        if matches!(w.kind, WriteKind::Check) {
            continue;
        }
        if images_known && p.exact {
            s.images.insert(w.key.clone(), p.after.clone());
        } else {
            s.images.remove(&w.key);
        }
    }
}

async fn transact_write(ctx: &Ctx, call: &Call) -> Response {
    let items: Vec<(String, Value)> = call
        .body
        .get("TransactItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_object()?.iter().next().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    let mut writes = Vec::new();
    for (verb, action) in &items {
        match write_of(ctx, &call.headers, verb, action).await {
            Some(w) => writes.push(w),
            None => return ctx.forward(call).await.into_response(),
        }
    }
    let keys: Vec<ItemKey> = writes.iter().map(|w| w.key.clone()).collect();
    let _flight = match enter(&ctx.shared, &call.op, &keys, true, false, call.rules.conflicts) {
        Ok(f) => f,
        Err(busy) => {
            tokio::time::sleep(call.rules.single_latency).await;
            return cancelled_at(keys.len(), &busy, "TransactionConflict");
        }
    };
    let refs: Vec<&Write> = writes.iter().collect();
    let plans = plan(ctx, call, &refs, true).await;
    match admit(&ctx.shared, call, &refs, &plans) {
        Ok(()) => {}
        Err(Refusal::Invalid(m)) => return error("ValidationException", m),
        Err(Refusal::Throttled(hit)) => {
            tokio::time::sleep(call.rules.single_latency).await;
            return cancelled_at(keys.len(), &hit, "ThrottlingError");
        }
    }
    tokio::time::sleep(call.rules.transaction_latency).await;
    let answer = ctx.forward(call).await;
    if answer.ok() {
        remember(&ctx.shared, call, &refs, &plans);
    }
    answer.into_response()
}

async fn single_write(ctx: &Ctx, call: &Call) -> Response {
    let Some(w) = write_of(ctx, &call.headers, &call.op, &call.body).await else {
        return ctx.forward(call).await.into_response();
    };
    let _flight = match enter(&ctx.shared, &call.op, std::slice::from_ref(&w.key), false, false, call.rules.conflicts) {
        Ok(f) => f,
        Err(_) => {
            tokio::time::sleep(call.rules.single_latency).await;
            return error("TransactionConflictException", CONFLICT_MESSAGE);
        }
    };
    let refs = [&w];
    let plans = plan(ctx, call, &refs, false).await;
    match admit(&ctx.shared, call, &refs, &plans) {
        Ok(()) => {}
        Err(Refusal::Invalid(m)) => return error("ValidationException", m),
        Err(Refusal::Throttled(_)) => {
            tokio::time::sleep(call.rules.single_latency).await;
            return error("ProvisionedThroughputExceededException", THROTTLE_MESSAGE);
        }
    }
    tokio::time::sleep(call.rules.single_latency).await;
    let answer = ctx.forward(call).await;
    if answer.ok() {
        remember(&ctx.shared, call, &refs, &plans);
    } else if answer.status == 400 {
        // A failed condition writes nothing; anything else: forget what we knew.
        let failed_condition = answer
            .json()
            .get("__type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("ConditionalCheckFailedException"));
        if !failed_condition {
            ctx.shared.state().images.remove(&w.key);
        }
    }
    answer.into_response()
}

async fn batch_write(ctx: &Ctx, call: &Call) -> Response {
    let Some(tables) = call.body.get("RequestItems").and_then(Value::as_object) else {
        return ctx.forward(call).await.into_response();
    };
    let mut forward: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut unprocessed: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut flights = Vec::new();
    let mut done: Vec<(Write, WritePlan)> = Vec::new();
    for (table, requests) in tables {
        for r in requests.as_array().into_iter().flatten() {
            let Some((verb, body)) = r.as_object().and_then(|o| o.iter().next()) else { continue };
            let mut action = body.clone();
            if let Some(o) = action.as_object_mut() {
                o.insert("TableName".into(), json!(table));
            }
            let Some(w) = write_of(ctx, &call.headers, verb, &action).await else {
                forward.entry(table.clone()).or_default().push(r.clone());
                continue;
            };
            let flight = enter(&ctx.shared, &call.op, std::slice::from_ref(&w.key), false, false, call.rules.conflicts);
            let Ok(flight) = flight else {
                unprocessed.entry(table.clone()).or_default().push(r.clone());
                continue;
            };
            let plans = plan(ctx, call, &[&w], false).await;
            let Some(p) = plans.into_iter().next() else { continue };
            if take_write_units(&ctx.shared, &call.op, &[&p], call.rules.throughput).is_err() {
                unprocessed.entry(table.clone()).or_default().push(r.clone());
                continue;
            }
            flights.push(flight);
            forward.entry(table.clone()).or_default().push(r.clone());
            done.push((w, p));
        }
    }
    tokio::time::sleep(call.rules.multi_latency).await;
    if forward.is_empty() && !unprocessed.is_empty() {
        return error("ProvisionedThroughputExceededException", THROTTLE_MESSAGE);
    }
    let mut body = call.body.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("RequestItems".into(), json!(forward));
    }
    let answer = ctx.send(&call.headers, &call.op, Bytes::from(body.to_string())).await;
    drop(flights);
    if !answer.ok() {
        return answer.into_response();
    }
    let mut out = answer.json();
    let upstream_unprocessed = out.get("UnprocessedItems").and_then(Value::as_object).cloned().unwrap_or_default();
    {
        let writes: Vec<&Write> = done.iter().map(|(w, _)| w).collect();
        let plans: Vec<WritePlan> = done.iter().map(|(_, p)| p.clone()).collect();
        if upstream_unprocessed.is_empty() {
            remember(&ctx.shared, call, &writes, &plans);
        } else {
            let mut s = ctx.shared.state();
            for w in writes {
                s.images.remove(&w.key);
            }
        }
    }
    for (t, items) in upstream_unprocessed {
        unprocessed.entry(t).or_default().extend(items.as_array().cloned().unwrap_or_default());
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("UnprocessedItems".into(), json!(unprocessed));
    }
    json_response(200, &out)
}

async fn transact_get(ctx: &Ctx, call: &Call) -> Response {
    let mut keys = Vec::new();
    for (table, action) in actions_of(call) {
        let Some(schema) = ctx.schema(&call.headers, &table).await else {
            return ctx.forward(call).await.into_response();
        };
        let Some(k) = schema.key_of(&table, &obj(action.get("Key"))) else {
            return ctx.forward(call).await.into_response();
        };
        keys.push(k);
    }
    let _flight = match enter(&ctx.shared, &call.op, &keys, true, true, call.rules.conflicts) {
        Ok(f) => f,
        Err(busy) => {
            tokio::time::sleep(call.rules.single_latency).await;
            return cancelled_at(keys.len(), &busy, "TransactionConflict");
        }
    };
    tokio::time::sleep(call.rules.transaction_latency).await;
    let answer = ctx.forward(call).await;
    if answer.ok() {
        let j = answer.json();
        let sizes = j.get("Responses").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut units = Vec::new();
        for (k, r) in keys.iter().zip(sizes.iter()) {
            let size = r.get("Item").and_then(Value::as_object).map_or(0, item_size);
            units.push((
                Partition { table: k.table.clone(), index: None, key: k.pk.clone() },
                read_units(size, true, true),
            ));
        }
        charge_reads(&ctx.shared, units, call.rules.throughput);
    }
    answer.into_response()
}

/// The partitions a read touches: `(partition, consistent)`.
async fn read_partitions(ctx: &Ctx, call: &Call) -> Vec<(Partition, bool)> {
    let mut out = Vec::new();
    for (table, action) in actions_of(call) {
        let Some(schema) = ctx.schema(&call.headers, &table).await else { continue };
        let consistent = action.get("ConsistentRead").and_then(Value::as_bool).unwrap_or(false);
        match call.op.as_str() {
            "GetItem" => {
                if let Some(k) = schema.key_of(&table, &obj(action.get("Key"))) {
                    out.push((Partition { table, index: None, key: k.pk }, consistent));
                }
            }
            "BatchGetItem" => {
                for key in action.get("Keys").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(k) = key.as_object().and_then(|k| schema.key_of(&table, k)) {
                        out.push((Partition { table: table.clone(), index: None, key: k.pk }, consistent));
                    }
                }
            }
            _ => {
                let index = action.get("IndexName").and_then(Value::as_str).map(str::to_owned);
                let hash = match &index {
                    Some(i) => schema.index(i).map(|ix| ix.hash.clone()),
                    None => Some(schema.hash.clone()),
                };
                let values = values_of(action);
                let kc = action.get("KeyConditionExpression").and_then(Value::as_str).unwrap_or("");
                let key = key_condition_operands(kc, &names_of(action))
                    .into_iter()
                    .find(|(a, _)| Some(a) == hash.as_ref())
                    .and_then(|(_, v)| values.get(&v).and_then(scalar).map(str::to_owned));
                if let Some(key) = key {
                    out.push((Partition { table, index, key }, consistent));
                }
            }
        }
    }
    out
}

fn charge_reads(shared: &Shared, units: Vec<(Partition, f64)>, limits: Option<Throughput>) {
    let mut s = shared.state();
    for (p, u) in units {
        if let Some(l) = limits {
            let rate = l.read_units_per_second;
            s.read_buckets.entry(p.clone()).or_insert_with(|| Bucket::full(rate)).charge(rate, u);
        }
        s.consumed.entry(p).or_default().read += u;
    }
}

/// Size counted for each item a `Select=COUNT` query evaluates (the answer carries no items).
const COUNTED_ITEM_BYTES: usize = 128;

async fn read(ctx: &Ctx, call: &Call) -> Response {
    let partitions = read_partitions(ctx, call).await;
    let dry = call.rules.throughput.and_then(|limits| {
        let rate = limits.read_units_per_second;
        let mut s = ctx.shared.state();
        let dry = partitions
            .iter()
            .find(|(p, _)| !s.read_buckets.entry(p.clone()).or_insert_with(|| Bucket::full(rate)).has_some(rate))
            .map(|(p, _)| p.clone())?;
        s.event(Event::Throttled { operation: call.op.clone(), partition: dry.clone(), needed: 0.5 });
        Some(dry)
    });
    if dry.is_some() {
        tokio::time::sleep(call.rules.single_latency).await;
        return error("ProvisionedThroughputExceededException", THROTTLE_MESSAGE);
    }
    let latency = if call.op == "GetItem" { call.rules.single_latency } else { call.rules.multi_latency };
    tokio::time::sleep(latency).await;
    let answer = ctx.forward(call).await;
    if !answer.ok() {
        return answer.into_response();
    }
    let j = answer.json();
    let mut units = Vec::new();
    match call.op.as_str() {
        "GetItem" => {
            let item = j.get("Item").and_then(Value::as_object);
            if let Some((p, consistent)) = partitions.first() {
                units.push((p.clone(), read_units(item.map_or(0, item_size), *consistent, false)));
            }
            // A full, strongly consistent read tells the layer the item's current state.
            let full = call.body.get("ProjectionExpression").is_none() && call.body.get("AttributesToGet").is_none();
            let consistent = call.body.get("ConsistentRead").and_then(Value::as_bool) == Some(true);
            let table = call.body.get("TableName").and_then(Value::as_str).unwrap_or("");
            let schema = ctx.shared.state().schemas.get(table).cloned();
            if full
                && consistent
                && let Some(k) = schema.and_then(|s| s.key_of(table, &obj(call.body.get("Key"))))
            {
                ctx.shared.state().images.insert(k, item.cloned());
            }
        }
        "BatchGetItem" => {
            let mut by_pk: HashMap<(String, String), usize> = HashMap::new();
            for (table, items) in j.get("Responses").and_then(Value::as_object).into_iter().flatten() {
                let schema = ctx.shared.state().schemas.get(table).cloned();
                for item in items.as_array().into_iter().flatten().filter_map(Value::as_object) {
                    if let Some(k) = schema.as_ref().and_then(|s| s.key_of(table, item)) {
                        *by_pk.entry((table.clone(), k.pk)).or_default() += item_size(item);
                    }
                }
            }
            for (p, consistent) in &partitions {
                let size = by_pk.remove(&(p.table.clone(), p.key.clone())).unwrap_or(0);
                units.push((p.clone(), read_units(size, *consistent, false)));
            }
        }
        _ => {
            let size = match j.get("Items").and_then(Value::as_array) {
                Some(items) => items.iter().filter_map(Value::as_object).map(item_size).sum(),
                None => j.get("ScannedCount").and_then(Value::as_u64).unwrap_or(0) as usize * COUNTED_ITEM_BYTES,
            };
            if let Some((p, consistent)) = partitions.first() {
                units.push((p.clone(), read_units(size, *consistent, false)));
            }
        }
    }
    charge_reads(&ctx.shared, units, call.rules.throughput);
    answer.into_response()
}
