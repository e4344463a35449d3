//! Signing algorithms per client (`jwt_configuration.alg`) and the rotation of the signing
//! keys (ARCHITECTURE.md, *Signing keys and their rotation*).

use reqwest::Method;
use rt_domain::management::SCOPES;
use rt_jwt::KeyState::{Current, Next, Previous, Retired};
use rt_jwt::SigningAlg::{self, RS256};
use rt_tests::{Options, TestApp, jwt_claims};
use serde_json::{Value, json};

/// The `kid` and `alg` of a JWT's header.
fn header(token: &str) -> (String, String) {
    let h = jsonwebtoken::decode_header(token).unwrap();
    (h.kid.unwrap(), format!("{:?}", h.alg))
}

/// Whether `token` verifies against the key set `jwks` (as a relying party checks it: the key
/// named by `kid`, with its own `alg`).
fn verifies(jwks: &Value, token: &str, audience: &str) -> bool {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let h = jsonwebtoken::decode_header(token).unwrap();
    let Some(jwk) = h.kid.as_deref().and_then(|k| set.find(k)) else { return false };
    if jwk.common.key_algorithm.map(|a| a.to_string()) != Some(format!("{:?}", h.alg)) {
        return false;
    }
    let mut v = jsonwebtoken::Validation::new(h.alg);
    v.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &v).is_ok()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn kid(alg: SigningAlg, n: usize) -> String {
    rt_jwt::kid_of(&rt_tests::test_key(alg, n), alg).unwrap()
}

#[tokio::test]
async fn each_client_signs_with_the_algorithm_the_management_api_gives_it() {
    let app = TestApp::spawn().await;
    let token = app.management_token(SCOPES).await;
    let client = format!("/api/v2/clients/{}", app.client.id);
    let jwks = app.jwks().await;
    let published: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(published, ["RS256", "PS256", "ES256", "EdDSA"]);
    let oidc = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(oidc["id_token_signing_alg_values_supported"], json!(["RS256", "PS256", "ES256", "EdDSA"]));
    assert_eq!(app.mgmt(Method::GET, &client, Some(&token), None).await.json()["jwt_configuration"]["alg"], "RS256");

    for alg in SigningAlg::ALL {
        let body = json!({"jwt_configuration": {"alg": alg.as_str()}});
        let r = app.mgmt(Method::PATCH, &client, Some(&token), Some(&body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["jwt_configuration"]["alg"], alg.as_str());
        assert_eq!(r.json()["jwt_configuration"]["lifetime_in_seconds"], 36_000, "the lifetime is kept");
        let got = app.mgmt(Method::GET, &client, Some(&token), None).await.json();
        assert_eq!(got["jwt_configuration"]["alg"], alg.as_str());
        // Past the 30 s client cache of a warm function.
        app.clock.advance_secs(31);

        // /authorize (implicit, `token id_token`): the id_token in the client's algorithm; the
        // access token (audience /userinfo, opaque to applications) with the key document's
        // `userinfo_alg`, EdDSA in the tests' document.
        let mut params = app.authorize_params(&format!("device-{}", alg.as_str()));
        params.retain(|(k, _)| k != "response_type");
        params.push(("response_type".into(), "token id_token".into()));
        params.push(("nonce".into(), "n-0S6_WzA2Mj".into()));
        let login = app.login(&params, &app.user.email, &app.user.password).await;
        assert_eq!(login.resp.status, 302, "{}", login.resp.body);
        let (id_token, access_token) = (&login.fragment["id_token"], &login.fragment["access_token"]);
        assert_eq!(header(id_token).1, alg.as_str());
        assert_eq!(header(access_token), (kid(SigningAlg::EdDSA, 0), "EdDSA".to_owned()));
        assert_eq!(header(id_token).0, kid(alg, 0));
        let claims = app.verify_with_jwks(id_token, app.client.id.as_ref()).await;
        assert_eq!(claims["at_hash"], rt_domain::authorize::at_hash(alg, access_token));
        // /userinfo verifies the access token by its kid.
        let r = app.http.get(format!("{}/userinfo", app.base)).bearer_auth(access_token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{alg:?}");

        // /delegation: the id_token too.
        let r = app.post_delegation(&app.delegation_body(&login.fragment["refresh_token"])).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id_token = r.json()["id_token"].as_str().unwrap().to_owned();
        assert_eq!(header(&id_token).1, alg.as_str());
        app.verify_with_jwks(&id_token, app.client.id.as_ref()).await;
    }

    // A machine-to-machine client on EdDSA: its Management API token is EdDSA and accepted.
    let (m2m, secret) = app.m2m_client(SCOPES).await;
    let r = app
        .mgmt(
            Method::PATCH,
            &format!("/api/v2/clients/{}", m2m.id),
            Some(&token),
            Some(&json!({"jwt_configuration": {"alg": "EdDSA"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.clock.advance_secs(31);
    let r = app
        .post_json(
            "/oauth/token",
            &json!({"grant_type": "client_credentials", "client_id": m2m.id.to_string(), "client_secret": secret,
                    "audience": format!("{}api/v2/", app.issuer())}),
        )
        .await;
    let eddsa = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&eddsa).1, "EdDSA");
    assert_eq!(app.mgmt(Method::GET, "/api/v2/clients", Some(&eddsa), None).await.status, 200);

    // Created with an algorithm; refused: anything else, with Auth0's error shape.
    let r = app
        .mgmt(
            Method::POST,
            "/api/v2/clients",
            Some(&token),
            Some(&json!({"name": "EC app", "app_type": "spa", "jwt_configuration": {"alg": "ES256"}})),
        )
        .await;
    assert_eq!((r.status, &r.json()["jwt_configuration"]["alg"]), (201, &json!("ES256")), "{}", r.body);
    for bad in [json!("HS256"), json!("none"), json!("es256"), json!("RS384"), json!(256)] {
        let body = json!({"jwt_configuration": {"alg": bad}});
        let r = app.mgmt(Method::PATCH, &client, Some(&token), Some(&body)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        let e = r.json();
        assert_eq!((e["statusCode"].as_i64(), e["error"].as_str()), (Some(400), Some("Bad Request")), "{bad}");
        assert!(e["message"].as_str().unwrap().contains("alg' must be"), "{bad}: {}", r.body);
        assert!(e["errorCode"].is_string());
    }
}

/// The rotation procedure, step by step, each step a new key document loaded by fresh
/// functions over the same table (as a deployment of the new secret starts new ones).
#[tokio::test]
async fn a_rotation_publishes_next_then_keeps_previous_tokens_valid_until_the_key_is_retired() {
    // A (test key 1) signs; B (test key 2) is published as next. Derived secrets come from A
    // throughout (the first key of each document).
    let (a, b) = (kid(RS256, 1), kid(RS256, 2));
    let doc = |keys: &[(rt_jwt::KeyState, usize)]| {
        rt_tests::key_document(&keys.iter().map(|(s, n)| (RS256, *s, *n)).collect::<Vec<_>>())
    };
    let app = TestApp::spawn_with(Options { keys: Some(doc(&[(Current, 1), (Next, 2)])), ..Default::default() }).await;
    assert_eq!(kids(&app.jwks().await), [a.clone(), b.clone()], "the next key is published");
    let (email, password) = app.admin().await;
    let (session, _) = app.dashboard_sign_in(&email, &password).await.unwrap();
    let mgmt_a = app.management_token(SCOPES).await;
    assert_eq!(header(&mgmt_a).0, a, "the next key does not sign");
    let refresh_token = app.obtain_refresh_token("phone").await;
    let r = app.post_delegation(&app.delegation_body(&refresh_token)).await;
    let id_token_a = r.json()["id_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&id_token_a).0, a);
    let oidc = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(oidc["id_token_signing_alg_values_supported"], json!(["RS256"]));
    // Only RS256 has a key here: another algorithm is refused.
    let es256 = json!({"jwt_configuration": {"alg": "ES256"}});
    let r = app.mgmt(Method::PATCH, &format!("/api/v2/clients/{}", app.client.id), Some(&mgmt_a), Some(&es256)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("ES256 has no signing key"), "{}", r.body);

    let stack = |keys: rt_jwt::SigningKeys| {
        let store = rt_store::DynamoStore::local(app.layer.endpoint(), app.store.table().to_owned())
            .with_clock(app.clock.clone());
        rt_devkit::stack::Stack::start(
            app.stack.app.config.clone(),
            store,
            keys,
            app.clock.clone(),
            rt_tests::template(),
            rt_tests::socket("127.0.0.1:0"),
        )
    };
    let get = |base: String, path: &'static str, token: Option<String>| {
        let http = app.http.clone();
        async move {
            let mut req = http.get(format!("{base}{path}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let audience = app.client.id.to_string();

    // B current, A previous: B signs; A's tokens still verify, here and against the JWKS.
    let rotated = stack(rt_jwt::SigningKeys::from_pem(&doc(&[(Previous, 1), (Current, 2)])).unwrap()).await.unwrap();
    let (status, jwks) = get(rotated.url(), "/.well-known/jwks.json", None).await;
    assert_eq!((status, kids(&jwks)), (200, vec![b.clone(), a.clone()]));
    assert_eq!(get(rotated.url(), "/api/v2/clients", Some(mgmt_a.clone())).await.0, 200, "A's token, previous");
    assert!(verifies(&jwks, &id_token_a, &audience), "A's id_token against the JWKS");
    let r = app.http.post(format!("{}/delegation", rotated.url())).json(&app.delegation_body(&refresh_token));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200, "the refresh token outlives the rotation");
    let id_token_b = r.json::<Value>().await.unwrap()["id_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&id_token_b).0, b, "the new current key signs");
    assert!(verifies(&jwks, &id_token_b, &audience));
    assert_eq!(jwt_claims(&id_token_b)["sub"], jwt_claims(&id_token_a)["sub"]);
    let (m2m, secret) = app.m2m_client(SCOPES).await;
    let r = app
        .http
        .post(format!("{}/oauth/token", rotated.url()))
        .json(&json!({"grant_type": "client_credentials", "client_id": m2m.id.to_string(), "client_secret": secret,
                      "audience": format!("{}api/v2/", app.issuer())}))
        .send()
        .await
        .unwrap();
    let mgmt_b = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&mgmt_b).0, b);

    // A retired: no longer published nor accepted; B's tokens are.
    let retired = stack(rt_jwt::SigningKeys::from_pem(&doc(&[(Retired, 1), (Current, 2)])).unwrap()).await.unwrap();
    let (_, jwks) = get(retired.url(), "/.well-known/jwks.json", None).await;
    assert_eq!(kids(&jwks), vec![b.clone()], "exactly the non-retired keys");
    let (status, body) = get(retired.url(), "/api/v2/clients", Some(mgmt_a)).await;
    assert_eq!((status, &body["statusCode"]), (401, &json!(401)), "a retired key's token");
    assert_eq!(get(retired.url(), "/api/v2/clients", Some(mgmt_b)).await.0, 200);
    assert!(!verifies(&jwks, &id_token_a, &audience), "A's id_token no longer verifies");
    assert!(verifies(&jwks, &id_token_b, &audience));
    let r = app.http.post(format!("{}/delegation", retired.url())).json(&app.delegation_body(&refresh_token));
    assert_eq!(r.send().await.unwrap().status(), 200);
    // The derived secrets did not move: a dashboard session made before the rotation (its
    // cookie is an HMAC with a derived key) is still good after it.
    let users = app.http.get(format!("{}/dashboard/users", retired.url())).header("cookie", &session);
    assert_eq!(users.send().await.unwrap().status(), 200, "the session outlives the rotation");
}
