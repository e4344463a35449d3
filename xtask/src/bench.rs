//! `cargo xtask bench`: runs the benchmarks (release build) with the tools they need.

use crate::{Result, cargo, run, tools};

pub fn main(args: &[String]) -> Result<()> {
    tools::ensure(&tools::dev_requirements())?;
    run(cargo()
        .current_dir(rt_devkit::paths::repo_root())
        .args(["bench", "-p", "rt-tests", "--bench", "delegation", "--"])
        .args(args))
}
