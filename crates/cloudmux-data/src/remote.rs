//! Shared pieces of the HTTP cloud locations ([`azure`](crate::azure) and
//! [`gcs`](crate::gcs)): the tuning options every cloud config carries, the
//! rule that names a cloud object after an S3 bucket and key, the HTTP client
//! with its timeouts, and the retry loop that turns transport failures,
//! timeouts and 5xx answers into [`DataError::Unavailable`] (which the front
//! end answers with `503 ServiceUnavailable`).
//!
//! Retries are bounded exponential backoff with full jitter (100 ms doubling
//! up to 2 s) and happen only for calls the caller marks idempotent. Error
//! messages name the location and never carry a URL (a SAS token lives in
//! the query string) or a header.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{BodyError, BodyStream, DataError, Result};

/// Prefix, inside a location's container or bucket, of the temporary objects
/// that hold staged data (uploads before publish, multipart parts, compose
/// intermediates). S3 bucket names cannot start with `.`, so with
/// `bucket_match = false` no object name collides with it; with
/// `bucket_match = true` keys under it are refused.
pub const STAGING_PREFIX: &str = ".cloudmux-staging/";

/// Default for `connect_timeout_ms`.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Default for `request_timeout_ms`.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default for `max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Tuning shared by the cloud location types (each config struct carries the
/// same four fields and hands them over with its `options()` method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteOptions {
    /// `true`: the cloud object name is the S3 key; `false`: `<bucket>/<key>`.
    pub bucket_match: bool,
    /// How long to wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// How long one backend call may wait for an answer (or for the next
    /// bytes of a streamed answer).
    pub request_timeout: Duration,
    /// How many times an idempotent call is retried after a transient failure.
    pub max_retries: u32,
}

impl RemoteOptions {
    /// Builds the options from the raw config values.
    pub fn new(
        bucket_match: bool,
        connect_timeout_ms: u64,
        request_timeout_ms: u64,
        max_retries: u32,
    ) -> Self {
        Self {
            bucket_match,
            connect_timeout: Duration::from_millis(connect_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(request_timeout_ms.max(1)),
            max_retries,
        }
    }
}

pub(crate) fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

pub(crate) fn default_request_timeout_ms() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_MS
}

pub(crate) fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

/// The cloud object name of an S3 object: the key itself with
/// `bucket_match = true`, `<bucket>/<key>` otherwise.
pub fn object_name(bucket_match: bool, bucket: &str, key: &str) -> String {
    if bucket_match {
        key.to_owned()
    } else {
        format!("{bucket}/{key}")
    }
}

/// The cloud name of a publish target, refusing (with `bucket_match = true`)
/// a key inside the staging area, which would mix with staged data.
pub(crate) fn target_name(http: &Http, bucket: &str, key: &str) -> crate::Result<String> {
    let name = object_name(http.opts.bucket_match, bucket, key);
    if name.starts_with(STAGING_PREFIX) {
        return Err(http.failed(format!(
            "key {key:?} is inside the reserved staging prefix {STAGING_PREFIX}"
        )));
    }
    Ok(name)
}

/// A fresh name in the staging area.
pub(crate) fn staging_name() -> String {
    format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// Whether `name` is one [`staging_name`] makes: [`STAGING_PREFIX`] and 32
/// lowercase hex digits. Garbage collection lists only such names, and
/// discards refuse others, so a corrupted record or a stray object can never
/// make a staging call delete data outside the staging area.
pub(crate) fn is_staging_name(name: &str) -> bool {
    name.strip_prefix(STAGING_PREFIX).is_some_and(|rest| {
        rest.len() == 32 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Refuses an id that is not a staging name (see [`is_staging_name`]), like
/// a missing staged body.
pub(crate) fn check_staging_name(id: &str) -> crate::Result<()> {
    if is_staging_name(id) {
        Ok(())
    } else {
        Err(DataError::NotFound(format!("not a staged id: {id:?}")))
    }
}

/// Reads a secret given inline, from a file or from an environment variable
/// (exactly one), naming the config field in errors.
pub fn resolve_secret(
    field: &str,
    inline: Option<&str>,
    file: Option<&std::path::Path>,
    env: Option<&str>,
) -> std::result::Result<Option<String>, String> {
    match (inline, file, env) {
        (None, None, None) => Ok(None),
        (Some(s), None, None) => Ok(Some(s.to_owned())),
        (None, Some(f), None) => std::fs::read_to_string(f)
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|e| format!("{field}_file: {}: {e}", f.display())),
        (None, None, Some(v)) => std::env::var(v)
            .map(Some)
            .map_err(|_| format!("{field}_env: environment variable {v} is not set")),
        _ => Err(format!(
            "{field}: give at most one of {field}, {field}_file, {field}_env"
        )),
    }
}

/// The HTTP client of one cloud location.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    /// The location's name, for messages.
    pub location: String,
    /// The client (connection pool, timeouts, TLS with the system's roots).
    pub client: reqwest::Client,
    /// The location's options.
    pub opts: RemoteOptions,
}

impl Http {
    /// Builds the client for a location.
    pub fn new(location: &str, opts: RemoteOptions) -> std::result::Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            location: location.to_owned(),
            client,
            opts,
        })
    }

    /// An [`DataError::Unavailable`] naming the location.
    pub fn unavailable(&self, what: impl std::fmt::Display) -> DataError {
        DataError::Unavailable(format!("location {}: {what}", self.location))
    }

    /// A permanent failure naming the location.
    pub fn failed(&self, what: impl std::fmt::Display) -> DataError {
        DataError::Io(std::io::Error::other(format!(
            "location {}: {what}",
            self.location
        )))
    }

    /// Sends the request `build` makes, retrying transient failures when
    /// `idempotent` (up to `max_retries` times, with backoff and jitter).
    /// Answers with any non-transient response, whatever its status.
    /// `timeout` bounds the whole call (use it for calls without a streamed
    /// body); the client's read timeout bounds the rest.
    pub async fn send<F>(
        &self,
        what: &str,
        idempotent: bool,
        whole_timeout: bool,
        build: F,
    ) -> Result<reqwest::Response>
    where
        F: Fn() -> Result<reqwest::RequestBuilder>,
    {
        let mut attempt = 0u32;
        loop {
            let mut rb = build()?;
            if whole_timeout {
                rb = rb.timeout(self.opts.request_timeout);
            }
            let outcome = match rb.send().await {
                Ok(r) if is_transient(r.status()) => {
                    Err(format!("{what}: HTTP {}", r.status().as_u16()))
                }
                Ok(r) => Ok(r),
                Err(e) => Err(format!("{what}: {}", describe(e))),
            };
            match outcome {
                Ok(r) => return Ok(r),
                Err(msg) if idempotent && attempt < self.opts.max_retries => {
                    tracing::debug!(location = %self.location, attempt, error = %msg, "retrying backend call");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(msg) => return Err(self.unavailable(msg)),
            }
        }
    }
}

/// Whether an HTTP status means "try again later".
pub(crate) fn is_transient(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A transport error described without its URL (which may carry a SAS token).
pub(crate) fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Full-jitter exponential backoff: a random delay below
/// `min(2 s, 100 ms * 2^attempt)`.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1u64 << attempt.min(5)).min(2_000);
    Duration::from_millis(rand::random_range(cap / 4..=cap))
}

/// Turns a response body into a [`BodyStream`], mapping transport errors
/// (including the read timeout) to [`BodyError::Io`] naming the location.
pub(crate) fn response_stream(location: &str, resp: reqwest::Response) -> BodyStream {
    let location = location.to_owned();
    Box::pin(resp.bytes_stream().map(move |r| {
        r.map_err(|e| BodyError::Io(format!("location {location}: {}", describe(e))))
    }))
}

/// Collects a short response body as text (error details), bounded.
pub(crate) async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    format!("HTTP {status}: {}", text.trim())
}

/// Reads from `body` until `buf` holds `size` bytes or the stream ends.
/// Returns `false` at end of stream.
pub(crate) async fn fill(
    body: &mut BodyStream,
    buf: &mut bytes::BytesMut,
    size: usize,
    carry: &mut Option<Bytes>,
) -> std::result::Result<bool, BodyError> {
    loop {
        let chunk = match carry.take() {
            Some(c) => c,
            None => match body.next().await {
                Some(c) => c?,
                None => return Ok(false),
            },
        };
        let room = size - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            *carry = Some(chunk.slice(room..));
        } else {
            buf.extend_from_slice(&chunk);
        }
        if buf.len() == size {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_bucket_match() {
        assert_eq!(object_name(true, "b", "k/x"), "k/x");
        assert_eq!(object_name(false, "b", "k/x"), "b/k/x");
    }

    #[test]
    fn staging_names_are_recognised() {
        let n = staging_name();
        assert!(is_staging_name(&n));
        check_staging_name(&n).unwrap();
        for bad in [
            "",
            STAGING_PREFIX,
            "b/.cloudmux-staging/0123456789abcdef0123456789abcdef",
            ".cloudmux-staging/0123456789abcdef0123456789abcdeF",
            ".cloudmux-staging/0123456789abcdef0123456789abcdef0",
            ".cloudmux-staging/../0123456789abcdef0123456789abcd",
            ".cloudmux/tmp/0123456789abcdef0123456789abcdef",
        ] {
            assert!(!is_staging_name(bad), "{bad}");
            assert!(matches!(
                check_staging_name(bad),
                Err(DataError::NotFound(_))
            ));
        }
    }

    #[test]
    fn backoff_is_bounded() {
        for a in 0..40 {
            assert!(backoff(a) <= Duration::from_secs(2));
        }
    }
}
