//! The Azure Blob backend against Azurite (started on a free port per test).

mod common;
#[path = "common/suite.rs"]
mod suite;

use std::time::Duration;

use base64::Engine as _;
use cloudmux_data::azure::{
    decode_metadata, sign, AzureBackend, AzureConfig, SOURCE_META, STAGED_META,
};
use cloudmux_data::cloud::{STAGING_PREFIX, STAGING_PREFIXES, VERSIONS_PREFIX};
use cloudmux_data::{Backend, ObjectPath, Staged};
use common::{body, data, start_azurite, Emulator, AZURITE_KEY};
use futures_util::StreamExt;

fn config(e: &Emulator, timeout_ms: u64) -> AzureConfig {
    toml::from_str(&format!(
        r#"
        account = "devstoreaccount1"
        account_key = "{AZURITE_KEY}"
        endpoint = "http://127.0.0.1:{}/devstoreaccount1"
        container = "cloudmux"
        request_timeout_ms = {timeout_ms}
        connect_timeout_ms = 500
        max_retries = 1
        "#,
        e.port
    ))
    .unwrap()
}

/// Every blob under every staging prefix.
async fn staging_area(b: &AzureBackend) -> Vec<String> {
    let mut all = Vec::new();
    for prefix in STAGING_PREFIXES {
        all.extend(b.list_names(prefix).await.unwrap());
    }
    all
}

/// Writes blob `name` of container `cloudmux` with Put Blob, signed with
/// Azurite's key, behind the backend's back.
async fn put_blob(port: u16, name: String, bytes: Vec<u8>) {
    let path = format!("/devstoreaccount1/cloudmux/{name}");
    let headers: Vec<(String, String)> = [
        ("content-length", bytes.len().to_string()),
        ("x-ms-blob-type", "BlockBlob".to_owned()),
        (
            "x-ms-date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        ),
        ("x-ms-version", "2021-08-06".to_owned()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let auth = sign::shared_key("devstoreaccount1", &key, "PUT", &path, &[], &headers);
    let mut req = reqwest::Client::new()
        .put(format!("http://127.0.0.1:{port}{path}"))
        .header("authorization", auth)
        .body(bytes);
    for (n, v) in headers.iter().filter(|(n, _)| n != "content-length") {
        req = req.header(n, v);
    }
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "put {name}: {}", r.status());
}

async fn backend(e: &Emulator) -> AzureBackend {
    let b = AzureBackend::new("azure-test", &config(e, 5_000)).unwrap();
    b.create_container().await.unwrap();
    b
}

#[tokio::test]
async fn round_trip_ranges_replace_delete() {
    let e = start_azurite();
    let b = backend(&e).await;
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
        Box::pin(put_blob(port, name, bytes))
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
    let e = start_azurite();
    let b = backend(&e).await;
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&b))
        };
    suite::multipart(&b, &list).await;
    suite::many_parts(&b, &list, 40).await;
}

#[tokio::test]
async fn gc_lists_and_drops_a_blob_of_uncommitted_blocks() {
    let e = start_azurite();
    let b = backend(&e).await;
    let since = std::time::SystemTime::now();
    // A staging write cut off after its first 8 MiB block was uploaded, as
    // by a crash: the blob holds uncommitted blocks only.
    let bytes = data(9 * 1024 * 1024, 70);
    let endless = body(&bytes, 1024 * 1024).chain(futures_util::stream::pending());
    let writer = b.clone();
    let task = tokio::spawn(async move { writer.stage(Box::pin(endless)).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let names = loop {
        let names = b.list_names(STAGING_PREFIX).await.unwrap();
        if !names.is_empty() {
            break names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the block never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    task.abort();
    assert!(task.await.is_err());
    assert_eq!(names.len(), 1);

    let listed = b.list_staged().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [names[0].as_str()]);
    suite::written_recently(&listed[0], since);
    let id_only = Staged {
        id: names[0].clone(),
        size: 0,
        stamp: 0,
    };
    b.discard(&id_only).await.unwrap();
    assert_eq!(
        b.list_names(STAGING_PREFIX).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(b.list_staged().await.unwrap(), []);
    b.discard(&id_only).await.unwrap();
    assert_eq!(
        b.list_names(STAGING_PREFIX).await.unwrap(),
        Vec::<String>::new()
    );

    // Ids that are not staging names are neither listed nor discarded.
    let outside = Staged {
        id: "bkt/k".into(),
        size: 0,
        stamp: 0,
    };
    assert!(matches!(
        b.discard(&outside).await,
        Err(cloudmux_data::DataError::NotFound(_))
    ));
}

#[tokio::test]
async fn bucket_match_uses_the_key_as_blob_name() {
    let e = start_azurite();
    let mut cfg = config(&e, 5_000);
    cfg.cloud.bucket_match = true;
    let b = AzureBackend::new("azure-test", &cfg).unwrap();
    b.create_container().await.unwrap();
    let s = b.stage(body(b"x", 1)).await.unwrap();
    let d = b
        .publish(
            s,
            cloudmux_data::ObjectPath {
                bucket: "bkt",
                key: "k/1",
                meta: cloudmux_data::NativeMeta::none(),
            },
        )
        .await
        .unwrap();
    assert_eq!(d.locator, "k/1");
    assert_eq!(b.list_names("k/").await.unwrap(), vec!["k/1".to_owned()]);
    b.delete(&d).await.unwrap();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(staging_area(&b))
        };
    suite::reserved_keys_are_refused(&b, &list).await;
}

#[tokio::test]
async fn refused_credentials_are_a_configuration_error() {
    let e = start_azurite();
    backend(&e).await;
    // A well-formed account key that is not the account's: Azurite checks
    // Shared Key signatures as Azure does and answers 403.
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let mut cfg = config(&e, 30_000);
    cfg.account_key = Some(wrong.clone());
    cfg.cloud.max_retries = 10;
    let b = AzureBackend::new("azure-denied", &cfg).unwrap();
    suite::refused_credentials_are_a_configuration_error(&b, "azure-denied", &wrong).await;
}

#[tokio::test]
async fn outage_gives_unavailable_then_recovers() {
    let mut e = start_azurite();
    let b = AzureBackend::new("azure-test", &config(&e, 1_000)).unwrap();
    b.create_container().await.unwrap();
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
    assert!(
        err.contains("azure-test"),
        "error names the location: {err}"
    );
    assert!(!err.contains(AZURITE_KEY), "error leaks the key: {err}");

    e.restart();
    b.create_container().await.unwrap();
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
fn config_needs_exactly_one_credential() {
    let base = "account = \"a\"\ncontainer = \"c\"\n";
    let c: AzureConfig = toml::from_str(base).unwrap();
    assert!(AzureBackend::new("x", &c).is_err());
    let c: AzureConfig = toml::from_str(&format!(
        "{base}account_key = \"{AZURITE_KEY}\"\nsas_token = \"?sv=1\"\n"
    ))
    .unwrap();
    assert!(AzureBackend::new("x", &c).is_err());
    let c: AzureConfig = toml::from_str(&format!("{base}sas_token = \"?sv=1&sig=x\"\n")).unwrap();
    assert!(AzureBackend::new("x", &c).is_ok());
    std::env::set_var("CMX_TEST_AZ_KEY", AZURITE_KEY);
    let c: AzureConfig =
        toml::from_str(&format!("{base}account_key_env = \"CMX_TEST_AZ_KEY\"\n")).unwrap();
    assert!(AzureBackend::new("x", &c).is_ok());
    assert!(toml::from_str::<AzureConfig>(&format!("{base}colour = 1\n")).is_err());
}

/// The response headers of Get Blob Properties of blob `name` (a name
/// without characters to escape) of container `cloudmux`, signed with
/// Azurite's key, behind the backend's back.
async fn blob_headers(port: u16, name: &str) -> reqwest::header::HeaderMap {
    let path = format!("/devstoreaccount1/cloudmux/{name}");
    let headers: Vec<(String, String)> = [
        (
            "x-ms-date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        ),
        ("x-ms-version", "2021-08-06".to_owned()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let auth = sign::shared_key("devstoreaccount1", &key, "HEAD", &path, &[], &headers);
    let mut req = reqwest::Client::new()
        .head(format!("http://127.0.0.1:{port}{path}"))
        .header("authorization", auth);
    for (n, v) in &headers {
        req = req.header(n, v);
    }
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "head {name}: {}", r.status());
    r.headers().clone()
}

#[tokio::test]
async fn noncurrent_versions_are_server_side_copies_under_the_versions_prefix() {
    let e = start_azurite();
    let b = backend(&e).await;
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
    let matched = AzureBackend::new("azure-test", &cfg).unwrap();
    let own = |_: &str, key: &str, version: &str| format!("{VERSIONS_PREFIX}{key}/{version}");
    suite::keep_versions(&matched, &own, &listing).await;

    // The copy carries the blob's properties and metadata (the staged-id
    // entry included), plus the source's ETag.
    let m = suite::meta();
    let target = ObjectPath {
        bucket: "bkt",
        key: "meta",
        meta: &m,
    };
    let s = b.stage(body(b"with metadata", 4)).await.unwrap();
    let d = b.publish(s.clone(), target).await.unwrap();
    let source_etag = blob_headers(e.port, &d.locator).await["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let k = b
        .keep_version(&d, target, "null.0123456789abcdef")
        .await
        .unwrap();
    let h = blob_headers(e.port, &k.locator).await;
    let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(get("content-type"), m.content_type);
    assert_eq!(get("cache-control"), m.cache_control);
    assert_eq!(get("content-disposition"), m.content_disposition);
    assert_eq!(get("content-language"), m.content_language);
    let user = decode_metadata(h.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())));
    assert_eq!(
        user,
        [
            ("color".to_owned(), "blue".to_owned()),
            ("my-key".to_owned(), "v 1".to_owned())
        ]
    );
    assert_eq!(get(&format!("x-ms-meta-{STAGED_META}")), Some(s.id.clone()));
    assert_eq!(
        get(&format!("x-ms-meta-{SOURCE_META}")).as_deref(),
        Some(source_etag.trim_matches('"'))
    );
    // A retry answers the copy as it is: no second copy (the ETag stays).
    assert_eq!(
        b.keep_version(&d, target, "null.0123456789abcdef")
            .await
            .unwrap(),
        k
    );
    assert_eq!(blob_headers(e.port, &k.locator).await["etag"], h["etag"]);
    assert_eq!(b.list_staged().await.unwrap(), []);
    b.delete(&k).await.unwrap();
    b.delete(&d).await.unwrap();
}
