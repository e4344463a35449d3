//! The peer of `cargo xtask bench --peer`: node-oidc-provider (pinned), installed from npm into
//! the tools directory (never into the repository), run by the committed harness
//! `tests/peer/oidc-provider.mjs`: one Node process, pinned to the server core, measured as ours.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rt_devkit::paths;

use crate::load::{self, SERVER_CORE, Server, Target};
use crate::{Result, run};

/// The pinned node-oidc-provider (npm's latest on 2026-12-02).
pub const OIDC_PROVIDER_VERSION: &str = "9.13.3";

const HARNESS: &str = include_str!("../../tests/peer/oidc-provider.mjs");

/// Installs the pinned oidc-provider into `<tools>/peer/oidc-provider-<version>` unless there,
/// and copies the harness next to it (so that Node resolves the package from there).
pub fn install() -> Result<PathBuf> {
    let dir = paths::tools_dir().join("peer").join(format!("oidc-provider-{OIDC_PROVIDER_VERSION}"));
    let installed = std::fs::read_to_string(dir.join("node_modules/oidc-provider/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|p| p.get("version").and_then(|v| v.as_str()) == Some(OIDC_PROVIDER_VERSION));
    if !installed {
        let npm_works = Command::new("npm").arg("--version").output().is_ok_and(|o| o.status.success());
        if !npm_works {
            return Err(
                "`npm` was not found: the peer benchmark needs Node.js 20 with npm (apt-get install nodejs npm)".into(),
            );
        }
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("package.json"), "{\"private\": true, \"type\": \"module\"}\n")?;
        eprintln!("xtask: npm install oidc-provider@{OIDC_PROVIDER_VERSION} in {}", dir.display());
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--save-exact"])
            .arg(format!("oidc-provider@{OIDC_PROVIDER_VERSION}"))
            .current_dir(&dir))?;
    }
    std::fs::write(dir.join("oidc-provider.mjs"), HARNESS)?;
    Ok(dir)
}

pub struct Peer {
    pub server: Server,
    client_id: String,
    refresh_tokens: Vec<String>,
}

/// Starts the harness on a free port, pinned to [`SERVER_CORE`]; it prints its client and
/// `tokens` refresh tokens (one per connection, as ours) on its first line.
pub fn start(dir: &Path, bench_dir: &Path, tokens: usize) -> Result<Peer> {
    let port = rt_devkit::moto::free_port()?;
    let log = bench_dir.join("peer.log");
    let child = Command::new("taskset")
        .args(["-c", SERVER_CORE, "node"])
        .arg(dir.join("oidc-provider.mjs"))
        .arg(port.to_string())
        .arg(tokens.to_string())
        .current_dir(dir)
        .env("NODE_ENV", "production")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let mut server = Server { child, base: format!("http://127.0.0.1:{port}"), log };
    let line = load::first_line(&mut server.child)?;
    let first: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| format!("the peer harness said {line:?} ({e}); see {}", server.log.display()))?;
    let field = |k: &str| first.get(k).and_then(|v| v.as_str()).map(str::to_owned).ok_or(format!("no {k} in {line}"));
    let client_id = field("client_id")?;
    let refresh_tokens: Vec<String> = first
        .get("refresh_tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
        .filter(|t: &Vec<String>| !t.is_empty())
        .ok_or(format!("no refresh_tokens in {line}"))?;
    load::wait_ready(&mut server, "/.well-known/openid-configuration")?;
    Ok(Peer { server, client_id, refresh_tokens })
}

/// The refresh grant of node-oidc-provider, with the token the harness issued.
pub fn target(p: &Peer) -> Target {
    Target {
        label: format!("node-oidc-provider {OIDC_PROVIDER_VERSION} /token refresh (RS256)"),
        url: format!("{}/token", p.server.base),
        content_type: "application/x-www-form-urlencoded",
        bodies: p
            .refresh_tokens
            .iter()
            .map(|t| load::form(&[("grant_type", "refresh_token"), ("client_id", &p.client_id), ("refresh_token", t)]))
            .collect(),
    }
}
