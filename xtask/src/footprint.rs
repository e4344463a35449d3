//! `cargo xtask footprint`: what deploying the functions costs, measured.
//!
//! 1. The release build of every function, `cargo lambda build --release` (what `sam build`
//!    runs per function), timed (`--no-build` skips it and measures what is there).
//! 2. The size of each `bootstrap` (stripped, as deployed).
//! 3. Each function's cold init under a minimal Lambda Runtime API served here: the time from
//!    `exec` of the bootstrap to its first `GET /2018-06-01/runtime/invocation/next` (the
//!    moment Lambda's init phase ends), and the CPU its threads used by then
//!    (`/proc/<pid>/task/*/schedstat`, nanoseconds). Each function gets the variables its kind
//!    reads and nothing else (a clean environment), a key file in place of Secrets Manager, and
//!    a local moto with the table for its init-time warm-up request (`DynamoStore::warm_up`).
//!
//! Runs `--runs` times per function (default 5) and prints the median and the worst.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rt_devkit::moto::Moto;
use rt_devkit::{CARGO_LAMBDA_VERSION, paths, stack, template::Template};
use rt_http::config;
use rt_http::handlers::FUNCTIONS;
use rt_store::DynamoStore;

use crate::{Result, run, tools};

struct Options {
    build: bool,
    runs: usize,
    /// Warm invocations of each exchange function per algorithm (0: none).
    invocations: usize,
    /// Where the `<function>/bootstrap` files are (default: cargo lambda's output). A second
    /// one is measured beside the first, row by row (warm invocations only).
    lambda_dirs: Vec<PathBuf>,
}

/// The table of the measurements, in the local moto.
const TABLE: &str = "refresh-tokens";

const USAGE: &str =
    "usage: cargo xtask footprint [--no-build] [--runs N] [--invocations N] [--lambda-dir DIR [--lambda-dir DIR]]";

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options { build: true, runs: 5, invocations: 1000, lambda_dirs: vec![] };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--no-build" => opts.build = false,
            "--runs" => {
                opts.runs = it.next().and_then(|v| v.parse().ok()).filter(|n| *n > 0).ok_or("--runs N (N > 0)")?
            }
            "--invocations" => opts.invocations = it.next().and_then(|v| v.parse().ok()).ok_or("--invocations N")?,
            "--lambda-dir" => {
                if opts.lambda_dirs.len() == 2 {
                    return Err(format!("at most two --lambda-dir; {USAGE}").into());
                }
                opts.lambda_dirs.push(it.next().ok_or("--lambda-dir DIR")?.into());
            }
            other => return Err(format!("unknown argument {other}; {USAGE}").into()),
        }
    }
    Ok(opts)
}

pub fn main(args: &[String]) -> Result<()> {
    let mut opts = parse(args)?;
    let mut reqs = tools::dev_requirements();
    reqs.push(format!("cargo-lambda=={CARGO_LAMBDA_VERSION}"));
    tools::ensure(&reqs)?;
    let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    if opts.build {
        let started = Instant::now();
        let mut cmd = crate::cargo();
        cmd.current_dir(paths::repo_root()).env("PATH", tools::path_with_venv()).args(["lambda", "build", "--release"]);
        for name in &names {
            cmd.args(["--bin", name]);
        }
        eprintln!("xtask: cargo lambda build --release (all {} functions)", names.len());
        run(&mut cmd)?;
        println!("release build of {} functions: {:.0} s wall", names.len(), started.elapsed().as_secs_f64());
    }
    if opts.lambda_dirs.is_empty() {
        opts.lambda_dirs.push(target_dir().join("lambda"));
    }
    let lambda_dir = opts.lambda_dirs.first().cloned().unwrap_or_default();
    let bootstrap = |name: &str| lambda_dir.join(name).join("bootstrap");
    for name in &names {
        if !bootstrap(name).exists() {
            return Err(format!("{} is missing: run without --no-build", bootstrap(name).display()).into());
        }
    }

    let moto = Moto::start()?;
    let endpoint = moto.endpoint();
    let table = TABLE.to_owned();
    let store = DynamoStore::local(&endpoint, table.clone());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        stack::create_table(&store, &Template::load()?).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    let dir = paths::dev_dir().join("footprint");
    std::fs::create_dir_all(&dir)?;
    let keys = crate::dev::signing_keys()?;
    let public = rt_jwt::SigningKeys::from_pem(&keys)?.verifying_keys().document();
    let ours = [
        (config::ISSUER, "https://auth.example.com/".to_owned()),
        (config::TABLE_NAME, table),
        (config::SIGNING_KEY_FILE, crate::dev::signing_keys_path().display().to_string()),
        (config::SIGNING_PUBLIC_KEY_PEM, public),
        // Every invocation of the exchange measurement is the same token from the same address.
        (config::EXCHANGE_RATE_LIMIT, "1000000000".to_owned()),
    ];

    let api = RuntimeApi::start()?;
    println!(
        "{:<26} {:>9} {:>14} {:>14} {:>13}",
        "function", "size MB", "init ms (med)", "init ms (max)", "init CPU ms"
    );
    let mut worst = (0.0_f64, "");
    for f in FUNCTIONS {
        let env = stack::function_env(f.kind(), &ours, &endpoint);
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        for _ in 0..opts.runs {
            let (wall, cpu) = api.cold_init(&bootstrap(f.name), f.name, &env, &dir)?;
            walls.push(wall);
            cpus.push(cpu);
        }
        let size = std::fs::metadata(bootstrap(f.name))?.len() as f64 / 1_048_576.0;
        let (med, max) = (median(&mut walls), walls.iter().copied().fold(0.0, f64::max));
        if med > worst.0 {
            worst = (med, f.name);
        }
        println!("{:<26} {size:>9.2} {med:>14.1} {max:>14.1} {:>13.1}", f.name, median(&mut cpus));
    }
    println!("slowest cold init (median of {}): {} at {:.1} ms", opts.runs, worst.1, worst.0);

    if opts.invocations > 0 {
        println!(
            "\nwarm invocations through the Runtime API ({} per row after one warm-up, one at a time; CPU of the whole process)",
            opts.invocations
        );
        for (i, d) in opts.lambda_dirs.iter().enumerate() {
            println!("  build {}: {}", i + 1, d.display());
        }
        let env = |name: &str| {
            FUNCTIONS
                .iter()
                .find(|f| f.name == name)
                .map(|f| stack::function_env(f.kind(), &ours, &endpoint))
                .unwrap_or_default()
        };
        rt.block_on(crate::invoke::exchanges(&opts.lambda_dirs, &store, &env, opts.invocations, &dir))?;
    }
    drop(moto);
    Ok(())
}

/// `CARGO_TARGET_DIR`, else the workspace's `target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| paths::repo_root().join("target"), PathBuf::from)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The part of the Lambda Runtime API a function calls before its first invocation: it
/// records when a connection asks for `/runtime/invocation/next` (or reports an init error)
/// and answers nothing (the function is stopped there).
struct RuntimeApi {
    addr: String,
    requests: mpsc::Receiver<(Instant, String)>,
}

impl RuntimeApi {
    fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let (tx, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut line = String::new();
                    if BufReader::new(&stream).read_line(&mut line).is_ok() {
                        let _ = tx.send((Instant::now(), line.trim_end().to_owned()));
                    }
                    // Keep the connection open until the function is stopped.
                    std::thread::sleep(Duration::from_secs(30));
                    drop(stream);
                });
            }
        });
        Ok(Self { addr, requests })
    }

    /// One cold start of `exe`: milliseconds from spawn to its first `next`, and the CPU
    /// milliseconds its threads used by then.
    fn cold_init(&self, exe: &Path, name: &str, env: &[(String, String)], dir: &Path) -> Result<(f64, f64)> {
        while self.requests.try_recv().is_ok() {}
        let log = dir.join(format!("{name}.log"));
        let started = Instant::now();
        let mut child = spawn_bootstrap(exe, name, env, &self.addr, &log)?;
        let (at, line) = self
            .requests
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| format!("{name} did not reach the Runtime API in 20 s (log: {})", log.display()))?;
        let cpu = cpu_ns(child.0.id())? as f64 / 1e6;
        if !line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            return Err(format!("{name} sent {line:?} before its first invocation (log: {})", log.display()).into());
        }
        child.0.kill()?;
        child.0.wait()?;
        Ok((at.duration_since(started).as_secs_f64() * 1e3, cpu))
    }
}

/// Starts a function's `bootstrap` as Lambda does: a clean environment of `env`, the Runtime
/// API at `runtime_api`, its output into `log`.
pub fn spawn_bootstrap(
    exe: &Path,
    name: &str,
    env: &[(String, String)],
    runtime_api: &str,
    log: &Path,
) -> Result<Stopped> {
    let child = Command::new(exe)
        .env_clear()
        .envs(env.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log)?)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    Ok(Stopped(child))
}

/// A child killed when dropped (an error midway leaves no function running).
pub struct Stopped(pub Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time of every thread of `pid`, in nanoseconds (the first field of each thread's
/// schedstat: time spent on the CPU).
fn cpu_ns(pid: u32) -> Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        total += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).ok_or("unreadable schedstat")?;
    }
    Ok(total)
}
