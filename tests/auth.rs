//! Authentication: signatures, unknown keys, presigned URLs, anonymous access,
//! clock skew, virtual-hosted-style addressing.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use cloudmux_e2e::*;

async fn setup() -> TestServer {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "auth").await;
    put_object(&alice, "auth", "secret.txt", b"top secret").await;
    s
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match() {
    let s = setup().await;
    let bad = s.client_with(ALICE, |b| {
        b.credentials_provider(Credentials::new(
            ALICE.access_key,
            "definitely-not-alices-secret-key-0000000",
            None,
            None,
            "bad",
        ))
    });
    assert_sdk_err(
        bad.list_buckets().send().await,
        403,
        "SignatureDoesNotMatch",
    );
    assert_sdk_err(
        bad.get_object()
            .bucket("auth")
            .key("secret.txt")
            .send()
            .await,
        403,
        "SignatureDoesNotMatch",
    );
    assert_sdk_err(
        bad.put_object()
            .bucket("auth")
            .key("forged")
            .body(ByteStream::from_static(b"forged"))
            .send()
            .await,
        403,
        "SignatureDoesNotMatch",
    );
    assert_eq!(
        list_keys(&s.client(ALICE), "auth").await,
        vec!["secret.txt"],
        "nothing written"
    );
}

#[tokio::test]
async fn unknown_access_key() {
    let s = setup().await;
    let bad = s.client_with(ALICE, |b| {
        b.credentials_provider(Credentials::new(
            "AKIANOBODY0000000000",
            "whatever-secret",
            None,
            None,
            "bad",
        ))
    });
    assert_sdk_err(bad.list_buckets().send().await, 403, "InvalidAccessKeyId");
    assert_sdk_err(
        bad.put_object()
            .bucket("auth")
            .key("forged")
            .body(ByteStream::from_static(b"forged"))
            .send()
            .await,
        403,
        "InvalidAccessKeyId",
    );
    assert_eq!(
        list_keys(&s.client(ALICE), "auth").await,
        vec!["secret.txt"]
    );
}

#[tokio::test]
async fn carol_secret_from_environment() {
    let s = setup().await;
    let carol = s.client(CAROL);
    create_bucket(&carol, "carols").await;
    put_object(&carol, "carols", "k", b"carol's data").await;
    assert_eq!(get_object(&carol, "carols", "k").await, b"carol's data");
    let out = ok(carol.list_buckets().send().await);
    assert_eq!(out.owner().and_then(|o| o.display_name()), Some("carol"));
}

#[tokio::test]
async fn tampered_request_is_rejected() {
    let s = setup().await;
    // A well-formed Authorization header with a bogus signature.
    let r = s
        .raw("GET", "/auth/secret.txt")
        .anonymous()
        .header(
            "authorization",
            &format!(
                "AWS4-HMAC-SHA256 Credential={}/20240101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature={}",
                ALICE.access_key,
                "0".repeat(64)
            ),
        )
        .header("x-amz-date", "20240101T000000Z")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .send()
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        matches!(
            r.code().as_deref(),
            Some("SignatureDoesNotMatch" | "RequestTimeTooSkewed" | "AccessDenied")
        ),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn unsigned_payload_is_accepted() {
    let s = setup().await;
    let r = s
        .raw("PUT", "/auth/unsigned")
        .unsigned_payload()
        .body("unsigned payload body")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get_object(&s.client(ALICE), "auth", "unsigned").await,
        b"unsigned payload body"
    );
}

#[tokio::test]
async fn presigned_get_works() {
    let s = setup().await;
    let req = ok_presign(
        s.client(ALICE)
            .get_object()
            .bucket("auth")
            .key("secret.txt")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
            .await,
    );
    let resp = http().get(req.uri()).send().await.expect("GET presigned");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("x-amz-request-id"));
    assert_eq!(resp.bytes().await.expect("body").as_ref(), b"top secret");
}

#[tokio::test]
async fn presigned_get_tampered_signature() {
    let s = setup().await;
    let req = ok_presign(
        s.client(ALICE)
            .get_object()
            .bucket("auth")
            .key("secret.txt")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
            .await,
    );
    // Point the same signature at another key.
    let uri = req.uri().replace("/auth/secret.txt", "/auth/other.txt");
    let resp = http().get(&uri).send().await.expect("GET");
    assert_eq!(resp.status().as_u16(), 403);
    let body = resp.text().await.expect("body");
    assert_eq!(
        error_code(&body).as_deref(),
        Some("SignatureDoesNotMatch"),
        "{body}"
    );
}

#[tokio::test]
async fn presigned_get_expired() {
    let s = setup().await;
    let req = ok_presign(
        s.client(ALICE)
            .get_object()
            .bucket("auth")
            .key("secret.txt")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).expect("config"))
            .await,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resp = http().get(req.uri()).send().await.expect("GET presigned");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().contains_key("x-amz-request-id"));
    let body = resp.text().await.expect("body");
    assert_eq!(
        error_code(&body).as_deref(),
        Some("AccessDenied"),
        "expired presign: {body}"
    );
}

#[tokio::test]
async fn presigned_put_works_and_expired_put_writes_nothing() {
    let s = setup().await;
    let alice = s.client(ALICE);
    let req = ok_presign(
        alice
            .put_object()
            .bucket("auth")
            .key("uploaded")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
            .await,
    );
    let mut builder = http().put(req.uri()).body("via presigned PUT");
    for (k, v) in req.headers() {
        builder = builder.header(k, v);
    }
    let resp = builder.send().await.expect("PUT presigned");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    assert_eq!(
        get_object(&alice, "auth", "uploaded").await,
        b"via presigned PUT"
    );

    let req = ok_presign(
        alice
            .put_object()
            .bucket("auth")
            .key("late")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).expect("config"))
            .await,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resp = http()
        .put(req.uri())
        .body("too late")
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status().as_u16(), 403);
    let body = resp.text().await.expect("body");
    assert_eq!(error_code(&body).as_deref(), Some("AccessDenied"), "{body}");
    assert_sdk_status(
        alice.head_object().bucket("auth").key("late").send().await,
        404,
    );
}

#[tokio::test]
async fn anonymous_access_to_private_bucket() {
    let s = setup().await;
    for (method, path) in [
        ("GET", "/auth"),
        ("GET", "/auth?list-type=2"),
        ("GET", "/auth/secret.txt"),
        ("PUT", "/auth/anon-upload"),
        ("DELETE", "/auth/secret.txt"),
        ("GET", "/auth?acl"),
    ] {
        let r = s
            .raw(method, path)
            .anonymous()
            .body(if method == "PUT" { "x" } else { "" })
            .send()
            .await;
        r.assert_error(403, "AccessDenied");
    }
    let r = s.raw("HEAD", "/auth/secret.txt").anonymous().send().await;
    assert_eq!(r.status, 403);
    assert_eq!(
        list_keys(&s.client(ALICE), "auth").await,
        vec!["secret.txt"]
    );
    // ListBuckets needs an identity.
    let r = s.raw("GET", "/").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn request_time_too_skewed() {
    let s = setup().await;
    let past = SystemTime::now() - Duration::from_secs(20 * 60);
    let r = s
        .raw("GET", "/auth/secret.txt")
        .signed_at(past)
        .send()
        .await;
    r.assert_error(403, "RequestTimeTooSkewed");
    let future = SystemTime::now() + Duration::from_secs(20 * 60);
    let r = s
        .raw("GET", "/auth/secret.txt")
        .signed_at(future)
        .send()
        .await;
    r.assert_error(403, "RequestTimeTooSkewed");
    let r = s
        .raw("PUT", "/auth/skewed")
        .signed_at(past)
        .body("skewed")
        .send()
        .await;
    r.assert_error(403, "RequestTimeTooSkewed");
    assert_sdk_status(
        s.client(ALICE)
            .head_object()
            .bucket("auth")
            .key("skewed")
            .send()
            .await,
        404,
    );
    // A few minutes is within the allowed 15.
    let near = SystemTime::now() - Duration::from_secs(5 * 60);
    let r = s
        .raw("GET", "/auth/secret.txt")
        .signed_at(near)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn virtual_hosted_style_raw() {
    let s = setup().await;
    let host = format!("auth.{DOMAIN}:{}", s.port());
    let r = s
        .raw("PUT", "/vhost-key")
        .host(&host)
        .body("vhost body")
        .send()
        .await;
    assert_eq!(r.status, 200, "vhost PUT: {}", r.text());
    let r = s.raw("GET", "/vhost-key").host(&host).send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_ref(), b"vhost body");
    // The object is the same one path-style sees.
    assert_eq!(
        get_object(&s.client(ALICE), "auth", "vhost-key").await,
        b"vhost body"
    );
    // Bucket-level request: ListObjects.
    let r = s.raw("GET", "/?list-type=2").host(&host).send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.text_of("Name").as_deref(), Some("auth"));
    let mut keys = x.texts("Contents", "Key");
    keys.sort();
    assert_eq!(keys, vec!["secret.txt", "vhost-key"]);
    // Host without a port works too (the signature covers whatever Host was sent).
    let r = s
        .raw("GET", "/secret.txt")
        .host(&format!("auth.{DOMAIN}"))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A bucket that does not exist.
    let r = s
        .raw("GET", "/x")
        .host(&format!("nosuchbucket.{DOMAIN}:{}", s.port()))
        .send()
        .await;
    r.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn virtual_hosted_style_sdk() {
    let s = setup().await;
    let v = s.vhost_client(ALICE);
    ok(v.put_object()
        .bucket("auth")
        .key("sdk-vhost")
        .body(ByteStream::from_static(b"sdk vhost"))
        .send()
        .await);
    assert_eq!(get_object(&v, "auth", "sdk-vhost").await, b"sdk vhost");
    let mut keys = list_keys(&v, "auth").await;
    keys.sort();
    assert_eq!(keys, vec!["sdk-vhost", "secret.txt"]);
    ok(v.head_bucket().bucket("auth").send().await);
    create_bucket(&v, "vhost-created").await;
    ok(s.client(ALICE)
        .head_bucket()
        .bucket("vhost-created")
        .send()
        .await);
    ok(v.delete_object()
        .bucket("auth")
        .key("sdk-vhost")
        .send()
        .await);
    assert_eq!(
        list_keys(&s.client(ALICE), "auth").await,
        vec!["secret.txt"]
    );
}

fn ok_presign<E: std::fmt::Debug>(
    r: Result<aws_sdk_s3::presigning::PresignedRequest, E>,
) -> aws_sdk_s3::presigning::PresignedRequest {
    r.unwrap_or_else(|e| panic!("presign: {e:?}"))
}

/// Every `x-amz-*` request header that the front end reads (`headers.rs`,
/// the router, the handlers, the authentication and policy code), each with
/// a value the server would act on. `x-amz-content-sha256` is signed by
/// every header-signed request and exempt in presigned ones, as in S3.
const READ_HEADERS: &[(&str, &str)] = &[
    ("x-amz-acl", "public-read"),
    (
        "x-amz-grant-read",
        "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
    ),
    ("x-amz-grant-write", "id=\"0000\""),
    ("x-amz-grant-read-acp", "id=\"0000\""),
    ("x-amz-grant-write-acp", "id=\"0000\""),
    ("x-amz-grant-full-control", "id=\"0000\""),
    ("x-amz-copy-source", "/private/secret.txt"),
    ("x-amz-copy-source-range", "bytes=0-1"),
    ("x-amz-copy-source-if-match", "\"etag\""),
    ("x-amz-copy-source-if-none-match", "\"etag\""),
    (
        "x-amz-copy-source-if-modified-since",
        "Wed, 01 Jan 2020 00:00:00 GMT",
    ),
    (
        "x-amz-copy-source-if-unmodified-since",
        "Wed, 01 Jan 2020 00:00:00 GMT",
    ),
    ("x-amz-metadata-directive", "REPLACE"),
    ("x-amz-meta-owner", "mallory"),
    ("x-amz-meta-scal-location-constraint", "second"),
    ("x-amz-tagging", "k=v"),
    ("x-amz-tagging-directive", "REPLACE"),
    ("x-amz-storage-class", "STANDARD"),
    ("x-amz-website-redirect-location", "/elsewhere"),
    ("x-amz-server-side-encryption", "AES256"),
    ("x-amz-server-side-encryption-aws-kms-key-id", "key"),
    ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
    (
        "x-amz-server-side-encryption-customer-key",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ),
    (
        "x-amz-server-side-encryption-customer-key-md5",
        "AAAAAAAAAAAAAAAAAAAAAA==",
    ),
    ("x-amz-server-side-encryption-context", "e30="),
    ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
    (
        "x-amz-copy-source-server-side-encryption-customer-algorithm",
        "AES256",
    ),
    (
        "x-amz-copy-source-server-side-encryption-customer-key",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ),
    (
        "x-amz-copy-source-server-side-encryption-customer-key-md5",
        "AAAAAAAAAAAAAAAAAAAAAA==",
    ),
    ("x-amz-checksum-algorithm", "CRC32"),
    ("x-amz-sdk-checksum-algorithm", "CRC32"),
    ("x-amz-checksum-crc32", "AAAAAA=="),
    ("x-amz-checksum-crc32c", "AAAAAA=="),
    ("x-amz-checksum-crc64nvme", "AAAAAAAAAAA="),
    ("x-amz-checksum-sha1", "2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
    (
        "x-amz-checksum-sha256",
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ),
    ("x-amz-checksum-type", "FULL_OBJECT"),
    ("x-amz-checksum-mode", "ENABLED"),
    ("x-amz-trailer", "x-amz-checksum-crc32"),
    ("x-amz-decoded-content-length", "4"),
    ("x-amz-expected-bucket-owner", "111122223333"),
    ("x-amz-source-expected-bucket-owner", "111122223333"),
    ("x-amz-object-attributes", "ETag"),
    ("x-amz-object-lock-legal-hold", "ON"),
    ("x-amz-object-lock-mode", "GOVERNANCE"),
    (
        "x-amz-object-lock-retain-until-date",
        "2030-01-01T00:00:00Z",
    ),
    ("x-amz-bucket-object-lock-enabled", "true"),
    ("x-amz-date", "20300101T000000Z"),
];

/// The `x-amz-*` names the front end only writes (response headers), takes
/// from the query string (presigned parameters) or from a body trailer.
const NOT_REQUEST_HEADERS: &[&str] = &[
    "x-amz-request-id",
    "x-amz-id-2",
    "x-amz-mp-parts-count",
    "x-amz-tagging-count",
    "x-amz-bucket-region",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-signature",
    "x-amz-trailer-signature",
    "x-amz-content-sha256",
];

#[test]
fn the_header_table_covers_every_header_the_front_end_reads() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/cloudmux-s3/src");
    let mut missing = Vec::new();
    for file in walk(&src) {
        let name = file.to_string_lossy();
        if !name.ends_with(".rs") || name.contains("test") || name.contains("vectors") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        for (i, _) in text.match_indices("\"x-amz-") {
            let literal: String = text[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            // Prefixes completed at run time (`x-amz-meta-`, `x-amz-copy-source-if-…`,
            // `x-amz-checksum-{algorithm}`) are covered by their members.
            let covered = READ_HEADERS
                .iter()
                .any(|(h, _)| *h == literal || (literal.ends_with('-') && h.starts_with(&literal)))
                || NOT_REQUEST_HEADERS.contains(&literal.as_str());
            if !covered {
                missing.push(format!("{literal} ({})", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "headers missing from READ_HEADERS: {missing:?}"
    );
}

/// The `HeadersNotSigned` element of an error document.
fn headers_not_signed(r: &RawResponse) -> String {
    r.xml()
        .child("HeadersNotSigned")
        .map(|e| e.text.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn presigned_put_with_unsigned_copy_source_is_refused_and_writes_nothing() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "private").await;
    put_object(&alice, "private", "secret.txt", b"payroll figures").await;
    create_bucket(&alice, "drop").await;
    // The holder of a presigned PUT for drop/upload.bin adds two unsigned headers.
    let r = s
        .raw("PUT", "/drop/upload.bin")
        .presigned()
        .unsigned_header("x-amz-copy-source", "/private/secret.txt")
        .unsigned_header("x-amz-acl", "public-read")
        .send()
        .await;
    r.assert_error(403, "AccessDenied");
    assert!(
        r.text()
            .contains("There were headers present in the request which were not signed"),
        "{}",
        r.text()
    );
    let mut names: Vec<String> = headers_not_signed(&r)
        .split(", ")
        .map(str::to_owned)
        .collect();
    names.sort();
    assert_eq!(names, ["x-amz-acl", "x-amz-copy-source"]);
    // Nothing was written: no object, no file, and no anonymous read.
    let head = alice
        .head_object()
        .bucket("drop")
        .key("upload.bin")
        .send()
        .await;
    assert!(head.is_err(), "{head:?}");
    assert!(!s.data_dir().join("objects/drop/upload.bin").exists());
    let anon = s.raw("GET", "/drop/upload.bin").anonymous().send().await;
    assert_eq!(anon.status, 403, "{}", anon.text());
    // The same URL with only its signed headers still uploads.
    let r = s
        .raw("PUT", "/drop/upload.bin")
        .presigned()
        .body(b"fine".to_vec())
        .send()
        .await;
    r.assert_success();
    assert_eq!(get_object(&alice, "drop", "upload.bin").await, b"fine");
}

#[tokio::test]
async fn every_read_header_is_refused_when_unsigned() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "private").await;
    put_object(&alice, "private", "secret.txt", b"payroll figures").await;
    create_bucket(&alice, "drop").await;
    for (name, value) in READ_HEADERS {
        for presigned in [true, false] {
            // A header-signed request signs its own x-amz-date.
            if !presigned && *name == "x-amz-date" {
                continue;
            }
            let mut raw = s.raw("PUT", "/drop/k").body(b"data".to_vec());
            if presigned {
                raw = raw.presigned();
            }
            let r = raw.unsigned_header(name, value).send().await;
            let form = if presigned { "presigned" } else { "header" };
            r.assert_error(403, "AccessDenied");
            assert_eq!(headers_not_signed(&r), *name, "{form} {name}: {}", r.text());
        }
    }
    // Content-MD5 too, when the client sent it.
    for presigned in [true, false] {
        let mut raw = s.raw("PUT", "/drop/k").body(b"data".to_vec());
        if presigned {
            raw = raw.presigned();
        }
        let r = raw
            .unsigned_header("content-md5", &md5_b64(b"data"))
            .send()
            .await;
        r.assert_error(403, "AccessDenied");
        assert_eq!(headers_not_signed(&r), "content-md5");
    }
    // A presigned request may carry x-amz-content-sha256 unsigned, as S3 allows.
    let r = s
        .raw("PUT", "/drop/k")
        .presigned()
        .body(b"data".to_vec())
        .unsigned_header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .send()
        .await;
    r.assert_success();
    // Nothing else was written.
    assert_eq!(list_keys(&alice, "drop").await, vec!["k"]);
    assert_eq!(get_object(&alice, "drop", "k").await, b"data");
}
