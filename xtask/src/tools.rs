//! Installs what the commands need into the tools virtualenv (pinned versions).

use std::process::Command;

use rt_devkit::{CARGO_LAMBDA_VERSION, CFN_LINT_VERSION, MOTO_VERSION, paths};

use crate::{Result, run};

/// What `cargo xtask dev` needs.
pub fn dev_requirements() -> Vec<String> {
    vec![format!("moto[dynamodb]=={MOTO_VERSION}"), "flask".into(), "flask-cors".into()]
}

/// What `cargo xtask test` needs.
pub fn test_requirements() -> Vec<String> {
    let mut r = dev_requirements();
    r.push(format!("cfn-lint=={CFN_LINT_VERSION}"));
    r.push(format!("cargo-lambda=={CARGO_LAMBDA_VERSION}"));
    r
}

/// Creates the virtualenv and installs `reqs` unless a previous run installed them.
pub fn ensure(reqs: &[String]) -> Result<()> {
    let venv = paths::venv();
    let marker = venv.join(".installed");
    let installed = std::fs::read_to_string(&marker).unwrap_or_default();
    let missing: Vec<&String> = reqs.iter().filter(|r| !installed.lines().any(|l| l == r.as_str())).collect();
    if missing.is_empty() && venv.join("bin/python").exists() {
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        eprintln!("xtask: creating {}", venv.display());
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&python).args(["-m", "venv"]).arg(&venv))
            .map_err(|e| format!("{e}\nxtask needs Python 3 with venv (Debian: apt-get install python3-venv)"))?;
    }
    eprintln!("xtask: installing {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "));
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(&missing))?;
    let mut all: Vec<&str> = installed.lines().filter(|l| !l.is_empty()).collect();
    all.extend(missing.iter().map(|s| s.as_str()));
    std::fs::write(&marker, all.join("\n") + "\n")?;
    Ok(())
}

/// PATH with the virtualenv's `bin` first (cargo-lambda, cfn-lint, zig).
pub fn path_with_venv() -> String {
    let bin = paths::venv().join("bin");
    match std::env::var("PATH") {
        Ok(p) => format!("{}:{p}", bin.display()),
        Err(_) => bin.display().to_string(),
    }
}

/// Installs the pinned Node packages of `tests/node` (the auth0 SDK compatibility test) with
/// `npm ci`, unless `node_modules` already holds them and is newer than `package-lock.json`.
pub fn ensure_node_modules() -> Result<()> {
    let dir = paths::repo_root().join("tests").join("node");
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules").join("auth0").join("package.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let lock_time = modified(&lock).ok_or_else(|| format!("{} is missing", lock.display()))?;
    if modified(&installed).is_some_and(|t| t >= lock_time) {
        return Ok(());
    }
    let npm_works = Command::new("npm").arg("--version").output().is_ok_and(|o| o.status.success());
    if !npm_works {
        return Err("`npm` was not found: the auth0 Node SDK compatibility test (tests/node) needs Node.js 20.19+ \
                    with npm (https://nodejs.org/, or Debian: apt-get install nodejs npm)"
            .into());
    }
    eprintln!("xtask: npm ci in {}", dir.display());
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir))
}
