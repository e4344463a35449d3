//! CPU per exchange as Lambda runs it: the release `bootstrap` of `delegation` and
//! `oauth-token`, invoked one event at a time through a Lambda Runtime API served here, as a
//! warm sandbox is (`cargo xtask footprint --invocations N`).
//!
//! Each (function, algorithm) gets a fresh process with its kind's variables (the exchange
//! limit lifted: every event is the same token from the same address), one warm-up invocation
//! (connection, client cache, counter hint), then `N` invocations back to back, each answered
//! before the next is handed out. The figure is the process's `utime + stime` over those `N`
//! (every thread, exited ones included), divided by `N`: no HTTP server, no dev-server routing —
//! the runtime's own client, the API Gateway event's parsing, the handler and its DynamoDB
//! requests (to moto, like the other benchmarks). Every answer must be a 200.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rt_devkit::seed;
use rt_domain::clock::{Clock as _, SystemClock};
use rt_domain::ports::{ClientStore as _, CredentialStore as _, UserStore as _};
use rt_domain::token::RefreshToken;
use rt_jwt::SigningAlg;
use rt_store::DynamoStore;
use secrecy::ExposeSecret as _;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use crate::Result;

/// An invocation handed to the function: its request id and event, and where its answer goes.
struct Pending {
    id: String,
    event: Bytes,
    answer: oneshot::Sender<Bytes>,
}

/// The Runtime API of one sandbox: `next` hands out the queued invocations one by one (and
/// waits while there is none, as Lambda does), `response` delivers the answer.
struct RuntimeApi {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Pending>,
}

type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Bytes>>>>;

impl RuntimeApi {
    async fn start(function: &'static str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue, rx) = mpsc::unbounded_channel::<Pending>();
        let rx = Arc::new(AsyncMutex::new(rx));
        let waiting: Waiting = Arc::default();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rx, waiting) = (rx.clone(), waiting.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| serve(function, req, rx.clone(), waiting.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, queue })
    }

    /// One invocation: its answer (the API Gateway response as JSON), or an error after 30 s.
    async fn invoke(&self, id: String, event: Bytes) -> Result<serde_json::Value> {
        let (answer, rx) = oneshot::channel();
        self.queue.send(Pending { id, event, answer }).map_err(|_| "the Runtime API stopped")?;
        let body = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| "no answer within 30 s")?
            .map_err(|_| "the invocation was dropped")?;
        Ok(serde_json::from_slice(&body)?)
    }
}

async fn serve(
    function: &'static str,
    req: Request<hyper::body::Incoming>,
    queue: Arc<AsyncMutex<mpsc::UnboundedReceiver<Pending>>>,
    waiting: Waiting,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let reply = |status: StatusCode, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        r
    };
    if path == "/2018-06-01/runtime/invocation/next" {
        let Some(next) = queue.lock().await.recv().await else {
            return Ok(reply(StatusCode::GONE, "{}"));
        };
        let deadline =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() + 30_000);
        if let Ok(mut w) = waiting.lock() {
            w.insert(next.id.clone(), next.answer);
        }
        let mut r = Response::new(Full::new(next.event));
        r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        for (name, value) in [
            ("lambda-runtime-aws-request-id", next.id),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
            ),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
        ] {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
        return Ok(r);
    }
    let Some(id) = path.strip_prefix("/2018-06-01/runtime/invocation/").and_then(|p| p.strip_suffix("/response"))
    else {
        // An init or invocation error: the measurement fails on the missing answer.
        eprintln!("{function}: {} {path}", req.method());
        return Ok(reply(StatusCode::ACCEPTED, "{}"));
    };
    let id = id.to_owned();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Some(answer) = waiting.lock().ok().and_then(|mut w| w.remove(&id)) {
        let _ = answer.send(body);
    }
    Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"))
}

/// An API Gateway HTTP API event of `events/delegation.json`'s shape for `POST {path}`.
fn event(path: &str, content_type: &str, body: &str) -> Result<Bytes> {
    let mut e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rt_devkit::paths::repo_root().join("events/delegation.json"))?)?;
    let route = format!("POST {path}");
    for (at, value) in [
        ("/routeKey", route.as_str()),
        ("/rawPath", path),
        ("/headers/content-type", content_type),
        ("/requestContext/routeKey", &route),
        ("/requestContext/http/path", path),
        ("/body", body),
    ] {
        *e.pointer_mut(at).ok_or_else(|| format!("events/delegation.json has no {at}"))? = value.into();
    }
    Ok(Bytes::from(serde_json::to_vec(&e)?))
}

/// For each algorithm, a client of it and one refresh token (issued straight into the table),
/// then `delegation` and `oauth-token` (the refresh grant) invoked `n` times each; prints a row
/// per (function, algorithm).
/// `env` gives a function's environment (its kind's variables). With two builds in
/// `lambda_dirs`, each row measures both in turn (a paired comparison: the machine's drift
/// reaches both alike).
pub async fn exchanges(
    lambda_dirs: &[PathBuf],
    store: &DynamoStore,
    env: &dyn Fn(&str) -> Vec<(String, String)>,
    n: usize,
    dir: &Path,
) -> Result<()> {
    let now = SystemClock.now();
    let mut header = format!("  {:<12} {:<6}", "function", "alg");
    for i in 1..=lambda_dirs.len() {
        header.push_str(&format!(" {:>10} {:>10}", format!("CPU µs ({i})"), format!("wall ms ({i})")));
    }
    println!("{header}");
    let user = seed::user("invoke@example.com", "Invoke-pass-1", "Invoke", false, now)?;
    store.create_user(&user).await?;
    for alg in SigningAlg::ALL {
        let mut client = seed::native_client(&format!("Invoke {}", alg.as_str()), vec![], vec![], now);
        client.signing_alg = alg;
        store.create_client(&client).await?;
        let token = RefreshToken::generate(&user.id, user.rev);
        store.issue_credential(&seed::credential(&token, &client.id, "invoke", now)?).await?;
        let secret = token.expose().expose_secret().to_owned();
        let delegation = serde_json::json!({
            "client_id": client.id.to_string(),
            "grant_type": rt_domain::client::GRANT_JWT_BEARER,
            "refresh_token": secret,
            "api_type": "app",
        })
        .to_string();
        let refresh = crate::load::form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client.id.as_ref()),
            ("refresh_token", &secret),
        ]);
        for (function, path, content_type, body) in [
            ("delegation", "/delegation", "application/json", delegation),
            ("oauth-token", "/oauth/token", "application/x-www-form-urlencoded", refresh),
        ] {
            let event = event(path, content_type, &body)?;
            let mut row = format!("  {function:<12} {:<6}", alg.as_str());
            for lambda_dir in lambda_dirs {
                let (cpu_us, wall_ms) = measure(lambda_dir, function, &env(function), event.clone(), n, dir).await?;
                row.push_str(&format!(" {cpu_us:>10.0} {wall_ms:>10.2}"));
            }
            println!("{row}");
        }
    }
    Ok(())
}

async fn measure(
    lambda_dir: &Path,
    function: &'static str,
    env: &[(String, String)],
    event: Bytes,
    n: usize,
    dir: &Path,
) -> Result<(f64, f64)> {
    let api = RuntimeApi::start(function).await?;
    let exe = lambda_dir.join(function).join("bootstrap");
    let log = dir.join(format!("{function}-invoke.log"));
    let sandbox = crate::footprint::spawn_bootstrap(&exe, function, env, &api.addr.to_string(), &log)?;
    let pid = sandbox.0.id();
    let check = |i: usize, answer: serde_json::Value| -> Result<()> {
        match answer.get("statusCode").and_then(serde_json::Value::as_u64) {
            Some(200) => Ok(()),
            _ => Err(format!("{function}: invocation {i} answered {answer} (log: {})", log.display()).into()),
        }
    };
    check(0, api.invoke("warm-up".into(), event.clone()).await?)?;
    let (c0, w0) = (crate::load::cpu_ticks(pid)?, Instant::now());
    for i in 1..=n {
        check(i, api.invoke(format!("invocation-{i}"), event.clone()).await?)?;
    }
    let ticks = crate::load::cpu_ticks(pid)? - c0;
    let wall = w0.elapsed().as_secs_f64();
    drop(sandbox);
    Ok((ticks as f64 / crate::load::clock_ticks_per_sec() * 1e6 / n as f64, wall * 1e3 / n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_the_fixture_with_the_route_and_body_given() {
        let e: serde_json::Value =
            serde_json::from_slice(&event("/oauth/token", "application/x-www-form-urlencoded", "a=1&b=2").unwrap())
                .unwrap();
        assert_eq!(e["routeKey"], "POST /oauth/token");
        assert_eq!(e["rawPath"], "/oauth/token");
        assert_eq!(e["requestContext"]["routeKey"], "POST /oauth/token");
        assert_eq!(e["requestContext"]["http"]["path"], "/oauth/token");
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert_eq!(e["headers"]["content-type"], "application/x-www-form-urlencoded");
        assert_eq!(e["body"], "a=1&b=2");
        assert_eq!(e["isBase64Encoded"], false);
    }
}
