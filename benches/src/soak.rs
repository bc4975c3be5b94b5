//! `cloudmux-bench soak`: many clients write, overwrite, complete, abort and
//! delete objects on an `fs`, an `s3` (moto) and an Azure or GCS location
//! while the server is SIGKILLed and restarted and the emulators are paused;
//! then a checker compares what is stored with the acknowledged history.
//! `benches/soak/run.sh` starts the emulators, writes the configs and runs
//! this; see `benches/README.md`.
//!
//! # What is exact
//!
//! Each client owns its keys (`cNN/...`) and works on them one operation at
//! a time, so the operations on one key are totally ordered. A body is a
//! function of (seed, bucket, key, generation), so the history keeps hashes
//! only. An operation is *acknowledged* when one of its attempts got a 2xx
//! answer, *not sent* when every attempt was refused at connect (nothing can
//! have reached the server), and *uncertain* otherwise. The checker allows a
//! key to hold the value of its last acknowledged write, or of any uncertain
//! write issued after it; an attempt the client gave up waiting for may
//! still be running in the server, so its value is allowed at any later
//! point too (`floating`; with the long attempt timeout this is rare).
//!
//! # Phases
//!
//! 1. The native targets (moto bucket, Azure container or GCS bucket) are
//!    made, the server is started with `--config` and the three buckets are
//!    created (one per location).
//! 2. `--clients` clients run for `--duration` seconds. Meanwhile the server
//!    is SIGKILLed every `--kill-min`..`--kill-max` seconds and started again
//!    on the same port, and every `--pause-gap-min`..`--pause-gap-max`
//!    seconds one emulator is frozen (SIGSTOP of its process group) for
//!    `--pause-min`..`--pause-max` seconds. Each client finishes the
//!    operation it is in when the time is up.
//! 3. Multipart uploads still open are listed through cloudmux (one whose
//!    Abort or Complete was acknowledged counts as a lost write) and aborted.
//! 4. The server is SIGKILLed once more and started with `--final-config`
//!    (`[gc] min_age_secs = 0`): its startup recovery and garbage collection
//!    run with no client writing.
//! 5. The checker (see `check.rs`) prints
//!    `acknowledged writes lost: N, unreadable records: N, orphans after GC: N`.

mod check;
mod load;
mod native;
mod supervise;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use http::Method;
use serde::{Deserialize, Serialize};

use crate::body::RepeatBody;
use crate::client::{element, unescape, Endpoint, S3Client};
use crate::sigv4::UNSIGNED_PAYLOAD;
use native::{Cloud, Natives};
use supervise::{Emulator, Events, Server};

/// The fs location's bucket (location `local` in the soak configs).
pub(crate) const FS_BUCKET: &str = "soak-local";
/// The S3 location's bucket (location `moto`).
pub(crate) const S3_BUCKET: &str = "soak-moto";
/// The Azure location's bucket (location `azure`).
pub(crate) const AZURE_BUCKET: &str = "soak-azure";
/// The GCS location's bucket (location `gcs`).
pub(crate) const GCS_BUCKET: &str = "soak-gcs";
/// The moto bucket, Azure container or GCS bucket that holds the cloud
/// locations' objects.
pub(crate) const TARGET: &str = "cmx-soak";

/// Which emulated cloud is the third location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CloudKind {
    /// Azurite (`type = "azure"`, location `azure`).
    Azure,
    /// fake-gcs-server (`type = "gcs"`, location `gcs`).
    Gcs,
}

/// `cloudmux-bench soak`: see the module documentation.
#[derive(Args)]
pub struct SoakArgs {
    /// The cloudmux binary to run (`serve --config FILE`).
    #[arg(long)]
    server_bin: PathBuf,
    /// Config of the server during the load (a `[gc] min_age_secs` longer
    /// than any write).
    #[arg(long)]
    config: PathBuf,
    /// Config of the final restart (`[gc] min_age_secs = 0`).
    #[arg(long)]
    final_config: PathBuf,
    /// The endpoint both configs listen on, `http://127.0.0.1:PORT`.
    #[arg(long)]
    endpoint: String,
    /// Access key id of the configs' account.
    #[arg(long)]
    access_key: String,
    /// Secret access key of the configs' account.
    #[arg(long)]
    secret_key: String,
    /// Region the configs' server signs for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Root directory of the `local` (fs) location.
    #[arg(long)]
    fs_root: PathBuf,
    /// moto's endpoint (the `moto` location).
    #[arg(long)]
    moto: String,
    /// moto's process (group) id, for pausing it.
    #[arg(long)]
    moto_pid: u32,
    /// The third location's kind.
    #[arg(long, value_enum, default_value = "azure")]
    cloud: CloudKind,
    /// Azurite's blob endpoint with the account (`http://127.0.0.1:P/devstoreaccount1`)
    /// or fake-gcs-server's endpoint.
    #[arg(long)]
    cloud_endpoint: String,
    /// The Azure account key (base64), for listing blobs.
    #[arg(long, default_value = "")]
    azure_key: String,
    /// The cloud emulator's process (group) id, for pausing it.
    #[arg(long)]
    cloud_pid: u32,
    /// Where the history, the server log, the events and the check report go.
    #[arg(long)]
    out: PathBuf,
    /// Seconds of load.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seed of the operation choices, bodies, kill and pause schedules.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Shortest time between SIGKILLs of the server, in seconds.
    #[arg(long, default_value_t = 30)]
    kill_min: u64,
    /// Longest time between SIGKILLs of the server, in seconds.
    #[arg(long, default_value_t = 90)]
    kill_max: u64,
    /// Shortest time between emulator pauses, in seconds.
    #[arg(long, default_value_t = 60)]
    pause_gap_min: u64,
    /// Longest time between emulator pauses, in seconds.
    #[arg(long, default_value_t = 150)]
    pause_gap_max: u64,
    /// Shortest emulator pause, in seconds.
    #[arg(long, default_value_t = 5)]
    pause_min: u64,
    /// Longest emulator pause, in seconds.
    #[arg(long, default_value_t = 15)]
    pause_max: u64,
    /// Keys per client in each bucket.
    #[arg(long, default_value_t = 24)]
    keys: usize,
    /// Seconds one request may take before the client gives up on it.
    #[arg(long, default_value_t = 120)]
    attempt_timeout: u64,
    /// Seconds one step of an operation (one request and its retries) may take.
    #[arg(long, default_value_t = 180)]
    op_budget: u64,
    /// `CLOUDMUX_LOG` of the server.
    #[arg(long, default_value = "info")]
    server_log_level: String,
    /// Skip the load: start the server with the final config and check the
    /// history already in `--out`.
    #[arg(long)]
    check_only: bool,
}

/// One bucket of the soak and where it lives.
#[derive(Clone, Debug)]
pub(crate) struct SoakBucket {
    /// The S3 bucket name.
    pub name: &'static str,
    /// The location (LocationConstraint) it is created in.
    pub location: &'static str,
}

/// What kind of operation a history record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OpKind {
    /// PutObject of a key the client believes absent.
    Put,
    /// PutObject of a key the client believes present.
    Overwrite,
    /// CreateMultipartUpload, UploadPart, CompleteMultipartUpload.
    Complete,
    /// CreateMultipartUpload, UploadPart, AbortMultipartUpload.
    Abort,
    /// DeleteObject.
    Delete,
    /// The end-of-run Abort of an upload still listed.
    CleanupAbort,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 6] = [
        OpKind::Put,
        OpKind::Overwrite,
        OpKind::Complete,
        OpKind::Abort,
        OpKind::Delete,
        OpKind::CleanupAbort,
    ];

    /// Whether the operation changes its key's content.
    pub fn writes_key(self) -> bool {
        matches!(
            self,
            OpKind::Put | OpKind::Overwrite | OpKind::Complete | OpKind::Delete
        )
    }

    fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Overwrite => "overwrite",
            OpKind::Complete => "complete",
            OpKind::Abort => "abort",
            OpKind::Delete => "delete",
            OpKind::CleanupAbort => "cleanup_abort",
        }
    }
}

/// How an operation ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// A 2xx answer was received.
    Ack,
    /// No 2xx answer; some attempt may have taken effect.
    Uncertain,
    /// Nothing that could change the key reached the server (every attempt
    /// was refused at connect, or a multipart upload never got to Complete).
    NotSent,
}

/// One line of the history file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OpRecord {
    /// The client that ran it.
    pub client: usize,
    /// Its position in the client's sequence.
    pub seq: u64,
    /// What it did.
    pub op: OpKind,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The generation the body was made from (unique per client).
    pub gen: u64,
    /// The body's length (0 for deletes and aborts).
    pub size: u64,
    /// Hex SHA-256 of the body a write leaves at the key (`None`: DELETE,
    /// or an abort).
    pub sha256: Option<String>,
    /// The ETag S3 gives that body (MD5, or the multipart form).
    pub etag: Option<String>,
    /// The multipart upload, when one was created.
    pub upload_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// An attempt timed out on the client's side: it may still take effect
    /// at any later time.
    pub floating: bool,
    /// Milliseconds since the soak started, when it began and ended.
    pub t_start_ms: u64,
    /// See `t_start_ms`.
    pub t_end_ms: u64,
    /// Every attempt: `step@ms:result`.
    pub attempts: Vec<String>,
    /// Something an acknowledged answer rules out (an acknowledged upload
    /// answering NoSuchUpload); the checker counts it as a lost write.
    pub anomaly: Option<String>,
}

/// The history file, one JSON record per line, written as operations end.
pub(crate) struct History {
    file: Mutex<std::io::LineWriter<std::fs::File>>,
}

impl History {
    /// Creates (truncates) the file at `path`.
    pub fn create(path: &std::path::Path) -> Result<Self, String> {
        let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(History {
            file: Mutex::new(std::io::LineWriter::new(f)),
        })
    }

    /// Appends one record.
    pub fn append(&self, rec: &OpRecord) {
        use std::io::Write as _;
        let line = serde_json::to_string(rec).expect("records serialize");
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(f, "{line}") {
            eprintln!("soak: writing the history: {e}");
        }
    }

    /// Reads every record of the file at `path`.
    pub fn read(path: &std::path::Path) -> Result<Vec<OpRecord>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))
            })
            .collect()
    }
}

/// Counters of the load, shared by the clients.
#[derive(Default)]
pub(crate) struct Stats {
    /// Operations finished, by [`OpKind::ALL`] index.
    pub ops: [AtomicU64; 6],
    /// Acknowledged operations.
    pub acked: AtomicU64,
    /// Uncertain operations.
    pub uncertain: AtomicU64,
    /// Operations that reached nothing.
    pub not_sent: AtomicU64,
    /// Requests sent.
    pub attempts: AtomicU64,
    /// Requests that failed and were retried or given up.
    pub failed_attempts: AtomicU64,
    /// Attempts given up on by the client's timeout.
    pub timeouts: AtomicU64,
    /// Body bytes of acknowledged writes.
    pub bytes: AtomicU64,
    /// Operations with an anomaly.
    pub anomalies: AtomicU64,
}

impl Stats {
    /// Counts one finished operation.
    pub fn count(&self, rec: &OpRecord) {
        let i = OpKind::ALL.iter().position(|k| *k == rec.op).unwrap_or(0);
        self.ops[i].fetch_add(1, Ordering::Relaxed);
        match rec.outcome {
            Outcome::Ack => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(rec.size, Ordering::Relaxed);
            }
            Outcome::Uncertain => {
                self.uncertain.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::NotSent => {
                self.not_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        if rec.anomaly.is_some() {
            self.anomalies.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Total operations.
    pub fn total(&self) -> u64 {
        self.ops.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// `put N, overwrite N, ...`.
    pub fn by_kind(&self) -> String {
        OpKind::ALL
            .iter()
            .zip(&self.ops)
            .map(|(k, c)| format!("{} {}", k.name(), c.load(Ordering::Relaxed)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The buckets of a soak with `cloud` as the third location.
pub(crate) fn buckets(cloud: CloudKind) -> Vec<SoakBucket> {
    let third = match cloud {
        CloudKind::Azure => SoakBucket {
            name: AZURE_BUCKET,
            location: "azure",
        },
        CloudKind::Gcs => SoakBucket {
            name: GCS_BUCKET,
            location: "gcs",
        },
    };
    vec![
        SoakBucket {
            name: FS_BUCKET,
            location: "local",
        },
        SoakBucket {
            name: S3_BUCKET,
            location: "moto",
        },
        third,
    ]
}

/// Runs the soak (or, with `--check-only`, the checker alone); fails when
/// the checker finds anything.
pub async fn run(a: SoakArgs) -> Result<(), String> {
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let t0 = Instant::now();
    let events = Arc::new(Events::create(&a.out.join("events.log"), t0)?);
    let port = a
        .endpoint
        .rsplit_once(':')
        .and_then(|(_, p)| p.trim_end_matches('/').parse::<u16>().ok())
        .ok_or_else(|| format!("--endpoint {}: no port", a.endpoint))?;
    let ep = Endpoint {
        url: a.endpoint.clone(),
        access_key: a.access_key.clone(),
        secret_key: a.secret_key.clone(),
        region: a.region.clone(),
    };
    let client = Arc::new(S3Client::new(&ep, 64)?);
    let cloud = match a.cloud {
        CloudKind::Azure => Cloud::azure(&a.cloud_endpoint, &a.azure_key)?,
        CloudKind::Gcs => Cloud::Gcs {
            endpoint: a.cloud_endpoint.trim_end_matches('/').to_owned(),
        },
    };
    let natives = Natives::new(a.fs_root.clone(), &a.moto, cloud)?;
    let buckets = buckets(a.cloud);
    let server = Arc::new(Mutex::new(Server::new(
        a.server_bin.clone(),
        a.out.join("server.log"),
        a.out.join("server.pid"),
        port,
        a.server_log_level.clone(),
    )));
    let history_path = a.out.join("history.jsonl");
    let stats = Arc::new(Stats::default());
    let mut extra_lost = Vec::new();
    let mut summary = serde_json::Map::new();

    if !a.check_only {
        natives.setup().await?;
        events.log("native targets ready");
        start_server(&server, &a.config, &events).await?;
        for b in &buckets {
            create_bucket(&client, b).await?;
        }
        events.log(&format!(
            "buckets ready: {}",
            buckets
                .iter()
                .map(|b| format!("{} ({})", b.name, b.location))
                .collect::<Vec<_>>()
                .join(", ")
        ));

        let history = Arc::new(History::create(&history_path)?);
        let stop = Arc::new(AtomicBool::new(false));
        let kills = Arc::new(AtomicU64::new(0));
        let pauses = Arc::new(AtomicU64::new(0));
        let chaos_failed = Arc::new(AtomicBool::new(false));
        let killer = supervise::spawn_killer(supervise::KillPlan {
            server: server.clone(),
            config: a.config.clone(),
            seed: a.seed,
            min: a.kill_min,
            max: a.kill_max.max(a.kill_min),
            stop: stop.clone(),
            kills: kills.clone(),
            failed: chaos_failed.clone(),
            events: events.clone(),
        });
        let emulators = vec![
            Emulator::new("moto", a.moto_pid),
            Emulator::new(
                match a.cloud {
                    CloudKind::Azure => "azurite",
                    CloudKind::Gcs => "fake-gcs-server",
                },
                a.cloud_pid,
            ),
        ];
        let pauser = supervise::spawn_pauser(supervise::PausePlan {
            emulators,
            seed: a.seed,
            gap: (a.pause_gap_min, a.pause_gap_max.max(a.pause_gap_min)),
            length: (a.pause_min, a.pause_max.max(a.pause_min)),
            stop: stop.clone(),
            pauses: pauses.clone(),
            events: events.clone(),
        });

        let load_start = Instant::now();
        let shared = Arc::new(load::Shared {
            client: client.clone(),
            seed: a.seed,
            t0,
            deadline: load_start + Duration::from_secs(a.duration),
            buckets: buckets.iter().map(|b| b.name.to_owned()).collect(),
            keys: a.keys.max(2),
            history: history.clone(),
            stats: stats.clone(),
            attempt_timeout: Duration::from_secs(a.attempt_timeout),
            op_budget: Duration::from_secs(a.op_budget),
        });
        events.log(&format!(
            "load: {} clients for {} s, seed {}, kills every {}-{} s, pauses every {}-{} s for {}-{} s",
            a.clients,
            a.duration,
            a.seed,
            a.kill_min,
            a.kill_max,
            a.pause_gap_min,
            a.pause_gap_max,
            a.pause_min,
            a.pause_max
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for id in 0..a.clients.max(1) {
            tasks.spawn(load::client(shared.clone(), id));
        }
        let progress = {
            let stats = stats.clone();
            let kills = kills.clone();
            let pauses = pauses.clone();
            let events = events.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    events.log(&format!(
                        "progress: {} ops ({} acked, {} uncertain, {} not sent), {} kills, {} pauses",
                        stats.total(),
                        stats.acked.load(Ordering::Relaxed),
                        stats.uncertain.load(Ordering::Relaxed),
                        stats.not_sent.load(Ordering::Relaxed),
                        kills.load(Ordering::Relaxed),
                        pauses.load(Ordering::Relaxed)
                    ));
                }
            })
        };
        tokio::time::sleep_until((load_start + Duration::from_secs(a.duration)).into()).await;
        // The chaos ends with the load's time: the clients then finish the
        // operation they are in against a server that stays up.
        stop.store(true, Ordering::SeqCst);
        events.log("time is up: stopping kills and pauses, clients finish their operation");
        join_thread(killer).await;
        join_thread(pauser).await;
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                events.log(&format!("a client task failed: {e}"));
            }
        }
        progress.abort();
        let load_secs = load_start.elapsed().as_secs_f64();
        let (starts, failed_starts) = {
            let s = lock(&server);
            (s.starts, s.failed_starts)
        };
        events.log(&format!(
            "load done after {load_secs:.0} s: {} ops ({}), {} acked, {} uncertain, {} not sent, {} requests ({} failed, {} timed out), {} kills, {} pauses, {} server starts ({} failed)",
            stats.total(),
            stats.by_kind(),
            stats.acked.load(Ordering::Relaxed),
            stats.uncertain.load(Ordering::Relaxed),
            stats.not_sent.load(Ordering::Relaxed),
            stats.attempts.load(Ordering::Relaxed),
            stats.failed_attempts.load(Ordering::Relaxed),
            stats.timeouts.load(Ordering::Relaxed),
            kills.load(Ordering::Relaxed),
            pauses.load(Ordering::Relaxed),
            starts,
            failed_starts,
        ));
        if chaos_failed.load(Ordering::SeqCst) {
            return Err("the server could not be restarted after a kill (see server.log)".into());
        }
        summary.insert("load_seconds".into(), load_secs.round().into());
        summary.insert("ops".into(), stats.total().into());
        summary.insert("ops_by_kind".into(), stats.by_kind().into());
        summary.insert("acked".into(), stats.acked.load(Ordering::Relaxed).into());
        summary.insert(
            "uncertain".into(),
            stats.uncertain.load(Ordering::Relaxed).into(),
        );
        summary.insert(
            "not_sent".into(),
            stats.not_sent.load(Ordering::Relaxed).into(),
        );
        summary.insert(
            "requests".into(),
            stats.attempts.load(Ordering::Relaxed).into(),
        );
        summary.insert(
            "failed_requests".into(),
            stats.failed_attempts.load(Ordering::Relaxed).into(),
        );
        summary.insert("kills".into(), kills.load(Ordering::Relaxed).into());
        summary.insert("pauses".into(), pauses.load(Ordering::Relaxed).into());
        summary.insert(
            "acked_bytes".into(),
            stats.bytes.load(Ordering::Relaxed).into(),
        );

        // Uploads still open: leftovers of operations that never reached
        // Complete or Abort, and uploads whose CreateMultipartUpload answer
        // was lost. They are aborted so that no part record keeps staged
        // data alive through the final garbage collection.
        let records = History::read(&history_path)?;
        let mut cleaned = 0u64;
        for b in &buckets {
            for (key, id) in list_uploads(&client, b.name).await? {
                for r in records
                    .iter()
                    .filter(|r| r.upload_id.as_deref() == Some(id.as_str()))
                {
                    if r.outcome == Outcome::Ack && matches!(r.op, OpKind::Abort | OpKind::Complete)
                    {
                        extra_lost.push(format!(
                            "{}/{}: upload {id} is still open after an acknowledged {:?} (client {} seq {})",
                            b.name, key, r.op, r.client, r.seq
                        ));
                    }
                }
                let rec = load::cleanup_abort(&shared, b.name, &key, &id).await;
                stats.count(&rec);
                history.append(&rec);
                cleaned += 1;
            }
        }
        events.log(&format!("aborted {cleaned} multipart uploads left open"));
        summary.insert("uploads_aborted_at_end".into(), cleaned.into());
    }

    // The final restart: recovery and a garbage collection that removes
    // every unreferenced staged entry, whatever its age.
    {
        let mut s = lock(&server);
        if s.running() {
            s.kill();
            events.log("server SIGKILLed for the final restart");
        }
    }
    let gc_from = std::fs::metadata(a.out.join("server.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    start_server(&server, &a.final_config, &events).await?;
    let gc_line = supervise::last_line_with(
        &a.out.join("server.log"),
        gc_from,
        "startup garbage collection",
    );
    events.log(&format!(
        "final start with [gc] min_age_secs = 0: {}",
        gc_line
            .as_deref()
            .unwrap_or("(no garbage collection line in the log)")
    ));

    let records = History::read(&history_path)?;
    let report = check::check(&client, &buckets, &records, &natives, extra_lost).await;
    let stopping = server.clone();
    let _ = tokio::task::spawn_blocking(move || lock(&stopping).stop()).await;
    let report = report?;
    let text = report.text();
    std::fs::write(a.out.join("check.txt"), &text)
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    summary.insert("seed".into(), a.seed.into());
    summary.insert("clients".into(), a.clients.into());
    summary.insert("acknowledged_writes_lost".into(), report.lost.len().into());
    summary.insert("unreadable_records".into(), report.unreadable.len().into());
    summary.insert("orphans_after_gc".into(), report.orphans.len().into());
    summary.insert("keys_checked".into(), report.keys_checked.into());
    summary.insert("objects_listed".into(), report.objects_listed.into());
    summary.insert("summary".into(), report.summary_line().into());
    if let Some(l) = gc_line {
        summary.insert("final_gc".into(), l.into());
    }
    let json = serde_json::to_string_pretty(&serde_json::Value::Object(summary))
        .map_err(|e| e.to_string())?;
    std::fs::write(a.out.join("summary.json"), json + "\n")
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    print!("{}", report.details(20));
    println!("{}", report.summary_line());
    if report.clean() {
        Ok(())
    } else {
        Err(format!(
            "the soak found problems (seed {}; details in {})",
            a.seed,
            a.out.join("check.txt").display()
        ))
    }
}

fn lock(server: &Mutex<Server>) -> std::sync::MutexGuard<'_, Server> {
    server.lock().unwrap_or_else(|p| p.into_inner())
}

async fn start_server(
    server: &Arc<Mutex<Server>>,
    config: &std::path::Path,
    events: &Arc<Events>,
) -> Result<(), String> {
    let server = server.clone();
    let config = config.to_path_buf();
    let events = events.clone();
    tokio::task::spawn_blocking(move || lock(&server).start(&config, &events))
        .await
        .map_err(|e| e.to_string())?
}

async fn join_thread(h: std::thread::JoinHandle<()>) {
    let _ = tokio::task::spawn_blocking(move || h.join()).await;
}

/// Sends one request, retrying transport errors and 5xx for up to a minute
/// (the server may be restarting).
pub(crate) async fn request(
    client: &S3Client,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: bytes::Bytes,
    keep_body: bool,
) -> Result<crate::client::Response, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        let sent = tokio::time::timeout(
            Duration::from_secs(60),
            client.send(
                method.clone(),
                path,
                query,
                RepeatBody::bytes(body.clone()),
                UNSIGNED_PAYLOAD,
                keep_body,
            ),
        )
        .await;
        match sent {
            Ok(Ok(r)) if !r.status.is_server_error() => return Ok(r),
            Ok(Ok(r)) => last = format!("HTTP {}", r.status.as_u16()),
            Ok(Err(e)) => last = e,
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("{method} {path}: {last}"))
}

async fn create_bucket(client: &S3Client, b: &SoakBucket) -> Result<(), String> {
    let body = format!(
        "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
        b.location
    );
    let r = request(
        client,
        Method::PUT,
        &format!("/{}", b.name),
        &[],
        body.into(),
        true,
    )
    .await?;
    let text = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
    if r.status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
        Ok(())
    } else {
        Err(format!(
            "CreateBucket {} in {}: HTTP {}: {text}",
            b.name,
            b.location,
            r.status.as_u16()
        ))
    }
}

/// Every open multipart upload of `bucket`, as (key, upload id).
pub(crate) async fn list_uploads(
    client: &S3Client,
    bucket: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut markers: Option<(String, String)> = None;
    loop {
        let mut q: Vec<(&str, &str)> = vec![("uploads", "")];
        if let Some((k, u)) = &markers {
            q.push(("key-marker", k));
            q.push(("upload-id-marker", u));
        }
        let r = request(
            client,
            Method::GET,
            &format!("/{bucket}"),
            &q,
            bytes::Bytes::new(),
            true,
        )
        .await?
        .ok()?;
        let xml = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
        for up in blocks(&xml, "Upload") {
            if let (Some(k), Some(u)) = (element(up, "Key"), element(up, "UploadId")) {
                out.push((unescape(k), unescape(u)));
            }
        }
        let truncated = element(&xml, "IsTruncated") == Some("true");
        let next = (
            element(&xml, "NextKeyMarker").map(unescape),
            element(&xml, "NextUploadIdMarker").map(unescape),
        );
        match next {
            (Some(k), Some(u)) if truncated && !k.is_empty() => markers = Some((k, u)),
            _ => return Ok(out),
        }
    }
}

/// The inner text of every `<tag>...</tag>` of `xml`, in order.
pub(crate) fn blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_in_order() {
        let xml = "<R><Upload><Key>a</Key></Upload><Upload><Key>b&amp;c</Key></Upload></R>";
        let b = blocks(xml, "Upload");
        assert_eq!(b.len(), 2);
        assert_eq!(element(b[1], "Key").map(unescape).as_deref(), Some("b&c"));
    }
}
