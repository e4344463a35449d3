//! Compatibility with the real auth0 Node SDK's `AuthenticationClient` (`auth0@7.1.0`'s
//! `auth0/legacy`, pinned in `tests/node/package-lock.json`), driven by
//! `tests/node/auth-sdk.mjs`: a regular web app (confidential, `client_secret_post`, rotating)
//! exchanges codes obtained here over HTTP, refreshes with rotation and revokes. The SDK
//! validates every id_token (RS256 against the JWKS, `iss` = `https://{domain}/`, `nonce`), so
//! the app's issuer is `https://tenant.test/` and the script sends that host to this server.

use rt_devkit::seed;
use rt_domain::code::Challenge;
use rt_domain::ports::ClientStore;
use std::collections::HashMap;
use std::time::Instant;

use rt_tests::node::{node, require_package};
use rt_tests::{Options, TestApp};
use serde_json::Value;

const DOMAIN: &str = "tenant.test";

/// A sign-in of the code flow with PKCE: the code, its verifier and the nonce.
struct SignIn {
    code: String,
    verifier: String,
    nonce: String,
}

async fn sign_in(app: &TestApp, client_id: &str) -> SignIn {
    let verifier = rt_domain::random::alphanumeric(64);
    let nonce = rt_domain::random::alphanumeric(16);
    let challenge = Challenge::of(&verifier);
    let params: Vec<(String, String)> = [
        ("client_id", client_id),
        ("redirect_uri", &app.callback()),
        ("response_type", "code"),
        ("scope", "openid profile email offline_access"),
        ("state", "web-state"),
        ("nonce", &nonce),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let r = app.login(&params, &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 302, "{}", r.resp.body);
    let location = r.location.expect("a redirect to the callback");
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_else(|| panic!("no query in {location}"));
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("web-state"), "{location}");
    let code = q.get("code").cloned().unwrap_or_else(|| panic!("no code in {location}"));
    SignIn { code, verifier, nonce }
}

#[tokio::test]
async fn auth0_authentication_client_code_refresh_revoke() {
    let root = rt_devkit::paths::repo_root();
    require_package(&root, "auth0");

    let app = TestApp::spawn_with(Options { issuer: Some(format!("https://{DOMAIN}/")), ..Default::default() }).await;
    let secret = rt_domain::random::alphanumeric(48);
    let web = seed::web_client("Node Web App", vec![app.callback()], &secret, app.now());
    assert!(app.store.create_client(&web).await.expect("create client"));
    let first = sign_in(&app, web.id.as_str()).await;
    let second = sign_in(&app, web.id.as_str()).await;

    let env = [
        ("RT_BASE", app.base.clone()),
        ("RT_DOMAIN", DOMAIN.to_owned()),
        ("RT_CLIENT_ID", web.id.to_string()),
        ("RT_CLIENT_SECRET", secret),
        ("RT_REDIRECT_URI", app.callback()),
        ("RT_USER_ID", app.user.user.id.to_string()),
        ("RT_CODE", first.code),
        ("RT_CODE_VERIFIER", first.verifier),
        ("RT_NONCE", first.nonce),
        ("RT_CODE2", second.code),
        ("RT_CODE_VERIFIER2", second.verifier),
        ("RT_NONCE2", second.nonce),
        ("NODE_NO_WARNINGS", "1".to_owned()),
    ];
    let started = Instant::now();
    let out = node(&root, "tests/node/auth-sdk.mjs", &env).await;
    let result: Value = out.result("the auth0 AuthenticationClient script", started);
    assert_eq!(result["revoke_requests"], 3, "{result}");

    // The replayed code revoked the first family, the SDK's revoke the second: nothing is left.
    let left = app.credential_items().await;
    assert!(left.is_empty(), "credentials left after revocation: {left:?}");
}
