//! The DynamoDB-semantics layer in front of moto: each rule of the real service that moto
//! skips, shown firing (and shown to be the layer's: off, moto lets the request through).

use std::time::{Duration, Instant};

use rt_devkit::semantics::{Event, Layer, Rules, Throughput};
use rt_store::aws_sdk_dynamodb::Client;
use rt_store::aws_sdk_dynamodb::config::retry::RetryConfig;
use rt_store::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use rt_store::aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use rt_store::aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use rt_store::aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Get, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TransactGetItem, TransactWriteItem, Update,
};
use rt_tests::moto_endpoint;

/// A client without SDK retries, so that every refusal is seen.
fn client(layer: &Layer) -> Client {
    let conf = rt_store::aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(layer.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A table `pk`/`sk` with index `all` (`g1`, ALL) and index `keys` (`g2`, KEYS_ONLY).
async fn table(c: &Client) -> String {
    let name = rt_tests::unique_table();
    let attr = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().expect("attr")
    };
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().expect("key");
    let gsi = |n: &str, h: &str, p: ProjectionType| {
        GlobalSecondaryIndex::builder()
            .index_name(n)
            .key_schema(key(h, KeyType::Hash))
            .projection(Projection::builder().projection_type(p).build())
            .build()
            .expect("gsi")
    };
    c.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("g1"))
        .attribute_definitions(attr("g2"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(gsi("all", "g1", ProjectionType::All))
        .global_secondary_indexes(gsi("keys", "g2", ProjectionType::KeysOnly))
        .send()
        .await
        .expect("create table");
    name
}

fn put(t: &str, pk: &str, sk: &str) -> Put {
    Put::builder().table_name(t).item("pk", s(pk)).item("sk", s(sk)).build().expect("put")
}

fn check(t: &str, pk: &str) -> ConditionCheck {
    ConditionCheck::builder()
        .table_name(t)
        .key("pk", s(pk))
        .key("sk", s("x"))
        .condition_expression("attribute_exists(pk)")
        .build()
        .expect("check")
}

fn update(t: &str, pk: &str) -> Update {
    Update::builder()
        .table_name(t)
        .key("pk", s(pk))
        .key("sk", s("x"))
        .update_expression("SET n = :v")
        .expression_attribute_values(":v", s("1"))
        .build()
        .expect("update")
}

/// `SET <attr> = :v` on item `pk`/`x`, as a request to send.
fn set_attr(
    c: &Client,
    t: &str,
    pk: &str,
    attr: &str,
    v: AttributeValue,
) -> rt_store::aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    c.update_item()
        .table_name(t)
        .key("pk", s(pk))
        .key("sk", s("x"))
        .update_expression(format!("SET {attr} = :v"))
        .expression_attribute_values(":v", v)
}

fn cancellation_codes<R: std::fmt::Debug>(
    e: &rt_store::aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
) -> Vec<String> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
            c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("").to_owned()).collect()
        }
        other => panic!("not a cancellation: {other:?}"),
    }
}

async fn seed(c: &Client, t: &str, pks: &[&str]) {
    for pk in pks {
        c.put_item().table_name(t).item("pk", s(pk)).item("sk", s("x")).send().await.expect("seed");
    }
}

#[tokio::test]
async fn latency_keeps_requests_in_flight_and_transactions_longer() {
    let layer = Layer::start(
        &moto_endpoint(),
        Rules {
            single_latency: Duration::from_millis(40),
            transaction_latency: Duration::from_millis(150),
            ..Rules::none()
        },
    )
    .expect("layer");
    let c = client(&layer);
    let t = table(&c).await;
    seed(&c, &t, &["a"]).await;
    let started = Instant::now();
    c.get_item().table_name(&t).key("pk", s("a")).key("sk", s("x")).send().await.expect("get");
    assert!(started.elapsed() >= Duration::from_millis(40));
    let started = Instant::now();
    c.transact_write_items()
        .transact_items(TransactWriteItem::builder().update(update(&t, "a")).build())
        .send()
        .await
        .expect("transaction");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn transactions_conflict_on_any_shared_item_and_single_writes_on_items_in_a_transaction() {
    let rules = Rules { conflicts: true, transaction_latency: Duration::from_millis(400), ..Rules::none() };
    let layer = Layer::start(&moto_endpoint(), rules.clone()).expect("layer");
    let c = client(&layer);
    let t = table(&c).await;
    seed(&c, &t, &["a", "b"]).await;

    // In flight for 400 ms: an update of `a` and a condition check of `b`.
    let first = {
        let (c, t) = (c.clone(), t.clone());
        tokio::spawn(async move {
            c.transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update(&t, "a")).build())
                .transact_items(TransactWriteItem::builder().condition_check(check(&t, "b")).build())
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Another transaction that only condition-checks `b`: cancelled at that position.
    let e = c
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put(&t, "c", "x")).build())
        .transact_items(TransactWriteItem::builder().condition_check(check(&t, "b")).build())
        .send()
        .await
        .expect_err("conflict");
    assert_eq!(cancellation_codes(&e), ["None", "TransactionConflict"]);

    // A single-item write of `a`: TransactionConflictException. Of another item: fine.
    let e = set_attr(&c, &t, "a", "m", s("2")).send().await.expect_err("conflict");
    assert_eq!(e.code(), Some("TransactionConflictException"));
    c.put_item().table_name(&t).item("pk", s("d")).item("sk", s("x")).send().await.expect("unrelated write");

    // A read transaction of `a`: cancelled too. A plain read: served.
    let e = c
        .transact_get_items()
        .transact_items(
            TransactGetItem::builder()
                .get(Get::builder().table_name(&t).key("pk", s("a")).key("sk", s("x")).build().expect("get"))
                .build(),
        )
        .send()
        .await
        .expect_err("conflict");
    assert_eq!(e.code(), Some("TransactionCanceledException"));
    c.get_item().table_name(&t).key("pk", s("a")).key("sk", s("x")).send().await.expect("plain read");

    first.await.expect("task").expect("the first transaction commits");
    let conflicts: Vec<String> = layer
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Conflict { item, .. } => Some(item.pk.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(conflicts, ["b", "a", "a"]);

    // Once it is over, the same requests go through; and with the rule off they never conflict.
    set_attr(&c, &t, "a", "m", s("2")).send().await.expect("after the transaction");
    layer.set_rules(Rules { conflicts: false, ..rules });
    let first = {
        let (c, t) = (c.clone(), t.clone());
        tokio::spawn(async move {
            c.transact_write_items()
                .transact_items(TransactWriteItem::builder().condition_check(check(&t, "b")).build())
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.transact_write_items()
        .transact_items(TransactWriteItem::builder().condition_check(check(&t, "b")).build())
        .send()
        .await
        .expect("no conflict rule: moto serves both");
    first.await.expect("task").expect("first");
}

/// Sends `n` writes one after the other; returns (successes, throttled, seconds taken).
async fn hammer<F, Fut, T, E>(n: usize, mut write: F) -> (usize, usize, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    let started = Instant::now();
    let (mut ok, mut throttled) = (0, 0);
    for i in 0..n {
        match write(i).await {
            Ok(_) => ok += 1,
            Err(e) => {
                let text = format!("{e:?}");
                assert!(text.contains("ProvisionedThroughputExceeded") || text.contains("ThrottlingError"), "{text}");
                throttled += 1;
            }
        }
    }
    (ok, throttled, started.elapsed().as_secs_f64())
}

fn throttled_partitions(layer: &Layer) -> Vec<String> {
    let mut v: Vec<String> = layer
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Throttled { partition, .. } => {
                Some(partition.index.clone().unwrap_or_default() + "/" + &partition.key)
            }
            _ => None,
        })
        .collect();
    v.dedup();
    v
}

#[tokio::test]
async fn throughput_is_limited_per_partition_key_of_the_table_and_of_each_index_a_write_reaches() {
    // 10 write units and 2 read units per second per partition key.
    let limits = Throughput { write_units_per_second: 10.0, read_units_per_second: 2.0 };
    let layer = Layer::start(&moto_endpoint(), Rules::none()).expect("layer");
    let c = client(&layer);
    let t = table(&c).await;
    seed(&c, &t, &["r"]).await;
    layer.set_rules(Rules { throughput: Some(limits), ..Rules::none() });
    let within = |ok: usize, secs: f64, per_write: f64| ok as f64 * per_write <= 10.0 + secs * 10.0 + per_write;

    // One table partition (one pk, many sort keys), 1 unit a write.
    let (ok, throttled, secs) =
        hammer(30, |i| c.put_item().table_name(&t).item("pk", s("P")).item("sk", s(&i.to_string())).send()).await;
    assert!(throttled > 0 && within(ok, secs, 1.0), "{ok} ok, {throttled} throttled in {secs} s");
    assert_eq!(throttled_partitions(&layer), ["/P"]);
    c.put_item().table_name(&t).item("pk", s("Q")).item("sk", s("0")).send().await.expect("another partition");

    // In a transaction every item counts twice: at most 5 transactional writes per second.
    layer.reset();
    let (ok, throttled, secs) = hammer(30, |i| {
        c.transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put(&t, "T", &i.to_string())).build())
            .send()
    })
    .await;
    assert!(throttled > 0 && within(ok, secs, 2.0), "{ok} ok, {throttled} throttled in {secs} s");

    // Distinct table partitions sharing an ALL-projected index partition: the index throttles
    // the writes, and later writes of any attribute of those items reach it again.
    layer.reset();
    let (ok, throttled, secs) = hammer(30, |i| {
        c.put_item().table_name(&t).item("pk", s(&format!("u{i}"))).item("sk", s("x")).item("g1", s("G")).send()
    })
    .await;
    assert!(throttled > 0 && within(ok, secs, 1.0), "{ok} ok, {throttled} throttled in {secs} s");
    assert_eq!(throttled_partitions(&layer), ["all/G"]);

    // A KEYS_ONLY index is reached only by writes of key attributes: counters updated on items
    // that share its partition never touch it.
    layer.set_rules(Rules::none());
    for i in 0..5 {
        c.put_item()
            .table_name(&t)
            .item("pk", s(&format!("k{i}")))
            .item("sk", s("x"))
            .item("g2", s("H"))
            .send()
            .await
            .expect("seed");
    }
    layer.set_rules(Rules { throughput: Some(limits), ..Rules::none() });
    layer.reset();
    for round in 0..6 {
        for i in 0..5 {
            set_attr(&c, &t, &format!("k{i}"), "n", AttributeValue::N(round.to_string()))
                .send()
                .await
                .expect("counter update");
        }
    }
    assert!(layer.consumed().iter().all(|(p, _)| p.index.is_none()), "{:?}", layer.consumed());
    set_attr(&c, &t, "k0", "g2", s("H2")).send().await.expect("key update");
    let keys: Vec<String> = layer
        .consumed()
        .iter()
        .filter(|(p, _)| p.index.as_deref() == Some("keys"))
        .map(|(p, _)| p.key.clone())
        .collect();
    assert_eq!(keys.len(), 2, "moving an entry writes the old and the new partition: {keys:?}");

    // Reads: strongly consistent reads of one partition, 1 unit each, 2 per second.
    layer.reset();
    let started = Instant::now();
    let mut ok = 0;
    let mut refused = 0;
    for _ in 0..10 {
        match c.get_item().table_name(&t).key("pk", s("r")).key("sk", s("x")).consistent_read(true).send().await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("ProvisionedThroughputExceededException"));
                refused += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(refused > 0 && ok as f64 <= 2.0 + secs * 2.0 + 1.0, "{ok} reads, {refused} refused in {secs} s");
}

#[tokio::test]
async fn unused_placeholders_and_oversized_key_operands_are_validation_errors() {
    let layer = Layer::start(&moto_endpoint(), Rules { validation: true, ..Rules::none() }).expect("layer");
    let c = client(&layer);
    let t = table(&c).await;
    seed(&c, &t, &["a"]).await;

    // (moto checks this for UpdateItem only; DynamoDB for every request.)
    let unused_value = || {
        c.put_item()
            .table_name(&t)
            .item("pk", s("a"))
            .item("sk", s("x"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":unused", s("2"))
    };
    let e = unused_value().send().await.expect_err("unused value");
    assert_eq!(e.code(), Some("ValidationException"));
    assert!(e.message().unwrap_or("").contains(":unused"), "{:?}", e.message());

    let e = set_attr(&c, &t, "a", "n", s("1"))
        .expression_attribute_names("#gone", "g")
        .send()
        .await
        .expect_err("unused name");
    assert_eq!(e.code(), Some("ValidationException"));

    // Inside a transaction, each action is checked.
    let bad = Update::builder()
        .table_name(&t)
        .key("pk", s("a"))
        .key("sk", s("x"))
        .update_expression("SET n = :v")
        .expression_attribute_values(":v", s("1"))
        .expression_attribute_values(":w", s("1"))
        .build()
        .expect("update");
    let e = c.transact_write_items().transact_items(TransactWriteItem::builder().update(bad).build()).send().await;
    assert_eq!(e.expect_err("unused in a transaction").code(), Some("ValidationException"));

    // A sort-key operand over 1 KiB in a key condition.
    let prefix_query = |len: usize| {
        c.query()
            .table_name(&t)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", s("a"))
            .expression_attribute_values(":s", s(&"x".repeat(len)))
            .send()
    };
    let e = prefix_query(1025).await.expect_err("long operand");
    assert_eq!(e.code(), Some("ValidationException"));
    prefix_query(1024).await.expect("1 KiB is allowed");
    let invalid = layer.events().iter().filter(|e| matches!(e, Event::Invalid { .. })).count();
    assert_eq!(invalid, 4);

    // The rule is the layer's: moto alone accepts the unused value.
    layer.set_rules(Rules::none());
    unused_value().send().await.expect("moto does not check unused values");
}

#[tokio::test]
async fn items_over_400_kb_are_refused() {
    let layer = Layer::start(&moto_endpoint(), Rules { item_size_limit: true, ..Rules::none() }).expect("layer");
    let c = client(&layer);
    let t = table(&c).await;
    let item = |size: usize| {
        c.put_item().table_name(&t).item("pk", s("big")).item("sk", s("x")).item("v", s(&"x".repeat(size)))
    };
    item(395_000).send().await.expect("under 400 KB");
    let e = item(400 * 1024 + 1).send().await.expect_err("over 400 KB");
    assert_eq!(e.code(), Some("ValidationException"));
    assert!(e.message().unwrap_or("").contains("maximum allowed size"));
    // An update that would grow the item over the limit.
    let e = set_attr(&c, &t, "big", "w", s(&"y".repeat(20_000))).send().await.expect_err("grows over 400 KB");
    assert_eq!(e.code(), Some("ValidationException"));
    assert_eq!(layer.events().iter().filter(|e| matches!(e, Event::Invalid { .. })).count(), 2, "refused by the layer");
}
