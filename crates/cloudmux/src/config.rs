//! Configuration: one TOML file, overridden by environment variables, validated
//! at startup with errors that name the field.
//!
//! Environment overrides: a variable `CLOUDMUX__A__B=value` sets the key `b` of
//! table `a` (any depth; names are lower-cased, so
//! `CLOUDMUX__LOCATIONS__LOCAL__PATH=/data` sets `[locations.local] path`). The
//! value is read as a TOML value when it parses as one (`true`, `8000`,
//! `["a","b"]`), else as a string. Secrets come from the file, from
//! `*_file` (a file holding the secret) or from `*_env` (a variable holding it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cloudmux_data::secret::SecretSource;
use serde::Deserialize;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "CLOUDMUX__";

/// The whole configuration file. Its `Debug` output names the locations
/// without their raw settings, which may hold secrets.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The listening server.
    #[serde(default)]
    pub server: ServerConfig,
    /// The metadata store.
    #[serde(default)]
    pub metadata: MetadataConfig,
    /// Accounts; each has its own keys and its own buckets.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Named locations (`[locations.NAME]`); see [`LocationConfig`].
    #[serde(default)]
    pub locations: BTreeMap<String, toml::Table>,
    /// Garbage collection of staged leftovers and orphan part records.
    #[serde(default)]
    pub gc: GcConfig,
    /// Resource limits: connections, timeouts, body memory, requests per
    /// account.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// What `/metrics` exposes.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `[metrics]`: what `/metrics` exposes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Per-bucket series (`cloudmux_bucket_objects`, `cloudmux_bucket_bytes`,
    /// labelled with the bucket's name). Default true; false keeps bucket
    /// names out of every scrape and the series count flat with many
    /// buckets.
    #[serde(default = "default_true")]
    pub per_bucket: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { per_bucket: true }
    }
}

fn default_true() -> bool {
    true
}

/// `[limits]`: what one client, or many, may hold of the server. Over a
/// limit, requests get `503 SlowDown` (body memory, requests per account) or
/// `400 RequestTimeout` (a stalled body), and connections are closed (idle
/// ones, to make room or after `idle_timeout_secs`). Every value must be at
/// least 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open client connections at most (default 4096). At the limit a new
    /// connection closes the one that has been idle the longest; while every
    /// connection is busy, new ones wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a keep-alive connection may wait for its next request before
    /// it is closed (default 60). Once a request's first byte has arrived,
    /// its header section must be complete within 30 s.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Seconds a request body may send nothing (default 30): the request is
    /// then answered `400 RequestTimeout` and its connection closed. A
    /// response the client takes nothing of for as long is cut too.
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// Bytes that the bodies of requests in flight may hold in memory
    /// (default 268435456, 256 MiB). Each request with a body is charged its
    /// `Content-Length`, at most 512 KiB (the most the front end buffers of
    /// one body), from authentication until its response is sent; one that
    /// cannot be charged within 1 s gets `503 SlowDown`.
    #[serde(default = "default_max_inflight_body_bytes")]
    pub max_inflight_body_bytes: u64,
    /// Requests one authenticated account may have in flight, from
    /// authentication until the response is sent (default 1024); more get
    /// `503 SlowDown` at once. Anonymous requests are not counted.
    #[serde(default = "default_max_requests_per_account")]
    pub max_requests_per_account: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            idle_timeout_secs: default_idle_timeout_secs(),
            body_timeout_secs: default_body_timeout_secs(),
            max_inflight_body_bytes: default_max_inflight_body_bytes(),
            max_requests_per_account: default_max_requests_per_account(),
        }
    }
}

fn default_max_connections() -> usize {
    4096
}

fn default_idle_timeout_secs() -> u64 {
    60
}

fn default_body_timeout_secs() -> u64 {
    30
}

fn default_max_inflight_body_bytes() -> u64 {
    256 * 1024 * 1024
}

fn default_max_requests_per_account() -> usize {
    1024
}

impl LimitsConfig {
    /// Checks that every limit is at least 1, naming the field otherwise.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fields = [
            ("max_connections", self.max_connections as u64),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("max_inflight_body_bytes", self.max_inflight_body_bytes),
            (
                "max_requests_per_account",
                self.max_requests_per_account as u64,
            ),
        ];
        match fields.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(err(format!("limits.{name}: must be at least 1"))),
            None => Ok(()),
        }
    }

    /// The limits as the front end takes them.
    pub fn front(&self) -> cloudmux_s3::limits::Limits {
        cloudmux_s3::limits::Limits {
            max_connections: self.max_connections,
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            body_timeout: std::time::Duration::from_secs(self.body_timeout_secs),
            max_inflight_body_bytes: self.max_inflight_body_bytes,
            max_requests_per_account: self.max_requests_per_account,
        }
    }
}

/// `[gc]`: the sweep that removes what no record names (staged bodies left by
/// a crash or a cancelled request, cloud temp objects, unfinished native
/// multipart uploads of staged data, part records whose upload is gone). It
/// runs at startup, after crash recovery, and then every `interval_secs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// Seconds between sweeps (default 3600; 0 sweeps at startup only).
    #[serde(default = "default_gc_interval")]
    pub interval_secs: u64,
    /// An unreferenced staged entry is removed only once it has not been
    /// written for this many seconds (default 3600): a write between its
    /// staging and its commit holds no record yet.
    #[serde(default = "default_gc_min_age")]
    pub min_age_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            interval_secs: default_gc_interval(),
            min_age_secs: default_gc_min_age(),
        }
    }
}

fn default_gc_interval() -> u64 {
    3600
}

fn default_gc_min_age() -> u64 {
    3600
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("metadata", &self.metadata)
            .field("accounts", &self.accounts)
            .field("locations", &self.locations.keys().collect::<Vec<_>>())
            .field("gc", &self.gc)
            .field("limits", &self.limits)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// `[server]`. Its `Debug` output leaves the metrics token out.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on (`127.0.0.1:8000`; port 0 picks a free one).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The region this endpoint answers for; clients must sign for it.
    #[serde(default = "default_region")]
    pub region: String,
    /// Domains for virtual-hosted-style requests: `bucket.<domain>`.
    #[serde(default)]
    pub domains: Vec<String>,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Bearer token that lets a scraper read `/metrics`
    /// (`Authorization: Bearer <token>`), inline. Without a token, only
    /// SigV4-signed requests of an `admin = true` account may read it.
    pub metrics_token: Option<String>,
    /// A file holding the metrics bearer token.
    pub metrics_token_file: Option<PathBuf>,
    /// An environment variable holding the metrics bearer token.
    pub metrics_token_env: Option<String>,
    /// How long a shutdown (SIGTERM or Ctrl-C) lets requests in flight
    /// finish, in seconds (default 30). New connections are refused and idle
    /// keep-alive connections closed at once; connections still busy at the
    /// deadline are dropped. Keep it below the orchestrator's grace period
    /// (Kubernetes `terminationGracePeriodSeconds`, Compose `stop_grace_period`).
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Proxies (CIDRs such as `10.0.0.0/8`, or single addresses) whose
    /// `X-Forwarded-For` and `Forwarded` headers name the client, for the
    /// `aws:SourceIp` policy condition and the request log. From any other
    /// address the headers are ignored and the TCP peer is the client.
    /// Default: none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// A second address (`127.0.0.1:9000`) serving only the health routes,
    /// `/metrics` and the admin routes under `/_/`, with the same access
    /// rules and TLS settings as the S3 listener. Default: none.
    pub admin_listen: Option<String>,
    /// Whether `/metrics` and the admin routes stay on the S3 listener too
    /// (default true). With false (and `admin_listen` set) the S3 port
    /// serves only S3 and the health routes, and `/metrics` is an ordinary
    /// bucket name there.
    #[serde(default = "default_true")]
    pub admin_on_s3_port: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            region: default_region(),
            domains: Vec::new(),
            tls_cert: None,
            tls_key: None,
            metrics_token: None,
            metrics_token_file: None,
            metrics_token_env: None,
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            trusted_proxies: Vec::new(),
            admin_listen: None,
            admin_on_s3_port: true,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("region", &self.region)
            .field("domains", &self.domains)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("metrics_token_file", &self.metrics_token_file)
            .field("metrics_token_env", &self.metrics_token_env)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("admin_listen", &self.admin_listen)
            .field("admin_on_s3_port", &self.admin_on_s3_port)
            .finish()
    }
}

impl ServerConfig {
    /// The metrics bearer token from `metrics_token`, `metrics_token_file` or
    /// `metrics_token_env`, if one is configured.
    pub fn metrics_token(&self) -> Result<Option<String>, ConfigError> {
        resolve_secret(
            "server.metrics_token",
            self.metrics_token.as_deref(),
            self.metrics_token_file.as_deref(),
            self.metrics_token_env.as_deref(),
        )
    }
}

/// Resolves a secret through the one [`SecretSource`]; `field` is `NAME`
/// with its table, for errors.
fn resolve_secret(
    field: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    SecretSource {
        field,
        inline,
        file,
        env,
    }
    .resolve()
    .map_err(err)
}

fn default_listen() -> String {
    "127.0.0.1:8000".into()
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_shutdown_timeout_secs() -> u64 {
    30
}

/// `[metadata]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    /// Engine: `sled` (embedded, the default).
    #[serde(default = "default_engine")]
    pub engine: String,
    /// Directory of the embedded engine's files.
    #[serde(default = "default_meta_path")]
    pub path: PathBuf,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            engine: default_engine(),
            path: default_meta_path(),
        }
    }
}

fn default_engine() -> String {
    "sled".into()
}

fn default_meta_path() -> PathBuf {
    "./data/meta".into()
}

/// `[[accounts]]`. Its `Debug` output leaves the secret key out.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Account name; shown as the owner's DisplayName.
    pub name: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key, inline.
    pub secret_key: Option<String>,
    /// A file holding the secret access key.
    pub secret_key_file: Option<PathBuf>,
    /// An environment variable holding the secret access key.
    pub secret_key_env: Option<String>,
    /// Optional e-mail address, for grants by e-mail.
    pub email: Option<String>,
    /// `true`: the account may read `/metrics` and use the admin routes
    /// under `/_/` (default `false`).
    #[serde(default)]
    pub admin: bool,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("secret_key_file", &self.secret_key_file)
            .field("secret_key_env", &self.secret_key_env)
            .field("email", &self.email)
            .field("admin", &self.admin)
            .finish()
    }
}

/// A location as configured: its type, whether it is the default, and the
/// type's own settings (each type's config struct rejects unknown fields).
#[derive(Debug, Clone)]
pub struct LocationConfig {
    /// The location's name.
    pub name: String,
    /// `default = true`: buckets without a LocationConstraint live here.
    pub default: bool,
    /// Type-specific settings.
    pub kind: LocationKind,
}

/// The location types.
#[derive(Debug, Clone)]
pub enum LocationKind {
    /// `type = "fs"`: the local filesystem.
    Fs(cloudmux_data::fs::FsConfig),
    /// `type = "s3"`: a bucket of AWS S3 or of an S3-compatible service.
    S3(cloudmux_data::s3::S3Config),
    /// `type = "azure"`: Azure Blob Storage.
    Azure(cloudmux_data::azure::AzureConfig),
    /// `type = "gcs"`: Google Cloud Storage.
    Gcs(cloudmux_data::gcs::GcsConfig),
}

/// The location types this build knows, for error messages.
const LOCATION_TYPES: &str = "\"fs\", \"s3\", \"azure\", \"gcs\"";

/// A configuration error naming the offending field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// Applies `CLOUDMUX__*` overrides from `vars` to a parsed TOML document.
pub fn apply_env(doc: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) {
    for (name, value) in vars {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value));
        let mut table = &mut *doc;
        for k in &keys[..keys.len() - 1] {
            let entry = table
                .entry(k.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            table = entry.as_table_mut().expect("just made a table");
        }
        table.insert(keys[keys.len() - 1].clone(), parsed);
    }
}

impl Config {
    /// Loads a file (or an empty document) and applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => {
                std::fs::read_to_string(p).map_err(|e| err(format!("{}: {e}", p.display())))?
            }
            None => String::new(),
        };
        Self::parse(&text, std::env::vars())
    }

    /// Parses a document and applies overrides from `vars`.
    pub fn parse(
        text: &str,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut doc: toml::Table = text.parse().map_err(|e| err(format!("config: {e}")))?;
        apply_env(&mut doc, vars);
        let cfg: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| err(format!("config: {e}")))?;
        if cfg.metadata.engine != "sled" {
            return Err(err(format!(
                "metadata.engine: unknown engine {:?} (supported: \"sled\")",
                cfg.metadata.engine
            )));
        }
        if cfg.server.tls_cert.is_some() != cfg.server.tls_key.is_some() {
            return Err(err("server: tls_cert and tls_key must be given together"));
        }
        cfg.server.metrics_token()?;
        cloudmux_s3::client_ip::parse_trusted(&cfg.server.trusted_proxies)
            .map_err(|e| err(format!("server.trusted_proxies: {e}")))?;
        cfg.limits.validate()?;
        Ok(cfg)
    }

    /// The locations, validated: known types, known fields, exactly one
    /// default (a single location is the default).
    pub fn locations(&self) -> Result<Vec<LocationConfig>, ConfigError> {
        let mut out = Vec::new();
        for (name, table) in &self.locations {
            let mut t = table.clone();
            let field = |f: &str| format!("locations.{name}.{f}");
            let default = match t.remove("default") {
                None => false,
                Some(toml::Value::Boolean(b)) => b,
                Some(_) => return Err(err(format!("{}: must be true or false", field("default")))),
            };
            let ty = match t.remove("type") {
                Some(toml::Value::String(s)) => s,
                Some(_) => return Err(err(format!("{}: must be a string", field("type")))),
                None => {
                    return Err(err(format!(
                        "{}: missing (one of: {LOCATION_TYPES})",
                        field("type")
                    )))
                }
            };
            let settings = toml::Value::Table(t);
            let bad = |e: toml::de::Error| err(format!("locations.{name}: {e}"));
            let kind = match ty.as_str() {
                "fs" => LocationKind::Fs(settings.try_into().map_err(bad)?),
                "s3" => {
                    let c: cloudmux_data::s3::S3Config = settings.try_into().map_err(bad)?;
                    if let Err(e) = c.secret() {
                        return Err(err(format!("locations.{name}.{e}")));
                    }
                    LocationKind::S3(c)
                }
                "azure" => LocationKind::Azure(settings.try_into().map_err(bad)?),
                "gcs" => LocationKind::Gcs(settings.try_into().map_err(bad)?),
                other => {
                    return Err(err(format!(
                        "{}: unknown location type {other:?} (supported: {LOCATION_TYPES})",
                        field("type")
                    )))
                }
            };
            out.push(LocationConfig {
                name: name.clone(),
                default,
                kind,
            });
        }
        if out.is_empty() {
            return Err(err("locations: at least one [locations.NAME] is required"));
        }
        if out.len() == 1 {
            out[0].default = true;
        }
        match out.iter().filter(|l| l.default).count() {
            1 => Ok(out),
            0 => Err(err("locations: one location must have default = true")),
            _ => Err(err("locations: only one location may have default = true")),
        }
    }

    /// The accounts with their secrets resolved.
    pub fn accounts(&self) -> Result<Vec<cloudmux_core::Account>, ConfigError> {
        if self.accounts.is_empty() {
            return Err(err("accounts: at least one [[accounts]] entry is required"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (i, a) in self.accounts.iter().enumerate() {
            let field = |f: &str| format!("accounts[{i}] ({}).{f}", a.name);
            if a.name.is_empty() {
                return Err(err(format!("accounts[{i}].name: must not be empty")));
            }
            if a.access_key.is_empty() {
                return Err(err(field("access_key") + ": must not be empty"));
            }
            if !seen.insert(a.access_key.clone()) {
                return Err(err(field("access_key") + ": used by another account"));
            }
            let secret = SecretSource {
                field: &field("secret_key"),
                inline: a.secret_key.as_deref(),
                file: a.secret_key_file.as_deref(),
                env: a.secret_key_env.as_deref(),
            }
            .require()
            .map_err(err)?;
            let mut acc = cloudmux_core::Account::new(&a.name, &a.access_key, &secret);
            acc.email = a.email.clone();
            acc.admin = a.admin;
            out.push(acc);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../config/cloudmux.toml");

    #[test]
    fn azure_gcs_example_loads() {
        let text = include_str!("../../../config/azure-gcs.toml");
        let vars = [("CLOUDMUX_ADMIN_SECRET".to_owned(), "s".to_owned())];
        let c = Config::parse(text, vars.into_iter()).unwrap();
        let locs = c.locations().unwrap();
        assert_eq!(locs.len(), 3);
        let az = locs.iter().find(|l| l.name == "azure-main").unwrap();
        let LocationKind::Azure(a) = &az.kind else {
            panic!("azure-main is not azure")
        };
        assert_eq!(a.container, "cloudmux");
        assert!(!a.cloud.bucket_match);
        let gcs = locs.iter().find(|l| l.name == "gcs-main").unwrap();
        let LocationKind::Gcs(g) = &gcs.kind else {
            panic!("gcs-main is not gcs")
        };
        assert_eq!(g.endpoint.as_deref(), Some("http://127.0.0.1:4443"));
        let bad = "[locations.a]\ntype = \"gcs\"\nbucket = \"b\"\ncolour = 1\n";
        let c = Config::parse(bad, std::iter::empty()).unwrap();
        assert!(c.locations().unwrap_err().0.contains("locations.a"));
    }

    #[test]
    fn sample_config_loads() {
        let c = Config::parse(SAMPLE, std::iter::empty()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8000");
        assert_eq!(c.locations().unwrap().len(), 1);
        assert_eq!(c.accounts().unwrap()[0].name, "admin");
    }

    #[test]
    fn container_config_loads_with_its_secret_from_the_environment() {
        let text = include_str!("../../../config/container.toml");
        let c = Config::parse(text, std::iter::empty()).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8000");
        assert_eq!(c.metadata.path, PathBuf::from("/data/meta"));
        let LocationKind::Fs(fs) = &c.locations().unwrap()[0].kind else {
            panic!("not fs")
        };
        assert_eq!(fs.path, PathBuf::from("/data/objects"));
        assert_eq!(
            c.accounts[0].secret_key_env.as_deref(),
            Some("CLOUDMUX_ADMIN_SECRET")
        );
        assert!(c.accounts[0].secret_key.is_none());
    }

    #[test]
    fn env_overrides_nested_keys() {
        let vars = vec![
            (
                "CLOUDMUX__SERVER__LISTEN".to_owned(),
                "0.0.0.0:9000".to_owned(),
            ),
            (
                "CLOUDMUX__SERVER__DOMAINS".to_owned(),
                "[\"s3.test\"]".to_owned(),
            ),
            (
                "CLOUDMUX__LOCATIONS__LOCAL__PATH".to_owned(),
                "/srv/objects".to_owned(),
            ),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        let c = Config::parse(SAMPLE, vars.into_iter()).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.server.domains, vec!["s3.test"]);
        let LocationKind::Fs(fs) = &c.locations().unwrap()[0].kind else {
            panic!("not fs")
        };
        assert_eq!(fs.path, PathBuf::from("/srv/objects"));
    }

    #[test]
    fn limits_have_defaults_and_overrides_and_refuse_zero() {
        let c = Config::parse("", std::iter::empty()).unwrap();
        let d = c.limits.front();
        assert_eq!(d.max_connections, 4096);
        assert_eq!(d.idle_timeout, std::time::Duration::from_secs(60));
        assert_eq!(d.body_timeout, std::time::Duration::from_secs(30));
        assert_eq!(d.max_inflight_body_bytes, 256 * 1024 * 1024);
        assert_eq!(d.max_requests_per_account, 1024);
        let sample = Config::parse(SAMPLE, std::iter::empty()).unwrap().limits;
        assert_eq!(
            format!("{sample:?}"),
            format!("{:?}", c.limits),
            "the sample documents the defaults"
        );
        let c = Config::parse(
            "[limits]\nmax_connections = 50\nbody_timeout_secs = 2\n",
            [(
                "CLOUDMUX__LIMITS__MAX_REQUESTS_PER_ACCOUNT".to_owned(),
                "3".to_owned(),
            )]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.limits.max_connections, 50);
        assert_eq!(c.limits.body_timeout_secs, 2);
        assert_eq!(c.limits.max_requests_per_account, 3);
        assert_eq!(c.limits.idle_timeout_secs, 60);
        let e = Config::parse("[limits]\nidle_timeout_secs = 0\n", std::iter::empty()).unwrap_err();
        assert!(e.0.contains("limits.idle_timeout_secs"), "{e}");
        let e = Config::parse("[limits]\nmax_conections = 5\n", std::iter::empty()).unwrap_err();
        assert!(e.0.contains("max_conections"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            Config::parse("[server]\nlisten = \"x\"\nbogus = 1\n", std::iter::empty()).unwrap_err();
        assert!(e.0.contains("bogus"), "{e}");
        let c = Config::parse(
            "[locations.a]\ntype = \"fs\"\npath = \"/x\"\ncolour = 1\n",
            std::iter::empty(),
        )
        .unwrap();
        let e = c.locations().unwrap_err();
        assert!(e.0.contains("locations.a") && e.0.contains("colour"), "{e}");
        let c = Config::parse("[locations.a]\ntype = \"nfs\"\n", std::iter::empty()).unwrap();
        assert!(c.locations().unwrap_err().0.contains("locations.a.type"));
        let c = Config::parse(
            "[[accounts]]\nname = \"a\"\naccess_key = \"k\"\nsecret_key = \"s\"\nsecret_key_env = \"E\"\n",
            std::iter::empty(),
        )
        .unwrap();
        assert!(c.accounts().unwrap_err().0.contains("exactly one"));
    }

    #[test]
    fn metrics_token_from_each_source_and_admin_flag() {
        let c = Config::parse(
            "[server]\nmetrics_token = \"tok-inline\"\n",
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(
            c.server.metrics_token().unwrap().as_deref(),
            Some("tok-inline")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "tok-file\n").unwrap();
        let text = format!(
            "[server]\nmetrics_token_file = {:?}\n",
            file.display().to_string()
        );
        let c = Config::parse(&text, std::iter::empty()).unwrap();
        assert_eq!(
            c.server.metrics_token().unwrap().as_deref(),
            Some("tok-file")
        );
        let e = Config::parse(
            "[server]\nmetrics_token = \"a\"\nmetrics_token_env = \"B\"\n",
            std::iter::empty(),
        )
        .unwrap_err();
        assert!(
            e.0.contains("server.metrics_token") && e.0.contains("exactly one"),
            "{e}"
        );
        let e = Config::parse(
            "[server]\nmetrics_token_env = \"CLOUDMUX_TEST_SURELY_UNSET_VAR\"\n",
            std::iter::empty(),
        )
        .unwrap_err();
        assert!(e.0.contains("metrics_token_env"), "{e}");
        let c = Config::parse(SAMPLE, std::iter::empty()).unwrap();
        assert!(c.server.metrics_token().unwrap().is_none());
        let c = Config::parse(
            "[[accounts]]\nname = \"root\"\naccess_key = \"k\"\nsecret_key = \"s\"\nadmin = true\n\
             [[accounts]]\nname = \"u\"\naccess_key = \"k2\"\nsecret_key = \"s2\"\n",
            std::iter::empty(),
        )
        .unwrap();
        let accounts = c.accounts().unwrap();
        assert!(accounts[0].admin && !accounts[1].admin);
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let text = "[server]\nmetrics_token = \"tok-9f8e7d6c\"\n\
            [[accounts]]\nname = \"a\"\naccess_key = \"k\"\nsecret_key = \"acct-secret-1a2b3c\"\n\
            [locations.az]\ntype = \"azure\"\naccount = \"acc\"\naccount_key = \"azkey-5e6f7a\"\ncontainer = \"c\"\n\
            [locations.az2]\ntype = \"azure\"\naccount = \"acc\"\nsas_token = \"sas-8b9c0d\"\ncontainer = \"c\"\n\
            [locations.aws]\ntype = \"s3\"\nbucket = \"b\"\naccess_key = \"AK\"\nsecret_key = \"s3-secret-1f2e\"\ndefault = true\n";
        let c = Config::parse(text, std::iter::empty()).unwrap();
        let mut out = format!("{c:?}\n{:?}\n", c.accounts().unwrap());
        for l in c.locations().unwrap() {
            out.push_str(&format!("{l:?}\n"));
        }
        for secret in [
            "tok-9f8e7d6c",
            "acct-secret-1a2b3c",
            "azkey-5e6f7a",
            "sas-8b9c0d",
            "s3-secret-1f2e",
        ] {
            assert!(!out.contains(secret), "{secret} in Debug output: {out}");
        }
    }

    #[test]
    fn multicloud_example_loads_its_s3_location() {
        let text = include_str!("../../../config/multicloud.toml");
        let vars = vec![(
            "CLOUDMUX_AWS_SECRET".to_owned(),
            "aws-secret-from-env".to_owned(),
        )];
        let c = Config::parse(text, vars.into_iter()).unwrap();
        let t = c.locations.get("aws-east").expect("aws-east");
        let s3: cloudmux_data::s3::S3Config = toml::Value::Table(t.clone())
            .try_into::<toml::Table>()
            .map(|mut t| {
                t.remove("type");
                t.remove("default");
                t
            })
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(s3.bucket, "target-bucket");
        assert!(s3.path_style);
        assert!(!s3.cloud.bucket_match);
        for (name, ty) in [("azure-main", "azure"), ("gcs-main", "gcs")] {
            let t = &c.locations[name];
            assert_eq!(t["type"].as_str(), Some(ty));
        }
    }

    #[test]
    fn s3_locations_are_validated() {
        let base = "[locations.a]\ntype = \"s3\"\nbucket = \"tb\"\naccess_key = \"k\"\n";
        let c = Config::parse(&format!("{base}secret_key = \"s\"\n"), std::iter::empty()).unwrap();
        let l = c.locations().unwrap();
        let LocationKind::S3(s3) = &l[0].kind else {
            panic!("not s3")
        };
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.cloud.max_retries, 3);
        let c = Config::parse(base, std::iter::empty()).unwrap();
        let e = c.locations().unwrap_err();
        assert!(e.0.contains("locations.a.secret_key"), "{e}");
        let c = Config::parse(
            &format!("{base}secret_key = \"s\"\npathstyle = true\n"),
            std::iter::empty(),
        )
        .unwrap();
        assert!(c.locations().unwrap_err().0.contains("pathstyle"));
        let c = Config::parse("[locations.a]\ntype = \"azure\"\n", std::iter::empty()).unwrap();
        let e = c.locations().unwrap_err();
        assert!(
            e.0.contains("locations.a") && e.0.contains("account"),
            "{e}"
        );
        let c = Config::parse("[locations.a]\ntype = \"blob\"\n", std::iter::empty()).unwrap();
        let e = c.locations().unwrap_err();
        assert!(e.0.contains("\"fs\", \"s3\", \"azure\", \"gcs\""), "{e}");
    }
}
