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
