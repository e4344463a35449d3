//! The HTTP half of `cargo xtask bench`: the server CPU per request over HTTP.
//!
//! Method: the release build of `cargo xtask dev` runs pinned to one core ([`SERVER_CORE`]);
//! wrk (one thread, `wrk-post.lua`: one refresh token per connection, see [`Target`]) and moto
//! (a process of its own) run on the other ([`LOAD_CORE`]). The server's CPU is `utime + stime`
//! of its process from `/proc/<pid>/stat` (every thread, the runtime's included; moto is not
//! counted) before and after a fixed-duration wrk run, divided by the requests wrk completed. Any answer that is not
//! a 200, or any socket error, fails the run.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rt_devkit::paths;
use rt_devkit::seed::SeedFile;
use rt_domain::client::{GRANT_IMPLICIT, GRANT_JWT_BEARER, GRANT_REFRESH_TOKEN};

use crate::{Result, run};

/// The signing algorithms measured over HTTP, in one place. Each gets its own client, created
/// through the Management API with `jwt_configuration.alg`, its own sign-in and its own rows;
/// adding an algorithm the service supports is adding it here.
pub const ALGS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA"];

/// The core the server under test runs on (ours or the peer).
pub const SERVER_CORE: &str = "0";
/// The core of everything else: this process, moto and wrk.
pub const LOAD_CORE: &str = "1";

const WRK_SCRIPT: &str = include_str!("wrk-post.lua");

/// The exchange limit the server runs with: every request of a run uses the same token from
/// the same address, far beyond the default 10 a minute.
const LIFTED_EXCHANGE_LIMIT: &str = "1000000000";

pub struct Options {
    /// Seconds of each measured wrk run.
    pub duration: u32,
    pub connections: Vec<u32>,
    /// Also measure node-oidc-provider's refresh grant.
    pub peer: bool,
}

/// The POSTs wrk sends: the same request with one refresh token per connection, taken in turn
/// (`wrk-post.lua`), so that no two requests in flight present the same token. One token
/// replayed by every connection would measure the exchanges of one token contending with each
/// other (each conditional on the token's counter as the previous one left it, so concurrent
/// ones are refused and planned again), not the cost of an exchange.
pub struct Target {
    pub label: String,
    pub url: String,
    pub content_type: &'static str,
    pub bodies: Vec<String>,
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

pub struct Measurement {
    pub connections: u32,
    pub requests: u64,
    pub cpu_secs: f64,
    pub secs: f64,
}

impl Measurement {
    pub fn us_per_request(&self) -> f64 {
        self.cpu_secs * 1e6 / self.requests.max(1) as f64
    }

    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// A server under test: killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn main(opts: &Options) -> Result<()> {
    ensure_wrk()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cores < 2 {
        return Err(format!(
            "the HTTP benchmark needs two cores (the server on core {SERVER_CORE}, wrk and moto on core {LOAD_CORE}); this process may use {cores}"
        )
        .into());
    }
    let exe = crate::release_binary()?;
    let peer = if opts.peer { Some(crate::peer::install()?) } else { None };
    // From here on this process, and so moto and wrk (its children), run on the load core.
    run(Command::new("taskset").args(["-p", "-c", LOAD_CORE, &std::process::id().to_string()]).stdout(Stdio::null()))?;
    let dir = paths::dev_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("wrk-post.lua");
    std::fs::write(&script, WRK_SCRIPT)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    println!(
        "\nHTTP: server CPU per request (utime+stime of the server process / requests wrk completed); server on core {SERVER_CORE}, \
         wrk (1 thread) and moto on core {LOAD_CORE}; {} s per run after a 2 s warm-up; every answer checked to be 200",
        opts.duration
    );
    let moto = rt_devkit::moto::Moto::start()?;
    let ours = start_ours(&exe, &moto.endpoint(), &dir)?;
    let tokens = opts.connections.iter().copied().max().unwrap_or(1) as usize;
    let targets = rt.block_on(ours_targets(&http, &ours, &dir, tokens))?;
    let mut rows = vec![];
    for t in &targets {
        rt.block_on(describe(&http, t))?;
        rows.push((t.label.clone(), measure_all(&ours, t, opts, &script)?));
    }
    drop(ours);
    drop(moto);

    let mut node_rows = None;
    if let Some(p) = &peer {
        let server = crate::peer::start(p, &dir, tokens)?;
        let t = crate::peer::target(&server);
        rt.block_on(describe(&http, &t))?;
        node_rows = Some((t.label.clone(), measure_all(&server.server, &t, opts, &script)?));
    }

    println!(
        "\n{:<48} {:>5} {:>9} {:>8} {:>12} {:>10}",
        "POST", "conns", "requests", "req/s", "CPU µs/req", "ours/node"
    );
    let node_at = |c: u32| node_rows.as_ref().and_then(|(_, m)| m.iter().find(|m| m.connections == c));
    for (label, ms) in rows.iter().chain(node_rows.iter()) {
        for m in ms {
            // Requests still in flight when wrk stops cost CPU but are not counted: with fewer
            // than 20 requests per connection the figure says more about that than about one.
            let few = if m.requests < 20 * u64::from(m.connections) { "  (few requests: indicative)" } else { "" };
            let ratio = match node_at(m.connections) {
                Some(n) if !std::ptr::eq(n, m) => format!("{:.2}", m.us_per_request() / n.us_per_request()),
                _ => String::new(),
            };
            println!(
                "{label:<48} {:>5} {:>9} {:>8.0} {:>12.1} {ratio:>10}{few}",
                m.connections,
                m.requests,
                m.per_sec(),
                m.us_per_request()
            );
        }
    }
    Ok(())
}

/// wrk, from Debian's package: installed with apt-get when missing (as root), as Chromium is.
fn ensure_wrk() -> Result<()> {
    if Command::new("wrk").arg("-v").output().is_ok() {
        return Ok(());
    }
    crate::tools::apt_install(
        "wrk",
        "wrk is missing: the HTTP benchmark drives the server with it (sudo apt-get install wrk)",
    )
}

/// The release server of `cargo xtask dev` on a free port, pinned to [`SERVER_CORE`], over
/// `moto`, with its own seed and key (`target/dev/bench`) and the exchange limit lifted.
fn start_ours(exe: &Path, moto: &str, dir: &Path) -> Result<Server> {
    let port = rt_devkit::moto::free_port()?;
    let log = dir.join("server.log");
    let out = std::fs::File::create(&log)?;
    // taskset execs the server: the child's pid is the server's.
    let child = Command::new("taskset")
        .args(["-c", SERVER_CORE])
        .arg(exe)
        .args(["dev", "--port", &port.to_string()])
        .env("AWS_ENDPOINT_URL_DYNAMODB", moto)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("EXCHANGE_RATE_LIMIT", LIFTED_EXCHANGE_LIMIT)
        .env("RT_DEV_DIR", dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let mut server = Server { child, base: format!("http://127.0.0.1:{port}"), log };
    wait_ready(&mut server, "/.well-known/openid-configuration")?;
    Ok(server)
}

/// Waits until `path` answers 200 (or the server exits).
pub fn wait_ready(server: &mut Server, path: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = format!("{}{path}", server.base);
    while Instant::now() < deadline {
        if let Some(status) = server.child.try_wait()? {
            return Err(format!("the server exited with {status}; see {}", server.log.display()).into());
        }
        let ok = Command::new("curl").args(["-sf", "-o", "/dev/null", &url]).status().is_ok_and(|s| s.success());
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("{url} did not answer within 120 s; see {}", server.log.display()).into())
}

/// Per algorithm of [`ALGS`]: a client with that algorithm (Management API), `tokens` refresh
/// tokens obtained as an application does (the implicit flow with `offline_access`, signed in
/// as the seeded user, one device each), and the two exchanges that replay them: `/delegation`
/// and the refresh grant.
async fn ours_targets(http: &reqwest::Client, server: &Server, dir: &Path, tokens: usize) -> Result<Vec<Target>> {
    let seed: SeedFile = serde_json::from_str(&std::fs::read_to_string(dir.join("seed.json"))?)?;
    let base = &server.base;
    let token: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &seed.mgmt_client_id),
            ("client_secret", &seed.mgmt_client_secret),
            ("audience", &format!("{base}/api/v2/")),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mgmt = token.get("access_token").and_then(|t| t.as_str()).ok_or("no Management API token")?;
    let mut targets = vec![];
    for alg in ALGS {
        // A native application of the legacy flow, as the seed's: its refresh tokens do not
        // rotate, so wrk can replay one.
        let created = http
            .post(format!("{base}/api/v2/clients"))
            .bearer_auth(mgmt)
            .json(&serde_json::json!({
                "name": format!("HTTP bench {alg}"),
                "app_type": "native",
                "callbacks": [seed.callback_url],
                "grant_types": [GRANT_IMPLICIT, GRANT_REFRESH_TOKEN, GRANT_JWT_BEARER],
                "jwt_configuration": {"alg": alg},
            }))
            .send()
            .await?;
        let status = created.status();
        let created: serde_json::Value = created.json().await?;
        let client_id = created
            .get("client_id")
            .and_then(|c| c.as_str())
            .ok_or_else(|| format!("creating a {alg} client answered {status}: {created}"))?
            .to_owned();
        let mut delegation = vec![];
        let mut refresh = vec![];
        for i in 0..tokens {
            let refresh_token = sign_in(http, base, &seed, &client_id, &format!("http-bench-{i}")).await?;
            let body = serde_json::json!({
                "client_id": client_id,
                "grant_type": GRANT_JWT_BEARER,
                "refresh_token": refresh_token,
                "api_type": "app",
            });
            delegation.push(body.to_string());
            refresh.push(form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", &refresh_token),
            ]));
        }
        targets.push(Target {
            label: format!("ours /delegation ({alg})"),
            url: format!("{base}/delegation"),
            content_type: JSON,
            bodies: delegation,
        });
        targets.push(Target {
            label: format!("ours /oauth/token refresh ({alg})"),
            url: format!("{base}/oauth/token"),
            content_type: FORM,
            bodies: refresh,
        });
    }
    Ok(targets)
}

/// GET /authorize (implicit, `offline_access`, `device`), post the login form as the seeded
/// user, take the refresh token from the redirect's fragment.
async fn sign_in(http: &reqwest::Client, base: &str, seed: &SeedFile, client_id: &str, device: &str) -> Result<String> {
    let query = form(&[
        ("response_type", "token"),
        ("client_id", client_id),
        ("redirect_uri", &seed.callback_url),
        ("scope", "openid offline_access"),
        ("device", device),
        ("state", "bench"),
    ]);
    let page = http.get(format!("{base}/authorize?{query}")).send().await?.error_for_status()?;
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let html = page.text().await?;
    let tx = html
        .split("name=\"tx\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("the login page has no tx field")?;
    let answer = http
        .post(format!("{base}/authorize"))
        .header("cookie", cookie)
        .form(&[("tx", tx), ("username", &seed.user_email), ("password", &seed.user_password)])
        .send()
        .await?;
    let location = answer.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
    let fragment = location.split_once('#').map(|(_, f)| f).unwrap_or_default();
    form_urlencoded::parse(fragment.as_bytes())
        .find(|(k, _)| k == "refresh_token")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| {
            format!("signing in answered {} without a refresh token (location: {location:?})", answer.status()).into()
        })
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// One request, checked, and what its answer carries (what the server signed for it).
async fn describe(http: &reqwest::Client, t: &Target) -> Result<()> {
    let body = t.bodies.first().ok_or("no request to send")?;
    let r = http.post(&t.url).header("content-type", t.content_type).body(body.clone()).send().await?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if status != 200 {
        return Err(format!("{} answered {status}: {body}", t.label).into());
    }
    let fields: Vec<String> = body
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| match v.as_str() {
                    Some(s) if k.ends_with("_token") && s.split('.').count() == 3 => format!("{k} (JWT)"),
                    Some(_) if k.ends_with("_token") => format!("{k} (opaque)"),
                    _ => k.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    println!("  {}: POST {} answers {}", t.label, t.url, fields.join(", "));
    Ok(())
}

/// A 2 s warm-up at the highest connection count (its answers checked too, though it may
/// complete none on a busy machine), then one run per connection count, each printed as it ends.
pub fn measure_all(server: &Server, t: &Target, opts: &Options, script: &Path) -> Result<Vec<Measurement>> {
    let most = opts.connections.iter().copied().max().unwrap_or(1);
    measure(server, t, most, 2, script, Run::WarmUp)?;
    let mut all = vec![];
    for &c in &opts.connections {
        let m = measure(server, t, c, opts.duration, script, Run::Measured)?;
        println!(
            "  {} at {c} connections: {} requests, {:.1} µs CPU per request",
            t.label,
            m.requests,
            m.us_per_request()
        );
        all.push(m);
    }
    Ok(all)
}

#[derive(PartialEq)]
enum Run {
    WarmUp,
    Measured,
}

fn measure(server: &Server, t: &Target, connections: u32, secs: u32, script: &Path, run: Run) -> Result<Measurement> {
    let pid = server.pid();
    let before = cpu_ticks(pid)?;
    let start = Instant::now();
    let out = Command::new("taskset")
        .args([
            "-c",
            LOAD_CORE,
            "wrk",
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(script)
        .arg(&t.url)
        .env("WRK_BODIES", t.bodies.join("\n"))
        .env("WRK_CONTENT_TYPE", t.content_type)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let elapsed = start.elapsed().as_secs_f64();
    let after = cpu_ticks(pid)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("wrk failed ({}): {stdout}{}", out.status, String::from_utf8_lossy(&out.stderr)).into());
    }
    let line =
        stdout.lines().find_map(|l| l.strip_prefix("WRK_RESULT ")).ok_or_else(|| format!("wrk said: {stdout}"))?;
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let (requests, non200, errors) = (field("requests"), field("non200"), field("errors"));
    if requests == u64::MAX {
        return Err(format!("unreadable wrk result: {line}").into());
    }
    if requests == 0 && run == Run::Measured {
        return Err(format!(
            "{} at {connections} connections: no request completed in {secs} s (see {}); a longer --duration, or a quieter machine",
            t.label,
            server.log.display()
        )
        .into());
    }
    if non200 != 0 || errors != 0 {
        let first = line.split_once("first_non200=").map(|(_, f)| f).unwrap_or_default();
        return Err(format!(
            "{} at {connections} connections: {non200} answers were not 200 and {errors} socket errors \
             out of {requests} requests (first: {first}); the server's log: {}",
            t.label,
            server.log.display()
        )
        .into());
    }
    let cpu_secs = after.saturating_sub(before) as f64 / clock_ticks_per_sec();
    Ok(Measurement { connections, requests, cpu_secs, secs: f64::from(secs).min(elapsed) })
}

/// utime + stime of process `pid`, every thread included, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name (which may hold spaces, closed by the last ')'): field 3 onwards.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, f)| f).unwrap_or_default().split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).ok_or("unreadable /proc/<pid>/stat");
    // utime is field 14 and stime field 15 (proc(5)): indices 11 and 12 counting from field 3.
    Ok(tick(11)? + tick(12)?)
}

pub fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads one line from a child's stdout (the peer announces its token this way).
pub fn first_line(child: &mut Child) -> Result<String> {
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    Ok(line)
}
