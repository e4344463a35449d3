//! Bad input: each a 4xx with the right error body, and nothing stored changes.

use rt_tests::{GRANT_JWT_BEARER, INVALID_RT, TestApp, addr, hidden_tx, http_client};

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
use serde_json::json;

/// The table without rate-limit counters (which count attempts by design) and audit events
/// (which record refusals by design: `tests/api/logs.rs`).
async fn state(app: &TestApp) -> String {
    app.snapshot_except(&["counter", "event"]).await
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_without_saying_whether_the_user_exists() {
    let app = TestApp::spawn().await;
    let before = state(&app).await;
    let params = app.authorize_params("my-device");
    let wrong = app.login(&params, &app.user.email, "Wrong-password-1").await;
    let unknown = app.login(&params, "nobody@example.com", "Wrong-password-1").await;
    for r in [&wrong, &unknown] {
        assert_eq!(r.resp.status, 401);
        assert!(r.location.is_none());
        assert!(r.resp.body.contains("Wrong email or password."));
        assert!(r.resp.body.contains(r#"name="password""#), "the form again");
    }
    assert_eq!(state(&app).await, before, "nothing written");
}

#[tokio::test]
async fn an_attacker_cannot_lock_an_account_out_failures_count_per_account_and_address() {
    let app = TestApp::spawn_with(rt_tests::Options {
        configure: Some(Box::new(|c| c.login_per_pair.limit = 3)),
        ..Default::default()
    })
    .await;
    let params = app.authorize_params("my-device");
    let attacker = http_client(Some(addr("127.0.0.2")));
    let (email, password) = (app.user.email.clone(), app.user.password.clone());
    for _ in 0..3 {
        assert_eq!(app.login_with(&attacker, &params, &email, "Wrong-password-1").await.resp.status, 401);
    }
    // The pair (account, attacker's address) is blocked: even the right password is refused.
    let r = app.login_with(&attacker, &params, &email, &password).await;
    assert_eq!(r.resp.status, 429, "{}", r.resp.body);
    assert!(r.resp.header("retry-after").is_some());
    assert!(r.resp.body.contains("Too many login attempts"));
    // The owner, from its own address, is not locked out.
    assert_eq!(app.login(&params, &email, &password).await.resp.status, 302, "the owner signs in");

    // Nor is an administrator at the dashboard.
    let (admin, admin_pw) = app.admin().await;
    for _ in 0..5 {
        let r = app.dashboard_sign_in_from(&attacker, &admin, "Wrong-password-1").await;
        assert!(matches!(r, Err(ref e) if e.status == 401 || e.status == 429), "{r:?}");
    }
    assert!(app.dashboard_sign_in_from(&attacker, &admin, &admin_pw).await.is_err(), "blocked from there");
    assert!(app.dashboard_sign_in(&admin, &admin_pw).await.is_ok(), "the administrator is not locked out");

    // A success resets the count: failures must come in a row.
    let other = http_client(Some(addr("127.0.0.3")));
    for _ in 0..2 {
        assert_eq!(app.login_with(&other, &params, &email, "Wrong-password-1").await.resp.status, 401);
    }
    assert_eq!(app.login_with(&other, &params, &email, &password).await.resp.status, 302);
    for _ in 0..2 {
        assert_eq!(app.login_with(&other, &params, &email, "Wrong-password-1").await.resp.status, 401);
    }
    assert_eq!(app.login_with(&other, &params, &email, &password).await.resp.status, 302, "2 + 2 is not 3 in a row");

    // A password change unblocks the pair.
    let token = app.management_token(&["update:users"]).await;
    let fresh = "Another-password-2";
    let path = format!("/api/v2/users/{}", urlencode(app.user.user.id.as_str()));
    let r = app.mgmt(reqwest::Method::PATCH, &path, Some(&token), Some(&json!({"password": fresh}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.login_with(&attacker, &params, &email, fresh).await.resp.status, 302, "a new password, a new pair");

    // And the lockout times out.
    for _ in 0..3 {
        assert_eq!(app.login_with(&attacker, &params, &email, "Wrong-password-1").await.resp.status, 401);
    }
    assert_eq!(app.login_with(&attacker, &params, &email, fresh).await.resp.status, 429);
    app.clock.advance_secs(900);
    assert_eq!(app.login_with(&attacker, &params, &email, fresh).await.resp.status, 302, "the lockout ended");
}

#[tokio::test]
async fn failures_from_one_address_across_accounts_slow_it_down_and_successes_are_not_counted() {
    let app = TestApp::spawn_with(rt_tests::Options {
        configure: Some(Box::new(|c| c.login_per_address.limit = 3)),
        ..Default::default()
    })
    .await;
    let params = app.authorize_params("my-device");
    // An office behind one NAT: many successful sign-ins from one address count nothing.
    for _ in 0..8 {
        assert_eq!(app.login(&params, &app.user.email, &app.user.password).await.resp.status, 302);
    }
    // Failures from it against many accounts do.
    assert_eq!(app.login(&params, "a@example.com", "Wrong-password-1").await.resp.status, 401);
    assert_eq!(app.login(&params, "b@example.com", "Wrong-password-1").await.resp.status, 401);
    assert_eq!(app.login(&params, &app.user.email, "Wrong-password-1").await.resp.status, 401);
    let r = app.login(&params, &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 429, "the address is suspicious now");
    assert!(r.resp.header("retry-after").is_some());
    // Another address is not.
    let elsewhere = http_client(Some(addr("127.0.0.4")));
    assert_eq!(app.login_with(&elsewhere, &params, &app.user.email, &app.user.password).await.resp.status, 302);
    app.clock.advance_secs(300);
    assert_eq!(app.login(&params, &app.user.email, &app.user.password).await.resp.status, 302, "the window ended");
}

#[tokio::test]
async fn a_sign_in_costs_the_same_for_known_and_unknown_accounts_at_every_password_length() {
    // No timing: the work itself is compared — the DynamoDB requests and the Argon2id runs.
    let app = TestApp::spawn().await;
    let params = app.authorize_params("my-device");
    let long = format!("Aa1-{}", "x".repeat(4096));
    let mut seen = vec![];
    for (who, email, password) in [
        ("known, short", app.user.email.as_str(), "Wrong-password-1"),
        ("unknown, short", "nobody@example.com", "Wrong-password-1"),
        ("known, 4 KiB", app.user.email.as_str(), long.as_str()),
        ("unknown, 4 KiB", "nobody@example.com", long.as_str()),
    ] {
        let page = app.get_authorize(&params).await;
        let tx = hidden_tx(&page.body);
        let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
        app.layer.take_operations();
        let before = rt_domain::password::verifications();
        let r = app.post_login(&tx, Some(&cookie), email, password).await;
        assert_eq!(r.resp.status, 401, "{who}: {}", r.resp.body);
        let argon2 = rt_domain::password::verifications() - before;
        let ops = app.layer.take_operations();
        println!("{who:<16} Argon2id runs: {argon2}, requests: {ops:?}");
        assert_eq!(argon2, 1, "{who}: exactly one Argon2id verification");
        seen.push(ops);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "the same requests in every case: {seen:?}");
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_get_an_error_page_never_a_redirect() {
    let app = TestApp::spawn().await;
    let before = state(&app).await;
    let mut unknown = app.authorize_params("my-device");
    unknown[1].1 = "NoSuchClient".into();
    let r = app.get_authorize(&unknown).await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    assert!(r.body.contains("Unknown client"));

    for bad in ["https://evil.example/callback", &format!("{}/callback/", app.base), &format!("{}/CALLBACK", app.base)]
    {
        let mut p = app.authorize_params("my-device");
        p[2].1 = bad.to_owned();
        let r = app.get_authorize(&p).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.header("location").is_none());
        assert!(r.body.contains("redirect_uri is not registered"), "{}", r.body);
    }
    let mut p = app.authorize_params("my-device");
    p.remove(1);
    assert_eq!(app.get_authorize(&p).await.status, 400);
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn missing_device_with_offline_access_is_reported_to_the_app() {
    let app = TestApp::spawn().await;
    let mut p = app.authorize_params("my-device");
    p.retain(|(k, _)| k != "device");
    let r = app.get_authorize(&p).await;
    // The client and callback are valid, so the error goes back to the app (RFC 6749 §4.2.2.1).
    assert_eq!(r.status, 302);
    let loc = r.header("location").expect("location");
    let f = rt_tests::parse_fragment(loc);
    assert!(loc.starts_with(&app.callback()));
    assert_eq!(f["error"], "invalid_request");
    assert!(f["error_description"].contains("device"));
    assert_eq!(f["state"], "xyz-state");

    for (name, value, error) in [
        ("device", "bad\u{7}name", "invalid_request"),
        ("device", &"x".repeat(256), "invalid_request"),
        ("response_type", "code id_token", "unsupported_response_type"),
        ("scope", "offline_access", "invalid_scope"),
        ("response_mode", "query", "invalid_request"),
    ] {
        let mut p = app.authorize_params("my-device");
        p.retain(|(k, _)| k != name);
        p.push((name.into(), value.into()));
        let r = app.get_authorize(&p).await;
        assert_eq!(r.status, 302, "{name}={value}");
        assert_eq!(rt_tests::parse_fragment(r.header("location").unwrap())["error"], error, "{name}={value}");
    }
    assert!(app.credential_items().await.is_empty());
}

#[tokio::test]
async fn tampered_expired_or_foreign_login_forms_are_refused() {
    let app = TestApp::spawn().await;
    let page = app.get_authorize(&app.authorize_params("my-device")).await;
    let tx = hidden_tx(&page.body);
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    // Without the cookie (a cross-site post): refused.
    let r = app.post_login(&tx, None, &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 400);
    assert!(r.resp.body.contains("not opened in this browser"));
    // A changed transaction (e.g. another device name): refused.
    let mut forged = tx.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let r =
        app.post_login(&String::from_utf8(forged).unwrap(), Some(&cookie), &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 400);
    // Too late: refused.
    app.clock.advance_secs(601);
    let r = app.post_login(&tx, Some(&cookie), &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 400);
    assert!(r.resp.body.contains("expired"));
    assert!(app.credential_items().await.is_empty());
}

#[tokio::test]
async fn delegation_rejects_bad_requests_with_oauth_errors_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("my-device").await;
    let before = state(&app).await;
    let cid = app.client.id.to_string();

    let cases: Vec<(serde_json::Value, u16, &str, Option<&str>)> = vec![
        (
            json!({"client_id": cid, "grant_type": "refresh_token", "refresh_token": rt}),
            400,
            "unsupported_grant_type",
            None,
        ),
        (
            json!({"client_id": cid, "refresh_token": rt}),
            400,
            "invalid_request",
            Some("Missing required parameter: grant_type"),
        ),
        (
            json!({"grant_type": GRANT_JWT_BEARER, "refresh_token": rt}),
            400,
            "invalid_request",
            Some("Missing required parameter: client_id"),
        ),
        (
            json!({"client_id": cid, "grant_type": GRANT_JWT_BEARER}),
            400,
            "invalid_request",
            Some("Missing required parameter: refresh_token"),
        ),
        (
            json!({"client_id": "UnknownClient", "grant_type": GRANT_JWT_BEARER, "refresh_token": rt}),
            401,
            "invalid_client",
            None,
        ),
        (
            json!({"client_id": cid, "grant_type": GRANT_JWT_BEARER, "refresh_token": "rt1_nope"}),
            403,
            "invalid_grant",
            Some(INVALID_RT),
        ),
        (
            json!({"client_id": cid, "grant_type": GRANT_JWT_BEARER, "refresh_token": rt, "scope": "openid admin"}),
            400,
            "invalid_scope",
            None,
        ),
        (
            json!({"client_id": cid, "grant_type": GRANT_JWT_BEARER, "refresh_token": rt, "api_type": "aws"}),
            400,
            "invalid_request",
            None,
        ),
        (
            json!({"client_id": cid, "grant_type": GRANT_JWT_BEARER, "refresh_token": rt, "target": "OtherClient"}),
            400,
            "invalid_request",
            None,
        ),
        (json!({"client_id": cid, "grant_type": GRANT_JWT_BEARER, "id_token": "eyJ..."}), 400, "invalid_request", None),
    ];
    for (body, status, error, description) in cases {
        let r = app.post_delegation(&body).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let j = r.json();
        assert_eq!(j["error"], error, "{body}");
        assert!(j["error_description"].is_string());
        if let Some(d) = description {
            assert_eq!(j["error_description"], d);
        }
    }

    // A well-formed token that does not exist, and the right token with one secret byte changed.
    let other = rt_domain::token::RefreshToken::generate(&app.user.user.id, 0);
    let other = secrecy::ExposeSecret::expose_secret(&other.expose()).to_owned();
    let mut flipped = rt.clone().into_bytes();
    let last = flipped.len() - 5;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    for token in [other, String::from_utf8(flipped).unwrap()] {
        let r = app.post_delegation(&app.delegation_body(&token)).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.json(), json!({"error": "invalid_grant", "error_description": INVALID_RT}));
    }

    // Transport-level problems.
    let r = app.post_delegation_raw("application/json", b"{\"client_id\": ".to_vec()).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_request")));
    let r = app.post_delegation_raw("application/json", b"[1,2]".to_vec()).await;
    assert_eq!(r.status, 400);
    let r = app.post_delegation_raw("text/plain", app.delegation_body(&rt).to_string().into_bytes()).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (415, Some("invalid_request")));
    let r = app.post_delegation_raw("application/x-www-form-urlencoded", b"grant_type=%zz".to_vec()).await;
    assert_eq!(r.status, 400);
    let r = app.post_delegation_raw("application/x-www-form-urlencoded", b"client_id=a&client_id=b".to_vec()).await;
    assert_eq!(r.status, 400);
    let mut big = app.delegation_body(&rt);
    big["padding"] = "x".repeat(64 * 1024).into();
    let r = app.post_delegation(&big).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (413, Some("invalid_request")));
    let r = app.get("/delegation").await;
    assert_eq!(r.status, 404, "only POST and OPTIONS are routed");

    assert_eq!(state(&app).await, before, "nothing written by any rejected request");
}

#[tokio::test]
async fn a_token_is_bound_to_its_client() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("my-device").await;
    let other = rt_devkit::seed::native_client("Other", vec![], vec![], app.now());
    rt_domain::ports::ClientStore::create_client(&app.store, &other).await.unwrap();
    let before = state(&app).await;
    let mut body = app.delegation_body(&rt);
    body["client_id"] = other.id.to_string().into();
    let r = app.post_delegation(&body).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(r.json()["error_description"], "The refresh token was not issued to this client.");
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn dynamodb_trouble_is_a_503_with_retry_after_never_a_500() {
    // The app's DynamoDB endpoint refuses connections; the data was seeded directly.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app =
        TestApp::spawn_with(rt_tests::Options { endpoint: Some(format!("http://{closed}")), ..Default::default() })
            .await;
    let token = rt_domain::token::RefreshToken::generate(&app.user.user.id, 0);
    let token = secrecy::ExposeSecret::expose_secret(&token.expose()).to_owned();

    let r = app.post_delegation(&app.delegation_body(&token)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"], "temporarily_unavailable");

    let r = app.get_authorize(&app.authorize_params("my-device")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));

    let r = app
        .post_json(
            "/oauth/token",
            &json!({"grant_type": "client_credentials", "client_id": "abc", "client_secret": "x", "audience": format!("{}api/v2/", app.issuer())}),
        )
        .await;
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));

    let page = app.get("/dashboard/login").await;
    assert_eq!(page.status, 200, "the sign-in page needs no database");
}
