//! The soak's chaos: the cloudmux process (started, SIGKILLed and started
//! again on the same port) and the emulators (frozen with SIGSTOP of their
//! process group and thawed with SIGCONT), each on its own thread with a
//! seeded schedule, and the event log both write to.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long one start may take to open the port (recovery and the startup
/// garbage collection run first, and a paused cloud slows them down).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times a start that exits early is tried again.
const START_TRIES: u32 = 20;

/// The events file (`[seconds] what`), echoed to stderr.
pub(crate) struct Events {
    file: Mutex<std::fs::File>,
    t0: Instant,
}

impl Events {
    /// Creates (truncates) the file at `path`; times count from `t0`.
    pub fn create(path: &Path, t0: Instant) -> Result<Self, String> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Events {
            file: Mutex::new(file),
            t0,
        })
    }

    /// Writes one event.
    pub fn log(&self, what: &str) {
        let line = format!("[{:7.1} s] {what}", self.t0.elapsed().as_secs_f64());
        eprintln!("soak {line}");
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{line}");
    }
}

/// The cloudmux process.
pub(crate) struct Server {
    bin: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    port: u16,
    log_level: String,
    child: Option<Child>,
    /// Successful starts.
    pub starts: u32,
    /// Starts whose process exited before opening the port.
    pub failed_starts: u32,
}

impl Server {
    /// A server run as `bin serve --config FILE`, listening on 127.0.0.1:`port`,
    /// whose output is appended to `log` and whose pid is written to
    /// `pid_file`.
    pub fn new(
        bin: PathBuf,
        log: PathBuf,
        pid_file: PathBuf,
        port: u16,
        log_level: String,
    ) -> Self {
        Server {
            bin,
            log,
            pid_file,
            port,
            log_level,
            child: None,
            starts: 0,
            failed_starts: 0,
        }
    }

    /// Whether a process is running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the server with `config` and waits until its port accepts
    /// connections; a process that exits first is started again after a
    /// second, up to [`START_TRIES`] times.
    pub fn start(&mut self, config: &Path, events: &Events) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        for attempt in 1..=START_TRIES {
            let mut log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(|e| format!("{}: {e}", self.log.display()))?;
            let _ = writeln!(
                log,
                "==== soak: start {} ({}) with {}",
                self.starts + 1,
                attempt,
                config.display()
            );
            let err = log.try_clone().map_err(|e| e.to_string())?;
            let mut child = Command::new(&self.bin)
                .arg("serve")
                .arg("--config")
                .arg(config)
                .env("CLOUDMUX_LOG", &self.log_level)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("{}: {e}", self.bin.display()))?;
            let _ = std::fs::write(&self.pid_file, format!("{}\n", child.id()));
            let t = Instant::now();
            let up = loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break true;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    events.log(&format!(
                        "server exited while starting ({status}); retrying"
                    ));
                    break false;
                }
                if t.elapsed() > START_TIMEOUT {
                    events.log("server did not open its port in time; killing it and retrying");
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if up {
                self.starts += 1;
                events.log(&format!(
                    "server started (pid {}, {:.1} s to open the port)",
                    child.id(),
                    t.elapsed().as_secs_f64()
                ));
                self.child = Some(child);
                return Ok(());
            }
            self.failed_starts += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        Err(format!(
            "the server did not start in {START_TRIES} tries (see {})",
            self.log.display()
        ))
    }

    /// SIGKILLs the server and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the server and waits up to 30 s, then SIGKILLs it.
    pub fn stop(&mut self) {
        let Some(c) = &mut self.child else { return };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if !matches!(c.try_wait(), Ok(None)) {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last line of `path` after byte `from` that contains `needle`,
/// without terminal colour codes.
pub(crate) fn last_line_with(path: &Path, from: u64, needle: &str) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let tail = text.get(from as usize..).unwrap_or_default();
    let line = String::from_utf8_lossy(tail)
        .lines()
        .rfind(|l| l.contains(needle))?
        .to_owned();
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find('m').map_or(after.len(), |m| m + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    Some(out)
}

/// What the killer thread needs.
pub(crate) struct KillPlan {
    /// The server.
    pub server: Arc<Mutex<Server>>,
    /// The config it is restarted with.
    pub config: PathBuf,
    /// Seed of the schedule.
    pub seed: u64,
    /// Shortest and longest time between kills, in seconds.
    pub min: u64,
    /// See `min`.
    pub max: u64,
    /// Set when the load is over.
    pub stop: Arc<AtomicBool>,
    /// Kills done.
    pub kills: Arc<AtomicU64>,
    /// Set when a restart failed for good.
    pub failed: Arc<AtomicBool>,
    /// The event log.
    pub events: Arc<Events>,
}

/// Sleeps `d` in short slices; false when `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    !stop.load(Ordering::SeqCst)
}

/// Starts the thread that SIGKILLs the server every `min..=max` seconds
/// (counted from the end of the previous restart) and starts it again.
pub(crate) fn spawn_killer(p: KillPlan) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = StdRng::seed_from_u64(p.seed ^ 0x6B69_6C6C);
        loop {
            let wait = Duration::from_millis(rng.random_range(p.min * 1000..=p.max * 1000));
            if !sleep_unless(&p.stop, wait) {
                return;
            }
            let mut s = p.server.lock().unwrap_or_else(|e| e.into_inner());
            s.kill();
            let n = p.kills.fetch_add(1, Ordering::SeqCst) + 1;
            p.events.log(&format!("kill {n}: server SIGKILLed"));
            if let Err(e) = s.start(&p.config, &p.events) {
                p.events.log(&format!("restart after kill {n} failed: {e}"));
                p.failed.store(true, Ordering::SeqCst);
                return;
            }
        }
    })
}

/// An emulator process group that can be frozen.
pub(crate) struct Emulator {
    name: &'static str,
    pid: u32,
}

impl Emulator {
    /// The emulator `name` whose process leads process group `pid`.
    pub fn new(name: &'static str, pid: u32) -> Self {
        Emulator { name, pid }
    }

    fn signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg("--")
            .arg(format!("-{}", self.pid))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGSTOPs the group and waits (up to 10 s) until every thread of the
    /// leader is stopped: until then a thread may still answer.
    fn pause(&self) -> bool {
        if !self.signal("STOP") {
            return false;
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if all_threads_stopped(self.pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn resume(&self) {
        self.signal("CONT");
    }
}

/// Whether every thread of `pid` is stopped (`T` or `t` in its stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
            })
            .unwrap_or(true)
    })
}

/// What the pauser thread needs.
pub(crate) struct PausePlan {
    /// The emulators, frozen in turn.
    pub emulators: Vec<Emulator>,
    /// Seed of the schedule.
    pub seed: u64,
    /// Shortest and longest time between pauses, in seconds.
    pub gap: (u64, u64),
    /// Shortest and longest pause, in seconds.
    pub length: (u64, u64),
    /// Set when the load is over (a pause in progress ends at once).
    pub stop: Arc<AtomicBool>,
    /// Pauses done.
    pub pauses: Arc<AtomicU64>,
    /// The event log.
    pub events: Arc<Events>,
}

/// Starts the thread that freezes the emulators, one at a time, now and
/// then.
pub(crate) fn spawn_pauser(p: PausePlan) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = StdRng::seed_from_u64(p.seed ^ 0x7061_7573);
        // The emulators take turns, starting with a random one, so that a
        // short run freezes each of them.
        let mut turn = rng.random_range(0..p.emulators.len());
        loop {
            let gap = Duration::from_millis(rng.random_range(p.gap.0 * 1000..=p.gap.1 * 1000));
            if !sleep_unless(&p.stop, gap) {
                return;
            }
            let e = &p.emulators[turn % p.emulators.len()];
            turn += 1;
            let len =
                Duration::from_millis(rng.random_range(p.length.0 * 1000..=p.length.1 * 1000));
            if !e.pause() {
                p.events
                    .log(&format!("could not pause {} (pid {})", e.name, e.pid));
                continue;
            }
            let n = p.pauses.fetch_add(1, Ordering::SeqCst) + 1;
            p.events.log(&format!(
                "pause {n}: {} frozen for {:.1} s",
                e.name,
                len.as_secs_f64()
            ));
            sleep_unless(&p.stop, len);
            e.resume();
            p.events.log(&format!("pause {n}: {} resumed", e.name));
        }
    })
}
