//! The GCS backend against fake-gcs-server (started on a free port per test).

mod common;
#[path = "common/suite.rs"]
mod suite;

use std::time::Duration;

use cloudmux_data::cloud::{STAGING_PREFIXES, VERSIONS_PREFIX};
use cloudmux_data::gcs::{GcsBackend, GcsConfig, SOURCE_META, STAGED_META};
use cloudmux_data::{Backend, ObjectPath};
use common::{body, make_gcs_bucket, start_gcs, Emulator};

fn config(e: &Emulator, timeout_ms: u64) -> GcsConfig {
    toml::from_str(&format!(
        r#"
        bucket = "cloudmux"
        endpoint = "http://127.0.0.1:{}"
        request_timeout_ms = {timeout_ms}
        connect_timeout_ms = 500
        max_retries = 1
        "#,
        e.port
    ))
    .unwrap()
}

/// Every object under every staging prefix.
async fn staging_area(b: &GcsBackend) -> Vec<String> {
    let mut all = Vec::new();
    for prefix in STAGING_PREFIXES {
        all.extend(b.list_names(prefix).await.unwrap());
    }
    all
}

#[tokio::test]
async fn round_trip_ranges_replace_delete() {
    let e = start_gcs("cloudmux").await;
    let b = GcsBackend::new("gcs-test", &config(&e, 5_000)).unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&b))
        };
    suite::round_trip(&b, &list).await;
    suite::buckets_share_the_container(&b).await;
    suite::failed_body_leaves_nothing(&b, &list).await;
    suite::large_objects(&b, &list).await;
    suite::copy_within(&b, &list).await;
    suite::locate_published(&b, &list).await;
    suite::staged_listing_for_gc(&b, &list).await;
    let port = e.port;
    let plant = |name: String,
                 bytes: Vec<u8>|
     -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let r = reqwest::Client::new()
                .post(format!(
                    "http://127.0.0.1:{port}/upload/storage/v1/b/cloudmux/o"
                ))
                .query(&[("uploadType", "media"), ("name", name.as_str())])
                .body(bytes)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "plant {name}: {}", r.status());
        })
    };
    suite::legacy_staging_is_still_read(&b, &list, &plant).await;
    let odd =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(async { b.list_names("odd/").await.unwrap() })
        };
    suite::odd_keys(&b, &odd).await;
}

#[tokio::test]
async fn multipart_reverse_order_complete_and_abort() {
    let e = start_gcs("cloudmux").await;
    let b = GcsBackend::new("gcs-test", &config(&e, 5_000)).unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&b))
        };
    suite::multipart(&b, &list).await;
}

#[tokio::test]
async fn compose_in_rounds_of_32() {
    let e = start_gcs("cloudmux").await;
    let b = GcsBackend::new("gcs-test", &config(&e, 5_000)).unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&b))
        };
    // 1,100 parts need three rounds: 35 composes, then 2, then 1.
    suite::many_parts(&b, &list, 1_100).await;
}

#[tokio::test]
async fn bucket_match_refuses_keys_in_the_staging_area() {
    let e = start_gcs("cloudmux").await;
    let mut cfg = config(&e, 5_000);
    cfg.cloud.bucket_match = true;
    let b = GcsBackend::new("gcs-test", &cfg).unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&b))
        };
    suite::reserved_keys_are_refused(&b, &list).await;
}

#[tokio::test]
async fn outage_gives_unavailable_then_recovers() {
    let mut e = start_gcs("cloudmux").await;
    let b = GcsBackend::new("gcs-test", &config(&e, 1_000)).unwrap();
    b.probe().await.unwrap();
    let s = b.stage(body(b"before", 3)).await.unwrap();
    let limit = Duration::from_secs(4);

    e.stop();
    suite::unavailable_within(limit, b.probe()).await;
    suite::unavailable_within(limit, b.stage(body(b"during", 3))).await;
    suite::unavailable_within(limit, b.read_staged(&s, None)).await;
    let target = cloudmux_data::ObjectPath {
        bucket: "bkt",
        key: "k",
        meta: cloudmux_data::NativeMeta::none(),
    };
    suite::unavailable_within(limit, b.locate(target, &s)).await;
    let err = b.probe().await.unwrap_err().to_string();
    assert!(err.contains("gcs-test"), "error names the location: {err}");

    e.restart();
    make_gcs_bucket(e.port, "cloudmux").await;
    b.probe().await.unwrap();
    let s = b.stage(body(b"after", 3)).await.unwrap();
    assert_eq!(
        common::collect(b.read_staged(&s, None).await.unwrap()).await,
        b"after"
    );

    e.pause();
    suite::unavailable_within(limit, b.probe()).await;
    suite::unavailable_within(limit, b.read_staged(&s, None)).await;
    suite::unavailable_within(limit, b.locate(target, &s)).await;
    e.resume();
    b.probe().await.unwrap();
    assert_eq!(
        common::collect(b.read_staged(&s, None).await.unwrap()).await,
        b"after"
    );
}

#[test]
fn config_rejects_unknown_fields_and_bad_credentials() {
    assert!(toml::from_str::<GcsConfig>("bucket = \"b\"\ncolour = 1\n").is_err());
    let c: GcsConfig =
        toml::from_str("bucket = \"b\"\ncredentials_file = \"/nonexistent.json\"\n").unwrap();
    let err = GcsBackend::new("x", &c).unwrap_err();
    assert!(err.contains("credentials_file"), "{err}");
    let c: GcsConfig = toml::from_str("bucket = \"b\"\n").unwrap();
    assert!(GcsBackend::new("x", &c).is_ok());
}

#[tokio::test]
async fn noncurrent_versions_are_server_side_copies_under_the_versions_prefix() {
    let e = start_gcs("cloudmux").await;
    let b = GcsBackend::new("gcs-test", &config(&e, 5_000)).unwrap();
    let listing =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(async { b.list_names(VERSIONS_PREFIX).await.unwrap() })
        };
    let shared = |bucket: &str, key: &str, version: &str| {
        format!("{VERSIONS_PREFIX}{bucket}/{key}/{version}")
    };
    suite::keep_versions(&b, &shared, &listing).await;
    let mut cfg = config(&e, 5_000);
    cfg.cloud.bucket_match = true;
    let matched = GcsBackend::new("gcs-test", &cfg).unwrap();
    let own = |_: &str, key: &str, version: &str| format!("{VERSIONS_PREFIX}{key}/{version}");
    suite::keep_versions(&matched, &own, &listing).await;

    // The copy carries the object's content fields and custom metadata (the
    // staged-id entry included), plus the source's generation.
    let m = suite::meta();
    let target = ObjectPath {
        bucket: "bkt",
        key: "meta",
        meta: &m,
    };
    let s = b.stage(body(b"with metadata", 4)).await.unwrap();
    let d = b.publish(s.clone(), target).await.unwrap();
    let k = b
        .keep_version(&d, target, "null.0123456789abcdef")
        .await
        .unwrap();
    let resource = |name: String| async move {
        let r = reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{}/storage/v1/b/cloudmux/o/{}",
                e.port,
                name.replace('/', "%2F")
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "get {name}: {}", r.status());
        r.json::<serde_json::Value>().await.unwrap()
    };
    let v = resource(k.locator.clone()).await;
    let field = |f: &str| v.get(f).and_then(|x| x.as_str()).map(str::to_owned);
    assert_eq!(field("contentType"), m.content_type);
    assert_eq!(field("cacheControl"), m.cache_control);
    assert_eq!(field("contentDisposition"), m.content_disposition);
    assert_eq!(field("contentLanguage"), m.content_language);
    let meta = &v["metadata"];
    assert_eq!(meta["color"], "blue");
    assert_eq!(meta["my-key"], "v 1");
    assert_eq!(meta[STAGED_META], s.id.as_str());
    assert_eq!(meta[SOURCE_META], d.stamp.to_string());
    // A retry answers the copy as it is: no second copy (same generation).
    assert_eq!(
        b.keep_version(&d, target, "null.0123456789abcdef")
            .await
            .unwrap(),
        k
    );
    assert_eq!(b.list_staged().await.unwrap(), []);
    b.delete(&k).await.unwrap();
    b.delete(&d).await.unwrap();
}
