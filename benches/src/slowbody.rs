//! `cloudmux-bench slow-bodies`: does a crowd of slow uploads hurt everyone
//! else?
//!
//! A normal client runs PUT and GET of small objects back to back for a
//! while against the idle server, then `--slow` connections each start a
//! PutObject and send its body one byte every `--interval` seconds (below
//! the server's body timeout, so none is cut), and the normal client runs
//! again with them open. Both phases are in the same run against the same
//! server. The p99 latencies of PUT and GET with the slow bodies open must
//! stay within `--max-ratio` (2x) of their values on the idle server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use http::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::body::Payload;
use crate::client::{Endpoint, S3Client};
use crate::sigv4::{encode_path, AmzDate, Signer, UNSIGNED_PAYLOAD};
use crate::workload::GRACE;

/// Objects the GETs read from, written before timing.
const GET_OBJECTS: usize = 64;

/// Options of `cloudmux-bench slow-bodies`.
#[derive(Args)]
pub struct SlowBodiesArgs {
    /// Endpoint, `http://127.0.0.1:PORT`.
    #[arg(long)]
    endpoint: String,
    /// Access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    /// Secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Slow-body connections held open during the second phase.
    #[arg(long, default_value_t = 500)]
    slow: usize,
    /// Seconds between two bytes of one slow body (keep it below the
    /// server's `body_timeout_secs`).
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// The `Content-Length` each slow PUT declares.
    #[arg(long, default_value_t = 1 << 20)]
    slow_length: u64,
    /// Requests the normal client keeps in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Timed seconds of each phase.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Object size of the normal client's PUTs and GETs, in bytes.
    #[arg(long, default_value_t = 4096)]
    size: u64,
    /// Bucket to use (created if missing).
    #[arg(long, default_value = "cmxslow")]
    bucket: String,
    /// Largest acceptable p99 ratio, loaded over idle.
    #[arg(long, default_value_t = 2.0)]
    max_ratio: f64,
}

/// Latencies of one phase, in microseconds.
struct Phase {
    put: Histogram<u64>,
    get: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Phase {
    fn new() -> Self {
        Self {
            put: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"),
            get: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"),
            errors: 0,
            first_error: None,
        }
    }

    fn add(&mut self, o: Phase) {
        self.put.add(&o.put).expect("same bounds");
        self.get.add(&o.get).expect("same bounds");
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

fn p99_ms(h: &Histogram<u64>) -> f64 {
    h.value_at_quantile(0.99) as f64 / 1000.0
}

/// One normal-client task: PUT a new object, GET a random one, repeat.
async fn normal(
    client: Arc<S3Client>,
    payload: Payload,
    a: Arc<(String, u64)>,
    id: usize,
    phase: &'static str,
    deadline: Instant,
) -> Phase {
    let (bucket, size) = (&a.0, a.1);
    let mut p = Phase::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut seq = 0u64;
    while Instant::now() < deadline {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = format!("{phase}/{id}/{seq}");
        seq += 1;
        let t = Instant::now();
        let put = client.put(bucket, &key, payload.body(size), UNSIGNED_PAYLOAD);
        match tokio::time::timeout(GRACE, put).await {
            Ok(Ok(_)) => p
                .put
                .saturating_record(t.elapsed().as_micros().max(1) as u64),
            Ok(Err(e)) => {
                p.errors += 1;
                p.first_error.get_or_insert(format!("PUT {key}: {e}"));
            }
            Err(_) => {
                p.errors += 1;
                p.first_error.get_or_insert(format!("PUT {key}: no answer"));
            }
        }
        let key = format!("get/{}", rng % GET_OBJECTS as u64);
        let t = Instant::now();
        let get = client.get(Method::GET, bucket, &key);
        match tokio::time::timeout(GRACE, get).await {
            Ok(Ok(r)) if r.bytes == size => p
                .get
                .saturating_record(t.elapsed().as_micros().max(1) as u64),
            Ok(Ok(r)) => {
                p.errors += 1;
                p.first_error
                    .get_or_insert(format!("GET {key}: {} bytes, expected {size}", r.bytes));
            }
            Ok(Err(e)) => {
                p.errors += 1;
                p.first_error.get_or_insert(format!("GET {key}: {e}"));
            }
            Err(_) => {
                p.errors += 1;
                p.first_error.get_or_insert(format!("GET {key}: no answer"));
            }
        }
    }
    p
}

async fn run_phase(
    client: &Arc<S3Client>,
    payload: &Payload,
    a: &Arc<(String, u64)>,
    conc: usize,
    duration: Duration,
    name: &'static str,
) -> Phase {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..conc)
        .map(|id| {
            tokio::spawn(normal(
                client.clone(),
                payload.clone(),
                a.clone(),
                id,
                name,
                deadline,
            ))
        })
        .collect();
    let mut all = Phase::new();
    for t in tasks {
        match t.await {
            Ok(p) => all.add(p),
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert(format!("task failed: {e}"));
            }
        }
    }
    all
}

/// What every slow upload shares.
struct Slow {
    host: String,
    bucket: String,
    length: u64,
    interval: Duration,
    signer: Signer,
    cut: Arc<AtomicUsize>,
}

/// Opens slow upload `i`: sends its signed head and first byte, then one
/// byte every `interval` (the first after `offset`). Counts it in `cut`
/// if the server answers or closes it before it is aborted.
async fn open_slow(s: &Slow, i: usize, offset: Duration) -> Result<JoinHandle<()>, String> {
    let (host, length, interval, cut) = (&s.host, s.length, s.interval, s.cut.clone());
    let path = encode_path(&format!("/{}/slow/{i}", s.bucket));
    let date = AmzDate::now();
    let auth = s.signer.authorization(
        "PUT",
        &path,
        "",
        &[
            ("host", host),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
            ("x-amz-date", &date.long),
        ],
        UNSIGNED_PAYLOAD,
        &date,
    );
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: {host}\r\nx-amz-content-sha256: {UNSIGNED_PAYLOAD}\r\n\
         x-amz-date: {}\r\nauthorization: {auth}\r\ncontent-length: {length}\r\n\r\nx",
        date.long
    );
    let mut stream = TcpStream::connect(host.as_str())
        .await
        .map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("slow PUT {i}: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    Ok(tokio::spawn(async move {
        let reader = async {
            let mut buf = [0u8; 512];
            let _ = rd.read(&mut buf).await;
        };
        let writer = async {
            tokio::time::sleep(offset).await;
            for _ in 1..length {
                if wr.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = reader => {}
            () = writer => {}
        }
        cut.fetch_add(1, Ordering::Relaxed);
    }))
}

/// Runs the measurement; `Err` on setup failures, request errors, slow
/// connections cut by the server, or a ratio over the limit.
pub async fn run(a: SlowBodiesArgs) -> Result<(), String> {
    let ep = Endpoint {
        url: a.endpoint.clone(),
        access_key: a.access_key.clone(),
        secret_key: a.secret_key.clone(),
        region: a.region.clone(),
    };
    let conc = a.concurrency.max(1);
    let client = Arc::new(S3Client::new(&ep, conc)?);
    client.create_bucket(&a.bucket).await?;
    let payload = Payload::random(a.size.max(1) as usize);
    for i in 0..GET_OBJECTS {
        client
            .put(
                &a.bucket,
                &format!("get/{i}"),
                payload.body(a.size),
                UNSIGNED_PAYLOAD,
            )
            .await?;
    }
    let duration = Duration::from_secs_f64(a.duration);
    let interval = Duration::from_secs_f64(a.interval);
    let shared = Arc::new((a.bucket.clone(), a.size));
    println!(
        "slow-bodies: {} normal requests in flight (PUT then GET of {} B objects), {:.0} s per phase; \
         {} slow PUTs (Content-Length {}, one byte every {:.0} s)",
        conc, a.size, a.duration, a.slow, a.slow_length, a.interval
    );

    let idle = run_phase(&client, &payload, &shared, conc, duration, "idle").await;
    println!(
        "idle server:        PUT p99 {:8.2} ms ({} ops)   GET p99 {:8.2} ms ({} ops)   errors {}",
        p99_ms(&idle.put),
        idle.put.len(),
        p99_ms(&idle.get),
        idle.get.len(),
        idle.errors
    );

    let spec = Slow {
        host: ep
            .url
            .strip_prefix("http://")
            .ok_or("only http:// endpoints")?
            .trim_end_matches('/')
            .to_owned(),
        bucket: a.bucket.clone(),
        length: a.slow_length.max(2),
        interval,
        signer: Signer::new(&ep.access_key, &ep.secret_key, &ep.region),
        cut: Arc::new(AtomicUsize::new(0)),
    };
    let cut = spec.cut.clone();
    let mut slow = Vec::with_capacity(a.slow);
    let opened = Instant::now();
    for i in 0..a.slow {
        let offset = interval.mul_f64(i as f64 / a.slow.max(1) as f64);
        slow.push(open_slow(&spec, i, offset).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "opened {} slow PUTs in {:.1} s",
        slow.len(),
        opened.elapsed().as_secs_f64()
    );

    let loaded = run_phase(&client, &payload, &shared, conc, duration, "loaded").await;
    let cut_during = cut.load(Ordering::Relaxed);
    for s in &slow {
        s.abort();
    }
    println!(
        "{:>4} slow bodies:    PUT p99 {:8.2} ms ({} ops)   GET p99 {:8.2} ms ({} ops)   errors {}",
        a.slow,
        p99_ms(&loaded.put),
        loaded.put.len(),
        p99_ms(&loaded.get),
        loaded.get.len(),
        loaded.errors
    );
    let put_ratio = p99_ms(&loaded.put) / p99_ms(&idle.put).max(0.001);
    let get_ratio = p99_ms(&loaded.get) / p99_ms(&idle.get).max(0.001);
    println!(
        "p99 ratio, slow bodies / idle: PUT {put_ratio:.2}x   GET {get_ratio:.2}x   (limit {:.1}x)",
        a.max_ratio
    );
    println!(
        "slow PUTs the server answered or closed while open: {cut_during} of {}",
        a.slow
    );
    let mut failures = Vec::new();
    for (name, p) in [("idle", &idle), ("loaded", &loaded)] {
        if p.errors > 0 || p.put.is_empty() || p.get.is_empty() {
            failures.push(format!(
                "{name} phase: {} errors (first: {})",
                p.errors,
                p.first_error.as_deref().unwrap_or("no requests completed")
            ));
        }
    }
    if cut_during > 0 {
        failures.push(format!("{cut_during} slow PUTs were cut"));
    }
    if put_ratio > a.max_ratio || get_ratio > a.max_ratio {
        failures.push("a p99 ratio is over the limit".into());
    }
    if failures.is_empty() {
        println!("PASS");
        Ok(())
    } else {
        println!("FAIL: {}", failures.join("; "));
        Err(failures.join("; "))
    }
}
