//! The local DynamoDB API server: moto, started on a free loopback port, stopped on drop.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{MOTO_VERSION, WAITRESS_VERSION, paths};

const SCRIPT: &str = include_str!("moto_server.py");

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto {MOTO_VERSION} is not installed for {python}. Run `cargo xtask test` or `cargo xtask dev` (they install it into {venv}), or by hand: python3 -m venv {venv} && {venv}/bin/pip install 'moto[dynamodb]=={MOTO_VERSION}' flask flask-cors 'waitress=={WAITRESS_VERSION}'. Set MOTO_PYTHON to use another interpreter."
    )]
    NotInstalled { python: String, venv: String },
    #[error("cannot start moto: {0}")]
    Start(String),
}

/// The Python interpreter that runs moto: `MOTO_PYTHON`, else the tools virtualenv.
pub fn python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON").map(PathBuf::from).unwrap_or_else(|| paths::venv_bin("python"))
}

/// Whether the pinned moto (and waitress, its keep-alive server) is importable by [`python`].
pub fn installed() -> bool {
    let check = format!(
        "import moto, flask, flask_cors, importlib.metadata as m; assert moto.__version__ == '{MOTO_VERSION}'; \
         assert m.version('waitress') == '{WAITRESS_VERSION}'"
    );
    Command::new(python())
        .args(["-c", &check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running moto server; killed when dropped (and it exits by itself if we die).
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
}

impl Moto {
    pub fn start() -> Result<Self, MotoError> {
        if !installed() {
            return Err(MotoError::NotInstalled {
                python: python().display().to_string(),
                venv: paths::venv().display().to_string(),
            });
        }
        let port = free_port().map_err(|e| MotoError::Start(e.to_string()))?;
        let script = write_script().map_err(|e| MotoError::Start(e.to_string()))?;
        let log_path = paths::tools_dir().join(format!("moto-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| MotoError::Start(e.to_string()))?;
        let child = Command::new(python())
            .arg(&script)
            .args(["127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| MotoError::Start(e.to_string()))?;
        let mut moto = Self { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        moto.wait_ready()?;
        // The log is for a moto that fails to start (the error points at it). Once it answers,
        // the file is unlinked (moto keeps writing to it unseen): a moto per test process, or
        // one held by a static that is never dropped, leaves nothing behind.
        let _ = std::fs::remove_file(&log_path);
        Ok(moto)
    }

    fn wait_ready(&mut self) -> Result<(), MotoError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(MotoError::Start(format!(
                    "moto exited with {status}; see {}",
                    paths::tools_dir().display()
                )));
            }
            if ready(self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(MotoError::Start("moto did not answer within 30 s".into()))
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The server script, under a name of its own content: test processes of other checkouts share
/// the tools directory, and one writing its version must not change the script another is
/// about to start. Written to a temporary name and renamed, so it is never seen half-written.
fn write_script() -> std::io::Result<PathBuf> {
    // FNV-1a: a stable name per content, nothing secret to protect.
    let hash = SCRIPT.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let short = format!("{:012x}", hash >> 16);
    let dir = paths::tools_dir();
    std::fs::create_dir_all(&dir)?;
    let script = dir.join(format!("moto_server-{short}.py"));
    if std::fs::read_to_string(&script).is_ok_and(|s| s == SCRIPT) {
        return Ok(script);
    }
    let tmp = dir.join(format!("moto_server-{short}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, SCRIPT)?;
    std::fs::rename(&tmp, &script)?;
    Ok(script)
}

fn ready(addr: SocketAddr) -> bool {
    use std::io::Write as _;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    s.read(&mut buf)
        .is_ok_and(|n| buf.get(..n).is_some_and(|b| b.starts_with(b"HTTP/1.0 200") || b.starts_with(b"HTTP/1.1 200")))
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
