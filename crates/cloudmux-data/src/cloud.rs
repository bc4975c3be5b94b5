//! Pieces shared by the cloud locations (`s3`, `azure`, `gcs`): the options
//! every cloud type accepts, the rule that names an object in the cloud, the
//! retry policy, and the classification of cloud failures into [`DataError`].
//!
//! # Cloud object names
//!
//! With `bucket_match = false` (the default) the S3 object `KEY` of bucket
//! `BUCKET` is the cloud object `BUCKET/KEY`, so several buckets can share one
//! cloud bucket or container without overwriting each other. With
//! `bucket_match = true` it is the cloud object `KEY`: the cloud container
//! mirrors exactly one S3 bucket.
//!
//! Data that is not yet an object (uploads in flight, multipart parts) lives
//! under the reserved prefix [`TMP_PREFIX`] (`.cloudmux/tmp/`). No bucket name
//! starts with `.`, so with `bucket_match = false` no S3 key can reach it; with
//! `bucket_match = true` keys under `.cloudmux/` must not be used.
//!
//! # Failures
//!
//! Transport failures (connection refused or reset, DNS, TLS), timeouts,
//! HTTP 5xx, 408 and 429 are [`DataError::Unavailable`], which the S3 front end
//! answers with `503 ServiceUnavailable`; so is a missing cloud bucket or
//! container (the location is not ready, which says nothing about the S3
//! object asked for). A missing object (404) is
//! [`DataError::NotFound`], a failed precondition (412) [`DataError::Stale`],
//! and anything else (403 for wrong credentials) an
//! I/O error, which clients see as `500 InternalError` while the log names the
//! location and the cloud's error code. Messages never include credentials.
//!
//! # Retries and timeouts
//!
//! [`Retry::run`] retries idempotent calls that failed with
//! [`DataError::Unavailable`], at most `max_retries` times, waiting a random
//! time between zero and an exponentially growing cap (full jitter: 100 ms,
//! 200 ms, 400 ms... at most 5 s) between attempts. The whole call, retries
//! included, is bounded by `request_timeout_ms`; when that runs out the call
//! fails with [`DataError::Unavailable`]. Streaming a response body after it
//! started is not bounded by it (a large GET may take longer); a connection
//! that breaks mid-body ends the stream with an error.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;

use crate::DataError;

/// Prefix of the cloud objects that hold staged data (uploads in flight and
/// multipart parts) inside the location's bucket or container.
pub const TMP_PREFIX: &str = ".cloudmux/tmp/";

/// Options shared by every cloud location type, flattened into its
/// `[locations.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CloudOptions {
    /// `true`: the cloud object is named exactly like the S3 key, so the cloud
    /// container mirrors one bucket. `false` (the default): the cloud object
    /// is `<bucket>/<key>`, so several buckets can share one container.
    #[serde(default)]
    pub bucket_match: bool,
    /// How long to wait for a TCP (and TLS) connection to the cloud, in
    /// milliseconds (default 5000).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// The longest one backend call may take, retries included, in
    /// milliseconds (default 60000); a call that runs out of time gives the
    /// client `503 ServiceUnavailable`. Streaming a response body is not
    /// bounded by it.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How many times an idempotent call that failed transiently (connection
    /// errors, timeouts, 5xx, 429) is retried (default 3).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

impl Default for CloudOptions {
    fn default() -> Self {
        Self {
            bucket_match: false,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_retries: default_max_retries(),
        }
    }
}

fn default_connect_timeout_ms() -> u64 {
    crate::remote::DEFAULT_CONNECT_TIMEOUT_MS
}

fn default_request_timeout_ms() -> u64 {
    60_000
}

fn default_max_retries() -> u32 {
    crate::remote::DEFAULT_MAX_RETRIES
}

impl CloudOptions {
    /// The cloud object name of S3 object `key` in `bucket` (see the
    /// [module documentation](self)).
    pub fn object_name(&self, bucket: &str, key: &str) -> String {
        crate::remote::object_name(self.bucket_match, bucket, key)
    }

    /// The connect timeout as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    /// The retry policy these options describe, for the location `location`.
    pub fn retry(&self, location: &str) -> Retry {
        Retry {
            location: location.to_owned(),
            max_retries: self.max_retries,
            timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }
}

/// A new name for staged data: [`TMP_PREFIX`] followed by a random UUID.
pub fn temp_name() -> String {
    format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().hyphenated())
}

/// Checks that a staged id names staged data, so that a corrupted record can
/// never make a backend delete or read an object through the staging calls.
pub fn check_temp_name(id: &str) -> crate::Result<()> {
    match id.strip_prefix(TMP_PREFIX) {
        Some(rest) if uuid::Uuid::parse_str(rest).is_ok() => Ok(()),
        _ => Err(DataError::NotFound(format!("not a staged id: {id:?}"))),
    }
}

/// Bounded retries with exponential backoff and full jitter, and a deadline
/// for the whole call (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct Retry {
    location: String,
    max_retries: u32,
    timeout: Duration,
    base: Duration,
    cap: Duration,
}

impl Retry {
    /// Runs an idempotent call, retrying it after transient failures
    /// ([`DataError::Unavailable`]) until it succeeds, fails otherwise, has
    /// been retried `max_retries` times, or the deadline passes. `what` names
    /// the call in errors.
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> crate::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = crate::Result<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut attempt = 0u32;
        loop {
            let result = match tokio::time::timeout_at(deadline, call()).await {
                Ok(r) => r,
                Err(_) => return Err(self.timed_out(what)),
            };
            match result {
                Err(DataError::Unavailable(msg)) if attempt < self.max_retries => {
                    let wait = self.backoff(attempt);
                    if tokio::time::Instant::now() + wait >= deadline {
                        return Err(DataError::Unavailable(msg));
                    }
                    tracing::debug!(location = %self.location, what, attempt, error = %msg, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Runs a call that is not idempotent once, bounded by the deadline.
    pub async fn once<T, Fut>(&self, what: &str, call: Fut) -> crate::Result<T>
    where
        Fut: Future<Output = crate::Result<T>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(what)),
        }
    }

    fn timed_out(&self, what: &str) -> DataError {
        DataError::Unavailable(format!(
            "location {}: {what}: no answer within {} ms",
            self.location,
            self.timeout.as_millis()
        ))
    }

    /// The wait before retry number `attempt + 1`: uniform in
    /// `[0, min(cap, base * 2^attempt)]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.cap);
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(rand::random_range(0..=nanos))
    }
}

/// Classifies an HTTP error answer from a cloud (see the
/// [module documentation](self)). `detail` should name the location, the call
/// and the cloud's error code, never credentials.
pub fn status_error(status: u16, detail: String) -> DataError {
    match status {
        404 => DataError::NotFound(detail),
        412 => DataError::Stale(detail),
        408 | 429 | 500..=599 => DataError::Unavailable(detail),
        _ => DataError::Io(std::io::Error::other(detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        bucket: String,
        #[serde(flatten)]
        cloud: CloudOptions,
    }

    #[test]
    fn options_flatten_with_defaults() {
        let o: Outer = toml::from_str("bucket = \"b\"").unwrap();
        assert_eq!(o.bucket, "b");
        assert_eq!(o.cloud, CloudOptions::default());
        let o: Outer =
            toml::from_str("bucket = \"b\"\nbucket_match = true\nmax_retries = 0\n").unwrap();
        assert!(o.cloud.bucket_match);
        assert_eq!(o.cloud.max_retries, 0);
        assert!(toml::from_str::<Outer>("bucket = \"b\"\ncolour = 1\n").is_err());
    }

    #[test]
    fn object_names_follow_bucket_match() {
        let mut o = CloudOptions::default();
        assert_eq!(o.object_name("b", "a/k"), "b/a/k");
        o.bucket_match = true;
        assert_eq!(o.object_name("b", "a/k"), "a/k");
    }

    #[test]
    fn temp_names_are_checked() {
        let t = temp_name();
        check_temp_name(&t).unwrap();
        assert!(check_temp_name("b/key").is_err());
        assert!(check_temp_name(".cloudmux/tmp/../x").is_err());
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            status_error(503, "x".into()),
            DataError::Unavailable(_)
        ));
        assert!(matches!(
            status_error(429, "x".into()),
            DataError::Unavailable(_)
        ));
        assert!(matches!(
            status_error(404, "x".into()),
            DataError::NotFound(_)
        ));
        assert!(matches!(status_error(412, "x".into()), DataError::Stale(_)));
        assert!(matches!(status_error(403, "x".into()), DataError::Io(_)));
    }

    #[test]
    fn backoff_is_bounded() {
        let r = CloudOptions::default().retry("l");
        for attempt in 0..40 {
            assert!(r.backoff(attempt) <= Duration::from_secs(5));
        }
        assert!(r.backoff(0) <= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn retries_transient_failures_only_and_stops() {
        let opts = CloudOptions {
            max_retries: 2,
            ..CloudOptions::default()
        };
        let calls = AtomicU32::new(0);
        let r: crate::Result<()> = opts
            .retry("l")
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(DataError::Unavailable("down".into()))
            })
            .await;
        assert!(matches!(r, Err(DataError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let r: crate::Result<()> = opts
            .retry("l")
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(DataError::NotFound("gone".into()))
            })
            .await;
        assert!(matches!(r, Err(DataError::NotFound(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        calls.store(0, Ordering::SeqCst);
        let r = opts
            .retry("l")
            .run("op", || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(DataError::Unavailable("blip".into()))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[tokio::test]
    async fn the_deadline_bounds_a_hung_call() {
        let opts = CloudOptions {
            request_timeout_ms: 300,
            ..CloudOptions::default()
        };
        let start = tokio::time::Instant::now();
        let r: crate::Result<()> = opts.retry("l").run("op", std::future::pending).await;
        assert!(matches!(r, Err(DataError::Unavailable(m)) if m.contains("location l")));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
