//! The `cloudmux` binary: command line, configuration, and assembly of the
//! metadata store, the locations, the gateway and the S3 server.

mod config;
mod locations;
mod meta_cmd;
mod preflight;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use cloudmux_core::{Accounts, Gateway, GatewayConfig, Locations};
use cloudmux_s3::{FrontConfig, S3Service};

use config::Config;

/// mimalloc: the server allocates many short-lived buffers per request (XML,
/// headers, records); the system allocator's consolidation showed at the top of
/// the listing profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// cloudmux: one S3 endpoint in front of the filesystem and the clouds.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the S3 server.
    Serve {
        /// Configuration file; without one, cloudmux runs on embedded defaults
        /// (sled metadata and a filesystem location under ./data).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log format (`json` for containers: one JSON object per line).
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "CLOUDMUX_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Probes a health endpoint (the image's HEALTHCHECK): exits 0 when it
    /// answers 200, 1 otherwise.
    Health {
        /// The endpoint, plain `http://` only.
        #[arg(long, default_value = "http://127.0.0.1:8000/_/health/ready")]
        url: String,
    },
    /// Checks the host (Docker storage driver, d_type, kernel, inotify and
    /// open-file limits, the data directory, clock skew) and prints a
    /// PASS/WARN/FAIL table; exits non-zero when a check fails.
    Preflight {
        /// The data directory cloudmux will use (metadata and objects).
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        /// An `http://` server whose `Date` header is the reference clock
        /// (SigV4 rejects requests more than 15 minutes off).
        #[arg(long)]
        time_server: Option<String>,
        /// Root under which /proc, /sys, /etc and /boot are read (for tests).
        #[arg(long, default_value = "/", hide = true)]
        root: PathBuf,
        /// A file holding `docker info` output, instead of running Docker.
        #[arg(long, hide = true)]
        docker_info: Option<PathBuf>,
        /// A file holding `xfs_info` output, instead of running xfs_info.
        #[arg(long, hide = true)]
        xfs_info: Option<PathBuf>,
    },
    /// Works with the configured locations.
    Locations {
        #[command(subcommand)]
        command: LocationsCommand,
    },
    /// Backs up and restores the metadata store.
    Meta {
        #[command(subcommand)]
        command: MetaCommand,
    },
}

#[derive(Subcommand)]
enum MetaCommand {
    /// Saves a consistent snapshot of a running server's metadata store to
    /// FILE (signed with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of an
    /// `admin = true` account).
    Export {
        /// Where to write the backup.
        file: PathBuf,
        /// The server's endpoint.
        #[arg(long, default_value = "http://127.0.0.1:8000")]
        endpoint: String,
    },
    /// Loads a backup into the configured metadata store, which must be new
    /// (empty); run it with the server stopped.
    Import {
        /// The backup written by `cloudmux meta export`.
        file: PathBuf,
        /// Configuration file (the same as `serve`'s); without one, the
        /// embedded defaults.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LocationsCommand {
    /// Checks every configured location (credentials, bucket or container,
    /// writing, reading and deleting a probe object) and prints a table;
    /// exits non-zero when one fails.
    Check {
        /// Configuration file (the same as `serve`'s); without one, the
        /// embedded defaults.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// `cloudmux locations check`.
async fn locations_check(config_path: Option<PathBuf>) -> Result<bool, String> {
    let cfg = match &config_path {
        Some(p) => Config::load(Some(p)).map_err(|e| e.to_string())?,
        None => embedded_defaults()?.0,
    };
    let list = cfg.locations().map_err(|e| e.to_string())?;
    locations::check(&list, &mut std::io::stdout().lock())
        .await
        .map_err(|e| e.to_string())
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLOUDMUX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Reads or creates the generated credentials of the embedded defaults. The
/// file is created readable by its owner only (0600); an existing one that
/// others can read is used, with a warning.
fn default_credentials(dir: &Path) -> std::io::Result<(String, String)> {
    let file = dir.join("credentials");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let mut lines = text.lines();
        if let (Some(a), Some(s)) = (lines.next(), lines.next()) {
            warn_if_shared(&file);
            return Ok((a.trim().to_owned(), s.trim().to_owned()));
        }
    }
    std::fs::create_dir_all(dir)?;
    let access = format!("CMX{}", hex::encode_upper(rand::random::<[u8; 8]>()));
    let secret = hex::encode(rand::random::<[u8; 20]>());
    let tmp = dir.join("credentials.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut out = private_file(&tmp)?;
    out.write_all(format!("{access}\n{secret}\n").as_bytes())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, &file)?;
    Ok((access, secret))
}

/// Creates `path` new, readable and writable by its owner only.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Logs a warning when a file holding secrets is readable by its group or by
/// everyone.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{mode:o}"),
                    "the credentials file is readable by other users; run chmod 600 on it"
                );
            }
        }
    }
}

fn embedded_defaults() -> Result<(Config, Option<(String, String)>), String> {
    let data = PathBuf::from("./data");
    let (access, secret) =
        default_credentials(&data).map_err(|e| format!("./data/credentials: {e}"))?;
    let text = format!(
        "[[accounts]]\nname = \"admin\"\naccess_key = \"{access}\"\nsecret_key = \"{secret}\"\nadmin = true\n\
         [locations.local]\ntype = \"fs\"\npath = \"./data/objects\"\ndefault = true\n"
    );
    let cfg = Config::parse(&text, std::env::vars()).map_err(|e| e.to_string())?;
    Ok((cfg, Some((access, secret))))
}

async fn serve(config_path: Option<PathBuf>) -> Result<(), String> {
    let (cfg, generated) = match &config_path {
        Some(p) => (Config::load(Some(p)).map_err(|e| e.to_string())?, None),
        None => embedded_defaults()?,
    };
    #[cfg(feature = "failpoints")]
    {
        cloudmux_core::faults::setup_from_env().map_err(|e| format!("FAILPOINTS: {e}"))?;
        tracing::warn!(
            registered = cloudmux_core::faults::REGISTRY.len(),
            "failpoints compiled in: a test build, not for production"
        );
    }
    let accounts = cfg.accounts().map_err(|e| e.to_string())?;
    let locations = cfg.locations().map_err(|e| e.to_string())?;
    let (backends, default) = locations::open_all(&locations)?;
    let meta = cloudmux_meta::SledStore::open(&cfg.metadata.path)
        .map_err(|e| format!("metadata.path {}: {e}", cfg.metadata.path.display()))?;
    let account_list: Vec<(String, String)> = accounts
        .iter()
        .map(|a| (a.name.clone(), a.access_key.clone()))
        .collect();
    let gw = Gateway::new(
        GatewayConfig {
            region: cfg.server.region.clone(),
        },
        Arc::new(meta),
        Accounts::new(accounts),
        Locations::new(backends, default).map_err(|e| e.to_string())?,
    );
    let recovered = gw.recover().await.map_err(|e| format!("recovery: {e}"))?;
    if recovered > 0 {
        tracing::warn!(recovered, "resolved writes interrupted by a crash");
    }
    gw.metrics().set_per_bucket(cfg.metrics.per_bucket);
    gw.load_usage()
        .await
        .map_err(|e| format!("bucket usage scan: {e}"))?;
    let min_age = std::time::Duration::from_secs(cfg.gc.min_age_secs);
    match gw.gc_sweep(min_age).await {
        Ok(r) => tracing::info!(?r, "startup garbage collection"),
        Err(e) => tracing::warn!(error = %e, "startup garbage collection failed"),
    }
    let tls = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(c), Some(k)) => Some(
            cloudmux_s3::tls_acceptor(c, k).map_err(|e| format!("server.tls_cert/tls_key: {e}"))?,
        ),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|e| format!("server.listen {}: {e}", cfg.server.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin = match &cfg.server.admin_listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| format!("server.admin_listen {a}: {e}"))?,
        ),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("cloudmux {} listening", env!("CARGO_PKG_VERSION"));
    println!("  endpoint:   {scheme}://{addr}");
    if let Some(a) = &admin {
        let a = a.local_addr().map_err(|e| e.to_string())?;
        println!("  admin:      {scheme}://{a}");
    }
    println!("  region:     {}", cfg.server.region);
    match &generated {
        Some((access, secret)) => {
            println!("  access key: {access}");
            println!("  secret key: {secret}");
            println!("  (generated for the embedded defaults; kept in ./data/credentials)");
        }
        None => {
            for (name, key) in &account_list {
                println!("  account:    {name} (access key {key})");
            }
        }
    }
    let gw = Arc::new(gw);
    // Writes the previous process sent to a cloud (staged uploads, copies)
    // may land until its publish grace has passed, after the startup sweep:
    // one more sweep then removes what they left.
    let grace = gw.locations().max_publish_grace();
    let _after_grace = (!grace.is_zero()).then(|| {
        let gw = gw.clone();
        cloudmux_s3::ops::AbortOnDrop::new(tokio::spawn(async move {
            tokio::time::sleep(grace + std::time::Duration::from_secs(1)).await;
            match gw.gc_sweep(min_age).await {
                Ok(r) => tracing::info!(?r, "garbage collection after the publish grace"),
                Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
            }
        }))
    });
    let _gc = (cfg.gc.interval_secs > 0).then(|| {
        let gw = gw.clone();
        let every = std::time::Duration::from_secs(cfg.gc.interval_secs);
        cloudmux_s3::ops::AbortOnDrop::new(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = gw.gc_sweep(min_age).await {
                    tracing::warn!(error = %e, "garbage collection failed");
                }
            }
        }))
    });
    let svc = S3Service::new(
        gw,
        FrontConfig {
            region: cfg.server.region.clone(),
            domains: cfg.server.domains.clone(),
            metrics_token: cfg.server.metrics_token().map_err(|e| e.to_string())?,
            limits: cfg.limits.front(),
            trusted_proxies: cloudmux_s3::client_ip::parse_trusted(&cfg.server.trusted_proxies)
                .map_err(|e| format!("server.trusted_proxies: {e}"))?,
            admin_on_s3_port: cfg.server.admin_on_s3_port,
        },
    );
    let grace = std::time::Duration::from_secs(cfg.server.shutdown_timeout_secs);
    let Some(admin) = admin else {
        return svc
            .serve(listener, tls, shutdown_signal(), grace)
            .await
            .map_err(|e| e.to_string());
    };
    // Both listeners drain on the same signal.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let _signal = cloudmux_s3::ops::AbortOnDrop::new(tokio::spawn(async move {
        shutdown_signal().await;
        stop_tx.send_replace(true);
    }));
    let admin_task =
        tokio::spawn(
            svc.clone()
                .serve_admin(admin, tls.clone(), stopped(stop.clone()), grace),
        );
    let served = svc.serve(listener, tls, stopped(stop), grace).await;
    let admin_served = admin_task.await.map_err(|e| e.to_string())?;
    served.and(admin_served).map_err(|e| e.to_string())
}

/// Resolves on the first SIGTERM or Ctrl-C (SIGINT): the start of a graceful
/// shutdown (`[server] shutdown_timeout_secs`).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

/// How long the exit waits for blocking work that dropped requests left
/// running (file writes, flushes). Nothing acknowledged depends on it: a
/// response goes out only after its data and metadata are durable.
const SHUTDOWN_LEFTOVERS: std::time::Duration = std::time::Duration::from_secs(2);

/// The multi-threaded runtime of the one-shot subcommands; `None` (after
/// printing why) when it cannot be built.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("cloudmux: {e}");
            None
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Health { url } => match preflight::http_head_of("GET", &url) {
            Ok((200, _)) => std::process::ExitCode::SUCCESS,
            Ok((status, _)) => {
                eprintln!("cloudmux: {url} answered {status}");
                std::process::ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("cloudmux: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Preflight {
            data,
            time_server,
            root,
            docker_info,
            xfs_info,
        } => {
            let read = |p: Option<PathBuf>| -> Result<Option<String>, String> {
                p.map(|p| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display())))
                    .transpose()
            };
            let (docker_info, xfs_info) = match (read(docker_info), read(xfs_info)) {
                (Ok(d), Ok(x)) => (d, x),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("cloudmux: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            let inputs =
                preflight::gather(root, data, docker_info, xfs_info, time_server.as_deref());
            let findings = preflight::run_checks(&inputs);
            match preflight::print_report(&findings, &mut std::io::stdout().lock()) {
                Ok(false) => std::process::ExitCode::SUCCESS,
                Ok(true) => std::process::ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("cloudmux: {e}");
                    std::process::ExitCode::from(2)
                }
            }
        }
        Command::Locations {
            command: LocationsCommand::Check { config },
        } => {
            init_logs(LogFormat::Text);
            let Some(rt) = runtime() else {
                return std::process::ExitCode::FAILURE;
            };
            match rt.block_on(locations_check(config)) {
                Ok(true) => std::process::ExitCode::SUCCESS,
                Ok(false) => std::process::ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("cloudmux: {e}");
                    std::process::ExitCode::from(2)
                }
            }
        }
        Command::Meta { command } => {
            init_logs(LogFormat::Text);
            let Some(rt) = runtime() else {
                return std::process::ExitCode::FAILURE;
            };
            let result = rt.block_on(async {
                match command {
                    MetaCommand::Export { file, endpoint } => meta_cmd::export(&file, &endpoint)
                        .await
                        .map(|n| format!("exported {n} entries to {}", file.display())),
                    MetaCommand::Import { file, config } => {
                        let cfg = match &config {
                            Some(p) => Config::load(Some(p)).map_err(|e| e.to_string())?,
                            None => embedded_defaults()?.0,
                        };
                        meta_cmd::import(&file, &cfg).await.map(|n| {
                            format!("imported {n} entries into {}", cfg.metadata.path.display())
                        })
                    }
                }
            });
            match result {
                Ok(line) => {
                    println!("{line}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cloudmux: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Serve { config, log_format } => {
            init_logs(log_format);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(64)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cloudmux: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let served = rt.block_on(serve(config));
            rt.shutdown_timeout(SHUTDOWN_LEFTOVERS);
            match served {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cloudmux: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
