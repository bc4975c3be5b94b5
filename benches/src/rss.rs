//! Peak resident memory of the server process, from `/proc/PID/status`.
//!
//! Before each workload the kernel's high-water mark is reset (`echo 5 >
//! /proc/PID/clear_refs`); during it `VmRSS` is sampled every 20 ms; the
//! peak is the larger of the sampled maximum and `VmHWM` afterwards (or the
//! sampled maximum alone when the reset was refused).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One `kB` field of `/proc/PID/status`, in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A running sampler of one process's RSS.
pub struct RssSampler {
    pid: u32,
    hwm_reset: bool,
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Resets the high-water mark of `pid` and starts sampling.
    pub fn start(pid: u32) -> Self {
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(status_kib(pid, "VmRSS").unwrap_or(0)));
        let task = tokio::spawn({
            let stop = stop.clone();
            let max_kib = max_kib.clone();
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kib) = status_kib(pid, "VmRSS") {
                        max_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        RssSampler {
            pid,
            hwm_reset,
            stop,
            max_kib,
            task,
        }
    }

    /// Stops sampling; the peak RSS in MiB, or `None` when the process
    /// could not be read at all.
    pub async fn finish(self) -> Option<f64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let mut kib = self.max_kib.load(Ordering::Relaxed);
        if self.hwm_reset {
            kib = kib.max(status_kib(self.pid, "VmHWM").unwrap_or(0));
        }
        (kib > 0).then(|| kib as f64 / 1024.0)
    }
}
