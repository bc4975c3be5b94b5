//! Operational endpoints on the S3 port: health probes, `/metrics` (and how it
//! is told apart from a bucket called `metrics`), and the per-request log line.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use cloudmux_e2e::*;

/// Scrapes `/metrics` with the bearer token and checks the exposition's framing.
async fn scrape(s: &TestServer) -> String {
    let r = s
        .raw("GET", "/metrics")
        .anonymous()
        .header("authorization", &format!("Bearer {METRICS_TOKEN}"))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// The value of one sample (`name{labels}`), 0 when the series is absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map(|v| {
            v.split_whitespace()
                .next()
                .unwrap_or("")
                .parse()
                .unwrap_or_else(|_| panic!("bad sample {series}: {v}"))
        })
        .unwrap_or(0.0)
}

fn requests(text: &str, op: &str, status: u16) -> f64 {
    sample(
        text,
        &format!("cloudmux_requests_total{{operation=\"{op}\",status=\"{status}\"}}"),
    )
}

fn bucket_series(text: &str, what: &str, bucket: &str) -> Option<f64> {
    let series = format!("cloudmux_bucket_{what}{{bucket=\"{bucket}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&series).and_then(|v| v.strip_prefix(' ')))
        .map(|v| v.trim().parse().expect("gauge value"))
}

#[tokio::test]
async fn liveness_and_readiness_answer_anonymously() {
    let s = TestServer::start();
    for path in ["/_/health/live", "/_/health/ready"] {
        let r = s.raw("GET", path).anonymous().send().await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(r.header("x-amz-request-id").is_some());
        let r = s.raw("HEAD", path).anonymous().send().await;
        assert_eq!(r.status, 200, "HEAD {path}");
        assert!(r.body.is_empty());
        // Signed probes are answered the same way.
        let r = s.raw("GET", path).send().await;
        assert_eq!(r.status, 200, "signed {path}");
    }
    assert_eq!(
        s.raw("GET", "/_/health/live")
            .anonymous()
            .send()
            .await
            .text(),
        "ok\n"
    );
    // Other methods on the probe paths are S3 requests on an invalid bucket.
    let r = s.raw("PUT", "/_/health/live").send().await;
    assert_ne!(r.status, 200);
}

#[tokio::test]
async fn a_lost_location_shows_on_its_health_route_not_on_readiness() {
    let s = TestServer::start();
    let health = |s: &TestServer| {
        std::process::Command::new(server_binary())
            .args(["health", "--url"])
            .arg(format!("{}/_/health/ready", s.endpoint()))
            .output()
            .expect("run cloudmux health")
            .status
            .code()
    };
    // The image's HEALTHCHECK command.
    assert_eq!(health(&s), Some(0));
    assert_eq!(
        locations_until(&s, 200).await,
        (200, "local up\nsecond up\n".to_owned())
    );
    let objects = s.data_dir().join("objects");
    std::fs::remove_dir_all(&objects).expect("remove the default location's root");
    // The verdicts come from the background probe: wait for its next run.
    assert_eq!(
        locations_until(&s, 503).await,
        (503, "local down\nsecond up\n".to_owned())
    );
    // The process stays ready: the other location keeps serving.
    assert_eq!(health(&s), Some(0));
    let r = s.raw("GET", "/_/health/ready").anonymous().send().await;
    assert_eq!((r.status, r.text()), (200, "ready\n".to_owned()));
    let alice = s.client(ALICE);
    create_bucket_on(&alice, "elsewhere", "second").await;
    put_object(&alice, "elsewhere", "k", b"still served").await;
    let text = scrape(&s).await;
    assert_eq!(
        sample(&text, "cloudmux_location_up{location=\"local\"}"),
        0.0
    );
    assert_eq!(
        sample(&text, "cloudmux_location_up{location=\"second\"}"),
        1.0
    );
    assert!(s.log().contains("location probe failed"), "{}", s.log());
    std::fs::create_dir_all(objects.join(".cloudmux/tmp")).expect("restore");
    let seen = locations_until(&s, 200).await;
    assert_eq!(seen.0, 200, "{}", seen.1);
}

/// Polls `/_/health/locations` (answered from a background probe) for up
/// to 10 s until it answers `status`; returns the last answer.
async fn locations_until(s: &TestServer, status: u16) -> (u16, String) {
    let mut seen = (0, String::new());
    for _ in 0..100 {
        let r = s.raw("GET", "/_/health/locations").anonymous().send().await;
        seen = (r.status, r.text());
        if seen.0 == status {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

#[tokio::test]
async fn metrics_need_the_token_or_an_admin_signature() {
    let s = TestServer::start();
    let get = |auth: Option<String>| {
        let mut r = s.raw("GET", "/metrics").anonymous();
        if let Some(a) = auth {
            r = r.header("authorization", &a);
        }
        r.send()
    };
    // Anonymous, a wrong token, and an empty token are refused.
    for auth in [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {METRICS_TOKEN}x")),
    ] {
        let r = get(auth.clone()).await;
        r.assert_error(403, "AccessDenied");
        assert!(!r.text().contains("cloudmux_"), "{auth:?}: {}", r.text());
    }
    let r = get(Some(format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("cloudmux_requests_total"));
    // A SigV4-signed scrape by an admin account works, by another account not.
    let r = s.raw("GET", "/metrics").signed_by(ADMIN).send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().ends_with("# EOF\n"));
    for who in [ALICE, BOB] {
        let r = s.raw("GET", "/metrics").signed_by(who).send().await;
        r.assert_error(403, "AccessDenied");
    }
    // A presigned scrape by the admin works too; one by alice does not.
    let r = s
        .raw("GET", "/metrics")
        .signed_by(ADMIN)
        .presigned()
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("cloudmux_requests_total"));
    let r = s
        .raw("GET", "/metrics")
        .signed_by(ALICE)
        .presigned()
        .send()
        .await;
    r.assert_error(403, "AccessDenied");
    // The admin routes take an admin signature and never a bearer token.
    for (who, token) in [(None, true), (None, false), (Some(ALICE), false)] {
        let mut r = s.raw("GET", "/_/admin/anything");
        r = match who {
            Some(a) => r.signed_by(a),
            None => r.anonymous(),
        };
        if token {
            r = r.header("authorization", &format!("Bearer {METRICS_TOKEN}"));
        }
        r.send().await.assert_error(403, "AccessDenied");
    }
    let r = s
        .raw("GET", "/_/admin/anything")
        .signed_by(ADMIN)
        .send()
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // A failed scrape tells nothing about buckets.
    create_bucket(&s.client(ALICE), "payroll-2026-secret-merger").await;
    let r = get(None).await;
    assert!(!r.text().contains("payroll"), "{}", r.text());
}

#[tokio::test]
async fn anonymous_readiness_never_reaches_the_cloud() {
    // The cloud is a second cloudmux that logs one line per request.
    let cloud = TestServer::start_with(ServerOptions {
        env: vec![("CLOUDMUX_LOG".into(), "info".into())],
        ..Default::default()
    });
    create_bucket(&cloud.client(ALICE), "target").await;
    let front = TestServer::start_with(ServerOptions {
        extra_config: format!(
            r#"[locations.cloud]
type = "s3"
endpoint = "{}"
region = "{REGION}"
bucket = "target"
access_key = "{}"
secret_key = "{}"
path_style = true
default = true
"#,
            cloud.endpoint(),
            ALICE.access_key,
            ALICE.secret_key
        ),
        env: vec![("CLOUDMUX__LOCATIONS__LOCAL__DEFAULT".into(), "false".into())],
        ..Default::default()
    });
    let cloud_requests = || {
        cloud
            .log()
            .lines()
            .filter(|l| l.contains("request_id"))
            .count()
    };
    let r = front.raw("GET", "/_/health/ready").anonymous().send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = cloud_requests();
    let start = std::time::Instant::now();
    for _ in 0..200 {
        let r = front.raw("GET", "/_/health/ready").anonymous().send().await;
        assert_eq!(r.status, 200);
    }
    // Give the cloud's log a moment to catch up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let during = cloud_requests() - before;
    // Only the background refresher (one probe every 2 s) reached the cloud.
    let allowed = (elapsed / 2.0).ceil() as usize + 1;
    assert!(
        during <= allowed,
        "{during} cloud requests during 200 readiness probes in {elapsed:.1} s (allowed {allowed})"
    );
}

#[tokio::test]
async fn metrics_count_real_requests_bytes_backends_and_bucket_usage() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    let before = scrape(&s).await;
    create_bucket(&alice, "counted").await;
    let first = random_bytes(1000);
    let second = random_bytes(500);
    put_object(&alice, "counted", "a", &first).await;
    put_object(&alice, "counted", "b", &second).await;
    assert_eq!(get_object(&alice, "counted", "a").await, first);
    let missing = alice
        .get_object()
        .bucket("counted")
        .key("missing")
        .send()
        .await;
    assert!(missing.is_err());
    let after = scrape(&s).await;

    assert_eq!(
        requests(&after, "PutObject", 200) - requests(&before, "PutObject", 200),
        2.0,
        "{after}"
    );
    assert_eq!(requests(&after, "GetObject", 200), 1.0, "{after}");
    assert_eq!(requests(&after, "GetObject", 404), 1.0, "{after}");
    assert_eq!(requests(&after, "CreateBucket", 200), 1.0, "{after}");
    // The first scrape is counted once it has been answered.
    assert!(requests(&after, "Metrics", 200) >= 1.0, "{after}");
    let received = sample(
        &after,
        "cloudmux_received_bytes_total{operation=\"PutObject\"}",
    );
    assert!(received >= 1500.0, "received {received}: {after}");
    let sent = sample(&after, "cloudmux_sent_bytes_total{operation=\"GetObject\"}");
    assert!(sent >= 1000.0, "sent {sent}: {after}");
    let puts = sample(
        &after,
        "cloudmux_request_duration_seconds_count{operation=\"PutObject\"}",
    );
    assert_eq!(puts, 2.0, "{after}");
    let stage = "cloudmux_backend_duration_seconds_count{location=\"local\",operation=\"stage\"}";
    assert!(sample(&after, stage) >= 2.0, "{after}");
    let read = "cloudmux_backend_duration_seconds_count{location=\"local\",operation=\"read\"}";
    assert!(sample(&after, read) >= 1.0, "{after}");
    assert_eq!(bucket_series(&after, "objects", "counted"), Some(2.0));
    assert_eq!(bucket_series(&after, "bytes", "counted"), Some(1500.0));

    // Overwrite, delete and a bucket on the second location.
    put_object(&alice, "counted", "a", b"tiny").await;
    ok(alice
        .delete_object()
        .bucket("counted")
        .key("b")
        .send()
        .await);
    create_bucket_on(&alice, "elsewhere", "second").await;
    put_object(&alice, "elsewhere", "x", b"0123456789").await;
    let now = scrape(&s).await;
    assert_eq!(
        bucket_series(&now, "objects", "counted"),
        Some(1.0),
        "{now}"
    );
    assert_eq!(bucket_series(&now, "bytes", "counted"), Some(4.0), "{now}");
    assert_eq!(bucket_series(&now, "objects", "elsewhere"), Some(1.0));
    assert_eq!(bucket_series(&now, "bytes", "elsewhere"), Some(10.0));
    let second_stage =
        "cloudmux_backend_duration_seconds_count{location=\"second\",operation=\"stage\"}";
    assert_eq!(sample(&now, second_stage), 1.0, "{now}");

    // After a restart the figures come back from the startup scan.
    let mut s = s;
    s.restart();
    let restarted = scrape(&s).await;
    assert_eq!(bucket_series(&restarted, "objects", "counted"), Some(1.0));
    assert_eq!(bucket_series(&restarted, "bytes", "counted"), Some(4.0));
    assert_eq!(bucket_series(&restarted, "bytes", "elsewhere"), Some(10.0));

    // A deleted bucket's series disappear.
    let alice = s.client(ALICE);
    ok(alice
        .delete_object()
        .bucket("counted")
        .key("a")
        .send()
        .await);
    ok(alice.delete_bucket().bucket("counted").send().await);
    let gone = scrape(&s).await;
    assert_eq!(bucket_series(&gone, "objects", "counted"), None, "{gone}");
}

#[tokio::test]
async fn a_bucket_called_metrics_stays_reachable() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "metrics").await;
    put_object(&alice, "metrics", "inside", b"data").await;
    // Signed requests with an S3 query are S3 operations on the bucket.
    assert_eq!(list_keys(&alice, "metrics").await, vec!["inside"]);
    let r = s.raw("GET", "/metrics?list-type=2").send().await;
    assert!(r.text().contains("<Key>inside</Key>"), "{}", r.text());
    // An anonymous request with a query is an S3 request too (denied: private).
    let r = s
        .raw("GET", "/metrics?list-type=2")
        .anonymous()
        .send()
        .await;
    r.assert_error(403, "AccessDenied");
    // The query-less GET is the metrics endpoint, for every caller.
    let r = s.raw("GET", "/metrics").send().await;
    r.assert_error(403, "AccessDenied");
    let text = scrape(&s).await;
    assert!(text.contains("cloudmux_requests_total"), "{text}");
    assert_eq!(bucket_series(&text, "objects", "metrics"), Some(1.0));
    assert_eq!(get_object(&alice, "metrics", "inside").await, b"data");
}

#[tokio::test]
async fn one_json_log_line_per_request_without_secrets() {
    let s = TestServer::start_with(ServerOptions {
        env: vec![
            ("CLOUDMUX_LOG".into(), "info".into()),
            ("CLOUDMUX_LOG_FORMAT".into(), "json".into()),
        ],
        ..Default::default()
    });
    let alice = s.client(ALICE);
    create_bucket(&alice, "logged").await;
    let body = random_bytes(777);
    let put = s
        .raw("PUT", "/logged/thing")
        .body(body.clone())
        .send()
        .await;
    put.assert_success();
    let put_id = put.header("x-amz-request-id").expect("request id");
    let presigned = alice
        .get_object()
        .bucket("logged")
        .key("thing")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
        .await
        .expect("presign");
    let uri = presigned.uri().to_owned();
    let signature = uri
        .split("X-Amz-Signature=")
        .nth(1)
        .expect("presigned signature")
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let path = uri.split_once(&s.addr().to_string()).expect("uri host").1;
    let get = s.raw("GET", path).anonymous().send().await;
    assert_eq!(get.status, 200, "{}", get.text());
    let get_id = get.header("x-amz-request-id").expect("request id");
    // A failed signature is logged too, without the signature.
    let bad = s
        .raw("GET", &path.replace(&signature, &"0".repeat(64)))
        .anonymous()
        .send()
        .await;
    assert_eq!(bad.status, 403);

    // The log is written by another process: give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = s.log();
    let line_of = |id: &str| -> String {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("\"request_id\":\"{id}\"")))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {id}: {log}");
        lines[0].to_owned()
    };
    let put_line = line_of(&put_id);
    assert!(
        put_line.starts_with('{') && put_line.ends_with('}'),
        "{put_line}"
    );
    for field in [
        "\"op\":\"PutObject\"",
        "\"bucket\":\"logged\"",
        "\"status\":200",
        "\"bytes_in\":777",
        "\"bytes_out\":0",
        "\"duration_ms\":",
    ] {
        assert!(put_line.contains(field), "{field} missing: {put_line}");
    }
    let get_line = line_of(&get_id);
    for field in [
        "\"op\":\"GetObject\"",
        "\"bytes_out\":777",
        "\"status\":200",
    ] {
        assert!(get_line.contains(field), "{field} missing: {get_line}");
    }
    assert!(log.contains("\"status\":403"), "{log}");
    for secret in [
        ALICE.secret_key,
        BOB.secret_key,
        CAROL_SECRET,
        signature.as_str(),
        "Signature=",
        "X-Amz-Credential",
        "AWS4-HMAC-SHA256",
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}: {log}");
    }
}

#[tokio::test]
async fn backend_failures_are_counted_per_location() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "fragile").await;
    put_object(&alice, "fragile", "before", b"fine").await;
    let errors = |text: &str, op: &str| {
        sample(
            text,
            &format!("cloudmux_backend_errors_total{{location=\"local\",operation=\"{op}\"}}"),
        )
    };
    let before = scrape(&s).await;
    assert_eq!(errors(&before, "stage"), 0.0, "{before}");
    // The default location's storage disappears underneath the server.
    std::fs::remove_dir_all(s.data_dir().join("objects")).expect("remove the location root");
    let r = s
        .raw("PUT", "/fragile/after")
        .body(b"lost".to_vec())
        .send()
        .await;
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    let after = scrape(&s).await;
    assert!(errors(&after, "stage") >= 1.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "cloudmux_backend_errors_total{location=\"second\",operation=\"stage\"}"
        ),
        0.0
    );
    assert!(requests(&after, "PutObject", r.status) >= 1.0, "{after}");
    // The failed write did not change the bucket's figures.
    assert_eq!(bucket_series(&after, "objects", "fragile"), Some(1.0));
    assert_eq!(bucket_series(&after, "bytes", "fragile"), Some(4.0));
}

/// Runs `cloudmux serve` on the embedded defaults in `cwd` until it prints
/// its secret key line; returns the child and its stdout lines so far.
fn serve_embedded(cwd: &std::path::Path) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(server_binary())
        .arg("serve")
        .current_dir(cwd)
        .env("CLOUDMUX__SERVER__LISTEN", "127.0.0.1:0")
        .env("CLOUDMUX_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(cwd.join("server.log"))
                .expect("log file"),
        ))
        .spawn()
        .expect("spawn cloudmux");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut reader = std::io::BufReader::new(stdout).lines();
    for line in reader.by_ref() {
        let line = line.expect("stdout line");
        let done = line.contains("secret key:");
        lines.push(line);
        if done {
            break;
        }
    }
    // Keep draining stdout: a closed pipe would make the server's next line fail.
    std::thread::spawn(move || reader.for_each(drop));
    (child, lines)
}

#[tokio::test]
async fn generated_credentials_are_private_and_their_account_is_admin() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, lines) = serve_embedded(dir.path());
    let file = dir.path().join("data/credentials");
    let mode = std::fs::metadata(&file)
        .expect("credentials file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in {lines:?}"))
    };
    let endpoint = field("endpoint:");
    let (access, secret) = (field("access key:"), field("secret key:"));
    // The generated account is the admin: its signed scrape works.
    let addr: std::net::SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let admin = Account {
        name: "admin",
        access_key: Box::leak(access.clone().into_boxed_str()),
        secret_key: Box::leak(secret.clone().into_boxed_str()),
    };
    let r = Raw::to(addr, "GET", "/metrics")
        .signed_by(admin)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    child.kill().expect("kill");
    child.wait().expect("wait");
    // A credentials file others can read is used, with a warning.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (mut child, lines) = serve_embedded(dir.path());
    assert!(lines.iter().any(|l| l.contains(&access)), "{lines:?}");
    child.kill().expect("kill");
    child.wait().expect("wait");
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(log.contains("readable by other users"), "{log}");
    assert!(!log.contains(&secret), "{log}");
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct TinyDisk(tempfile::TempDir);

impl TinyDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the test suite runs as root)"
        );
        TinyDisk(dir)
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_location_answers_slow_down_and_keeps_serving_reads() {
    let disk = TinyDisk::mount("1m");
    let s = TestServer::start_with(ServerOptions {
        extra_config: format!(
            "[locations.tiny]\ntype = \"fs\"\npath = \"{}\"\n",
            disk.0.path().display()
        ),
        ..Default::default()
    });
    let alice = s.client(ALICE);
    create_bucket_on(&alice, "cramped", "tiny").await;
    let small = random_bytes(100 * 1024);
    put_object(&alice, "cramped", "small", &small).await;
    let r = s
        .raw("PUT", "/cramped/big")
        .body(random_bytes(2 * 1024 * 1024))
        .send()
        .await;
    r.assert_error(503, "SlowDown");
    assert!(r.text().contains("tiny"), "{}", r.text());
    // Reads go on, on the full location and elsewhere.
    assert_eq!(get_object(&alice, "cramped", "small").await, small);
    let head = alice
        .head_object()
        .bucket("cramped")
        .key("big")
        .send()
        .await;
    assert!(head.is_err(), "the refused object must not exist");
    create_bucket(&alice, "roomy").await;
    put_object(&alice, "roomy", "fine", b"fine").await;
    assert_eq!(get_object(&alice, "roomy", "fine").await, b"fine");
    drop(s);
}

#[tokio::test]
async fn metadata_backup_restores_into_a_fresh_store_and_every_object_reads_back() {
    let mut s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "kept").await;
    let mut objects = Vec::new();
    for i in 0..20 {
        let data = random_bytes(100 + i * 997);
        put_object(&alice, "kept", &format!("dir/k{i}"), &data).await;
        objects.push((format!("dir/k{i}"), data));
    }
    // A multipart object (6 MiB makes two parts).
    let big = random_bytes(6 * 1024 * 1024);
    let up = ok(alice
        .create_multipart_upload()
        .bucket("kept")
        .key("big")
        .send()
        .await);
    let id = up.upload_id().unwrap().to_owned();
    let mut parts = Vec::new();
    for (n, chunk) in big.chunks(5 * 1024 * 1024).enumerate() {
        let p = ok(alice
            .upload_part()
            .bucket("kept")
            .key("big")
            .upload_id(&id)
            .part_number(n as i32 + 1)
            .body(aws_sdk_s3::primitives::ByteStream::from(chunk.to_vec()))
            .send()
            .await);
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    ok(alice
        .complete_multipart_upload()
        .bucket("kept")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await);
    objects.push(("big".into(), big));
    let export = |who: Account, file: &std::path::Path| {
        std::process::Command::new(server_binary())
            .args(["meta", "export"])
            .arg(file)
            .args(["--endpoint", &s.endpoint()])
            .env("AWS_ACCESS_KEY_ID", who.access_key)
            .env("AWS_SECRET_ACCESS_KEY", who.secret_key)
            .env("AWS_REGION", REGION)
            .output()
            .expect("run cloudmux meta export")
    };
    let backup = s.root().join("meta.backup");
    // Only an admin may take the snapshot, online.
    let denied = export(ALICE, &backup);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("403"));
    assert!(!backup.exists());
    let out = export(ADMIN, &backup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("exported"));
    // The metadata store is lost; the objects' bytes are still in place.
    s.stop();
    std::fs::remove_dir_all(s.data_dir().join("meta")).expect("remove the metadata store");
    let import = || {
        std::process::Command::new(server_binary())
            .args(["meta", "import"])
            .arg(&backup)
            .arg("--config")
            .arg(s.config_path())
            .env("CLOUDMUX_TEST_CAROL_SECRET", CAROL_SECRET)
            .output()
            .expect("run cloudmux meta import")
    };
    let out = import();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second import into the restored (non-empty) store is refused.
    assert!(!import().status.success());
    s.spawn();
    let alice = s.client(ALICE);
    for (key, data) in &objects {
        assert_eq!(&get_object(&alice, "kept", key).await, data, "{key}");
    }
    assert_eq!(list_keys(&alice, "kept").await.len(), objects.len());
}

/// `[metrics] per_bucket = false` keeps bucket names out of the scrape; by
/// default each bucket has its storage series.
#[tokio::test]
async fn per_bucket_series_can_be_turned_off() {
    for per_bucket in [true, false] {
        let s = TestServer::start_with(ServerOptions {
            extra_config: format!("[metrics]\nper_bucket = {per_bucket}\n"),
            ..Default::default()
        });
        let c = s.client(ALICE);
        create_bucket(&c, "payroll-2026-secret-merger").await;
        put_object(&c, "payroll-2026-secret-merger", "k", b"12345").await;
        let text = scrape(&s).await;
        assert_eq!(
            text.contains("payroll-2026-secret-merger"),
            per_bucket,
            "per_bucket = {per_bucket}"
        );
        assert_eq!(
            text.contains("cloudmux_bucket_bytes{bucket=\"payroll-2026-secret-merger\"} 5"),
            per_bucket,
            "per_bucket = {per_bucket}: {text}"
        );
        // The other series are there either way.
        assert!(text.contains("cloudmux_requests_total"), "{text}");
    }
}

/// The admin address the server printed (`  admin: http://...`).
fn admin_addr(s: &TestServer) -> std::net::SocketAddr {
    let log = s.log();
    let line = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin:"))
        .unwrap_or_else(|| panic!("no admin line in {log}"));
    line.trim()
        .trim_start_matches("http://")
        .parse()
        .expect("admin address")
}

/// `[server] admin_listen` serves health, `/metrics` and the admin routes on
/// a second address with the same access rules, and nothing else; with
/// `admin_on_s3_port = false` the S3 port keeps only S3 and health, and
/// `/metrics` there is the bucket of that name.
#[tokio::test]
async fn an_admin_listener_takes_metrics_and_admin_routes_off_the_s3_port() {
    let s = TestServer::start_with(ServerOptions {
        env: vec![
            (
                "CLOUDMUX__SERVER__ADMIN_LISTEN".into(),
                "127.0.0.1:0".into(),
            ),
            ("CLOUDMUX__SERVER__ADMIN_ON_S3_PORT".into(), "false".into()),
        ],
        ..Default::default()
    });
    let admin = admin_addr(&s);
    let token = format!("Bearer {METRICS_TOKEN}");
    // The admin port: health open, metrics with the token, admin routes
    // with an admin signature, and no S3.
    let live = Raw::to(admin, "GET", "/_/health/live")
        .anonymous()
        .send()
        .await;
    assert_eq!(live.status, 200);
    let m = Raw::to(admin, "GET", "/metrics")
        .anonymous()
        .header("authorization", &token)
        .send()
        .await;
    assert_eq!(m.status, 200, "{}", m.text());
    assert!(m.text().contains("cloudmux_requests_total"));
    let anon = Raw::to(admin, "GET", "/metrics").anonymous().send().await;
    assert_eq!(anon.status, 403);
    let export = Raw::to(admin, "GET", "/_/meta/export")
        .signed_by(ADMIN)
        .send()
        .await;
    assert_eq!(export.status, 200);
    let denied = Raw::to(admin, "GET", "/_/meta/export")
        .signed_by(ALICE)
        .send()
        .await;
    assert_eq!(denied.status, 403);
    let s3 = Raw::to(admin, "GET", "/").signed_by(ALICE).send().await;
    s3.assert_error(404, "NotFound");
    // The S3 port: health stays, /metrics is a bucket name, admin routes
    // are not served.
    let ready = s.raw("GET", "/_/health/live").anonymous().send().await;
    assert_eq!(ready.status, 200);
    let c = s.client(ALICE);
    create_bucket(&c, "metrics").await;
    put_object(&c, "metrics", "k", b"v").await;
    let listed = s.raw("GET", "/metrics").signed_by(ALICE).send().await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(listed.text().contains("<Key>k</Key>"), "{}", listed.text());
    let scrape = s
        .raw("GET", "/metrics")
        .anonymous()
        .header("authorization", &token)
        .send()
        .await;
    assert_ne!(scrape.status, 200, "metrics still served on the S3 port");
    let export = s.raw("GET", "/_/meta/export").signed_by(ADMIN).send().await;
    assert_ne!(
        export.status, 200,
        "admin routes still served on the S3 port"
    );
}
