//! The cloudmux metadata store.
//!
//! This crate owns the one abstraction every other layer uses to keep state: an
//! ordered key-value space with multi-key atomic commits ([`Txn`]), ordered range
//! scans and time-bounded leases ([`MetaStore`]). It knows nothing about buckets,
//! objects or S3; the keys and values are opaque bytes, and the record formats
//! belong to `cloudmux-core`. [`codec`] gives those records their format-version
//! byte.
//!
//! Engines: [`SledStore`] (embedded, the default) and [`MemStore`] (an in-memory
//! model used as the reference in property tests). A PostgreSQL-wire engine for
//! multi-node deployments will implement the same trait.

pub mod backup;
pub mod codec;
mod mem;
mod sled_engine;

use std::time::Duration;

pub use mem::MemStore;
pub use sled_engine::SledStore;

/// Errors from a metadata engine.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A [`Condition`] of a [`Txn`] did not hold; nothing was written.
    #[error("transaction condition failed")]
    Conflict,
    /// A stored value could not be decoded (unknown format version or corrupt bytes).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The engine itself failed (I/O, closed database).
    #[error("metadata engine: {0}")]
    Engine(String),
    /// A flush failed, so changes that were already visible may be lost. The
    /// engine cannot roll them back, so it refuses every call from then on;
    /// restarting the process reopens the store from what is on disk.
    #[error("metadata store unusable after a failed flush, restart the process to reload it from disk: {0}")]
    Poisoned(String),
}

/// Result alias for this crate.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// A precondition checked atomically with a [`Txn`]'s mutations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The key must not exist.
    Absent(Vec<u8>),
    /// The key must exist, with any value.
    Present(Vec<u8>),
    /// The key must hold exactly this value.
    Equals(Vec<u8>, Vec<u8>),
}

/// One write inside a [`Txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Set the key to the value.
    Put(Vec<u8>, Vec<u8>),
    /// Remove the key (no error when absent).
    Delete(Vec<u8>),
}

/// A multi-key atomic commit: every condition holds and every mutation applies,
/// or nothing happens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Checked before any mutation, atomically with them.
    pub conditions: Vec<Condition>,
    /// Applied in order.
    pub mutations: Vec<Mutation>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a put.
    pub fn put(mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.mutations.push(Mutation::Put(key.into(), value.into()));
        self
    }
    /// Adds a delete.
    pub fn delete(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.mutations.push(Mutation::Delete(key.into()));
        self
    }
    /// Requires the key to be absent.
    pub fn require_absent(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.conditions.push(Condition::Absent(key.into()));
        self
    }
    /// Requires the key to exist.
    pub fn require_present(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.conditions.push(Condition::Present(key.into()));
        self
    }
    /// Requires the key to hold exactly `value`.
    pub fn require_equals(mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.conditions
            .push(Condition::Equals(key.into(), value.into()));
        self
    }
}

/// A key-value pair returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The metadata engine trait.
///
/// Every method is durable on return: once `commit` returns `Ok`, the change
/// survives a crash of the process (engines batch concurrent flushes into one
/// group commit). A commit whose flush failed returns an error; an engine that
/// cannot roll such a change back (sled) then fails every later call with
/// [`MetaError::Poisoned`] until the process restarts.
#[async_trait::async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Returns up to `limit` entries with `start <= key < end`, in ascending
    /// byte order.
    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>>;

    /// Applies a transaction atomically and durably. Fails with
    /// [`MetaError::Conflict`] (and writes nothing) if a condition does not hold.
    async fn commit(&self, txn: Txn) -> Result<()>;

    /// Applies a transaction atomically, like [`commit`](Self::commit), but
    /// returns before it is durable: it becomes durable with the next durable
    /// commit (engines apply commits in order), and a crash before that may
    /// lose it. Only for changes whose loss a restart repairs, such as
    /// removing a finished cleanup task whose redo is harmless. Engines
    /// without a cheaper path commit durably.
    async fn commit_relaxed(&self, txn: Txn) -> Result<()> {
        self.commit(txn).await
    }

    /// Takes or renews the lease `name` for `holder` for `ttl`. Returns `false`
    /// when another holder has an unexpired lease.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool>;

    /// Gives the lease up if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;

    /// Every entry of the store, in ascending key order, as one consistent
    /// snapshot: no commit is applied while it is taken (commits wait). Used
    /// by the online metadata backup (`cloudmux meta export`).
    async fn snapshot(&self) -> Result<Vec<Entry>>;
}

/// The exclusive upper bound of all keys starting with `prefix`, or `None` when
/// no such bound exists (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(crate) const LEASE_PREFIX: &[u8] = b"\xfflease/";

pub(crate) fn lease_key(name: &str) -> Vec<u8> {
    let mut k = LEASE_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// Stored lease value: holder, then expiry in ms since the epoch.
pub(crate) fn encode_lease(holder: &str, expires_ms: u64) -> Vec<u8> {
    codec::encode(&LeaseRecord {
        holder: holder.to_owned(),
        expires_ms,
    })
}

pub(crate) fn decode_lease(bytes: &[u8]) -> Result<LeaseRecord> {
    codec::decode(bytes)
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LeaseRecord {
    pub holder: String,
    pub expires_ms: u64,
}

impl codec::Record for LeaseRecord {
    const VERSION: u8 = 1;
}

/// Shared decision for lease acquisition, used by every engine.
pub(crate) fn lease_available(current: Option<&[u8]>, holder: &str, now: u64) -> Result<bool> {
    match current {
        None => Ok(true),
        Some(v) => {
            let l = decode_lease(v)?;
            Ok(l.holder == holder || l.expires_ms <= now)
        }
    }
}

#[cfg(test)]
mod tests;
