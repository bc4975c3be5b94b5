//! Operational endpoints on the S3 port: health probes, `/metrics` (and how it
//! is told apart from a bucket called `metrics`), and the per-request log line.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use cloudmux_e2e::*;

/// Scrapes `/metrics` anonymously and checks the exposition's framing.
async fn scrape(s: &TestServer) -> String {
    let r = s.raw("GET", "/metrics").anonymous().send().await;
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
async fn readiness_fails_when_the_default_location_is_gone() {
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
    let objects = s.data_dir().join("objects");
    std::fs::remove_dir_all(&objects).expect("remove the default location's root");
    assert_eq!(health(&s), Some(1));
    let r = s.raw("GET", "/_/health/ready").anonymous().send().await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.text(), "not ready\n");
    // Liveness does not depend on the stores.
    let r = s.raw("GET", "/_/health/live").anonymous().send().await;
    assert_eq!(r.status, 200);
    assert!(s.log().contains("readiness probe failed"), "{}", s.log());
    std::fs::create_dir_all(objects.join(".cloudmux/tmp")).expect("restore");
    let r = s.raw("GET", "/_/health/ready").anonymous().send().await;
    assert_eq!(r.status, 200);
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
    ok(alice
        .create_bucket()
        .bucket("elsewhere")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("second"))
                .build(),
        )
        .send()
        .await);
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
    // Signed requests are S3 operations on the bucket.
    assert_eq!(list_keys(&alice, "metrics").await, vec!["inside"]);
    let r = s.raw("GET", "/metrics").send().await;
    r.assert_success();
    assert!(r.text().contains("<Key>inside</Key>"), "{}", r.text());
    let r = s.raw("GET", "/metrics?list-type=2").send().await;
    assert!(r.text().contains("<Key>inside</Key>"), "{}", r.text());
    // An anonymous request with a query is an S3 request too (denied: private).
    let r = s
        .raw("GET", "/metrics?list-type=2")
        .anonymous()
        .send()
        .await;
    r.assert_error(403, "AccessDenied");
    // Only the anonymous, query-less GET is the metrics endpoint.
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
