//! Running the Node.js halves of tests (`tests/node`: the auth0 SDK, Playwright).

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(180);

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn read_all(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

impl Output {
    /// The script's `result: <JSON>` line, after checking that it succeeded; prints its output
    /// (and how long it ran since `started`), so that every run shows what the SDK did.
    pub fn result(&self, what: &str, started: Instant) -> serde_json::Value {
        let report = format!("--- node stdout\n{}--- node stderr\n{}", self.stdout, self.stderr);
        assert!(self.status.success(), "{what} failed ({}):\n{report}", self.status);
        eprintln!("node ran in {:?}\n{report}", started.elapsed());
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("result: "))
            .map(|j| serde_json::from_str(j).expect("result JSON"))
            .unwrap_or_else(|| panic!("no result line:\n{report}"))
    }
}

/// Fails the test (never skips it) when `tests/node/node_modules/<package>` is missing.
pub fn require_package(root: &Path, package: &str) {
    let p = root.join("tests/node/node_modules").join(package).join("package.json");
    assert!(p.exists(), "{} is missing: run `cargo xtask test` or `npm ci` in tests/node", p.display());
}

/// Debian's Chromium for the browser tests (or `CHROMIUM`); fails the test (never skips it)
/// when it is missing.
pub fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: the browser tests need Debian's chromium (`apt-get install chromium`, which \
         `cargo xtask test` and .ci/run do), or CHROMIUM=/path/to/chromium"
    );
    path
}

/// Runs `node <script>` with `env`, without blocking the runtime that serves its requests.
pub async fn node(root: &Path, script: &str, env: &[(&str, String)]) -> Output {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): Node.js 20+ is needed for the tests in tests/node"));
    let out = read_all(child.stdout.take().expect("stdout"));
    let err = read_all(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for node") {
            break s;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "node {script} did not finish in {TIMEOUT:?}\n--- stdout\n{}\n--- stderr\n{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Output { status, stdout: out.join().expect("stdout"), stderr: err.join().expect("stderr") }
}
