//! `cargo xtask dev` — the whole API on http://127.0.0.1:3000 over a local DynamoDB.
//! `cargo xtask test` — install what is missing, lint, run every test.
//! `cargo xtask bench` — the hot-path benchmarks, in-process and over HTTP (`--peer`: against
//! node-oidc-provider).
//! `cargo xtask footprint` — release build time, binary sizes and cold init of every function.
//! `cargo xtask sweep` — one run of the scheduled sweep against the local table.
//! `cargo xtask public-keys` — the public keys of a key document, for `SigningPublicKeyPem`.

mod bench;
mod dev;
mod footprint;
mod invoke;
mod load;
mod peer;
mod public_keys;
mod sweep;
mod tools;

use std::process::{Command, ExitCode};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  dev [--port N] [--realistic]
                     run the API locally (default port 3000) over moto, seed demo data;
                     --realistic adds DynamoDB's latency, conflicts and throughput limits
  dev --release      the same server, optimised (for load generators such as wrk)
  test               install test tools, lint (fmt, clippy, cfn-lint), run all tests
  bench [--runs N] [--calls N] [--duration S] [--connections 1,4,16]
        [--in-process-only | --http-only] [--peer]
                     measure the /delegation hot path in-process against a local DynamoDB,
                     then the server CPU per request over HTTP (release server on core 0,
                     wrk and moto on core 1); --peer adds node-oidc-provider's refresh grant
  footprint [--no-build] [--runs N]
                     build every function as deployed (cargo lambda build --release),
                     timed; print each binary's size and its cold init (exec to the first
                     Runtime API request, wall and CPU) against a local DynamoDB
  sweep [--budget S] run the scheduled sweep of expired refresh tokens once against the
                     table of `cargo xtask dev` (or AWS_ENDPOINT_URL_DYNAMODB, TABLE_NAME)
  public-keys [FILE] print the public keys of a key document (default: the one of
                     `cargo xtask dev`; - for stdin) as the one-line JWK set of the
                     SigningPublicKeyPem parameter; lists alg, state and kid on stderr
";

/// Runs a command, failing with its name if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed with {status}").into()) }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev::main(rest),
        Some("test") => test(rest),
        Some("bench") => bench::main(rest),
        Some("footprint") => footprint::main(rest),
        Some("sweep") => sweep::main(rest),
        Some("public-keys") => public_keys::main(rest),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds this crate with the release profile (quietly when nothing changed) and returns the
/// executable: `cargo xtask dev --release` and the HTTP benchmark run it.
pub fn release_binary() -> Result<std::path::PathBuf> {
    eprintln!("xtask: cargo build --release -p xtask");
    let out = cargo()
        .current_dir(rt_devkit::paths::repo_root())
        .args(["build", "--release", "--package", "xtask", "--message-format", "json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build --release -p xtask failed with {}", out.status).into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m.pointer("/target/name").and_then(|n| n.as_str()) == Some("xtask"))
        .find_map(|m| m.get("executable").and_then(|e| e.as_str()).map(std::path::PathBuf::from))
        .ok_or_else(|| "cargo build --release -p xtask named no executable".into())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test(args: &[String]) -> Result<()> {
    let root = rt_devkit::paths::repo_root();
    tools::ensure(&tools::test_requirements())?;
    tools::ensure_node_modules()?;
    tools::ensure_chromium()?;
    let path = tools::path_with_venv();
    eprintln!("xtask: cargo fmt --check");
    run(cargo().current_dir(&root).args(["fmt", "--all", "--check"]))?;
    eprintln!("xtask: cargo clippy --all-targets -- -D warnings");
    run(cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    eprintln!("xtask: cfn-lint template.yaml");
    run(Command::new(rt_devkit::paths::venv_bin("cfn-lint")).current_dir(&root).arg("template.yaml"))?;

    // One DynamoDB server for the whole run; every test makes its own table.
    let moto = rt_devkit::moto::Moto::start()?;
    eprintln!("xtask: moto on {}", moto.endpoint());
    let nextest = Command::new("cargo-nextest").arg("--version").output().is_ok_and(|o| o.status.success());
    let mut cmd = cargo();
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(args).current_dir(&root).env("RT_TEST_DYNAMODB_ENDPOINT", moto.endpoint()).env("PATH", path);
    let result = run(&mut cmd);
    drop(moto);
    result
}
