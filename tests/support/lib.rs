//! Shared helpers for the end-to-end tests.
//!
//! Every test starts its own `cloudmux serve` child process on a fresh
//! temporary directory ([`TestServer::start`]), talks to it with the real AWS
//! SDK ([`TestServer::client`]) or with hand-built signed requests
//! ([`TestServer::raw`]) for what the SDK refuses to send, and kills it on drop.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clouds;
pub mod emulator;
pub mod versions;
pub mod xml;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use md5::{Digest as _, Md5};
use rand::RngCore as _;

pub use xml::Element;

/// The region every test server is configured with.
pub const REGION: &str = "us-east-1";
/// The virtual-hosted-style base domain configured in every test server.
pub const DOMAIN: &str = "s3.cloudmux.test";
/// The secret key handed to the server through `CLOUDMUX_TEST_CAROL_SECRET`.
pub const CAROL_SECRET: &str = "carol-secret-key-00000000000000000000003";

/// One configured account: its name (the Owner DisplayName) and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// Account name, also the expected `DisplayName`.
    pub name: &'static str,
    /// Access key id.
    pub access_key: &'static str,
    /// Secret access key.
    pub secret_key: &'static str,
}

/// The first account; most tests act as alice.
pub const ALICE: Account = Account {
    name: "alice",
    access_key: "AKIAALICE0000000001",
    secret_key: "alice-secret-key-000000000000000000001",
};
/// A second account, used for cross-account checks.
pub const BOB: Account = Account {
    name: "bob",
    access_key: "AKIABOB00000000000002",
    secret_key: "bob-secret-key-0000000000000000000002",
};
/// A third account whose secret comes from an environment variable.
pub const CAROL: Account = Account {
    name: "carol",
    access_key: "AKIACAROL0000000003",
    secret_key: CAROL_SECRET,
};

/// An account with `admin = true`: it may read `/metrics` and the admin
/// routes under `/_/`.
pub const ADMIN: Account = Account {
    name: "root",
    access_key: "AKIAROOT00000000000004",
    secret_key: "root-secret-key-000000000000000000004",
};

/// The `[server] metrics_token` of every test server.
pub const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

/// Options for [`TestServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// TOML appended verbatim to the generated configuration file.
    pub extra_config: String,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// The server binary; [`server_binary`] when `None`.
    pub binary: Option<PathBuf>,
}

/// A running `cloudmux serve` child process with its own data directory.
///
/// The process is killed (SIGKILL) when the value is dropped. The temporary
/// directory lives as long as the value, so [`TestServer::restart`] and
/// [`TestServer::kill9`] followed by [`TestServer::spawn`] reuse the same data.
pub struct TestServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    watchdog: Option<Child>,
    addr: SocketAddr,
    opts: ServerOptions,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("dir", &self.dir.path())
            .field("addr", &self.addr)
            .finish()
    }
}

/// Path of the server binary: `$CLOUDMUX_BIN`, else `<workspace>/target/debug/cloudmux`.
pub fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("CLOUDMUX_BIN") {
        return PathBuf::from(p);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("tests/ has a parent");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    target.join("debug").join("cloudmux")
}

impl TestServer {
    /// Starts a server with the default configuration.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with extra configuration or environment.
    pub fn start_with(opts: ServerOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cloudmux-e2e-")
            .tempdir()
            .expect("create tempdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("create data dir");
        let mut server = TestServer {
            dir,
            child: None,
            watchdog: None,
            addr: "127.0.0.1:0".parse().expect("addr"),
            opts,
        };
        server.write_config();
        server.spawn();
        server
    }

    /// Runs `binary` (or [`server_binary`] with `None`) from the next
    /// [`TestServer::spawn`] on, on the same data.
    pub fn use_binary(&mut self, binary: Option<PathBuf>) {
        self.opts.binary = binary;
    }

    /// The temporary directory holding the config, the log and `data/`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The directory holding the metadata and object stores (`meta`, `objects`, `objects2`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The generated configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("cloudmux.toml")
    }

    /// The file that collects the server's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The listening address (changes on every (re)start).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The path-style endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn write_config(&self) {
        let data = self.data_dir();
        let d = data.display();
        let config = format!(
            r#"[server]
listen = "127.0.0.1:0"
region = "{REGION}"
domains = ["{DOMAIN}"]
metrics_token = "{METRICS_TOKEN}"

[metadata]
engine = "sled"
path = "{d}/meta"

[[accounts]]
name = "alice"
access_key = "{ak_a}"
secret_key = "{sk_a}"

[[accounts]]
name = "bob"
access_key = "{ak_b}"
secret_key = "{sk_b}"

[[accounts]]
name = "carol"
access_key = "{ak_c}"
secret_key_env = "CLOUDMUX_TEST_CAROL_SECRET"

[[accounts]]
name = "root"
access_key = "{ak_r}"
secret_key = "{sk_r}"
admin = true

[locations.local]
type = "fs"
path = "{d}/objects"
default = true

[locations.second]
type = "fs"
path = "{d}/objects2"

{extra}
"#,
            ak_a = ALICE.access_key,
            sk_a = ALICE.secret_key,
            ak_b = BOB.access_key,
            sk_b = BOB.secret_key,
            ak_c = CAROL.access_key,
            ak_r = ADMIN.access_key,
            sk_r = ADMIN.secret_key,
            extra = self.opts.extra_config,
        );
        std::fs::write(self.config_path(), config).expect("write config");
    }

    /// Spawns the server process on the existing data directory and waits for
    /// its `endpoint:` line. Panics if a process is already running.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let bin = self.opts.binary.clone().unwrap_or_else(server_binary);
        assert!(
            bin.exists(),
            "cloudmux binary not found at {}: run `cargo build --bin cloudmux` first \
             (or set CLOUDMUX_BIN)",
            bin.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open log");
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .env("CLOUDMUX_TEST_CAROL_SECRET", CAROL_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone().expect("clone log")));
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Drain stdout for the whole life of the process (a full pipe would
        // block the server), copying it to the log and reporting the endpoint.
        std::thread::spawn(move || {
            let mut log = log;
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some(rest) = line.trim_start().strip_prefix("endpoint:") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let url = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(url) => break url,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "cloudmux exited with {status} before printing its endpoint; log:\n{}",
                            self.log()
                        );
                    }
                    if std::time::Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!(
                            "cloudmux printed no `endpoint:` line in 60 s; log:\n{}",
                            self.log()
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!(
                        "cloudmux closed stdout ({status:?}) before printing its endpoint; log:\n{}",
                        self.log()
                    );
                }
            }
        };
        let hostport = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("endpoint is not http://: {url:?}"))
            .trim_end_matches('/');
        self.addr = hostport
            .parse()
            .unwrap_or_else(|e| panic!("endpoint {url:?} is not IP:PORT: {e}"));
        self.watchdog = spawn_watchdog(child.id());
        self.child = Some(child);
    }

    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut dog) = self.watchdog.take() {
            let _ = dog.kill();
            let _ = dog.wait();
        }
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and reaps it.
    pub fn kill9(&mut self) {
        self.reap();
    }

    /// Stops the server gracefully (SIGTERM via `kill`, SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
            self.child = Some(child);
        }
        self.reap();
    }

    /// The process id of the running server, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM (via `kill`) to the running server and returns at once,
    /// leaving it to drain; see [`TestServer::wait_exit`].
    pub fn terminate(&self) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM {pid}: {status}");
        }
    }

    /// Waits up to `timeout` for the server to exit by itself; on exit, reaps
    /// it (so [`TestServer::spawn`] may follow) and returns its status.
    /// Returns `None`, with the server still running, on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.reap();
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server gracefully and starts it again on the same data.
    /// The port changes: create new clients afterwards.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// An SDK client for `account`, path-style, retries disabled.
    pub fn client(&self, account: Account) -> Client {
        Client::from_conf(self.config_builder(account, &self.endpoint()).build())
    }

    /// An SDK client for `account` with a caller-tuned configuration.
    pub fn client_with(
        &self,
        account: Account,
        tune: impl FnOnce(aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder,
    ) -> Client {
        Client::from_conf(tune(self.config_builder(account, &self.endpoint())).build())
    }

    /// An SDK client using virtual-hosted style (`Host: <bucket>.s3.cloudmux.test:PORT`).
    ///
    /// The SDK builds URLs on `http://s3.cloudmux.test:PORT`; an interceptor
    /// running after signing sends each request to 127.0.0.1 while keeping the
    /// signed `Host` header, so no DNS entry is needed.
    pub fn vhost_client(&self, account: Account) -> Client {
        let endpoint = format!("http://{DOMAIN}:{}", self.port());
        let conf = self
            .config_builder(account, &endpoint)
            .force_path_style(false)
            .interceptor(LoopbackRedirect { addr: self.addr })
            .build();
        Client::from_conf(conf)
    }

    fn config_builder(&self, account: Account, endpoint: &str) -> aws_sdk_s3::config::Builder {
        let creds = Credentials::new(
            account.access_key,
            account.secret_key,
            None,
            None,
            "cloudmux-e2e",
        );
        aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(RetryConfig::disabled())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(120))
                    .connect_timeout(Duration::from_secs(10))
                    .build(),
            )
    }

    /// Starts a hand-built request; `path_and_query` is sent byte for byte
    /// (it must already be percent-encoded), signed as alice unless changed.
    pub fn raw(&self, method: &str, path_and_query: &str) -> Raw {
        Raw::to(self.addr, method, path_and_query)
    }

    /// Every file path under the temporary root but outside `data/` (config, log).
    pub fn files_outside_data(&self) -> BTreeSet<PathBuf> {
        let data = self.data_dir();
        walk(self.root())
            .into_iter()
            .filter(|p| !p.starts_with(&data))
            .collect()
    }
}

/// Every secret the test servers are configured with (account secret keys
/// and the metrics token).
pub const SECRETS: [&str; 5] = [
    ALICE.secret_key,
    BOB.secret_key,
    CAROL_SECRET,
    ADMIN.secret_key,
    METRICS_TOKEN,
];

/// Panics when `text` (a server log, an error body) holds a configured
/// secret: no secret may appear in any log line or response of the suite.
pub fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} holds a configured secret ({}...)",
            &secret[..6]
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.reap();
        // Every test's server log is checked for the configured secrets.
        if !std::thread::panicking() {
            assert_no_secret("the server log", &self.log());
        }
        // Keep the data, config and log of a failed test when asked to.
        if std::env::var_os("CLOUDMUX_E2E_KEEP").is_some() && std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("kept server directory {}", self.dir.path().display());
        }
    }
}

/// Starts a small `sh` loop that SIGKILLs the server `pid` once this test
/// process is gone (a test binary killed by a timeout never runs `Drop`).
fn spawn_watchdog(pid: u32) -> Option<Child> {
    let parent = std::process::id();
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do kill -0 {pid} 2>/dev/null || exit 0; sleep 1; done; \
         kill -9 {pid} 2>/dev/null"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Every file and directory below `root` (recursive; symlinks not followed).
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// Sends SDK requests to 127.0.0.1 while keeping the virtual-hosted `Host`.
#[derive(Debug)]
struct LoopbackRedirect {
    addr: SocketAddr,
}

impl Intercept for LoopbackRedirect {
    fn name(&self) -> &'static str {
        "LoopbackRedirect"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request_mut();
        let uri: http::Uri = req.uri().parse()?;
        let authority = uri
            .authority()
            .ok_or("request uri has no authority")?
            .to_string();
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let new_uri = format!("http://{}{}", self.addr, path);
        req.headers_mut().insert("host", authority);
        req.set_uri(new_uri.as_str())?;
        Ok(())
    }
}

/// A hand-built, optionally SigV4-signed HTTP/1.1 request (see [`TestServer::raw`]).
#[derive(Debug, Clone)]
pub struct Raw {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    signer: Option<Account>,
    host: Option<String>,
    time: Option<SystemTime>,
    unsigned_payload: bool,
    payload_hash: Option<String>,
    unsigned_headers: Vec<(String, String)>,
    presigned: bool,
}

impl Raw {
    /// Starts a hand-built request to any server at `addr`, signed as alice
    /// unless changed (see [`TestServer::raw`]).
    pub fn to(addr: SocketAddr, method: &str, path_and_query: &str) -> Raw {
        Raw {
            addr,
            method: method.to_owned(),
            path: path_and_query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            signer: Some(ALICE),
            host: None,
            time: None,
            unsigned_payload: false,
            payload_hash: None,
            unsigned_headers: Vec::new(),
            presigned: false,
        }
    }

    /// Signs the request as `account` (the default is alice).
    pub fn signed_by(mut self, account: Account) -> Self {
        self.signer = Some(account);
        self
    }

    /// Sends the request without any signature.
    pub fn anonymous(mut self) -> Self {
        self.signer = None;
        self
    }

    /// Adds a header (signed along with the others).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Signs in the query string (a SigV4 presigned URL valid for 5 minutes,
    /// `UNSIGNED-PAYLOAD`) instead of the `Authorization` header.
    pub fn presigned(mut self) -> Self {
        self.presigned = true;
        self
    }

    /// Adds a header after signing, so that the signature does not cover it.
    pub fn unsigned_header(mut self, name: &str, value: &str) -> Self {
        self.unsigned_headers
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the `Host` header (default `127.0.0.1:PORT`).
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    /// Signs with this time instead of now (for clock-skew tests).
    pub fn signed_at(mut self, time: SystemTime) -> Self {
        self.time = Some(time);
        self
    }

    /// Uses `x-amz-content-sha256: UNSIGNED-PAYLOAD` instead of the body hash.
    pub fn unsigned_payload(mut self) -> Self {
        self.unsigned_payload = true;
        self
    }

    /// Declares (and signs) this `x-amz-content-sha256` instead of the body's real hash.
    pub fn payload_hash(mut self, hex_sha256: &str) -> Self {
        self.payload_hash = Some(hex_sha256.to_owned());
        self
    }

    /// Adds `Content-MD5` computed over the current body.
    pub fn with_content_md5(self) -> Self {
        let md5 = md5_b64(&self.body);
        self.header("content-md5", &md5)
    }

    /// Signs (if a signer is set) and sends the request on a fresh connection.
    pub async fn send(self) -> RawResponse {
        let host = self.host.clone().unwrap_or_else(|| self.addr.to_string());
        let mut headers = self.headers.clone();
        headers.push(("host".to_owned(), host.clone()));
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.path.as_str());
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let mut req = builder
            .body(Full::new(Bytes::from(self.body.clone())))
            .unwrap_or_else(|e| panic!("build request {} {}: {e}", self.method, self.path));
        if let Some(account) = self.signer {
            let identity = Credentials::new(
                account.access_key,
                account.secret_key,
                None,
                None,
                "cloudmux-e2e",
            )
            .into();
            let mut settings = aws_sigv4::http_request::SigningSettings::default();
            settings.payload_checksum_kind =
                aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
            settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
            settings.uri_path_normalization_mode =
                aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
            if self.presigned {
                settings.signature_location =
                    aws_sigv4::http_request::SignatureLocation::QueryParams;
                settings.expires_in = Some(Duration::from_secs(300));
                settings.payload_checksum_kind =
                    aws_sigv4::http_request::PayloadChecksumKind::NoHeader;
            }
            let params = aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region(REGION)
                .name("s3")
                .time(self.time.unwrap_or_else(SystemTime::now))
                .settings(settings)
                .build()
                .expect("signing params")
                .into();
            let uri = format!("http://{host}{}", self.path);
            let body = if let Some(hash) = &self.payload_hash {
                aws_sigv4::http_request::SignableBody::Precomputed(hash.clone())
            } else if self.unsigned_payload || self.presigned {
                aws_sigv4::http_request::SignableBody::UnsignedPayload
            } else {
                aws_sigv4::http_request::SignableBody::Bytes(&self.body)
            };
            let signable = aws_sigv4::http_request::SignableRequest::new(
                &self.method,
                uri,
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                body,
            )
            .expect("signable request");
            let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
                .expect("sign")
                .into_parts();
            instructions.apply_to_request_http1x(&mut req);
        }
        for (k, v) in &self.unsigned_headers {
            let name = http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
            let value = http::HeaderValue::from_str(v).expect("header value");
            req.headers_mut().append(name, value);
        }
        send_http1(self.addr, req).await
    }
}

/// Sends one request on a fresh HTTP/1.1 connection and collects the response.
pub async fn send_http1(addr: SocketAddr, req: http::Request<Full<Bytes>>) -> RawResponse {
    let what = format!("{} {}", req.method(), req.uri());
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http1 handshake");
    tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: reading body: {e}"))
        .to_bytes();
    if parts.status.as_u16() >= 400 {
        assert_no_secret(
            &format!("the error answer to {what}"),
            &String::from_utf8_lossy(&body),
        );
    }
    RawResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// A collected HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl RawResponse {
    /// A header's value as a string (first value), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as XML (panics with the body if it is not XML).
    pub fn xml(&self) -> Element {
        Element::parse(&self.text())
            .unwrap_or_else(|e| panic!("response body is not XML ({e}): {:?}", self.text()))
    }

    /// The `<Error><Code>` of an error body, if the body is an S3 error document.
    pub fn code(&self) -> Option<String> {
        error_code(&self.text())
    }

    /// Asserts status, the error `Code`, and the presence of `x-amz-request-id`.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_deref()),
            (status, Some(code)),
            "expected {status} {code}, got {} with body {:?}",
            self.status,
            self.text()
        );
        assert!(
            self.headers.contains_key("x-amz-request-id"),
            "error response without x-amz-request-id: {:?}",
            self.headers
        );
    }

    /// Asserts a 2xx status, printing the body otherwise.
    pub fn assert_success(&self) {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {} with body {:?}",
            self.status,
            self.text()
        );
    }
}

/// The `<Code>` of an S3 `<Error>` document.
pub fn error_code(body: &str) -> Option<String> {
    let el = Element::parse(body).ok()?;
    if el.name != "Error" {
        return None;
    }
    el.text_of("Code")
}

/// Uniform access to an SDK error's HTTP status and S3 error code.
pub trait SdkErrorExt {
    /// The HTTP status of the response (0 if there was no response).
    fn status(&self) -> u16;
    /// The S3 error code, if the response carried one.
    fn s3_code(&self) -> Option<String>;
    /// The raw response body, if any.
    fn body_text(&self) -> String;
}

impl<E: ProvideErrorMetadata> SdkErrorExt for SdkError<E, HttpResponse> {
    fn status(&self) -> u16 {
        self.raw_response()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    fn s3_code(&self) -> Option<String> {
        self.code().map(str::to_owned)
    }

    fn body_text(&self) -> String {
        self.raw_response()
            .and_then(|r| r.body().bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

/// Asserts that an SDK call failed with this HTTP status and S3 error code.
#[track_caller]
pub fn assert_sdk_err<T: std::fmt::Debug, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    status: u16,
    code: &str,
) where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(v) => panic!("expected {status} {code}, but the call succeeded: {v:?}"),
        Err(e) => {
            assert_eq!(
                (e.status(), e.s3_code().as_deref()),
                (status, Some(code)),
                "expected {status} {code}; got error {:?} (body {:?})",
                aws_sdk_s3::error::DisplayErrorContext(&e),
                e.body_text()
            );
        }
    }
}

/// Asserts that an SDK call failed with this HTTP status (HEAD errors carry no code).
#[track_caller]
pub fn assert_sdk_status<T: std::fmt::Debug, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    status: u16,
) where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(v) => panic!("expected HTTP {status}, but the call succeeded: {v:?}"),
        Err(e) => assert_eq!(
            e.status(),
            status,
            "expected HTTP {status}; got {:?}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        ),
    }
}

/// Unwraps an SDK result, printing the full error chain on failure.
#[track_caller]
pub fn ok<T, E>(result: Result<T, SdkError<E, HttpResponse>>) -> T
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(v) => v,
        Err(e) => panic!(
            "unexpected SDK error: {} (status {}, body {:?})",
            aws_sdk_s3::error::DisplayErrorContext(&e),
            e.status(),
            e.body_text()
        ),
    }
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v
}

/// A random lowercase alphanumeric string of length `n` (for unique names).
pub fn random_suffix(n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[(rng.next_u32() as usize) % CHARS.len()] as char)
        .collect()
}

/// MD5 of `data` as lowercase hex.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// MD5 of `data` as base64 (the `Content-MD5` form).
pub fn md5_b64(data: &[u8]) -> String {
    b64(&Md5::digest(data))
}

/// The quoted ETag S3 gives a single-part object with this content.
pub fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", md5_hex(data))
}

/// The quoted ETag S3 gives a multipart object with these parts:
/// md5 of the concatenated binary part md5s, then `-N`.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&Md5::digest(p));
    }
    format!("\"{}-{}\"", md5_hex(&all), parts.len())
}

/// Standard base64.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes standard base64 (panics on bad input).
pub fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// The S3 checksum algorithms, with their expected header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// CRC-32 (ISO-HDLC), 4 bytes.
    Crc32,
    /// CRC-32C (Castagnoli), 4 bytes.
    Crc32c,
    /// CRC-64/NVME, 8 bytes.
    Crc64Nvme,
    /// SHA-1, 20 bytes.
    Sha1,
    /// SHA-256, 32 bytes.
    Sha256,
}

impl Checksum {
    /// All five algorithms.
    pub const ALL: [Checksum; 5] = [
        Checksum::Crc32,
        Checksum::Crc32c,
        Checksum::Crc64Nvme,
        Checksum::Sha1,
        Checksum::Sha256,
    ];

    /// The raw (binary, big-endian) checksum of `data`.
    pub fn raw(self, data: &[u8]) -> Vec<u8> {
        use crc_fast::CrcAlgorithm;
        match self {
            Checksum::Crc32 => (crc_fast::checksum(CrcAlgorithm::Crc32IsoHdlc, data) as u32)
                .to_be_bytes()
                .to_vec(),
            Checksum::Crc32c => (crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, data) as u32)
                .to_be_bytes()
                .to_vec(),
            Checksum::Crc64Nvme => crc_fast::checksum(CrcAlgorithm::Crc64Nvme, data)
                .to_be_bytes()
                .to_vec(),
            Checksum::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Checksum::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    /// The base64 checksum of `data`, as in `x-amz-checksum-*`.
    pub fn b64(self, data: &[u8]) -> String {
        b64(&self.raw(data))
    }

    /// The composite multipart checksum: checksum of the concatenated raw
    /// part checksums, base64, then `-N`.
    pub fn composite(self, parts: &[&[u8]]) -> String {
        let mut all = Vec::new();
        for p in parts {
            all.extend_from_slice(&self.raw(p));
        }
        format!("{}-{}", self.b64(&all), parts.len())
    }

    /// The header name, e.g. `x-amz-checksum-crc32`.
    pub fn header(self) -> &'static str {
        match self {
            Checksum::Crc32 => "x-amz-checksum-crc32",
            Checksum::Crc32c => "x-amz-checksum-crc32c",
            Checksum::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Checksum::Sha1 => "x-amz-checksum-sha1",
            Checksum::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The SDK enum value.
    pub fn sdk(self) -> aws_sdk_s3::types::ChecksumAlgorithm {
        use aws_sdk_s3::types::ChecksumAlgorithm as A;
        match self {
            Checksum::Crc32 => A::Crc32,
            Checksum::Crc32c => A::Crc32C,
            Checksum::Crc64Nvme => A::Crc64Nvme,
            Checksum::Sha1 => A::Sha1,
            Checksum::Sha256 => A::Sha256,
        }
    }
}

/// Percent-encodes an object key for a request path (keeps `/`, like the SDK).
pub fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// Percent-encodes a query-string value (everything but unreserved characters).
pub fn encode_query(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}

/// Decodes a value returned with `encoding-type=url` the way botocore does
/// (`unquote_plus`: `+` is a space, `%XX` are UTF-8 bytes).
pub fn url_decode_plus(s: &str) -> String {
    let replaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&replaced)
        .decode_utf8()
        .unwrap_or_else(|e| panic!("not UTF-8 after decoding {s:?}: {e}"))
        .into_owned()
}

/// Escapes text for inclusion in an XML document.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Creates a bucket as the client's account, panicking on failure.
pub async fn create_bucket(client: &Client, bucket: &str) {
    ok(client.create_bucket().bucket(bucket).send().await);
}

/// Creates a bucket in the named location (its LocationConstraint),
/// panicking on failure.
pub async fn create_bucket_on(client: &Client, bucket: &str, location: &str) {
    ok(client
        .create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(location))
                .build(),
        )
        .send()
        .await);
}

/// Puts an object, panicking on failure; returns the ETag.
pub async fn put_object(client: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = ok(client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await);
    out.e_tag().unwrap_or_default().to_owned()
}

/// Gets a whole object's bytes, panicking on failure.
pub async fn get_object(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = ok(client.get_object().bucket(bucket).key(key).send().await);
    out.body
        .collect()
        .await
        .expect("read object body")
        .into_bytes()
        .to_vec()
}

/// All keys of a bucket (ListObjectsV2, following continuation tokens).
pub async fn list_keys(client: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await);
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    keys
}

/// The canonical user id of `account`, as reported by ListBuckets' `Owner`.
pub async fn owner_id(server: &TestServer, account: Account) -> String {
    let out = ok(server.client(account).list_buckets().send().await);
    out.owner()
        .and_then(|o| o.id())
        .unwrap_or_else(|| panic!("ListBuckets for {} has no Owner/ID", account.name))
        .to_owned()
}

/// Formats a time as an HTTP date (`If-Modified-Since` etc.).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Parses an HTTP date header value.
pub fn parse_http_date(s: &str) -> SystemTime {
    httpdate::parse_http_date(s).unwrap_or_else(|e| panic!("bad HTTP date {s:?}: {e}"))
}

/// Grants as a set of (grantee, permission), grantee = `id:<canonical id>` or
/// `uri:<group>`, for comparing ACLs without caring about order.
pub fn grant_summary(grants: &[aws_sdk_s3::types::Grant]) -> BTreeSet<(String, String)> {
    use aws_sdk_s3::types::Type;
    grants
        .iter()
        .map(|g| {
            let grantee = g.grantee().expect("Grantee");
            let who = match grantee.r#type() {
                Type::CanonicalUser => format!("id:{}", grantee.id().expect("ID")),
                Type::Group => format!("uri:{}", grantee.uri().expect("URI")),
                other => format!("other:{other:?}"),
            };
            (who, g.permission().expect("Permission").as_str().to_owned())
        })
        .collect()
}

/// Starts a watchdog that SIGKILLs process `pid` once this test process is
/// gone: for a child kept in a `static` (an emulator shared by the tests of
/// a binary), whose `Drop` never runs. Keep the returned child alive.
pub fn kill_when_test_exits(pid: u32) -> Option<Child> {
    spawn_watchdog(pid)
}
