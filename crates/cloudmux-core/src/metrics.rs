//! Operational metrics: request counts and latencies (recorded by the front
//! end), per-location backend latencies and errors (recorded by
//! [`InstrumentedBackend`], which wraps every location), and per-bucket object
//! counts and bytes (Utapi's storage figures).
//!
//! Everything lives in memory and costs a few atomic operations per request:
//! no metric ever writes to the metadata store. The per-bucket figures are
//! seeded by one scan of the object records at startup
//! ([`crate::Gateway::load_usage`]) and then updated by every object commit and
//! delete, so they are exact for a single process as long as nothing else
//! writes the same metadata store. [`Metrics::render`] produces the OpenMetrics
//! text format that Prometheus scrapes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudmux_data::{
    Backend, BodyStream, ByteRange, DataError, DataRef, ObjectPath, Piece, Result as DataResult,
    Staged, StagedEntry,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

/// Labels of per-operation series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// Labels of per-location backend series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    location: String,
    operation: &'static str,
}

/// Labels of per-location health series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LocationLabels {
    location: String,
}

/// Labels of the garbage collection counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GcLabels {
    kind: &'static str,
}

/// Labels of per-bucket storage series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BucketLabels {
    bucket: String,
}

/// Latency buckets: 0.5 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metrics of one cloudmux process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<OperationLabels, Histogram, fn() -> Histogram>,
    received_bytes: Family<OperationLabels, Counter>,
    sent_bytes: Family<OperationLabels, Counter>,
    backend_seconds: Family<BackendLabels, Histogram, fn() -> Histogram>,
    backend_errors: Family<BackendLabels, Counter>,
    bucket_objects: Family<BucketLabels, Gauge>,
    bucket_bytes: Family<BucketLabels, Gauge>,
    /// Whether per-bucket series are kept (`[metrics] per_bucket`).
    per_bucket: std::sync::atomic::AtomicBool,
    location_up: Family<LocationLabels, Gauge>,
    gc_removed: Family<GcLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty set of metrics, registered under the `cloudmux_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cloudmux");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let received_bytes = Family::<OperationLabels, Counter>::default();
        let sent_bytes = Family::<OperationLabels, Counter>::default();
        let backend_seconds =
            Family::<BackendLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let backend_errors = Family::<BackendLabels, Counter>::default();
        let bucket_objects = Family::<BucketLabels, Gauge>::default();
        let bucket_bytes = Family::<BucketLabels, Gauge>::default();
        let location_up = Family::<LocationLabels, Gauge>::default();
        let gc_removed = Family::<GcLabels, Counter>::default();
        registry.register(
            "gc_removed",
            "Garbage removed by the sweeps: staged leftovers (\"staged\") and part records whose upload is gone (\"part\")",
            gc_removed.clone(),
        );
        registry.register(
            "location_up",
            "1 when the location answered its last background probe, else 0",
            location_up.clone(),
        );
        registry.register(
            "requests",
            "S3 requests answered, by operation and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request headers to response headers, by operation",
            request_seconds.clone(),
        );
        registry.register(
            "received_bytes",
            "Request body bytes received (declared Content-Length), by operation",
            received_bytes.clone(),
        );
        registry.register(
            "sent_bytes",
            "Response body bytes sent (Content-Length of the response), by operation",
            sent_bytes.clone(),
        );
        registry.register(
            "backend_duration_seconds",
            "Latency of data backend calls, by location and backend operation",
            backend_seconds.clone(),
        );
        registry.register(
            "backend_errors",
            "Failed data backend calls, by location and backend operation",
            backend_errors.clone(),
        );
        registry.register(
            "bucket_objects",
            "Objects stored in a bucket",
            bucket_objects.clone(),
        );
        registry.register(
            "bucket_bytes",
            "Bytes of object data stored in a bucket",
            bucket_bytes.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            received_bytes,
            sent_bytes,
            backend_seconds,
            backend_errors,
            bucket_objects,
            bucket_bytes,
            per_bucket: std::sync::atomic::AtomicBool::new(true),
            location_up,
            gc_removed,
        }
    }

    /// Counts garbage removed by a sweep (`kind`: `staged` or `part`).
    pub fn gc_removed(&self, kind: &'static str, n: u64) {
        self.gc_removed.get_or_create(&GcLabels { kind }).inc_by(n);
    }

    /// Records the result of a location's health probe.
    pub fn set_location_up(&self, location: &str, up: bool) {
        self.location_up
            .get_or_create(&LocationLabels {
                location: location.to_owned(),
            })
            .set(i64::from(up));
    }

    /// Records one answered request.
    pub fn record_request(
        &self,
        operation: &'static str,
        status: u16,
        elapsed: Duration,
        received: u64,
        sent: u64,
    ) {
        self.requests
            .get_or_create(&RequestLabels { operation, status })
            .inc();
        let op = OperationLabels { operation };
        self.request_seconds
            .get_or_create(&op)
            .observe(elapsed.as_secs_f64());
        if received > 0 {
            self.received_bytes.get_or_create(&op).inc_by(received);
        }
        if sent > 0 {
            self.sent_bytes.get_or_create(&op).inc_by(sent);
        }
    }

    fn record_backend(
        &self,
        location: &str,
        operation: &'static str,
        elapsed: Duration,
        failed: bool,
    ) {
        let labels = BackendLabels {
            location: location.to_owned(),
            operation,
        };
        self.backend_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if failed {
            self.backend_errors.get_or_create(&labels).inc();
        }
    }

    /// Turns the per-bucket storage series on or off (`[metrics] per_bucket`;
    /// on by default). Turned off, no series names a bucket, so bucket names
    /// never reach a scrape; call it before `Gateway::load_usage`.
    pub fn set_per_bucket(&self, on: bool) {
        self.per_bucket
            .store(on, std::sync::atomic::Ordering::Relaxed);
        if !on {
            self.bucket_objects.clear();
            self.bucket_bytes.clear();
        }
    }

    fn per_bucket(&self) -> bool {
        self.per_bucket.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes a bucket's storage series exist (at zero) when it is created.
    pub(crate) fn bucket_created(&self, bucket: &str) {
        if !self.per_bucket() {
            return;
        }
        let labels = BucketLabels {
            bucket: bucket.to_owned(),
        };
        let _ = self.bucket_objects.get_or_create(&labels);
        let _ = self.bucket_bytes.get_or_create(&labels);
    }

    /// Drops a deleted bucket's storage series.
    pub(crate) fn bucket_removed(&self, bucket: &str) {
        let labels = BucketLabels {
            bucket: bucket.to_owned(),
        };
        self.bucket_objects.remove(&labels);
        self.bucket_bytes.remove(&labels);
    }

    /// Accounts for a committed object write: `replaced` is the size of the
    /// object it replaced, if any.
    pub(crate) fn object_written(&self, bucket: &str, replaced: Option<u64>, size: u64) {
        if !self.per_bucket() {
            return;
        }
        let labels = BucketLabels {
            bucket: bucket.to_owned(),
        };
        if replaced.is_none() {
            self.bucket_objects.get_or_create(&labels).inc();
        }
        let delta = size as i64 - replaced.unwrap_or(0) as i64;
        self.bucket_bytes.get_or_create(&labels).inc_by(delta);
    }

    /// Accounts for a committed object delete.
    pub(crate) fn object_removed(&self, bucket: &str, size: u64) {
        if !self.per_bucket() {
            return;
        }
        let labels = BucketLabels {
            bucket: bucket.to_owned(),
        };
        self.bucket_objects.get_or_create(&labels).dec();
        self.bucket_bytes.get_or_create(&labels).dec_by(size as i64);
    }

    /// Sets a bucket's figures (the startup scan).
    pub(crate) fn set_bucket_usage(&self, bucket: &str, objects: u64, bytes: u64) {
        if !self.per_bucket() {
            return;
        }
        let labels = BucketLabels {
            bucket: bucket.to_owned(),
        };
        self.bucket_objects
            .get_or_create(&labels)
            .set(objects as i64);
        self.bucket_bytes.get_or_create(&labels).set(bytes as i64);
    }

    /// The OpenMetrics text exposition of every metric (served at `/metrics`).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A location's backend with every call timed and failures counted under the
/// location's name. Body-stream errors (the client's fault) are not counted as
/// backend failures. For `read`, the latency is the time to open the stream.
pub struct InstrumentedBackend {
    inner: Arc<dyn Backend>,
    location: String,
    metrics: Arc<Metrics>,
}

impl InstrumentedBackend {
    /// Wraps `inner`, the backend of location `location`.
    pub fn new(inner: Arc<dyn Backend>, location: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            location: location.to_owned(),
            metrics,
        }
    }

    fn done<T>(&self, op: &'static str, start: Instant, r: &DataResult<T>) {
        let failed = matches!(r, Err(e) if !matches!(e, DataError::Body(_)));
        self.metrics
            .record_backend(&self.location, op, start.elapsed(), failed);
    }
}

#[async_trait::async_trait]
impl Backend for InstrumentedBackend {
    fn publish_grace(&self) -> std::time::Duration {
        self.inner.publish_grace()
    }

    fn encrypts_at_rest(&self) -> bool {
        self.inner.encrypts_at_rest()
    }

    async fn stage(&self, body: BodyStream) -> DataResult<Staged> {
        let start = Instant::now();
        let r = self.inner.stage(body).await;
        self.done("stage", start, &r);
        r
    }

    async fn persist(&self, staged: &Staged) -> DataResult<()> {
        let start = Instant::now();
        let r = self.inner.persist(staged).await;
        self.done("persist", start, &r);
        r
    }

    async fn publish(&self, staged: Staged, target: ObjectPath<'_>) -> DataResult<DataRef> {
        let start = Instant::now();
        let r = self.inner.publish(staged, target).await;
        self.done("publish", start, &r);
        r
    }

    async fn staged_ref(
        &self,
        staged: &Staged,
        target: ObjectPath<'_>,
    ) -> DataResult<Option<DataRef>> {
        let start = Instant::now();
        let r = self.inner.staged_ref(staged, target).await;
        self.done("staged_ref", start, &r);
        r
    }

    async fn keep_version(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> DataResult<DataRef> {
        let start = Instant::now();
        let r = self.inner.keep_version(data, target, version).await;
        self.done("keep_version", start, &r);
        r
    }

    async fn keep_version_unsynced(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> DataResult<DataRef> {
        let start = Instant::now();
        let r = self
            .inner
            .keep_version_unsynced(data, target, version)
            .await;
        self.done("keep_version", start, &r);
        r
    }

    async fn locate_version(
        &self,
        target: ObjectPath<'_>,
        version: &str,
    ) -> DataResult<Option<DataRef>> {
        let start = Instant::now();
        let r = self.inner.locate_version(target, version).await;
        self.done("locate_version", start, &r);
        r
    }

    async fn place(&self, staged: Staged, target: ObjectPath<'_>) -> DataResult<DataRef> {
        let start = Instant::now();
        let r = self.inner.place(staged, target).await;
        self.done("place", start, &r);
        r
    }

    async fn discard(&self, staged: &Staged) -> DataResult<()> {
        let start = Instant::now();
        let r = self.inner.discard(staged).await;
        self.done("discard", start, &r);
        r
    }

    async fn read(&self, data: &DataRef, range: Option<ByteRange>) -> DataResult<BodyStream> {
        let start = Instant::now();
        let r = self.inner.read(data, range).await;
        self.done("read", start, &r);
        r
    }

    async fn read_staged(
        &self,
        staged: &Staged,
        range: Option<ByteRange>,
    ) -> DataResult<BodyStream> {
        let start = Instant::now();
        let r = self.inner.read_staged(staged, range).await;
        self.done("read_staged", start, &r);
        r
    }

    async fn delete(&self, data: &DataRef) -> DataResult<()> {
        let start = Instant::now();
        let r = self.inner.delete(data).await;
        self.done("delete", start, &r);
        r
    }

    async fn assemble(&self, pieces: Vec<Piece>) -> DataResult<Staged> {
        let start = Instant::now();
        let r = self.inner.assemble(pieces).await;
        self.done("assemble", start, &r);
        r
    }

    async fn locate(&self, target: ObjectPath<'_>, staged: &Staged) -> DataResult<Option<DataRef>> {
        let start = Instant::now();
        let r = self.inner.locate(target, staged).await;
        self.done("locate", start, &r);
        r
    }

    async fn create_bucket(&self, bucket: &str) -> DataResult<()> {
        let start = Instant::now();
        let r = self.inner.create_bucket(bucket).await;
        self.done("create_bucket", start, &r);
        r
    }

    async fn remove_bucket(&self, bucket: &str) -> DataResult<()> {
        let start = Instant::now();
        let r = self.inner.remove_bucket(bucket).await;
        self.done("remove_bucket", start, &r);
        r
    }

    async fn list_staged(&self) -> DataResult<Vec<StagedEntry>> {
        let start = Instant::now();
        let r = self.inner.list_staged().await;
        self.done("list_staged", start, &r);
        r
    }

    async fn probe(&self) -> DataResult<()> {
        let start = Instant::now();
        let r = self.inner.probe().await;
        self.done("probe", start, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_the_series_after_recording() {
        let m = Metrics::new();
        m.record_request("PutObject", 200, Duration::from_millis(3), 10, 0);
        m.object_written("b", None, 10);
        m.object_written("b", Some(10), 4);
        m.object_written("b", None, 6);
        m.object_removed("b", 4);
        m.record_backend("local", "stage", Duration::from_millis(1), true);
        let text = m.render();
        assert!(
            text.contains("cloudmux_requests_total{operation=\"PutObject\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("cloudmux_received_bytes_total{operation=\"PutObject\"} 10"));
        assert!(
            text.contains("cloudmux_bucket_objects{bucket=\"b\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cloudmux_bucket_bytes{bucket=\"b\"} 6"),
            "{text}"
        );
        assert!(text
            .contains("cloudmux_backend_errors_total{location=\"local\",operation=\"stage\"} 1"));
        assert!(text.contains("cloudmux_request_duration_seconds_bucket"));
        m.bucket_removed("b");
        assert!(!m.render().contains("bucket=\"b\""));
    }
}
