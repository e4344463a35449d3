//! `POST /oauth/token` with `grant_type=refresh_token` over HTTP: a non-rotating token, and a
//! rotating family (rotation, the same successor on a retry, reuse revoking the family, a race
//! of twenty requests rotating once).

use rt_domain::client::RotationType;
use rt_domain::ports::ClientStore;
use rt_tests::{Options, Resp, TestApp, jwt_claims};
use serde_json::json;

async fn refresh(app: &TestApp, refresh_token: &str) -> Resp {
    let body = json!({
        "grant_type": "refresh_token",
        "client_id": app.client.id.as_str(),
        "refresh_token": refresh_token,
        // spa-js sends it on refreshes too: ignored.
        "redirect_uri": app.callback(),
    });
    app.post_json("/oauth/token", &body).await
}

/// Makes the test app's client rotating (as `PATCH /api/v2/clients` would).
async fn rotating(app: &TestApp) {
    let mut client = app.client.clone();
    client.refresh_token.rotation_type = RotationType::Rotating;
    assert!(app.store.update_client(&client).await.unwrap());
}

#[tokio::test]
async fn a_non_rotating_token_refreshes_without_a_new_refresh_token() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("phone").await;
    assert!(rt.starts_with("rt1_"));
    let r = refresh(&app, &rt).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    let mut scope: Vec<&str> = v["scope"].as_str().unwrap().split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["offline_access", "openid"], "what the grant holds");
    assert!(v.get("refresh_token").is_none(), "non-rotating: no new refresh token");
    let id = jwt_claims(v["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], app.client.id.as_str());
    assert!(id.get("nonce").is_none(), "no nonce on a refresh");
    let access = jwt_claims(v["access_token"].as_str().unwrap());
    assert_eq!(v["expires_in"], access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap());
    assert_eq!(r.header("x-ratelimit-remaining"), Some("9"));
    // And again: the same token keeps working.
    assert_eq!(refresh(&app, &rt).await.status, 200);
}

#[tokio::test]
async fn a_rotating_family_rotates_retries_and_dies_on_reuse() {
    let app = TestApp::spawn().await;
    rotating(&app).await;
    let t0 = app.obtain_refresh_token("browser").await;
    assert!(t0.starts_with("rt2_"), "a rotating client's sign-in starts a family");
    let r = refresh(&app, &t0).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t1 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t0);
    // A retry of t0 (within the race window): the very same successor, no sibling.
    let again = refresh(&app, &t0).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["refresh_token"].as_str(), Some(t1.as_str()));
    let t2 = refresh(&app, &t1).await.json()["refresh_token"].as_str().unwrap().to_owned();
    // t0 is two generations back: reuse. The family dies, its newest member included.
    let reuse = refresh(&app, &t0).await;
    assert_eq!(
        (reuse.status, reuse.json()),
        (403, json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}))
    );
    assert_eq!(refresh(&app, &t2).await.status, 403, "the newest member is dead too");
    assert!(app.credential_items().await.is_empty(), "the family's record is gone");
}

#[tokio::test]
async fn twenty_concurrent_refreshes_of_one_token_rotate_once_and_share_the_successor() {
    // The rate limit (10 a minute per token and address) lifted: this is about the rotation.
    let app = TestApp::spawn_with(Options {
        configure: Some(Box::new(|c| c.exchange_rate.limit = 100)),
        ..Options::default()
    })
    .await;
    rotating(&app).await;
    let t0 = app.obtain_refresh_token("browser").await;
    let answers = futures::future::join_all((0..20).map(|_| refresh(&app, &t0))).await;
    let mut successors: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    successors.dedup();
    assert_eq!(successors.len(), 1, "one successor for all");
    let items = app.credential_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["gen"].as_n().unwrap(), "1", "one rotation");
    assert_eq!(refresh(&app, &successors[0]).await.status, 200);
}

#[tokio::test]
async fn requests_per_refresh() {
    let app = TestApp::spawn().await;
    rotating(&app).await;
    // spa-js's default grant: `openid profile email offline_access`.
    let mut params = app.authorize_params("browser");
    params
        .iter_mut()
        .filter(|(k, _)| k == "scope")
        .for_each(|(_, v)| *v = "openid profile email offline_access".into());
    let r = app.login(&params, &app.user.email, &app.user.password).await;
    let t0 = r.fragment.get("refresh_token").cloned().unwrap();
    let ops = |what: &str| {
        let v = app.layer.take_operations();
        println!("{what:<46} {v:?}");
        v
    };
    ops("sign-in");
    let t1 = refresh(&app, &t0).await.json()["refresh_token"].as_str().unwrap().to_owned();
    // Each then writes its audit event (`sertft`), one PutItem after the answer is decided.
    assert_eq!(
        ops("rotate (profile and email claims)"),
        ["TransactWriteItems", "GetItem", "PutItem"],
        "one write, the profile, the event"
    );
    refresh(&app, &t0).await;
    assert_eq!(ops("retry of the previous member"), ["TransactWriteItems", "TransactWriteItems", "GetItem", "PutItem"]);
    refresh(&app, &t1).await;
    ops("rotate again");
    assert_eq!(refresh(&app, &t0).await.status, 403);
    assert_eq!(ops("reuse: revoke the family"), ["TransactWriteItems", "TransactWriteItems", "PutItem"]);
    assert_eq!(refresh(&app, &t1).await.status, 403);
    assert_eq!(ops("a member of a revoked family"), ["TransactWriteItems", "PutItem"]);

    // A grant without profile claims (the seed's `openid offline_access`): the first plan
    // guesses spa-js's grant, the refusal corrects it — one more transaction, no read. The
    // process then remembers what the credential's grant holds: its next refresh is one write.
    let plain = app.obtain_refresh_token("phone").await;
    ops("sign-in");
    let p1 = refresh(&app, &plain).await.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(ops("rotate (openid offline_access)"), ["TransactWriteItems", "TransactWriteItems", "PutItem"]);
    let p2 = refresh(&app, &p1).await.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(ops("rotate again (the claims remembered)"), ["TransactWriteItems", "PutItem"]);
    let p1 = p2;
    // Another client presenting it: refused by the same one write (nothing changes).
    let other = rt_devkit::seed::native_client("Other", vec![], vec![], app.now());
    assert!(app.store.create_client(&other).await.unwrap());
    ops("(setup)");
    let body = json!({"grant_type": "refresh_token", "client_id": other.id.as_str(), "refresh_token": p1});
    assert_eq!(app.post_json("/oauth/token", &body).await.status, 403);
    assert_eq!(ops("wrong client (+ its client read)"), ["GetItem", "TransactWriteItems", "PutItem"]);
    // Expired (idle 60 s): refused by the one write, its condition false.
    let mut expiring = app.client.clone();
    expiring.refresh_token.rotation_type = RotationType::Rotating;
    expiring.refresh_token.expiration_type = rt_domain::client::ExpirationType::Expiring;
    expiring.refresh_token.infinite_idle_token_lifetime = false;
    expiring.refresh_token.idle_token_lifetime = 60;
    assert!(app.store.update_client(&expiring).await.unwrap());
    app.clock.advance_secs(61);
    ops("(setup)");
    assert_eq!(refresh(&app, &p1).await.status, 403);
    assert_eq!(ops("expired (+ the client read after the cache)"), ["GetItem", "TransactWriteItems", "PutItem"]);
}

#[tokio::test]
async fn an_expired_token_is_refused_like_an_unknown_one() {
    use rt_domain::client::ExpirationType;
    let app = TestApp::spawn().await;
    let mut client = app.client.clone();
    let policy = &mut client.refresh_token;
    policy.rotation_type = RotationType::Rotating;
    policy.expiration_type = ExpirationType::Expiring;
    policy.infinite_token_lifetime = false;
    policy.token_lifetime = 3600;
    policy.infinite_idle_token_lifetime = false;
    policy.idle_token_lifetime = 600;
    assert!(app.store.update_client(&client).await.unwrap());
    let t0 = app.obtain_refresh_token("browser").await;
    // Used within the idle lifetime, twice: each use restarts the idle clock.
    app.clock.advance_secs(590);
    let t1 = refresh(&app, &t0).await.json()["refresh_token"].as_str().unwrap().to_owned();
    app.clock.advance_secs(590);
    let r = refresh(&app, &t1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t2 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    // Idle for longer than 600 s.
    app.clock.advance_secs(601);
    let r = refresh(&app, &t2).await;
    assert_eq!((r.status, r.json()["error_description"].as_str()), (403, Some("Unknown or invalid refresh token.")));
    // A new sign-in, refreshed often, still ends at the absolute lifetime (3600 s).
    let fresh = app.obtain_refresh_token("browser").await;
    let mut current = fresh;
    for _ in 0..6 {
        app.clock.advance_secs(590);
        let r = refresh(&app, &current).await;
        assert_eq!(r.status, 200, "{}", r.body);
        current = r.json()["refresh_token"].as_str().unwrap().to_owned();
    }
    app.clock.advance_secs(70);
    assert_eq!(refresh(&app, &current).await.status, 403, "3610 s after the sign-in");
}

async fn revoke(app: &TestApp, client_id: &str, token: &str) -> Resp {
    let body = json!({"client_id": client_id, "token": token, "token_type_hint": "refresh_token"});
    app.post_json("/oauth/revoke", &body).await
}

#[tokio::test]
async fn oauth_revoke_kills_the_family_and_tells_nothing_about_other_tokens() {
    let app = TestApp::spawn().await;
    rotating(&app).await;
    let t0 = app.obtain_refresh_token("browser").await;
    let t1 = refresh(&app, &t0).await.json()["refresh_token"].as_str().unwrap().to_owned();
    // Unknown, malformed, or another client's: 200 with an empty body, and nothing revoked.
    for token in ["rt1_nope", "garbage", &t0.replace('A', "B")] {
        let r = revoke(&app, app.client.id.as_str(), token).await;
        assert_eq!((r.status, r.body.as_str()), (200, ""), "{token}");
    }
    let other = rt_devkit::seed::native_client("Other", vec![], vec![], app.now());
    app.store.create_client(&other).await.unwrap();
    assert_eq!(revoke(&app, other.id.as_str(), &t1).await.status, 200);
    assert_eq!(refresh(&app, &t1).await.status, 200, "another client cannot revoke it");
    // The client's own: the whole family goes, whichever member it presents (here a retired
    // one: the family is at its third member).
    assert_eq!(app.credential_items().await.len(), 1);
    let r = revoke(&app, app.client.id.as_str(), &t0).await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(app.credential_items().await.is_empty());
    // A client that does not authenticate: 401.
    let (m2m, _) = app.m2m_client(&[]).await;
    let r = app
        .post_json("/oauth/revoke", &json!({"client_id": m2m.id.as_str(), "client_secret": "wrong", "token": t1}))
        .await;
    assert_eq!((r.status, r.json()["error"].as_str()), (401, Some("invalid_client")));
    let r = app.post_json("/oauth/revoke", &json!({"client_id": app.client.id.as_str()})).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn userinfo_answers_the_claims_of_the_access_tokens_scope() {
    let app = TestApp::spawn().await;
    let mut params = app.authorize_params("phone");
    params.iter_mut().filter(|(k, _)| k == "scope").for_each(|(_, v)| *v = "openid profile offline_access".into());
    let r = app.login(&params, &app.user.email, &app.user.password).await;
    let rt = r.fragment.get("refresh_token").cloned().unwrap();
    let access = refresh(&app, &rt).await.json()["access_token"].as_str().unwrap().to_owned();
    let url = format!("{}/userinfo", app.base);
    let r = app.http.get(&url).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["sub"].as_str(), v["name"].as_str()),
        (Some(app.user.user.id.as_str()), Some(app.user.user.name.as_str()))
    );
    assert!(v.get("email").is_none() && v.get("iss").is_none(), "no email scope, no token claims: {v}");
    // auth0.js v7 uses POST.
    let r = app.http.post(&url).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A Management API token, a broken one, none: 401 with the RFC 6750 challenge.
    let mgmt = app.management_token(&["read:users"]).await;
    for auth in [Some(mgmt.as_str()), Some("eyJ.broken.token"), None] {
        let mut rq = app.http.get(&url);
        if let Some(t) = auth {
            rq = rq.bearer_auth(t);
        }
        let r = rq.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    }
}

#[tokio::test]
async fn a_rotating_token_is_refused_at_delegation_without_a_write() {
    let app = TestApp::spawn().await;
    rotating(&app).await;
    let t0 = app.obtain_refresh_token("browser").await;
    app.layer.take_operations();
    let r = app.post_delegation(&app.delegation_body(&t0)).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (403, Some("invalid_grant")));
    assert!(!app.layer.take_operations().contains(&"TransactWriteItems".to_owned()), "nothing written");
    // It still rotates where it belongs.
    assert!(refresh(&app, &t0).await.json()["refresh_token"].is_string());
}

#[tokio::test]
async fn a_token_issued_before_its_client_turned_rotation_on_starts_a_family() {
    let app = TestApp::spawn().await;
    let old = app.obtain_refresh_token("phone").await;
    assert!(old.starts_with("rt1_"));
    rotating(&app).await;
    // Other warm functions see a client change within the 30 s client cache.
    app.clock.advance_secs(31);
    let r = refresh(&app, &old).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let first = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert!(first.starts_with("rt2_"), "spa-js needs a refresh token in every answer");
    let next = refresh(&app, &first).await.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, first);
    assert_eq!(refresh(&app, &first).await.json()["refresh_token"].as_str(), Some(next.as_str()), "a retry");
}

#[tokio::test]
async fn the_previous_token_gets_the_same_successor_within_the_leeway_and_kills_the_family_after() {
    let app = TestApp::spawn().await;
    let mut client = app.client.clone();
    client.refresh_token.rotation_type = RotationType::Rotating;
    client.refresh_token.leeway = 30;
    assert!(app.store.update_client(&client).await.unwrap());
    let t0 = app.obtain_refresh_token("browser").await;
    let t1 = refresh(&app, &t0).await.json()["refresh_token"].as_str().unwrap().to_owned();
    // 20 s later (past the 5 s race window, within the 30 s leeway): the same successor.
    app.clock.advance_secs(20);
    let retry = refresh(&app, &t0).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.json()["refresh_token"].as_str(), Some(t1.as_str()), "the same successor, not a sibling");
    // 31 s after the rotation the leeway is over: presenting t0 again is reuse.
    app.clock.advance_secs(11);
    let reuse = refresh(&app, &t0).await;
    assert_eq!(
        (reuse.status, reuse.json()),
        (403, json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}))
    );
    assert_eq!(refresh(&app, &t1).await.status, 403, "the family is dead, its newest member included");
    assert!(app.credential_items().await.is_empty());
}

#[tokio::test]
async fn a_family_whose_client_stops_rotating_ends_with_one_non_rotating_token() {
    let app = TestApp::spawn().await;
    rotating(&app).await;
    let t0 = app.obtain_refresh_token("browser").await;
    let t1 = refresh(&app, &t0).await.json()["refresh_token"].as_str().unwrap().to_owned();
    // The client turns rotation off (AUTH0-WIRE §6.4): the family's current member is
    // exchanged for a non-rotating token, and the family is revoked.
    assert!(app.store.update_client(&app.client).await.unwrap());
    app.clock.advance_secs(31); // past the server's client cache
    let r = refresh(&app, &t1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let plain = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert!(plain.starts_with("rt1_"), "{plain}");
    // A retry (a lost response) gets the very same token.
    let again = refresh(&app, &t1).await;
    assert_eq!(again.json()["refresh_token"].as_str(), Some(plain.as_str()));
    // The non-rotating token works again and again, without a new one.
    for _ in 0..2 {
        let r = refresh(&app, &plain).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.json().get("refresh_token").is_none());
    }
    // Every member of the family is dead (t1 once the retry window is over).
    app.clock.advance_secs(6);
    assert_eq!(refresh(&app, &t0).await.status, 403);
    assert_eq!(refresh(&app, &t1).await.status, 403);
    let items = app.credential_items().await;
    assert_eq!(items.len(), 1, "one device credential throughout");
    assert!(!items[0].contains_key("gen"), "non-rotating now");
    assert_eq!(refresh(&app, &plain).await.status, 200, "a presented retired member does not revoke it");
}
