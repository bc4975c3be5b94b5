//! The soak's clients: random PUT, overwrite, multipart Complete and Abort,
//! and DELETE on keys each client owns, with retries, each operation written
//! to the history when it ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use md5::Md5;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::{History, OpKind, OpRecord, Outcome, Stats};
use crate::body::RepeatBody;
use crate::client::{element, Response, S3Client};
use crate::sigv4::UNSIGNED_PAYLOAD;

/// Size of every multipart part but the last (S3's minimum).
pub(crate) const PART: usize = 5 << 20;
/// Smallest single-PUT body.
const SMALL_MIN: u64 = 1 << 10;
/// Largest single-PUT body.
const SMALL_MAX: u64 = 256 << 10;
/// Smallest completed multipart object.
const MULTI_MIN: u64 = 6 << 20;
/// Largest completed multipart object.
const MULTI_MAX: u64 = 12 << 20;
/// Operation mix, in percent: new key, overwrite, Complete, Abort; DELETE
/// takes the rest.
const MIX: [(OpKind, u32); 4] = [
    (OpKind::Put, 30),
    (OpKind::Overwrite, 36),
    (OpKind::Complete, 3),
    (OpKind::Abort, 3),
];

/// What every client shares.
pub(crate) struct Shared {
    /// The client of the cloudmux endpoint.
    pub client: Arc<S3Client>,
    /// The soak's seed.
    pub seed: u64,
    /// When the soak started (history times are relative to it).
    pub t0: Instant,
    /// When clients stop starting operations.
    pub deadline: Instant,
    /// The buckets, one per location.
    pub buckets: Vec<String>,
    /// Keys per client in each bucket.
    pub keys: usize,
    /// Where finished operations go.
    pub history: Arc<History>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// How long one request may take before the client gives up on it.
    pub attempt_timeout: Duration,
    /// How long one step (a request and its retries) may take.
    pub op_budget: Duration,
}

/// What the client believes a key holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Belief {
    Absent,
    Present,
    Unknown,
}

/// The name of key number `idx` of client `client`. A few keys end with `/`
/// (the fs location keeps them in its hashed area) and a few hold a space,
/// `+` and non-ASCII characters (URL and XML encodings on every hop).
pub(crate) fn key_name(client: usize, idx: usize) -> String {
    match idx % 12 {
        5 => format!("c{client:02}/dir{idx:03}/"),
        7 => format!("c{client:02}/sp ace+é{idx:03}"),
        _ => format!("c{client:02}/k{idx:03}"),
    }
}

/// The body of generation `gen` of `bucket/key`: `size` bytes of a
/// SplitMix64 stream seeded from the soak's seed, the bucket, the key and
/// the generation, so the checker can name it by its hash alone.
pub(crate) fn body(seed: u64, bucket: &str, key: &str, gen: u64, size: u64) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(bucket.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.update([0]);
    h.update(gen.to_le_bytes());
    let d = h.finalize();
    let mut state = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
    let mut out = Vec::with_capacity(size as usize + 8);
    while (out.len() as u64) < size {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(size as usize);
    out
}

/// The ETag S3 gives `data` uploaded with one PUT (`multipart = false`) or
/// in [`PART`]-sized parts, without quotes.
pub(crate) fn etag_of(data: &[u8], multipart: bool) -> String {
    if !multipart {
        return hex::encode(Md5::digest(data));
    }
    let mut all = Md5::new();
    let mut n = 0;
    for part in data.chunks(PART) {
        all.update(Md5::digest(part));
        n += 1;
    }
    format!("{}-{n}", hex::encode(all.finalize()))
}

/// How one answer is taken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Done,
    Retry,
    Stop,
}

/// How one step (a request and its retries) ended.
enum End {
    /// A 2xx answer the step accepts.
    Ok(Response),
    /// An answer that ends the step without success (a 4xx).
    Refused(Response),
    /// The budget ran out.
    GaveUp,
}

struct Step {
    end: End,
    /// Some attempt reached the server (anything but a refused connect).
    sent: bool,
    /// Some attempt timed out on the client's side.
    floating: bool,
    /// Some attempt before the last may have taken effect (no answer, or a
    /// 5xx).
    maybe_applied: bool,
}

/// The S3 error code of an answer, if it has one.
fn code(r: &Response) -> Option<String> {
    let body = r.body.as_deref()?;
    element(&String::from_utf8_lossy(body), "Code").map(str::to_owned)
}

fn default_verdict(r: &Response) -> Verdict {
    if r.status.is_success() {
        Verdict::Done
    } else if r.status.is_server_error()
        || r.status == StatusCode::REQUEST_TIMEOUT
        || r.status == StatusCode::TOO_MANY_REQUESTS
        || code(r).as_deref() == Some("RequestTimeout")
    {
        Verdict::Retry
    } else {
        Verdict::Stop
    }
}

/// CompleteMultipartUpload may answer 200 with an `<Error>` document.
fn complete_verdict(r: &Response) -> Verdict {
    if r.status.is_success() {
        let text = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
        if text.contains("<CompleteMultipartUploadResult") {
            Verdict::Done
        } else {
            Verdict::Retry
        }
    } else {
        default_verdict(r)
    }
}

struct Op<'a> {
    s: &'a Shared,
    log: Vec<String>,
}

impl Op<'_> {
    fn now_ms(&self) -> u64 {
        self.s.t0.elapsed().as_millis() as u64
    }

    /// Sends one request until an answer `verdict` accepts or refuses, with
    /// exponential backoff (100 ms to 2 s, jittered), for at most the
    /// operation budget.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &mut self,
        label: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: &Bytes,
        keep_body: bool,
        verdict: fn(&Response) -> Verdict,
    ) -> Step {
        let end_by = Instant::now() + self.s.op_budget;
        let mut backoff = Duration::from_millis(100);
        let mut st = Step {
            end: End::GaveUp,
            sent: false,
            floating: false,
            maybe_applied: false,
        };
        loop {
            let t = self.now_ms();
            self.s.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let sent = tokio::time::timeout(
                self.s.attempt_timeout,
                self.s.client.send(
                    method.clone(),
                    path,
                    query,
                    RepeatBody::bytes(body.clone()),
                    UNSIGNED_PAYLOAD,
                    keep_body,
                ),
            )
            .await;
            let mut applied_here = false;
            match sent {
                Ok(Ok(r)) => {
                    st.sent = true;
                    let v = verdict(&r);
                    let c = code(&r).map(|c| format!(" {c}")).unwrap_or_default();
                    self.log
                        .push(format!("{label}@{t}:{}{c}", r.status.as_u16()));
                    match v {
                        Verdict::Done => {
                            st.end = End::Ok(r);
                            return st;
                        }
                        Verdict::Stop => {
                            self.s.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                            st.end = End::Refused(r);
                            return st;
                        }
                        Verdict::Retry => applied_here = true,
                    }
                }
                Ok(Err(e)) => {
                    // hyper's legacy client says "client error (Connect)"
                    // when no connection could be made: nothing was sent.
                    if e.contains("(Connect)") {
                        self.log.push(format!("{label}@{t}:refused"));
                    } else {
                        st.sent = true;
                        applied_here = true;
                        let short: String = e.chars().take(80).collect();
                        self.log.push(format!("{label}@{t}:error {short}"));
                    }
                }
                Err(_) => {
                    st.sent = true;
                    st.floating = true;
                    applied_here = true;
                    self.s.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    self.log.push(format!("{label}@{t}:timeout"));
                }
            }
            self.s.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            st.maybe_applied |= applied_here;
            if Instant::now() + backoff > end_by {
                return st;
            }
            let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
            tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// One operation's plan.
struct Plan {
    client: usize,
    seq: u64,
    op: OpKind,
    bucket: String,
    key: String,
    gen: u64,
    size: u64,
}

impl Plan {
    fn record(&self, op: &Op<'_>, t_start_ms: u64) -> OpRecord {
        OpRecord {
            client: self.client,
            seq: self.seq,
            op: self.op,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            gen: self.gen,
            size: self.size,
            sha256: None,
            etag: None,
            upload_id: None,
            outcome: Outcome::NotSent,
            floating: false,
            t_start_ms,
            t_end_ms: op.now_ms(),
            attempts: op.log.clone(),
            anomaly: None,
        }
    }
}

/// Runs client `id` until the deadline.
pub(crate) async fn client(s: Arc<Shared>, id: usize) {
    let mut rng =
        StdRng::seed_from_u64(s.seed ^ (id as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut belief = vec![vec![Belief::Absent; s.keys]; s.buckets.len()];
    let mut seq = 0u64;
    while Instant::now() < s.deadline {
        seq += 1;
        let b = rng.random_range(0..s.buckets.len());
        let roll = rng.random_range(0..100u32);
        let mut acc = 0;
        let mut kind = OpKind::Delete;
        for (k, w) in MIX {
            acc += w;
            if roll < acc {
                kind = k;
                break;
            }
        }
        let absent: Vec<usize> = (0..s.keys)
            .filter(|i| belief[b][*i] == Belief::Absent)
            .collect();
        let present: Vec<usize> = (0..s.keys)
            .filter(|i| belief[b][*i] != Belief::Absent)
            .collect();
        // A new key when none is absent becomes an overwrite, and an
        // overwrite or delete when none is present becomes a new key.
        kind = match kind {
            OpKind::Put if absent.is_empty() => OpKind::Overwrite,
            OpKind::Overwrite | OpKind::Delete if present.is_empty() => OpKind::Put,
            k => k,
        };
        let idx = match kind {
            OpKind::Put => absent[rng.random_range(0..absent.len())],
            OpKind::Overwrite | OpKind::Delete => present[rng.random_range(0..present.len())],
            _ => rng.random_range(0..s.keys),
        };
        let size = match kind {
            OpKind::Put | OpKind::Overwrite => log_uniform(&mut rng, SMALL_MIN, SMALL_MAX),
            OpKind::Complete => rng.random_range(MULTI_MIN..=MULTI_MAX),
            // An aborted upload's parts: mostly small, sometimes a whole
            // 5 MiB part and a small one.
            OpKind::Abort if rng.random_range(0..3) == 0 => {
                PART as u64 + log_uniform(&mut rng, SMALL_MIN, SMALL_MAX)
            }
            OpKind::Abort => log_uniform(&mut rng, SMALL_MIN, SMALL_MAX),
            _ => 0,
        };
        let plan = Plan {
            client: id,
            seq,
            op: kind,
            bucket: s.buckets[b].clone(),
            key: key_name(id, idx),
            gen: seq,
            size,
        };
        let rec = match kind {
            OpKind::Put | OpKind::Overwrite => put(&s, &plan).await,
            OpKind::Delete => delete(&s, &plan).await,
            OpKind::Complete => complete(&s, &plan).await,
            _ => abort(&s, &plan).await,
        };
        let slot = &mut belief[b][idx];
        match (kind, rec.outcome) {
            (_, Outcome::NotSent) | (OpKind::Abort, _) => {}
            (OpKind::Delete, Outcome::Ack) => *slot = Belief::Absent,
            (_, Outcome::Ack) => *slot = Belief::Present,
            (_, Outcome::Uncertain) => *slot = Belief::Unknown,
        }
        s.stats.count(&rec);
        s.history.append(&rec);
    }
}

fn log_uniform(rng: &mut StdRng, min: u64, max: u64) -> u64 {
    let (lo, hi) = ((min as f64).ln(), (max as f64).ln());
    (rng.random_range(lo..=hi).exp() as u64).clamp(min, max)
}

fn outcome_of(st: &Step) -> Outcome {
    match st.end {
        End::Ok(_) => Outcome::Ack,
        _ if !st.sent => Outcome::NotSent,
        _ => Outcome::Uncertain,
    }
}

async fn put(s: &Shared, p: &Plan) -> OpRecord {
    let mut op = Op { s, log: Vec::new() };
    let t = op.now_ms();
    let data = body(s.seed, &p.bucket, &p.key, p.gen, p.size);
    let sha = hex::encode(Sha256::digest(&data));
    let etag = etag_of(&data, false);
    let data = Bytes::from(data);
    let st = op
        .step(
            "put",
            Method::PUT,
            &format!("/{}/{}", p.bucket, p.key),
            &[],
            &data,
            false,
            default_verdict,
        )
        .await;
    let mut rec = p.record(&op, t);
    rec.sha256 = Some(sha);
    rec.etag = Some(etag);
    rec.outcome = outcome_of(&st);
    rec.floating = st.floating;
    rec
}

async fn delete(s: &Shared, p: &Plan) -> OpRecord {
    let mut op = Op { s, log: Vec::new() };
    let t = op.now_ms();
    let st = op
        .step(
            "delete",
            Method::DELETE,
            &format!("/{}/{}", p.bucket, p.key),
            &[],
            &Bytes::new(),
            false,
            default_verdict,
        )
        .await;
    let mut rec = p.record(&op, t);
    rec.outcome = outcome_of(&st);
    rec.floating = st.floating;
    rec
}

/// CreateMultipartUpload: the upload id, or `None` (the record then says
/// why).
async fn create_upload(op: &mut Op<'_>, p: &Plan) -> Option<String> {
    let st = op
        .step(
            "create",
            Method::POST,
            &format!("/{}/{}", p.bucket, p.key),
            &[("uploads", "")],
            &Bytes::new(),
            true,
            default_verdict,
        )
        .await;
    match st.end {
        End::Ok(r) => {
            let text = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
            element(&text, "UploadId").map(crate::client::unescape)
        }
        _ => None,
    }
}

/// Uploads `data` as parts of [`PART`] bytes; their ETags, or what went
/// wrong (`Err(Some(anomaly))` when the acknowledged upload is gone).
async fn upload_parts(
    op: &mut Op<'_>,
    p: &Plan,
    id: &str,
    data: &Bytes,
) -> Result<Vec<String>, Option<String>> {
    let mut etags = Vec::new();
    for (i, start) in (0..data.len()).step_by(PART).enumerate() {
        let part = data.slice(start..(start + PART).min(data.len()));
        let n = (i + 1).to_string();
        let st = op
            .step(
                &format!("part{n}"),
                Method::PUT,
                &format!("/{}/{}", p.bucket, p.key),
                &[("partNumber", &n), ("uploadId", id)],
                &part,
                false,
                default_verdict,
            )
            .await;
        match st.end {
            End::Ok(r) => etags.push(
                r.headers
                    .get(http::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            End::Refused(r) if code(&r).as_deref() == Some("NoSuchUpload") => {
                return Err(Some(format!(
                    "UploadPart {n} of acknowledged upload {id}: NoSuchUpload"
                )))
            }
            _ => return Err(None),
        }
    }
    Ok(etags)
}

async fn complete(s: &Shared, p: &Plan) -> OpRecord {
    let mut op = Op { s, log: Vec::new() };
    let t = op.now_ms();
    let data = body(s.seed, &p.bucket, &p.key, p.gen, p.size);
    let sha = hex::encode(Sha256::digest(&data));
    let etag = etag_of(&data, true);
    let data = Bytes::from(data);
    let id = create_upload(&mut op, p).await;
    let mut outcome = Outcome::NotSent;
    let mut floating = false;
    let mut anomaly = None;
    if let Some(id) = &id {
        match upload_parts(&mut op, p, id, &data).await {
            Ok(etags) => {
                let mut xml = String::from("<CompleteMultipartUpload>");
                for (i, e) in etags.iter().enumerate() {
                    xml.push_str(&format!(
                        "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
                        i + 1
                    ));
                }
                xml.push_str("</CompleteMultipartUpload>");
                let st = op
                    .step(
                        "complete",
                        Method::POST,
                        &format!("/{}/{}", p.bucket, p.key),
                        &[("uploadId", id)],
                        &Bytes::from(xml),
                        true,
                        complete_verdict,
                    )
                    .await;
                floating = st.floating;
                outcome = outcome_of(&st);
                if let End::Refused(r) = &st.end {
                    if code(r).as_deref() == Some("NoSuchUpload") && !st.maybe_applied {
                        anomaly = Some(format!(
                            "CompleteMultipartUpload of acknowledged upload {id}: NoSuchUpload"
                        ));
                    }
                }
            }
            Err(a) => anomaly = a,
        }
    }
    let mut rec = p.record(&op, t);
    rec.sha256 = Some(sha);
    rec.etag = Some(etag);
    rec.upload_id = id;
    rec.outcome = outcome;
    rec.floating = floating;
    rec.anomaly = anomaly;
    rec
}

/// AbortMultipartUpload of `id` until it is gone; `Ok(true)` when an
/// earlier attempt may have done it and the service now says NoSuchUpload.
async fn abort_upload(op: &mut Op<'_>, p: &Plan, id: &str) -> (Outcome, bool, Option<String>) {
    let st = op
        .step(
            "abort",
            Method::DELETE,
            &format!("/{}/{}", p.bucket, p.key),
            &[("uploadId", id)],
            &Bytes::new(),
            false,
            default_verdict,
        )
        .await;
    match &st.end {
        End::Refused(r) if code(r).as_deref() == Some("NoSuchUpload") => {
            if st.maybe_applied {
                (Outcome::Ack, st.floating, None)
            } else {
                (
                    Outcome::Uncertain,
                    st.floating,
                    Some(format!("AbortMultipartUpload of upload {id}: NoSuchUpload")),
                )
            }
        }
        _ => (outcome_of(&st), st.floating, None),
    }
}

async fn abort(s: &Shared, p: &Plan) -> OpRecord {
    let mut op = Op { s, log: Vec::new() };
    let t = op.now_ms();
    let data = Bytes::from(body(s.seed, &p.bucket, &p.key, p.gen, p.size));
    let id = create_upload(&mut op, p).await;
    let mut outcome = Outcome::NotSent;
    let mut floating = false;
    let mut anomaly = None;
    if let Some(id) = &id {
        match upload_parts(&mut op, p, id, &data).await {
            Ok(_) => (outcome, floating, anomaly) = abort_upload(&mut op, p, id).await,
            Err(a) => anomaly = a,
        }
    }
    let mut rec = p.record(&op, t);
    rec.upload_id = id;
    rec.outcome = outcome;
    rec.floating = floating;
    rec.anomaly = anomaly;
    rec
}

/// The end-of-run Abort of an upload still open (its key is `key`).
pub(crate) async fn cleanup_abort(s: &Shared, bucket: &str, key: &str, id: &str) -> OpRecord {
    let mut op = Op { s, log: Vec::new() };
    let t = op.now_ms();
    let p = Plan {
        client: usize::MAX,
        seq: 0,
        op: OpKind::CleanupAbort,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        gen: 0,
        size: 0,
    };
    // A NoSuchUpload here is no anomaly: the upload was listed a moment ago
    // by the same server, and nothing else aborts it.
    let (outcome, floating, _) = abort_upload(&mut op, &p, id).await;
    let mut rec = p.record(&op, t);
    rec.upload_id = Some(id.to_owned());
    rec.outcome = outcome;
    rec.floating = floating;
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_deterministic_and_distinct() {
        let a = body(1, "b", "k", 1, 1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, body(1, "b", "k", 1, 1000));
        assert_ne!(a, body(1, "b", "k", 2, 1000));
        assert_ne!(a, body(2, "b", "k", 1, 1000));
        assert_eq!(&body(1, "b", "k", 1, 2000)[..1000], &a[..]);
    }

    #[test]
    fn multipart_etags_follow_s3() {
        let data = vec![7u8; PART + 10];
        let e = etag_of(&data, true);
        assert!(e.ends_with("-2"), "{e}");
        assert_eq!(etag_of(b"", false), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
