//! `cloudmux preflight`: checks the host for the problems that bite S3 servers
//! in containers, and prints one PASS/WARN/FAIL line with advice per check.
//!
//! Every host input is injectable ([`HostInputs`]): the `/proc`, `/sys`,
//! `/etc` and `/boot` files are read under a root directory (`/` in real use),
//! and the outputs of `docker info` and `xfs_info` are text that the caller
//! supplies. The checks themselves are pure functions of those inputs, so the
//! tests run them against fixture files on any machine.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine for production.
    Pass,
    /// Works, but deserves a look.
    Warn,
    /// Will cause trouble: fix before production.
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Short name of the check.
    pub check: &'static str,
    /// Its outcome.
    pub level: Level,
    /// One line: what was found and what to do.
    pub advice: String,
}

fn finding(check: &'static str, level: Level, advice: impl Into<String>) -> Finding {
    Finding {
        check,
        level,
        advice: advice.into(),
    }
}

/// Everything the checks read from the host.
#[derive(Debug, Clone)]
pub struct HostInputs {
    /// Root under which `proc/`, `sys/`, `etc/` and `boot/` are read (`/`).
    pub root: PathBuf,
    /// Output of `docker info`, when Docker answered.
    pub docker_info: Option<String>,
    /// Output of `xfs_info` for the data directory's filesystem, when it is
    /// XFS and the tool answered.
    pub xfs_info: Option<String>,
    /// The data directory to test.
    pub data_dir: PathBuf,
    /// Clock reference: the `Date` header the time server sent, if asked.
    pub server_date: Option<Result<SystemTime, String>>,
    /// The local clock when the time server answered.
    pub now: SystemTime,
}

impl HostInputs {
    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(rel)).ok()
    }
}

/// Runs every check.
pub fn run_checks(h: &HostInputs) -> Vec<Finding> {
    let daemon_json = h.read("etc/docker/daemon.json");
    let mounts = h.read("proc/mounts");
    let fs_type = mounts
        .as_deref()
        .and_then(|m| mount_fs_type(m, &absolute(&h.data_dir)));
    vec![
        storage_driver(h.docker_info.as_deref(), daemon_json.as_deref()),
        d_type(
            h.docker_info.as_deref(),
            fs_type.as_deref(),
            h.xfs_info.as_deref(),
        ),
        kernel(h),
        inotify(
            h.read("proc/sys/fs/inotify/max_user_watches").as_deref(),
            h.read("proc/sys/fs/inotify/max_user_instances").as_deref(),
        ),
        open_files(h.read("proc/self/limits").as_deref()),
        data_dir(&h.data_dir),
        clock(h.server_date.as_ref(), h.now),
    ]
}

/// Prints the report as a table; returns whether any check failed.
pub fn print_report(findings: &[Finding], out: &mut impl Write) -> std::io::Result<bool> {
    writeln!(out, "{:<16} {:<6} ADVICE", "CHECK", "RESULT")?;
    for f in findings {
        writeln!(out, "{:<16} {:<6} {}", f.check, f.level, f.advice)?;
    }
    let fails = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warns = findings.iter().filter(|f| f.level == Level::Warn).count();
    writeln!(
        out,
        "preflight: {} passed, {warns} warned, {fails} failed",
        findings.len() - fails - warns
    )?;
    Ok(fails > 0)
}

/// A `Key: value` line of `docker info`.
fn docker_field<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The Docker storage driver, from `docker info` or else `daemon.json`.
pub fn storage_driver(docker_info: Option<&str>, daemon_json: Option<&str>) -> Finding {
    const C: &str = "storage-driver";
    let (driver, source, loop_lvm) = if let Some(d) =
        docker_info.and_then(|i| docker_field(i, "Storage Driver"))
    {
        let looped = docker_info.is_some_and(|i| docker_field(i, "Data loop file").is_some());
        (d.to_owned(), "docker info", looped)
    } else if let Some(text) = daemon_json {
        let doc: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return finding(
                    C,
                    Level::Fail,
                    format!("/etc/docker/daemon.json does not parse ({e}); Docker will not start"),
                )
            }
        };
        let Some(d) = doc.get("storage-driver").and_then(|v| v.as_str()) else {
            return finding(
                C,
                Level::Warn,
                "daemon.json sets no storage-driver: set \"storage-driver\": \"overlay2\" \
                 (see docker/daemon.json)",
            );
        };
        let thin_pool = doc
            .get("storage-opts")
            .and_then(|v| v.as_array())
            .is_some_and(|o| {
                o.iter()
                    .any(|x| x.as_str().is_some_and(|s| s.starts_with("dm.thinpooldev")))
            });
        (d.to_owned(), "daemon.json", !thin_pool)
    } else {
        return finding(
            C,
            Level::Warn,
            "Docker not found (no `docker info`, no /etc/docker/daemon.json); \
             if cloudmux runs in containers, use overlay2",
        );
    };
    let (level, why) = match driver.as_str() {
        "overlay2" => (Level::Pass, "the recommended driver".to_owned()),
        "devicemapper" if loop_lvm => (
            Level::Fail,
            "devicemapper in loop-lvm mode is slow and fills up silently: use overlay2".to_owned(),
        ),
        "devicemapper" => (
            Level::Warn,
            "devicemapper (direct-lvm) is deprecated and prone to \"device or resource busy\": \
             move to overlay2"
                .to_owned(),
        ),
        "aufs" => (
            Level::Fail,
            "aufs is removed from current Docker and not in mainline kernels: use overlay2"
                .to_owned(),
        ),
        "vfs" => (
            Level::Fail,
            "vfs copies every layer in full: use overlay2".to_owned(),
        ),
        "btrfs" | "zfs" => (
            Level::Warn,
            format!(
                "{driver} works but copies-on-write object data; overlay2 on ext4/xfs is preferred"
            ),
        ),
        "overlay" => (
            Level::Warn,
            "the legacy overlay driver exhausts inodes: use overlay2".to_owned(),
        ),
        other => (
            Level::Warn,
            format!("{other} is not a tested driver: use overlay2"),
        ),
    };
    finding(C, level, format!("{driver} (from {source}): {why}"))
}

/// The filesystem type of the mount that holds `path`, from `/proc/mounts`.
pub fn mount_fs_type(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(point), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let point = point.replace("\\040", " ");
        if path.starts_with(&point) && best.as_ref().is_none_or(|(len, _)| point.len() >= *len) {
            best = Some((point.len(), fstype.to_owned()));
        }
    }
    best.map(|(_, t)| t)
}

/// `d_type` support: Docker's own report, then the data directory's filesystem
/// (XFS needs `ftype=1`).
pub fn d_type(docker_info: Option<&str>, fs_type: Option<&str>, xfs_info: Option<&str>) -> Finding {
    const C: &str = "d_type";
    if docker_info.and_then(|i| docker_field(i, "Supports d_type")) == Some("false") {
        return finding(
            C,
            Level::Fail,
            "Docker's backing filesystem lacks d_type: overlay2 misbehaves; \
             reformat XFS with `mkfs.xfs -n ftype=1`",
        );
    }
    match fs_type {
        Some("xfs") => match xfs_info {
            Some(text) if text.contains("ftype=1") => {
                finding(C, Level::Pass, "xfs with ftype=1: d_type supported")
            }
            Some(text) if text.contains("ftype=0") => finding(
                C,
                Level::Fail,
                "xfs formatted with ftype=0: no d_type; reformat with `mkfs.xfs -n ftype=1`",
            ),
            _ => finding(
                C,
                Level::Warn,
                "xfs, but ftype is unknown: check `xfs_info <mountpoint> | grep ftype` shows ftype=1",
            ),
        },
        Some(t @ ("ext4" | "ext3" | "btrfs" | "tmpfs" | "overlay" | "zfs" | "f2fs")) => {
            finding(C, Level::Pass, format!("{t}: d_type supported"))
        }
        Some(t) => finding(
            C,
            Level::Warn,
            format!("{t}: d_type and fsync behaviour unverified; prefer a local ext4 or xfs (ftype=1)"),
        ),
        None => finding(
            C,
            Level::Warn,
            "could not find the data directory's filesystem in /proc/mounts",
        ),
    }
}

/// `major.minor` of a kernel release string such as `5.15.0-91-generic`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The kernel against the cgroup kernel-memory (kmem) accounting leak.
fn kernel(h: &HostInputs) -> Finding {
    let Some(release) = h.read("proc/sys/kernel/osrelease") else {
        return finding(
            "kernel",
            Level::Warn,
            "/proc/sys/kernel/osrelease unreadable: kernel not checked",
        );
    };
    let release = release.trim().to_owned();
    let config = h.read(&format!("boot/config-{release}"));
    let cmdline = h.read("proc/cmdline").unwrap_or_default();
    let cgroup_v2 = h.root.join("sys/fs/cgroup/cgroup.controllers").exists();
    kernel_check(&release, config.as_deref(), &cmdline, cgroup_v2)
}

/// The kernel check proper: `config` is the kernel's build config when
/// readable, `cmdline` its boot command line.
pub fn kernel_check(
    release: &str,
    config: Option<&str>,
    cmdline: &str,
    cgroup_v2: bool,
) -> Finding {
    const C: &str = "kernel";
    let Some((major, minor)) = kernel_version(release) else {
        return finding(
            C,
            Level::Warn,
            format!("unrecognised kernel release {release:?}"),
        );
    };
    let built_with_kmem = config.map(|c| c.lines().any(|l| l.trim() == "CONFIG_MEMCG_KMEM=y"));
    let kmem_off = cmdline
        .split_whitespace()
        .any(|a| a == "cgroup.memory=nokmem");
    let kmem = built_with_kmem.map(|b| b && !kmem_off);
    if (major, minor) < (4, 0) {
        return match kmem {
            Some(false) => finding(
                C,
                Level::Warn,
                format!("{release}: older than 4.0 but kernel-memory accounting is off; upgrade the kernel"),
            ),
            Some(true) => finding(
                C,
                Level::Fail,
                format!(
                    "{release} with CONFIG_MEMCG_KMEM: cgroup kernel-memory leak ends in \
                     \"no space left on device\"; upgrade to a 4.x+ kernel or boot with cgroup.memory=nokmem"
                ),
            ),
            None => finding(
                C,
                Level::Fail,
                format!(
                    "{release} is older than 4.0 (known cgroup kernel-memory leak) and its config is \
                     unreadable; upgrade the kernel"
                ),
            ),
        };
    }
    if kmem == Some(true) && !cgroup_v2 {
        return finding(
            C,
            Level::Warn,
            format!(
                "{release}: kernel-memory accounting on cgroup v1 leaks with older runc (< 1.0); \
                 use runc >= 1.0, cgroup v2, or boot with cgroup.memory=nokmem"
            ),
        );
    }
    let note = match kmem {
        None => " (kernel config unreadable)",
        _ => "",
    };
    finding(
        C,
        Level::Pass,
        format!("{release}: no known kernel-memory leak{note}"),
    )
}

fn parse_u64(text: Option<&str>) -> Option<u64> {
    text.and_then(|t| t.trim().parse().ok())
}

/// inotify limits (`fs.inotify.max_user_watches` and `max_user_instances`).
pub fn inotify(watches: Option<&str>, instances: Option<&str>) -> Finding {
    const C: &str = "inotify";
    let (Some(w), Some(i)) = (parse_u64(watches), parse_u64(instances)) else {
        return finding(
            C,
            Level::Warn,
            "/proc/sys/fs/inotify limits unreadable: not checked",
        );
    };
    let what = format!("max_user_watches={w} max_user_instances={i}");
    let advice =
        "raise with sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=8192";
    if w < 8192 || i < 128 {
        finding(
            C,
            Level::Fail,
            format!("{what}: containers will hit \"no space left on device\"; {advice}"),
        )
    } else if w < 65536 || i < 512 {
        finding(
            C,
            Level::Warn,
            format!("{what}: low for a container host; {advice}"),
        )
    } else {
        finding(C, Level::Pass, what)
    }
}

/// The open-file limit, from the `Max open files` line of `/proc/self/limits`.
pub fn open_files(limits: Option<&str>) -> Finding {
    const C: &str = "open-files";
    let soft = limits.and_then(|t| {
        t.lines().find_map(|l| {
            let rest = l.strip_prefix("Max open files")?;
            let soft = rest.split_whitespace().next()?;
            Some(if soft == "unlimited" {
                u64::MAX
            } else {
                soft.parse().ok()?
            })
        })
    });
    let Some(n) = soft else {
        return finding(C, Level::Warn, "/proc/self/limits unreadable: not checked");
    };
    let shown = if n == u64::MAX {
        "unlimited".to_owned()
    } else {
        n.to_string()
    };
    let advice =
        "raise to 65536 or more (ulimit -n, LimitNOFILE=, docker --ulimit nofile=65536:65536)";
    if n < 1024 {
        finding(
            C,
            Level::Fail,
            format!("soft limit {shown}: too few for concurrent requests; {advice}"),
        )
    } else if n < 65536 {
        finding(C, Level::Warn, format!("soft limit {shown}; {advice}"))
    } else {
        finding(C, Level::Pass, format!("soft limit {shown}"))
    }
}

/// Writes, fsyncs and removes a probe file in `dir`, and fsyncs `dir`.
fn write_probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".cloudmux-preflight-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&probe)?;
        f.write_all(b"cloudmux preflight")?;
        f.sync_all()?;
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    result
}

/// The data directory is writable and fsync works there.
pub fn data_dir(dir: &Path) -> Finding {
    const C: &str = "data-dir";
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => match write_probe(dir) {
            Ok(()) => finding(
                C,
                Level::Pass,
                format!("{}: writable, fsync works", dir.display()),
            ),
            Err(e) => finding(
                C,
                Level::Fail,
                format!(
                    "{}: write or fsync failed ({e}); fix permissions (the image runs as uid 10001) \
                     or the mount",
                    dir.display()
                ),
            ),
        },
        Ok(_) => finding(
            C,
            Level::Fail,
            format!("{}: exists but is not a directory", dir.display()),
        ),
        Err(_) => {
            let parent = dir
                .ancestors()
                .skip(1)
                .find(|p| p.exists())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            if !parent.is_dir() {
                return finding(
                    C,
                    Level::Fail,
                    format!(
                        "{} cannot be created: {} is not a directory",
                        dir.display(),
                        parent.display()
                    ),
                );
            }
            match write_probe(&parent) {
                Ok(()) => finding(
                    C,
                    Level::Warn,
                    format!(
                        "{} does not exist yet (cloudmux will create it; {} is writable)",
                        dir.display(),
                        parent.display()
                    ),
                ),
                Err(e) => finding(
                    C,
                    Level::Fail,
                    format!(
                        "{} does not exist and {} is not writable ({e})",
                        dir.display(),
                        parent.display()
                    ),
                ),
            }
        }
    }
}

/// Clock skew against a time server's `Date` header. SigV4 rejects requests
/// signed more than 15 minutes off.
pub fn clock(server_date: Option<&Result<SystemTime, String>>, now: SystemTime) -> Finding {
    const C: &str = "clock";
    let date =
        match server_date {
            None => return finding(
                C,
                Level::Warn,
                "not checked: give --time-server http://HOST (a server with a correct Date header)",
            ),
            Some(Err(e)) => {
                return finding(
                    C,
                    Level::Warn,
                    format!("time server did not answer ({e}): not checked"),
                )
            }
            Some(Ok(d)) => *d,
        };
    let skew = match date.duration_since(now) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    let secs = skew.as_secs();
    if skew >= Duration::from_secs(15 * 60) {
        finding(
            C,
            Level::Fail,
            format!(
                "clock is {secs} s off: SigV4 rejects requests beyond 15 minutes; run NTP (chrony)"
            ),
        )
    } else if skew > Duration::from_secs(60) {
        finding(
            C,
            Level::Warn,
            format!("clock is {secs} s off; run NTP (chrony) before it drifts to 15 minutes"),
        )
    } else {
        finding(
            C,
            Level::Pass,
            format!("clock within {secs} s of the time server"),
        )
    }
}

/// Sends a bodiless request to a plain `http://` URL and returns the status
/// code and the response head (status line and headers).
pub fn http_head_of(method: &str, url: &str) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let timeout = Duration::from_secs(5);
    let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut stream =
        std::net::TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: cloudmux\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    Ok((status, text))
}

/// Fetches the `Date` header of `url` (plain `http://` only) with a HEAD request.
pub fn fetch_date(url: &str) -> Result<SystemTime, String> {
    let (_, text) = http_head_of("HEAD", url)?;
    let date = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("date")
                .then(|| v.trim().to_owned())
        })
        .ok_or("no Date header in the answer")?;
    httpdate::parse_http_date(&date).map_err(|e| format!("Date {date:?}: {e}"))
}

fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    abs.ancestors()
        .find_map(|a| {
            a.canonicalize()
                .ok()
                .map(|c| c.join(abs.strip_prefix(a).unwrap_or(Path::new(""))))
        })
        .unwrap_or(abs)
}

/// Runs a command with a time limit and returns its standard output when it
/// exits successfully.
pub fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                child.stdout.take()?.read_to_string(&mut out).ok()?;
                return status.success().then_some(out);
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The mount point holding `path`, from `/proc/mounts`.
pub fn mount_point(mounts: &str, path: &Path) -> Option<PathBuf> {
    mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| path.starts_with(p))
        .max_by_key(|p| p.as_os_str().len())
}

/// Gathers the real host's inputs: `docker info` and `xfs_info` are run when
/// they exist, unless their text is given.
pub fn gather(
    root: PathBuf,
    data_dir: PathBuf,
    docker_info: Option<String>,
    xfs_info: Option<String>,
    time_server: Option<&str>,
) -> HostInputs {
    let docker_info = docker_info.or_else(|| command_output("docker", &["info"]));
    let xfs_info = xfs_info.or_else(|| {
        let mounts = std::fs::read_to_string(root.join("proc/mounts")).ok()?;
        let path = absolute(&data_dir);
        if mount_fs_type(&mounts, &path).as_deref() != Some("xfs") {
            return None;
        }
        let point = mount_point(&mounts, &path)?;
        command_output("xfs_info", &[point.to_str()?])
    });
    let server_date = time_server.map(fetch_date);
    HostInputs {
        root,
        docker_info,
        xfs_info,
        data_dir,
        server_date,
        now: SystemTime::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/preflight")
            .join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn level(f: Finding) -> Level {
        f.level
    }

    #[test]
    fn storage_driver_from_docker_info() {
        let l = |name: &str| level(storage_driver(Some(&fixture(name)), None));
        assert_eq!(l("docker-info/overlay2.txt"), Level::Pass);
        assert_eq!(l("docker-info/btrfs.txt"), Level::Warn);
        assert_eq!(l("docker-info/devicemapper-direct.txt"), Level::Warn);
        assert_eq!(l("docker-info/devicemapper-loop.txt"), Level::Fail);
        assert_eq!(l("docker-info/aufs.txt"), Level::Fail);
    }

    #[test]
    fn storage_driver_from_daemon_json_when_docker_does_not_answer() {
        let l = |name: &str| level(storage_driver(None, Some(&fixture(name))));
        assert_eq!(l("daemon/overlay2.json"), Level::Pass);
        assert_eq!(l("daemon/no-driver.json"), Level::Warn);
        assert_eq!(l("daemon/devicemapper-thinpool.json"), Level::Warn);
        assert_eq!(l("daemon/devicemapper-loop.json"), Level::Fail);
        assert_eq!(l("daemon/broken.json"), Level::Fail);
        // docker info wins over daemon.json.
        let f = storage_driver(
            Some(&fixture("docker-info/overlay2.txt")),
            Some(&fixture("daemon/devicemapper-loop.json")),
        );
        assert_eq!(f.level, Level::Pass);
        assert!(f.advice.contains("docker info"), "{}", f.advice);
        // Neither: Docker is not there.
        assert_eq!(level(storage_driver(None, None)), Level::Warn);
        // The repository's own daemon.json is the recommended one.
        let ours = include_str!("../../../docker/daemon.json");
        assert_eq!(level(storage_driver(None, Some(ours))), Level::Pass);
    }

    #[test]
    fn d_type_support() {
        let ftype1 = fixture("xfs-info/ftype1.txt");
        let ftype0 = fixture("xfs-info/ftype0.txt");
        assert_eq!(level(d_type(None, Some("xfs"), Some(&ftype1))), Level::Pass);
        assert_eq!(level(d_type(None, Some("ext4"), None)), Level::Pass);
        assert_eq!(level(d_type(None, Some("xfs"), None)), Level::Warn);
        assert_eq!(level(d_type(None, Some("nfs4"), None)), Level::Warn);
        assert_eq!(level(d_type(None, None, None)), Level::Warn);
        assert_eq!(level(d_type(None, Some("xfs"), Some(&ftype0))), Level::Fail);
        let no_dtype = fixture("docker-info/overlay2-no-dtype.txt");
        assert_eq!(
            level(d_type(Some(&no_dtype), Some("ext4"), None)),
            Level::Fail
        );
        let fine = fixture("docker-info/overlay2.txt");
        assert_eq!(
            level(d_type(Some(&fine), Some("xfs"), Some(&ftype1))),
            Level::Pass
        );
    }

    #[test]
    fn the_mount_holding_a_path() {
        let m = fixture("proc/mounts-ext4");
        assert_eq!(
            mount_fs_type(&m, Path::new("/var/lib/cloudmux")).as_deref(),
            Some("ext4")
        );
        assert_eq!(
            mount_fs_type(&m, Path::new("/srv/cloudmux")).as_deref(),
            Some("xfs")
        );
        assert_eq!(
            mount_fs_type(&m, Path::new("/srv/nfs/data")).as_deref(),
            Some("nfs4")
        );
        assert_eq!(
            mount_point(&m, Path::new("/srv/cloudmux")),
            Some(PathBuf::from("/srv"))
        );
    }

    #[test]
    fn kernel_against_the_kmem_leak() {
        let kmem = fixture("proc/config-3.10-kmem");
        let nokmem = fixture("proc/config-nokmem");
        assert_eq!(kernel_version("3.10.0-1160.el7.x86_64"), Some((3, 10)));
        assert_eq!(kernel_version("6.1.0-26-amd64"), Some((6, 1)));
        // PASS: a modern kernel on cgroup v2, or without kmem accounting.
        assert_eq!(
            level(kernel_check("6.1.0-26-amd64", Some(&kmem), "", true)),
            Level::Pass
        );
        assert_eq!(
            level(kernel_check("5.4.0-1", Some(&nokmem), "", false)),
            Level::Pass
        );
        assert_eq!(level(kernel_check("5.4.0-1", None, "", false)), Level::Pass);
        // WARN: kmem accounting on cgroup v1 (runc), or an old kernel with it off.
        assert_eq!(
            level(kernel_check("4.15.0-213-generic", Some(&kmem), "", false)),
            Level::Warn
        );
        assert_eq!(
            level(kernel_check(
                "3.10.0-1160.el7.x86_64",
                Some(&nokmem),
                "",
                false
            )),
            Level::Warn
        );
        assert_eq!(
            level(kernel_check(
                "3.10.0-1160.el7.x86_64",
                Some(&kmem),
                "ro cgroup.memory=nokmem",
                false
            )),
            Level::Warn
        );
        assert_eq!(level(kernel_check("weird", None, "", false)), Level::Warn);
        // FAIL: before 4.0 with kmem accounting, or with an unreadable config.
        assert_eq!(
            level(kernel_check(
                "3.10.0-1160.el7.x86_64",
                Some(&kmem),
                "",
                false
            )),
            Level::Fail
        );
        assert_eq!(level(kernel_check("3.18.1", None, "", false)), Level::Fail);
    }

    #[test]
    fn inotify_limits() {
        assert_eq!(
            level(inotify(Some("524288\n"), Some("8192\n"))),
            Level::Pass
        );
        assert_eq!(level(inotify(Some("65536"), Some("128"))), Level::Warn);
        assert_eq!(level(inotify(None, Some("128"))), Level::Warn);
        assert_eq!(level(inotify(Some("4096"), Some("8192"))), Level::Fail);
        assert_eq!(level(inotify(Some("524288"), Some("64"))), Level::Fail);
    }

    #[test]
    fn open_file_limit() {
        let l = |name: &str| level(open_files(Some(&fixture(name))));
        assert_eq!(l("proc/limits-high"), Level::Pass);
        assert_eq!(l("proc/limits-mid"), Level::Warn);
        assert_eq!(l("proc/limits-low"), Level::Fail);
        assert_eq!(level(open_files(None)), Level::Warn);
        assert_eq!(
            level(open_files(Some(
                "Max open files            unlimited            unlimited            files\n"
            ))),
            Level::Pass
        );
    }

    #[test]
    fn data_directory() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(level(data_dir(tmp.path())), Level::Pass);
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "the probe file is removed"
        );
        assert_eq!(level(data_dir(&tmp.path().join("new/data"))), Level::Warn);
        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(level(data_dir(&file)), Level::Fail);
        assert_eq!(level(data_dir(&file.join("below"))), Level::Fail);
    }

    #[test]
    fn clock_skew() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs: i64| -> Option<Result<SystemTime, String>> {
            Some(Ok(if secs >= 0 {
                now + Duration::from_secs(secs as u64)
            } else {
                now - Duration::from_secs((-secs) as u64)
            }))
        };
        assert_eq!(level(clock(at(2).as_ref(), now)), Level::Pass);
        assert_eq!(level(clock(at(-30).as_ref(), now)), Level::Pass);
        assert_eq!(level(clock(at(300).as_ref(), now)), Level::Warn);
        assert_eq!(level(clock(None, now)), Level::Warn);
        assert_eq!(level(clock(Some(&Err("refused".into())), now)), Level::Warn);
        assert_eq!(level(clock(at(-16 * 60).as_ref(), now)), Level::Fail);
        assert_eq!(level(clock(at(3600).as_ref(), now)), Level::Fail);
    }

    #[test]
    fn the_report_counts_and_flags_failures() {
        let mut out = Vec::new();
        let failed = print_report(
            &[
                finding("a", Level::Pass, "fine"),
                finding("b", Level::Fail, "broken"),
            ],
            &mut out,
        )
        .unwrap();
        assert!(failed);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("b                FAIL   broken"), "{text}");
        assert!(
            text.ends_with("preflight: 1 passed, 0 warned, 1 failed\n"),
            "{text}"
        );
    }
}
