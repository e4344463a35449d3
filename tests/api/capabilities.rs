//! Every function sends DynamoDB only what `rt_http::handlers::FUNCTIONS` declares for it (and
//! so what `template.yaml` grants it: `architecture.rs`), and every declared grant is used by
//! some path. One walk through every function, with the semantics layer recording what each
//! request reached as IAM would authorise it (`rt_devkit::semantics::Access`).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use rt_devkit::semantics::Access;
use rt_domain::ports::{CredentialStore, UserStore};
use rt_domain::token::RefreshToken;
use rt_http::capability::{Grant, Resource};
use rt_http::handlers::FUNCTIONS;
use rt_tests::{TestApp, hidden};
use serde_json::json;

/// IAM's `StringLike`: `*` matches any run of characters, `?` any one.
fn like(pattern: &str, value: &str) -> bool {
    match pattern.chars().next() {
        None => value.is_empty(),
        Some('*') => {
            let rest = &pattern[1..];
            value.char_indices().map(|(i, _)| i).chain([value.len()]).any(|i| like(rest, &value[i..]))
        }
        Some(p) => {
            let mut v = value.chars();
            v.next().is_some_and(|c| p == '?' || c == p) && like(&pattern[p.len_utf8()..], v.as_str())
        }
    }
}

/// Whether `g`, with the leading-key pattern `key`, allows `a`.
fn allows(g: &Grant, key: &str, a: &Access) -> bool {
    g.action.name() == a.action && (g.resource == Resource::Indexes) == a.index.is_some() && like(key, &a.leading_key)
}

/// Grants no single run can be expected to use, with why.
/// (The credential's committed state is read only after a transaction conflict.)
const RARE: &[(&str, &str, &str)] = &[("delegation", "GetItem", "DCR#*"), ("oauth-token", "GetItem", "DCR#*")];

#[test]
fn string_like() {
    assert!(like("DCR#*", "DCR#dcr_x"));
    assert!(like("RL#login-*", "RL#login-ip#00ff"));
    assert!(!like("RL#login-*", "RL#other"));
    assert!(like("USERS", "USERS"));
    assert!(!like("USERS", "USERS#x"));
    assert!(!like("USER#*", "USERS"));
    assert!(like("a?c*", "abcdef"));
}

#[tokio::test]
async fn every_function_sends_only_what_it_declares_and_uses_all_of_it() {
    let app = TestApp::spawn().await;
    app.layer.record_accesses(true);
    let mut seen: BTreeMap<&str, Vec<Access>> = BTreeMap::new();
    // Each call runs with the client cache expired (the clock moves 31 s), so that a function
    // that reads a client shows it; what the call reached is filed under its function.
    macro_rules! call {
        ($function:expr, $e:expr) => {{
            app.clock.advance_secs(31);
            app.layer.take_accesses();
            let r = $e;
            seen.entry($function).or_default().extend(app.layer.take_accesses());
            r
        }};
    }
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let user_id = app.user.user.id.to_string();

    // A failed sign-in (the throttle's counters count it), then sign-ins with profile claims
    // on three devices (the first clears the failure).
    let r = call!("authorize", app.login(&app.authorize_params("phone"), &app.user.email, "Wrong-password-1").await);
    assert_eq!(r.resp.status, 401);
    let mut tokens = BTreeMap::new();
    for device in ["phone", "tablet", "laptop"] {
        let mut params = app.authorize_params(device);
        params.iter_mut().filter(|(k, _)| k == "scope").for_each(|(_, v)| *v = "openid profile offline_access".into());
        let r = call!("authorize", app.login(&params, &app.user.email, &app.user.password).await);
        assert_eq!(r.resp.status, 302, "{}", r.resp.body);
        tokens.insert(device, r.fragment["refresh_token"].clone());
    }
    // Exchanges with profile claims, several at once (a conflict makes the exchange re-read
    // its credential).
    let mut body = app.delegation_body(&tokens["phone"]);
    body["scope"] = "openid profile".into();
    let rs = call!("delegation", futures::future::join_all((0..4).map(|_| app.post_delegation(&body))).await);
    assert!(rs.iter().all(|r| r.status == 200), "{rs:?}");
    assert_eq!(call!("jwks", app.get("/.well-known/jwks.json").await).status, 200);
    assert_eq!(call!("openid-configuration", app.get("/.well-known/openid-configuration").await).status, 200);
    assert_eq!(call!("openapi", app.get("/openapi.json").await).status, 200);

    let (m2m, secret) = app.m2m_client(rt_domain::management::SCOPES).await;
    let r = call!(
        "oauth-token",
        app.post_json(
            "/oauth/token",
            &json!({"grant_type": "client_credentials", "client_id": m2m.id.to_string(), "client_secret": secret,
                    "audience": format!("{}api/v2/", app.issuer())}),
        )
        .await
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let t = Some(token.as_str());

    // The refresh grant: a non-rotating token; then a rotating family rotated and reused.
    let refresh = |rt: &str| {
        let body = json!({"grant_type": "refresh_token", "client_id": app.client.id.as_str(), "refresh_token": rt});
        let app = &app;
        async move { app.post_json("/oauth/token", &body).await }
    };
    let r = call!("oauth-token", refresh(&tokens["laptop"]).await);
    assert_eq!(r.status, 200, "{}", r.body);
    let user_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let userinfo =
        app.http.get(format!("{}/userinfo", app.base)).bearer_auth(&user_token).header("origin", "https://app.example");
    assert_eq!(call!("userinfo", userinfo.send().await.unwrap().status()), 200);
    let mut rotating = app.client.clone();
    rotating.refresh_token.rotation_type = rt_domain::client::RotationType::Rotating;
    rt_domain::ports::ClientStore::update_client(&app.store, &rotating).await.unwrap();
    let r = call!("authorize", app.login(&app.authorize_params("watch"), &app.user.email, &app.user.password).await);
    let t0 = r.fragment["refresh_token"].clone();
    let t1 = call!("oauth-token", refresh(&t0).await).json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(call!("oauth-token", refresh(&t1).await).status, 200);
    assert_eq!(call!("oauth-token", refresh(&t0).await).status, 403, "reuse revokes the family");
    let r = call!("authorize", app.login(&app.authorize_params("ring"), &app.user.email, &app.user.password).await);
    let ring = json!({"client_id": app.client.id.as_str(), "token": r.fragment["refresh_token"]});
    assert_eq!(call!("oauth-revoke", app.post_json("/oauth/revoke", &ring).await).status, 200);
    // The code flow: a public client's sign-in, its code redeemed, then redeemed again
    // (which revokes the refresh token the first redemption issued).
    let spa = rt_devkit::seed::spa_client("SPA", vec![app.callback()], vec![], app.now());
    assert!(rt_domain::ports::ClientStore::create_client(&app.store, &spa).await.unwrap());
    let verifier = "capabilities-verifier-0123456789-abcdefghijklmnop";
    let challenge = rt_domain::code::Challenge::of(verifier);
    let params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", spa.id.as_str()),
        ("redirect_uri", &app.callback()),
        ("scope", "openid profile offline_access"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let r = call!("authorize", app.login(&params, &app.user.email, &app.user.password).await);
    let location = r.location.expect("callback");
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let redeem = json!({"grant_type": "authorization_code", "client_id": spa.id.as_str(), "code": code,
                        "code_verifier": verifier, "redirect_uri": app.callback()});
    assert_eq!(call!("oauth-token", app.post_json("/oauth/token", &redeem).await).status, 200);
    assert_eq!(call!("oauth-token", app.post_json("/oauth/token", &redeem).await).status, 403);
    rt_domain::ports::ClientStore::update_client(&app.store, &app.client).await.unwrap();
    let mgmt = |method: Method, path: String, body: Option<serde_json::Value>| {
        let app = &app;
        async move { app.mgmt(method, &path, t, body.as_ref()).await }
    };

    let by_user =
        format!("/api/v2/device-credentials?type=refresh_token&user_id={}&include_totals=true", enc(&user_id));
    let by_client = format!("/api/v2/device-credentials?type=refresh_token&client_id={}", app.client.id);
    let r = call!("list-device-credentials", mgmt(Method::GET, by_user, None).await);
    assert_eq!(r.json()["total"], 3, "{}", r.body);
    let listed = call!("list-device-credentials", mgmt(Method::GET, by_client, None).await).json();
    let tablet = listed.as_array().unwrap().iter().find(|c| c["device_name"] == "tablet").unwrap()["id"].clone();
    let tablet = tablet.as_str().unwrap().to_owned();
    let r = call!(
        "delete-device-credential",
        mgmt(Method::DELETE, format!("/api/v2/device-credentials/{tablet}"), None).await
    );
    assert_eq!(r.status, 204);

    let exact = format!("/api/v2/users?q={}", enc(&format!("email:\"{}\"", app.user.email)));
    assert_eq!(call!("list-users", mgmt(Method::GET, exact, None).await).json().as_array().unwrap().len(), 1);
    let r = call!("list-users", mgmt(Method::GET, "/api/v2/users?include_totals=true".into(), None).await);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call!("get-user", mgmt(Method::GET, format!("/api/v2/users/{}", enc(&user_id)), None).await);
    assert_eq!(r.status, 200, "{}", r.body);

    // The audit log: the feed (the day's shards, then the items), one user's partition.
    let r = call!("list-logs", mgmt(Method::GET, "/api/v2/logs?include_totals=true".into(), None).await);
    assert_eq!(r.status, 200, "{}", r.body);
    let by_user = format!("/api/v2/logs?q={}", enc(&format!("user_id:\"{user_id}\"")));
    let r = call!("list-logs", mgmt(Method::GET, by_user, None).await);
    assert!(!r.json().as_array().unwrap().is_empty(), "{}", r.body);
    let user_logs = format!("/api/v2/users/{}/logs?include_totals=true", enc(&user_id));
    let r = call!("list-user-logs", mgmt(Method::GET, user_logs, None).await);
    assert!(r.json()["total"].as_u64().unwrap() > 0, "{}", r.body);

    // A user with refresh tokens of an older revision: a password change purges them.
    let new_user = json!({"connection": "Username-Password-Authentication", "email": "caps@example.com", "password": "Sup3r-secret"});
    let r = call!("create-user", mgmt(Method::POST, "/api/v2/users".into(), Some(new_user)).await);
    assert_eq!(r.status, 201, "{}", r.body);
    let other = rt_domain::ids::UserId::parse(r.json()["user_id"].as_str().unwrap()).unwrap();
    let other_path = format!("/api/v2/users/{}", enc(other.as_str()));
    let issue = |user: &rt_domain::ids::UserId, client: &rt_domain::ids::ClientId, rev: u32| {
        let cred = rt_tests::credential(&RefreshToken::generate(user, rev), client, "seeded", app.now());
        let store = &app.store;
        async move { store.issue_credential(&cred).await.unwrap() }
    };
    issue(&other, &app.client.id, 0).await;
    for change in
        [json!({"name": "Renamed"}), json!({"email": "caps2@example.com"}), json!({"password": "An0ther-secret"})]
    {
        let r = call!("update-user", mgmt(Method::PATCH, other_path.clone(), Some(change)).await);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    issue(&other, &app.client.id, 1).await;
    assert_eq!(call!("delete-user", mgmt(Method::DELETE, other_path, None).await).status, 204);

    let r = call!("list-clients", mgmt(Method::GET, "/api/v2/clients?include_totals=true".into(), None).await);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call!("get-client", mgmt(Method::GET, format!("/api/v2/clients/{}", app.client.id), None).await);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call!("create-client", mgmt(Method::POST, "/api/v2/clients".into(), Some(json!({"name": "Caps"}))).await);
    assert_eq!(r.status, 201, "{}", r.body);
    let client = rt_domain::ids::ClientId::parse(r.json()["client_id"].as_str().unwrap()).unwrap();
    let client_path = format!("/api/v2/clients/{client}");
    let r = call!("update-client", mgmt(Method::PATCH, client_path.clone(), Some(json!({"name": "Caps 2"}))).await);
    assert_eq!(r.status, 200, "{}", r.body);
    issue(&app.user.user.id, &client, app.user.user.rev).await;
    assert_eq!(call!("delete-client", mgmt(Method::DELETE, client_path, None).await).status, 204);
    let preflight = app
        .http
        .request(Method::OPTIONS, format!("{}/api/v2/users", app.base))
        .header("origin", "https://admin.example.com")
        .header("access-control-request-method", "GET");
    assert_eq!(call!("api-preflight", preflight.send().await.unwrap()).status(), 204);

    // The dashboard: sign in, the pages, UNLINK, Revoke all, sign out.
    let (email, password) = app.admin().await;
    let failed = call!("dashboard-login", app.dashboard_sign_in(&email, "Wrong-password-1").await);
    assert!(failed.is_err());
    let page = call!("dashboard-login", app.get("/dashboard/login").await);
    let login_cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let form = [("login_csrf", hidden(&page.body, "login_csrf")), ("username", email), ("password", password)];
    let post = app.http.post(format!("{}/dashboard/login", app.base)).header("cookie", &login_cookie).form(&form);
    let r = call!("dashboard-login", post.send().await.unwrap());
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(call!("dashboard-login", app.dashboard_get("/dashboard/login", &cookie).await).status, 303);
    let users = call!("dashboard-users", app.dashboard_get("/dashboard/users", &cookie).await);
    assert_eq!(users.status, 200, "{}", users.body);
    let csrf = hidden(&users.body, "csrf");
    let devices = format!("{}/devices", app.dashboard_user_path());
    let r = call!("dashboard-user", app.dashboard_get(&devices, &cookie).await);
    assert!(r.body.contains("laptop"), "{}", r.body);
    let history = format!("{}/history", app.dashboard_user_path());
    let r = call!("dashboard-user", app.dashboard_get(&history, &cookie).await);
    assert!(r.body.contains("sertft"), "{}", r.body);
    let unlink = format!("{devices}/unlink");
    let r = call!(
        "dashboard-revoke",
        app.dashboard_post(&unlink, Some(&cookie), &[("csrf", &csrf), ("device", "laptop")]).await
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let revoke_all = format!("{}/revoke-all", app.dashboard_user_path());
    let r = call!("dashboard-revoke", app.dashboard_post(&revoke_all, Some(&cookie), &[("csrf", &csrf)]).await);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(app.credential_items().await.is_empty(), "every token revoked");
    assert_eq!(call!("dashboard-assets", app.get("/dashboard/assets/dashboard.css").await).status, 200);
    let r = call!("dashboard-login", app.dashboard_post("/dashboard/logout", Some(&cookie), &[("csrf", &csrf)]).await);
    assert_eq!(r.status, 303, "{}", r.body);

    // The scheduled sweep: an application whose tokens live an hour, one of them a day old.
    app.set_refresh_token_policy(rt_domain::client::RefreshTokenPolicy {
        expiration_type: rt_domain::client::ExpirationType::Expiring,
        token_lifetime: 3_600,
        infinite_token_lifetime: false,
        ..Default::default()
    })
    .await;
    let rev = UserStore::get_user(&app.store, &app.user.user.id).await.unwrap().unwrap().rev;
    let old = RefreshToken::generate(&app.user.user.id, rev);
    let day_old = rt_tests::credential(&old, &app.client.id, "old", app.now().plus_secs(-86_400));
    assert_eq!(app.store.issue_credential(&day_old).await.unwrap(), rt_domain::ports::IssueOutcome::Issued);
    // The code of the code-flow sign-in above has expired too (ten minutes); so has an audit
    // event of 33 days ago (the retention is 30 days).
    app.clock.advance_secs(601);
    let old_event = rt_domain::audit::AuditEvent::new(
        rt_domain::audit::EventType::WrongPassword,
        app.now().plus_secs(-33 * 86_400),
        rt_domain::audit::Source::default(),
    );
    rt_domain::ports::AuditLog::record_event(&app.store, &old_event).await.unwrap();
    let summary = call!("sweep-expired", app.sweep().await);
    assert_eq!(summary["removed"], 3, "the credential, the code and the old event: {summary}");

    let mut problems = vec![];
    for f in FUNCTIONS {
        let accesses: BTreeSet<&Access> = seen.get(f.name).into_iter().flatten().collect();
        if !seen.contains_key(f.name) {
            problems.push(format!("{}: not called", f.name));
        }
        for a in &accesses {
            if !f.table.iter().any(|g| g.leading_keys.iter().any(|k| allows(g, k, a))) {
                problems.push(format!("{}: sent {a}, which it does not declare", f.name));
            }
        }
        for g in f.table {
            for key in g.leading_keys {
                let used = accesses.iter().any(|a| allows(g, key, a));
                let rare = RARE.contains(&(f.name, g.action.name(), key));
                if !used && !rare {
                    problems.push(format!(
                        "{}: declares {} {:?} on {key}, which no call used",
                        f.name,
                        g.action.name(),
                        g.resource
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
