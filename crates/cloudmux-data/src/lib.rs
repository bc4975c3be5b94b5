//! cloudmux data backends: where the bytes of objects live.
//!
//! This crate owns the [`Backend`] trait and its implementations (the local
//! filesystem in [`fs`], S3 and S3-compatible services in [`s3`], Azure Blob
//! Storage in [`azure`], Google Cloud Storage in [`gcs`], with the one cloud
//! layer every cloud location shares in [`cloud`]: options, object names,
//! the staging area, retries, timeouts and the classification of cloud
//! errors). A backend stores and
//! streams bytes and nothing else: it knows no metadata store, no accounts, no
//! S3 protocol. It never reads a whole object into memory.
//!
//! Writes happen in two steps so that the caller can order them against its
//! metadata commit: [`Backend::stage`] makes the bytes durable somewhere
//! invisible, then [`Backend::publish`] atomically makes them the object's data.
//! A body stream that ends with an error (a digest mismatch found by the caller
//! at end of stream, a broken connection) leaves nothing behind.

pub mod azure;
pub mod cloud;
pub mod fs;
pub mod gcs;
pub mod s3;
pub mod secret;

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

/// A streamed object body.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// Why a body stream failed. Produced by whoever builds the stream (the S3
/// front end decoding aws-chunked framing, the core checking digests) and
/// passed through backends unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The connection failed or the client stopped sending.
    #[error("body read failed: {0}")]
    Io(String),
    /// Fewer bytes than declared arrived.
    #[error("incomplete body")]
    Incomplete,
    /// More bytes than allowed arrived.
    #[error("body too large")]
    TooLarge,
    /// Content-MD5 did not match.
    #[error("Content-MD5 mismatch")]
    BadDigest,
    /// An `x-amz-checksum-*` value did not match; names the algorithm.
    #[error("{0} checksum mismatch")]
    ChecksumMismatch(String),
    /// `x-amz-content-sha256` did not match the payload.
    #[error("x-amz-content-sha256 mismatch")]
    Sha256Mismatch,
    /// An aws-chunked chunk signature did not verify.
    #[error("chunk signature mismatch")]
    ChunkSignature,
    /// The aws-chunked framing was malformed.
    #[error("malformed chunked encoding: {0}")]
    MalformedChunk(String),
    /// A declared trailer was missing or malformed.
    #[error("malformed trailer: {0}")]
    MalformedTrailer(String),
}

/// Errors from a backend.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The body stream failed; nothing was kept.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The data the reference points at no longer exists.
    #[error("data not found: {0}")]
    NotFound(String),
    /// The data at the reference is not the version the reference names (it
    /// was replaced concurrently or outside cloudmux).
    #[error("data changed underneath: {0}")]
    Stale(String),
    /// The backend is unreachable or refused service (transient).
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The location is configured wrongly: its cloud refused the configured
    /// credentials or their rights (HTTP 401 or 403). Not transient and not
    /// the client's fault: the S3 front end answers `500 InternalError` and
    /// logs the message, which names the location.
    #[error("location {location}: configuration error: {message}")]
    Misconfigured {
        /// The location's name.
        location: String,
        /// What failed and what the cloud answered (never credentials).
        message: String,
    },
    /// Any other I/O failure.
    #[error("backend I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Bytes made durable by [`Backend::stage`] but not yet visible as an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// Backend-specific identifier of the staged data.
    pub id: String,
    /// Number of bytes staged.
    pub size: u64,
    /// Backend-specific identity of the staged data, kept by
    /// [`Backend::publish`] as the published [`DataRef::stamp`] (for `fs`, the
    /// inode number, which a rename preserves).
    pub stamp: u64,
}

/// One entry of a location's staging area (see [`Backend::list_staged`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedEntry {
    /// The id a [`Staged`] of this entry carries.
    pub id: String,
    /// When the entry was last written (or the upload started).
    pub modified: std::time::SystemTime,
}

/// Where an object's data lives inside its location. Stored in the object's
/// metadata record, so reads never have to guess.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// Backend-specific locator (for `fs`, a path relative to the root).
    pub locator: String,
    /// Size in bytes.
    pub size: u64,
    /// Backend-specific identity of this exact version of the data (for `fs`,
    /// the inode number), used to detect data replaced behind cloudmux's back.
    pub stamp: u64,
}

/// The object a publish targets.
#[derive(Debug, Clone, Copy)]
pub struct ObjectPath<'a> {
    /// Bucket name (already validated).
    pub bucket: &'a str,
    /// Object key (already validated: valid UTF-8, no NUL, at most 1024 bytes).
    pub key: &'a str,
    /// What the object carries besides its bytes, for locations that keep it
    /// as native metadata ([`NativeMeta::none`] where it does not matter,
    /// e.g. for [`Backend::locate`]).
    pub meta: &'a NativeMeta,
}

/// An object's metadata as a cloud location stores it natively, next to the
/// bytes: entity headers map to the cloud's own properties, user metadata to
/// its metadata map. cloudmux's own metadata store stays the source of truth
/// (ETag, ACLs, checksums); this copy is for native tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativeMeta {
    /// Content-Type.
    pub content_type: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Encoding.
    pub content_encoding: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Expires, as the client sent it.
    pub expires: Option<String>,
    /// User metadata (`x-amz-meta-*`): names lower-cased, without the prefix.
    pub user: Vec<(String, String)>,
    /// MD5 of the whole body when it is known (objects not made by multipart
    /// upload), for clouds that store or verify it.
    pub content_md5: Option<[u8; 16]>,
}

/// The empty [`NativeMeta`], for [`NativeMeta::none`].
static NO_META: NativeMeta = NativeMeta::EMPTY;

impl NativeMeta {
    /// A reference to empty metadata that lives forever.
    pub fn none() -> &'static NativeMeta {
        &NO_META
    }

    /// No metadata.
    pub const EMPTY: NativeMeta = NativeMeta {
        content_type: None,
        cache_control: None,
        content_disposition: None,
        content_encoding: None,
        content_language: None,
        expires: None,
        user: Vec::new(),
        content_md5: None,
    };
}

/// An inclusive byte range `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte offset.
    pub first: u64,
    /// Last byte offset (inclusive).
    pub last: u64,
}

/// A piece of existing data to assemble into a new object (multipart complete,
/// part copy).
#[derive(Debug, Clone)]
pub enum Piece {
    /// A staged blob (an uploaded part).
    Staged(Staged),
    /// A range of a published object.
    Published(DataRef, Option<ByteRange>),
}

/// Longest version name [`Backend::keep_version`] accepts.
pub const MAX_VERSION_LEN: usize = 64;

/// Checks a version name given to [`Backend::keep_version`] or
/// [`Backend::locate_version`]: 1 to [`MAX_VERSION_LEN`] ASCII letters,
/// digits and `.`, not starting with `.` (a version id is 32 lowercase hex
/// digits, the null version `null.<16 hex>`). Every location uses the name
/// as one path segment, so nothing else may pass. Refused with
/// [`DataError::Io`] of kind [`std::io::ErrorKind::InvalidInput`].
pub fn check_version(version: &str) -> Result<()> {
    let ok = (1..=MAX_VERSION_LEN).contains(&version.len())
        && !version.starts_with('.')
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(DataError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad version name {version:?}"),
        )))
    }
}

/// A data backend.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Streams `body` into invisible storage. If the stream yields an error,
    /// everything written is removed and the error is returned as
    /// [`DataError::Body`]. Staged data is not necessarily durable: call
    /// [`persist`](Backend::persist) before recording it anywhere that must
    /// survive a crash, or [`publish`](Backend::publish) it.
    async fn stage(&self, body: BodyStream) -> Result<Staged>;

    /// Makes staged data durable, so that it survives a crash while staged.
    async fn persist(&self, staged: &Staged) -> Result<()>;

    /// Atomically makes staged data the data of `target`, replacing whatever
    /// was there. Durable on return.
    async fn publish(&self, staged: Staged, target: ObjectPath<'_>) -> Result<DataRef>;

    /// [`publish`](Backend::publish) without waiting for the result to be
    /// durable: on `fs` the rename, whose durability comes with the next
    /// [`persist`](Backend::persist) or `publish` (one sync of the file
    /// system). Used to put a new key's data at its native name before the
    /// write is answered, while its record still names the staged copy (see
    /// [`staged_ref`](Backend::staged_ref)). The default publishes.
    async fn place(&self, staged: Staged, target: ObjectPath<'_>) -> Result<DataRef> {
        self.publish(staged, target).await
    }

    /// Removes staged data that will not be published (no error if gone).
    async fn discard(&self, staged: &Staged) -> Result<()>;

    /// Streams the data (or a range of it).
    async fn read(&self, data: &DataRef, range: Option<ByteRange>) -> Result<BodyStream>;

    /// Streams staged data (or a range of it).
    async fn read_staged(&self, staged: &Staged, range: Option<ByteRange>) -> Result<BodyStream>;

    /// Removes published data (no error if gone).
    async fn delete(&self, data: &DataRef) -> Result<()>;

    /// Concatenates pieces into new staged data, streaming.
    async fn assemble(&self, pieces: Vec<Piece>) -> Result<Staged>;

    /// Finds the data that [`publish`](Backend::publish) of `staged` put at
    /// `target`, if it is there: used after a crash, or a publish that failed
    /// part-way, between publishing and committing metadata. Answers the
    /// [`DataRef`] that publish would have answered (locator, size, and the
    /// stamp reads and deletes check) when `target` holds the bytes of
    /// `staged`; `None` when `target` is absent or holds other data (never
    /// published, or replaced since); [`DataError::Unavailable`] when the
    /// location cannot be asked or cannot tell yet, so the caller keeps its
    /// intent for later. Each backend documents how it recognises its
    /// published data (`fs`: the inode; clouds: the staged id recorded in the
    /// object's native metadata).
    async fn locate(&self, target: ObjectPath<'_>, staged: &Staged) -> Result<Option<DataRef>>;

    /// A [`DataRef`] naming `staged` where it lies, for locations that can
    /// serve staged data as it is: a new key's record may then name its
    /// staged copy, which is moved to `target` (with
    /// [`publish`](Backend::publish)) after the write is acknowledged. Reads
    /// of the answer keep working while and after the data moves. The
    /// caller has made the data durable with [`persist`](Backend::persist).
    /// [`read`](Backend::read) and [`delete`](Backend::delete) accept the
    /// answer like any published [`DataRef`], and `publish` keeps its
    /// `stamp`. `None` (the default) where staged data must be published
    /// before a record may name it (the clouds: a staged copy there is a
    /// temp object that native tools should not see as the object). No
    /// default, so that a wrapping backend cannot forget to forward it.
    async fn staged_ref(&self, staged: &Staged, target: ObjectPath<'_>) -> Result<Option<DataRef>>;

    /// Keeps a copy of `data`, the published data of `target` (its current
    /// version), as the noncurrent version `version` of `target`, in the
    /// location's noncurrent-version area (documented per location: `fs`
    /// `<bucket>/.cloudmux/versions/<key>/<version>`, clouds
    /// `.cloudmux-versions/<name>/<version>`), without the bytes passing
    /// through cloudmux: a hard link on `fs`, a server-side copy (carrying
    /// the native metadata) on the clouds. `data` stays where it is. Durable
    /// on return. Answers the copy's [`DataRef`], which `read` and `delete`
    /// accept like any other. Idempotent: when the copy is already there
    /// with the bytes of `data` (a retry, or recovery finishing a write), it
    /// is answered as it is. `version` is a version id or `null.<hex>`
    /// (ASCII letters, digits and `.`). [`DataError::NotFound`] or
    /// [`DataError::Stale`] when `data` is gone or was replaced. No default,
    /// so that a wrapping backend cannot forget to forward it.
    async fn keep_version(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef>;

    /// [`keep_version`](Backend::keep_version) for a caller that calls
    /// [`persist`](Backend::persist) on this location next, before anything
    /// depends on the copy: the copy need only be durable once that
    /// `persist` returns, so a location that syncs a whole file system
    /// (`fs`) syncs once for both. The clouds' copies are durable on return
    /// anyway. No default, so that a wrapping backend cannot forget to
    /// forward it.
    async fn keep_version_unsynced(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef>;

    /// Finds the copy [`keep_version`](Backend::keep_version) made of
    /// `target`'s version `version`: its [`DataRef`], or `None` when there
    /// is none; [`DataError::Unavailable`] when the location cannot be asked.
    /// Used by recovery to finish or undo a write that kept a version. No
    /// default.
    async fn locate_version(
        &self,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<Option<DataRef>>;

    /// Everything in the location's staging area (staged bodies, parts,
    /// assembled copies, and on clouds unfinished native multipart uploads
    /// of staged data), for garbage collection: the caller decides from its
    /// records which entries no record, intent or live upload names, and
    /// [`discard`](Backend::discard)s those older than its age guard with a
    /// [`Staged`] of the listed id. The default lists nothing.
    async fn list_staged(&self) -> Result<Vec<StagedEntry>> {
        Ok(Vec::new())
    }

    /// Prepares the location for a new bucket (a directory, a prefix). The
    /// default does nothing.
    async fn create_bucket(&self, _bucket: &str) -> Result<()> {
        Ok(())
    }

    /// Cleans up after a deleted (empty) bucket. The default does nothing.
    async fn remove_bucket(&self, _bucket: &str) -> Result<()> {
        Ok(())
    }

    /// A cheap check that the location answers (readiness). The default
    /// answers `Ok` without checking anything.
    async fn probe(&self) -> Result<()> {
        Ok(())
    }

    /// How long a publish this process sent may still take effect after the
    /// call failed or the process died: a cloud finishes a server-side copy
    /// whose client is gone. Until that long after a publish whose outcome
    /// is unknown, [`locate`](Backend::locate) answering "not published" is
    /// not final. Zero (the default) for locations whose operations end with
    /// the call, such as `fs`.
    fn publish_grace(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Whether the storage behind the location encrypts every object at rest
    /// with keys it manages, so that cloudmux may answer
    /// `x-amz-server-side-encryption: AES256` (SSE-S3) for it: Amazon S3,
    /// Azure Blob Storage and Google Cloud Storage always do. `false` (the
    /// default) for `fs`, whose bytes are plain files.
    fn encrypts_at_rest(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_are_checked() {
        for ok in [
            "0123456789abcdef0123456789abcdef",
            "null.0123456789abcdef",
            "A",
            "a..b",
            &"v".repeat(MAX_VERSION_LEN),
        ] {
            check_version(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".x",
            "a/b",
            "a b",
            "ü",
            "a\0",
            "a-b",
            &"v".repeat(MAX_VERSION_LEN + 1),
        ] {
            match check_version(bad) {
                Err(DataError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
