//! The /delegation rate limit: per (refresh token, source address), conditional-write counters.

use futures::future::join_all;
use rt_tests::{Options, TestApp, addr, http_client};

fn statuses(rs: &[rt_tests::Resp]) -> (usize, usize) {
    (rs.iter().filter(|r| r.status == 200).count(), rs.iter().filter(|r| r.status == 429).count())
}

#[tokio::test]
async fn exactly_the_limit_succeeds_under_concurrency_per_address_and_the_window_resets() {
    let app = TestApp::spawn().await; // default: 10 per 60 s
    let rt = app.obtain_refresh_token("my-device").await;
    let body = app.delegation_body(&rt);

    // 25 at once from 127.0.0.1: exactly 10 get through.
    let first = join_all((0..25).map(|_| app.post_delegation(&body))).await;
    assert_eq!(statuses(&first), (10, 15), "{:?}", first.iter().map(|r| r.status).collect::<Vec<_>>());
    let refused = first.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(refused.json()["error"], "too_many_requests");
    assert_eq!(refused.header("x-ratelimit-limit"), Some("10"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    let reset: i64 = refused.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let retry: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    let now = app.now().secs();
    assert!(reset > now && reset <= now + 60, "reset {reset} now {now}");
    assert!((1..=60).contains(&retry));
    let mut remaining: Vec<u32> = first
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.header("x-ratelimit-remaining").unwrap().parse().unwrap())
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>(), "each success reports its own count");

    // Another address with the same token is counted separately.
    let second_ip = http_client(Some(addr("127.0.0.2")));
    let second = join_all((0..12).map(|_| app.post_delegation_from(&second_ip, &body))).await;
    assert_eq!(statuses(&second), (10, 2));

    // A new window: allowed again.
    app.clock.advance_secs(60);
    let again = app.post_delegation(&body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("x-ratelimit-remaining"), Some("9"));
}

#[tokio::test]
async fn a_refused_exchange_does_not_count_and_another_token_is_independent() {
    let app =
        TestApp::spawn_with(Options { configure: Some(Box::new(|c| c.exchange_rate.limit = 2)), ..Default::default() })
            .await;
    let a = app.obtain_refresh_token("phone").await;
    let b = app.obtain_refresh_token("tablet").await;
    for _ in 0..2 {
        assert_eq!(app.post_delegation(&app.delegation_body(&a)).await.status, 200);
    }
    assert_eq!(app.post_delegation(&app.delegation_body(&a)).await.status, 429);
    assert_eq!(app.post_delegation(&app.delegation_body(&b)).await.status, 200, "token b has its own counter");
    let use_count = app
        .credential_items()
        .await
        .iter()
        .map(|i| i["use_count"].as_n().unwrap().parse::<u32>().unwrap())
        .max()
        .unwrap();
    assert_eq!(use_count, 2, "refused requests are not recorded as uses");
}

#[tokio::test]
async fn counters_stay_bounded_as_addresses_come_and_go() {
    let app = TestApp::spawn_with(Options {
        configure: Some(Box::new(|c| c.exchange_max_addresses = 2)),
        ..Default::default()
    })
    .await;
    let rt = app.obtain_refresh_token("laptop").await;
    let body = app.delegation_body(&rt);
    let from = |ip: &str| http_client(Some(addr(ip)));
    assert_eq!(app.post_delegation_from(&from("127.0.0.2"), &body).await.status, 200);
    assert_eq!(app.post_delegation_from(&from("127.0.0.3"), &body).await.status, 200);
    // A third address in the same window takes the least-used counter's place.
    let r = app.post_delegation_from(&from("127.0.0.4"), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.credential_items().await.pop().unwrap()["rl"].as_m().unwrap().len(), 2);
    // In a later window the stale counters are replaced, never accumulated.
    for round in 0..5 {
        app.clock.advance_secs(61);
        let ip = format!("127.0.1.{}", round + 1);
        assert_eq!(app.post_delegation_from(&from(&ip), &body).await.status, 200);
        let item = app.credential_items().await.pop().unwrap();
        let counters = item["rl"].as_m().unwrap();
        assert!(counters.len() <= 2, "round {round}: {counters:?}");
        assert!(counters.contains_key(&ip));
    }
}

#[tokio::test]
async fn a_stolen_token_cannot_lock_its_owner_out() {
    // A thief with the token and more addresses than the record keeps counters for uses each
    // of them up to the limit; the owner, from its own address, still exchanges.
    let app = TestApp::spawn_with(Options {
        configure: Some(Box::new(|c| {
            c.exchange_max_addresses = 3;
            c.exchange_rate.limit = 2;
        })),
        ..Default::default()
    })
    .await;
    let rt = app.obtain_refresh_token("phone").await;
    let body = app.delegation_body(&rt);
    for i in 10..16 {
        let thief = http_client(Some(addr(&format!("127.0.0.{i}"))));
        let statuses: Vec<u16> =
            join_all((0..3).map(|_| app.post_delegation_from(&thief, &body))).await.iter().map(|r| r.status).collect();
        // Each of the thief's addresses gets its own allowance, no more.
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "127.0.0.{i}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "127.0.0.{i}: {statuses:?}");
    }
    let owner = app.post_delegation(&body).await;
    assert_eq!(owner.status, 200, "the owner is not locked out: {}", owner.body);
    assert_eq!(owner.header("x-ratelimit-remaining"), Some("1"));
    let counters = app.credential_items().await.pop().unwrap()["rl"].as_m().unwrap().len();
    assert!(counters <= 3, "the record stays bounded: {counters}");
}
