//! The authorization code flow with PKCE over HTTP: `/authorize?response_type=code` → the
//! callback's `?code=` → `POST /oauth/token grant_type=authorization_code` → refreshes. Codes
//! are single-use (a second redemption revokes what the first issued), bound to the client,
//! the redirect URI and the challenge, and expire; clients authenticate as they registered.

use std::collections::HashMap;

use rt_devkit::seed;
use rt_domain::client::{Client, TokenEndpointAuthMethod};
use rt_domain::ports::ClientStore;
use rt_tests::{Resp, TestApp, jwt_claims};
use serde_json::json;

// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SECRET: &str = "web-app-secret-0123456789";

async fn spa(app: &TestApp) -> Client {
    let c = seed::spa_client("SPA", vec![app.callback()], vec![app.base.clone()], app.now());
    assert!(app.store.create_client(&c).await.unwrap());
    c
}

async fn web(app: &TestApp, method: TokenEndpointAuthMethod) -> Client {
    let mut c = seed::web_client("Web", vec![app.callback()], SECRET, app.now());
    c.token_endpoint_auth_method = method;
    assert!(app.store.create_client(&c).await.unwrap());
    c
}

/// spa-js's authorization request (without `device`).
fn code_params(app: &TestApp, client: &Client) -> Vec<(String, String)> {
    [
        ("client_id", client.id.as_str()),
        ("redirect_uri", &app.callback()),
        ("response_type", "code"),
        ("response_mode", "query"),
        ("scope", "openid profile email offline_access"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("auth0Client", "eyJuYW1lIjoiYXV0aDAtc3BhLWpzIn0="),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn with(mut params: Vec<(String, String)>, name: &str, value: Option<&str>) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != name);
    if let Some(v) = value {
        params.push((name.to_owned(), v.to_owned()));
    }
    params
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(FIREFOX).build().unwrap()
}

/// The parameters of the callback URL's query.
fn query(location: &str) -> HashMap<String, String> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    let q = q.split('#').next().unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// Signs in through the form; returns the callback URL.
async fn sign_in(app: &TestApp, params: &[(String, String)]) -> String {
    let r = app.login_with(&browser(), params, &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 302, "{}", r.resp.body);
    r.location.unwrap()
}

async fn code(app: &TestApp, client: &Client) -> String {
    let location = sign_in(app, &code_params(app, client)).await;
    assert!(location.starts_with(&format!("{}?", app.callback())), "{location}");
    let q = query(&location);
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"));
    assert_eq!(q.len(), 2, "the code and the state, nothing else: {q:?}");
    q["code"].clone()
}

async fn token_form(app: &TestApp, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
    let mut req = app.http.post(format!("{}/oauth/token", app.base)).form(pairs);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Resp { status, headers, body: r.text().await.unwrap() }
}

/// spa-js's code exchange (form).
async fn redeem(app: &TestApp, client: &Client, code: &str) -> Resp {
    let cb = app.callback();
    let pairs = [
        ("client_id", client.id.as_str()),
        ("code_verifier", VERIFIER),
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &cb),
    ];
    token_form(app, &pairs, None).await
}

async fn refresh(app: &TestApp, client: &Client, rt: &str) -> Resp {
    let cb = app.callback();
    let pairs = [
        ("client_id", client.id.as_str()),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("redirect_uri", &cb),
    ];
    token_form(app, &pairs, None).await
}

fn invalid_code() -> serde_json::Value {
    json!({"error": "invalid_grant", "error_description": "Invalid authorization code"})
}

#[tokio::test]
async fn a_public_client_signs_in_with_code_and_pkce_then_rotates() {
    let app = TestApp::spawn().await;
    let spa = spa(&app).await;
    let code = code(&app, &spa).await;
    assert!(code.starts_with("ac_"));
    let r = redeem(&app, &spa, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "email offline_access openid profile");
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    assert!(rt.starts_with("rt2_"), "a rotating client's family");
    let id = app.verify_with_jwks(v["id_token"].as_str().unwrap(), spa.id.as_str()).await;
    assert_eq!(id["nonce"], "n-1", "the sign-in's nonce, on the code exchange");
    assert_eq!(id["sub"], app.user.user.id.as_str());
    assert_eq!(id["email"], app.user.email);
    assert!(id["auth_time"].as_i64().is_some());
    let access = jwt_claims(v["access_token"].as_str().unwrap());
    assert_eq!(v["expires_in"], access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap());
    // The device is named after the browser, as no `device` was sent.
    let items = app.credential_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["device_name"].as_s().unwrap(), "Firefox on Linux");
    // The refresh token works and rotates; its id_token has no nonce.
    let r = refresh(&app, &spa, &rt).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["refresh_token"].as_str().is_some_and(|t| t != rt));
    assert!(jwt_claims(v["id_token"].as_str().unwrap()).get("nonce").is_none());
    // The code is stored only as its hash.
    let dump = format!("{:?}", app.scan().await);
    assert!(!dump.contains(&code) && !dump.contains(&code[3..]), "a table dump yields no code");
}

#[tokio::test]
async fn a_code_is_single_use_and_its_second_redemption_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let spa = spa(&app).await;
    let code = code(&app, &spa).await;
    let first = redeem(&app, &spa, &code).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let rt = first.json()["refresh_token"].as_str().unwrap().to_owned();
    let again = redeem(&app, &spa, &code).await;
    assert_eq!((again.status, again.json()), (403, invalid_code()));
    let r = refresh(&app, &spa, &rt).await;
    assert_eq!(r.status, 403, "what the first redemption issued is revoked: {}", r.body);
    assert!(app.credential_items().await.is_empty());
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_issue_at_most_once() {
    let app = TestApp::spawn().await;
    let spa = spa(&app).await;
    let code = code(&app, &spa).await;
    let answers = futures::future::join_all((0..5).map(|_| redeem(&app, &spa, &code))).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert!(ok <= 1, "{answers:?}");
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_eq!((r.status, r.json()), (403, invalid_code()));
    }
    // Whatever one of them got, the others' attempts revoked it.
    assert!(app.credential_items().await.is_empty());
}

#[tokio::test]
async fn pkce_is_required_of_public_clients_and_only_s256() {
    let app = TestApp::spawn().await;
    let spa = spa(&app).await;
    let base = code_params(&app, &spa);
    for (params, description) in [
        (with(with(base.clone(), "code_challenge", None), "code_challenge_method", None), "PKCE with S256 is required"),
        (with(base.clone(), "code_challenge_method", Some("plain")), "must be S256"),
        (with(base.clone(), "code_challenge_method", None), "must be S256"),
        (with(base.clone(), "code_challenge", Some("too-short")), "base64url SHA-256"),
    ] {
        let r = app.get_authorize(&params).await;
        assert_eq!(r.status, 302, "{}", r.body);
        let q = query(r.header("location").unwrap());
        assert_eq!(q["error"], "invalid_request");
        assert!(q["error_description"].contains(description), "{q:?}");
        assert_eq!(q["state"], "st-1");
    }
    let code1 = code(&app, &spa).await;
    let cb = app.callback();
    let wrong = [
        ("client_id", spa.id.as_str()),
        ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"),
        ("grant_type", "authorization_code"),
        ("code", &code1),
        ("redirect_uri", &cb),
    ];
    let r = token_form(&app, &wrong, None).await;
    assert_eq!(
        (r.status, r.json()),
        (403, json!({"error": "invalid_grant", "error_description": "Failed to verify code verifier"}))
    );
    let missing: Vec<_> = wrong.iter().filter(|(k, _)| *k != "code_verifier").copied().collect();
    let r = token_form(&app, &missing, None).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_request")));
    // A failed verifier does not consume the code.
    assert_eq!(redeem(&app, &spa, &code1).await.status, 200);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri_and_expires() {
    let app = TestApp::spawn().await;
    let spa = spa(&app).await;
    let other = seed::spa_client("Other SPA", vec![app.callback()], vec![], app.now());
    assert!(app.store.create_client(&other).await.unwrap());
    let c = code(&app, &spa).await;
    assert_eq!(redeem(&app, &other, &c).await.json(), invalid_code(), "another client's code");
    let elsewhere = [
        ("client_id", spa.id.as_str()),
        ("code_verifier", VERIFIER),
        ("grant_type", "authorization_code"),
        ("code", &c),
        ("redirect_uri", "com.example.app://callback"),
    ];
    let r = token_form(&app, &elsewhere, None).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (403, Some("invalid_grant")));
    assert_eq!(redeem(&app, &spa, "ac_not-a-code").await.json(), invalid_code());
    // Ten minutes later the code is dead.
    let late = code(&app, &spa).await;
    app.clock.advance_secs(601);
    assert_eq!(redeem(&app, &spa, &late).await.json(), invalid_code());
    // The first one, still unredeemed and still bound, expired as well.
    assert_eq!(redeem(&app, &spa, &c).await.json(), invalid_code());
}

#[tokio::test]
async fn confidential_clients_authenticate_as_they_registered() {
    let app = TestApp::spawn().await;
    let post = web(&app, TokenEndpointAuthMethod::ClientSecretPost).await;
    let basic = web(&app, TokenEndpointAuthMethod::ClientSecretBasic).await;
    let cb = app.callback();
    // No PKCE needed for a confidential client (node's authorizationCodeGrant).
    let params = |c: &Client| with(with(code_params(&app, c), "code_challenge", None), "code_challenge_method", None);
    let code_of = |loc: String| query(&loc)["code"].clone();

    let c = code_of(sign_in(&app, &params(&post)).await);
    let by_basic = [("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", cb.as_str())];
    let r = token_form(&app, &by_basic, Some((post.id.as_str(), SECRET))).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (401, Some("invalid_client")), "registered for post");
    let no_secret =
        [("client_id", post.id.as_str()), ("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", &cb)];
    assert_eq!(token_form(&app, &no_secret, None).await.status, 401);
    let wrong = [
        ("client_id", post.id.as_str()),
        ("client_secret", "nope"),
        ("grant_type", "authorization_code"),
        ("code", &c),
        ("redirect_uri", &cb),
    ];
    assert_eq!(token_form(&app, &wrong, None).await.status, 401);
    let right = [
        ("client_id", post.id.as_str()),
        ("client_secret", SECRET),
        ("grant_type", "authorization_code"),
        ("code", &c),
        ("redirect_uri", &cb),
    ];
    let r = token_form(&app, &right, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.json()["refresh_token"].as_str().unwrap().to_owned();
    // The refresh grant holds the client to the same method.
    let refresh_post = [
        ("client_id", post.id.as_str()),
        ("client_secret", SECRET),
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt),
    ];
    assert_eq!(token_form(&app, &refresh_post, None).await.status, 200);

    let c = code_of(sign_in(&app, &params(&basic)).await);
    let by_basic = [("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", cb.as_str())];
    let by_post = [
        ("client_id", basic.id.as_str()),
        ("client_secret", SECRET),
        ("grant_type", "authorization_code"),
        ("code", &c),
        ("redirect_uri", &cb),
    ];
    assert_eq!(token_form(&app, &by_post, None).await.status, 401, "registered for basic");
    let r = token_form(&app, &by_basic, Some((basic.id.as_str(), SECRET))).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn response_modes_and_requests_without_offline_access() {
    let app = TestApp::spawn().await;
    let spa = spa(&app).await;
    // The fragment, when asked for.
    let loc = sign_in(&app, &with(code_params(&app, &spa), "response_mode", Some("fragment"))).await;
    let frag = rt_tests::parse_fragment(&loc);
    assert!(frag["code"].starts_with("ac_") && !loc.contains("?code="), "{loc}");
    // Tokens never go to the query; web_message is not served.
    let mut implicit = app.authorize_params("phone");
    implicit.push(("response_mode".into(), "query".into()));
    let r = app.get_authorize(&implicit).await;
    assert!(r.header("location").unwrap().contains("#error=invalid_request"), "{:?}", r.header("location"));
    let r = app.get_authorize(&with(code_params(&app, &spa), "response_mode", Some("web_message"))).await;
    assert_eq!(query(r.header("location").unwrap())["error"], "invalid_request");
    // Without offline_access: tokens but no refresh token, and the scope says so.
    let params = with(code_params(&app, &spa), "scope", Some("openid"));
    let c = query(&sign_in(&app, &params).await)["code"].clone();
    let r = redeem(&app, &spa, &c).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scope"], "openid");
    assert!(r.json().get("refresh_token").is_none());
    assert!(app.credential_items().await.is_empty());
    // A client without the grant is refused at /authorize.
    let legacy = code_params(&app, &app.client);
    let r = app.get_authorize(&legacy).await;
    assert_eq!(query(r.header("location").unwrap())["error"], "unauthorized_client");
}

#[tokio::test]
async fn requests_per_code_redemption() {
    let app = TestApp::spawn().await;
    let spa = spa(&app).await;
    let c = code(&app, &spa).await;
    app.layer.take_operations();
    assert_eq!(redeem(&app, &spa, &c).await.status, 200);
    let ops = app.layer.take_operations();
    println!("code redemption: {ops:?}");
    // The client is cached from the sign-in; the code, the user, one transaction; then the
    // audit event (`seacft`), one PutItem after the transaction.
    assert_eq!(ops, ["GetItem", "GetItem", "TransactWriteItems", "PutItem"]);
}

/// `client_credentials` holds a machine client to its registered method as the other grants
/// do: a secret sent the other way is `invalid_client`, like a wrong one.
#[tokio::test]
async fn machine_clients_authenticate_as_they_registered() {
    let app = TestApp::spawn().await;
    let audience = format!("{}api/v2/", app.issuer());
    let grant = [("grant_type", "client_credentials"), ("audience", audience.as_str())];
    let (post, post_secret) = app.m2m_client(&["read:users"]).await;
    assert_eq!(post.token_endpoint_auth_method, TokenEndpointAuthMethod::ClientSecretPost);
    let (basic, basic_secret) =
        app.m2m_client_authenticating(&["read:users"], TokenEndpointAuthMethod::ClientSecretBasic).await;

    let refused = |r: &Resp| (r.status, r.json()["error"].as_str().map(str::to_owned));
    let invalid_client = (401, Some("invalid_client".to_owned()));
    fn in_body<'a>(id: &'a str, secret: &'a str) -> [(&'a str, &'a str); 2] {
        [("client_id", id), ("client_secret", secret)]
    }
    let (post_id, basic_id) = (post.id.to_string(), basic.id.to_string());
    let (post_id, post_secret, basic_id, basic_secret) =
        (post_id.as_str(), post_secret.as_str(), basic_id.as_str(), basic_secret.as_str());

    let r = token_form(&app, &[&grant[..], &in_body(post_id, post_secret)[..]].concat(), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = token_form(&app, &grant, Some((post_id, post_secret))).await;
    assert_eq!(refused(&r), invalid_client, "registered for post, sent in Basic");

    let r = token_form(&app, &[&grant[..], &in_body(basic_id, basic_secret)[..]].concat(), None).await;
    assert_eq!(refused(&r), invalid_client, "registered for Basic, sent in the body");
    let r = token_form(&app, &grant, Some((basic_id, basic_secret))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = token_form(&app, &grant, Some((basic_id, "wrong"))).await;
    assert_eq!(refused(&r), invalid_client, "a wrong secret");
}
