//! The S3 backend against moto (started on a free port per test): the
//! scenario suite every cloud backend passes, then what is S3's own.

mod common;
#[path = "common/suite.rs"]
mod suite;

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use cloudmux_data::cloud::{self, STAGING_PREFIX, STAGING_PREFIXES, VERSIONS_PREFIX};
use cloudmux_data::s3::{S3Backend, S3Config, STAGED_META};
use cloudmux_data::{Backend, DataError, NativeMeta, ObjectPath, Staged};
use common::{body, collect, data, make_moto_bucket, moto_keys, start_moto, Emulator};

/// The legacy staging prefix (`.cloudmux/tmp/`).
const LEGACY: &str = cloud::LEGACY_STAGING_PREFIXES[0];

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

/// Everything in the staging area, as moto holds it: the objects and the
/// unfinished multipart uploads under every staging prefix.
async fn staging_area(e: &Emulator) -> Vec<String> {
    let c = sdk(e);
    let mut all = Vec::new();
    for prefix in STAGING_PREFIXES {
        all.extend(moto_keys(e.port, BUCKET, prefix).await);
        all.extend(upload_keys(&c, prefix).await);
    }
    all
}

#[tokio::test]
async fn round_trip_ranges_replace_delete() {
    let e = start_moto(BUCKET).await;
    let b = S3Backend::new("s3-test", &config(&e, 10_000)).unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&e))
        };
    suite::round_trip(&b, &list).await;
    suite::buckets_share_the_container(&b).await;
    suite::failed_body_leaves_nothing(&b, &list).await;
    suite::large_objects(&b, &list).await;
    suite::copy_within(&b, &list).await;
    suite::locate_published(&b, &list).await;
    suite::staged_listing_for_gc(&b, &list).await;
    let c = sdk(&e);
    let plant = |key: String,
                 bytes: Vec<u8>|
     -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        let c = c.clone();
        Box::pin(async move {
            c.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .unwrap();
        })
    };
    suite::legacy_staging_is_still_read(&b, &list, &plant).await;
    let port = e.port;
    let odd =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(moto_keys(port, BUCKET, "odd/"))
        };
    suite::odd_keys(&b, &odd).await;
}

#[tokio::test]
async fn multipart_reverse_order_complete_and_abort() {
    let e = start_moto(BUCKET).await;
    let b = S3Backend::new("s3-test", &config(&e, 10_000)).unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&e))
        };
    suite::multipart(&b, &list).await;
    suite::many_parts(&b, &list, 40).await;
}

#[tokio::test]
async fn bucket_match_refuses_keys_in_the_staging_area() {
    let e = start_moto(BUCKET).await;
    let mut cfg = config(&e, 10_000);
    cfg.cloud.bucket_match = true;
    let b = S3Backend::new("s3-test", &cfg).unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&e))
        };
    suite::reserved_keys_are_refused(&b, &list).await;
}

#[tokio::test]
async fn outage_gives_unavailable_then_recovers() {
    let mut e = start_moto(BUCKET).await;
    let b = S3Backend::new("s3-test", &config(&e, 1_000)).unwrap();
    b.probe().await.unwrap();
    let s = b.stage(body(b"before", 3)).await.unwrap();
    let limit = Duration::from_secs(4);

    e.stop();
    suite::unavailable_within(limit, b.probe()).await;
    suite::unavailable_within(limit, b.stage(body(b"during", 3))).await;
    suite::unavailable_within(limit, b.read_staged(&s, None)).await;
    suite::unavailable_within(limit, b.locate(at("k", NativeMeta::none()), &s)).await;
    let err = b.probe().await.unwrap_err().to_string();
    assert!(err.contains("s3-test"), "error names the location: {err}");

    // moto keeps no state: the target bucket is missing after a restart,
    // which is the location not being ready, not a missing object.
    e.restart();
    suite::unavailable_within(limit, b.probe()).await;
    suite::unavailable_within(limit, b.read_staged(&s, None)).await;
    make_moto_bucket(e.port, BUCKET).await;
    b.probe().await.unwrap();
    let s = b.stage(body(b"after", 3)).await.unwrap();
    assert_eq!(
        collect(b.read_staged(&s, None).await.unwrap()).await,
        b"after"
    );

    e.pause();
    suite::unavailable_within(limit, b.probe()).await;
    suite::unavailable_within(limit, b.read_staged(&s, None)).await;
    suite::unavailable_within(limit, b.locate(at("k", NativeMeta::none()), &s)).await;
    e.resume();
    b.probe().await.unwrap();
    assert_eq!(
        collect(b.read_staged(&s, None).await.unwrap()).await,
        b"after"
    );
}

#[tokio::test]
async fn refused_credentials_are_a_configuration_error() {
    let e = common::start_moto_checking_credentials(BUCKET).await;
    let secret = "wrong-secret-never-shown";
    let cfg: S3Config = toml::from_str(&format!(
        r#"
        endpoint = "http://127.0.0.1:{}"
        bucket = "{BUCKET}"
        access_key = "AKIAWRONGKEY"
        secret_key = "{secret}"
        path_style = true
        request_timeout_ms = 30000
        max_retries = 10
        "#,
        e.port
    ))
    .unwrap();
    let b = S3Backend::new("s3-denied", &cfg).unwrap();
    suite::refused_credentials_are_a_configuration_error(&b, "s3-denied", secret).await;
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
            Box::pin(async move { moto_keys(port, BUCKET, STAGING_PREFIX).await })
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

/// A plain SDK client of the moto bucket, to act behind cloudmux's back.
fn sdk(e: &Emulator) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("http://127.0.0.1:{}", e.port))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The keys of the unfinished multipart uploads under `prefix`.
async fn upload_keys(c: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let out = c
        .list_multipart_uploads()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = out
        .uploads()
        .iter()
        .filter_map(|u| u.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

/// Starts a multipart upload of `key` behind cloudmux's back and sends one
/// part, as a staging write cut off by a crash leaves it.
async fn unfinished_upload(c: &aws_sdk_s3::Client, key: &str) {
    let id = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    c.upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"abandoned part"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn gc_lists_temp_objects_and_unfinished_uploads_and_discards_them() {
    let e = start_moto(BUCKET).await;
    let b = S3Backend::new("s3-test", &config(&e, 10_000)).unwrap();
    let c = sdk(&e);
    let port = e.port;
    // The raw staging area: temp objects and unfinished uploads.
    let staging =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&e))
        };
    suite::staged_listing_for_gc(&b, &staging).await;

    let since = std::time::SystemTime::now();
    // Uploads of staged data a crash left unfinished, under the current and
    // the legacy prefix; a name with both a temp object and an unfinished
    // upload; and what must never be listed: uploads and objects outside
    // the staging area, names under a prefix that are no staged id,
    // published data.
    let lone = cloud::staging_name();
    let both = cloud::staging_name();
    let old = format!("{LEGACY}{}", uuid::Uuid::new_v4().hyphenated());
    unfinished_upload(&c, &lone).await;
    unfinished_upload(&c, &both).await;
    unfinished_upload(&c, &old).await;
    c.put_object()
        .bucket(BUCKET)
        .key(&both)
        .body(ByteStream::from_static(b"temp"))
        .send()
        .await
        .unwrap();
    let stray = format!("{STAGING_PREFIX}not-a-staged-id");
    unfinished_upload(&c, "bkt/user-upload").await;
    unfinished_upload(&c, &stray).await;
    for key in ["bkt/plain", &stray] {
        c.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let s = b.stage(common::body(b"published", 4)).await.unwrap();
    let published = b
        .publish(s, at("published", NativeMeta::none()))
        .await
        .unwrap();

    let listed = b.list_staged().await.unwrap();
    let mut want = vec![lone.clone(), both.clone(), old.clone()];
    want.sort();
    let ids: Vec<String> = listed.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, want);
    // A name listed twice has the newest time: moto reports every upload as
    // initiated in 2010 (and answers ListParts, which S3 uses for the time
    // of an upload's newest part, with a document the SDK cannot read, so
    // the upload's start stands), the temp object was written just now.
    let entry = |id: &str| listed.iter().find(|e| e.id == id).unwrap();
    suite::written_recently(entry(&both), since);
    assert!(entry(&lone).modified <= std::time::SystemTime::now());

    for id in [&lone, &both, &old] {
        let id_only = Staged {
            id: id.clone(),
            size: 0,
            stamp: 0,
        };
        b.discard(&id_only).await.unwrap();
        b.discard(&id_only).await.unwrap();
    }
    assert_eq!(b.list_staged().await.unwrap(), []);
    assert_eq!(
        upload_keys(&c, "").await,
        [stray.clone(), "bkt/user-upload".to_owned()]
    );
    assert_eq!(
        moto_keys(port, BUCKET, STAGING_PREFIX).await,
        [stray.as_str()]
    );
    assert_eq!(moto_keys(port, BUCKET, LEGACY).await, Vec::<String>::new());
    assert_eq!(
        moto_keys(port, BUCKET, "bkt/").await,
        ["bkt/plain", "bkt/published"]
    );
    assert_eq!(
        collect(b.read(&published, None).await.unwrap()).await,
        b"published"
    );
    for id in [stray.as_str(), "bkt/plain", &published.locator] {
        let r = b
            .discard(&Staged {
                id: id.to_owned(),
                size: 0,
                stamp: 0,
            })
            .await;
        assert!(matches!(r, Err(DataError::NotFound(_))), "{id}: {r:?}");
    }
}

#[tokio::test]
async fn noncurrent_versions_are_server_side_copies_under_the_versions_prefix() {
    let e = start_moto(BUCKET).await;
    let port = e.port;
    let listing =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(moto_keys(port, BUCKET, VERSIONS_PREFIX))
        };
    let b = S3Backend::new("s3-test", &config(&e, 10_000)).unwrap();
    let shared = |bucket: &str, key: &str, version: &str| {
        format!("{VERSIONS_PREFIX}{bucket}/{key}/{version}")
    };
    suite::keep_versions(&b, &shared, &listing).await;
    let mut cfg = config(&e, 10_000);
    cfg.cloud.bucket_match = true;
    let matched = S3Backend::new("s3-test", &cfg).unwrap();
    let own = |_: &str, key: &str, version: &str| format!("{VERSIONS_PREFIX}{key}/{version}");
    suite::keep_versions(&matched, &own, &listing).await;

    // The copy carries the object's native metadata, and the staged-id
    // entry with it.
    let m = suite::meta();
    let s = b.stage(body(b"with metadata", 4)).await.unwrap();
    let d = b.publish(s.clone(), at("meta", &m)).await.unwrap();
    let k = b
        .keep_version(&d, at("meta", &m), "null.0123456789abcdef")
        .await
        .unwrap();
    let head = sdk(&e)
        .head_object()
        .bucket(BUCKET)
        .key(&k.locator)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), m.content_type.as_deref());
    assert_eq!(head.cache_control(), m.cache_control.as_deref());
    assert_eq!(head.content_disposition(), m.content_disposition.as_deref());
    assert_eq!(head.content_language(), m.content_language.as_deref());
    let user = head.metadata().unwrap();
    assert_eq!(user.get("color").map(String::as_str), Some("blue"));
    assert_eq!(user.get("my-key").map(String::as_str), Some("v 1"));
    assert_eq!(user.get(STAGED_META), Some(&s.id));
    // Nothing under the versions prefix is staged data.
    assert_eq!(b.list_staged().await.unwrap(), []);
    b.delete(&k).await.unwrap();
    b.delete(&d).await.unwrap();
}
