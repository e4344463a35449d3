//! The dashboard in a real headless Chromium (`tests/node/dashboard-browser.mjs`, Playwright
//! driving Debian's `chromium`): sign in → Users → the user → Devices → X → UNLINK, and the
//! refresh tokens of the unlinked device fail at /delegation afterwards; then the History tab
//! shows the sign-ins, the exchanges and the UNLINK (by the dashboard), a page at a time.
//!
//! Screenshots go to `target/screenshots/`; with `RT_UPDATE_SCREENSHOTS=1` to
//! `docs/screenshots/` (the ones the README shows).

use rt_devkit::paths::repo_root;
use rt_domain::ports::UserStore;
use rt_tests::TestApp;
use rt_tests::node::{chromium, node, require_package};

const XSS: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_unlink_in_a_real_browser() {
    let root = repo_root();
    require_package(&root, "playwright-core");
    let chromium = chromium();
    let app = TestApp::spawn().await;
    let admin_password = rt_devkit::seed::random_password();
    let admin = rt_devkit::seed::user("admin@example.com", &admin_password, "Admin", true, app.now()).unwrap();
    app.store.create_user(&admin).await.unwrap();

    // Two refresh tokens on my-device, one on a device named like an HTML payload, one on a laptop.
    let phone = [app.obtain_refresh_token("my-device").await, app.obtain_refresh_token("my-device").await];
    let xss = app.obtain_refresh_token(XSS).await;
    let laptop = app.obtain_refresh_token("laptop").await;
    for t in phone.iter().chain([&xss, &laptop]) {
        assert_eq!(app.post_delegation(&app.delegation_body(t)).await.status, 200);
    }
    let refresh = serde_json::json!({"grant_type": "refresh_token", "client_id": app.client.id.as_str(), "refresh_token": laptop});
    assert_eq!(app.post_json("/oauth/token", &refresh).await.status, 200);
    // Twenty older events (yesterday), so that the History tab has a second page.
    for k in 0..20 {
        let e = rt_domain::audit::AuditEvent::new(
            rt_domain::audit::EventType::SuccessRefreshExchange,
            app.now().plus_secs(-86_400 - k * 60),
            rt_domain::audit::Source::new("198.51.100.7", Some("OlderAgent/1.0")),
        )
        .user(&app.user.user.id, None);
        rt_domain::ports::AuditLog::record_event(&app.store, &e).await.unwrap();
    }
    // The browser's UNLINK comes a second after everything above (the test clock is manual).
    app.clock.advance_secs(1);
    // 4 sign-ins, 4 delegations, 1 refresh, the 20 older ones, and the UNLINK the browser does.
    let history_events = 4 + 4 + 1 + 20 + 1;

    let shots = if std::env::var("RT_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    };
    let out = node(
        &root,
        "tests/node/dashboard-browser.mjs",
        &[
            ("RT_BASE", app.base.clone()),
            ("RT_ADMIN_EMAIL", "admin@example.com".into()),
            ("RT_ADMIN_PASSWORD", admin_password),
            ("RT_USER_EMAIL", app.user.email.clone()),
            ("RT_USER_PASSWORD", app.user.password.clone()),
            ("RT_XSS_DEVICE", XSS.into()),
            ("RT_HISTORY_EVENTS", history_events.to_string()),
            ("RT_SHOTS", shots.display().to_string()),
            ("CHROMIUM", chromium),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "browser run failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    print!("{}", out.stdout);

    // UNLINK revoked both tokens of my-device (and the no-JS UNLINK the laptop's); the
    // payload-named device was left alone.
    for t in phone.iter().chain([&laptop]) {
        let r = app.post_delegation(&app.delegation_body(t)).await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    assert_eq!(app.post_delegation(&app.delegation_body(&xss)).await.status, 200);
}
