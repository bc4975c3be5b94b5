//! Results files and the side-by-side table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::workload::{Workload, WorkloadResult};

/// Every workload measured against one server (`cloudmux-bench load --json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerRun {
    /// Server label (`cloudmux`, `floor`, `rclone`, ...).
    pub server: String,
    /// The endpoint it was measured at.
    pub endpoint: String,
    /// Requested concurrency (the 256 MiB workloads use 1).
    pub concurrency: usize,
    /// Timed seconds per workload.
    pub duration_s: f64,
    /// One entry per workload run.
    pub results: Vec<WorkloadResult>,
    /// Why nothing could be measured (e.g. bucket creation failed).
    pub error: Option<String>,
}

/// A server that took no part in the run, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Missing {
    /// Server label.
    pub server: String,
    /// What went wrong (install or start failure).
    pub reason: String,
}

/// Throughput ratios of the reference server for one workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ratio {
    /// Workload name.
    pub workload: String,
    /// Other server label (a peer or the floor).
    pub against: String,
    /// reference ops/s divided by the other's ops/s (`None` if either is 0).
    pub ratio: Option<f64>,
}

/// The combined results file (`benches/results/latest.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Seconds since the Unix epoch when the report was made.
    pub generated_unix: u64,
    /// CPUs the machine offers (load generator and server share them).
    pub cpus: usize,
    /// The server the ratios are about.
    pub reference: String,
    /// The floor server's label.
    pub floor: String,
    /// Free-form facts about the run (versions, wall time).
    pub notes: Vec<String>,
    /// Servers that could not be installed or started.
    pub missing: Vec<Missing>,
    /// Per-server measurements.
    pub servers: Vec<ServerRun>,
    /// reference/other ops/s per workload and other server.
    pub ratios: Vec<Ratio>,
}

fn ops(run: &ServerRun, w: &str) -> Option<f64> {
    run.results
        .iter()
        .find(|r| r.workload == w)
        .map(|r| r.ops_per_s)
        .filter(|v| *v > 0.0)
}

impl Report {
    /// Builds the report and its ratios.
    pub fn new(
        reference: &str,
        floor: &str,
        servers: Vec<ServerRun>,
        missing: Vec<Missing>,
        notes: Vec<String>,
    ) -> Self {
        let mut ratios = Vec::new();
        if let Some(me) = servers.iter().find(|s| s.server == reference) {
            let measured = Workload::ALL
                .map(Workload::name)
                .into_iter()
                .filter(|w| me.results.iter().any(|r| r.workload == *w));
            for w in measured {
                for other in servers.iter().filter(|s| s.server != reference) {
                    ratios.push(Ratio {
                        workload: w.to_owned(),
                        against: other.server.clone(),
                        ratio: ops(me, w).zip(ops(other, w)).map(|(a, b)| a / b),
                    });
                }
            }
        }
        Report {
            generated_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            reference: reference.to_owned(),
            floor: floor.to_owned(),
            notes,
            missing,
            servers,
            ratios,
        }
    }

    /// The plain-text tables.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:<9} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}  note",
            "workload", "server", "conc", "ops/s", "MiB/s", "p50 ms", "p99 ms", "RSS MiB", "errors"
        );
        for w in Workload::ALL.map(Workload::name) {
            for s in &self.servers {
                let Some(r) = s.results.iter().find(|r| r.workload == w) else {
                    continue;
                };
                let rss = r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}"));
                let mut note = r.note.clone().unwrap_or_default();
                if let Some(e) = &r.first_error {
                    let e: String = e.chars().take(120).collect();
                    note = format!(
                        "{note}{}error: {e}",
                        if note.is_empty() { "" } else { "; " }
                    );
                }
                let _ = writeln!(
                    out,
                    "{:<8} {:<9} {:>5} {:>10.1} {:>9.1} {:>9.2} {:>9.2} {:>9} {:>7}  {note}",
                    w,
                    s.server,
                    r.concurrency,
                    r.ops_per_s,
                    r.mib_per_s,
                    r.p50_ms,
                    r.p99_ms,
                    rss,
                    r.errors
                );
            }
        }
        for s in self.servers.iter().filter(|s| s.error.is_some()) {
            let _ = writeln!(
                out,
                "{}: {}",
                s.server,
                s.error.as_deref().unwrap_or_default()
            );
        }
        let others: Vec<&str> = self
            .servers
            .iter()
            .map(|s| s.server.as_str())
            .filter(|s| *s != self.reference)
            .collect();
        if !self.ratios.is_empty() {
            let _ = write!(
                out,
                "\nops/s ratios, {} / other (>1: {} is faster)\n{:<8}",
                self.reference, self.reference, "workload"
            );
            for o in &others {
                let _ = write!(out, " {:>16}", format!("{}/{o}", self.reference));
            }
            out.push('\n');
            let mut rows: Vec<&str> = Vec::new();
            for r in &self.ratios {
                if !rows.contains(&r.workload.as_str()) {
                    rows.push(&r.workload);
                }
            }
            for w in rows {
                let _ = write!(out, "{w:<8}");
                for o in &others {
                    let r = self
                        .ratios
                        .iter()
                        .find(|r| r.workload == w && r.against == *o);
                    let cell = r
                        .and_then(|r| r.ratio)
                        .map_or("n/a".into(), |v| format!("{v:.2}x"));
                    let _ = write!(out, " {cell:>16}");
                }
                out.push('\n');
            }
        }
        for m in &self.missing {
            let _ = writeln!(out, "not measured: {}: {}", m.server, m.reason);
        }
        for n in &self.notes {
            let _ = writeln!(out, "{n}");
        }
        out
    }
}
