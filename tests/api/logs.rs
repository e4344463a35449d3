//! The audit log over HTTP: what sign-ins, exchanges, reuse and revocations record (with the
//! source address and User-Agent, and who revoked), `GET /api/v2/logs` (`read:logs`, `q`,
//! offset pages bounded in depth, checkpoint pages without gaps or duplicates) and
//! `GET /api/v2/users/{id}/logs`, and that no secret reaches an entry or the table's log items.

use std::collections::BTreeSet;

use reqwest::Method;
use rt_domain::audit::{AuditEvent, EventType, Source};
use rt_domain::client::RotationType;
use rt_domain::ports::{AuditLog, ClientStore};
use rt_domain::token::RefreshToken;
use rt_tests::{Resp, TestApp};
use serde_json::{Value, json};

const UA: &str = "Mozilla/5.0 (AuditTest; rv:1.0) logs/1.0";

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(UA).build().unwrap()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /api/v2/logs?<query>` with `token`.
async fn logs(app: &TestApp, token: &str, query: &str) -> Resp {
    app.mgmt(Method::GET, &format!("/api/v2/logs?{query}"), Some(token), None).await
}

/// The entries of a user (`q=user_id:"…"`), newest first.
async fn of_user(app: &TestApp, token: &str) -> Vec<Value> {
    let q = enc(&format!("user_id:\"{}\"", app.user.user.id));
    let r = logs(app, token, &format!("q={q}&per_page=100")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().as_array().unwrap().clone()
}

fn of_type<'a>(entries: &'a [Value], code: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["type"] == code).collect()
}

async fn refresh(app: &TestApp, http: &reqwest::Client, rt: &str) -> Resp {
    let body = json!({"grant_type": "refresh_token", "client_id": app.client.id.as_str(), "refresh_token": rt});
    Resp::from(http.post(format!("{}/oauth/token", app.base)).json(&body).send().await.unwrap()).await
}

#[tokio::test]
async fn sign_ins_record_successes_and_failures_with_address_and_user_agent() {
    let app = TestApp::spawn().await;
    let http = browser();
    let (email, password) = (&app.user.email, &app.user.password);
    let ok = app.login_with(&http, &app.authorize_params("phone"), email, password).await;
    assert_eq!(ok.resp.status, 302, "{}", ok.resp.body);
    let rt = RefreshToken::parse(&ok.fragment["refresh_token"]).unwrap();
    let wrong = app.login_with(&http, &app.authorize_params("phone"), email, "not-the-password").await;
    assert_eq!(wrong.resp.status, 401);
    let unknown = app.login_with(&http, &app.authorize_params("phone"), "nobody@example.com", "whatever").await;
    assert_eq!(unknown.resp.status, 401);
    let token = app.management_token(&["read:logs"]).await;

    let mine = of_user(&app, &token).await;
    let s = of_type(&mine, "s");
    assert_eq!(s.len(), 1, "{mine:?}");
    let s = s[0];
    assert_eq!((s["ip"].as_str(), s["user_agent"].as_str()), (Some("127.0.0.1"), Some(UA)), "{s}");
    assert_eq!(s["client_id"], app.client.id.as_str());
    assert_eq!(s["client_name"], app.client.name.as_str());
    assert_eq!(s["user_name"], app.user.email.as_str());
    assert_eq!(s["details"]["device"], "phone");
    assert_eq!(s["details"]["device_credential_id"], rt.id().as_str(), "the implicit flow issued it");
    assert!(s["date"].as_str().unwrap().ends_with('Z') && s["log_id"].as_str().unwrap().len() == 25);
    let fp = of_type(&mine, "fp");
    assert_eq!(fp.len(), 1, "a wrong password is in the user's own history: {mine:?}");
    assert_eq!((fp[0]["ip"].as_str(), fp[0]["user_agent"].as_str()), (Some("127.0.0.1"), Some(UA)));

    // An unknown account has no user: found by type, with the name that was typed.
    // (A search stops as soon as it has its page: `per_page` is the number expected, so that
    // it does not walk the 31 days of the feed on a slow local server.)
    let r = logs(&app, &token, &format!("q={}&per_page=1", enc("type:fu"))).await;
    let fu = r.json();
    assert_eq!(fu.as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(fu[0]["user_name"], "nobody@example.com");
    assert!(fu[0].get("user_id").is_none());
    assert_eq!((fu[0]["ip"].as_str(), fu[0]["user_agent"].as_str()), (Some("127.0.0.1"), Some(UA)));

    // The dashboard's sign-in too (an administrator; and a wrong password).
    let (admin_email, admin_password) = app.admin().await;
    app.dashboard_sign_in(&admin_email, &admin_password).await.unwrap();
    let refused = app.dashboard_sign_in(&admin_email, "wrong").await.unwrap_err();
    assert_eq!(refused.status, 401);
    let r = logs(&app, &token, &format!("q={}&per_page=2", enc("type:s"))).await;
    let dashboard: Vec<Value> =
        r.json().as_array().unwrap().iter().filter(|e| e["user_name"] == admin_email.as_str()).cloned().collect();
    assert_eq!(dashboard.len(), 1, "{}", r.body);
    assert!(dashboard[0]["description"].as_str().unwrap().contains("dashboard"));
    let r = logs(&app, &token, &format!("q={}&per_page=2", enc("type:fp"))).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2, "{}", r.body);
}

#[tokio::test]
async fn exchanges_reuse_and_revocations_are_recorded_saying_by_whom() {
    let app = TestApp::spawn().await;
    let http = browser();
    let rt = app.obtain_refresh_token("laptop").await;
    let laptop = RefreshToken::parse(&rt).unwrap();
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 200);
    assert_eq!(refresh(&app, &http, &rt).await.status, 200);
    // A token nobody issued: refused, recorded without a user (its claim proves nothing).
    let forged = RefreshToken::generate(&app.user.user.id, app.user.user.rev).expose();
    assert_eq!(refresh(&app, &http, secrecy::ExposeSecret::expose_secret(&forged)).await.status, 403);

    // A rotating family, reused.
    let mut rotating = app.client.clone();
    rotating.refresh_token.rotation_type = RotationType::Rotating;
    assert!(app.store.update_client(&rotating).await.unwrap());
    app.clock.advance_secs(31); // the functions' client cache
    let t0 = app.obtain_refresh_token("watch").await;
    let t1 = refresh(&app, &http, &t0).await.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&app, &http, &t1).await.status, 200);
    assert_eq!(refresh(&app, &http, &t0).await.status, 403, "reuse");
    assert!(app.store.update_client(&app.client).await.unwrap());
    app.clock.advance_secs(31);

    // Revocations: the Management API, /oauth/revoke, the dashboard, a password change.
    let (m2m, _) = app.m2m_client(&["delete:device_credentials", "update:users", "read:logs"]).await;
    let token = {
        let body = json!({"grant_type": "client_credentials", "client_id": m2m.id.as_str(),
                          "client_secret": "", "audience": format!("{}api/v2/", app.issuer())});
        // The m2m client's secret is only in `m2m_client`'s answer: use a token of another
        // client for the calls, and this one's failure as a `feccft` event.
        assert_eq!(app.post_json("/oauth/token", &body).await.status, 401);
        app.management_token(&["delete:device_credentials", "update:users", "read:logs"]).await
    };
    let caller = rt_tests::jwt_claims(&token)["azp"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/device-credentials/{}", laptop.id());
    assert_eq!(app.mgmt(Method::DELETE, &path, Some(&token), None).await.status, 204);
    let tablet = app.obtain_refresh_token("tablet").await;
    let revoke = json!({"client_id": app.client.id.as_str(), "token": tablet});
    assert_eq!(app.post_json("/oauth/revoke", &revoke).await.status, 200);
    let (admin_email, admin_password) = app.admin().await;
    let (cookie, csrf) = app.dashboard_sign_in(&admin_email, &admin_password).await.unwrap();
    let _ = app.obtain_refresh_token("desk").await;
    let r = app
        .dashboard_post(
            &format!("{}/devices/unlink", app.dashboard_user_path()),
            Some(&cookie),
            &[("csrf", &csrf), ("device", "desk")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let user_path = format!("/api/v2/users/{}", enc(app.user.user.id.as_str()));
    let r = app.mgmt(Method::PATCH, &user_path, Some(&token), Some(&json!({"password": "An0ther-secret!"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let mine = of_user(&app, &token).await;
    let sd = of_type(&mine, "sd");
    assert_eq!(sd.len(), 1, "{mine:?}");
    assert_eq!(sd[0]["details"]["device_credential_id"], laptop.id().as_str());
    assert_eq!(sd[0]["client_name"], app.client.name.as_str());
    let sertft = of_type(&mine, "sertft");
    assert_eq!(sertft.len(), 3, "laptop, then the family twice: {mine:?}");
    assert!(sertft.iter().all(|e| e["user_agent"] == UA && e["ip"] == "127.0.0.1"));
    let ferrt = of_type(&mine, "ferrt");
    assert_eq!(ferrt.len(), 1, "{mine:?}");
    assert_eq!(ferrt[0]["details"]["reason"], "reuse");
    assert_eq!(ferrt[0]["details"]["revoked_by"]["channel"], "reuse_detection");

    let revoked = of_type(&mine, "srrt");
    let by = |channel: &str| -> Vec<&Value> {
        revoked.iter().copied().filter(|e| e["details"]["revoked_by"]["channel"] == channel).collect()
    };
    let api = by("management_api");
    assert_eq!(api.len(), 2, "the credential and the password change: {revoked:?}");
    assert!(api.iter().all(|e| e["details"]["revoked_by"]["id"] == caller.as_str()));
    let one = api.iter().find(|e| e["details"]["reason"] == "token").unwrap();
    assert_eq!(
        (one["details"]["device"].as_str(), one["details"]["device_credential_id"].as_str()),
        (Some("laptop"), Some(laptop.id().as_str()))
    );
    assert!(one["description"].as_str().unwrap().contains("Management API"));
    assert!(api.iter().any(|e| e["details"]["reason"] == "password_change"));
    let app_revoke = by("oauth_revoke");
    assert_eq!(app_revoke.len(), 1);
    assert_eq!(app_revoke[0]["details"]["device"], "tablet");
    let dashboard = by("dashboard");
    assert_eq!(dashboard.len(), 1);
    assert_eq!(
        (dashboard[0]["details"]["reason"].as_str(), dashboard[0]["details"]["device"].as_str()),
        (Some("device"), Some("desk"))
    );
    assert_eq!(dashboard[0]["details"]["refresh_tokens_revoked"], 1);

    // Without a user: the forged token, the failed client_credentials.
    let r = logs(&app, &token, &format!("q={}&per_page=1", enc("type:fertft"))).await;
    let fertft = r.json();
    assert_eq!(fertft.as_array().unwrap().len(), 1, "{}", r.body);
    assert!(fertft[0].get("user_id").is_none(), "an unknown token's claimed user is not trusted");
    let r =
        logs(&app, &token, &format!("q={}&per_page=1", enc(&format!("type:feccft client_id:\"{}\"", m2m.id)))).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.body);
    let r = logs(&app, &token, &format!("q={}&per_page=1", enc("type:seccft"))).await;
    assert!(r.json().as_array().unwrap().iter().any(|e| e["client_id"] == caller.as_str()), "{}", r.body);

    // The user's own route: the same history, paged, with a total.
    let r =
        app.mgmt(Method::GET, &format!("{user_path}/logs?per_page=2&include_totals=true"), Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["total"].as_u64().unwrap() as usize, mine.len(), "{}", r.body);
    assert_eq!(v["logs"].as_array().unwrap().len(), 2);
    assert_eq!(v["logs"][0]["log_id"], mine[0]["log_id"], "newest first");
    let oldest = app.mgmt(Method::GET, &format!("{user_path}/logs?sort=date:1&per_page=1"), Some(&token), None).await;
    assert_eq!(oldest.json()[0]["log_id"], mine.last().unwrap()["log_id"]);
}

#[tokio::test]
async fn reading_logs_takes_read_logs() {
    let app = TestApp::spawn().await;
    let user_logs = format!("/api/v2/users/{}/logs", enc(app.user.user.id.as_str()));
    let other = app.management_token(&["read:users", "read:device_credentials"]).await;
    for path in ["/api/v2/logs", user_logs.as_str()] {
        let r = app.mgmt(Method::GET, path, None, None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.json()["statusCode"], 401);
        let r = app.mgmt(Method::GET, path, Some(&other), None).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(r.json()["errorCode"], "insufficient_scope");
        assert!(r.json()["message"].as_str().unwrap().contains("read:logs"));
    }
}

#[tokio::test]
async fn searches_filter_and_refuse_what_they_cannot_bound() {
    let app = TestApp::spawn().await;
    let token = app.management_token(&["read:logs"]).await;
    let now = app.now();
    for (k, kind) in
        [EventType::SuccessLogin, EventType::WrongPassword, EventType::SuccessLogin].into_iter().enumerate()
    {
        let e = AuditEvent::new(kind, now.plus_secs(-(k as i64)), Source::default()).client(&app.client);
        app.store.record_event(&e).await.unwrap();
    }
    let r = logs(&app, &token, &format!("q={}&per_page=2", enc("type:s"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert!(v.as_array().unwrap().iter().all(|e| e["type"] == "s"));
    let q = enc(&format!("client_id:\"{}\" AND type:fp", app.client.id));
    let r = logs(&app, &token, &format!("q={q}&per_page=1")).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(logs(&app, &token, &format!("q={}", enc("type:nonesuch"))).await.json(), json!([]));

    let too_long = format!("type:{}", "s".repeat(1100));
    for (query, needle) in [
        (format!("q={}", enc(&too_long)), "1024"),
        (format!("q={}", enc("ip:\"127.0.0.1\"")), "not supported"),
        ("page=10&per_page=100".to_owned(), "from"),
        ("per_page=101".to_owned(), "per_page"),
        ("take=101".to_owned(), "take"),
        ("from=not-a-log-id".to_owned(), "from"),
        ("sort=user_id:1".to_owned(), "sort"),
    ] {
        let r = logs(&app, &token, &query).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        let v = r.json();
        assert_eq!(
            (v["statusCode"].as_u64(), v["errorCode"].as_str()),
            (Some(400), Some("invalid_query_string")),
            "{query}"
        );
        assert!(v["message"].as_str().unwrap().contains(needle), "{query}: {v}");
    }
}

#[tokio::test]
async fn checkpoints_page_through_every_event_once_in_order() {
    let app = TestApp::spawn().await;
    let token = app.management_token(&["read:logs"]).await;
    let now = app.now();
    let mut written = BTreeSet::new();
    // 37 events over three days (yesterday's and the day before's too), users' and none's.
    for k in 0..37i64 {
        let mut e = AuditEvent::new(EventType::SuccessRefreshExchange, now.plus_secs(-k * 5_000), Source::default());
        if k % 2 == 0 {
            e = e.user(&app.user.user.id, None);
        }
        app.store.record_event(&e).await.unwrap();
        written.insert(e.id.to_string());
    }
    // The token's own `seccft` is an event as well. (`take` is the number expected, so that
    // the read stops there instead of walking the 31 days of the feed on a slow local server.)
    let newest = logs(&app, &token, "take=38").await.json();
    let mut all: Vec<String> =
        newest.as_array().unwrap().iter().map(|e| e["log_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(all.len(), 38, "every event, newest first");
    assert!(all.windows(2).all(|w| w[0] > w[1]));
    all.reverse();
    let first = all[0].clone();

    let mut seen = vec![first.clone()];
    let mut from = first;
    loop {
        let r = logs(&app, &token, &format!("from={from}&take=7&q=ignored:x")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let batch = r.json();
        let batch = batch.as_array().unwrap();
        assert!(batch.len() <= 7);
        let Some(last) = batch.last() else { break };
        from = last["log_id"].as_str().unwrap().to_owned();
        seen.extend(batch.iter().map(|e| e["log_id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen, all, "no gap, no duplicate, in log-id order");
    assert!(written.iter().all(|id| seen.contains(id)));
}

#[tokio::test]
async fn no_secret_reaches_a_log_entry_or_a_log_item() {
    let app = TestApp::spawn().await;
    let http = browser();
    // The implicit flow (tokens in the fragment), a wrong password, exchanges, the code flow
    // (a code and its verifier), a management token and its client's secret.
    let ok = app.login_with(&http, &app.authorize_params("phone"), &app.user.email, &app.user.password).await;
    let mut secrets: Vec<String> =
        ["refresh_token", "access_token", "id_token"].iter().map(|k| ok.fragment[*k].clone()).collect();
    let wrong_password = "Wr0ng-password-that-must-not-leak";
    app.login_with(&http, &app.authorize_params("phone"), &app.user.email, wrong_password).await;
    secrets.push(wrong_password.to_owned());
    secrets.push(app.user.password.clone());
    let rt = ok.fragment["refresh_token"].clone();
    let r = refresh(&app, &http, &rt).await;
    secrets.push(r.json()["access_token"].as_str().unwrap().to_owned());
    app.post_delegation(&app.delegation_body(&rt)).await;

    let spa = rt_devkit::seed::spa_client("SPA", vec![app.callback()], vec![], app.now());
    assert!(app.store.create_client(&spa).await.unwrap());
    let verifier = "logs-test-verifier-0123456789-abcdefghijklmnopq";
    let challenge = rt_domain::code::Challenge::of(verifier);
    let params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", spa.id.as_str()),
        ("redirect_uri", &app.callback()),
        ("scope", "openid offline_access"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let r = app.login_with(&http, &params, &app.user.email, &app.user.password).await;
    let location = r.location.expect("callback");
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let redeem = json!({"grant_type": "authorization_code", "client_id": spa.id.as_str(), "code": code,
                        "code_verifier": verifier, "redirect_uri": app.callback()});
    let r = app.post_json("/oauth/token", &redeem).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secrets.extend([code, verifier.to_owned(), r.json()["refresh_token"].as_str().unwrap().to_owned()]);
    let (m2m, client_secret) = app.m2m_client(&["read:logs"]).await;
    let body = json!({"grant_type": "client_credentials", "client_id": m2m.id.as_str(), "client_secret": client_secret,
                      "audience": format!("{}api/v2/", app.issuer())});
    let token = app.post_json("/oauth/token", &body).await.json()["access_token"].as_str().unwrap().to_owned();
    secrets.extend([client_secret, token.clone()]);
    // The refresh token's tail (its secret part) alone, too.
    secrets.push(rt.get(rt.len() - 30..).unwrap().to_owned());

    let r = logs(&app, &token, "per_page=100").await;
    let entries = r.body.clone();
    let types: BTreeSet<String> =
        r.json().as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    for t in ["s", "fp", "sertft", "sd", "seacft", "seccft"] {
        assert!(types.contains(t), "{t} in {types:?}");
    }
    let items: Vec<String> = app
        .scan()
        .await
        .into_iter()
        .filter(|i| i.get("kind").and_then(|k| k.as_s().ok()).map(String::as_str) == Some("event"))
        .map(|i| format!("{i:?}"))
        .collect();
    assert!(items.len() >= 6, "{items:?}");
    for secret in &secrets {
        assert!(!entries.contains(secret.as_str()), "a secret in the entries: {secret}");
        assert!(items.iter().all(|i| !i.contains(secret.as_str())), "a secret in a log item: {secret}");
    }
}

#[tokio::test]
async fn a_block_and_a_deletion_are_recorded_and_the_history_outlives_the_user() {
    let app = TestApp::spawn().await;
    app.obtain_refresh_token("phone").await;
    let token = app.management_token(&["update:users", "delete:users", "read:logs"]).await;
    let caller = rt_tests::jwt_claims(&token)["azp"].as_str().unwrap().to_owned();
    let user_path = format!("/api/v2/users/{}", enc(app.user.user.id.as_str()));
    // (The test clock is manual: a second between events orders them; within one millisecond
    // log ids order by their random tail.)
    app.clock.advance_secs(1);
    let r = app.mgmt(Method::PATCH, &user_path, Some(&token), Some(&json!({"blocked": true}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.clock.advance_secs(1);
    assert_eq!(app.mgmt(Method::DELETE, &user_path, Some(&token), None).await.status, 204);

    // The user is gone; its history is not (until its days expire).
    let r = app.mgmt(Method::GET, &format!("{user_path}/logs"), Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let entries = r.json();
    let reasons: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "srrt")
        .map(|e| {
            assert_eq!(e["details"]["revoked_by"], json!({"channel": "management_api", "id": caller}), "{e}");
            e["details"]["reason"].as_str().unwrap()
        })
        .collect();
    assert_eq!(reasons, ["user_deleted", "block"], "newest first: {entries}");
    assert_eq!(entries.as_array().unwrap().last().unwrap()["type"], "s");
}
