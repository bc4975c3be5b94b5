//! `cloudmux preflight` as an operator runs it, against fixture hosts (a fake
//! root with /proc, /sys, /etc and /boot files) so it passes on any machine.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preflight")
}

/// Runs preflight on a fixture host; `docker info` and `xfs_info` outputs
/// come from files (an empty file: the tool printed nothing useful).
fn preflight(host: &str, data: &Path, xfs_info: &str, extra: &[&str]) -> (i32, String) {
    let f = fixtures();
    let out = Command::new(env!("CARGO_BIN_EXE_cloudmux"))
        .arg("preflight")
        .arg("--root")
        .arg(f.join("hosts").join(host))
        .arg("--data")
        .arg(data)
        .arg("--docker-info")
        .arg("/dev/null")
        .arg("--xfs-info")
        .arg(if xfs_info.is_empty() {
            PathBuf::from("/dev/null")
        } else {
            f.join(xfs_info)
        })
        .args(extra)
        .output()
        .expect("run cloudmux preflight");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// The result column of a check's row.
fn result(report: &str, check: &str) -> String {
    report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(check))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no row for {check}:\n{report}"))
        .to_owned()
}

/// A one-shot HTTP server whose Date header is `offset` away from now
/// (negative: behind).
fn time_server(offset_secs: i64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let now = SystemTime::now();
            let when = if offset_secs >= 0 {
                now + Duration::from_secs(offset_secs as u64)
            } else {
                now - Duration::from_secs((-offset_secs) as u64)
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nDate: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                httpdate::fmt_http_date(when)
            );
        }
    });
    format!("http://{addr}/")
}

#[test]
fn a_good_host_passes_every_check() {
    let data = tempfile::tempdir().expect("tempdir");
    let ts = time_server(3);
    let (code, report) = preflight("good", data.path(), "", &["--time-server", &ts]);
    assert_eq!(code, 0, "{report}");
    for check in [
        "storage-driver",
        "d_type",
        "kernel",
        "inotify",
        "open-files",
        "data-dir",
        "clock",
    ] {
        assert_eq!(result(&report, check), "PASS", "{check}:\n{report}");
    }
    assert!(report.starts_with("CHECK"), "{report}");
    assert!(
        report.ends_with("preflight: 7 passed, 0 warned, 0 failed\n"),
        "{report}"
    );
}

#[test]
fn a_host_with_warnings_still_exits_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ts = time_server(-300);
    let (code, report) = preflight(
        "warn",
        &tmp.path().join("not-yet"),
        "",
        &["--time-server", &ts],
    );
    assert_eq!(code, 0, "{report}");
    for check in [
        "storage-driver",
        "d_type",
        "kernel",
        "inotify",
        "open-files",
        "data-dir",
        "clock",
    ] {
        assert_eq!(result(&report, check), "WARN", "{check}:\n{report}");
    }
}

#[test]
fn a_bad_host_fails_and_exits_non_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("data");
    std::fs::write(&file, b"not a directory").expect("write");
    let ts = time_server(20 * 60);
    let (code, report) = preflight(
        "fail",
        &file,
        "xfs-info/ftype0.txt",
        &["--time-server", &ts],
    );
    assert_eq!(code, 1, "{report}");
    for check in [
        "storage-driver",
        "d_type",
        "kernel",
        "inotify",
        "open-files",
        "data-dir",
        "clock",
    ] {
        assert_eq!(result(&report, check), "FAIL", "{check}:\n{report}");
    }
    assert!(report.contains("loop-lvm"), "{report}");
    assert!(report.contains("ftype"), "{report}");
}

#[test]
fn docker_info_is_preferred_over_daemon_json() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_cloudmux"))
        .arg("preflight")
        .arg("--root")
        .arg(fixtures().join("hosts/fail"))
        .arg("--data")
        .arg(data.path())
        .arg("--docker-info")
        .arg(fixtures().join("docker-info/overlay2.txt"))
        .arg("--xfs-info")
        .arg(fixtures().join("xfs-info/ftype1.txt"))
        .output()
        .expect("run");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(result(&report, "storage-driver"), "PASS", "{report}");
    assert_eq!(result(&report, "d_type"), "PASS", "{report}");
    // The kernel of that host still fails, so the exit code says so.
    assert_eq!(out.status.code(), Some(1), "{report}");
}
