//! Where things are: the repository, the tools virtualenv, the dev state directory.

use std::path::PathBuf;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().and_then(|p| p.parent()).map(PathBuf::from).unwrap_or(here)
}

/// The tools directory: `RT_TOOLS_DIR`, or `.tools/` in the repository.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("RT_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".tools"))
}

/// The Python virtualenv holding moto, cfn-lint and cargo-lambda.
pub fn venv() -> PathBuf {
    tools_dir().join("venv")
}

pub fn venv_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// `target/dev` in the repository, whatever `CARGO_TARGET_DIR` says (DESIGN.md §6); `RT_DEV_DIR`
/// moves it (`cargo xtask bench` gives its servers their own, so as not to reseed a developer's).
pub fn dev_dir() -> PathBuf {
    std::env::var_os("RT_DEV_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target").join("dev"))
}

pub fn template() -> PathBuf {
    repo_root().join("template.yaml")
}
