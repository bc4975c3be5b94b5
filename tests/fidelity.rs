//! Header fidelity and encryption requests, end to end with aws-sdk-s3 and
//! raw signed requests: `Content-Encoding` as the client sent it minus
//! `aws-chunked` (PutObject, CreateMultipartUpload, CopyObject with
//! REPLACE), non-ASCII user metadata RFC 2047 encoded as S3 returns it, and
//! server-side encryption: SSE-C and SSE-KMS refused with 501 NotImplemented
//! everywhere, `AES256` accepted and echoed on a bucket placed on an `s3`
//! location (moto) and refused on `fs`, and the bucket encryption
//! operations on both.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    MetadataDirective, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use cloudmux_e2e::clouds::{Cloud, Target};
use cloudmux_e2e::*;

/// A server with the default `fs` location and a `cloud` location on moto,
/// and two buckets: `fsb` on fs and `cloudb` on the cloud.
async fn setup() -> (TestServer, Target) {
    let target = Target::create(Cloud::Moto).await;
    let s = TestServer::start_with(ServerOptions {
        extra_config: target.location_config(20_000),
        ..ServerOptions::default()
    });
    let c = s.client(ALICE);
    ok(c.create_bucket().bucket("fsb").send().await);
    ok(c.create_bucket()
        .bucket("cloudb")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("cloud"))
                .build(),
        )
        .send()
        .await);
    (s, target)
}

/// Puts `body` with aws-chunked framing (unsigned payload, no trailer) and
/// the given `Content-Encoding`.
async fn put_aws_chunked(s: &TestServer, path: &str, encoding: &str, body: &[u8]) -> RawResponse {
    let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
    framed.extend_from_slice(body);
    framed.extend_from_slice(b"\r\n0\r\n\r\n");
    s.raw("PUT", path)
        .payload_hash("STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("content-encoding", encoding)
        .header("x-amz-decoded-content-length", &body.len().to_string())
        .body(framed)
        .send()
        .await
}

#[tokio::test]
async fn content_encoding_comes_back_as_sent_without_aws_chunked() {
    let (s, _t) = setup().await;
    let c = s.client(ALICE);
    for (i, (sent, kept)) in [
        ("aws-chunked,gzip", Some("gzip")),
        ("gzip, aws-chunked", Some("gzip")),
        ("aws-chunked", None),
        ("gzip, aws-chunked, br", Some("gzip, br")),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/fsb/chunked{i}");
        let r = put_aws_chunked(&s, &path, sent, b"hello").await;
        assert_eq!(r.status, 200, "{sent}: {}", r.text());
        let head = s.raw("HEAD", &path).send().await;
        assert_eq!(head.header("content-encoding").as_deref(), kept, "{sent}");
        let get = s.raw("GET", &path).send().await;
        assert_eq!(get.body.as_ref(), b"hello", "{sent}");
        assert_eq!(get.header("content-encoding").as_deref(), kept, "{sent}");
    }
    // A plain PUT keeps the value byte for byte, spacing included.
    let r = s
        .raw("PUT", "/fsb/plain")
        .header("content-encoding", "gzip,  br")
        .body("x")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let head = ok(c.head_object().bucket("fsb").key("plain").send().await);
    assert_eq!(head.content_encoding(), Some("gzip,  br"));

    // CreateMultipartUpload keeps it for the completed object.
    let up = ok(c
        .create_multipart_upload()
        .bucket("fsb")
        .key("mp")
        .content_encoding("br, gzip")
        .send()
        .await);
    let id = up.upload_id().unwrap();
    let part = ok(c
        .upload_part()
        .bucket("fsb")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await);
    ok(c.complete_multipart_upload()
        .bucket("fsb")
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await);
    let head = ok(c.head_object().bucket("fsb").key("mp").send().await);
    assert_eq!(head.content_encoding(), Some("br, gzip"));

    // CopyObject with REPLACE takes the new one, raw, minus aws-chunked.
    let r = s
        .raw("PUT", "/fsb/copied")
        .header("x-amz-copy-source", "/fsb/plain")
        .header("x-amz-metadata-directive", "REPLACE")
        .header("content-encoding", "aws-chunked, deflate")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let head = ok(c.head_object().bucket("fsb").key("copied").send().await);
    assert_eq!(head.content_encoding(), Some("deflate"));
    ok(c.copy_object()
        .bucket("fsb")
        .key("copied2")
        .copy_source("fsb/plain")
        .metadata_directive(MetadataDirective::Replace)
        .content_encoding("identity")
        .send()
        .await);
    let head = ok(c.head_object().bucket("fsb").key("copied2").send().await);
    assert_eq!(head.content_encoding(), Some("identity"));
}

#[tokio::test]
async fn non_ascii_metadata_is_returned_rfc_2047_encoded() {
    let (s, _t) = setup().await;
    let c = s.client(ALICE);
    ok(c.put_object()
        .bucket("fsb")
        .key("meta")
        .metadata("city", "Zürich 東京")
        .metadata("plain", "ascii value")
        .metadata("encoded", "=?UTF-8?B?w6k=?=")
        .body(ByteStream::from_static(b"m"))
        .send()
        .await);
    // "Zürich 東京" in UTF-8, base64.
    let want = "=?UTF-8?B?WsO8cmljaCDmnbHkuqw=?=";
    let head = ok(c.head_object().bucket("fsb").key("meta").send().await);
    let m = head.metadata().unwrap();
    assert_eq!(m.get("city").map(String::as_str), Some(want));
    assert_eq!(m.get("plain").map(String::as_str), Some("ascii value"));
    assert_eq!(
        m.get("encoded").map(String::as_str),
        Some("=?UTF-8?B?w6k=?="),
        "an RFC 2047 value is kept as sent"
    );
    let get = ok(c.get_object().bucket("fsb").key("meta").send().await);
    assert_eq!(
        get.metadata().unwrap().get("city").map(String::as_str),
        Some(want)
    );
    // The raw response carries only ASCII.
    let raw = s.raw("GET", "/fsb/meta").send().await;
    assert_eq!(raw.header("x-amz-meta-city").as_deref(), Some(want));
    // A copy keeps the stored value; on a cloud location too.
    ok(c.copy_object()
        .bucket("cloudb")
        .key("meta")
        .copy_source("fsb/meta")
        .send()
        .await);
    let head = ok(c.head_object().bucket("cloudb").key("meta").send().await);
    assert_eq!(
        head.metadata().unwrap().get("city").map(String::as_str),
        Some(want)
    );
}

#[tokio::test]
async fn sse_c_and_kms_are_refused_everywhere() {
    let (s, _t) = setup().await;
    let c = s.client(ALICE);
    ok(c.put_object()
        .bucket("fsb")
        .key("src")
        .body(ByteStream::from_static(b"s"))
        .send()
        .await);
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let key_md5 = "kdtPvnk4VLLfDsBmOjJ6iA==";
    for bucket in ["fsb", "cloudb"] {
        // SSE-C through the SDK: PUT, GET, HEAD, Create, Copy.
        let r = c
            .put_object()
            .bucket(bucket)
            .key("k")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(key)
            .sse_customer_key_md5(key_md5)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
        assert_sdk_err(r, 501, "NotImplemented");
        let r = c
            .get_object()
            .bucket("fsb")
            .key("src")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(key)
            .sse_customer_key_md5(key_md5)
            .send()
            .await;
        assert_sdk_err(r, 501, "NotImplemented");
        let r = c
            .head_object()
            .bucket("fsb")
            .key("src")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(key)
            .sse_customer_key_md5(key_md5)
            .send()
            .await;
        assert_sdk_status(r, 501);
        let r = c
            .create_multipart_upload()
            .bucket(bucket)
            .key("k")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(key)
            .sse_customer_key_md5(key_md5)
            .send()
            .await;
        assert_sdk_err(r, 501, "NotImplemented");
        let r = c
            .copy_object()
            .bucket(bucket)
            .key("k")
            .copy_source("fsb/src")
            .copy_source_sse_customer_algorithm("AES256")
            .copy_source_sse_customer_key(key)
            .copy_source_sse_customer_key_md5(key_md5)
            .send()
            .await;
        assert_sdk_err(r, 501, "NotImplemented");
        // SSE-KMS, and the KMS headers alone.
        for sse in [
            ServerSideEncryption::AwsKms,
            ServerSideEncryption::AwsKmsDsse,
        ] {
            let r = c
                .put_object()
                .bucket(bucket)
                .key("k")
                .server_side_encryption(sse.clone())
                .body(ByteStream::from_static(b"x"))
                .send()
                .await;
            assert_sdk_err(r, 501, "NotImplemented");
            let r = c
                .create_multipart_upload()
                .bucket(bucket)
                .key("k")
                .server_side_encryption(sse)
                .send()
                .await;
            assert_sdk_err(r, 501, "NotImplemented");
        }
        for (h, v) in [
            ("x-amz-server-side-encryption-aws-kms-key-id", "alias/k"),
            ("x-amz-server-side-encryption-context", "e30="),
            ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
            ("x-amz-server-side-encryption-customer-key-md5", key_md5),
        ] {
            let r = s
                .raw("PUT", &format!("/{bucket}/k"))
                .header(h, v)
                .body("x")
                .send()
                .await;
            r.assert_error(501, "NotImplemented");
            assert!(r.text().contains(h), "the message names {h}: {}", r.text());
        }
        // An unknown value is InvalidArgument.
        let r = s
            .raw("PUT", &format!("/{bucket}/k"))
            .header("x-amz-server-side-encryption", "DES")
            .body("x")
            .send()
            .await;
        r.assert_error(400, "InvalidArgument");
        // UploadPart and UploadPartCopy refuse SSE-C.
        let up = ok(c
            .create_multipart_upload()
            .bucket(bucket)
            .key("k")
            .send()
            .await);
        let id = up.upload_id().unwrap();
        let r = c
            .upload_part()
            .bucket(bucket)
            .key("k")
            .upload_id(id)
            .part_number(1)
            .sse_customer_algorithm("AES256")
            .sse_customer_key(key)
            .sse_customer_key_md5(key_md5)
            .body(ByteStream::from_static(b"p"))
            .send()
            .await;
        assert_sdk_err(r, 501, "NotImplemented");
        let r = c
            .upload_part_copy()
            .bucket(bucket)
            .key("k")
            .upload_id(id)
            .part_number(1)
            .copy_source("fsb/src")
            .copy_source_sse_customer_algorithm("AES256")
            .copy_source_sse_customer_key(key)
            .copy_source_sse_customer_key_md5(key_md5)
            .send()
            .await;
        assert_sdk_err(r, 501, "NotImplemented");
        ok(c.abort_multipart_upload()
            .bucket(bucket)
            .key("k")
            .upload_id(id)
            .send()
            .await);
        // Nothing was written by any refused request.
        assert_sdk_status(c.head_object().bucket(bucket).key("k").send().await, 404);
    }
}

#[tokio::test]
async fn aes256_is_honoured_only_where_data_is_encrypted_at_rest() {
    let (s, t) = setup().await;
    let c = s.client(ALICE);
    // fs: refused, nothing written.
    let r = c
        .put_object()
        .bucket("fsb")
        .key("k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_sdk_err(r, 501, "NotImplemented");
    assert_sdk_status(c.head_object().bucket("fsb").key("k").send().await, 404);
    let r = c
        .create_multipart_upload()
        .bucket("fsb")
        .key("k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await;
    assert_sdk_err(r, 501, "NotImplemented");
    ok(c.put_object()
        .bucket("fsb")
        .key("plain")
        .body(ByteStream::from_static(b"p"))
        .send()
        .await);
    let head = ok(c.head_object().bucket("fsb").key("plain").send().await);
    assert_eq!(
        head.server_side_encryption(),
        None,
        "fs data is not encrypted"
    );
    let r = c
        .copy_object()
        .bucket("fsb")
        .key("k")
        .copy_source("fsb/plain")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await;
    assert_sdk_err(r, 501, "NotImplemented");

    // The cloud: accepted and echoed on every write and read.
    let put = ok(c
        .put_object()
        .bucket("cloudb")
        .key("k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await);
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(t.read("cloudb/k").await, b"secret");
    let head = ok(c.head_object().bucket("cloudb").key("k").send().await);
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let get = ok(c.get_object().bucket("cloudb").key("k").send().await);
    assert_eq!(
        get.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let copy = ok(c
        .copy_object()
        .bucket("cloudb")
        .key("k")
        .copy_source("cloudb/k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await);
    assert_eq!(
        copy.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256),
        "a copy onto itself that restates the encryption is legal"
    );
    let up = ok(c
        .create_multipart_upload()
        .bucket("cloudb")
        .key("mp")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await);
    assert_eq!(
        up.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    ok(c.abort_multipart_upload()
        .bucket("cloudb")
        .key("mp")
        .upload_id(up.upload_id().unwrap())
        .send()
        .await);
    // A copy from the cloud onto fs asking for AES256 is refused.
    let r = c
        .copy_object()
        .bucket("fsb")
        .key("k")
        .copy_source("cloudb/k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await;
    assert_sdk_err(r, 501, "NotImplemented");
}

fn sse_config(alg: ServerSideEncryption) -> ServerSideEncryptionConfiguration {
    ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(alg)
                        .build()
                        .expect("default"),
                )
                .build(),
        )
        .build()
        .expect("configuration")
}

#[tokio::test]
async fn bucket_encryption_follows_the_location() {
    let (s, _t) = setup().await;
    let c = s.client(ALICE);
    // fs: no configuration, and AES256 cannot be configured.
    assert_sdk_err(
        c.get_bucket_encryption().bucket("fsb").send().await,
        404,
        "ServerSideEncryptionConfigurationNotFoundError",
    );
    assert_sdk_err(
        c.put_bucket_encryption()
            .bucket("fsb")
            .server_side_encryption_configuration(sse_config(ServerSideEncryption::Aes256))
            .send()
            .await,
        501,
        "NotImplemented",
    );
    ok(c.delete_bucket_encryption().bucket("fsb").send().await);
    // The cloud reports AES256, accepts it, refuses KMS, keeps AES256 after
    // a delete.
    let enc = ok(c.get_bucket_encryption().bucket("cloudb").send().await);
    let alg = |e: &aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput| {
        e.server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().clone())
    };
    assert_eq!(alg(&enc), Some(ServerSideEncryption::Aes256));
    ok(c.put_bucket_encryption()
        .bucket("cloudb")
        .server_side_encryption_configuration(sse_config(ServerSideEncryption::Aes256))
        .send()
        .await);
    assert_sdk_err(
        c.put_bucket_encryption()
            .bucket("cloudb")
            .server_side_encryption_configuration(sse_config(ServerSideEncryption::AwsKms))
            .send()
            .await,
        501,
        "NotImplemented",
    );
    ok(c.delete_bucket_encryption().bucket("cloudb").send().await);
    let enc = ok(c.get_bucket_encryption().bucket("cloudb").send().await);
    assert_eq!(alg(&enc), Some(ServerSideEncryption::Aes256));
    // Malformed documents, and an unknown algorithm.
    s.raw("PUT", "/cloudb?encryption")
        .body("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>DES</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>")
        .send()
        .await
        .assert_error(400, "MalformedXML");
    s.raw("PUT", "/cloudb?encryption")
        .body("not xml")
        .send()
        .await
        .assert_error(400, "MalformedXML");
    // Owner only.
    let bob = s.client(BOB);
    assert_sdk_err(
        bob.get_bucket_encryption().bucket("cloudb").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_bucket_encryption()
            .bucket("cloudb")
            .server_side_encryption_configuration(sse_config(ServerSideEncryption::Aes256))
            .send()
            .await,
        403,
        "AccessDenied",
    );
}
