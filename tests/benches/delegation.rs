//! The /delegation hot path, measured: the real handler called in-process against the local
//! DynamoDB (moto), in a release build, on one thread so that the thread's CPU time is ours
//! alone (moto runs in its own process).
//!
//! `cargo xtask bench [--runs N] [--calls N]` (or `cargo bench -p rt-tests --bench delegation`).
//! Prints, per run and as the median of the runs: CPU time per exchange (handler + DynamoDB
//! client + RS256 signature), wall time per exchange (including moto), and the signature alone;
//! then, per algorithm (RS256, PS256, ES256, EdDSA), the signature alone and the CPU time per
//! exchange of a client of that algorithm.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt as _};
use rt_domain::claims::IdTokenClaims;
use rt_domain::ids::ClientId;
use rt_domain::ports::{ClientStore, CredentialStore, UserStore};
use rt_domain::token::RefreshToken;
use rt_domain::{Clock, SystemClock};
use secrecy::ExposeSecret;

/// CPU time of the calling thread, in nanoseconds (first field of /proc/thread-self/schedstat).
/// The kernel brings that sum up to date when the thread is scheduled: the yield does that, so
/// that a loop with no I/O (a signature alone) is not read as the last tick left it.
fn thread_cpu_ns() -> u64 {
    std::thread::yield_now();
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat (Linux)");
    s.split_whitespace().next().unwrap().parse().unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The JSON body of a `/delegation` exchange of `token` by `client`.
fn delegation_body(client: &ClientId, token: &RefreshToken) -> String {
    serde_json::json!({
        "client_id": client.to_string(),
        "grant_type": rt_tests::GRANT_JWT_BEARER,
        "refresh_token": token.expose().expose_secret(),
        "api_type": "app",
    })
    .to_string()
}

/// `POST /delegation` with `body`, as API Gateway hands it over from `source_ip`.
fn delegation_request(body: &str, source_ip: &str) -> lambda_http::Request {
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(source_ip.to_owned());
    ctx.http.method = http::Method::POST;
    http::Request::builder()
        .method("POST")
        .uri("https://auth.example.com/delegation")
        .header("content-type", "application/json")
        .body(Body::Text(body.to_owned()))
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
}

fn main() {
    let runs = arg("--runs", 5);
    let calls = arg("--calls", 200);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(bench(runs, calls));
}

async fn bench(runs: usize, calls: usize) {
    let endpoint = rt_tests::dynamodb_endpoint();
    let store = rt_tests::fresh_store(&endpoint).await;
    let now = SystemClock.now();
    let client = rt_devkit::seed::native_client("Bench", vec![], vec![], now);
    store.create_client(&client).await.unwrap();
    let user = rt_devkit::seed::user("bench@example.com", "Bench-pass-1", "Bench", false, now).unwrap();
    store.create_user(&user).await.unwrap();

    let table = store.table().to_owned();
    let mut config = rt_devkit::stack::config("https://auth.example.com/", &table);
    config.exchange_rate.limit = 10_000;
    let keys = rt_jwt::SigningKeys::from_pem(&rt_tests::signing_pem()).unwrap();
    let app = rt_http::App::new(config, rt_store::DynamoStore::local(&endpoint, table), keys, Arc::new(SystemClock));

    // One token per run and address, so that every run starts a fresh rate-limit window entry.
    let mut cpu = vec![];
    let mut wall = vec![];
    println!("delegation: {runs} runs x {calls} exchanges (release, one thread, moto on {endpoint})");
    for run in 0..runs {
        let token = RefreshToken::generate(&user.id, 0);
        store.issue_credential(&rt_tests::credential(&token, &client.id, "bench", now)).await.unwrap();
        let body = delegation_body(&client.id, &token);
        let request = || delegation_request(&body, &format!("198.51.100.{}", run + 1));
        // Warm-up: client cache, connection, counter hint.
        assert_eq!(rt_http::handlers::delegation::handle(&app, request()).await.status(), 200);
        let (c0, w0) = (thread_cpu_ns(), Instant::now());
        for _ in 0..calls {
            let r = rt_http::handlers::delegation::handle(&app, request()).await;
            assert_eq!(r.status(), 200);
        }
        let cpu_us = (thread_cpu_ns() - c0) as f64 / 1000.0 / calls as f64;
        let wall_ms = w0.elapsed().as_secs_f64() * 1000.0 / calls as f64;
        println!("  run {}: {cpu_us:8.1} µs CPU/exchange, {wall_ms:6.2} ms wall/exchange", run + 1);
        cpu.push(cpu_us);
        wall.push(wall_ms);
    }

    let claims = IdTokenClaims::new(
        "https://auth.example.com/".into(),
        user.id.to_string(),
        client.id.to_string(),
        now.secs(),
        now.secs() + 36000,
    );
    let c0 = thread_cpu_ns();
    for _ in 0..calls {
        rt_domain::ports::TokenSigner::sign_id_token(&app.keys, rt_jwt::SigningAlg::RS256, &claims).unwrap();
    }
    let sign_us = (thread_cpu_ns() - c0) as f64 / 1000.0 / calls as f64;
    println!(
        "median: {:.1} µs CPU per /delegation, {:.2} ms wall (moto included); RS256 id_token signature alone: {sign_us:.1} µs",
        median(&mut cpu),
        median(&mut wall)
    );

    // Per algorithm (the key document of the tests has one current key of each): the
    // signature alone, and CPU per exchange for a client of that algorithm.
    println!("per algorithm, {calls} calls each:");
    println!("  {:<6} {:>16} {:>22}", "alg", "signature (µs)", "CPU/exchange (µs)");
    for (i, alg) in rt_jwt::SigningAlg::ALL.into_iter().enumerate() {
        let c0 = thread_cpu_ns();
        for _ in 0..calls {
            rt_domain::ports::TokenSigner::sign_id_token(&app.keys, alg, &claims).unwrap();
        }
        let sign_us = (thread_cpu_ns() - c0) as f64 / 1000.0 / calls as f64;
        let mut alg_client = rt_devkit::seed::native_client(&format!("Bench {}", alg.as_str()), vec![], vec![], now);
        alg_client.signing_alg = alg;
        store.create_client(&alg_client).await.unwrap();
        let token = RefreshToken::generate(&user.id, 0);
        store.issue_credential(&rt_tests::credential(&token, &alg_client.id, "bench", now)).await.unwrap();
        let body = delegation_body(&alg_client.id, &token);
        let request = || delegation_request(&body, &format!("203.0.113.{}", i + 1));
        let r = rt_http::handlers::delegation::handle(&app, request()).await;
        assert_eq!(r.status(), 200);
        let Body::Text(answer) = r.body() else { panic!("a JSON body") };
        let id_token =
            serde_json::from_str::<serde_json::Value>(answer).unwrap()["id_token"].as_str().unwrap().to_owned();
        assert_eq!(format!("{:?}", jsonwebtoken::decode_header(&id_token).unwrap().alg), alg.as_str());
        let c0 = thread_cpu_ns();
        for _ in 0..calls {
            assert_eq!(rt_http::handlers::delegation::handle(&app, request()).await.status(), 200);
        }
        let cpu_us = (thread_cpu_ns() - c0) as f64 / 1000.0 / calls as f64;
        println!("  {:<6} {sign_us:>16.1} {cpu_us:>22.1}", alg.as_str());
    }
}
