//! The Management API: machine tokens, device credentials, users and clients.

use base64::Engine as _;
use reqwest::Method;
use rt_domain::management::SCOPES;
use rt_tests::{INVALID_RT, TestApp, jwt_claims};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_seed_revoke_story() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("my-device").await;
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 200);

    let token = app.management_token(&["read:device_credentials", "delete:device_credentials"]).await;
    let path = format!(
        "/api/v2/device-credentials?type=refresh_token&user_id={}&client_id={}",
        enc(app.user.user.id.as_str()),
        app.client.id
    );
    let list = app.mgmt(Method::GET, &path, Some(&token), None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let items = list.json();
    let items = items.as_array().expect("a bare array without include_totals");
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["device_name"], "my-device");
    assert_eq!(item["type"], "refresh_token");
    assert_eq!(item["user_id"], app.user.user.id.to_string());
    assert_eq!(item["client_id"], app.client.id.to_string());
    let id = item["id"].as_str().unwrap();
    assert!(id.starts_with("dcr_") && id.len() == 20, "{id}");

    let del = app.mgmt(Method::DELETE, &format!("/api/v2/device-credentials/{id}"), Some(&token), None).await;
    assert_eq!(del.status, 204, "{}", del.body);
    assert!(del.body.is_empty());
    let after = app.post_delegation(&app.delegation_body(&rt)).await;
    assert_eq!(after.status, 403);
    assert_eq!(after.json(), json!({"error": "invalid_grant", "error_description": INVALID_RT}));
    let again = app.mgmt(Method::DELETE, &format!("/api/v2/device-credentials/{id}"), Some(&token), None).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.json()["statusCode"], 404);
    assert_eq!(again.json()["error"], "Not Found");
}

#[tokio::test]
async fn client_credentials_grant() {
    let app = TestApp::spawn().await;
    let (c, secret) = app.m2m_client(&["read:users", "read:clients"]).await;
    let audience = format!("{}api/v2/", app.issuer());
    let cid = c.id.to_string();

    // client_secret_post, JSON.
    let r = app
        .post_json("/oauth/token", &json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret, "audience": audience}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    assert_eq!(body["scope"], "read:clients read:users");
    let claims = app.verify_with_jwks(body["access_token"].as_str().unwrap(), &audience).await;
    assert_eq!(claims["sub"], format!("{cid}@clients"));
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(claims["azp"], cid);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 86400);

    // client_secret_basic, form, with a narrower scope: a client registered for Basic (node-auth0
    // sends its secret in the body; a client is held to the method it registered).
    let (basic_client, basic_secret) = app
        .m2m_client_authenticating(
            &["read:users", "read:clients"],
            rt_domain::client::TokenEndpointAuthMethod::ClientSecretBasic,
        )
        .await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{basic_secret}", basic_client.id));
    let r = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials"), ("audience", &audience), ("scope", "read:users")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["scope"], "read:users");

    let post = |body: Value| {
        let app = &app;
        async move { app.post_json("/oauth/token", &body).await }
    };
    let cases = [
        (
            json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": "wrong", "audience": audience}),
            401,
            "invalid_client",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": "NoSuchClient", "client_secret": secret, "audience": audience}),
            401,
            "invalid_client",
        ),
        (json!({"grant_type": "client_credentials", "client_id": cid, "audience": audience}), 401, "invalid_client"),
        (
            json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret, "audience": "https://other/api/"}),
            403,
            "access_denied",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}),
            400,
            "invalid_request",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret, "audience": audience, "scope": "delete:users"}),
            403,
            "access_denied",
        ),
        (json!({"grant_type": "password", "client_id": cid, "client_secret": secret}), 400, "unsupported_grant_type"),
    ];
    for (body, status, error) in cases {
        let r = post(body.clone()).await;
        assert_eq!((r.status, r.json()["error"].as_str().unwrap()), (status, error), "{body}: {}", r.body);
        assert!(r.json()["error_description"].is_string());
    }
    // A public client may not use the grant.
    let r = post(json!({"grant_type": "client_credentials", "client_id": app.client.id.to_string(), "client_secret": "x", "audience": audience})).await;
    assert_eq!(r.status, 401);
    // A confidential client without the grant.
    let mut web = rt_devkit::seed::management_client("No grant", "s3cret-s3cret", app.now());
    web.grant_types = vec!["implicit".into()];
    rt_domain::ports::ClientStore::create_client(&app.store, &web).await.unwrap();
    let r = post(json!({"grant_type": "client_credentials", "client_id": web.id.to_string(), "client_secret": "s3cret-s3cret", "audience": audience})).await;
    assert_eq!((r.status, r.json()["error"].as_str().unwrap()), (403, "unauthorized_client"));
}

#[tokio::test]
async fn bearer_tokens_are_checked_strictly() {
    let app = TestApp::spawn().await;
    let good = app.management_token(&["read:users"]).await;
    let path = "/api/v2/users";
    let call = |t: Option<String>| {
        let app = &app;
        async move { app.mgmt(Method::GET, path, t.as_deref(), None).await }
    };
    assert_eq!(call(Some(good.clone())).await.status, 200);

    let claims = jwt_claims(&good);
    let keys = &app.stack.app.keys;
    let sign = |c: &Value| keys.sign(c).unwrap();
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = "https://other.example/api/v2/".into();
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = "https://evil.example/".into();
    let mut expired = claims.clone();
    expired["exp"] = (app.now().secs() - 10).into();
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let payload = b64(&claims.to_string());
    let alg_none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
    let jwk = serde_json::to_string(keys.verifying_keys().find(keys.kid()).unwrap().jwk()).unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(keys.kid().to_owned());
    let hs256 =
        jsonwebtoken::encode(&hs_header, &claims, &jsonwebtoken::EncodingKey::from_secret(jwk.as_bytes())).unwrap();
    let foreign = rt_jwt::SigningKeys::from_pem(&rt_jwt::generate_pem().unwrap()).unwrap().sign(&claims).unwrap();
    // Our own keys' valid signatures under a header whose kid names a key of another algorithm.
    use rt_jwt::SigningAlg::{ES256, RS256};
    let swapped = |alg: jsonwebtoken::Algorithm, kid: &str, key: jsonwebtoken::EncodingKey| {
        let mut h = jsonwebtoken::Header::new(alg);
        h.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    };
    let (rs_kid, ec_kid) = (keys.kid_for(RS256).unwrap(), keys.kid_for(ES256).unwrap());
    let rsa = jsonwebtoken::EncodingKey::from_rsa_pem(rt_tests::test_key(RS256, 0).expose_secret().as_bytes()).unwrap();
    let ec = jsonwebtoken::EncodingKey::from_ec_pem(rt_tests::test_key(ES256, 0).expose_secret().as_bytes()).unwrap();
    let rs256_naming_the_ec_key = swapped(jsonwebtoken::Algorithm::RS256, ec_kid, rsa);
    let es256_naming_the_rsa_key = swapped(jsonwebtoken::Algorithm::ES256, rs_kid, ec);
    let mut tampered = good.clone();
    tampered.insert(good.find('.').unwrap() + 5, 'A');

    for (name, token) in [
        ("no token", None),
        ("garbage", Some("not-a-jwt".to_owned())),
        ("wrong audience", Some(sign(&wrong_aud))),
        ("wrong issuer", Some(sign(&wrong_iss))),
        ("expired", Some(sign(&expired))),
        ("alg none", Some(alg_none)),
        ("HS256 signed with the public key", Some(hs256)),
        ("another key", Some(foreign)),
        ("RS256 naming the EC key", Some(rs256_naming_the_ec_key)),
        ("ES256 naming the RSA key", Some(es256_naming_the_rsa_key)),
        ("tampered", Some(tampered)),
    ] {
        let r = call(token).await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        let b = r.json();
        assert_eq!((b["statusCode"].as_i64(), b["error"].as_str()), (Some(401), Some("Unauthorized")), "{name}");
        assert!(b["message"].is_string(), "{name}");
    }
    let r = app.http.get(format!("{}{path}", app.base)).header("authorization", "Basic abc").send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A valid token without the scope.
    let weak = app.management_token(&["read:clients"]).await;
    let r = call(Some(weak.clone())).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:users","errorCode":"insufficient_scope"})
    );
    let r = app.mgmt(Method::GET, "/api/v2/device-credentials?user_id=x", Some(&weak), None).await;
    assert_eq!(r.json()["message"], "Insufficient scope, expected any of: read:device_credentials");

    // Expiry, by the clock: tokens live 24 hours.
    app.clock.advance_secs(86_401);
    assert_eq!(call(Some(good)).await.status, 401);
}

#[tokio::test]
async fn listing_device_credentials_pages_and_selects_fields() {
    let app = TestApp::spawn().await;
    app.obtain_refresh_token("phone").await;
    app.seed_credentials(104, "tablet").await;
    let token = app.management_token(SCOPES).await;
    let uid = enc(app.user.user.id.as_str());
    let get = |q: String| {
        let (app, token) = (&app, &token);
        async move { app.mgmt(Method::GET, &format!("/api/v2/device-credentials?{q}"), Some(token), None).await }
    };

    let r = get(format!("user_id={uid}&page=0&per_page=50&include_totals=true")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!((b["start"].as_i64(), b["limit"].as_i64(), b["total"].as_i64()), (Some(0), Some(50), Some(105)));
    assert_eq!(b["device_credentials"].as_array().unwrap().len(), 50);
    let mut ids = std::collections::BTreeSet::new();
    for page in 0..3 {
        let b = get(format!("user_id={uid}&page={page}&per_page=50&include_totals=true")).await.json();
        for i in b["device_credentials"].as_array().unwrap() {
            assert!(ids.insert(i["id"].as_str().unwrap().to_owned()), "no item twice");
        }
    }
    assert_eq!(ids.len(), 105);
    let past = get(format!("user_id={uid}&page=9&per_page=50&include_totals=true")).await;
    assert_eq!(past.status, 200);
    assert_eq!(past.json()["device_credentials"], json!([]));
    assert_eq!(get(format!("user_id={uid}&page=9")).await.json(), json!([]));

    let b = get(format!("user_id={uid}&client_id={}&fields=id,device_name&per_page=1", app.client.id)).await.json();
    assert_eq!(b[0].as_object().unwrap().keys().collect::<Vec<_>>(), ["device_name", "id"]);
    let b =
        get(format!("client_id={}&fields=device_id,type&include_fields=false&per_page=1", app.client.id)).await.json();
    assert_eq!(b[0].as_object().unwrap().len(), 4);
    assert_eq!(get(format!("user_id={uid}&type=public_key")).await.json(), json!([]));

    for bad in [
        format!("user_id={uid}&per_page=101"),
        format!("user_id={uid}&page=-1"),
        "type=refresh_token".into(),
        format!("user_id={uid}&fields=secret_hash"),
        format!("user_id={uid}&include_totals=maybe"),
        "user_id=%zz".into(),
    ] {
        let r = get(bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["statusCode"], 400);
    }

    // node-auth0 v2 sends `{}` and Content-Type: application/json on DELETE.
    let id = ids.iter().next().unwrap();
    let r = app
        .http
        .delete(format!("{}/api/v2/device-credentials/{id}", app.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app.mgmt(Method::DELETE, "/api/v2/device-credentials/not-an-id", Some(&token), None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn listed_refresh_tokens_say_when_they_expire_and_expired_ones_are_not_listed() {
    use rt_domain::client::{ExpirationType, RefreshTokenPolicy};
    let app = TestApp::spawn().await;
    let token = app.management_token(&["read:device_credentials"]).await;
    let uid = enc(app.user.user.id.as_str());
    let get = |q: String| {
        let (app, token) = (&app, &token);
        async move {
            let r = app.mgmt(Method::GET, &format!("/api/v2/device-credentials?{q}"), Some(token), None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()
        }
    };
    let by_device = |b: &Value, device: &str| -> Value {
        let items = b["device_credentials"].as_array().or(b.as_array()).unwrap().clone();
        items.into_iter().find(|i| i["device_name"] == device).unwrap_or(Value::Null)
    };
    // The default policy: tokens never expire, and say nothing of it.
    let t0 = app.now();
    app.obtain_refresh_token("desktop").await;
    let b = get(format!("user_id={uid}")).await;
    assert!(b[0].as_object().unwrap().get("expires_at").is_none(), "{b}");

    // A lifetime of a day and an idle lifetime of an hour, seen by every warm function once
    // its 30 s client cache has expired; it applies to the tokens issued before as well.
    app.set_refresh_token_policy(RefreshTokenPolicy {
        expiration_type: ExpirationType::Expiring,
        token_lifetime: 86_400,
        infinite_token_lifetime: false,
        idle_token_lifetime: 3_600,
        infinite_idle_token_lifetime: false,
        ..RefreshTokenPolicy::default()
    })
    .await;
    app.clock.advance_secs(31);
    let t1 = app.now();
    let phone = app.obtain_refresh_token("phone").await;
    app.clock.advance_secs(60);
    app.obtain_refresh_token("tablet").await;
    let b = get(format!("user_id={uid}&include_totals=true")).await;
    assert_eq!(b["total"], 3, "{b}");
    let at = |t: rt_domain::clock::Timestamp, secs: i64| json!(t.plus_secs(secs).to_rfc3339());
    assert_eq!(by_device(&b, "desktop")["expires_at"], at(t0, 3_600), "idle: an hour after its issue");
    assert_eq!(by_device(&b, "phone")["expires_at"], at(t1, 3_600));
    assert_eq!(by_device(&b, "tablet")["expires_at"], at(t1, 3_660));
    let iso = by_device(&b, "tablet")["expires_at"].as_str().unwrap().to_owned();
    assert!(iso.len() == 24 && iso.ends_with('Z') && &iso[10..11] == "T", "ISO 8601 UTC with milliseconds: {iso}");

    // The phone is used half an hour in: its idle end moves.
    app.clock.advance_secs(1_740);
    assert_eq!(app.post_delegation(&app.delegation_body(&phone)).await.status, 200);
    let b = get(format!("user_id={uid}&include_totals=true")).await;
    assert_eq!(by_device(&b, "phone")["expires_at"], at(t1, 1_800 + 3_600));

    // Past the desktop's end: two live tokens, pages and totals agree (v7 pages until a page
    // is short), by user and by client alike.
    app.clock.advance_secs(1_830);
    for filter in [format!("user_id={uid}"), format!("client_id={}", app.client.id)] {
        let b = get(format!("{filter}&include_totals=true")).await;
        assert_eq!((b["total"].as_u64(), b["length"].as_u64()), (Some(2), Some(2)), "{filter}: {b}");
        assert!(by_device(&b, "desktop").is_null(), "expired: not listed");
        let mut seen = vec![];
        for page in 0..3 {
            let b = get(format!("{filter}&include_totals=true&per_page=1&page={page}")).await;
            assert_eq!(b["total"], 2);
            seen.extend(b["device_credentials"].as_array().unwrap().iter().map(|i| i["device_name"].clone()));
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        let bare = get(format!("{filter}&per_page=1&page=1")).await;
        assert_eq!(bare.as_array().unwrap().len(), 1, "a full page without totals too");
    }
    let b = get(format!("user_id={uid}&fields=device_name,expires_at")).await;
    assert_eq!(b[0].as_object().unwrap().keys().collect::<Vec<_>>(), ["device_name", "expires_at"]);
    assert_eq!(app.credential_items().await.len(), 3, "the desktop's record stays until the sweep");

    // Past the tablet's too.
    app.clock.advance_secs(60);
    let b = get(format!("user_id={uid}&include_totals=true")).await;
    assert_eq!((b["total"].as_u64(), by_device(&b, "phone")["device_name"].as_str()), (Some(1), Some("phone")));
}

#[tokio::test]
async fn users_crud() {
    let app = TestApp::spawn().await;
    let token = app.management_token(SCOPES).await;
    let t = Some(token.as_str());
    let body = json!({"connection": "Username-Password-Authentication", "email": "New.Person@Example.com", "password": "Sup3r-secret", "name": "New Person"});
    let r = app.mgmt(Method::POST, "/api/v2/users", t, Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let u = r.json();
    let id = u["user_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("auth0|"));
    assert_eq!(u["email"], "new.person@example.com");
    assert_eq!(u["identities"][0]["provider"], "auth0");
    assert!(u.get("password").is_none() && !r.body.contains("argon2"));

    let dup = app.mgmt(Method::POST, "/api/v2/users", t, Some(&body)).await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["message"], "The user already exists.");
    for (bad, msg) in [
        (
            json!({"connection": "Username-Password-Authentication", "email": "w@example.com", "password": "short"}),
            "PasswordStrengthError",
        ),
        (json!({"connection": "Nope", "email": "w@example.com", "password": "Sup3r-secret"}), "connection"),
        (json!({"email": "w@example.com", "password": "Sup3r-secret"}), "connection"),
        (
            json!({"connection": "Username-Password-Authentication", "email": "not an email", "password": "Sup3r-secret"}),
            "email",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "w@example.com", "password": "Sup3r-secret", "role": "admin"}),
            "Additional properties",
        ),
    ] {
        let r = app.mgmt(Method::POST, "/api/v2/users", t, Some(&bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.json()["message"].as_str().unwrap().contains(msg), "{}", r.body);
    }
    let r = app
        .http
        .post(format!("{}/api/v2/users", app.base))
        .bearer_auth(&token)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let got = app.mgmt(Method::GET, &format!("/api/v2/users/{}", enc(&id)), t, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["name"], "New Person");
    let missing = app.mgmt(Method::GET, "/api/v2/users/auth0%7C000000000000000000000000", t, None).await;
    assert_eq!(missing.status, 404);

    let list = app.mgmt(Method::GET, "/api/v2/users?page=0&per_page=50&include_totals=true", t, None).await.json();
    assert_eq!(list["total"], 2);
    assert_eq!(list["length"], 2);
    let found = app
        .mgmt(Method::GET, &format!("/api/v2/users?q={}", enc("email:\"new.person@example.com\"")), t, None)
        .await
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    let prefix = app.mgmt(Method::GET, "/api/v2/users?q=new*&include_totals=true", t, None).await.json();
    assert_eq!(prefix["users"][0]["user_id"], id);
    assert_eq!(app.mgmt(Method::GET, "/api/v2/users?q=name:x", t, None).await.status, 400);

    let patched = app
        .mgmt(
            Method::PATCH,
            &format!("/api/v2/users/{}", enc(&id)),
            t,
            Some(&json!({"name": "Renamed", "app_metadata": {"admin": true}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["name"], "Renamed");
    assert_eq!(patched.json()["app_metadata"]["admin"], true);

    let del = app.mgmt(Method::DELETE, &format!("/api/v2/users/{}", enc(&id)), t, None).await;
    assert_eq!(del.status, 204);
    assert_eq!(app.mgmt(Method::GET, &format!("/api/v2/users/{}", enc(&id)), t, None).await.status, 404);
    assert_eq!(
        app.mgmt(Method::DELETE, &format!("/api/v2/users/{}", enc(&id)), t, None).await.status,
        204,
        "deleting again is fine"
    );
    // The e-mail is free again.
    assert_eq!(app.mgmt(Method::POST, "/api/v2/users", t, Some(&body)).await.status, 201);
}

#[tokio::test]
async fn users_are_paged_by_checkpoint_and_offset_pages_stay_shallow() {
    let app = TestApp::spawn().await;
    for i in 0..23 {
        let u =
            rt_devkit::seed::user(&format!("cp-{i:02}@example.com"), "Passw0rd-cp", "Cp", false, app.now()).unwrap();
        rt_domain::ports::UserStore::create_user(&app.store, &u).await.unwrap();
    }
    let token = app.management_token(&["read:users"]).await;
    let get = |q: String| {
        let (app, token) = (&app, &token);
        async move { app.mgmt(Method::GET, &format!("/api/v2/users?{q}"), Some(token), None).await }
    };
    // Checkpoint paging: every user once, in e-mail order, without gaps.
    let mut seen = vec![];
    let mut from = String::new();
    let mut pages = 0;
    loop {
        let r = get(format!("q={}&take=5&from={from}", enc("email:cp-*"))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        pages += 1;
        seen.extend(v["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        match v.get("next").and_then(Value::as_str) {
            Some(n) => from = enc(n),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let expected: Vec<String> = (0..23).map(|i| format!("cp-{i:02}@example.com")).collect();
    assert_eq!(seen, expected);
    // Without a search, the whole table by checkpoint: the 23, the app's user, the m2m's none.
    let first = get("take=100".into()).await.json();
    assert_eq!(first["users"].as_array().unwrap().len(), 24);
    assert!(first.get("next").is_none(), "the last page has no next");

    // Offset pages reach the first 1,000 results, no deeper (they read what they skip).
    assert_eq!(get("page=9&per_page=100".into()).await.status, 200);
    let deep = get("page=10&per_page=100".into()).await;
    assert_eq!(deep.status, 400, "{}", deep.body);
    assert!(deep.body.contains("from and take"), "{}", deep.body);
    assert_eq!(get("page=100000&per_page=100".into()).await.status, 400);
    // Checkpoints are opaque and checked; they do not mix with offsets.
    for bad in ["from=%25%25", "take=0", "take=101", "take=5&page=1", "take=5&include_totals=true"] {
        let r = get(bad.into()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["errorCode"], "invalid_query_string", "{bad}");
    }
    // Bounded q: 400, never a DynamoDB error.
    let r = get(format!("q={}", "a".repeat(2048))).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn a_password_change_revokes_every_refresh_token_of_the_user() {
    let app = TestApp::spawn().await;
    let live = app.obtain_refresh_token("phone").await;
    let seeded = app.seed_credentials(620, "tablet").await; // more than one page of the purge's queries
    let token = app.management_token(SCOPES).await;
    let uid = enc(app.user.user.id.as_str());
    let r = app
        .mgmt(Method::PATCH, &format!("/api/v2/users/{uid}"), Some(&token), Some(&json!({"password": "N3w-password!"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for t in [&live, &seeded[0], &seeded[619]] {
        assert_eq!(app.post_delegation(&app.delegation_body(t)).await.status, 403);
    }
    let left = app
        .mgmt(Method::GET, &format!("/api/v2/device-credentials?user_id={uid}&include_totals=true"), Some(&token), None)
        .await;
    assert_eq!(left.json()["total"], 0, "the records are gone too");
    // The new password works and yields a working token again.
    let r = app.login(&app.authorize_params("phone"), &app.user.email, "N3w-password!").await;
    let fresh = r.fragment["refresh_token"].clone();
    assert_eq!(app.post_delegation(&app.delegation_body(&fresh)).await.status, 200);
    assert_eq!(app.login(&app.authorize_params("phone"), &app.user.email, &app.user.password).await.resp.status, 401);
}

#[tokio::test]
async fn a_block_revokes_every_refresh_token_and_an_unblock_does_not_revive_them() {
    let app = TestApp::spawn().await;
    let phone = app.obtain_refresh_token("phone").await;
    let token = app.management_token(SCOPES).await;
    let path = format!("/api/v2/users/{}", enc(app.user.user.id.as_str()));
    let patch = |blocked: bool| {
        let (app, path, token) = (&app, &path, &token);
        async move { app.mgmt(Method::PATCH, path, Some(token), Some(&json!({ "blocked": blocked }))).await }
    };
    assert_eq!(patch(true).await.status, 200);
    assert_eq!(app.post_delegation(&app.delegation_body(&phone)).await.status, 403, "blocked");
    assert_eq!(patch(false).await.status, 200);
    assert_eq!(app.post_delegation(&app.delegation_body(&phone)).await.status, 403, "still dead after the unblock");
    assert!(app.credential_items().await.is_empty(), "its record is gone");
    // Signing in again yields a working token.
    let fresh = app.obtain_refresh_token("phone").await;
    assert_eq!(app.post_delegation(&app.delegation_body(&fresh)).await.status, 200);
    // Blocking an already blocked user changes nothing more.
    assert_eq!(patch(true).await.status, 200);
    let rev = rt_domain::ports::UserStore::get_user(&app.store, &app.user.user.id).await.unwrap().unwrap().rev;
    assert_eq!(patch(true).await.status, 200);
    assert_eq!(rt_domain::ports::UserStore::get_user(&app.store, &app.user.user.id).await.unwrap().unwrap().rev, rev);
}

#[tokio::test]
async fn deleting_a_user_with_a_thousand_tokens() {
    let app = TestApp::spawn().await;
    let tokens = app.seed_credentials(1000, "fleet").await;
    let token = app.management_token(SCOPES).await;
    let uid = enc(app.user.user.id.as_str());
    let started = std::time::Instant::now();
    let r = app.mgmt(Method::DELETE, &format!("/api/v2/users/{uid}"), Some(&token), None).await;
    let took = started.elapsed();
    assert_eq!(r.status, 204, "{}", r.body);
    println!("DELETE /api/v2/users/{{id}} with 1000 refresh tokens took {} ms", took.as_millis());
    for t in [&tokens[0], &tokens[500], &tokens[999]] {
        assert_eq!(app.post_delegation(&app.delegation_body(t)).await.status, 403);
    }
    assert!(app.credential_items().await.is_empty(), "no record left");
    assert_eq!(app.login(&app.authorize_params("x"), &app.user.email, &app.user.password).await.resp.status, 401);
}

#[tokio::test]
async fn a_deleted_users_tokens_fail_before_their_records_are_gone() {
    // An interrupted deletion: the user item is gone, the token records are not (yet).
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("phone").await;
    assert!(rt_domain::ports::UserStore::delete_user(&app.store, &app.user.user).await.unwrap());
    assert_eq!(app.credential_items().await.len(), 1, "the record is still there");
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 403);
    // Re-running the deletion finishes the cleanup.
    let token = app.management_token(SCOPES).await;
    let r = app
        .mgmt(Method::DELETE, &format!("/api/v2/users/{}", enc(app.user.user.id.as_str())), Some(&token), None)
        .await;
    assert_eq!(r.status, 204);
    assert!(app.credential_items().await.is_empty());
}

#[tokio::test]
async fn clients_crud_and_deleting_a_client_revokes_its_tokens() {
    let app = TestApp::spawn().await;
    let token = app.management_token(SCOPES).await;
    let t = Some(token.as_str());
    let r = app
        .mgmt(
            Method::POST,
            "/api/v2/clients",
            t,
            Some(&json!({"name": "Backend job", "app_type": "non_interactive", "management_scopes": ["read:users"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let secret = created["client_secret"].as_str().expect("the secret, once").to_owned();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let got = app.mgmt(Method::GET, &format!("/api/v2/clients/{id}"), t, None).await;
    assert!(got.json().get("client_secret").is_none(), "never shown again");
    assert!(!app.snapshot().await.contains(&secret), "stored only as a hash");
    // The new client can get a token with its secret.
    let tok = app
        .post_json("/oauth/token", &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "audience": format!("{}api/v2/", app.issuer())}))
        .await;
    assert_eq!(tok.status, 200);
    assert_eq!(tok.json()["scope"], "read:users");

    let native = app
        .mgmt(
            Method::POST,
            "/api/v2/clients",
            t,
            Some(&json!({"name": "Phone app", "app_type": "native", "callbacks": ["com.example.app://cb"]})),
        )
        .await
        .json();
    assert!(native.get("client_secret").is_none(), "public clients have no secret");
    for bad in [
        json!({"app_type": "native"}),
        json!({"name": "x", "app_type": "desktop"}),
        json!({"name": "x", "callbacks": ["not a url"]}),
        json!({"name": "x", "callbacks": ["https://a.example/cb#frag"]}),
        json!({"name": "x", "web_origins": ["https://a.example/path"]}),
        json!({"name": "x", "app_type": "native", "management_scopes": ["read:users"]}),
        json!({"name": "x", "jwt_configuration": {"lifetime_in_seconds": 5}}),
        json!({"name": "x", "grant_types": ["password"]}),
    ] {
        let r = app.mgmt(Method::POST, "/api/v2/clients", t, Some(&bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    // The id_token lifetime of /delegation follows the client's configuration.
    let rt = app.obtain_refresh_token("phone").await;
    let r = app
        .mgmt(
            Method::PATCH,
            &format!("/api/v2/clients/{}", app.client.id),
            t,
            Some(&json!({"jwt_configuration": {"lifetime_in_seconds": 600}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = app.post_delegation(&app.delegation_body(&rt)).await;
    assert_eq!(d.json()["expires_in"], 600);

    let list = app.mgmt(Method::GET, "/api/v2/clients?include_totals=true", t, None).await.json();
    assert_eq!(list["total"], 4, "the app, the token's client, the backend job, the phone app");
    let del = app.mgmt(Method::DELETE, &format!("/api/v2/clients/{}", app.client.id), t, None).await;
    assert_eq!(del.status, 204);
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 401, "the client is gone");
    assert!(app.credential_items().await.is_empty());
    assert_eq!(app.mgmt(Method::GET, &format!("/api/v2/clients/{}", app.client.id), t, None).await.status, 404);
}

#[tokio::test]
async fn a_client_cannot_give_itself_scopes_and_a_token_loses_scopes_its_client_lost() {
    let app = TestApp::spawn().await;
    // A machine client holding only update:clients (and read:clients) tries to give itself
    // every scope: grants sit behind update:client_grants.
    let (me, secret) = app.m2m_client(&["read:clients", "update:clients"]).await;
    let token_of = |id: String, secret: String| {
        let app = &app;
        async move {
            let r = app
                .post_json("/oauth/token", &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "audience": format!("{}api/v2/", app.issuer())}))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["access_token"].as_str().unwrap().to_owned()
        }
    };
    let mine = token_of(me.id.to_string(), secret.clone()).await;
    let path = format!("/api/v2/clients/{}", me.id);
    let r = app.mgmt(Method::PATCH, &path, Some(&mine), Some(&json!({"management_scopes": SCOPES}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["errorCode"], "insufficient_scope");
    assert!(r.json()["message"].as_str().unwrap().contains("update:client_grants"), "{}", r.body);
    let now = app.mgmt(Method::GET, &path, Some(&mine), None).await.json();
    assert_eq!(now["management_scopes"], json!(["read:clients", "update:clients"]), "nothing changed");
    // Nor can it create a client holding them.
    let r = app
        .mgmt(
            Method::POST,
            "/api/v2/clients",
            Some(&mine),
            Some(&json!({"name": "x", "app_type": "non_interactive", "management_scopes": ["delete:users"]})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // A caller with update:client_grants hands out only scopes it holds itself.
    let granter = app.management_token(&["update:clients", "update:client_grants", "read:users"]).await;
    let r = app
        .mgmt(
            Method::PATCH,
            &path,
            Some(&granter),
            Some(&json!({"management_scopes": ["read:clients", "delete:users"]})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("delete:users"), "{}", r.body);
    let r = app
        .mgmt(Method::PATCH, &path, Some(&granter), Some(&json!({"management_scopes": ["read:clients", "read:users"]})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["management_scopes"], json!(["read:clients", "read:users"]));

    // The token issued before still names update:clients, but its client no longer holds it:
    // scopes are checked on every call, against the client as it is now.
    let r = app.mgmt(Method::PATCH, &path, Some(&mine), Some(&json!({"name": "renamed"}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        app.mgmt(Method::GET, "/api/v2/users", Some(&mine), None).await.status,
        403,
        "read:users is not in the token"
    );
    assert_eq!(app.mgmt(Method::GET, &path, Some(&mine), None).await.status, 200, "read:clients is in both");
}

#[tokio::test]
async fn clients_carry_refresh_token_settings_their_auth_method_and_logout_urls() {
    let app = TestApp::spawn().await;
    let token = app.management_token(SCOPES).await;
    let t = Some(token.as_str());
    let defaults = json!({
        "rotation_type": "non-rotating", "expiration_type": "non-expiring", "leeway": 0,
        "token_lifetime": 2_592_000, "infinite_token_lifetime": true,
        "idle_token_lifetime": 1_296_000, "infinite_idle_token_lifetime": true,
    });
    // The seeded app, written before any of these settings was given: the defaults.
    let seeded = app.mgmt(Method::GET, &format!("/api/v2/clients/{}", app.client.id), t, None).await.json();
    assert_eq!(seeded["refresh_token"], defaults);
    assert_eq!((&seeded["token_endpoint_auth_method"], &seeded["allowed_logout_urls"]), (&json!("none"), &json!([])));

    let body = json!({
        "name": "Web app",
        "app_type": "regular_web",
        "token_endpoint_auth_method": "client_secret_basic",
        "allowed_logout_urls": ["https://web.example.com/bye"],
        "refresh_token": {"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 3,
                          "token_lifetime": 86_400, "infinite_token_lifetime": false},
    });
    let r = app.mgmt(Method::POST, "/api/v2/clients", t, Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let web = r.json();
    let id = web["client_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/clients/{id}");
    let rotating = json!({
        "rotation_type": "rotating", "expiration_type": "expiring", "leeway": 3,
        "token_lifetime": 86_400, "infinite_token_lifetime": false,
        "idle_token_lifetime": 1_296_000, "infinite_idle_token_lifetime": true,
    });
    assert_eq!(web["refresh_token"], rotating, "unset properties take the defaults");
    assert_eq!(web["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(web["allowed_logout_urls"], json!(["https://web.example.com/bye"]));
    assert!(web["client_secret"].is_string());

    // A PATCH of one property keeps the others (Auth0 merges `refresh_token`).
    let r = app.mgmt(Method::PATCH, &path, t, Some(&json!({"refresh_token": {"rotation_type": "non-rotating"}}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut expected = rotating.clone();
    expected["rotation_type"] = "non-rotating".into();
    assert_eq!(r.json()["refresh_token"], expected);
    let got = app.mgmt(Method::GET, &path, t, None).await.json();
    assert_eq!(got["refresh_token"], expected, "stored");
    assert_eq!(got["token_endpoint_auth_method"], "client_secret_basic", "untouched");

    // Field selection knows the new properties.
    let some = app.mgmt(Method::GET, &format!("{path}?fields=refresh_token,allowed_logout_urls"), t, None).await;
    assert_eq!(some.json(), json!({"refresh_token": expected, "allowed_logout_urls": ["https://web.example.com/bye"]}));

    // Bad values: 400 invalid_body, and nothing changes.
    let native = app.client.id.to_string();
    for (client, bad, message) in [
        (&id, json!({"refresh_token": {"leeway": 61}}), "'refresh_token.leeway' must be in 0..=60"),
        (&id, json!({"refresh_token": {"leeway": -1}}), "'refresh_token.leeway' must be in 0..=60"),
        (
            &id,
            json!({"refresh_token": {"token_lifetime": 0}}),
            "'refresh_token.token_lifetime' must be in 1..=31557600",
        ),
        (&id, json!({"refresh_token": {"token_lifetime": 31_557_601}}), "must be in 1..=31557600"),
        (
            &id,
            json!({"refresh_token": {"idle_token_lifetime": 86_401, "infinite_idle_token_lifetime": false}}),
            "must not exceed",
        ),
        (&id, json!({"refresh_token": {"rotation_type": "reusable"}}), "must be rotating or non-rotating"),
        (
            &id,
            json!({"refresh_token": {"expiration_type": "non-expiring", "rotation_type": "rotating"}}),
            "must be expiring",
        ),
        (&id, json!({"refresh_token": {"policies": []}}), "Additional properties not allowed: policies"),
        (&id, json!({"token_endpoint_auth_method": "none"}), "this client has a secret"),
        (
            &id,
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
            "must be none, client_secret_post or client_secret_basic",
        ),
        (&id, json!({"allowed_logout_urls": ["/bye"]}), "invalid logout URL '/bye'"),
        (&native, json!({"refresh_token": {"rotation_type": "rotating"}}), "rotating refresh tokens must be expiring"),
        (&native, json!({"token_endpoint_auth_method": "client_secret_post"}), "needs a client secret"),
    ] {
        let before = app.mgmt(Method::GET, &format!("/api/v2/clients/{client}"), t, None).await.json();
        let r = app.mgmt(Method::PATCH, &format!("/api/v2/clients/{client}"), t, Some(&bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        let e = r.json();
        assert_eq!(e["errorCode"], "invalid_body", "{bad}: {e}");
        assert!(e["message"].as_str().unwrap().contains(message), "{bad}: {e}");
        assert_eq!(app.mgmt(Method::GET, &format!("/api/v2/clients/{client}"), t, None).await.json(), before);
    }
    let r = app
        .mgmt(
            Method::POST,
            "/api/v2/clients",
            t,
            Some(&json!({"name": "SPA", "app_type": "spa", "token_endpoint_auth_method": "client_secret_post"})),
        )
        .await;
    assert_eq!((r.status, &r.json()["errorCode"]), (400, &json!("invalid_body")), "{}", r.body);

    // Rotation on the seeded (legacy) app, in Auth0's documented shape; its other settings stay.
    let on = json!({"refresh_token": {"rotation_type": "rotating", "expiration_type": "expiring",
                                      "token_lifetime": 2_592_000, "leeway": 3}});
    let r = app.mgmt(Method::PATCH, &format!("/api/v2/clients/{native}"), t, Some(&on)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["refresh_token"]["rotation_type"], "rotating");
    assert_eq!(r.json()["callbacks"], seeded["callbacks"]);
}

#[tokio::test]
async fn a_deleted_client_is_refused_at_once_where_deleted_and_within_30_s_by_every_other_warm_function() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("phone").await;
    let body = app.delegation_body(&rt);
    // Another warm function: its own process cache, on the same table and clock.
    let other_store =
        rt_store::DynamoStore::local(app.layer.endpoint(), app.store.table().to_owned()).with_clock(app.clock.clone());
    let keys = rt_jwt::SigningKeys::from_pem(&rt_tests::signing_pem()).unwrap();
    let other = rt_devkit::stack::Stack::start(
        app.stack.app.config.clone(),
        other_store,
        keys,
        app.clock.clone(),
        rt_tests::template(),
        rt_tests::socket("127.0.0.1:0"),
    )
    .await
    .unwrap();
    let at_other = || async {
        app.http.post(format!("{}/delegation", other.url())).json(&body).send().await.unwrap().status().as_u16()
    };
    assert_eq!(at_other().await, 200, "the other function has the client cached now");

    // The client is deleted by this function, before its records are purged (a purge that
    // was interrupted, or that has not reached them yet).
    rt_domain::ports::ClientStore::delete_client(&app.stack.app.store, &app.client.id).await.unwrap();
    assert_eq!(app.post_delegation(&body).await.status, 401, "refused at once where it was deleted");
    assert_eq!(at_other().await, 200, "another warm function may still serve it from its cache…");
    app.clock.advance_secs(31);
    assert_eq!(at_other().await, 401, "…for at most 30 s");

    // Deleting again (204 for an absent client) finishes the purge.
    let token = app.management_token(SCOPES).await;
    let r = app.mgmt(Method::DELETE, &format!("/api/v2/clients/{}", app.client.id), Some(&token), None).await;
    assert_eq!(r.status, 204);
    assert!(app.credential_items().await.is_empty());
}

#[tokio::test]
async fn revoking_while_exchanges_are_in_flight_leaves_nothing_usable_after_the_204() {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(rt_tests::Options {
            configure: Some(Box::new(|c| c.exchange_rate.limit = 10_000)),
            ..Default::default()
        })
        .await,
    );
    let rt = app.obtain_refresh_token("phone").await;
    let token = app.management_token(SCOPES).await;
    let list = app
        .mgmt(
            Method::GET,
            &format!("/api/v2/device-credentials?user_id={}", enc(app.user.user.id.as_str())),
            Some(&token),
            None,
        )
        .await
        .json();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let done = std::sync::Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let mut workers = vec![];
    for _ in 0..4 {
        let (app, rt, done) = (app.clone(), rt.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut late_successes = 0;
            for _ in 0..40 {
                let started = std::time::Instant::now();
                let r = app.post_delegation(&app.delegation_body(&rt)).await;
                let revoked_at = *done.lock().unwrap();
                if r.status == 200 && revoked_at.is_some_and(|at| started > at) {
                    late_successes += 1;
                }
                if revoked_at.is_some() && r.status == 403 {
                    break;
                }
            }
            late_successes
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let r = app.mgmt(Method::DELETE, &format!("/api/v2/device-credentials/{id}"), Some(&token), None).await;
    assert_eq!(r.status, 204);
    *done.lock().unwrap() = Some(std::time::Instant::now());
    for w in workers {
        assert_eq!(w.await.unwrap(), 0, "an exchange that started after the 204 succeeded");
    }
    assert_eq!(app.post_delegation(&app.delegation_body(&rt)).await.status, 403);
    assert!(app.credential_items().await.is_empty(), "no exchange brought the record back");
}

#[tokio::test]
async fn browsers_may_call_the_management_api_from_registered_origins() {
    let app = TestApp::spawn().await;
    let token = app.management_token(&["read:users"]).await; // its client allows https://admin.example.com
    let pre = app
        .http
        .request(Method::OPTIONS, format!("{}/api/v2/users", app.base))
        .header("origin", "https://admin.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert!(pre.headers()["access-control-allow-headers"].to_str().unwrap().contains("Authorization"));
    let get = |origin: &'static str| {
        app.http.get(format!("{}/api/v2/users", app.base)).bearer_auth(&token).header("origin", origin).send()
    };
    assert_eq!(
        get("https://admin.example.com").await.unwrap().headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    assert!(get("https://evil.example").await.unwrap().headers().get("access-control-allow-origin").is_none());
}
