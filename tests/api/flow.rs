//! The seed flow end to end over HTTP.

use rt_tests::{GRANT_JWT_BEARER, TestApp, jwt_claims};
use serde_json::json;

#[tokio::test]
async fn seed_flow_authorize_then_delegation_json_and_form() {
    let app = TestApp::spawn().await;
    let cid = app.client.id.to_string();

    // 1. GET /authorize shows a real login form.
    let params = app.authorize_params("my-device");
    let page = app.get_authorize(&params).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"name="username""#) && page.body.contains(r#"name="password""#));
    assert!(page.body.contains("my-device"), "the device is named on the form");
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("frame-ancestors 'none'")));

    // 2. Posting it redirects to the registered callback with the tokens in the fragment.
    let r = app.login(&params, &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 302, "{}", r.resp.body);
    let location = r.location.as_deref().expect("location");
    assert!(location.starts_with(&format!("{}#", app.callback())), "{location}");
    let f = &r.fragment;
    for key in ["access_token", "id_token", "refresh_token", "token_type", "expires_in", "state"] {
        assert!(f.contains_key(key), "{key} missing from {location}");
    }
    assert_eq!(f["token_type"], "Bearer");
    assert_eq!(f["state"], "xyz-state");
    let rt = f["refresh_token"].clone();
    assert!(rt.starts_with("rt1_") && rt.len() == 90, "{rt}");

    // The id_token from /authorize verifies against JWKS, with at_hash for the access token.
    let idc = app.verify_with_jwks(&f["id_token"], &cid).await;
    assert_eq!(idc["sub"], app.user.user.id.to_string());
    assert_eq!(idc["at_hash"], rt_domain::authorize::at_hash(rt_domain::client::SigningAlg::RS256, &f["access_token"]));
    let at = jwt_claims(&f["access_token"]);
    assert_eq!(at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(), f["expires_in"].parse::<i64>().unwrap());

    // 3. /delegation with JSON (the seed, node-auth0, auth0.js v8+).
    let d = app.post_delegation(&app.delegation_body(&rt)).await;
    assert_eq!(d.status, 200, "{}", d.body);
    assert!(d.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(d.header("cache-control"), Some("no-store"));
    let body = d.json();
    assert_eq!(body["token_type"], "Bearer");
    let id_token = body["id_token"].as_str().expect("id_token");
    let claims = app.verify_with_jwks(id_token, &cid).await;
    assert_eq!(body["expires_in"].as_i64().unwrap(), claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap());
    assert_eq!(body["expires_in"], 36000, "the seed's default lifetime");
    assert_eq!(claims["sub"], app.user.user.id.to_string());
    assert_eq!(claims["iss"], app.issuer());
    assert!(claims.get("nonce").is_none(), "no nonce in a refreshed id_token");

    // 4. /delegation as auth0.js v7 `refreshToken` sends it: a form, api_type auth0, passthrough.
    let d = app
        .post_delegation_form(&[
            ("grant_type", GRANT_JWT_BEARER),
            ("client_id", &cid),
            ("target", &cid),
            ("api_type", "auth0"),
            ("refresh_token", &rt),
            ("scope", "passthrough"),
        ])
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    let body = d.json();
    let claims = app.verify_with_jwks(body["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(body["expires_in"].as_i64().unwrap(), claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap());
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let app = TestApp::spawn().await;
    let mut params = app.authorize_params("my-device");
    params.retain(|(k, _)| k != "scope");
    params.push(("scope".into(), "openid".into()));
    let before = app.credential_items().await.len();
    let r = app.login(&params, &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 302);
    assert!(r.fragment.contains_key("access_token"));
    assert!(!r.fragment.contains_key("refresh_token"), "{:?}", r.location);
    assert_eq!(app.credential_items().await.len(), before, "nothing stored");
}

#[tokio::test]
async fn id_token_response_types_carry_the_nonce_and_profile_claims() {
    let app = TestApp::spawn().await;
    let mut params = app.authorize_params("Browser");
    params.retain(|(k, _)| k != "response_type" && k != "scope");
    params.push(("response_type".into(), "id_token token".into()));
    params.push(("scope".into(), "openid profile email offline_access".into()));
    params.push(("nonce".into(), "n-0S6_WzA2Mj".into()));
    params.push(("auth0Client".into(), "eyJuYW1lIjoiYXV0aDAuanMifQ".into())); // ignored
    let r = app.login(&params, &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 302, "{}", r.resp.body);
    let claims = app.verify_with_jwks(&r.fragment["id_token"], app.client.id.as_str()).await;
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["email"], app.user.email);
    assert_eq!(claims["name"], "Test User");
    let rt = &r.fragment["refresh_token"];

    // The refresh token's grant includes profile and email: delegation may hand them out again.
    let mut body = app.delegation_body(rt);
    body["scope"] = "openid profile email".into();
    let d = app.post_delegation(&body).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let claims = app.verify_with_jwks(d.json()["id_token"].as_str().unwrap(), app.client.id.as_str()).await;
    assert_eq!(claims["email"], app.user.email);
    assert!(claims.get("nonce").is_none());
    body["scope"] = "passthrough".into();
    let d = app.post_delegation(&body).await;
    let claims = jwt_claims(d.json()["id_token"].as_str().unwrap());
    assert_eq!(claims["name"], "Test User", "passthrough keeps the grant's claims");
}

#[tokio::test]
async fn profile_claims_are_never_escalated_beyond_the_grant() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("my-device").await; // scope: openid offline_access
    let mut body = app.delegation_body(&rt);
    body["scope"] = "openid profile email".into();
    let d = app.post_delegation(&body).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let claims = jwt_claims(d.json()["id_token"].as_str().unwrap());
    assert!(claims.get("email").is_none() && claims.get("name").is_none(), "{claims}");
}

#[tokio::test]
async fn discovery_and_jwks() {
    let app = TestApp::spawn().await;
    let jwks = app.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.header("access-control-allow-origin"), Some("*"));
    let key = &jwks.json()["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert!(key["kid"].is_string() && key["n"].is_string() && key["e"] == "AQAB");
    let set = jwks.json();
    let algs: Vec<&str> = set["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs, ["RS256", "PS256", "ES256", "EdDSA"], "the tests' key document: one key per algorithm");
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    let oidc = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(oidc["issuer"], app.issuer());
    assert_eq!(oidc["jwks_uri"], format!("{}.well-known/jwks.json", app.issuer()));
    assert_eq!(oidc["authorization_endpoint"], format!("{}authorize", app.issuer()));
    assert_eq!(oidc["token_endpoint"], format!("{}oauth/token", app.issuer()));
    assert_eq!(oidc["revocation_endpoint"], format!("{}oauth/revoke", app.issuer()));
    assert_eq!(oidc["userinfo_endpoint"], format!("{}userinfo", app.issuer()));
    assert_eq!(
        oidc["grant_types_supported"],
        json!([
            "authorization_code",
            "implicit",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_credentials",
            "refresh_token"
        ])
    );
    assert_eq!(oidc["response_types_supported"], json!(["code", "token", "id_token", "token id_token"]));
    assert_eq!(oidc["id_token_signing_alg_values_supported"], json!(["RS256", "PS256", "ES256", "EdDSA"]));
    assert_eq!(oidc["response_modes_supported"], json!(["query", "fragment"]));
    assert_eq!(oidc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        oidc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    // Only what is served is advertised: every endpoint is a route of the template.
    let routes = &rt_tests::template().routes;
    for (name, url) in oidc.as_object().unwrap().iter().filter(|(k, _)| k.ends_with("_endpoint") || *k == "jwks_uri") {
        let path = format!("/{}", url.as_str().unwrap().strip_prefix(&app.issuer()).unwrap());
        assert!(routes.iter().any(|r| r.path == path), "{name}: {path} is not served");
    }
    let missing = app.get("/nope").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn browsers_get_cors_only_for_registered_origins() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("my-device").await;
    let send = |origin: &'static str| {
        app.http
            .post(format!("{}/delegation", app.base))
            .header("origin", origin)
            .json(&app.delegation_body(&rt))
            .send()
    };
    let ok = send("https://app.example.com").await.unwrap();
    assert_eq!(ok.headers().get("access-control-allow-origin").unwrap(), "https://app.example.com");
    let other = send("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let pre = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/delegation", app.base))
        .header("origin", "https://app.example.com")
        .header("access-control-request-headers", "auth0-client,content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    let allow = pre.headers().get("access-control-allow-headers").unwrap().to_str().unwrap().to_lowercase();
    assert!(allow.contains("auth0-client") && allow.contains("content-type"));
}
