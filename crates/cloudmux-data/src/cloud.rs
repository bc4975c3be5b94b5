//! The one cloud layer: what every cloud location (`s3`, `azure`, `gcs`)
//! shares. The options each cloud type's config carries ([`CloudOptions`]),
//! the rule that names an S3 object in the cloud, the staging area and the
//! guard that keeps keys out of it, the one classification of cloud answers
//! ([`classify`]), the one retry loop ([`Retry`], in `cloud/retry.rs`) and the
//! HTTP client of the REST locations (`cloud/http.rs`, used by Azure and GCS;
//! the `s3` location speaks through `aws-sdk-s3` with the SDK's own retries
//! turned off, so the same loop and the same classification apply to it).
//!
//! # Cloud object names
//!
//! With `bucket_match = false` (the default) the S3 object `KEY` of bucket
//! `BUCKET` is the cloud object `BUCKET/KEY`, so several buckets can share one
//! cloud bucket or container without overwriting each other. With
//! `bucket_match = true` it is the cloud object `KEY`: the cloud container
//! mirrors exactly one S3 bucket.
//!
//! # The staging area
//!
//! Data that is not yet an object (uploads in flight, multipart parts, copies
//! and compose intermediates) lives in the location's own bucket or container
//! under [`STAGING_PREFIX`] (`.cloudmux-staging/`), as objects named by
//! [`staging_name`]: the prefix and 32 lowercase hex digits (a random UUID).
//! That name is the [`Staged::id`](crate::Staged).
//!
//! Before the cloud layers were merged the `s3` location staged under
//! `.cloudmux/tmp/` with hyphenated UUIDs. [`LEGACY_STAGING_PREFIXES`] keeps
//! that prefix: every cloud location still lists, reads, persists,
//! publishes, assembles and discards names of either form
//! ([`is_staging_name`]), so records and leftovers written by an older
//! cloudmux keep working and are collected; nothing new is written there.
//! Every staging call refuses an id that is not a staging name, as a missing
//! staged body ([`check_staging_name`]), so a corrupted record can never make
//! one reach an object.
//!
//! With `bucket_match = false` no object name can fall in the staging area:
//! every name starts with a bucket name, and no bucket name starts with `.`.
//! With `bucket_match = true`, [`CloudOptions::target_name`] (the one guard,
//! used by every cloud's publish) refuses a key under any staging prefix,
//! current or legacy, since such an object would be taken for staged data
//! and garbage collection would remove it.
//!
//! # Noncurrent versions
//!
//! [`Backend::keep_version`](crate::Backend::keep_version) keeps the
//! current data of an object as its noncurrent version `VERSION` with one
//! server-side copy, in the location's own bucket or container, under
//! [`VERSIONS_PREFIX`]: the object named `NAME` (as above) has its versions
//! at `.cloudmux-versions/NAME/VERSION` ([`CloudOptions::version_name`]),
//! the same prefix in both modes. The copy is conditional on the source
//! still being the bytes the caller's reference names and keeps the
//! object's native metadata (content headers and user metadata, the
//! staged-id entry included: it is harmless there, since
//! [`locate`](crate::Backend::locate) only asks objects' own names). Each
//! kept version costs one copy request (a multipart copy above 5 GiB on
//! S3) and the storage of a full copy; the bytes never pass through
//! cloudmux. [`CloudOptions::target_name`] refuses keys whose name falls
//! under the prefix (only possible with `bucket_match = true`), and garbage
//! collection lists only the staging prefixes, so the versions area is
//! reached only through records.
//!
//! # Failures
//!
//! [`classify`] is the one reading of a cloud's error answers:
//!
//! - transport failures (connection refused or reset, DNS, TLS), no answer
//!   in time, and HTTP 408, 429 and every 5xx but 501:
//!   [`DataError::Unavailable`] (retried when the call is idempotent), which
//!   the S3 front end answers with `503 ServiceUnavailable`;
//! - a 404 naming the location's own bucket or container (`NoSuchBucket`,
//!   `ContainerNotFound`, or any 404 to a probe; see [`container_call`]):
//!   `Unavailable` too, since the location is not ready, which says nothing
//!   about the object asked for;
//! - 401 and 403: [`DataError::Misconfigured`] (wrong or expired
//!   credentials, missing rights), answered `500 InternalError`;
//! - any other 404: [`DataError::NotFound`]; 412: [`DataError::Stale`];
//! - anything else: [`DataError::Io`], answered `500 InternalError`.
//!
//! Only `Unavailable` is retried. A 401 or 403 is a configuration error at
//! the location, not an outage: it is never retried, the client gets
//! `500 InternalError`, the log line names the location and the cloud's
//! error code, and [`Backend::probe`](crate::Backend::probe) fails with it,
//! so `/_/health/locations` and `cloudmux_location_up` show the location
//! down. [`Backend::locate`](crate::Backend::locate) answers every failure
//! as `Unavailable` (recovery then keeps its intent for later). Messages
//! name the location and the call, never credentials, a URL (a SAS token
//! lives in the query string) or a header.
//!
//! # Timeouts and retries
//!
//! `request_timeout_ms` is the longest one call to the cloud may take,
//! retries and the waits between them included: one request of the cloud's
//! API (a PutObject, a Put Block, a rewrite step), not a whole
//! [`Backend`](crate::Backend) operation, which may make several. It runs
//! from the call's start until the whole answer has arrived, or, for reads
//! that stream a body, until the answer's status and headers have arrived;
//! such a body is not bounded as a whole (a large GET may take longer), but
//! each wait for its next bytes is, so a stream that stalls for longer ends
//! with an error. A call that runs out of time fails with
//! [`DataError::Unavailable`]. `connect_timeout_ms` bounds each TCP (and
//! TLS) connection inside that.
//!
//! [`Retry::run`] retries an idempotent call that failed with
//! [`DataError::Unavailable`], at most `max_retries` times, waiting a random
//! time between zero and an exponentially growing ceiling before each retry
//! (full jitter: the ceiling is 100 ms, 200 ms, 400 ms... at most 5 s), and
//! gives up with the last error when the next wait would pass the deadline.
//! Calls that are not idempotent run once ([`Retry::once`]), within the same
//! deadline. The loop is a few lines of our own: `backon`'s jitter adds a
//! random delay on top of the exponential one instead of drawing below it,
//! and neither it nor the unmaintained `backoff` crate bounds retries and
//! waits by one deadline.

pub(crate) mod http;
mod retry;

use std::time::Duration;

use serde::Deserialize;

use crate::DataError;

pub use retry::Retry;

/// Prefix, inside a location's bucket or container, of the objects that hold
/// staged data (see the [module documentation](self)).
pub const STAGING_PREFIX: &str = ".cloudmux-staging/";

/// Prefix, inside a location's bucket or container, of the noncurrent
/// versions [`Backend::keep_version`](crate::Backend::keep_version) keeps
/// (see the [module documentation](self)).
pub const VERSIONS_PREFIX: &str = ".cloudmux-versions/";

/// Staging prefixes an older cloudmux wrote (`.cloudmux/tmp/`, the `s3`
/// location's, with hyphenated UUIDs): still listed, read and discarded,
/// never written.
pub const LEGACY_STAGING_PREFIXES: [&str; 1] = [".cloudmux/tmp/"];

/// Every staging prefix, the current one first.
pub const STAGING_PREFIXES: [&str; 2] = [STAGING_PREFIX, LEGACY_STAGING_PREFIXES[0]];

/// Default for `connect_timeout_ms`.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Default for `request_timeout_ms`.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Default for `max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Options shared by every cloud location type, flattened into its
/// `[locations.NAME]` table. The names are part of the config file format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CloudOptions {
    /// `true`: the cloud object is named exactly like the S3 key, so the cloud
    /// container mirrors one bucket, and keys under the staging prefixes are
    /// refused. `false` (the default): the cloud object is `<bucket>/<key>`,
    /// so several buckets can share one container.
    #[serde(default)]
    pub bucket_match: bool,
    /// How long to wait for a TCP (and TLS) connection to the cloud, in
    /// milliseconds (default 5000).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// The longest one call to the cloud may take, retries and the waits
    /// between them included, in milliseconds (default 60000): until the
    /// whole answer has arrived, or for a streamed read until its headers
    /// have, after which each wait for the next bytes is bounded by it (see
    /// the [module documentation](self)). A call that runs out of time gives
    /// the client `503 ServiceUnavailable`.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How many times an idempotent call that failed transiently (connection
    /// errors, timeouts, 408, 429, 5xx) is retried within
    /// `request_timeout_ms`, with full-jitter exponential backoff (default 3).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

impl Default for CloudOptions {
    fn default() -> Self {
        Self {
            bucket_match: false,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

fn default_request_timeout_ms() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_MS
}

fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

impl CloudOptions {
    /// The cloud object name of S3 object `key` in `bucket` (see the
    /// [module documentation](self)).
    pub fn object_name(&self, bucket: &str, key: &str) -> String {
        if self.bucket_match {
            key.to_owned()
        } else {
            format!("{bucket}/{key}")
        }
    }

    /// The cloud object name a publish of `key` in `bucket` writes, refusing
    /// (only possible with `bucket_match = true`) a name under any staging
    /// prefix, which would be taken for staged data, or under
    /// [`VERSIONS_PREFIX`], which would be taken for a noncurrent version.
    /// The error names `location`.
    pub fn target_name(&self, location: &str, bucket: &str, key: &str) -> crate::Result<String> {
        let name = self.object_name(bucket, key);
        let refused = |what: &str, prefix: &str| {
            Err(DataError::Io(std::io::Error::other(format!(
                "location {location}: key {key:?} is inside the reserved {what} prefix {prefix}"
            ))))
        };
        if let Some(prefix) = STAGING_PREFIXES.iter().find(|p| name.starts_with(*p)) {
            return refused("staging", prefix);
        }
        if name.starts_with(VERSIONS_PREFIX) {
            return refused("versions", VERSIONS_PREFIX);
        }
        Ok(name)
    }

    /// The cloud object name of the noncurrent version `version` of `key` in
    /// `bucket`: [`VERSIONS_PREFIX`], the object's name
    /// ([`object_name`](Self::object_name)), `/` and the version, which has
    /// passed [`crate::check_version`] (no `/`, so the name tells the
    /// object's name and the version apart).
    pub fn version_name(&self, bucket: &str, key: &str, version: &str) -> String {
        format!(
            "{VERSIONS_PREFIX}{}/{version}",
            self.object_name(bucket, key)
        )
    }

    /// The connect timeout as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    /// `request_timeout_ms` as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    /// The retry policy these options describe, for the location `location`.
    pub fn retry(&self, location: &str) -> Retry {
        Retry::new(location, self.max_retries, self.request_timeout())
    }
}

/// A fresh name in the staging area: [`STAGING_PREFIX`] and a random UUID
/// as 32 lowercase hex digits.
pub fn staging_name() -> String {
    format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// Whether `name` names staged data: [`STAGING_PREFIX`] and 32 lowercase hex
/// digits (what [`staging_name`] makes), or a legacy prefix and a
/// hyphenated lowercase UUID (what an older `s3` location made). Garbage
/// collection lists only such names, and staging calls refuse others.
pub fn is_staging_name(name: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if let Some(rest) = name.strip_prefix(STAGING_PREFIX) {
        return rest.len() == 32 && hex(rest);
    }
    LEGACY_STAGING_PREFIXES.iter().any(|p| {
        name.strip_prefix(p).is_some_and(|rest| {
            let groups: Vec<&str> = rest.split('-').collect();
            groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]) && groups.iter().all(|g| hex(g))
        })
    })
}

/// Refuses an id that is not a staging name (see [`is_staging_name`]), like
/// a missing staged body.
pub fn check_staging_name(id: &str) -> crate::Result<()> {
    if is_staging_name(id) {
        Ok(())
    } else {
        Err(DataError::NotFound(format!("not a staged id: {id:?}")))
    }
}

/// Cloud error codes meaning that the location's own bucket or container is
/// missing (S3's and Azure's), which says nothing about the object asked for.
const MISSING_CONTAINER: [&str; 2] = ["NoSuchBucket", "ContainerNotFound"];

/// Whether an HTTP status means "try again later" (408, 429, and every 5xx
/// but 501 Not Implemented).
pub fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502..=599)
}

/// Classifies an HTTP error answer of the cloud of location `location` to
/// call `what` (see the [module documentation](self)). `code` is the cloud's
/// error code and `text` its message, when it gives them; neither may carry
/// credentials.
pub fn classify(
    location: &str,
    what: &str,
    status: u16,
    code: Option<&str>,
    text: &str,
) -> DataError {
    let mut message = format!("{what}: HTTP {status}");
    for part in [code.unwrap_or_default(), text.trim()] {
        if !part.is_empty() {
            message.push(' ');
            message.push_str(part);
        }
    }
    let at = || format!("location {location}: {message}");
    match status {
        401 | 403 => DataError::Misconfigured {
            location: location.to_owned(),
            message,
        },
        404 if code.is_some_and(|c| MISSING_CONTAINER.contains(&c)) => DataError::Unavailable(at()),
        404 => DataError::NotFound(at()),
        412 => DataError::Stale(at()),
        s if is_transient(s) => DataError::Unavailable(at()),
        _ => DataError::Io(std::io::Error::other(at())),
    }
}

/// The outcome of a call on the location's own bucket or container (a
/// probe), where a 404 ([`DataError::NotFound`]) can only mean that the
/// bucket or container is missing, whether or not the cloud named an error
/// code (answers to HEAD have no body): the location is not ready, which is
/// [`DataError::Unavailable`].
pub fn container_call<T>(outcome: crate::Result<T>) -> crate::Result<T> {
    outcome.map_err(|e| match e {
        DataError::NotFound(m) => DataError::Unavailable(m),
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(o.cloud.request_timeout_ms, 60_000);
        let o: Outer = toml::from_str(
            "bucket = \"b\"\nbucket_match = true\nmax_retries = 0\nrequest_timeout_ms = 250\n\
             connect_timeout_ms = 100\n",
        )
        .unwrap();
        assert!(o.cloud.bucket_match);
        assert_eq!(o.cloud.max_retries, 0);
        assert_eq!(o.cloud.request_timeout(), Duration::from_millis(250));
        assert_eq!(o.cloud.connect_timeout(), Duration::from_millis(100));
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
    fn keys_inside_a_staging_prefix_are_refused() {
        let shared = CloudOptions::default();
        let matched = CloudOptions {
            bucket_match: true,
            ..CloudOptions::default()
        };
        for key in [
            ".cloudmux-staging/x",
            ".cloudmux-staging/",
            ".cloudmux/tmp/x",
            &staging_name(),
        ] {
            assert_eq!(
                shared.target_name("l", "b", key).unwrap(),
                format!("b/{key}")
            );
            let e = matched.target_name("l", "b", key).unwrap_err();
            assert!(matches!(e, DataError::Io(_)), "{key}: {e:?}");
            assert!(e.to_string().contains("location l"), "{e}");
        }
        for key in [".cloudmux-versions/b/k/v", ".cloudmux-versions/"] {
            assert_eq!(
                shared.target_name("l", "b", key).unwrap(),
                format!("b/{key}")
            );
            let e = matched.target_name("l", "b", key).unwrap_err();
            assert!(
                e.to_string().contains("reserved versions prefix"),
                "{key}: {e}"
            );
        }
        for key in [
            ".cloudmux-stagingx",
            ".cloudmux/keys/x",
            "a/.cloudmux-staging/x",
            ".cloudmux-versionsx",
            "a/.cloudmux-versions/x",
        ] {
            assert_eq!(matched.target_name("l", "b", key).unwrap(), key);
        }
    }

    #[test]
    fn versions_share_one_prefix_in_both_modes() {
        let v = "0123456789abcdef0123456789abcdef";
        let shared = CloudOptions::default();
        let matched = CloudOptions {
            bucket_match: true,
            ..CloudOptions::default()
        };
        assert_eq!(
            shared.version_name("b", "a/k", v),
            format!(".cloudmux-versions/b/a/k/{v}")
        );
        assert_eq!(
            matched.version_name("b", "a/k", v),
            format!(".cloudmux-versions/a/k/{v}")
        );
        assert_eq!(
            matched.version_name("b", "a/", "null.0123456789abcdef"),
            ".cloudmux-versions/a//null.0123456789abcdef"
        );
        assert!(!is_staging_name(&shared.version_name("b", "k", v)));
        assert!(STAGING_PREFIXES
            .iter()
            .all(|p| !VERSIONS_PREFIX.starts_with(p) && !p.starts_with(VERSIONS_PREFIX)));
    }

    #[test]
    fn staging_names_of_every_prefix_are_recognised() {
        let n = staging_name();
        assert!(n.starts_with(STAGING_PREFIX));
        assert!(is_staging_name(&n));
        check_staging_name(&n).unwrap();
        let legacy = format!(".cloudmux/tmp/{}", uuid::Uuid::new_v4().hyphenated());
        assert!(is_staging_name(&legacy));
        for bad in [
            "",
            STAGING_PREFIX,
            "b/.cloudmux-staging/0123456789abcdef0123456789abcdef",
            ".cloudmux-staging/0123456789abcdef0123456789abcdeF",
            ".cloudmux-staging/0123456789abcdef0123456789abcdef0",
            ".cloudmux-staging/../0123456789abcdef0123456789abcd",
            ".cloudmux-staging/01234567-89ab-cdef-0123-456789abcdef",
            ".cloudmux/tmp/0123456789abcdef0123456789abcdef",
            ".cloudmux/tmp/01234567-89ab-cdef-0123-456789abcdeF",
            ".cloudmux/tmp/../x",
            ".cloudmux/tmp/not-a-staged-id",
            "b/key",
        ] {
            assert!(!is_staging_name(bad), "{bad}");
            assert!(matches!(
                check_staging_name(bad),
                Err(DataError::NotFound(_))
            ));
        }
    }

    #[test]
    fn answers_are_classified() {
        let c = |status, code| classify("loc", "op", status, code, "");
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(matches!(c(s, None), DataError::Unavailable(_)), "{s}");
            assert!(is_transient(s));
        }
        assert!(!is_transient(501));
        assert!(matches!(c(501, None), DataError::Io(_)));
        for s in [401, 403] {
            match c(s, Some("InvalidAccessKeyId")) {
                DataError::Misconfigured { location, message } => {
                    assert_eq!(location, "loc");
                    assert_eq!(message, format!("op: HTTP {s} InvalidAccessKeyId"));
                    let e = classify("loc", "op", s, None, " denied ");
                    assert_eq!(
                        e.to_string(),
                        format!("location loc: configuration error: op: HTTP {s} denied")
                    );
                }
                e => panic!("{s}: {e:?}"),
            }
        }
        assert!(
            matches!(c(404, Some("NoSuchKey")), DataError::NotFound(m) if m.contains("location loc"))
        );
        assert!(matches!(
            c(404, Some("NoSuchBucket")),
            DataError::Unavailable(_)
        ));
        assert!(matches!(
            c(404, Some("ContainerNotFound")),
            DataError::Unavailable(_)
        ));
        assert!(matches!(c(412, None), DataError::Stale(_)));
        assert!(matches!(c(400, None), DataError::Io(_)));
        assert!(matches!(c(409, None), DataError::Io(_)));
        assert!(matches!(
            container_call::<()>(Err(c(404, None))),
            Err(DataError::Unavailable(_))
        ));
        assert!(matches!(
            container_call::<()>(Err(c(403, None))),
            Err(DataError::Misconfigured { .. })
        ));
    }
}
