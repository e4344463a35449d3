//! Compatibility with the real auth0-spa-js (v2, pinned in `tests/node/package-lock.json`) in a
//! real headless Chromium (`tests/node/spa-sdk.mjs`): a single-page app on another origin
//! (`http://localhost:<port>`, served by the script) signs in with the code flow and PKCE,
//! refreshes twice with rotation, and after the oldest refresh token is presented again the
//! SDK's next refresh fails with `invalid_grant`; signed in again (memory cache: the SDK's
//! Web Worker makes the calls), it refreshes once more and revokes its token.
//! Screenshots go to `target/screenshots/`.

use std::time::Instant;

use rt_devkit::paths::repo_root;
use rt_devkit::seed;
use rt_domain::ports::ClientStore;
use rt_tests::TestApp;
use rt_tests::node::{chromium, node, require_package};
use serde_json::Value;

/// A free port for the app's own web server (the node script listens on it).
fn unused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_spa_js_signs_in_rotates_and_is_refused_after_reuse() {
    let root = repo_root();
    require_package(&root, "@auth0/auth0-spa-js");
    require_package(&root, "playwright-core");
    let chromium = chromium();

    let app = TestApp::spawn().await;
    let app_origin = format!("http://localhost:{}", unused_port());
    let page = format!("{app_origin}/app.html");
    let spa = seed::spa_client("SPA SDK", vec![page], vec![app_origin.clone()], app.now());
    assert!(app.store.create_client(&spa).await.expect("create client"));
    let management = app.management_token(&["read:device_credentials"]).await;

    let started = Instant::now();
    let out = node(
        &root,
        "tests/node/spa-sdk.mjs",
        &[
            ("RT_BASE", app.base.clone()),
            ("RT_APP_ORIGIN", app_origin),
            ("RT_CLIENT_ID", spa.id.to_string()),
            ("RT_USER_EMAIL", app.user.email.clone()),
            ("RT_USER_PASSWORD", app.user.password.clone()),
            ("RT_USER_ID", app.user.user.id.to_string()),
            ("RT_MGMT_TOKEN", management),
            ("RT_SHOTS", root.join("target/screenshots").display().to_string()),
            ("CHROMIUM", chromium),
            ("NODE_NO_WARNINGS", "1".to_owned()),
        ],
    )
    .await;
    let result: Value = out.result("the auth0-spa-js browser run", started);

    // spa-js sends no `device`: the credential was named after Chromium's User-Agent.
    let ua = result["user_agent"].as_str().expect("user_agent");
    let device = result["device_name"].as_str().expect("device_name");
    assert_eq!(device, rt_domain::user_agent::device_name(Some(ua)).as_str(), "named from {ua}");
    assert!(device.contains("Chrome"), "{device} (from {ua})");
    assert_eq!(result["oauth_calls"], 9, "{result}");

    // The reuse revoked the first family, the SDK's revoke the second: no credential is left.
    let left = app.credential_items().await;
    assert!(left.is_empty(), "credentials left after the reuse: {left:?}");
}
