//! The workloads, their untimed setup, and the timed closed-loop run.
//!
//! Each workload runs `concurrency` tasks (one for the 256 MiB workloads)
//! that issue requests back to back until the duration is up. A request's
//! latency runs from sending it to having read its whole response body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::body::Payload;
use crate::client::{Endpoint, S3Client};
use crate::rss::RssSampler;
use crate::sigv4::{EMPTY_SHA256, UNSIGNED_PAYLOAD};
use crate::worker::{worker, Shared};

pub(crate) const MIB: u64 = 1 << 20;
/// How long requests may run past the end of a workload before they count
/// as failed (and how long one populating PUT may take).
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// One kind of request stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// PutObject of new 4 KiB objects.
    Put4k,
    /// GetObject of 4 KiB objects (256 of them, read at random).
    Get4k,
    /// PutObject of new 1 MiB objects.
    Put1m,
    /// GetObject of 1 MiB objects (64 of them, read at random).
    Get1m,
    /// PutObject of one 256 MiB object at a time (concurrency 1).
    Put256m,
    /// GetObject of one 256 MiB object (concurrency 1).
    Get256m,
    /// HeadObject of the 4 KiB objects.
    Head,
    /// ListObjectsV2 pages of 1,000 keys, walking a large bucket.
    List,
    /// PutObject over one of 64 existing 4 KiB objects, chosen at random.
    Over4k,
    /// PutObject over one of 64 existing 1 MiB objects, chosen at random.
    Over1m,
    /// ListObjectVersions pages of 1,000 versions, walking the list bucket
    /// with key and version-id markers.
    ListVer,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 11] = [
        Workload::Put4k,
        Workload::Over4k,
        Workload::Get4k,
        Workload::Put1m,
        Workload::Over1m,
        Workload::Get1m,
        Workload::Put256m,
        Workload::Get256m,
        Workload::Head,
        Workload::List,
        Workload::ListVer,
    ];

    /// What `all` means: the side-by-side set of `benches/run.sh` (the
    /// overwrite and version-listing workloads are for
    /// `benches/versioning/run.sh`; name them to run them).
    pub const DEFAULT: [Workload; 8] = [
        Workload::Put4k,
        Workload::Get4k,
        Workload::Put1m,
        Workload::Get1m,
        Workload::Put256m,
        Workload::Get256m,
        Workload::Head,
        Workload::List,
    ];

    /// The command-line and report name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put4k => "put4k",
            Workload::Get4k => "get4k",
            Workload::Put1m => "put1m",
            Workload::Get1m => "get1m",
            Workload::Put256m => "put256m",
            Workload::Get256m => "get256m",
            Workload::Head => "head",
            Workload::List => "list",
            Workload::Over4k => "over4k",
            Workload::Over1m => "over1m",
            Workload::ListVer => "listver",
        }
    }

    /// Parses `all` or a comma-separated list of names.
    pub fn parse_list(s: &str) -> Result<Vec<Workload>, String> {
        if s == "all" {
            return Ok(Self::DEFAULT.to_vec());
        }
        s.split(',')
            .map(|n| {
                Self::ALL
                    .into_iter()
                    .find(|w| w.name() == n.trim())
                    .ok_or_else(|| format!("unknown workload {n:?} (try all, put4k, get4k, put1m, get1m, put256m, get256m, head, list, over4k, over1m, listver)"))
            })
            .collect()
    }

    /// Object size moved by one request.
    pub(crate) fn size(self) -> u64 {
        match self {
            Workload::Put4k | Workload::Get4k | Workload::Head | Workload::Over4k => 4096,
            Workload::Put1m | Workload::Get1m | Workload::Over1m => MIB,
            Workload::Put256m | Workload::Get256m => 256 * MIB,
            Workload::List | Workload::ListVer => 0,
        }
    }

    /// The workload whose pre-populated objects this one reads or
    /// overwrites, and how many.
    pub(crate) fn source(self) -> Option<(Workload, usize)> {
        match self {
            Workload::Get4k | Workload::Head => Some((Workload::Get4k, 256)),
            Workload::Get1m => Some((Workload::Get1m, 64)),
            Workload::Get256m => Some((Workload::Get256m, 1)),
            Workload::Over4k => Some((Workload::Over4k, 64)),
            Workload::Over1m => Some((Workload::Over1m, 64)),
            _ => None,
        }
    }

    /// Whether this workload reads the list bucket.
    pub(crate) fn lists(self) -> bool {
        matches!(self, Workload::List | Workload::ListVer)
    }
}

/// How the load is run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Concurrent requests (connections) for all but the 256 MiB workloads.
    pub concurrency: usize,
    /// Timed length of each workload.
    pub duration: Duration,
    /// The bucket for object workloads; the list bucket is `<bucket>-list`.
    pub bucket: String,
    /// The `LocationConstraint` both buckets are created with (cloudmux:
    /// the location's name); `None` sends none.
    pub location: Option<String>,
    /// Enable versioning on both buckets (PutBucketVersioning) after
    /// creating them.
    pub versioning: bool,
    /// Keys to create in the list bucket.
    pub list_keys: usize,
    /// How many times each list-bucket key is written while populating
    /// (in passes over all keys): on a versioned bucket each write is a
    /// version, on an unversioned one the last write replaces the others.
    pub list_writes: usize,
    /// Concurrency while populating.
    pub populate_concurrency: usize,
    /// Time allowed for populating the list bucket; the run lists what exists.
    pub populate_timeout: Duration,
    /// The list bucket already holds `k000000`.. (created on disk before a
    /// directory-backed server started): skip populating it.
    pub list_seeded: bool,
    /// An earlier run with the same buckets and key counts populated every
    /// object the workloads read or overwrite and the list bucket: skip all
    /// populating.
    pub prepared: bool,
    /// Send the body's SHA-256 (pre-computed) instead of `UNSIGNED-PAYLOAD`.
    pub signed_payload: bool,
    /// Server process whose peak RSS is sampled.
    pub pid: Option<u32>,
}

/// The measurements of one workload against one server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// Workload name.
    pub workload: String,
    /// Concurrent requests.
    pub concurrency: usize,
    /// Wall time of the timed phase.
    pub seconds: f64,
    /// Successful requests.
    pub ops: u64,
    /// Failed requests (transport errors, unexpected status or length).
    pub errors: u64,
    /// Successful requests per second.
    pub ops_per_s: f64,
    /// Payload MiB per second (object bytes; XML bytes for list; 0 for head).
    pub mib_per_s: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Largest latency.
    pub max_ms: f64,
    /// Peak server RSS during the timed phase, when `--pid` was given.
    pub peak_rss_mib: Option<f64>,
    /// Untimed setup (populating objects) before this workload.
    pub setup_seconds: f64,
    /// Remarks (e.g. how many keys the list bucket reached).
    pub note: Option<String>,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

/// The name of pre-populated object `i` of read workload `w`.
pub(crate) fn source_key(w: Workload, i: usize) -> String {
    format!("{}/{i:05}", w.name())
}

/// The name of key `i` of the list bucket.
pub(crate) fn list_key(i: usize) -> String {
    format!("k{i:06}")
}

/// A load generator bound to one endpoint.
pub struct Bench {
    client: Arc<S3Client>,
    payload: Payload,
    cfg: LoadConfig,
    populated: Vec<Workload>,
    list_keys: Option<(usize, String)>,
    /// Part of every new key's name, different in every run, so that a run
    /// against buckets an earlier run wrote to still writes new keys.
    run_tag: String,
}

impl Bench {
    /// Connects to `ep` and creates the two buckets (in `cfg.location`,
    /// versioned when `cfg.versioning`), retrying for up to 30 s while the
    /// server is still starting.
    pub async fn new(ep: &Endpoint, cfg: LoadConfig) -> Result<Self, String> {
        let client = S3Client::new(ep, cfg.concurrency.max(cfg.populate_concurrency))?;
        let list = format!("{}-list", cfg.bucket);
        for bucket in [&cfg.bucket, &list] {
            let give_up = Instant::now() + Duration::from_secs(30);
            loop {
                let create = client.create_bucket_in(bucket, cfg.location.as_deref());
                let r = tokio::time::timeout(GRACE, create).await;
                match r.unwrap_or_else(|_| Err("no answer".into())) {
                    Ok(()) => break,
                    Err(e) if Instant::now() >= give_up => {
                        return Err(format!("CreateBucket {bucket}: {e}"))
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
            if cfg.versioning {
                tokio::time::timeout(GRACE, client.enable_versioning(bucket))
                    .await
                    .unwrap_or_else(|_| Err("no answer".into()))
                    .map_err(|e| format!("PutBucketVersioning {bucket}: {e}"))?;
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Bench {
            client: Arc::new(client),
            payload: Payload::random(MIB as usize),
            cfg,
            populated: Vec::new(),
            list_keys: None,
            run_tag: format!("{:x}", now.as_micros()),
        })
    }

    fn payload_hash(&self, size: u64) -> String {
        match (size, self.cfg.signed_payload) {
            (0, _) => EMPTY_SHA256.to_owned(),
            (_, true) => self.payload.sha256_hex(size),
            (_, false) => UNSIGNED_PAYLOAD.to_owned(),
        }
    }

    /// PUTs keys `0..count` (named by `key`) of `size` bytes with `conc`
    /// tasks until done or `deadline`; returns how many were stored.
    async fn populate(
        &self,
        bucket: &str,
        count: usize,
        size: u64,
        key: impl Fn(usize) -> String + Clone + Send + 'static,
        deadline: Option<Instant>,
    ) -> Result<usize, String> {
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let hash: Arc<str> = self.payload_hash(size).into();
        let tasks: Vec<_> = (0..self.cfg.populate_concurrency.min(count).max(1))
            .map(|_| {
                let (client, payload, next, done, hash, key) = (
                    self.client.clone(),
                    self.payload.clone(),
                    next.clone(),
                    done.clone(),
                    hash.clone(),
                    key.clone(),
                );
                let bucket = bucket.to_owned();
                tokio::spawn(async move {
                    loop {
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            return Ok(());
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return Ok(());
                        }
                        let name = key(i);
                        // Setup is untimed: a PUT that fails is retried a
                        // few times (rclone races creating a directory).
                        let mut tries = 0;
                        loop {
                            let put = client.put(&bucket, &name, payload.body(size), &hash);
                            let r = tokio::time::timeout(GRACE, put).await.map_err(|_| {
                                format!("PUT {name}: no answer in {} s", GRACE.as_secs())
                            });
                            match r.and_then(|r| r) {
                                Ok(_) => break,
                                Err(e) if tries >= 4 => return Err(e),
                                Err(_) => tries += 1,
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut first_err = None;
        for t in tasks {
            if let Err(e) = t.await.map_err(|e| e.to_string()).and_then(|r| r) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(done.load(Ordering::Relaxed)),
        }
    }

    /// Untimed preparation for `w`; returns a note for the report.
    pub async fn setup(&mut self, w: Workload) -> Result<Option<String>, String> {
        if let Some((src, count)) = w.source() {
            if !self.populated.contains(&src) {
                if !self.cfg.prepared {
                    let bucket = self.cfg.bucket.clone();
                    let key = move |i| source_key(src, i);
                    self.populate(&bucket, count, src.size(), key, None).await?;
                }
                self.populated.push(src);
            }
        }
        if w.lists() && self.list_keys.is_none() && self.cfg.list_seeded {
            let n = self.cfg.list_keys;
            let note = format!("list bucket: {n} keys seeded as files before the server started");
            self.list_keys = Some((n, note));
        }
        if w.lists() && self.list_keys.is_none() && self.cfg.prepared {
            let (n, v) = (self.cfg.list_keys, self.cfg.list_writes.max(1));
            let note = format!("list bucket: {n} keys written {v} times by an earlier run");
            self.list_keys = Some((n, note));
        }
        if w.lists() && self.list_keys.is_none() {
            let t = Instant::now();
            let bucket = format!("{}-list", self.cfg.bucket);
            let deadline = Some(t + self.cfg.populate_timeout);
            let keys = self.cfg.list_keys;
            let passes = self.cfg.list_writes.max(1);
            // Pass after pass over every key: two writes of one key are
            // `keys` writes apart, so never in flight together.
            let key = move |i| list_key(i % keys.max(1));
            let writes = self
                .populate(&bucket, keys * passes, 0, key, deadline)
                .await?;
            let n = writes.min(keys);
            let secs = t.elapsed().as_secs_f64();
            let note = match (n < keys, passes) {
                (true, _) => format!("list bucket reached {n} of {keys} keys in {secs:.0} s"),
                (false, 1) => format!("list bucket: {n} keys created in {secs:.0} s"),
                (false, _) => format!(
                    "list bucket: {n} keys, {writes} of {} writes ({passes} per key) in {secs:.0} s",
                    keys * passes
                ),
            };
            self.list_keys = Some((n, note));
        }
        Ok(match w {
            Workload::List | Workload::ListVer => self.list_keys.as_ref().map(|(_, n)| n.clone()),
            _ => None,
        })
    }

    /// Sets up and measures one workload. Setup failures are reported in
    /// the result (no ops, one error), so a run goes on.
    pub async fn run(&mut self, w: Workload) -> WorkloadResult {
        let t = Instant::now();
        let mut res = WorkloadResult {
            workload: w.name().to_owned(),
            ..Default::default()
        };
        match self.setup(w).await {
            Ok(note) => res.note = note,
            Err(e) => {
                res.errors = 1;
                res.first_error = Some(format!("setup: {e}"));
                res.setup_seconds = t.elapsed().as_secs_f64();
                return res;
            }
        }
        res.setup_seconds = t.elapsed().as_secs_f64();
        let conc = match w {
            Workload::Put256m | Workload::Get256m => 1,
            _ => self.cfg.concurrency,
        };
        res.concurrency = conc;
        let shared = Arc::new(Shared {
            client: self.client.clone(),
            payload: self.payload.clone(),
            bucket: self.cfg.bucket.clone(),
            hash: self.payload_hash(w.size()),
            list_keys: self.list_keys.as_ref().map_or(0, |(n, _)| *n),
            run_tag: self.run_tag.clone(),
        });
        let sampler = self.cfg.pid.map(RssSampler::start);
        let start = Instant::now();
        let deadline = start + self.cfg.duration;
        let tasks: Vec<_> = (0..conc)
            .map(|id| tokio::spawn(worker(shared.clone(), w, id, conc, deadline)))
            .collect();
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        let mut bytes = 0u64;
        for t in tasks {
            match t.await {
                Ok(s) => {
                    hist.add(&s.hist).expect("same bounds");
                    res.ops += s.ops;
                    res.errors += s.errors;
                    bytes += s.bytes;
                    if res.first_error.is_none() {
                        res.first_error = s.first_error;
                    }
                }
                Err(e) => {
                    res.errors += 1;
                    res.first_error
                        .get_or_insert(format!("worker panicked: {e}"));
                }
            }
        }
        res.seconds = start.elapsed().as_secs_f64();
        if let Some(s) = sampler {
            res.peak_rss_mib = s.finish().await;
        }
        res.ops_per_s = res.ops as f64 / res.seconds;
        res.mib_per_s = bytes as f64 / MIB as f64 / res.seconds;
        if res.ops > 0 {
            res.p50_ms = hist.value_at_quantile(0.50) as f64 / 1000.0;
            res.p99_ms = hist.value_at_quantile(0.99) as f64 / 1000.0;
            res.max_ms = hist.max() as f64 / 1000.0;
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::Workload;

    #[test]
    fn all_is_the_side_by_side_set_and_names_parse_back() {
        assert_eq!(Workload::parse_list("all").unwrap(), Workload::DEFAULT);
        for w in Workload::ALL {
            assert_eq!(Workload::parse_list(w.name()).unwrap(), [w]);
        }
        assert!(Workload::parse_list("over4k,nope").is_err());
        assert_eq!(Workload::Over1m.source(), Some((Workload::Over1m, 64)));
    }
}
