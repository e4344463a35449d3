//! The dashboard over HTTP: who gets in, CSRF, escaping, security headers, sign-out.

use reqwest::Method;
use rt_tests::TestApp;

#[tokio::test]
async fn anonymous_visitors_and_non_administrators_get_the_sign_in_page_never_data() {
    let app = TestApp::spawn().await;
    for path in [
        "/dashboard",
        "/dashboard/users",
        &app.dashboard_user_path(),
        &format!("{}/devices", app.dashboard_user_path()),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/dashboard/login"), "{path}");
        assert!(!r.body.contains(&app.user.email));
    }
    // A valid, non-administrator account.
    let r = app.dashboard_sign_in(&app.user.email, &app.user.password).await.expect_err("not an administrator");
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none_or(|c| !c.starts_with("rt_admin=")));
    assert!(r.body.contains("Wrong email or password, or not an administrator."));
    // Same answer for a wrong password.
    let (admin, _) = app.admin().await;
    let r = app.dashboard_sign_in(&admin, "Wrong-password-1").await.expect_err("wrong password");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong email or password, or not an administrator."));
    // A forged cookie.
    let r = app.dashboard_get("/dashboard/users", "rt_admin=eyJ2IjoxfQ.AAAA").await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
async fn the_sign_in_form_must_come_from_our_page() {
    let app = TestApp::spawn().await;
    let (admin, password) = app.admin().await;
    let r = app
        .dashboard_post("/dashboard/login", None, &[("login_csrf", "x"), ("username", &admin), ("password", &password)])
        .await;
    assert_eq!(r.status, 403, "login CSRF: no cookie, no session");
    assert!(r.header("set-cookie").is_none_or(|c| !c.starts_with("rt_admin=")));
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_revokes_nothing() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("my-device").await;
    let (admin, password) = app.admin().await;
    let (cookie_a, csrf_a) = app.dashboard_sign_in(&admin, &password).await.expect("session a");
    let (_cookie_b, csrf_b) = app.dashboard_sign_in(&admin, &password).await.expect("session b");
    assert_ne!(csrf_a, csrf_b, "each session has its own token");
    let unlink = format!("{}/devices/unlink", app.dashboard_user_path());
    let revoke_all = format!("{}/revoke-all", app.dashboard_user_path());

    for (name, cookie, form) in [
        ("no token", Some(cookie_a.as_str()), vec![("device", "my-device")]),
        ("another session's token", Some(cookie_a.as_str()), vec![("csrf", csrf_b.as_str()), ("device", "my-device")]),
        ("no session", None, vec![("csrf", csrf_a.as_str()), ("device", "my-device")]),
    ] {
        let r = app.dashboard_post(&unlink, cookie, &form).await;
        assert_eq!(r.status, 403, "{name}");
        let r = app.dashboard_post(&revoke_all, cookie, &form).await;
        assert_eq!(r.status, 403, "{name}");
        assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 200, "{name}: nothing revoked");
    }
    // The right token from another origin.
    let r = app
        .http
        .post(format!("{}{unlink}", app.base))
        .header("cookie", &cookie_a)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf_a.as_str()), ("device", "my-device")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 200);
    // GET never changes anything.
    let r = app.dashboard_get(&format!("{unlink}?device=my-device&csrf={csrf_a}"), &cookie_a).await;
    assert_eq!(r.status, 200, "the confirmation page");
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 200);

    // With the session's own token: revoked.
    let r = app.dashboard_post(&unlink, Some(&cookie_a), &[("csrf", &csrf_a), ("device", "my-device")]).await;
    assert_eq!(r.status, 303);
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 403);
}

#[tokio::test]
async fn device_names_are_escaped_and_pages_carry_a_strict_policy() {
    let app = TestApp::spawn().await;
    let payload = r#"<img src=x onerror=alert(1)>"'&"#;
    app.obtain_refresh_token(payload).await;
    let (admin, password) = app.admin().await;
    let (cookie, _) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    let r = app.dashboard_get(&format!("{}/devices", app.dashboard_user_path()), &cookie).await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("<img"), "the payload is never markup");
    assert!(r.body.contains("&#60;img src=x onerror=alert(1)&#62;&#34;&#39;&#38;"), "{}", r.body);
    let csp = r.header("content-security-policy").unwrap();
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"]
    {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(!r.body.contains("<script>") && !r.body.contains(" style="), "no inline script or style");
    let confirm = app
        .dashboard_get(
            &format!(
                "{}/devices/unlink?device={}",
                app.dashboard_user_path(),
                form_urlencoded::byte_serialize(payload.as_bytes()).collect::<String>()
            ),
            &cookie,
        )
        .await;
    assert!(!confirm.body.contains("<img") && confirm.body.contains("&#60;img"));
    let css = app.get("/dashboard/assets/dashboard.css").await;
    assert_eq!((css.status, css.header("content-type")), (200, Some("text/css; charset=utf-8")));
    assert_eq!(app.get("/dashboard/assets/../../etc/passwd").await.status, 404);
    assert_eq!(app.get("/dashboard/assets/nope.js").await.status, 404);
}

#[tokio::test]
async fn sessions_end_on_sign_out_demotion_and_expiry() {
    let app = TestApp::spawn().await;
    let (admin, password) = app.admin().await;
    let (cookie, csrf) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    let (other, _) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    assert_eq!(app.dashboard_get("/dashboard/users", &cookie).await.status, 200);
    // A sign-out needs the CSRF token, and ends every session of that administrator.
    assert_eq!(app.dashboard_post("/dashboard/logout", Some(&cookie), &[]).await.status, 403);
    let r = app.dashboard_post("/dashboard/logout", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(app.dashboard_get("/dashboard/users", &cookie).await.status, 303);
    assert_eq!(app.dashboard_get("/dashboard/users", &other).await.status, 303);
    app.clock.advance_secs(1);

    // Demoted through the Management API: the session stops working.
    let (cookie, _) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    let token = app.management_token(&["read:users", "update:users"]).await;
    let found = app.mgmt(Method::GET, &format!("/api/v2/users?q=email:{admin}"), Some(&token), None).await.json();
    let id: String = form_urlencoded::byte_serialize(found[0]["user_id"].as_str().unwrap().as_bytes()).collect();
    let r = app
        .mgmt(
            Method::PATCH,
            &format!("/api/v2/users/{id}"),
            Some(&token),
            Some(&serde_json::json!({"app_metadata": {"admin": false}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.dashboard_get("/dashboard/users", &cookie).await.status, 303);

    // Promoted again: sessions last 8 hours.
    app.mgmt(
        Method::PATCH,
        &format!("/api/v2/users/{id}"),
        Some(&token),
        Some(&serde_json::json!({"app_metadata": {"admin": true}})),
    )
    .await;
    let (cookie, _) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    app.clock.advance_secs(8 * 3600);
    assert_eq!(app.dashboard_get("/dashboard/users", &cookie).await.status, 303);
}

#[tokio::test]
async fn users_list_searches_and_pages() {
    let app = TestApp::spawn().await;
    let (admin, password) = app.admin().await;
    for i in 0..25 {
        let u =
            rt_devkit::seed::user(&format!("zz-{i:02}@example.com"), "Passw0rd-zz", "Zed", false, app.now()).unwrap();
        rt_domain::ports::UserStore::create_user(&app.store, &u).await.unwrap();
    }
    let (cookie, _) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    let all = app.dashboard_get("/dashboard/users", &cookie).await;
    assert!(all.body.contains("27 in all") && all.body.contains("20 shown"), "{}", all.body);
    assert!(!all.body.contains("First page"));
    let found = app.dashboard_get("/dashboard/users?q=ZZ-1", &cookie).await;
    assert!(found.body.contains("10 in all"), "prefix search, case-insensitive");
    assert!(found.body.contains("zz-10@example.com") && !found.body.contains("zz-20@example.com"));
    assert!(!found.body.contains(">Next<"), "one page");
    // The next page by checkpoint (the link the page shows).
    let next = rt_tests::link(&all.body, "Next").replace("&amp;", "&");
    assert!(next.starts_with("/dashboard/users?from="), "{next}");
    let second = app.dashboard_get(&next, &cookie).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(second.body.contains("7 shown") && second.body.contains("zz-24@example.com"), "{}", second.body);
    assert!(!second.body.contains("zz-00@example.com") && !second.body.contains(">Next<"));
    assert!(second.body.contains("First page"));
    // Bounded input: a search longer than any e-mail address, a forged checkpoint.
    let long = app.dashboard_get(&format!("/dashboard/users?q={}", "a".repeat(2000)), &cookie).await;
    assert_eq!(long.status, 400, "{}", long.body);
    assert!(long.body.contains("longer than any e-mail address"));
    assert_eq!(app.dashboard_get("/dashboard/users?from=%25%25%25", &cookie).await.status, 400);
    let user = app.dashboard_get(&app.dashboard_user_path(), &cookie).await;
    assert!(user.body.contains(app.user.user.id.as_str()) && user.body.contains("Details"));
    assert_eq!(app.dashboard_get("/dashboard/users/auth0%7C000000000000000000000000", &cookie).await.status, 404);
    assert_eq!(app.dashboard_get("/dashboard/users/garbage%zz", &cookie).await.status, 404);
}

#[tokio::test]
async fn the_users_page_shows_live_devices_without_reading_any_credential() {
    let app = TestApp::spawn().await;
    for device in ["phone", "phone", "laptop"] {
        app.obtain_refresh_token(device).await;
    }
    let (admin, password) = app.admin().await;
    let (cookie, csrf) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    let devices_of_user = |body: &str| -> String {
        let row = body.split("<tr>").find(|r| r.contains(&app.user.email)).expect("the user's row").to_owned();
        let cell = row.split(r#"data-label="Devices" class="num">"#).nth(1).expect("the Devices cell");
        cell.split('<').next().unwrap().trim().to_owned()
    };
    app.layer.take_operations();
    let r = app.dashboard_get("/dashboard/users", &cookie).await;
    assert_eq!(r.status, 200);
    assert_eq!(devices_of_user(&r.body), "2", "phone and laptop");
    let mut ops = app.layer.take_operations();
    ops.sort();
    assert_eq!(ops, ["BatchGetItem", "GetItem", "Query", "Query"], "the session's user, a page and its count");

    // UNLINK the phone: one device left.
    let unlink = format!("{}/devices/unlink", app.dashboard_user_path());
    let r = app.dashboard_post(&unlink, Some(&cookie), &[("csrf", &csrf), ("device", "phone")]).await;
    assert_eq!(r.status, 303);
    assert_eq!(devices_of_user(&app.dashboard_get("/dashboard/users", &cookie).await.body), "1");
}

#[tokio::test]
async fn the_devices_tab_shows_when_each_device_expires_and_leaves_expired_ones_out() {
    use rt_domain::client::{ExpirationType, RefreshTokenPolicy};
    let app = TestApp::spawn().await;
    app.obtain_refresh_token("desktop").await;
    let (admin, password) = app.admin().await;
    let (cookie, _) = app.dashboard_sign_in(&admin, &password).await.unwrap();
    let devices = format!("{}/devices", app.dashboard_user_path());
    let expires = |body: &str, device: &str| -> Option<String> {
        let row = body.split("<tr>").find(|r| r.contains(&format!(r#"<td class="device">{device}</td>"#)))?;
        let cell = row.split(r#"data-label="Expires" class="muted expires">"#).nth(1)?;
        Some(cell.split('<').next()?.trim().to_owned())
    };
    let page = app.dashboard_get(&devices, &cookie).await;
    assert!(page.body.contains("<th>Expires</th>"), "{}", page.body);
    assert_eq!(expires(&page.body, "desktop").as_deref(), Some("never"));

    // An idle lifetime of an hour (seen by warm functions within their 30 s client cache).
    app.set_refresh_token_policy(RefreshTokenPolicy {
        expiration_type: ExpirationType::Expiring,
        idle_token_lifetime: 3_600,
        infinite_idle_token_lifetime: false,
        ..RefreshTokenPolicy::default()
    })
    .await;
    app.clock.advance_secs(1_800);
    let t1 = app.now();
    app.obtain_refresh_token("phone").await;
    let date = |t: rt_domain::clock::Timestamp| {
        let s = t.to_rfc3339();
        format!("{} {} UTC", &s[..10], &s[11..16])
    };
    let page = app.dashboard_get(&devices, &cookie).await;
    assert_eq!(expires(&page.body, "phone"), Some(date(t1.plus_secs(3_600))));
    assert_eq!(expires(&page.body, "desktop"), Some(date(t1.plus_secs(1_800))), "idle since its issue");

    // Past the desktop's end: it is gone from the page (its record waits for the sweep).
    app.clock.advance_secs(1_801);
    let page = app.dashboard_get(&devices, &cookie).await;
    assert_eq!(expires(&page.body, "desktop"), None, "{}", page.body);
    assert!(page.body.contains("1 refresh token(s) on 1 device(s)"), "{}", page.body);
    assert_eq!(app.credential_items().await.len(), 2);
}
