//! The S3 backend against moto (one server for the whole test binary).

mod common;
#[path = "common/suite.rs"]
mod suite;

use std::time::Duration;

use cloudmux_data::cloud::TMP_PREFIX;
use cloudmux_data::s3::{S3Backend, S3Config, STAGED_META};
use cloudmux_data::{Backend, NativeMeta, ObjectPath};
use common::{body, collect, data, moto_keys, start_moto, Emulator};

const BUCKET: &str = "target";

fn config(e: &Emulator, timeout_ms: u64) -> S3Config {
    toml::from_str(&format!(
        r#"
        endpoint = "http://127.0.0.1:{}"
        bucket = "{BUCKET}"
        access_key = "test"
        secret_key = "test"
        path_style = true
        request_timeout_ms = {timeout_ms}
        connect_timeout_ms = 500
        max_retries = 1
        "#,
        e.port
    ))
    .unwrap()
}

fn at<'a>(key: &'a str, meta: &'a NativeMeta) -> ObjectPath<'a> {
    ObjectPath {
        bucket: "bkt",
        key,
        meta,
    }
}

#[tokio::test]
async fn locate_finds_published_data_then_outage_is_unavailable() {
    let mut e = start_moto(BUCKET).await;
    let b = S3Backend::new("s3-test", &config(&e, 2_000)).unwrap();
    let port = e.port;
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(async move { moto_keys(port, BUCKET, TMP_PREFIX).await })
        };
    suite::locate_published(&b, &list).await;

    // A client's own entry of the reserved name never reaches the native
    // object in place of the staged id.
    let forged = NativeMeta {
        user: vec![(STAGED_META.into(), "forged".into())],
        ..NativeMeta::default()
    };
    let s = b.stage(body(b"forged", 3)).await.unwrap();
    let d = b.publish(s.clone(), at("forged", &forged)).await.unwrap();
    assert_eq!(
        b.locate(at("forged", NativeMeta::none()), &s)
            .await
            .unwrap(),
        Some(d.clone())
    );
    b.delete(&d).await.unwrap();

    // Client metadata filling S3's 2 KiB leaves no room for the staged id:
    // data staged with one PutObject is still found by its ETag.
    let full = NativeMeta {
        user: vec![("big".into(), "v".repeat(2045))],
        ..NativeMeta::default()
    };
    let bytes = data(4096, 5);
    let s = b.stage(body(&bytes, 1000)).await.unwrap();
    let d = b.publish(s.clone(), at("full", &full)).await.unwrap();
    let found = b
        .locate(at("full", NativeMeta::none()), &s)
        .await
        .unwrap()
        .expect("data published without the staged id not found");
    assert_eq!(found, d);
    assert_eq!(collect(b.read(&found, None).await.unwrap()).await, bytes);
    b.delete(&d).await.unwrap();

    let s = b.stage(body(b"during", 3)).await.unwrap();
    let limit = Duration::from_secs(4);
    e.stop();
    suite::unavailable_within(limit, b.locate(at("k", NativeMeta::none()), &s)).await;
}
