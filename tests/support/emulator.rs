//! Emulator processes for the cloud location tests (moto for S3; Azurite and
//! fake-gcs-server use the same helper): start on a free 127.0.0.1 port, wait
//! until the port accepts connections, pause, resume, stop and start again on
//! the same port. The process is killed when the value is dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an emulator may take to open its port.
const STARTUP: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 (bound and released; the emulator binds it
/// right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pick a free port")
}

/// Finds an executable installed by `scripts/install-test-deps.sh`: in the
/// repository's `.venv/bin`, `node_modules/.bin`, or on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    for dir in [root.join(".venv/bin"), root.join("node_modules/.bin")] {
        let p = dir.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The Python interpreter with the test tools: `$PYTHON`, else the
/// project's `.venv/bin/python` (made by `scripts/install-test-deps.sh`),
/// else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// A running emulator process.
pub struct Emulator {
    cmd: PathBuf,
    args: Vec<String>,
    port: u16,
    log: tempfile::NamedTempFile,
    child: Option<Child>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("cmd", &self.cmd)
            .field("port", &self.port)
            .finish()
    }
}

impl Emulator {
    /// Starts `cmd args...`, which must listen on 127.0.0.1:`port`, and waits
    /// until the port accepts connections. Panics with the emulator's output
    /// if it exits or does not open the port in time.
    pub fn start(cmd: impl AsRef<Path>, args: &[&str], port: u16) -> Self {
        let mut emu = Emulator {
            cmd: cmd.as_ref().to_owned(),
            args: args.iter().map(|s| s.to_string()).collect(),
            port,
            log: tempfile::NamedTempFile::new().expect("emulator log"),
            child: None,
        };
        emu.spawn();
        emu
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The emulator's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "emulator already running");
        let out = self.log.reopen().expect("emulator log");
        let err = out.try_clone().expect("emulator log");
        let mut child = Command::new(&self.cmd)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.cmd.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + STARTUP;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited ({status}) before listening on {addr}:\n{}",
                    self.cmd.display(),
                    self.log()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not listen on {addr} within {STARTUP:?}:\n{}",
                    self.cmd.display(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("emulator running").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {pid} failed");
    }

    /// Freezes the process (SIGSTOP): connections are accepted by the kernel
    /// but never answered, like a hung service.
    /// Returns once every thread is stopped: SIGSTOP reaches one thread,
    /// which then stops the others, and until then a thread blocked in
    /// `epoll_wait` may still answer a request.
    pub fn pause(&self) {
        self.signal("STOP");
        let pid = self.child.as_ref().expect("emulator running").id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "process {pid} did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills the process and waits for it: the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again on the same port (a fresh process: an
    /// in-memory emulator has lost its state).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

/// Whether every thread of `pid` is in the stopped state (`T` or `t` in
/// `/proc/PID/task/TID/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
            })
            .unwrap_or(true)
    })
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        self.stop();
    }
}

/// An SDK client for any S3 endpoint (an emulator, another cloudmux),
/// path-style, retries disabled.
pub fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(crate::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "cloudmux-e2e",
        ))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Starts moto's S3 server (`moto_server`, installed by
/// `scripts/install-test-deps.sh`) on a free port.
pub fn start_moto() -> Emulator {
    let bin = find_tool("moto_server")
        .expect("moto_server not found: run scripts/install-test-deps.sh (PyPI moto[server])");
    let port = free_port();
    Emulator::start(bin, &["-H", "127.0.0.1", "-p", &port.to_string()], port)
}

impl Emulator {
    /// The process id of the running emulator (for a watchdog, see
    /// [`crate::kill_when_test_exits`]).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}
