//! Compatibility with the real auth0 Node SDK: `auth0@7.1.0`'s `ManagementClient` (pinned in
//! `tests/node/package-lock.json`) driven by `tests/node/management-sdk.mjs` against this
//! process's server. The SDK gets its own token by client_credentials and hard-codes
//! `https://{domain}`; the script's fetch shim sends that to the local server.

use rt_domain::client::{ExpirationType, RotationType};
use rt_domain::ids::{ClientId, Email, UserId};
use rt_domain::management::SCOPES;
use rt_domain::ports::{ClientStore, Freshness, UserStore};
use rt_domain::token::RefreshToken;
use std::time::Instant;

use rt_tests::node::node;
use rt_tests::{Options, TestApp};
use serde_json::Value;

const DOMAIN: &str = "tenant.test";
const SEEDED: usize = 120;

#[tokio::test]
async fn auth0_v7_management_client_against_the_service() {
    let root = rt_devkit::paths::repo_root();
    let sdk = root.join("tests/node/node_modules/auth0/package.json");
    assert!(
        sdk.exists(),
        "{} is missing: the auth0 Node SDK is not installed; run `cargo xtask test` or `npm ci` in tests/node",
        sdk.display()
    );

    let app = TestApp::spawn_with(Options { issuer: Some(format!("https://{DOMAIN}/")), ..Default::default() }).await;
    let (m2m, secret) = app.m2m_client(SCOPES).await;

    // One credential through the real login flow, and enough others for 3+ pages of 50.
    let phone = app.obtain_refresh_token("sdk-phone").await;
    let phone_id = RefreshToken::parse(&phone).expect("refresh token").id().as_str().to_owned();
    let tablets = app.seed_credentials(SEEDED, "sdk-tablet").await;
    assert_eq!(app.post_delegation(&app.delegation_body(&phone)).await.status, 200, "the phone's token works before");
    let new_email = format!("sdk-{}@example.com", rt_domain::random::alphanumeric(8).to_lowercase());

    let env = [
        ("RT_BASE", app.base.clone()),
        ("RT_DOMAIN", DOMAIN.to_owned()),
        ("RT_CLIENT_ID", m2m.id.to_string()),
        ("RT_CLIENT_SECRET", secret),
        ("RT_USER_ID", app.user.user.id.to_string()),
        ("RT_APP_CLIENT_ID", app.client.id.to_string()),
        ("RT_EXPECTED_COUNT", (SEEDED + 1).to_string()),
        ("RT_PHONE_DEVICE", "sdk-phone".to_owned()),
        ("RT_PHONE_CREDENTIAL_ID", phone_id.clone()),
        ("RT_NEW_USER_EMAIL", new_email.clone()),
        ("NODE_NO_WARNINGS", "1".to_owned()),
    ];
    let started = Instant::now();
    let out = node(&root, "tests/node/management-sdk.mjs", &env).await;
    let result: Value = out.result("the auth0 v7 SDK script", started);
    assert_eq!(result["listed"], SEEDED + 1);
    assert_eq!(result["deleted_credential"], phone_id.as_str());

    // The SDK's delete revoked the phone's refresh token, and only that one.
    let d = app.post_delegation(&app.delegation_body(&phone)).await;
    assert_eq!(d.status, 403, "the deleted credential's token must stop working: {}", d.body);
    assert_eq!(d.json()["error"], "invalid_grant");
    let d = app.post_delegation(&app.delegation_body(&tablets[0])).await;
    assert_eq!(d.status, 200, "the other credentials still work: {}", d.body);
    assert_eq!(app.credential_items().await.len(), SEEDED);

    // The user the SDK created and deleted is gone, by id and by e-mail.
    let created = UserId::parse(result["created_user"].as_str().expect("created_user")).expect("user id");
    assert!(app.store.get_user(&created).await.expect("get user").is_none(), "{created} still exists");
    let email = Email::parse(&new_email).expect("email");
    assert!(app.store.get_user_by_email(&email).await.expect("by email").is_none(), "{new_email} still exists");
    assert!(app.store.get_user(&app.user.user.id).await.expect("get user").is_some(), "the seeded user is untouched");

    // The client the SDK created and changed holds the merged refresh-token settings.
    let id = ClientId::parse(result["created_client"].as_str().expect("created_client")).expect("client id");
    let client = app.store.get_client(&id, Freshness::Fresh).await.expect("get client").expect("the client");
    let rt = client.refresh_token;
    assert_eq!((rt.rotation_type, rt.expiration_type), (RotationType::NonRotating, ExpirationType::Expiring));
    assert_eq!((rt.leeway, rt.absolute_lifetime(), rt.idle_lifetime()), (3, Some(86_400), None));
}
