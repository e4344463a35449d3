//! Load on DynamoDB's real concurrency: many users of one application sign in and refresh at
//! once, through the semantics layer with DynamoDB's transaction-conflict rule, 12 ms
//! transactions and per-partition throughput scaled down (×0.05: 50 write and 150 read units
//! per second per partition key) together with the traffic. The application-wide items and
//! index partitions of a design that puts every user's requests through them (a client item
//! in every transaction, an index keyed by application that every exchange rewrites) conflict
//! and throttle here; per-user items and partitions do not.
//!
//! Run alone, with its report: `cargo nextest run -p rt-tests load --no-capture`.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rt_devkit::semantics::{Event, Layer, Rules, Throughput};
use rt_domain::ids::Email;
use rt_domain::ports::UserStore;
use rt_domain::token::RefreshToken;
use rt_store::keys;
use rt_tests::{Options, TestApp, http_client};

const USERS: usize = 40;
const EXCHANGES_PER_USER: usize = 5;
const IN_FLIGHT: usize = 24;
const SCALE: f64 = 0.05;

fn rules(throughput: bool) -> Rules {
    Rules {
        single_latency: Duration::from_millis(4),
        transaction_latency: Duration::from_millis(12),
        multi_latency: Duration::from_millis(6),
        conflicts: true,
        throughput: throughput.then(|| Throughput::scaled(SCALE)),
        validation: true,
        item_size_limit: true,
    }
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    status: u16,
    millis: f64,
}

struct Phase {
    name: &'static str,
    outcomes: Vec<Outcome>,
}

impl Phase {
    fn count(&self, f: impl Fn(u16) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(o.status)).count()
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self.outcomes.iter().map(|o| o.millis).collect();
        v.sort_by(f64::total_cmp);
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied().unwrap_or(0.0)
    }

    fn line(&self) -> String {
        format!(
            "{:<28} {:>5} requests: {:>4} ok, {:>3} × 429, {:>3} × 503, {:>3} other; p50 {:>6.1} ms, p99 {:>6.1} ms",
            self.name,
            self.outcomes.len(),
            self.count(|s| s == 200 || s == 302),
            self.count(|s| s == 429),
            self.count(|s| s == 503),
            self.count(|s| ![200, 302, 429, 503].contains(&s)),
            self.percentile(0.5),
            self.percentile(0.99),
        )
    }
}

/// `USER#…` → `USER`; index partitions are named `<index>:<kind>`.
fn kind(index: Option<&str>, key: &str) -> String {
    let k = key.split('#').next().unwrap_or(key);
    match index {
        Some(i) => format!("{i}:{k}"),
        None => k.to_owned(),
    }
}

/// What the layer saw: conflicts by item kind, throttling by partition kind, hottest partitions.
fn report(layer: &Layer, phases: &[&Phase]) -> String {
    let mut out = String::from("\n");
    for p in phases {
        out.push_str(&p.line());
        out.push('\n');
    }
    let mut conflicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut throttles: BTreeMap<String, usize> = BTreeMap::new();
    for e in layer.events() {
        match e {
            Event::Conflict { item, .. } => *conflicts.entry(kind(None, &item.pk)).or_default() += 1,
            Event::Throttled { partition, .. } => {
                *throttles.entry(kind(partition.index.as_deref(), &partition.key)).or_default() += 1;
            }
            Event::Invalid { .. } => {}
        }
    }
    out.push_str(&format!("conflicts by item kind: {conflicts:?}\n"));
    out.push_str(&format!("throttled requests by partition kind: {throttles:?}\n"));
    // Per kind of application-wide partition: how many, units in all, most units on one.
    let mut shared: BTreeMap<String, (usize, f64, f64, f64)> = BTreeMap::new();
    for (p, c) in layer.consumed() {
        // (and the audit log's feed shards, one of 32 a day per event, and the day's shards of
        // events without a user: shared by design, spread thin)
        let log_shard = p.key.starts_with("LOGS#") || p.key.starts_with("LOG#-");
        if p.key.starts_with("CLIENT") || p.key == keys::ALL_USERS || log_shard {
            let e = shared.entry(kind(p.index.as_deref(), &p.key)).or_default();
            *e = (e.0 + 1, e.1 + c.write, e.2 + c.read, e.3.max(c.write));
        }
    }
    out.push_str("partitions shared by the application's users (partitions, write units, read units, most write units on one):\n");
    for (k, (n, w, r, most)) in shared {
        out.push_str(&format!("  {k:<14} {n:>3} {w:>7.1} {r:>7.1} {most:>7.1}\n"));
    }
    out.push_str("hottest partitions (write units, read units):\n");
    for (p, c) in layer.consumed().iter().take(6) {
        out.push_str(&format!(
            "  {:<14} {:<60} {:>7.1} {:>7.1}\n",
            kind(p.index.as_deref(), &p.key),
            p.key,
            c.write,
            c.read
        ));
    }
    out
}

struct LoadUser {
    email: String,
    password: String,
    addr: IpAddr,
    own: HashSet<String>,
}

async fn timed<F: std::future::Future<Output = (u16, T)>, T>(f: F) -> (Outcome, T) {
    let started = Instant::now();
    let (status, t) = f.await;
    (Outcome { status, millis: started.elapsed().as_secs_f64() * 1000.0 }, t)
}

#[tokio::test]
async fn forty_users_of_one_application_sign_in_and_refresh_at_once_without_a_shared_hot_spot() {
    rt_tests::quiet_logs();
    let app = TestApp::spawn_with(Options { rules: Some(rules(false)), ..Default::default() }).await;
    // The users exist before the measured traffic (creating them hashes 40 passwords).
    let mut users = Vec::new();
    for i in 0..USERS {
        let password = rt_devkit::seed::random_password();
        let email = format!("load-{i}-{}@example.com", rt_domain::random::alphanumeric(6).to_lowercase());
        let user = rt_devkit::seed::user(&email, &password, "Load", false, app.now()).expect("user");
        app.store.create_user(&user).await.expect("create user");
        let own: HashSet<String> = [
            keys::user(&user.id).pk,
            keys::email(&Email::parse(&email).expect("email")).pk,
            keys::credentials_of_user(&user.id),
        ]
        .into();
        let addr: IpAddr = format!("127.0.1.{}", i + 1).parse().expect("addr");
        users.push(LoadUser { email, password, addr, own });
    }
    app.layer.set_rules(rules(true));
    app.layer.reset();

    // Everyone signs in at once, each from an address of their own.
    let sign_ins = join_all(users.iter().map(|u| {
        let app = &app;
        let http = http_client(Some(u.addr));
        let params = app.authorize_params("phone");
        async move {
            timed(async {
                let r = app.login_with(&http, &params, &u.email, &u.password).await;
                (r.resp.status, r.fragment.get("refresh_token").cloned())
            })
            .await
        }
    }))
    .await;
    let sign_in = Phase { name: "sign-in (GET+POST /authorize)", outcomes: sign_ins.iter().map(|(o, _)| *o).collect() };

    // Then each refreshes 5 times, one request after the other; 24 requests in flight overall.
    // (A user whose sign-in failed signs in again, alone and unmeasured, so that the exchange
    // phase always has every user.)
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tokens = Vec::new();
    let mut signed_in_again = 0;
    for (u, (_, rt)) in users.iter_mut().zip(&sign_ins) {
        let rt = match rt {
            Some(rt) => Some(rt.clone()),
            None => {
                signed_in_again += 1;
                let (http, params) = (http_client(Some(u.addr)), app.authorize_params("phone"));
                let r = app.login_with(&http, &params, &u.email, &u.password).await;
                r.fragment.get("refresh_token").cloned()
            }
        };
        if let Some(rt) = rt {
            let id = RefreshToken::parse(&rt).expect("token").id().clone();
            u.own.insert(keys::credential(&id).pk);
            tokens.push((u.addr, rt));
        }
    }
    let exchanges: Vec<Outcome> = join_all(tokens.iter().map(|(addr, rt)| {
        let (slots, http, body) = (slots.clone(), http_client(Some(*addr)), app.delegation_body(rt));
        let app = &app;
        async move {
            let mut outcomes = Vec::new();
            for _ in 0..EXCHANGES_PER_USER {
                let _slot = slots.acquire().await.expect("semaphore");
                let (o, ()) = timed(async { (app.post_delegation_from(&http, &body).await.status, ()) }).await;
                outcomes.push(o);
            }
            outcomes
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    let exchange = Phase { name: "exchange (POST /delegation)", outcomes: exchanges };
    println!("{}", report(&app.layer, &[&sign_in, &exchange]));
    println!("sign-ins repeated one at a time after a failure: {signed_in_again}");

    assert_eq!(sign_in.count(|s| s == 302), USERS, "every sign-in succeeds");
    assert_eq!(signed_in_again, 0, "every sign-in hands out a refresh token");
    assert_eq!(exchange.count(|s| s == 200), USERS * EXCHANGES_PER_USER, "every exchange succeeds");
    let own: HashSet<&String> = users.iter().flat_map(|u| u.own.iter()).collect();
    for e in app.layer.events() {
        match &e {
            Event::Conflict { item, .. } => assert!(own.contains(&item.pk), "conflict on a shared item: {e:?}"),
            Event::Throttled { partition, .. } => {
                assert!(own.contains(&partition.key), "throttled on a shared partition: {e:?}");
            }
            Event::Invalid { .. } => panic!("{e:?}"),
        }
    }
}

#[tokio::test]
async fn one_token_hammered_by_forty_concurrent_requests_lets_exactly_the_limit_through() {
    rt_tests::quiet_logs();
    let app = TestApp::spawn_with(Options { rules: Some(rules(false)), ..Default::default() }).await;
    let rt = app.obtain_refresh_token("phone").await;
    let body = app.delegation_body(&rt);
    app.layer.set_rules(rules(true));
    app.layer.reset();
    let outcomes: Vec<Outcome> =
        join_all((0..40).map(|_| timed(async { (app.post_delegation(&body).await.status, ()) })))
            .await
            .into_iter()
            .map(|(o, ())| o)
            .collect();
    let phase = Phase { name: "one token, 40 at once", outcomes };
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    for o in app.layer.take_operations() {
        *ops.entry(o).or_default() += 1;
    }
    println!("DynamoDB requests: {ops:?}");
    println!("{}", report(&app.layer, &[&phase]));
    assert_eq!(phase.count(|s| s == 200), 10, "exactly the limit gets through");
    assert_eq!(phase.count(|s| s == 429), 30, "the rest are rate limited, none unavailable");
    let uses: u32 = app.credential_items().await[0]["use_count"].as_n().unwrap().parse().unwrap();
    assert_eq!(uses, 10, "no over-count");
}

#[tokio::test]
async fn eight_devices_of_one_user_refreshing_at_once_never_see_a_503() {
    rt_tests::quiet_logs();
    let app = TestApp::spawn_with(Options { rules: Some(rules(false)), ..Default::default() }).await;
    let mut tokens = Vec::new();
    for d in 0..8 {
        tokens.push(app.obtain_refresh_token(&format!("device-{d}")).await);
    }
    app.layer.set_rules(rules(true));
    app.layer.reset();
    // Every device refreshes 5 times in a row, all devices at once: their transactions all
    // check the same user item, so they conflict with each other — on the user's own item.
    let outcomes: Vec<Outcome> = join_all(tokens.iter().map(|rt| {
        let (app, body) = (&app, app.delegation_body(rt));
        async move {
            let mut v = Vec::new();
            for _ in 0..EXCHANGES_PER_USER {
                let (o, ()) = timed(async { (app.post_delegation(&body).await.status, ()) }).await;
                v.push(o);
            }
            v
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    let phase = Phase { name: "one user, 8 devices at once", outcomes };
    println!("{}", report(&app.layer, &[&phase]));
    assert_eq!(phase.count(|s| s == 200), 8 * EXCHANGES_PER_USER, "every refresh succeeds");
    let user = keys::user(&app.user.user.id).pk;
    for e in app.layer.events() {
        if let Event::Conflict { item, .. } = &e {
            assert!(item.pk == user || item.pk.starts_with("DCR#"), "conflict on a shared item: {e:?}");
        }
    }
}

#[tokio::test]
async fn contention_that_outlasts_the_retry_budget_is_a_503_with_retry_after() {
    rt_tests::quiet_logs();
    let app = TestApp::spawn_with(Options { rules: Some(rules(false)), ..Default::default() }).await;
    let phone = app.obtain_refresh_token("phone").await;
    let tablet = app.obtain_refresh_token("tablet").await;
    // One exchange holds the user's item in flight for longer than the retry budget.
    let hold = rt_store::retry::CONTENTION_BUDGET + Duration::from_millis(1000);
    app.layer.set_rules(Rules { transaction_latency: hold, ..rules(false) });
    let phone_body = app.delegation_body(&phone);
    let slow = app.post_delegation(&phone_body);
    let other = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.post_delegation(&app.delegation_body(&tablet)).await
    };
    let (slow, other) = tokio::join!(slow, other);
    assert_eq!(slow.status, 200, "{}", slow.body);
    assert_eq!(other.status, 503, "the other device gave up after its budget: {}", other.body);
    assert_eq!(other.json()["error"], "temporarily_unavailable");
    assert!(other.header("retry-after").is_some());
    let conflicts = app.layer.events().iter().filter(|e| matches!(e, Event::Conflict { .. })).count();
    assert!(conflicts > 3, "it retried ({conflicts} conflicts) before giving up");
}
