//! The `s3` location: objects in a bucket of AWS S3 or of any S3-compatible
//! service, one native S3 object per cloudmux object, through `aws-sdk-s3`.
//!
//! # Layout in the target bucket
//!
//! ```text
//! <bucket>/<key>                 an object (bucket_match = false, the default)
//! <key>                          an object (bucket_match = true)
//! .cloudmux-staging/<uuid>       staged data: uploads in flight, multipart parts
//! .cloudmux/tmp/<uuid>           staged data an older cloudmux wrote (still read)
//! .cloudmux-versions/<name>/<version>
//!                                a noncurrent version of the object <name> (one of the two above)
//! ```
//!
//! Names, the staging area, timeouts, retries and the reading of error
//! answers are the [cloud layer](crate::cloud)'s, as for every cloud.
//!
//! Each object carries its S3 metadata natively: user metadata as
//! `x-amz-meta-*`, Content-Type, Cache-Control, Content-Disposition,
//! Content-Encoding, Content-Language and Expires as the same headers. S3 needs
//! no encoding of metadata names.
//!
//! # Writes
//!
//! [`stage`](crate::Backend::stage) uploads the body to a new temp object:
//! bodies up to [`PART_SIZE`] with one PutObject, larger ones as a native
//! multipart upload of [`PART_SIZE`] parts (memory stays bounded by one part).
//! [`publish`](crate::Backend::publish) copies the temp object server-side onto
//! the object's name with its metadata (CopyObject, or UploadPartCopy for more
//! than 5 GiB), then deletes the temp object. Multipart Complete
//! ([`assemble`](crate::Backend::assemble)) is a native multipart upload whose
//! parts are server-side copies of the staged parts (UploadPartCopy); pieces
//! S3 cannot take as parts (a part under 5 MiB before the last one, an empty
//! piece) are concatenated by streaming instead. Abort and Complete delete
//! every temp object through [`discard`](crate::Backend::discard). A write
//! that fails aborts its multipart upload or deletes its temp object before
//! the failure is answered (in the background when the cloud is unavailable,
//! as for a cancelled write), so a failed body leaves nothing behind.
//!
//! # Identifiers
//!
//! [`Staged::id`](crate::Staged) is the temp object's name;
//! [`DataRef::locator`](crate::DataRef) is the object's name in the target
//! bucket. Stamps are the first 8 bytes of the SHA-256 of the object's ETag as
//! the target reports it: reads fail with [`DataError::Stale`] when the ETag or
//! the size no longer match the reference (the object was replaced),
//! server-side copies of published data check the stamp and send the ETag as
//! `x-amz-copy-source-if-match`, and [`delete`](crate::Backend::delete)
//! leaves an object alone whose ETag differs from the reference's.
//!
//! # Noncurrent versions
//!
//! [`keep_version`](crate::Backend::keep_version) copies the object
//! server-side onto `.cloudmux-versions/<name>/<version>` (the
//! [cloud layer](crate::cloud)'s versions area): one CopyObject, or a
//! multipart copy (UploadPartCopy of 1 GiB parts) above 5 GiB, sent with
//! `x-amz-copy-source-if-match` of the ETag the reference's stamp names, so
//! a replacement racing the copy fails it ([`DataError::Stale`]). The copy
//! carries the source's native metadata as HeadObject reports it (content
//! headers, `x-amz-meta-*` including `cloudmux-staged`). Its reference has
//! the copy's own stamp (the SHA-256 of its ETag), which reads and deletes
//! check like any other. Up to 5 GiB a retry simply copies again (one
//! request, as a HeadObject of the copy would be); above, a copy already
//! at the name with the source's ETag and size is answered as it is.
//! [`locate_version`](crate::Backend::locate_version) is one HeadObject.
//! Cost: one HeadObject of the source (for its ETag and metadata), one copy
//! request and a full copy's storage per kept version.
//!
//! # Garbage collection
//!
//! [`list_staged`](crate::Backend::list_staged) lists the staging area under
//! each of [`STAGING_PREFIXES`] (the current `.cloudmux-staging/` and the
//! `.cloudmux/tmp/` this location used before) in two parts, both paginated
//! and both asked with the prefix, so nothing outside the staging area is
//! ever listed:
//!
//! - the temp objects (ListObjectsV2), each with its LastModified;
//! - the unfinished native multipart uploads (ListMultipartUploads) of data
//!   being staged or assembled, left behind by a crash (a failed or
//!   cancelled write aborts its own). An upload is listed under its key,
//!   the temp object name it would have completed into, which is the
//!   [`Staged::id`](crate::Staged) of that data; its time is the newest of
//!   its Initiated time and its parts' LastModified (ListParts), so a long
//!   staging write that still sends parts never looks old (a service whose
//!   ListParts answer the SDK cannot read, such as moto, gives the
//!   Initiated time alone).
//!
//! A name with both a temp object and uploads is listed once, with the newest
//! time. Names under a prefix that are not staged ids
//! ([`is_staging_name`](crate::cloud::is_staging_name)) are not listed:
//! [`discard`](crate::Backend::discard) refuses them. With
//! `bucket_match = true`, [`publish`](crate::Backend::publish) refuses a key
//! under any staging prefix, so no object can be taken for staged data.
//!
//! `discard` deletes the temp object. A handle carrying only an id (size 0,
//! stamp 0, as garbage collection passes for a listed entry) also aborts
//! every unfinished multipart upload of that name first (ListMultipartUploads
//! with the name as prefix). No staging call returns such a handle (an empty
//! body is one PutObject whose stamp is that of its ETag), and a handle that
//! staging returned has no unfinished upload left, so discards on the write
//! path (failed commits, multipart Complete and Abort) cost no listing.
//!
//! # Finding published data after a crash
//!
//! [`publish`](crate::Backend::publish) records the staged id in the object's
//! native metadata: `x-amz-meta-cloudmux-staged: <Staged::id>` (the reserved
//! name [`STAGED_META`]; a client's own metadata of that name is left out of
//! the native copy, cloudmux's records keep it). The staged id is unique to
//! one write, so [`locate`](crate::Backend::locate) HEADs the object and
//! answers it when that entry equals the staged handle's id and the size
//! matches, whatever way the bytes were staged (a multipart upload's temp
//! object has another ETag than its published copy). S3 allows 2 KiB of user
//! metadata: when the client's metadata leaves no room for the entry, the
//! object is published without it and `locate` falls back to the ETag, which
//! finds data staged with one PutObject (its copy keeps the ETag, the MD5 of
//! the bytes) but not data staged by multipart upload. cloudmux answers S3
//! clients from its own records, never from this native metadata, so the
//! entry is only seen by native tools.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use aws_sdk_s3::config::{
    timeout::TimeoutConfig, BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use sha2::Digest;

use crate::cloud::{self, CloudOptions, Retry, STAGING_PREFIXES};
use crate::{
    Backend, BodyError, BodyStream, ByteRange, DataError, DataRef, NativeMeta, ObjectPath, Piece,
    Result, Staged, StagedEntry,
};

/// Applies an object's native metadata to a PutObject, CopyObject or
/// CreateMultipartUpload request builder.
macro_rules! with_meta {
    ($req:expr, $meta:expr) => {{
        let meta: &NativeMeta = $meta;
        let mut req = $req
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .set_content_disposition(meta.content_disposition.clone())
            .set_content_encoding(meta.content_encoding.clone())
            .set_content_language(meta.content_language.clone());
        if let Some(expires) = meta.expires.as_deref().and_then(|e| {
            aws_sdk_s3::primitives::DateTime::from_str(
                e,
                aws_sdk_s3::primitives::DateTimeFormat::HttpDate,
            )
            .ok()
        }) {
            req = req.expires(expires);
        }
        if !meta.user.is_empty() {
            req = req.set_metadata(Some(
                meta.user
                    .iter()
                    .cloned()
                    .collect::<std::collections::HashMap<String, String>>(),
            ));
        }
        req
    }};
}

mod multipart;

use multipart::{Cleanup, CopySource};

/// Size of the parts of a staged upload, and the most a staging write holds
/// in memory.
pub const PART_SIZE: usize = 8 << 20;
/// The smallest part S3 accepts before the last one.
const MIN_PART: u64 = 5 << 20;
/// The largest part, and the largest single CopyObject.
const MAX_PART: u64 = 5 << 30;
/// The part size of server-side copies of objects over [`MAX_PART`].
const COPY_PART: u64 = 1 << 30;
/// The most parts of one multipart upload.
const MAX_PARTS: usize = 10_000;
/// The user-metadata name (`x-amz-meta-cloudmux-staged`) under which
/// `publish` records the staged id of the bytes it published.
pub const STAGED_META: &str = "cloudmux-staged";
/// The most bytes of user metadata (names and values) S3 keeps per object.
const MAX_USER_METADATA: usize = 2048;
/// Server-side part copies in flight at once.
const COPY_CONCURRENCY: usize = 4;

/// Characters escaped in an `x-amz-copy-source` key: all but the unreserved
/// characters and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// `[locations.NAME]` with `type = "s3"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL of an S3-compatible service (`http://127.0.0.1:5000`);
    /// omit for AWS itself. `https://` endpoints use rustls with the system's
    /// root certificates.
    pub endpoint: Option<String>,
    /// Region to sign for (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The target bucket, which must exist.
    pub bucket: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key, inline.
    pub secret_key: Option<String>,
    /// A file holding the secret access key.
    pub secret_key_file: Option<PathBuf>,
    /// An environment variable holding the secret access key.
    pub secret_key_env: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted
    /// style (`bucket.endpoint/key`); most emulators need `true`.
    #[serde(default)]
    pub path_style: bool,
    /// Options shared by all cloud locations (`bucket_match`, timeouts,
    /// retries).
    #[serde(flatten)]
    pub cloud: CloudOptions,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("secret_key_file", &self.secret_key_file)
            .field("secret_key_env", &self.secret_key_env)
            .field("path_style", &self.path_style)
            .field("cloud", &self.cloud)
            .finish()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

impl S3Config {
    /// The secret access key from exactly one of `secret_key`,
    /// `secret_key_file` (trimmed) and `secret_key_env`. The error names the
    /// field, never the secret.
    pub fn secret(&self) -> std::result::Result<String, String> {
        crate::secret::SecretSource {
            field: "secret_key",
            inline: self.secret_key.as_deref(),
            file: self.secret_key_file.as_deref(),
            env: self.secret_key_env.as_deref(),
        }
        .require()
    }
}

/// Data backend storing objects as native objects in an S3 bucket (see the
/// [module documentation](self)).
#[derive(Debug, Clone)]
pub struct S3Backend {
    name: String,
    client: Client,
    bucket: String,
    cloud: CloudOptions,
    retry: Retry,
}

impl S3Backend {
    /// Builds the client of location `name`. Does not contact the target:
    /// use [`Backend::probe`] for that.
    pub fn new(name: &str, config: &S3Config) -> std::result::Result<Self, String> {
        if config.bucket.is_empty() {
            return Err("bucket: must not be empty".into());
        }
        let secret = config.secret()?;
        let https = !config
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let http_client = if https {
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        } else {
            aws_smithy_http_client::Builder::new().build_http()
        };
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(
                config.access_key.clone(),
                secret,
                None,
                None,
                "cloudmux-config",
            ))
            .force_path_style(config.path_style)
            .http_client(http_client)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.cloud.connect_timeout())
                    .build(),
            )
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.trim_end_matches('/'));
        }
        Ok(Self {
            name: name.to_owned(),
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            cloud: config.cloud.clone(),
            retry: config.cloud.retry(name),
        })
    }

    /// Classifies an SDK failure (see [`cloud`](crate::cloud)).
    fn sdk_error<E>(&self, what: &str, e: SdkError<E>) -> DataError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let detail = |more: String| format!("location {}: {what}: {more}", self.name);
        match &e {
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                // An answer without a body (HEAD) has neither code nor
                // message; its status says enough.
                let (code, message) = (se.err().code(), se.err().message());
                cloud::classify(&self.name, what, status, code, message.unwrap_or_default())
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => {
                DataError::Unavailable(detail(DisplayErrorContext(&e).to_string()))
            }
            _ => DataError::Io(io::Error::other(detail(
                DisplayErrorContext(&e).to_string(),
            ))),
        }
    }

    fn copy_source(&self, key: &str) -> String {
        format!("{}/{}", self.bucket, utf8_percent_encode(key, COPY_SOURCE))
    }

    /// Uploads a body held in memory as one object (idempotent, retried).
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<String> {
        self.retry
            .run("PutObject", || async {
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map(|o| o.e_tag().unwrap_or_default().to_owned())
                    .map_err(|e| self.sdk_error("PutObject", e))
            })
            .await
    }

    /// Deletes an object (idempotent, retried; no error if missing).
    async fn delete_key(&self, key: &str) -> Result<()> {
        self.retry
            .run("DeleteObject", || async {
                match self
                    .client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("DeleteObject", e))
                {
                    Ok(_) | Err(DataError::NotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// The ETag and size of an object, or `None` if it does not exist.
    async fn head(&self, key: &str) -> Result<Option<(String, u64)>> {
        Ok(self.head_object(key).await?.map(|o| {
            (
                o.e_tag().unwrap_or_default().to_owned(),
                o.content_length().unwrap_or(0).max(0) as u64,
            )
        }))
    }

    /// The HeadObject answer of an object, or `None` if it does not exist.
    async fn head_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>> {
        let r = self
            .retry
            .run("HeadObject", || async {
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("HeadObject", e))
            })
            .await;
        match r {
            Ok(o) => Ok(Some(o)),
            Err(DataError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts a GET of an object or a range and checks that the object is
    /// still the one `expect` names (stamp and size) when given.
    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
        expect: Option<(u64, u64)>,
    ) -> Result<BodyStream> {
        let out = self
            .retry
            .run("GetObject", || async {
                let mut req = self.client.get_object().bucket(&self.bucket).key(key);
                if let Some(r) = range {
                    req = req.range(format!("bytes={}-{}", r.first, r.last));
                }
                req.send().await.map_err(|e| self.sdk_error("GetObject", e))
            })
            .await?;
        if let Some((stamp, size)) = expect {
            let total = match range {
                None => out.content_length().map(|l| l.max(0) as u64),
                Some(_) => out
                    .content_range()
                    .and_then(|c| c.rsplit_once('/'))
                    .and_then(|(_, t)| t.parse::<u64>().ok()),
            };
            let changed = (stamp != 0 && stamp_of(out.e_tag().unwrap_or_default()) != stamp)
                || total.is_some_and(|t| t != size);
            if changed {
                return Err(DataError::Stale(format!(
                    "location {}: {key} was replaced",
                    self.name
                )));
            }
        }
        let location = self.name.clone();
        let idle = self.cloud.request_timeout();
        Ok(Box::pin(futures_util::stream::unfold(
            Some(out.body),
            move |body| {
                let location = location.clone();
                async move {
                    let mut body = body?;
                    let failed = |e: String| {
                        let e = BodyError::Io(format!("location {location}: read failed: {e}"));
                        Some((Err(e), None))
                    };
                    match tokio::time::timeout(idle, body.next()).await {
                        Err(_) => failed(format!("no bytes within {} ms", idle.as_millis())),
                        Ok(None) => None,
                        Ok(Some(Ok(b))) => Some((Ok(b), Some(body))),
                        Ok(Some(Err(e))) => failed(e.to_string()),
                    }
                }
            },
        )))
    }

    /// The ETag of the published data `data` names, checked against its
    /// stamp and size: [`DataError::Stale`] when the object was replaced,
    /// [`DataError::NotFound`] when it is gone. Server-side copies send it
    /// as `x-amz-copy-source-if-match`, so a replacement racing the copy
    /// fails it too.
    async fn published_etag(&self, data: &DataRef) -> Result<String> {
        match self.head(&data.locator).await? {
            None => Err(DataError::NotFound(format!(
                "location {}: {} is gone",
                self.name, data.locator
            ))),
            Some((etag, size))
                if size != data.size || (data.stamp != 0 && stamp_of(&etag) != data.stamp) =>
            {
                Err(DataError::Stale(format!(
                    "location {}: {} was replaced",
                    self.name, data.locator
                )))
            }
            Some((etag, _)) => Ok(etag),
        }
    }

    /// The temp objects under the staging prefix `prefix` that are staged
    /// ids, with their LastModified, every page of ListObjectsV2.
    async fn list_temp_objects(&self, prefix: &str) -> Result<Vec<(String, SystemTime)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .retry
                .run("ListObjectsV2", || async {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| self.sdk_error("ListObjectsV2", e))
                })
                .await?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                if cloud::is_staging_name(key) {
                    // No time reported: taken as written just now, so the
                    // entry waits for a sweep that sees one.
                    let modified = o.last_modified().and_then(multipart::time);
                    out.push((key.to_owned(), modified.unwrap_or_else(SystemTime::now)));
                }
            }
            match page.next_continuation_token().filter(|t| !t.is_empty()) {
                Some(t) if page.is_truncated() == Some(true) && token.as_deref() != Some(t) => {
                    token = Some(t.to_owned());
                }
                _ => return Ok(out),
            }
        }
    }

    /// The key, range and expected ETag of a piece, and its length.
    async fn piece_source(&self, piece: &Piece) -> Result<(CopySource, u64)> {
        match piece {
            Piece::Staged(s) => {
                cloud::check_staging_name(&s.id)?;
                Ok((
                    CopySource {
                        key: s.id.clone(),
                        range: None,
                        if_match: None,
                    },
                    s.size,
                ))
            }
            Piece::Published(d, range) => {
                let len = match range {
                    Some(r) => r.last + 1 - r.first,
                    None => d.size,
                };
                let range = match range {
                    Some(r) if !(r.first == 0 && r.last + 1 == d.size) => Some(*r),
                    _ => None,
                };
                Ok((
                    CopySource {
                        key: d.locator.clone(),
                        range,
                        if_match: Some(self.published_etag(d).await?),
                    },
                    len,
                ))
            }
        }
    }

    /// Concatenates pieces by streaming them through cloudmux into new
    /// staged data.
    async fn assemble_streaming(&self, pieces: Vec<Piece>) -> Result<Staged> {
        let this = self.clone();
        let body = futures_util::stream::iter(pieces)
            .then(move |piece| {
                let this = this.clone();
                async move {
                    let stream = match &piece {
                        Piece::Staged(s) => this.read_staged(s, None).await,
                        Piece::Published(d, r) => this.read(d, *r).await,
                    };
                    match stream {
                        Ok(s) => s,
                        Err(e) => Box::pin(futures_util::stream::once(async move {
                            Err(BodyError::Io(e.to_string()))
                        })),
                    }
                }
            })
            .flatten();
        self.stage(Box::pin(body)).await
    }
}

/// `meta` with the staged id recorded under [`STAGED_META`] (replacing a
/// client's entry of that name), or without it when the client's metadata
/// leaves no room within S3's 2 KiB (see the [module documentation](self)).
fn marked(meta: &NativeMeta, staged: &Staged) -> NativeMeta {
    let mut marked = meta.clone();
    marked.user.retain(|(n, _)| n != STAGED_META);
    let used: usize = marked.user.iter().map(|(n, v)| n.len() + v.len()).sum();
    if used + STAGED_META.len() + staged.id.len() <= MAX_USER_METADATA {
        marked
            .user
            .push((STAGED_META.to_owned(), staged.id.clone()));
    }
    marked
}

/// The native metadata a HeadObject answer shows (content headers and user
/// metadata, the staged-id entry included), for a copy that keeps it.
fn native_meta(head: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> NativeMeta {
    let mut user: Vec<(String, String)> = head
        .metadata()
        .map(|m| m.iter().map(|(n, v)| (n.clone(), v.clone())).collect())
        .unwrap_or_default();
    user.sort();
    NativeMeta {
        content_type: head.content_type().map(str::to_owned),
        cache_control: head.cache_control().map(str::to_owned),
        content_disposition: head.content_disposition().map(str::to_owned),
        content_encoding: head.content_encoding().map(str::to_owned),
        content_language: head.content_language().map(str::to_owned),
        expires: head.expires_string().map(str::to_owned),
        user,
        content_md5: None,
    }
}

/// The stamp of an object version: the first 8 bytes of the SHA-256 of its
/// ETag (quotes removed).
fn stamp_of(etag: &str) -> u64 {
    let digest = sha2::Sha256::digest(etag.trim_matches('"').as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[async_trait::async_trait]
impl Backend for S3Backend {
    async fn stage(&self, mut body: BodyStream) -> Result<Staged> {
        let key = cloud::staging_name();
        let mut buf = BytesMut::new();
        while buf.len() < PART_SIZE {
            match body.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(DataError::Body(e)),
                None => {
                    let size = buf.len() as u64;
                    let guard = Cleanup::new(self, &key, None);
                    let put = self.put_bytes(&key, buf.freeze()).await;
                    guard.settle(&put).await;
                    let etag = put?;
                    return Ok(Staged {
                        id: key,
                        size,
                        stamp: stamp_of(&etag),
                    });
                }
            }
        }
        let first = buf.split_to(PART_SIZE).freeze();
        let rest: BodyStream = if buf.is_empty() {
            body
        } else {
            let extra = buf.freeze();
            Box::pin(futures_util::stream::once(async move { Ok(extra) }).chain(body))
        };
        let size = self.stage_multipart(&key, first, rest).await?;
        Ok(Staged {
            id: key,
            size,
            stamp: 0,
        })
    }

    async fn persist(&self, staged: &Staged) -> Result<()> {
        cloud::check_staging_name(&staged.id)
    }

    async fn publish(&self, staged: Staged, target: ObjectPath<'_>) -> Result<DataRef> {
        cloud::check_staging_name(&staged.id)?;
        let dest = self
            .cloud
            .target_name(&self.name, target.bucket, target.key)?;
        let etag = self
            .copy_whole(
                &staged.id,
                None,
                staged.size,
                &dest,
                &marked(target.meta, &staged),
            )
            .await?;
        if let Err(e) = self.delete_key(&staged.id).await {
            tracing::warn!(location = %self.name, key = %staged.id, error = %e, "could not delete a published temp object");
        }
        Ok(DataRef {
            locator: dest,
            size: staged.size,
            stamp: stamp_of(&etag),
        })
    }

    /// A server-side copy onto the version's name (see
    /// [Noncurrent versions](self#noncurrent-versions)).
    async fn keep_version(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef> {
        crate::check_version(version)?;
        self.cloud
            .target_name(&self.name, target.bucket, target.key)?;
        let dest = self.cloud.version_name(target.bucket, target.key, version);
        let Some(source) = self.head_object(&data.locator).await? else {
            return Err(DataError::NotFound(format!(
                "location {}: {} is gone",
                self.name, data.locator
            )));
        };
        let etag = source.e_tag().unwrap_or_default().to_owned();
        let size = source.content_length().unwrap_or(0).max(0) as u64;
        if size != data.size || (data.stamp != 0 && stamp_of(&etag) != data.stamp) {
            return Err(DataError::Stale(format!(
                "location {}: {} was replaced",
                self.name, data.locator
            )));
        }
        // A copy already made (a retry, or recovery finishing a write) is
        // looked for only where copying again costs more than one request.
        let found = if size > MAX_PART {
            self.head(&dest).await?
        } else {
            None
        };
        if let Some((kept, kept_size)) = found {
            if kept == etag && kept_size == size {
                return Ok(DataRef {
                    locator: dest,
                    size,
                    stamp: stamp_of(&kept),
                });
            }
        }
        let copied = self
            .copy_whole(
                &data.locator,
                Some(&etag),
                size,
                &dest,
                &native_meta(&source),
            )
            .await?;
        Ok(DataRef {
            locator: dest,
            size,
            stamp: stamp_of(&copied),
        })
    }

    /// The copy is durable on return, as with `keep_version`.
    async fn keep_version_unsynced(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef> {
        self.keep_version(data, target, version).await
    }

    async fn locate_version(
        &self,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<Option<DataRef>> {
        crate::check_version(version)?;
        let locator = self.cloud.version_name(target.bucket, target.key, version);
        match self.head(&locator).await {
            Ok(found) => Ok(found.map(|(etag, size)| DataRef {
                locator,
                size,
                stamp: stamp_of(&etag),
            })),
            Err(DataError::Unavailable(m)) => Err(DataError::Unavailable(m)),
            Err(e) => Err(DataError::Unavailable(e.to_string())),
        }
    }

    /// A staged copy here is a temp object: it is published before a
    /// record may name it.
    async fn staged_ref(
        &self,
        _staged: &Staged,
        _target: ObjectPath<'_>,
    ) -> Result<Option<DataRef>> {
        Ok(None)
    }

    async fn discard(&self, staged: &Staged) -> Result<()> {
        cloud::check_staging_name(&staged.id)?;
        if staged.size == 0 && staged.stamp == 0 {
            // An id-only handle (garbage collection): the name may be an
            // upload a crash left unfinished (see the module documentation).
            self.abort_uploads_of(&staged.id).await?;
        }
        self.delete_key(&staged.id).await
    }

    async fn read(&self, data: &DataRef, range: Option<ByteRange>) -> Result<BodyStream> {
        self.get(&data.locator, range, Some((data.stamp, data.size)))
            .await
    }

    async fn read_staged(&self, staged: &Staged, range: Option<ByteRange>) -> Result<BodyStream> {
        cloud::check_staging_name(&staged.id)?;
        self.get(&staged.id, range, None).await
    }

    async fn delete(&self, data: &DataRef) -> Result<()> {
        match self.head(&data.locator).await? {
            None => Ok(()),
            Some((etag, _)) if data.stamp != 0 && stamp_of(&etag) != data.stamp => Ok(()),
            Some(_) => self.delete_key(&data.locator).await,
        }
    }

    async fn assemble(&self, pieces: Vec<Piece>) -> Result<Staged> {
        if let [Piece::Published(d, None)] = pieces.as_slice() {
            if d.size > 0 {
                let etag = self.published_etag(d).await?;
                let key = cloud::staging_name();
                self.copy_whole(&d.locator, Some(&etag), d.size, &key, NativeMeta::none())
                    .await?;
                return Ok(Staged {
                    id: key,
                    size: d.size,
                    stamp: 0,
                });
            }
        }
        let mut sources = Vec::with_capacity(pieces.len());
        let mut size = 0u64;
        let mut native = !pieces.is_empty() && pieces.len() <= MAX_PARTS;
        for (i, piece) in pieces.iter().enumerate() {
            let (src, len) = self.piece_source(piece).await?;
            let last = i + 1 == pieces.len();
            if len == 0 || len > MAX_PART || (!last && len < MIN_PART) {
                native = false;
            }
            size += len;
            sources.push(src);
        }
        if !native {
            return self.assemble_streaming(pieces).await;
        }
        let key = cloud::staging_name();
        self.copy_parts(&key, NativeMeta::none(), sources).await?;
        Ok(Staged {
            id: key,
            size,
            stamp: 0,
        })
    }

    async fn locate(&self, target: ObjectPath<'_>, staged: &Staged) -> Result<Option<DataRef>> {
        let locator = self.cloud.object_name(target.bucket, target.key);
        let head = match self.head_object(&locator).await {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(None),
            Err(DataError::Unavailable(m)) => return Err(DataError::Unavailable(m)),
            Err(e) => return Err(DataError::Unavailable(e.to_string())),
        };
        let etag = head.e_tag().unwrap_or_default();
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let ours = match head.metadata().and_then(|m| m.get(STAGED_META)) {
            Some(id) => *id == staged.id,
            None => staged.stamp != 0 && stamp_of(etag) == staged.stamp,
        };
        if !ours {
            return Ok(None);
        }
        if size != staged.size {
            tracing::warn!(location = %self.name, key = %locator, size, staged = staged.size,
                "published data has another size than was staged");
            return Ok(None);
        }
        Ok(Some(DataRef {
            locator,
            size,
            stamp: stamp_of(etag),
        }))
    }

    async fn list_staged(&self) -> Result<Vec<StagedEntry>> {
        let mut newest: BTreeMap<String, SystemTime> = BTreeMap::new();
        let mut note = |id: String, t: SystemTime| {
            let e = newest.entry(id).or_insert(t);
            *e = (*e).max(t);
        };
        let mut uploads = Vec::new();
        for prefix in STAGING_PREFIXES {
            uploads.extend(self.list_uploads(prefix).await?);
        }
        let written: Vec<(String, Option<SystemTime>)> = futures_util::stream::iter(uploads)
            .filter(|(key, _, _)| std::future::ready(cloud::is_staging_name(key)))
            .map(|(key, upload_id, initiated)| async move {
                let t = self.upload_written(&key, &upload_id, initiated).await?;
                Ok::<_, DataError>((key, t))
            })
            .buffered(COPY_CONCURRENCY)
            .try_collect()
            .await?;
        for (key, t) in written {
            if let Some(t) = t {
                note(key, t);
            }
        }
        for prefix in STAGING_PREFIXES {
            for (key, t) in self.list_temp_objects(prefix).await? {
                note(key, t);
            }
        }
        Ok(newest
            .into_iter()
            .map(|(id, modified)| StagedEntry { id, modified })
            .collect())
    }

    /// A server-side copy the cloud accepted may land up to one request
    /// timeout after its client gave up or died.
    fn publish_grace(&self) -> std::time::Duration {
        self.cloud.request_timeout()
    }

    /// Amazon S3 encrypts every new object with SSE-S3 (AES-256) since
    /// January 2023 ("Setting default server-side encryption behavior for
    /// Amazon S3 buckets").
    fn encrypts_at_rest(&self) -> bool {
        true
    }

    async fn probe(&self) -> Result<()> {
        cloud::container_call(
            self.retry
                .run("HeadBucket", || async {
                    self.client
                        .head_bucket()
                        .bucket(&self.bucket)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| self.sdk_error("HeadBucket", e))
                })
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_the_contract_names_and_hides_the_secret() {
        let c: S3Config = toml::from_str(
            r#"
endpoint = "http://127.0.0.1:5000"
region = "eu-west-1"
bucket = "target-bucket"
access_key = "AK"
secret_key = "very-secret"
path_style = true
bucket_match = true
request_timeout_ms = 2000
"#,
        )
        .unwrap();
        assert_eq!(c.bucket, "target-bucket");
        assert!(c.path_style && c.cloud.bucket_match);
        assert_eq!(c.cloud.request_timeout_ms, 2000);
        assert_eq!(c.secret().unwrap(), "very-secret");
        assert!(!format!("{c:?}").contains("very-secret"));
        let e = toml::from_str::<S3Config>("bucket = \"b\"\naccess_key = \"a\"\nsecret = \"x\"\n");
        assert!(e.is_err());
    }

    #[test]
    fn secrets_come_from_exactly_one_source() {
        let mut c: S3Config = toml::from_str(
            "bucket = \"b\"\naccess_key = \"a\"\nsecret_key_env = \"CMX_NOPE_UNSET\"\n",
        )
        .unwrap();
        assert!(c.secret().unwrap_err().contains("CMX_NOPE_UNSET"));
        c.secret_key = Some("s".into());
        assert!(c.secret().unwrap_err().contains("exactly one"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "from-file\n").unwrap();
        c.secret_key = None;
        c.secret_key_env = None;
        c.secret_key_file = Some(f);
        assert_eq!(c.secret().unwrap(), "from-file");
    }

    #[test]
    fn copy_sources_escape_keys() {
        let c: S3Config =
            toml::from_str("bucket = \"tb\"\naccess_key = \"a\"\nsecret_key = \"s\"\n").unwrap();
        let b = S3Backend::new("l", &c).unwrap();
        assert_eq!(b.copy_source("a/b c+d?é"), "tb/a/b%20c%2Bd%3F%C3%A9");
    }

    #[test]
    fn the_staged_id_replaces_a_client_entry_and_fits_in_2_kib() {
        let staged = Staged {
            id: cloud::staging_name(),
            size: 1,
            stamp: 0,
        };
        let meta = NativeMeta {
            user: vec![
                ("a".into(), "1".into()),
                (STAGED_META.into(), "forged".into()),
            ],
            ..NativeMeta::default()
        };
        assert_eq!(
            marked(&meta, &staged).user,
            [
                ("a".to_owned(), "1".to_owned()),
                (STAGED_META.to_owned(), staged.id.clone())
            ]
        );
        let room = MAX_USER_METADATA - STAGED_META.len() - staged.id.len();
        let fits = NativeMeta {
            user: vec![("b".into(), "v".repeat(room - 1))],
            ..NativeMeta::default()
        };
        assert_eq!(marked(&fits, &staged).user.len(), 2);
        let full = NativeMeta {
            user: vec![
                ("b".into(), "v".repeat(room)),
                (STAGED_META.into(), "forged".into()),
            ],
            ..NativeMeta::default()
        };
        assert_eq!(marked(&full, &staged).user, full.user[..1]);
    }

    #[test]
    fn stamps_ignore_quotes() {
        assert_eq!(stamp_of("\"abc\""), stamp_of("abc"));
        assert_ne!(stamp_of("abc"), stamp_of("abd"));
    }
}
