//! The sweep of expired records (`sweep-expired`, run on a schedule): its handler over DynamoDB
//! (moto through the semantics layer), after the HTTP functions have issued and used tokens.

use reqwest::Method;
use rt_domain::client::{ExpirationType, RefreshTokenPolicy};
use rt_domain::ports::{ClientStore, CredentialStore, UserStore};
use rt_domain::sweep::GRACE_SECS;
use rt_domain::token::RefreshToken;
use rt_tests::TestApp;

/// Expiring: `absolute` seconds from issue, `idle` seconds from the last use.
fn expiring(absolute: u32, idle: u32) -> RefreshTokenPolicy {
    RefreshTokenPolicy {
        expiration_type: ExpirationType::Expiring,
        token_lifetime: absolute,
        infinite_token_lifetime: false,
        idle_token_lifetime: idle,
        infinite_idle_token_lifetime: false,
        ..RefreshTokenPolicy::default()
    }
}

#[tokio::test]
async fn the_sweep_removes_expired_tokens_counts_them_off_their_devices_and_nothing_else() {
    let app = TestApp::spawn().await;
    app.set_refresh_token_policy(expiring(86_400, 3_600)).await;
    let phone = app.obtain_refresh_token("phone").await;
    let laptop = app.obtain_refresh_token("laptop").await;
    // A token of an application whose tokens never expire, issued long ago, never used.
    let forever = rt_devkit::seed::native_client("Forever", vec![], vec![], app.now());
    assert!(app.store.create_client(&forever).await.unwrap());
    let old = RefreshToken::generate(&app.user.user.id, app.user.user.rev);
    let old_cred = rt_tests::credential(&old, &forever.id, "desktop", app.now().plus_secs(-400 * 86_400));
    app.store.issue_credential(&old_cred).await.unwrap();
    let devices = || async { app.store.get_user(&app.user.user.id).await.unwrap().unwrap().live_devices };
    assert_eq!(devices().await, 3);

    // The laptop is used half an hour in; the phone never. An hour and a grace period after
    // the sign-in, the phone has expired (idle) and is refused; its record is still there.
    app.clock.advance_secs(1_800);
    assert_eq!(app.post_delegation(&app.delegation_body(&laptop)).await.status, 200);
    app.clock.advance_secs(1_800 + GRACE_SECS + 1);
    assert_eq!(app.post_delegation(&app.delegation_body(&phone)).await.status, 403);
    assert_eq!(app.credential_items().await.len(), 3);
    assert_eq!(devices().await, 3, "counted until the sweep removes it");

    app.layer.take_operations();
    let summary = app.sweep().await;
    assert_eq!(summary["removed"], 1, "{summary}");
    assert_eq!(summary["complete"], true);
    assert_eq!((summary["clients_swept"].as_u64(), summary["credentials_examined"].as_u64()), (Some(1), Some(2)));
    // The clients (one page: keys + items), the expiring client's 16 shards and its
    // credentials, then one transaction per expired token. The other client is not walked.
    // Then the 16 partitions of the codes (none expired), and the 32 feed shards of each of the
    // 7 days before the audit log's retention (empty).
    let mut ops = app.layer.take_operations();
    ops.sort();
    let mut expected = vec!["BatchGetItem", "BatchGetItem", "TransactWriteItems"];
    expected.extend(std::iter::repeat_n("Query", 17 + 16 + 7 * 32));
    expected.sort();
    assert_eq!(ops, expected);

    let left: Vec<_> = app.credential_items().await;
    assert_eq!(left.len(), 2);
    let phone_id = RefreshToken::parse(&phone).unwrap();
    assert!(app.store.get_credential(phone_id.id()).await.unwrap().is_none());
    assert!(app.store.get_credential(old.id()).await.unwrap().is_some(), "never expires");
    assert_eq!(devices().await, 2, "laptop and desktop");
    assert_eq!(app.post_delegation(&app.delegation_body(&laptop)).await.status, 200, "a live token still works");

    // Again: nothing more to remove.
    let summary = app.sweep().await;
    assert_eq!((summary["removed"].as_u64(), summary["complete"].as_bool()), (Some(0), Some(true)));
    assert_eq!(app.credential_items().await.len(), 2);
}

#[tokio::test]
async fn a_rotating_family_is_swept_at_its_absolute_end_however_often_it_rotated() {
    let app = TestApp::spawn().await;
    let policy =
        RefreshTokenPolicy { rotation_type: rt_domain::client::RotationType::Rotating, ..expiring(3_600, 1_200) };
    app.set_refresh_token_policy(policy).await;
    let mut current = app.obtain_refresh_token("browser").await;
    let refresh = |rt: String| {
        let body = serde_json::json!({"grant_type": "refresh_token", "client_id": app.client.id.as_str(), "refresh_token": rt});
        let app = &app;
        async move { app.post_json("/oauth/token", &body).await }
    };
    for _ in 0..3 {
        app.clock.advance_secs(1_000);
        let r = refresh(current).await;
        assert_eq!(r.status, 200, "{}", r.body);
        current = r.json()["refresh_token"].as_str().unwrap().to_owned();
    }
    // 3000 s in, used just now: the family lives until 3600 s, its absolute end.
    assert_eq!(app.sweep().await["removed"], 0);
    assert_eq!(app.credential_items().await.len(), 1);
    app.clock.advance_secs(600 + GRACE_SECS + 1);
    assert_eq!(app.sweep().await["removed"], 1);
    assert!(app.credential_items().await.is_empty());
    assert_eq!(refresh(current).await.status, 403);
}

#[tokio::test]
async fn listings_leave_expired_tokens_out_before_the_sweep_removes_them() {
    let app = TestApp::spawn().await;
    app.set_refresh_token_policy(expiring(86_400, 3_600)).await;
    for device in ["phone", "tablet"] {
        app.obtain_refresh_token(device).await;
        app.clock.advance_secs(600);
    }
    let token = app.management_token(&["read:device_credentials"]).await;
    let uid: String = form_urlencoded::byte_serialize(app.user.user.id.as_str().as_bytes()).collect();
    let list = || async {
        let path = format!("/api/v2/device-credentials?user_id={uid}&include_totals=true");
        app.mgmt(Method::GET, &path, Some(&token), None).await.json()
    };
    assert_eq!(list().await["total"], 2);
    // The phone (issued ten minutes earlier) is past its idle end, the tablet not yet.
    app.clock.advance_secs(3_600 - 1_200 + 30);
    let listed = list().await;
    assert_eq!((listed["total"].as_u64(), listed["length"].as_u64()), (Some(1), Some(1)), "{listed}");
    assert_eq!(listed["device_credentials"][0]["device_name"], "tablet");
    assert_eq!(app.credential_items().await.len(), 2, "the phone's record waits for the sweep");
    // After the sweep, the same answer.
    app.clock.advance_secs(GRACE_SECS);
    assert_eq!(app.sweep().await["removed"], 1);
    assert_eq!(list().await["total"], 1);
}
