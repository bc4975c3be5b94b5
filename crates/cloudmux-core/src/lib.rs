//! The cloudmux gateway core: S3 semantics without HTTP.
//!
//! This crate owns what buckets and objects *mean*: naming rules, accounts and
//! ACLs, conditional reads, ranges, copies, listings, multipart uploads,
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
//! - Every stored value is a versioned record from [`records`].

pub mod account;
pub mod acl;
mod bucket;
pub mod bucket_config;
pub mod checksum;
pub mod digest;
mod error;
mod list;
mod locks;
mod multipart;
pub mod names;
mod object;
pub mod records;
mod recover;

use std::collections::HashMap;
use std::sync::Arc;

use cloudmux_data::Backend;
use cloudmux_meta::MetaStore;

pub use account::{Account, Accounts, Principal};
pub use bucket::{BucketInfo, BucketLocation};
pub use error::{CoreError, Result};
pub use list::{ListObjectsInput, ListObjectsOutput, ListUploadsInput, ListUploadsOutput};
pub use multipart::{
    CompletePart, CompleteUploadInput, CreateUploadInput, ListPartsInput, ListPartsOutput,
    PartInfo, UploadInfo, UploadPartCopyInput, UploadPartInput, UploadPartOutput,
};
pub use object::{
    CopyObjectInput, DeleteOutcome, GetObjectInput, GetObjectOutput, PutObjectInput,
    PutObjectOutput, RangeSpec, ReadConditions, WriteConditions,
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
    locations: Locations,
    locks: locks::KeyLocks,
    config: GatewayConfig,
}

impl Gateway {
    /// Assembles a gateway.
    pub fn new(
        config: GatewayConfig,
        meta: Arc<dyn MetaStore>,
        accounts: Accounts,
        locations: Locations,
    ) -> Self {
        Self {
            meta,
            accounts,
            locations,
            locks: locks::KeyLocks::new(),
            config,
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
