//! One task of a timed workload: requests back to back until the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::Method;

use crate::body::Payload;
use crate::client::{S3Client, VersionMarkers};
use crate::workload::{list_key, source_key, Workload, GRACE};

/// What every worker of one workload shares.
pub(crate) struct Shared {
    /// The client, with its connection pool.
    pub client: Arc<S3Client>,
    /// Body bytes.
    pub payload: Payload,
    /// The object bucket (the list bucket is `<bucket>-list`).
    pub bucket: String,
    /// `x-amz-content-sha256` of PUT bodies.
    pub hash: String,
    /// Keys in the list bucket.
    pub list_keys: usize,
    /// Part of new keys' names, different in every run.
    pub run_tag: String,
}

/// One worker's tally.
pub(crate) struct Tally {
    /// Latencies of successful requests, in microseconds.
    pub hist: Histogram<u64>,
    /// Successful requests.
    pub ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// Payload bytes moved by successful requests.
    pub bytes: u64,
    /// The first failure.
    pub first_error: Option<String>,
}

/// Runs requests of workload `w` as task `id` of `conc` until `deadline`.
pub(crate) async fn worker(
    s: Arc<Shared>,
    w: Workload,
    id: usize,
    conc: usize,
    deadline: Instant,
) -> Tally {
    let mut t = Tally {
        hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"),
        ops: 0,
        errors: 0,
        bytes: 0,
        first_error: None,
    };
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
    // The list walk starts at this worker's share of the bucket, then pages.
    let mut list_start = (s.list_keys > 0).then(|| list_key(s.list_keys * id / conc.max(1)));
    let mut token: Option<String> = None;
    let mut markers: Option<VersionMarkers> = list_start.clone().map(|key| VersionMarkers {
        key,
        version_id: None,
    });
    let mut seq = 0u64;
    while Instant::now() < deadline {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let began = Instant::now();
        let op = async {
            match w {
                Workload::Put4k | Workload::Put1m | Workload::Put256m => {
                    let key = format!("{}/{}/{id}/{seq}", w.name(), s.run_tag);
                    let body = s.payload.body(w.size());
                    s.client
                        .put(&s.bucket, &key, body, &s.hash)
                        .await
                        .map(|_| w.size())
                }
                Workload::Get4k | Workload::Get1m | Workload::Get256m | Workload::Head => {
                    let (src, n) = w.source().expect("read workloads have a source");
                    let key = source_key(src, (rng % n as u64) as usize);
                    let method = if w == Workload::Head {
                        Method::HEAD
                    } else {
                        Method::GET
                    };
                    match s.client.get(method, &s.bucket, &key).await {
                        Ok(r) if w == Workload::Head || r.bytes == w.size() => Ok(r.bytes),
                        Ok(r) => Err(format!(
                            "GET {key}: {} bytes, expected {}",
                            r.bytes,
                            w.size()
                        )),
                        Err(e) => Err(e),
                    }
                }
                Workload::Over4k | Workload::Over1m => {
                    let (src, n) = w.source().expect("overwrite workloads have a source");
                    let key = source_key(src, (rng % n as u64) as usize);
                    let body = s.payload.body(w.size());
                    s.client
                        .put(&s.bucket, &key, body, &s.hash)
                        .await
                        .map(|_| w.size())
                }
                Workload::ListVer => {
                    // Walks from this worker's share of the keys to the
                    // end, then from the start, page after page.
                    let bucket = format!("{}-list", s.bucket);
                    match s
                        .client
                        .list_versions(&bucket, markers.as_ref(), 1000)
                        .await
                    {
                        Ok(p) if p.entries == 0 && s.list_keys > 0 => {
                            Err("empty version listing page".into())
                        }
                        Ok(p) if p.next.is_some() && p.entries != 1000 => Err(format!(
                            "truncated page of {} versions, expected 1000",
                            p.entries
                        )),
                        Ok(p) => {
                            markers = p.next;
                            Ok(p.bytes)
                        }
                        Err(e) => Err(e),
                    }
                }
                Workload::List => {
                    let bucket = format!("{}-list", s.bucket);
                    let start = if token.is_none() {
                        list_start.take()
                    } else {
                        None
                    };
                    match s
                        .client
                        .list_v2(&bucket, token.as_deref(), start.as_deref(), 1000)
                        .await
                    {
                        Ok(p) if p.keys == 0 && s.list_keys > 0 => Err("empty listing page".into()),
                        Ok(p) if p.next.is_some() && p.keys != 1000 => {
                            Err(format!("truncated page of {} keys, expected 1000", p.keys))
                        }
                        Ok(p) => {
                            token = p.next;
                            Ok(p.bytes)
                        }
                        Err(e) => Err(e),
                    }
                }
            }
        };
        // A hung server must not hang the run: requests still out
        // `GRACE` after the end are abandoned as errors.
        let r = tokio::time::timeout_at((deadline + GRACE).into(), op)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {} s after the end",
                    GRACE.as_secs()
                ))
            });
        match r {
            Ok(n) => {
                let us = began.elapsed().as_micros().max(1) as u64;
                t.hist.saturating_record(us);
                t.ops += 1;
                t.bytes += if w == Workload::Head { 0 } else { n };
            }
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert(e);
                // A failing server answers fast: don't spin on it.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        seq += 1;
    }
    t
}
