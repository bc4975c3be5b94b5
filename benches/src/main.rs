//! `cloudmux-bench`: the S3 load generator, the floor server, the CI smoke
//! run and the side-by-side report. `benches/run.sh` drives it; see
//! `benches/README.md`.

mod body;
mod client;
mod floor;
mod report;
mod rss;
mod sigv4;
mod slowbody;
mod soak;
mod worker;
mod workload;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use client::Endpoint;
use report::{Missing, Report, ServerRun};
use workload::{Bench, LoadConfig, Workload, WorkloadResult};

/// S3 load generator and baselines for cloudmux.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the floor server: a bare hyper server answering PUT/GET/HEAD/List
    /// from memory. Prints `endpoint: http://ADDR` and serves until killed.
    Floor {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Runs workloads against an S3 endpoint and writes their results.
    Load(LoadArgs),
    /// Runs each small workload for about a second against an in-process
    /// floor server; fails on zero ops or any error (CI runs this).
    Smoke,
    /// Combines `load --json` files into the side-by-side table and one JSON.
    Report(ReportArgs),
    /// Measures a normal client's PUT/GET p99 on the idle server, then with
    /// `--slow` slow-body uploads open, and compares them (fails over
    /// `--max-ratio`). `benches/limits/run.sh` starts a server and runs it.
    SlowBodies(slowbody::SlowBodiesArgs),
    /// Random PUT, overwrite, Complete, Abort and DELETE from many clients
    /// while the server is SIGKILLed and the emulators paused, then a check
    /// of what survived against the acknowledged history.
    /// `benches/soak/run.sh` starts the emulators and runs it.
    Soak(Box<soak::SoakArgs>),
}

#[derive(Args)]
struct LoadArgs {
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
    /// `all` (put4k,get4k,put1m,get1m,put256m,get256m,head,list) or a
    /// comma-separated list of those and over4k,over1m,listver.
    #[arg(long, default_value = "all")]
    workload: String,
    /// Concurrent requests (and keep-alive connections); 256 MiB workloads use 1.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Timed seconds per workload.
    #[arg(long, default_value_t = 8.0)]
    duration: f64,
    /// Server process id whose peak RSS is sampled from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Label of the server in the results.
    #[arg(long, default_value = "server")]
    label: String,
    /// Bucket for the object workloads (the list bucket is BUCKET-list).
    #[arg(long, default_value = "cmxbench")]
    bucket: String,
    /// Create both buckets with this LocationConstraint (cloudmux: the name
    /// of the location that holds them).
    #[arg(long)]
    location: Option<String>,
    /// Enable versioning on both buckets (PutBucketVersioning) before any
    /// workload.
    #[arg(long)]
    versioning: bool,
    /// Keys in the list bucket.
    #[arg(long, default_value_t = 100_000)]
    list_keys: usize,
    /// Write each list-bucket key this many times while populating (a
    /// versioned bucket then holds list-keys x list-writes versions).
    #[arg(long, default_value_t = 1)]
    list_writes: usize,
    /// Seconds allowed for populating the list bucket.
    #[arg(long, default_value_t = 60.0)]
    populate_timeout: f64,
    /// The list bucket (BUCKET-list) already holds --list-keys empty objects
    /// k000000, k000001, ... (seeded on disk): don't populate it.
    #[arg(long)]
    list_seeded: bool,
    /// An earlier `load --setup-only` with the same bucket, workloads, key
    /// counts and list writes populated everything: populate nothing.
    #[arg(long)]
    prepared: bool,
    /// Create the buckets and populate what the workloads need, then stop
    /// without timing anything.
    #[arg(long)]
    setup_only: bool,
    /// Concurrent PUTs while populating.
    #[arg(long, default_value_t = 64)]
    populate_concurrency: usize,
    /// Sign bodies with their (pre-computed) SHA-256 instead of UNSIGNED-PAYLOAD.
    #[arg(long)]
    signed_payload: bool,
    /// Write the results here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    /// `load --json` files, one per server.
    inputs: Vec<PathBuf>,
    /// The server whose ratios are reported.
    #[arg(long, default_value = "cloudmux")]
    reference: String,
    /// The floor server's label.
    #[arg(long, default_value = "floor")]
    floor: String,
    /// A server left out, as `NAME: REASON` (repeatable).
    #[arg(long)]
    missing: Vec<String>,
    /// A line to add to the report (repeatable).
    #[arg(long)]
    note: Vec<String>,
    /// Write the combined JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the table here too.
    #[arg(long)]
    text: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn line(label: &str, r: &WorkloadResult) -> String {
    format!(
        "{label} {:<7} conc {:>3}: {:>9.1} ops/s {:>8.1} MiB/s p50 {:>8.2} ms p99 {:>8.2} ms rss {} errors {}{}",
        r.workload,
        r.concurrency,
        r.ops_per_s,
        r.mib_per_s,
        r.p50_ms,
        r.p99_ms,
        r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB")),
        r.errors,
        r.first_error.as_deref().map_or(String::new(), |e| format!(" (first: {e})")),
    )
}

fn write_json<T: serde::Serialize>(path: &PathBuf, v: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

async fn load(a: LoadArgs) -> Result<(), String> {
    let workloads = Workload::parse_list(&a.workload)?;
    let ep = Endpoint {
        url: a.endpoint.clone(),
        access_key: a.access_key,
        secret_key: a.secret_key,
        region: a.region,
    };
    let cfg = LoadConfig {
        concurrency: a.concurrency.max(1),
        duration: Duration::from_secs_f64(a.duration),
        bucket: a.bucket,
        location: a.location,
        versioning: a.versioning,
        list_keys: a.list_keys,
        list_writes: a.list_writes.max(1),
        populate_concurrency: a.populate_concurrency.max(1),
        populate_timeout: Duration::from_secs_f64(a.populate_timeout),
        list_seeded: a.list_seeded,
        prepared: a.prepared,
        signed_payload: a.signed_payload,
        pid: a.pid,
    };
    let mut run = ServerRun {
        server: a.label.clone(),
        endpoint: a.endpoint,
        concurrency: cfg.concurrency,
        duration_s: a.duration,
        results: Vec::new(),
        error: None,
    };
    match Bench::new(&ep, cfg).await {
        Ok(mut bench) if a.setup_only => {
            for w in workloads {
                let t = Instant::now();
                match bench.setup(w).await {
                    Ok(note) => eprintln!(
                        "{} {}: set up in {:.1} s{}",
                        a.label,
                        w.name(),
                        t.elapsed().as_secs_f64(),
                        note.map_or(String::new(), |n| format!(" ({n})"))
                    ),
                    Err(e) => {
                        let e = format!("setup of {}: {e}", w.name());
                        eprintln!("{}: {e}", a.label);
                        run.error.get_or_insert(e);
                    }
                }
            }
        }
        Ok(mut bench) => {
            for w in workloads {
                let r = bench.run(w).await;
                eprintln!("{}", line(&a.label, &r));
                run.results.push(r);
            }
        }
        Err(e) => {
            eprintln!("{}: {e}", a.label);
            run.error = Some(e);
        }
    }
    if let Some(path) = &a.json {
        write_json(path, &run)?;
    }
    match &run.error {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

async fn smoke() -> Result<(), String> {
    let t = Instant::now();
    let addr = floor::start("127.0.0.1:0").await?;
    let ep = Endpoint {
        url: format!("http://{addr}"),
        access_key: "AKIASMOKE".into(),
        secret_key: "smoke-secret".into(),
        region: "us-east-1".into(),
    };
    let cfg = LoadConfig {
        concurrency: 8,
        duration: Duration::from_millis(1000),
        bucket: "smoke".into(),
        location: Some("floor".into()),
        versioning: true,
        list_keys: 2500,
        list_writes: 2,
        populate_concurrency: 16,
        populate_timeout: Duration::from_secs(20),
        list_seeded: false,
        prepared: false,
        signed_payload: false,
        pid: Some(std::process::id()),
    };
    let mut bench = Bench::new(&ep, cfg).await?;
    let mut failed = Vec::new();
    for w in Workload::ALL {
        if matches!(w, Workload::Put256m | Workload::Get256m) {
            continue;
        }
        let r = bench.run(w).await;
        println!("{}", line("smoke", &r));
        if r.ops == 0 || r.errors > 0 || r.peak_rss_mib.is_none() {
            failed.push(r.workload);
        }
    }
    println!("smoke took {:.1} s", t.elapsed().as_secs_f64());
    if failed.is_empty() {
        println!("smoke: ok");
        Ok(())
    } else {
        Err(format!("smoke failed for: {}", failed.join(", ")))
    }
}

fn report(a: ReportArgs) -> Result<(), String> {
    let mut servers = Vec::new();
    let mut missing = Vec::new();
    for p in &a.inputs {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        match serde_json::from_str::<ServerRun>(&text) {
            Ok(run) => servers.push(run),
            Err(e) => missing.push(Missing {
                server: p.display().to_string(),
                reason: format!("unreadable results: {e}"),
            }),
        }
    }
    for m in &a.missing {
        let (server, reason) = m.split_once(':').unwrap_or((m.as_str(), "unavailable"));
        missing.push(Missing {
            server: server.trim().to_owned(),
            reason: reason.trim().to_owned(),
        });
    }
    let report = Report::new(&a.reference, &a.floor, servers, missing, a.note);
    let table = report.table();
    print!("{table}");
    let _ = std::io::stdout().flush();
    if let Some(p) = &a.json {
        write_json(p, &report)?;
    }
    if let Some(p) = &a.text {
        std::fs::write(p, &table).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report(a) => report(a),
        cmd => runtime().and_then(|rt| {
            rt.block_on(async {
                match cmd {
                    Command::Floor { listen } => {
                        let addr = floor::start(&listen).await?;
                        println!("endpoint: http://{addr}");
                        let _ = std::io::stdout().flush();
                        let _ = tokio::signal::ctrl_c().await;
                        Ok(())
                    }
                    Command::Load(a) => load(a).await,
                    Command::Smoke => smoke().await,
                    Command::SlowBodies(a) => slowbody::run(a).await,
                    Command::Soak(a) => soak::run(*a).await,
                    Command::Report(_) => unreachable!("handled above"),
                }
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudmux-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
