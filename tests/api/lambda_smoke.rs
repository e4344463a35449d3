//! The real Lambda binaries, started by `cargo lambda watch` (the Lambda runtime API emulator)
//! against the local DynamoDB, invoked by `cargo lambda invoke` with the events of `events/`
//! (API Gateway's, and EventBridge's scheduled event for `sweep-expired`) — so the binaries
//! themselves, their bootstrap and the Lambda event parsing, are proven, not only the
//! handlers. Each kind of function runs with only the variables it reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rt_devkit::paths::{self, repo_root};
use rt_domain::ports::{ClientStore, CredentialStore, UserStore};
use rt_domain::token::RefreshToken;
use rt_http::capability::Kind;
use secrecy::ExposeSecret;
use serde_json::Value;

fn cargo_lambda() -> PathBuf {
    let venv = paths::venv_bin("cargo-lambda");
    if venv.exists() {
        return venv;
    }
    let on_path = Command::new("cargo-lambda").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        on_path,
        "cargo-lambda is not installed: run `cargo xtask test` (installs it into {}) or `pip install cargo-lambda=={}`",
        paths::venv().display(),
        rt_devkit::CARGO_LAMBDA_VERSION
    );
    PathBuf::from("cargo-lambda")
}

fn path_env() -> String {
    format!("{}:{}", paths::venv().join("bin").display(), std::env::var("PATH").unwrap_or_default())
}

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn invoke(port: u16, function: &str, event: &str) -> Value {
    let file = std::env::temp_dir().join(format!("rt-event-{function}-{port}.json"));
    std::fs::write(&file, event).unwrap();
    let out = Command::new(cargo_lambda())
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--output-format",
            "json",
            "--data-file",
        ])
        .arg(&file)
        .env("PATH", path_env())
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "invoke {function}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{function}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn wait_for_port(port: u16, watch: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        assert!(watch.try_wait().unwrap().is_none(), "cargo lambda watch exited");
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("cargo lambda watch did not listen on {port}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_binaries_answer_api_gateway_events_through_cargo_lambda() {
    // Data: a table from template.yaml with a client, a user and one refresh token.
    let endpoint = rt_tests::dynamodb_endpoint();
    let store = rt_tests::fresh_store(&endpoint).await;
    let now = rt_domain::Clock::now(&rt_domain::SystemClock);
    let callback = "https://app.example.com/callback";
    let client = rt_devkit::seed::native_client("Smoke", vec![callback.into()], vec![], now);
    store.create_client(&client).await.unwrap();
    let user = rt_devkit::seed::user("smoke@example.com", "Smoke-test-1", "Smoke", false, now).unwrap();
    store.create_user(&user).await.unwrap();
    let mgmt_secret = rt_domain::random::alphanumeric(64);
    let mut mgmt = rt_devkit::seed::management_client("Smoke m2m", &mgmt_secret, now);
    mgmt.management_scopes = rt_domain::management::SCOPES.iter().map(|s| (*s).to_owned()).collect();
    store.create_client(&mgmt).await.unwrap();
    let admin = rt_devkit::seed::user("root@example.com", "Smoke-admin-1", "Root", true, now).unwrap();
    store.create_user(&admin).await.unwrap();
    let token = RefreshToken::generate(&user.id, 0);
    let token2 = RefreshToken::generate(&user.id, 0);
    for (t, offset) in [(&token, 0), (&token2, 1)] {
        let at = rt_domain::clock::Timestamp::from_millis(now.millis() + offset);
        store.issue_credential(&rt_tests::credential(t, &client.id, "my-device", at)).await.unwrap();
    }
    // An application whose tokens live a day, with a token of the user issued two days ago:
    // expired, so listed nowhere, and removed by the scheduled sweep.
    let mut daily = rt_devkit::seed::native_client("Smoke daily", vec![], vec![], now);
    daily.refresh_token.expiration_type = rt_domain::client::ExpirationType::Expiring;
    daily.refresh_token.infinite_token_lifetime = false;
    daily.refresh_token.token_lifetime = 86_400;
    store.create_client(&daily).await.unwrap();
    let expired = RefreshToken::generate(&user.id, 0);
    let two_days_ago = rt_domain::clock::Timestamp::from_millis(now.millis() - 2 * 86_400_000);
    store.issue_credential(&rt_tests::credential(&expired, &daily.id, "old-device", two_days_ago)).await.unwrap();
    // A dashboard session of the administrator, made with the same key the functions load.
    let config = rt_devkit::stack::config("https://auth.example.com/", store.table());
    let keys = rt_jwt::SigningKeys::from_pem(&rt_tests::signing_pem()).unwrap();
    let local = rt_http::App::new(
        config,
        rt_store::DynamoStore::local(&endpoint, store.table().to_owned()),
        keys,
        std::sync::Arc::new(rt_domain::SystemClock),
    );
    let (set_cookie, csrf) = rt_http::session::start(&local, &admin, now);
    let session = set_cookie.split(';').next().unwrap().trim_start_matches("rt_admin=").to_owned();
    // An access token of the user for /userinfo, as /authorize or the refresh grant issue it.
    let user_access_token = rt_domain::ports::TokenSigner::sign_access_token(
        &local.keys,
        rt_jwt::SigningAlg::RS256,
        &rt_domain::claims::AccessTokenClaims {
            iss: "https://auth.example.com/".into(),
            sub: user.id.to_string(),
            aud: "https://auth.example.com/userinfo".into(),
            iat: now.secs(),
            exp: now.secs() + 3600,
            scope: "openid profile".into(),
            azp: client.id.to_string(),
            gty: None,
        },
    )
    .unwrap();

    // The binaries, built first so that watch starts them without compiling on the first call.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let functions: Vec<String> = rt_tests::template().functions.iter().map(|(_, bin)| bin.clone()).collect();
    let mut build = Command::new(&cargo);
    build.args(["build", "--quiet"]).current_dir(repo_root());
    for f in &functions {
        build.args(["--bin", f]);
    }
    assert!(build.status().unwrap().success(), "cargo build of the function binaries");

    // One emulator per kind of function, each with only the variables its kind reads (a
    // Management API function gets no private key, `jwks` nothing but the public key), as
    // template.yaml gives them. The public keys (a JWK set) are on one line, as a template
    // parameter holds them.
    let dir = std::env::temp_dir().join(format!("rt-smoke-{}", rt_domain::random::alphanumeric(8)));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    std::fs::write(&key, rt_tests::signing_pem().expose_secret()).unwrap();
    let public_one_line = rt_jwt::SigningKeys::from_pem(&rt_tests::signing_pem()).unwrap().verifying_keys().document();
    let ours = [
        (rt_http::config::ISSUER, "https://auth.example.com/".to_owned()),
        (rt_http::config::TABLE_NAME, store.table().to_owned()),
        (rt_http::config::SIGNING_KEY_FILE, key.display().to_string()),
        (rt_http::config::SIGNING_PUBLIC_KEY_PEM, public_one_line),
    ];
    let kinds: BTreeSet<Kind> = rt_http::handlers::FUNCTIONS.iter().map(|f| f.kind()).collect();
    let mut watches = BTreeMap::new();
    for kind in kinds {
        let mut env: String = rt_devkit::stack::function_env(kind, &ours, &endpoint)
            .iter()
            // Single quotes: the value is literal (the JWK set has double quotes).
            .map(|(name, value)| format!("{name}='{value}'\n"))
            .collect();
        env.push_str("RUST_LOG=warn\n");
        let env_file = dir.join(format!("{kind:?}.env"));
        std::fs::write(&env_file, env).unwrap();
        let port = rt_devkit::moto::free_port().unwrap();
        let child = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
            .arg("--env-file")
            .arg(&env_file)
            .env("PATH", path_env())
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("watch-{kind:?}.log"))).unwrap())
            .spawn()
            .unwrap();
        let mut watch = Watch(child);
        wait_for_port(port, &mut watch.0);
        watches.insert(kind, (port, watch));
    }
    let port_of = |name: &str| {
        let f = rt_http::handlers::FUNCTIONS.iter().find(|f| f.name == name).unwrap();
        watches[&f.kind()].0
    };

    let user_id: String = form_urlencoded::byte_serialize(user.id.as_str().as_bytes()).collect();
    let mut access_token = String::new();
    let event = |name: &str, access_token: &str| {
        std::fs::read_to_string(repo_root().join("events").join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("events/{name}.json: {e}"))
            .replace("{{client_id}}", client.id.as_str())
            .replace("{{redirect_uri}}", "https%3A%2F%2Fapp.example.com%2Fcallback")
            .replace("{{refresh_token}}", token.expose().expose_secret())
            .replace("{{user_id}}", &user_id)
            .replace("{{credential_id}}", token.id().as_str())
            .replace("{{mgmt_client_id}}", mgmt.id.as_str())
            .replace("{{mgmt_client_secret}}", &mgmt_secret)
            .replace("{{access_token}}", access_token)
            .replace("{{session}}", &session)
            .replace("{{csrf}}", &csrf)
            .replace("{{user_access_token}}", &user_access_token)
    };
    let body =
        |r: &Value| -> Value { serde_json::from_str(r["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null) };

    // Every function of template.yaml has an event, in an order where each step's data exists.
    let order = [
        "authorize",
        "delegation",
        "jwks",
        "openid-configuration",
        "openapi",
        "oauth-token",
        "oauth-revoke",
        "userinfo",
        "list-device-credentials",
        "delete-device-credential",
        "list-users",
        "list-logs",
        "list-user-logs",
        "get-user",
        "create-user",
        "update-user",
        "list-clients",
        "get-client",
        "create-client",
        "update-client",
        "api-preflight",
        "dashboard-login",
        "dashboard-assets",
        "dashboard-users",
        "dashboard-user",
        "dashboard-revoke",
        "sweep-expired",
        "delete-user",
        "delete-client",
    ];
    let mut sorted_order: Vec<String> = order.iter().map(|s| (*s).to_owned()).collect();
    sorted_order.sort();
    let mut sorted_functions = functions.clone();
    sorted_functions.sort();
    assert_eq!(sorted_order, sorted_functions, "the smoke test covers every function of template.yaml");

    for name in order {
        let e = event(name, &access_token);
        let port = port_of(name);
        let r = tokio::task::spawn_blocking(move || invoke(port, name, &e)).await.unwrap();
        let status = r["statusCode"].as_i64().unwrap_or(0);
        if name != "sweep-expired" {
            // Behind API Gateway every answer is HTTPS: browsers are told to keep to it.
            let hsts = r["headers"]["strict-transport-security"].as_str();
            assert_eq!(hsts, Some(rt_http::response::HSTS), "{name}: {r}");
        }
        match name {
            "authorize" => {
                assert_eq!(status, 200, "{r}");
                let html = r["body"].as_str().unwrap();
                assert!(html.contains(r#"name="username""#) && html.contains("my-device"), "{html}");
            }
            "delegation" => {
                assert_eq!(status, 200, "{r}");
                let b = body(&r);
                let claims = rt_tests::jwt_claims(b["id_token"].as_str().unwrap());
                assert_eq!(
                    b["expires_in"].as_i64().unwrap(),
                    claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
                );
                assert_eq!(claims["iss"], "https://auth.example.com/");
                // The rate limit counted the event's requestContext.http.sourceIp.
                let item = store.get_credential(token.id()).await.unwrap().unwrap();
                assert_eq!(item.last_ip.as_deref(), Some("203.0.113.10"));
            }
            "jwks" => {
                assert_eq!(body(&r)["keys"][0]["alg"], "RS256", "{r}");
                assert_eq!(body(&r)["keys"][0]["kid"], local.keys.kid(), "the public key is the secret's: {r}");
            }
            "openid-configuration" => assert_eq!(body(&r)["issuer"], "https://auth.example.com/", "{r}"),
            "openapi" => assert_eq!(body(&r)["openapi"], "3.1.0", "{r}"),
            "oauth-token" => {
                assert_eq!(status, 200, "{r}");
                access_token = body(&r)["access_token"].as_str().unwrap().to_owned();
            }
            "userinfo" => {
                assert_eq!(status, 200, "{r}");
                assert_eq!(body(&r)["sub"], user.id.as_str(), "{r}");
                assert_eq!(body(&r)["name"], user.name.as_str(), "profile was in the token's scope: {r}");
            }
            // An unknown token: 200 and nothing said (RFC 7009).
            "oauth-revoke" => assert_eq!((status, r["body"].as_str().unwrap_or("")), (200, ""), "{r}"),
            "list-device-credentials" => {
                assert_eq!(status, 200, "{r}");
                assert_eq!(body(&r)["total"], 2, "{r}");
                assert_eq!(body(&r)["device_credentials"][0]["id"], token.id().as_str());
            }
            "delete-device-credential" | "delete-user" | "delete-client" => assert_eq!(status, 204, "{name}: {r}"),
            "list-users" => assert_eq!(body(&r)["total"], 2, "the user and the administrator: {r}"),
            "get-user" => assert_eq!(body(&r)["user_id"], user.id.as_str(), "{r}"),
            // The real binaries wrote the audit log: the delegation above (`sd`) is in the feed
            // and in the user's own history.
            "list-logs" => {
                assert_eq!(status, 200, "{r}");
                assert_eq!(body(&r)[0]["type"], "sd", "{r}");
                assert_eq!(body(&r)[0]["ip"], "203.0.113.10", "{r}");
            }
            "list-user-logs" => {
                assert_eq!(status, 200, "{r}");
                let logs = body(&r)["logs"].as_array().cloned().unwrap_or_default();
                assert!(logs.iter().any(|l| l["type"] == "sd" && l["user_id"] == user.id.as_str()), "{r}");
            }
            "create-user" | "create-client" => assert_eq!(status, 201, "{name}: {r}"),
            "update-user" => assert_eq!(body(&r)["name"], "Renamed User", "{r}"),
            "list-clients" => assert_eq!(body(&r)["total"], 3, "the app, the m2m client, the daily app: {r}"),
            "get-client" => assert_eq!(body(&r)["client_id"], client.id.as_str(), "{r}"),
            "update-client" => assert_eq!(body(&r)["jwt_configuration"]["lifetime_in_seconds"], 3600, "{r}"),
            "api-preflight" => {
                assert_eq!(status, 204, "{r}");
                assert_eq!(r["headers"]["access-control-allow-origin"], "https://admin.example.com", "{r}");
            }
            "dashboard-login" => {
                assert_eq!(status, 200, "{r}");
                assert!(r["body"].as_str().unwrap().contains("Dashboard sign-in"));
            }
            "dashboard-assets" => assert_eq!(status, 200, "{r}"),
            "dashboard-users" => {
                assert_eq!(status, 200, "{r}");
                assert!(r["body"].as_str().unwrap().contains("smoke@example.com"), "{r}");
            }
            "dashboard-user" => {
                assert_eq!(status, 200, "{r}");
                assert!(r["body"].as_str().unwrap().contains("aria-label=\"Unlink my-device\""), "{r}");
            }
            "dashboard-revoke" => {
                assert_eq!(status, 303, "{r}");
                assert!(
                    store.get_credential(token2.id()).await.unwrap().is_none(),
                    "unlinked through the Lambda function"
                );
            }
            // A scheduled function answers its summary, not an HTTP response.
            "sweep-expired" => {
                assert_eq!((r["removed"].as_u64(), r["complete"].as_bool()), (Some(1), Some(true)), "{r}");
                assert!(store.get_credential(expired.id()).await.unwrap().is_none(), "swept by the Lambda function");
            }
            other => panic!("no expectation for {other}"),
        }
    }
    assert!(store.get_credential(token.id()).await.unwrap().is_none(), "revoked through the Lambda function");
    drop(watches);
    let _ = std::fs::remove_dir_all(&dir);
}
