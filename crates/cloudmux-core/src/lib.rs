//! The cloudmux gateway core: S3 semantics without HTTP.
//!
//! This crate owns what buckets and objects *mean*: naming rules, accounts,
//! ACLs and bucket policies (one authorization decision, `authz`),
//! conditional reads, ranges, copies, listings, multipart uploads,
//! checksums, and which location holds which data. It drives a
//! [`cloudmux_meta::MetaStore`] for metadata and [`cloudmux_data::Backend`]s for
//! bytes. It does not know HTTP, XML or signatures: the S3 front end turns
//! requests into the typed inputs of [`Gateway`]'s methods and maps
//! [`CoreError`] to S3 error codes.
//!
//! Invariants:
//! - Object data is made durable (staged) before any metadata names it, and the
//!   metadata commit is the moment a write becomes visible and acknowledged.
//! - Publishing data and committing metadata for one key happen under that key's
//!   lock, so concurrent writers to a key leave exactly one whole object.
//! - Every object write goes through one commit protocol (`commit.rs`): all
//!   its preconditions are checked under the key's lock before anything
//!   visible changes, and once its bytes are published it only rolls forward,
//!   on a task that a dropped request cannot cancel. A committed record always
//!   names bytes that match it.
//! - Every stored value is a versioned record from [`records`].
//! - A version under an Object Lock retention or legal hold ([`lock`]) is
//!   never removed or replaced: writes to an Object Lock bucket always add a
//!   version, and only a delete by version id removes one, after
//!   `Gateway::check_lock`.

/// Runs a failpoint of [`faults`] (with the `failpoints` feature): an armed
/// point returns its injected error from the enclosing function, panics or
/// exits. Without the feature it expands to nothing.
#[cfg(feature = "failpoints")]
#[macro_export]
macro_rules! fault {
    ($name:literal) => {
        $crate::faults::hit($name).await?
    };
}

/// Runs a failpoint of `faults` (with the `failpoints` feature); without the
/// feature it expands to nothing.
#[cfg(not(feature = "failpoints"))]
#[macro_export]
macro_rules! fault {
    ($name:literal) => {};
}

pub mod account;
pub mod acl;
mod authz;
mod bucket;
pub mod bucket_config;
pub mod checksum;
mod commit;
mod context;
mod delete;
pub mod digest;
pub mod encryption;
mod error;
#[cfg(feature = "failpoints")]
pub mod faults;
mod garbage;
mod gc;
mod list;
pub mod lock;
mod locks;
pub mod metrics;
mod moves;
mod multipart;
pub mod names;
mod object;
mod ownership;
pub mod policy;
pub mod records;
mod recover;
pub mod tagging;
pub mod versions;

use std::collections::HashMap;
use std::sync::Arc;

use cloudmux_data::Backend;
use cloudmux_meta::MetaStore;

pub use account::{Account, Accounts, Principal};
pub use bucket::{BucketInfo, BucketLocation, CreateBucketInput};
pub use context::RequestContext;
pub use delete::{DeleteInput, DeleteOutcome, DeleteOutput};
pub use encryption::ServerSideEncryption;
pub use error::{CoreError, Result};
pub use gc::GcReport;
pub use list::{
    ListObjectsInput, ListObjectsOutput, ListUploadsInput, ListUploadsOutput, ListVersionsInput,
    ListVersionsOutput, ListedVersion,
};
pub use metrics::Metrics;
pub use multipart::{
    CompletePart, CompleteUploadInput, CreateUploadInput, ListPartsInput, ListPartsOutput,
    PartInfo, UploadInfo, UploadPartCopyInput, UploadPartInput, UploadPartOutput,
};
pub use object::{
    CopyObjectInput, GetObjectInput, GetObjectOutput, PutObjectInput, PutObjectOutput, RangeSpec,
    ReadConditions, WriteConditions,
};

/// The named locations and which one is the default.
pub struct Locations {
    backends: HashMap<String, Arc<dyn Backend>>,
    default: String,
}

impl Locations {
    /// Builds the set; `default` must name one of `backends`.
    pub fn new(backends: HashMap<String, Arc<dyn Backend>>, default: String) -> Result<Self> {
        if !backends.contains_key(&default) {
            return Err(CoreError::InvalidLocationConstraint(default));
        }
        Ok(Self { backends, default })
    }
    /// The default location's name.
    pub fn default_name(&self) -> &str {
        &self.default
    }
    /// The longest [`Backend::publish_grace`] of every location: how long
    /// after a start a write the previous process sent may still land.
    pub fn max_publish_grace(&self) -> std::time::Duration {
        self.backends
            .values()
            .map(|b| b.publish_grace())
            .max()
            .unwrap_or_default()
    }
    /// Whether a location of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.backends.contains_key(name)
    }
    /// The backend of a location.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn Backend>> {
        self.backends
            .get(name)
            .ok_or_else(|| CoreError::Internal(format!("location {name} is not configured")))
    }
    /// Wraps every backend so that its calls are timed and counted in
    /// `metrics` under the location's name.
    fn instrumented(self, metrics: &Arc<Metrics>) -> Self {
        let backends = self
            .backends
            .into_iter()
            .map(|(name, b)| {
                let wrapped: Arc<dyn Backend> =
                    Arc::new(metrics::InstrumentedBackend::new(b, &name, metrics.clone()));
                (name, wrapped)
            })
            .collect();
        Self {
            backends,
            default: self.default,
        }
    }
}

/// Static settings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The region this endpoint answers for.
    pub region: String,
}

/// The gateway: every S3 operation, as typed methods.
pub struct Gateway {
    meta: Arc<dyn MetaStore>,
    accounts: Accounts,
    locations: Arc<Locations>,
    locks: locks::KeyLocks,
    config: GatewayConfig,
    metrics: Arc<Metrics>,
    clock: versions::VersionClock,
}

impl Gateway {
    /// Assembles a gateway.
    pub fn new(
        config: GatewayConfig,
        meta: Arc<dyn MetaStore>,
        accounts: Accounts,
        locations: Locations,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        Self {
            meta,
            accounts,
            locations: Arc::new(locations.instrumented(&metrics)),
            locks: locks::KeyLocks::new(),
            config,
            metrics,
            clock: versions::VersionClock::default(),
        }
    }
    /// The process's metrics (requests are recorded by the front end).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// The configured locations.
    pub fn locations(&self) -> &Locations {
        &self.locations
    }
    /// Readiness: the metadata store answers a read. A failing location does
    /// not make the process unready (the other locations keep serving); see
    /// [`Gateway::location_health`].
    pub async fn ready(&self) -> std::result::Result<(), String> {
        self.meta
            .get(records::BUCKETS_PREFIX)
            .await
            .map(|_| ())
            .map_err(|e| format!("metadata store: {e}"))
    }

    /// A consistent snapshot of the whole metadata store in the backup format
    /// (`cloudmux_meta::backup`); commits wait while it is taken.
    pub async fn export_metadata(&self) -> Result<Vec<u8>> {
        let entries = self.meta.snapshot().await?;
        Ok(cloudmux_meta::backup::encode(&entries))
    }

    /// Probes every location at once (each bounded by `timeout`) and records
    /// the results in the `cloudmux_location_up` metric. Answers each
    /// location's name with its result, sorted by name.
    pub async fn location_health(
        &self,
        timeout: std::time::Duration,
    ) -> Vec<(String, std::result::Result<(), String>)> {
        let mut names: Vec<&String> = self.locations.backends.keys().collect();
        names.sort();
        let probes = names.into_iter().map(|name| async move {
            let backend = &self.locations.backends[name];
            let result = match tokio::time::timeout(timeout, backend.probe()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
            };
            self.metrics.set_location_up(name, result.is_ok());
            (name.clone(), result)
        });
        futures_util::future::join_all(probes).await
    }
    /// Seeds the per-bucket object count and bytes with one scan of every
    /// object record. Run once at startup, after [`Gateway::recover`] and
    /// before serving; from then on commits keep the figures up to date.
    pub async fn load_usage(&self) -> Result<()> {
        let end = cloudmux_meta::prefix_end(records::BUCKETS_PREFIX).unwrap_or_default();
        let mut start = records::BUCKETS_PREFIX.to_vec();
        loop {
            let batch = self.meta.scan(&start, &end, 256).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(());
            };
            start = [last.as_slice(), b"\0"].concat();
            for (k, _) in &batch {
                let bucket =
                    String::from_utf8_lossy(&k[records::BUCKETS_PREFIX.len()..]).into_owned();
                let (objects, bytes) = self.bucket_usage(&bucket).await?;
                self.metrics.set_bucket_usage(&bucket, objects, bytes);
            }
        }
    }
    async fn bucket_usage(&self, bucket: &str) -> Result<(u64, u64)> {
        let prefix = records::objects_prefix(bucket);
        let end = cloudmux_meta::prefix_end(&prefix).unwrap_or_default();
        let mut start = prefix;
        let (mut objects, mut bytes) = (0u64, 0u64);
        loop {
            let batch = self.meta.scan(&start, &end, 1000).await?;
            let Some((last, _)) = batch.last() else {
                return Ok((objects, bytes));
            };
            start = [last.as_slice(), b"\0"].concat();
            for (_, v) in &batch {
                let rec: records::ObjectRecord = cloudmux_meta::codec::decode(v)?;
                if !rec.version.delete_marker {
                    objects += 1;
                    bytes += rec.size;
                }
            }
        }
    }
    /// The configured accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }
    /// The region.
    pub fn region(&self) -> &str {
        &self.config.region
    }
}

pub(crate) fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}
