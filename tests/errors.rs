//! Bad input answered with the right S3 error and nothing written; error
//! document shape; unsupported operations.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use cloudmux_e2e::*;

async fn setup() -> TestServer {
    let s = TestServer::start();
    create_bucket(&s.client(ALICE), "err").await;
    s
}

#[tokio::test]
async fn error_document_shape() {
    let s = setup().await;
    let r = s.raw("GET", "/err/missing-key").send().await;
    r.assert_error(404, "NoSuchKey");
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/xml"),
        "error Content-Type {ct:?}"
    );
    let x = r.xml();
    assert_eq!(x.name, "Error");
    assert!(
        x.text_of("Message").is_some_and(|m| !m.is_empty()),
        "Message: {}",
        r.text()
    );
    assert_eq!(
        x.text_of("RequestId"),
        r.header("x-amz-request-id"),
        "RequestId in the body equals the header"
    );
    assert_eq!(x.text_of("Key").as_deref(), Some("missing-key"));

    let r = s.raw("GET", "/nope-bucket").send().await;
    r.assert_error(404, "NoSuchBucket");
    assert_eq!(
        r.xml().text_of("BucketName").as_deref(),
        Some("nope-bucket")
    );
}

#[tokio::test]
async fn complete_multipart_malformed_xml() {
    let s = setup().await;
    let alice = s.client(ALICE);
    let out = ok(alice
        .create_multipart_upload()
        .bucket("err")
        .key("mp")
        .send()
        .await);
    let id = out.upload_id().expect("id").to_owned();
    let part = ok(alice
        .upload_part()
        .bucket("err")
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"part one"))
        .send()
        .await);
    let etag = part.e_tag().expect("etag").to_owned();
    for body in [
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>".to_owned(),
        "not xml at all".to_owned(),
        format!(
            "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        ),
        format!("<CompleteMultipartUpload><Part><ETag>{etag}</ETag></Part></Complete>"),
    ] {
        let r = s
            .raw("POST", &format!("/err/mp?uploadId={}", encode_query(&id)))
            .body(body.clone())
            .send()
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(
            matches!(r.code().as_deref(), Some("MalformedXML")),
            "{body}: {}",
            r.text()
        );
    }
    // Nothing completed; the upload and its part are intact.
    assert_sdk_status(
        alice.head_object().bucket("err").key("mp").send().await,
        404,
    );
    let parts = ok(alice
        .list_parts()
        .bucket("err")
        .key("mp")
        .upload_id(&id)
        .send()
        .await);
    assert_eq!(parts.parts().len(), 1);
    assert!(list_keys(&alice, "err").await.is_empty());
}

#[tokio::test]
async fn key_too_long() {
    let s = setup().await;
    let alice = s.client(ALICE);
    let long = "k".repeat(1025);
    assert_sdk_err(
        alice
            .put_object()
            .bucket("err")
            .key(&long)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
    // Multi-byte: 513 two-byte characters are 1026 bytes.
    let long_utf8 = "é".repeat(513);
    assert_sdk_err(
        alice
            .put_object()
            .bucket("err")
            .key(&long_utf8)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
    assert_sdk_err(
        alice
            .create_multipart_upload()
            .bucket("err")
            .key(&long)
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
    assert!(list_keys(&alice, "err").await.is_empty(), "nothing written");

    // Exactly 1024 bytes is fine.
    let max = "m".repeat(1024);
    put_object(&alice, "err", &max, b"max").await;
    let max_utf8 = "é".repeat(512);
    put_object(&alice, "err", &max_utf8, b"max utf8").await;
    assert_eq!(get_object(&alice, "err", &max).await, b"max");
    assert_eq!(get_object(&alice, "err", &max_utf8).await, b"max utf8");
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("err")
            .key(&long)
            .copy_source(format!("err/{max}"))
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
    assert_eq!(list_keys(&alice, "err").await.len(), 2);
}

fn marker_paths(root: &std::path::Path, marker: &str) -> Vec<PathBuf> {
    walk(root)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(marker))
        .collect()
}

/// Asserts that no file named after `marker` exists outside the stores.
fn assert_contained(s: &TestServer, marker: &str) {
    let data = s.data_dir();
    let allowed = [
        data.join("objects"),
        data.join("objects2"),
        data.join("meta"),
    ];
    for p in marker_paths(s.root(), marker) {
        assert!(
            allowed.iter().any(|a| p.starts_with(a)),
            "{} escaped the stores",
            p.display()
        );
    }
    // The tempdir's parent (e.g. /tmp) and the test's working directory.
    for dir in [
        s.root().parent().map(|p| p.to_path_buf()),
        std::env::current_dir().ok(),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                assert!(
                    !e.file_name().to_string_lossy().contains(marker),
                    "{} appeared outside the data dir",
                    e.path().display()
                );
            }
        }
    }
}

#[tokio::test]
async fn dot_dot_keys_stay_inside() {
    let s = setup().await;
    let alice = s.client(ALICE);
    let marker = format!("escape{}", random_suffix(10));
    let keys = [
        format!("../{marker}-1"),
        format!("../../{marker}-2"),
        format!("../../../../../../{marker}-3"),
        format!("a/../../{marker}-4"),
        format!("./{marker}-5"),
        format!("a/./{marker}-6"),
        format!("a//{marker}-7"),
        format!("/{marker}-8"),
        format!("..\\..\\{marker}-9"),
        "..".to_owned(),
        ".".to_owned(),
        format!("{marker}/.."),
    ];
    let mut stored = BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        let body = format!("body of key {i}");
        let res = alice
            .put_object()
            .bucket("err")
            .key(key)
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await;
        match res {
            Ok(_) => {
                // Accepted: an ordinary object with exactly this name.
                assert_eq!(
                    get_object(&alice, "err", key).await,
                    body.as_bytes(),
                    "GET {key:?}"
                );
                stored.insert(key.clone());
            }
            Err(e) => {
                assert_eq!(
                    e.status(),
                    400,
                    "{key:?} rejected with 400: {:?}",
                    e.body_text()
                );
            }
        }
    }
    eprintln!("dot keys accepted as ordinary objects: {stored:?}");
    let listed: BTreeSet<String> = list_keys(&alice, "err").await.into_iter().collect();
    assert_eq!(
        listed, stored,
        "exactly the accepted keys are listed, with their names"
    );
    let out = ok(alice.list_buckets().send().await);
    let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(
        names,
        vec!["err"],
        "no bucket conjured by path normalization"
    );
    assert_contained(&s, &marker);

    // Percent-encoded dot segments sent raw.
    for (i, path) in [
        format!("/err/%2E%2E%2F{marker}-r1"),
        format!("/err/..%2F..%2F{marker}-r2"),
        format!("/err/%2e%2e/%2e%2e/{marker}-r3"),
    ]
    .iter()
    .enumerate()
    {
        let r = s.raw("PUT", path).body(format!("raw {i}")).send().await;
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }
    assert_contained(&s, &marker);
    // Whatever was accepted is listed inside the bucket and readable.
    for key in list_keys(&alice, "err").await {
        let _ = get_object(&alice, "err", &key).await;
    }
}

#[tokio::test]
async fn nul_in_key() {
    let s = setup().await;
    let marker = random_suffix(8);
    let key = format!("nul\0key-{marker}");
    let r = s
        .raw("PUT", &format!("/err/nul%00key-{marker}"))
        .body("nul body")
        .send()
        .await;
    if r.status == 200 {
        let g = s
            .raw("GET", &format!("/err/nul%00key-{marker}"))
            .send()
            .await;
        assert_eq!(g.status, 200);
        assert_eq!(g.body.as_ref(), b"nul body");
        let l = s
            .raw("GET", "/err?list-type=2&encoding-type=url")
            .send()
            .await;
        let keys: Vec<String> = l
            .xml()
            .texts("Contents", "Key")
            .iter()
            .map(|k| url_decode_plus(k))
            .collect();
        assert_eq!(keys, vec![key]);
    } else {
        assert_eq!(
            r.status,
            400,
            "NUL in a key: accepted or 400; got {}",
            r.text()
        );
        assert!(r.code().is_some(), "an S3 error document: {}", r.text());
        assert!(
            list_keys(&s.client(ALICE), "err").await.is_empty(),
            "nothing written"
        );
    }
    assert_contained(&s, &marker);
}

#[tokio::test]
async fn request_headers_too_large() {
    let s = setup().await;
    let r = s
        .raw("PUT", "/err/big-headers")
        .header("x-padding", &"p".repeat(9 * 1024))
        .body("x")
        .send()
        .await;
    assert_eq!(r.status, 400, "9 KiB of headers: {} {}", r.status, r.text());
    assert_eq!(
        r.code().as_deref(),
        Some("RequestHeaderSectionTooLarge"),
        "{}",
        r.text()
    );
    // Many small headers adding up past 8 KiB.
    let mut req = s.raw("PUT", "/err/many-headers").body("x");
    for i in 0..40 {
        req = req.header(&format!("x-pad-{i}"), &"q".repeat(250));
    }
    let r = req.send().await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        list_keys(&s.client(ALICE), "err").await.is_empty(),
        "nothing written"
    );

    // 6 KiB is within the limit.
    let r = s
        .raw("PUT", "/err/ok-headers")
        .header("x-padding", &"p".repeat(6 * 1024))
        .body("x")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn user_metadata_too_large() {
    let s = setup().await;
    let r = s
        .raw("PUT", "/err/meta-big")
        .header("x-amz-meta-big", &"m".repeat(2100))
        .body("x")
        .send()
        .await;
    r.assert_error(400, "MetadataTooLarge");
    assert!(list_keys(&s.client(ALICE), "err").await.is_empty());
}

#[tokio::test]
async fn content_sha256_mismatch() {
    let s = setup().await;
    let wrong = hex::encode([7u8; 32]);
    let r = s
        .raw("PUT", "/err/sha-mismatch")
        .payload_hash(&wrong)
        .body("the actual body")
        .send()
        .await;
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    assert!(
        list_keys(&s.client(ALICE), "err").await.is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn bad_content_md5_writes_nothing() {
    let s = setup().await;
    put_object(&s.client(ALICE), "err", "existing", b"original").await;
    // A failed overwrite leaves the old object in place.
    let r = s
        .raw("PUT", "/err/existing")
        .header("content-md5", &md5_b64(b"not the body"))
        .body("replacement")
        .send()
        .await;
    r.assert_error(400, "BadDigest");
    assert_eq!(
        get_object(&s.client(ALICE), "err", "existing").await,
        b"original"
    );
    assert_eq!(list_keys(&s.client(ALICE), "err").await, vec!["existing"]);
}

#[tokio::test]
async fn rejected_signatures_write_nothing() {
    let s = setup().await;
    let bad = Account {
        secret_key: "wrong-secret",
        ..ALICE
    };
    let r = s
        .raw("PUT", "/err/forged")
        .signed_by(bad)
        .body("x")
        .send()
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    let unknown = Account {
        access_key: "AKIAUNKNOWN000000000",
        ..ALICE
    };
    let r = s
        .raw("PUT", "/err/forged")
        .signed_by(unknown)
        .body("x")
        .send()
        .await;
    r.assert_error(403, "InvalidAccessKeyId");
    let r = s.raw("DELETE", "/e").signed_by(bad).send().await;
    r.assert_error(403, "SignatureDoesNotMatch");
    ok(s.client(ALICE).head_bucket().bucket("err").send().await);
    assert!(list_keys(&s.client(ALICE), "err").await.is_empty());
}

/// For GET: 501 NotImplemented or AWS's documented "not configured" 404.
async fn assert_unsupported_get(s: &TestServer, path: &str, not_configured: &str) {
    let r = s.raw("GET", path).send().await;
    let code = r.code().unwrap_or_default();
    assert!(
        (r.status == 501 && code == "NotImplemented")
            || (r.status == 404 && code == not_configured),
        "GET {path}: want 501 NotImplemented or 404 {not_configured}, got {} {}",
        r.status,
        r.text()
    );
    assert!(r.header("x-amz-request-id").is_some());
}

#[tokio::test]
async fn unsupported_bucket_subresources() {
    let s = setup().await;
    put_object(&s.client(ALICE), "err", "obj", b"object body").await;
    let cases = [
        (
            "lifecycle",
            "NoSuchLifecycleConfiguration",
            "<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter>\
             <Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
        ),
        (
            "replication",
            "ReplicationConfigurationNotFoundError",
            "<ReplicationConfiguration><Role>arn:aws:iam::1:role/r</Role><Rule><Status>Enabled</Status>\
             <Destination><Bucket>arn:aws:s3:::dst</Bucket></Destination></Rule></ReplicationConfiguration>",
        ),
        (
            "website",
            "NoSuchWebsiteConfiguration",
            "<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>",
        ),
    ];
    for (sub, not_configured, body) in cases {
        let path = format!("/err?{sub}");
        assert_unsupported_get(&s, &path, not_configured).await;
        let r = s
            .raw("PUT", &path)
            .body(body)
            .with_content_md5()
            .send()
            .await;
        if r.status == 200 {
            // Only acceptable if the configuration really took effect.
            let g = s.raw("GET", &path).send().await;
            assert_eq!(
                g.status,
                200,
                "PUT ?{sub} said 200 but GET says {} {}",
                g.status,
                g.text()
            );
        } else {
            r.assert_error(501, "NotImplemented");
            assert_unsupported_get(&s, &path, not_configured).await;
        }
    }
    // None of that touched the bucket or its objects.
    assert_eq!(list_keys(&s.client(ALICE), "err").await, vec!["obj"]);
    assert_eq!(
        get_object(&s.client(ALICE), "err", "obj").await,
        b"object body"
    );
    let out = ok(s.client(ALICE).list_buckets().send().await);
    assert_eq!(out.buckets().len(), 1);
}

#[tokio::test]
async fn unsupported_object_subresources_are_not_misrouted() {
    let s = setup().await;
    put_object(&s.client(ALICE), "err", "obj", b"object body").await;
    // PUT ?tagging must never be taken for a PutObject that overwrites the data.
    let tagging = "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>";
    let r = s
        .raw("PUT", "/err/obj?tagging")
        .body(tagging)
        .with_content_md5()
        .send()
        .await;
    assert!(
        r.status == 200 || (r.status == 501 && r.code().as_deref() == Some("NotImplemented")),
        "PUT ?tagging: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(
        get_object(&s.client(ALICE), "err", "obj").await,
        b"object body"
    );

    // GET ?retention / ?legal-hold (no object lock here) must not return the object data.
    for sub in ["retention", "legal-hold"] {
        let r = s.raw("GET", &format!("/err/obj?{sub}")).send().await;
        assert_ne!(r.status, 200, "GET ?{sub}: {}", r.text());
        assert!((400..=501).contains(&r.status), "GET ?{sub}: {}", r.status);
        assert_ne!(r.body.as_ref(), b"object body");
        assert!(
            r.code().is_some(),
            "GET ?{sub}: S3 error document: {}",
            r.text()
        );
    }
    // POST ?restore must not be taken for anything that changes the object.
    let r = s
        .raw("POST", "/err/obj?restore")
        .body("<RestoreRequest><Days>1</Days></RestoreRequest>")
        .with_content_md5()
        .send()
        .await;
    assert!(
        !(200..300).contains(&r.status),
        "POST ?restore: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(
        get_object(&s.client(ALICE), "err", "obj").await,
        b"object body"
    );
    assert_eq!(list_keys(&s.client(ALICE), "err").await, vec!["obj"]);
}

#[tokio::test]
async fn unset_bucket_configurations_answer_not_found() {
    let s = setup().await;
    for (sub, code) in [
        (
            "encryption",
            "ServerSideEncryptionConfigurationNotFoundError",
        ),
        ("ownershipControls", "OwnershipControlsNotFoundError"),
    ] {
        let r = s.raw("GET", &format!("/err?{sub}")).send().await;
        r.assert_error(404, code);
        let r = s.raw("GET", &format!("/missing-bucket?{sub}")).send().await;
        r.assert_error(404, "NoSuchBucket");
    }
}

#[tokio::test]
async fn newer_subresources_are_refused_not_misrouted() {
    let s = setup().await;
    put_object(&s.client(ALICE), "err", "obj", b"object body").await;
    // Each would otherwise be a PutObject, a listing, a GetObject or a
    // CreateBucket of its method.
    let cases = [
        ("PUT", "/err/obj?annotation&annotationName=a"),
        ("GET", "/err/obj?annotation&annotationName=a"),
        ("GET", "/err/obj?annotation"),
        ("DELETE", "/err/obj?annotation&annotationName=a"),
        ("GET", "/err?abac"),
        ("PUT", "/err?abac"),
        ("POST", "/err?metadataConfiguration"),
        ("GET", "/err?metadataConfiguration"),
        ("PUT", "/err?metadataInventoryTable"),
        ("PUT", "/err?metadataJournalTable"),
        ("PUT", "/err?metadataAnnotationTable"),
        ("PUT", "/err/obj?encryption"),
    ];
    for (method, path) in cases {
        let r = s
            .raw(method, path)
            .body("<x/>")
            .with_content_md5()
            .send()
            .await;
        assert_eq!(
            (r.status, r.code().as_deref()),
            (501, Some("NotImplemented")),
            "{method} {path}: {}",
            r.text()
        );
    }
    assert_eq!(list_keys(&s.client(ALICE), "err").await, vec!["obj"]);
    assert_eq!(
        get_object(&s.client(ALICE), "err", "obj").await,
        b"object body"
    );
}

/// DeleteObjects, PutBucketCors and PutBucketTagging need an integrity check
/// of their body, as S3 requires ("Missing required header for this
/// request: Content-MD5", 400 InvalidRequest): without Content-MD5 or an
/// `x-amz-checksum-*` value (a header, or a trailer of an aws-chunked body)
/// they change nothing; `x-amz-sdk-checksum-algorithm` alone is not enough;
/// a checksum header instead of MD5 is accepted and verified (a wrong one
/// is BadDigest), as current SDKs send CRC32 instead of MD5.
#[tokio::test]
async fn delete_objects_cors_and_bucket_tagging_need_an_integrity_check() {
    let s = setup().await;
    let c = s.client(ALICE);
    put_object(&c, "err", "keep", b"1").await;
    let cases = [
        (
            "POST",
            "/err?delete",
            "<Delete><Object><Key>keep</Key></Object></Delete>",
        ),
        (
            "PUT",
            "/err?cors",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
        ),
        (
            "PUT",
            "/err?tagging",
            "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>",
        ),
    ];
    for (method, path, body) in cases {
        let r = s.raw(method, path).body(body).send().await;
        r.assert_error(400, "InvalidRequest");
        assert!(
            r.text()
                .contains("Missing required header for this request: Content-MD5"),
            "{path}: {}",
            r.text()
        );
        s.raw(method, path)
            .header("x-amz-sdk-checksum-algorithm", "CRC32")
            .body(body)
            .send()
            .await
            .assert_error(400, "InvalidRequest");
        s.raw(method, path)
            .header("x-amz-checksum-crc32", &Checksum::Crc32.b64(b"other"))
            .body(body)
            .send()
            .await
            .assert_error(400, "BadDigest");
        s.raw(method, path)
            .header("content-md5", &md5_b64(b"other"))
            .body(body)
            .send()
            .await
            .assert_error(400, "BadDigest");
    }
    // Nothing changed.
    assert_eq!(s.raw("HEAD", "/err/keep").send().await.status, 200);
    s.raw("GET", "/err?cors")
        .send()
        .await
        .assert_error(404, "NoSuchCORSConfiguration");
    s.raw("GET", "/err?tagging")
        .send()
        .await
        .assert_error(404, "NoSuchTagSet");

    // A checksum header instead of Content-MD5.
    for (method, path, body) in cases {
        let r = s
            .raw(method, path)
            .header(
                "x-amz-checksum-crc32",
                &Checksum::Crc32.b64(body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        r.assert_success();
    }
    assert_eq!(s.raw("HEAD", "/err/keep").send().await.status, 404);
    assert_eq!(s.raw("GET", "/err?cors").send().await.status, 200);
    assert_eq!(s.raw("GET", "/err?tagging").send().await.status, 200);

    // A checksum trailer of an aws-chunked body (the unsigned-payload
    // variant current SDKs stream).
    put_object(&c, "err", "keep", b"1").await;
    let (_, path, body) = cases[0];
    let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
    framed.extend_from_slice(body.as_bytes());
    framed.extend_from_slice(
        format!(
            "\r\n0\r\nx-amz-checksum-crc32:{}\r\n\r\n",
            Checksum::Crc32.b64(body.as_bytes())
        )
        .as_bytes(),
    );
    s.raw("POST", path)
        .payload_hash("STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &body.len().to_string())
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .body(framed)
        .send()
        .await
        .assert_success();
    assert_eq!(s.raw("HEAD", "/err/keep").send().await.status, 404);
}

/// The details S3 puts in its error documents: `<Condition>` on 412
/// PreconditionFailed (GET, conditional writes, DELETE, a copy's source),
/// and `<ArgumentName>`/`<ArgumentValue>` on 400 InvalidArgument for a bad
/// integer parameter, encoding type or list type.
#[tokio::test]
async fn error_details_name_the_condition_or_argument() {
    let s = setup().await;
    let c = s.client(ALICE);
    put_object(&c, "err", "obj", b"body").await;
    let other = "\"0123456789abcdef0123456789abcdef\"";
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let cases: Vec<(Raw, &str)> = vec![
        (
            s.raw("GET", "/err/obj").header("if-match", other),
            "If-Match",
        ),
        (
            s.raw("GET", "/err/obj").header("if-unmodified-since", past),
            "If-Unmodified-Since",
        ),
        (
            s.raw("PUT", "/err/obj")
                .header("if-none-match", "*")
                .body("new"),
            "If-None-Match",
        ),
        (
            s.raw("PUT", "/err/obj")
                .header("if-match", other)
                .body("new"),
            "If-Match",
        ),
        (
            s.raw("DELETE", "/err/obj").header("if-match", other),
            "If-Match",
        ),
        (
            s.raw("PUT", "/err/copy")
                .header("x-amz-copy-source", "err/obj")
                .header("x-amz-copy-source-if-match", other),
            "x-amz-copy-source-If-Match",
        ),
        (
            s.raw("PUT", "/err/copy")
                .header("x-amz-copy-source", "err/obj")
                .header("x-amz-copy-source-if-unmodified-since", past),
            "x-amz-copy-source-If-Unmodified-Since",
        ),
    ];
    for (req, condition) in cases {
        let r = req.send().await;
        r.assert_error(412, "PreconditionFailed");
        assert_eq!(
            r.xml().text_of("Condition").as_deref(),
            Some(condition),
            "{}",
            r.text()
        );
    }
    assert_eq!(get_object(&c, "err", "obj").await, b"body");

    let up = ok(c
        .create_multipart_upload()
        .bucket("err")
        .key("mpu")
        .send()
        .await);
    let parts = format!(
        "/err/mpu?uploadId={}&max-parts=-1",
        encode_query(up.upload_id().unwrap_or_default())
    );
    for (path, name, value) in [
        ("/err?max-keys=abc", "max-keys", "abc"),
        ("/err?list-type=2&max-keys=-1", "max-keys", "-1"),
        ("/err?uploads&max-uploads=abc", "max-uploads", "abc"),
        (parts.as_str(), "max-parts", "-1"),
        ("/err?encoding-type=foo", "encoding-type", "foo"),
        ("/err?list-type=3", "list-type", "3"),
        ("/?max-buckets=0", "max-buckets", "0"),
    ] {
        let r = s.raw("GET", path).send().await;
        r.assert_error(400, "InvalidArgument");
        let x = r.xml();
        assert_eq!(x.text_of("ArgumentName").as_deref(), Some(name), "{path}");
        assert_eq!(x.text_of("ArgumentValue").as_deref(), Some(value), "{path}");
    }
}

/// cloudmux has no version ids yet, so every `versionId` but `null` is not a
/// valid version id: 400 InvalidArgument "Invalid version id specified" (an
/// empty one: "Version id cannot be the empty string"), as S3 answers it,
/// on GET, HEAD (no body), DELETE (nothing deleted), CopyObject's source and
/// PutObjectTagging; `versionId=null` names the object.
#[tokio::test]
async fn version_ids_other_than_null_are_invalid_arguments() {
    let s = setup().await;
    let c = s.client(ALICE);
    put_object(&c, "err", "obj", b"body").await;
    for method in ["GET", "DELETE"] {
        let r = s.raw(method, "/err/obj?versionId=abc").send().await;
        r.assert_error(400, "InvalidArgument");
        let x = r.xml();
        assert_eq!(
            x.text_of("Message").as_deref(),
            Some("Invalid version id specified")
        );
        assert_eq!(x.text_of("ArgumentName").as_deref(), Some("versionId"));
        assert_eq!(x.text_of("ArgumentValue").as_deref(), Some("abc"));
    }
    let r = s.raw("GET", "/err/obj?versionId=").send().await;
    r.assert_error(400, "InvalidArgument");
    assert_eq!(
        r.xml().text_of("Message").as_deref(),
        Some("Version id cannot be the empty string")
    );
    let r = s.raw("HEAD", "/err/obj?versionId=abc").send().await;
    assert_eq!(r.status, 400);
    assert!(r.body.is_empty());
    s.raw("PUT", "/err/obj?tagging&versionId=abc")
        .body("<Tagging><TagSet></TagSet></Tagging>")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    let r = s
        .raw("PUT", "/err/copy")
        .header("x-amz-copy-source", "err/obj?versionId=abc")
        .send()
        .await;
    r.assert_error(400, "InvalidArgument");
    assert_eq!(
        r.xml().text_of("Message").as_deref(),
        Some("Invalid version id specified")
    );
    assert_eq!(s.raw("HEAD", "/err/copy").send().await.status, 404);

    // `null` is the object.
    let r = s.raw("GET", "/err/obj?versionId=null").send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_ref(), b"body");
    s.raw("PUT", "/err/copy")
        .header("x-amz-copy-source", "err/obj?versionId=null")
        .send()
        .await
        .assert_success();
    assert_eq!(
        s.raw("DELETE", "/err/obj?versionId=null")
            .send()
            .await
            .status,
        204
    );
    assert_eq!(s.raw("HEAD", "/err/obj").send().await.status, 404);
}
