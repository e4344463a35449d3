//! `cargo xtask bench`: the in-process benchmark (release build, `tests/benches/delegation.rs`)
//! and the HTTP one (`load.rs`: the release server over HTTP with wrk; `--peer` adds
//! node-oidc-provider under the same load).

use crate::{Result, cargo, load, run, tools};

const USAGE: &str = "usage: cargo xtask bench [--runs N] [--calls N] [--duration S] [--connections 1,4,16] \
                     [--in-process-only | --http-only] [--peer]";

struct Args {
    /// The in-process benchmark's arguments, unless `--http-only`.
    in_process: Option<Vec<String>>,
    http: Option<load::Options>,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut in_process = vec![];
    let mut opts = load::Options { duration: 10, connections: vec![1, 4, 16], peer: false };
    let (mut in_process_only, mut http_only) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value; {USAGE}"));
        match a.as_str() {
            "--runs" | "--calls" => {
                let v = value()?.clone();
                in_process.extend([a.clone(), v]);
            }
            "--duration" => opts.duration = value()?.parse().map_err(|_| "--duration needs whole seconds")?,
            "--connections" => {
                opts.connections = value()?
                    .split(',')
                    .map(|c| c.trim().parse::<u32>().ok().filter(|&c| c > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("--connections needs positive numbers separated by commas")?;
            }
            "--in-process-only" => in_process_only = true,
            "--http-only" => http_only = true,
            "--peer" => opts.peer = true,
            other => return Err(format!("unknown argument {other}; {USAGE}").into()),
        }
    }
    if in_process_only && (http_only || opts.peer) {
        return Err(format!("--in-process-only measures nothing over HTTP; {USAGE}").into());
    }
    Ok(Args { in_process: (!http_only).then_some(in_process), http: (!in_process_only).then_some(opts) })
}

pub fn main(args: &[String]) -> Result<()> {
    let args = parse(args)?;
    tools::ensure(&tools::dev_requirements())?;
    if let Some(in_process) = &args.in_process {
        run(cargo()
            .current_dir(rt_devkit::paths::repo_root())
            .args(["bench", "-p", "rt-tests", "--bench", "delegation", "--"])
            .args(in_process))?;
    }
    match &args.http {
        Some(opts) => load::main(opts),
        None => Ok(()),
    }
}
