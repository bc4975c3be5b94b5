//! Protocol corners: `Expect: 100-continue` (refused before the body is
//! sent), `x-amz-expected-bucket-owner`, and the header checks S3 does on PUT
//! (Content-Length, Authorization).

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use cloudmux_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a request head (no body) on a raw connection and reads what the
/// server answers within two seconds.
async fn head_only(s: &TestServer, head: &str) -> String {
    let mut tcp = TcpStream::connect(s.addr()).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("write head");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some((headers, body)) = text.split_once("\r\n\r\n") {
                    let len = headers
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if !headers.starts_with("HTTP/1.1 100") && body.len() >= len {
                        break;
                    }
                }
            }
            Ok(Err(e)) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn amz_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fmt = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(now));
    // Derive yyyymmddThhmmssZ from the HTTP date without another crate.
    let parts: Vec<&str> = fmt.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])
    .unwrap()
        + 1;
    format!(
        "{}{:02}{}T{}Z",
        parts[3],
        month,
        parts[1],
        parts[4].replace(':', "")
    )
}

#[tokio::test]
async fn expect_100_continue_with_a_bad_signature_is_refused_before_the_body() {
    let s = TestServer::start();
    ok(s.client(ALICE)
        .create_bucket()
        .bucket("hundred")
        .send()
        .await);
    let date = amz_now();
    let head = format!(
        "PUT /hundred/big HTTP/1.1\r\nHost: {addr}\r\nx-amz-date: {date}\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nContent-Length: 10485760\r\n\
         Expect: 100-continue\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ak}/{day}/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}\r\n\r\n",
        addr = s.addr(),
        ak = ALICE.access_key,
        day = &date[..8],
        sig = "0".repeat(64),
    );
    let answer = head_only(&s, &head).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(
        answer.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{answer}"
    );

    // Anonymous writes to a private bucket are refused the same way.
    let head = format!(
        "PUT /hundred/anon HTTP/1.1\r\nHost: {}\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n",
        s.addr()
    );
    let answer = head_only(&s, &head).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("<Code>AccessDenied</Code>"), "{answer}");
    assert_sdk_status(
        s.client(ALICE)
            .head_object()
            .bucket("hundred")
            .key("big")
            .send()
            .await,
        404,
    );

    // A good request with the header still uploads.
    s.raw("PUT", "/hundred/ok")
        .header("expect", "100-continue")
        .body("payload")
        .send()
        .await
        .assert_success();
    assert_eq!(
        get_object(&s.client(ALICE), "hundred", "ok").await,
        b"payload"
    );
}

#[tokio::test]
async fn put_header_checks() {
    let s = TestServer::start();
    ok(s.client(ALICE)
        .create_bucket()
        .bucket("hdrs")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicReadWrite)
        .send()
        .await);
    // No Content-Length and no chunked encoding.
    let answer = head_only(
        &s,
        &format!("PUT /hdrs/k HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr()),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(
        answer.contains("<Code>MissingContentLength</Code>"),
        "{answer}"
    );
    // A Content-Length that is not a number.
    for bad in ["abc", "-1", ""] {
        let answer = head_only(
            &s,
            &format!(
                "PUT /hdrs/k HTTP/1.1\r\nHost: {}\r\nContent-Length: {bad}\r\n\r\n",
                s.addr()
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{bad:?}: {answer}");
    }
    // Odd or empty Content-Type values are stored, as S3 does.
    for ct in ["", "weird/type; x=1"] {
        s.raw("PUT", "/hdrs/ct")
            .header("content-type", ct)
            .body("x")
            .send()
            .await
            .assert_success();
    }
    // Expect values other than 100-continue do not stop an upload.
    for expect in ["200", ""] {
        s.raw("PUT", "/hdrs/expect")
            .header("expect", expect)
            .body("e")
            .send()
            .await
            .assert_success();
    }
    // An empty Authorization header, and malformed ones.
    s.raw("PUT", "/hdrs/k")
        .anonymous()
        .header("authorization", "")
        .body("x")
        .send()
        .await
        .assert_error(403, "AccessDenied");
    s.raw("PUT", "/hdrs/k")
        .anonymous()
        .header("authorization", "Bearer abc")
        .body("x")
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    let r = s
        .raw("PUT", "/hdrs/k")
        .anonymous()
        .header("authorization", "AWS HAHAHA")
        .body("x")
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s
        .raw("PUT", "/hdrs/k")
        .anonymous()
        .header("x-amz-date", &amz_now())
        .header("authorization", "AWS4-HMAC-SHA256 garbage")
        .body("x")
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("AuthorizationHeaderMalformed"));
}

#[tokio::test]
async fn expected_bucket_owner() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    let alice_id = owner_id(&s, ALICE).await;
    let bob_id = owner_id(&s, BOB).await;
    ok(alice.create_bucket().bucket("owned").send().await);
    ok(alice
        .put_object()
        .bucket("owned")
        .key("k")
        .body(ByteStream::from_static(b"v"))
        .expected_bucket_owner(&alice_id)
        .send()
        .await);
    assert_sdk_err(
        alice
            .put_object()
            .bucket("owned")
            .key("k2")
            .body(ByteStream::from_static(b"v"))
            .expected_bucket_owner(&bob_id)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        alice
            .list_objects_v2()
            .bucket("owned")
            .expected_bucket_owner(&bob_id)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("owned")
            .key("copy")
            .copy_source("owned/k")
            .expected_source_bucket_owner(&bob_id)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    ok(alice
        .copy_object()
        .bucket("owned")
        .key("copy")
        .copy_source("owned/k")
        .expected_source_bucket_owner(&alice_id)
        .expected_bucket_owner(&alice_id)
        .send()
        .await);
    assert_sdk_status(
        alice.head_object().bucket("owned").key("k2").send().await,
        404,
    );
}

/// A PUT whose body comes with `Transfer-Encoding: chunked` and neither
/// `Content-Length` nor `x-amz-decoded-content-length` is 411
/// MissingContentLength, as S3 answers it (s3-tests
/// `test_object_create_bad_contentlength_none`), for PutObject and
/// UploadPart, signed or anonymous, and nothing is stored; an aws-chunked
/// body (the unsigned-payload trailer variant current SDKs send) that
/// travels chunked still uploads, since it declares its decoded length.
#[tokio::test]
async fn chunked_transfer_without_a_length_is_411() {
    let s = TestServer::start();
    let c = s.client(ALICE);
    ok(c.create_bucket()
        .bucket("tebkt")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicReadWrite)
        .send()
        .await);
    let answer = head_only(
        &s,
        &format!(
            "PUT /tebkt/anon HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            s.addr()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(
        answer.contains("<Code>MissingContentLength</Code>"),
        "{answer}"
    );
    let r = s
        .raw("PUT", "/tebkt/signed")
        .header("transfer-encoding", "chunked")
        .body("hello")
        .send()
        .await;
    r.assert_error(411, "MissingContentLength");
    for key in ["anon", "signed"] {
        assert_eq!(
            s.raw("HEAD", &format!("/tebkt/{key}")).send().await.status,
            404,
            "{key}"
        );
    }

    let up = ok(c
        .create_multipart_upload()
        .bucket("tebkt")
        .key("mpu")
        .send()
        .await);
    let id = up.upload_id().unwrap_or_default().to_owned();
    s.raw(
        "PUT",
        &format!("/tebkt/mpu?partNumber=1&uploadId={}", encode_query(&id)),
    )
    .header("transfer-encoding", "chunked")
    .body("part")
    .send()
    .await
    .assert_error(411, "MissingContentLength");
    let parts = ok(c
        .list_parts()
        .bucket("tebkt")
        .key("mpu")
        .upload_id(&id)
        .send()
        .await);
    assert!(parts.parts().is_empty(), "{parts:?}");

    let body = b"an aws-chunked body sent chunked".to_vec();
    let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
    framed.extend_from_slice(&body);
    framed.extend_from_slice(
        format!(
            "\r\n0\r\nx-amz-checksum-crc32:{}\r\n\r\n",
            Checksum::Crc32.b64(&body)
        )
        .as_bytes(),
    );
    s.raw("PUT", "/tebkt/streamed")
        .payload_hash("STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("transfer-encoding", "chunked")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &body.len().to_string())
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .body(framed)
        .send()
        .await
        .assert_success();
    assert_eq!(get_object(&c, "tebkt", "streamed").await, body);
}

/// An error answered to a request with a body, possibly before the body was
/// read, says `Connection: close` and closes, so a client never reuses a
/// connection the server is about to drop (botocore without retries failed
/// its next request that way); an error without a body keeps the connection.
#[tokio::test]
async fn an_error_to_a_request_with_a_body_closes_the_connection() {
    let s = TestServer::start();
    let c = s.client(ALICE);
    ok(c.create_bucket().bucket("closes").send().await);
    let mut tcp = TcpStream::connect(s.addr()).await.expect("connect");
    let head = format!(
        "PUT /closes/k HTTP/1.1\r\nHost: {}\r\nContent-Length: 5\r\n\r\n",
        s.addr()
    );
    tcp.write_all(head.as_bytes()).await.expect("write head");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 403"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(closed.is_ok(), "the server closed the connection: {text}");

    let answer = head_only(
        &s,
        &format!("GET /closes/missing HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr()),
    )
    .await
    .to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 403"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
}
