//! Schema-driven fuzzing: schemathesis (pinned, in the tools virtualenv) generates requests
//! from `docs/openapi.json` for every described operation and sends them to the real handlers
//! over moto (a `TestApp`, on a free port, stopped with the test), once with a Management API
//! token holding every scope and once without credentials. Any 5xx, any answer whose status,
//! content type or body the document does not describe fails the test with schemathesis's
//! report. The document gets the run's real identifiers as examples (a refresh token, the
//! user, clients, a device credential), so that the examples phase reaches the success paths.

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use rt_tests::TestApp;

/// Test cases per operation and phase: the run takes about a minute and a half on two idle
/// cores. One worker: schemathesis's generation is not reliably thread-safe (hypothesis's
/// lambda introspection failed once with two).
const MAX_EXAMPLES: &str = "10";
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

fn st() -> std::path::PathBuf {
    let st = rt_devkit::paths::venv_bin("st");
    let version = Command::new(&st).arg("--version").output().ok().filter(|o| o.status.success());
    let hint = format!(
        "schemathesis {v} is not installed at {st}: run `cargo xtask test` (it installs the pinned tools), or \
         `{pip} install schemathesis=={v}`",
        v = rt_devkit::SCHEMATHESIS_VERSION,
        st = st.display(),
        pip = rt_devkit::paths::venv_bin("pip").display(),
    );
    let Some(out) = version else { panic!("{hint}") };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains(rt_devkit::SCHEMATHESIS_VERSION), "{text}\n{hint}");
    st
}

/// Sets `example` on the parameter `name` of one operation (a `$ref`'d parameter is inlined).
fn param_example(doc: &mut Value, path: &str, method: &str, name: &str, example: &str) {
    let components = doc["components"]["parameters"].clone();
    let params = doc["paths"][path][method]["parameters"].as_array_mut().expect("parameters");
    for p in params.iter_mut() {
        if let Some(r) = p["$ref"].as_str() {
            let key = r.rsplit('/').next().expect("ref");
            *p = components[key].clone();
        }
        if p["name"] == name {
            p["example"] = example.into();
            return;
        }
    }
    panic!("{method} {path} has no parameter {name}");
}

fn body_example(doc: &mut Value, path: &str, method: &str, media: &str, example: Value) {
    let content = &mut doc["paths"][path][method]["requestBody"]["content"][media];
    assert!(content.is_object(), "{method} {path} takes {media}");
    content["example"] = example;
}

/// `Test cases:\n  N generated, …` of a schemathesis report.
fn cases(report: &str) -> u64 {
    report
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no test case count in the report:\n{report}"))
}

/// One schemathesis run; its report and number of cases.
async fn run(st: &Path, schema: &Path, base: &str, dir: &Path, header: Option<String>) -> (bool, String, u64) {
    let mut cmd = Command::new(st);
    cmd.arg("run")
        .arg(schema)
        .args(["--url", base, "--checks", CHECKS, "--max-examples", MAX_EXAMPLES])
        .args(["--generation-deterministic", "--workers", "1", "--request-timeout", "20", "--no-color"])
        .current_dir(dir);
    if let Some(h) = header {
        cmd.args(["-H", &h]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("run schemathesis");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let n = cases(&report);
    (out.status.success(), report, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undescribed_answer() {
    rt_tests::quiet_logs(); // the output is the report
    let st = st();
    let app = TestApp::spawn().await;
    let token = app.management_token(rt_domain::management::SCOPES).await;
    let (m2m, m2m_secret) = app.m2m_client(&[]).await;
    let exchange = app.obtain_refresh_token("fuzz-exchange").await;
    let revoked = app.obtain_refresh_token("fuzz-revoke").await;
    let deleted = app.obtain_refresh_token("fuzz-delete").await;
    let credential_id = rt_domain::token::RefreshToken::parse(&deleted).unwrap().id().to_string();
    let t = Some(token.as_str());
    let victim = app
        .mgmt(
            Method::POST,
            "/api/v2/users",
            t,
            Some(&json!({"connection": "Username-Password-Authentication",
            "email": "fuzz-victim@example.com", "password": "Fuzz-victim-1"})),
        )
        .await;
    assert_eq!(victim.status, 201, "{}", victim.body);
    let victim_user = victim.json()["user_id"].as_str().unwrap().to_owned();
    let victim = app.mgmt(Method::POST, "/api/v2/clients", t, Some(&json!({"name": "Fuzz victim"}))).await;
    assert_eq!(victim.status, 201, "{}", victim.body);
    let victim_client = victim.json()["client_id"].as_str().unwrap().to_owned();

    let mut doc = crate::openapi::document();
    let client_id = app.client.id.to_string();
    let user_id = app.user.user.id.to_string();
    let refresh = json!({"grant_type": "refresh_token", "client_id": client_id, "refresh_token": exchange});
    body_example(&mut doc, "/oauth/token", "post", "application/x-www-form-urlencoded", refresh);
    let credentials = json!({"grant_type": "client_credentials", "client_id": m2m.id.as_str(),
        "client_secret": m2m_secret, "audience": format!("{}api/v2/", app.issuer())});
    body_example(&mut doc, "/oauth/token", "post", "application/json", credentials);
    let delegation = app.delegation_body(&exchange);
    body_example(&mut doc, "/delegation", "post", "application/json", delegation.clone());
    body_example(&mut doc, "/delegation", "post", "application/x-www-form-urlencoded", delegation);
    let revoke = json!({"client_id": client_id, "token": revoked});
    body_example(&mut doc, "/oauth/revoke", "post", "application/x-www-form-urlencoded", revoke);
    for (name, value) in app.authorize_params("fuzz-authorize") {
        param_example(&mut doc, "/authorize", "get", &name, &value);
    }
    param_example(&mut doc, "/api/v2/device-credentials", "get", "user_id", &user_id);
    param_example(&mut doc, "/api/v2/device-credentials", "get", "type", "refresh_token");
    param_example(&mut doc, "/api/v2/device-credentials/{id}", "delete", "id", &credential_id);
    param_example(&mut doc, "/api/v2/users", "get", "q", &format!("email:\"{}\"", app.user.email));
    param_example(&mut doc, "/api/v2/users/{id}", "get", "id", &user_id);
    param_example(&mut doc, "/api/v2/users/{id}", "patch", "id", &user_id);
    param_example(&mut doc, "/api/v2/users/{id}", "delete", "id", &victim_user);
    param_example(&mut doc, "/api/v2/clients/{id}", "get", "id", &client_id);
    param_example(&mut doc, "/api/v2/clients/{id}", "patch", "id", &client_id);
    param_example(&mut doc, "/api/v2/clients/{id}", "delete", "id", &victim_client);

    let dir = std::env::temp_dir().join(format!("rt-fuzz-{}", rt_domain::random::alphanumeric(8)));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("openapi.json");
    std::fs::write(&schema, serde_json::to_string_pretty(&doc).unwrap()).unwrap();

    let started = std::time::Instant::now();
    let (ok_auth, auth, n_auth) =
        run(&st, &schema, &app.base, &dir, Some(format!("Authorization: Bearer {token}"))).await;
    let (ok_anon, anon, n_anon) = run(&st, &schema, &app.base, &dir, None).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "schemathesis {}: {} test cases ({n_auth} with a Management API token holding every scope, {n_anon} without \
         credentials) in {:.0?}",
        rt_devkit::SCHEMATHESIS_VERSION,
        n_auth + n_anon,
        started.elapsed()
    );
    for (what, report) in [("with a Management API token", &auth), ("without credentials", &anon)] {
        let summary = report.find("SUMMARY").map_or("", |i| &report[i..]);
        println!("schemathesis {what}: {summary}");
    }
    assert!(ok_auth, "schemathesis, with a Management API token:\n{auth}");
    assert!(ok_anon, "schemathesis, without credentials:\n{anon}");
}
