//! Installs what the commands need into the tools virtualenv (pinned versions).

use std::process::Command;

use rt_devkit::{CARGO_LAMBDA_VERSION, CFN_LINT_VERSION, MOTO_VERSION, SCHEMATHESIS_VERSION, WAITRESS_VERSION, paths};

use crate::{Result, run};

/// What `cargo xtask dev` needs.
pub fn dev_requirements() -> Vec<String> {
    vec![
        format!("moto[dynamodb]=={MOTO_VERSION}"),
        "flask".into(),
        "flask-cors".into(),
        format!("waitress=={WAITRESS_VERSION}"),
    ]
}

/// What `cargo xtask test` needs.
pub fn test_requirements() -> Vec<String> {
    let mut r = dev_requirements();
    r.push(format!("cfn-lint=={CFN_LINT_VERSION}"));
    r.push(format!("cargo-lambda=={CARGO_LAMBDA_VERSION}"));
    r.push(format!("schemathesis=={SCHEMATHESIS_VERSION}"));
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

/// Installs `tests/node` (the auth0 Node SDK, auth0-spa-js and playwright-core, pinned by its
/// lockfile) with `npm ci` unless the installed tree matches the lockfile.
pub fn ensure_node_modules() -> Result<()> {
    let dir = paths::repo_root().join("tests").join("node");
    let lock = std::fs::read_to_string(dir.join("package-lock.json"))
        .map_err(|e| format!("tests/node/package-lock.json: {e}"))?;
    let installed = std::fs::read_to_string(dir.join("node_modules").join(".package-lock.json")).unwrap_or_default();
    // npm writes node_modules/.package-lock.json with the lockfile's packages on every install.
    let packages = |text: &str| -> Option<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let mut p = v.get("packages")?.clone();
        if let Some(m) = p.as_object_mut() {
            m.remove("");
        }
        Some(p)
    };
    if packages(&lock).is_some() && packages(&lock) == packages(&installed) {
        return Ok(());
    }
    let npm_works = Command::new("npm").arg("--version").output().is_ok_and(|o| o.status.success());
    if !npm_works {
        return Err("`npm` was not found: the tests in tests/node (auth0 SDK, browser) need Node.js 20 with npm \
                    (Debian: apt-get install nodejs npm)"
            .into());
    }
    eprintln!("xtask: npm ci in {}", dir.display());
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir))
}

/// Debian's Chromium for the browser tests: installed with apt-get when missing (as root).
pub fn ensure_chromium() -> Result<()> {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if std::path::Path::new(&path).exists() {
        return Ok(());
    }
    apt_install(
        "chromium",
        &format!("{path} is missing: install Debian's chromium (sudo apt-get install chromium) or set CHROMIUM"),
    )
}

/// Installs Debian's `package` with apt-get when running as root; otherwise fails with
/// `missing` (which names the install command).
pub fn apt_install(package: &str, missing: &str) -> Result<()> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        return Err(missing.into());
    }
    eprintln!("xtask: apt-get install {package}");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", package]).env("DEBIAN_FRONTEND", "noninteractive"))
        .map_err(|e| format!("{e}\n{missing}").into())
}
