//! Object operations: PutObject (Content-MD5, metadata, checksums), GetObject
//! (ranges, conditionals, overrides, partNumber), HeadObject, DeleteObject(s),
//! CopyObject, concurrency and a large streaming round trip.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, Delete, MetadataDirective, ObjectIdentifier};
use cloudmux_e2e::*;
use md5::{Digest as _, Md5};

async fn server_with_bucket(bucket: &str) -> TestServer {
    let s = TestServer::start();
    create_bucket(&s.client(ALICE), bucket).await;
    s
}

// ---------------------------------------------------------------- PutObject

#[tokio::test]
async fn put_get_round_trip_and_etag() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    for (key, body) in [
        ("empty", Vec::new()),
        ("small", b"hello world".to_vec()),
        ("dir/nested/key.bin", random_bytes(300_000)),
    ] {
        let etag = put_object(&alice, "bkt", key, &body).await;
        assert_eq!(etag, etag_of(&body), "PutObject ETag of {key}");
        let out = ok(alice.get_object().bucket("bkt").key(key).send().await);
        assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()));
        assert_eq!(out.content_length(), Some(body.len() as i64));
        let got = out.body.collect().await.expect("body").into_bytes();
        assert_eq!(got.as_ref(), body.as_slice(), "GET {key}");
    }
    // Overwrite replaces.
    put_object(&alice, "bkt", "small", b"second version").await;
    assert_eq!(get_object(&alice, "bkt", "small").await, b"second version");
}

#[tokio::test]
async fn put_with_good_content_md5() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let body = random_bytes(10_000);
    let out = ok(alice
        .put_object()
        .bucket("bkt")
        .key("md5-ok")
        .content_md5(md5_b64(&body))
        .body(ByteStream::from(body.clone()))
        .send()
        .await);
    assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()));
    let r = s
        .raw("PUT", "/bkt/md5-ok-raw")
        .body(body.clone())
        .with_content_md5()
        .send()
        .await;
    r.assert_success();
    assert_eq!(r.header("etag"), Some(etag_of(&body)));
}

#[tokio::test]
async fn put_with_wrong_content_md5_is_bad_digest() {
    let s = server_with_bucket("bkt").await;
    let r = s
        .raw("PUT", "/bkt/md5-bad")
        .header("content-md5", &md5_b64(b"something else"))
        .body("the real body")
        .send()
        .await;
    r.assert_error(400, "BadDigest");
    let h = s.raw("HEAD", "/bkt/md5-bad").send().await;
    assert_eq!(h.status, 404, "nothing stored after BadDigest");
}

#[tokio::test]
async fn put_with_malformed_content_md5_is_invalid_digest() {
    let s = server_with_bucket("bkt").await;
    for bad in ["not base64 at all!", "AAAA", "aGVsbG8="] {
        let r = s
            .raw("PUT", "/bkt/md5-malformed")
            .header("content-md5", bad)
            .body("body")
            .send()
            .await;
        r.assert_error(400, "InvalidDigest");
    }
    let h = s.raw("HEAD", "/bkt/md5-malformed").send().await;
    assert_eq!(h.status, 404, "nothing stored after InvalidDigest");
}

const META_HEADERS: [(&str, &str); 6] = [
    ("content-type", "application/x-cloudmux-test"),
    ("cache-control", "max-age=3600, must-revalidate"),
    ("content-disposition", "attachment; filename=\"report.pdf\""),
    ("content-encoding", "gzip"),
    ("content-language", "de-CH"),
    ("expires", "Thu, 01 Dec 2033 16:00:00 GMT"),
];

#[tokio::test]
async fn metadata_and_standard_headers_round_trip() {
    let s = server_with_bucket("bkt").await;
    let mut req = s
        .raw("PUT", "/bkt/meta")
        .header("x-amz-meta-color", "blue")
        .header("x-amz-meta-multi-word-name", "Value With Spaces")
        .body("payload");
    for (k, v) in META_HEADERS {
        req = req.header(k, v);
    }
    req.send().await.assert_success();

    for method in ["GET", "HEAD"] {
        let r = s.raw(method, "/bkt/meta").send().await;
        assert_eq!(r.status, 200, "{method}");
        for (k, v) in META_HEADERS {
            assert_eq!(r.header(k).as_deref(), Some(v), "{method} header {k}");
        }
        assert_eq!(
            r.header("x-amz-meta-color").as_deref(),
            Some("blue"),
            "{method}"
        );
        assert_eq!(
            r.header("x-amz-meta-multi-word-name").as_deref(),
            Some("Value With Spaces"),
            "{method}"
        );
        assert_eq!(r.header("etag"), Some(etag_of(b"payload")), "{method} ETag");
        assert_eq!(r.header("content-length").as_deref(), Some("7"), "{method}");
        assert!(
            r.header("last-modified").is_some(),
            "{method} Last-Modified"
        );
        assert!(
            r.header("x-amz-request-id").is_some(),
            "{method} request id"
        );
        if method == "GET" {
            assert_eq!(r.body.as_ref(), b"payload");
        } else {
            assert!(r.body.is_empty());
        }
    }

    // The SDK sees the same.
    let alice = s.client(ALICE);
    let h = ok(alice.head_object().bucket("bkt").key("meta").send().await);
    assert_eq!(h.content_type(), Some("application/x-cloudmux-test"));
    assert_eq!(h.cache_control(), Some("max-age=3600, must-revalidate"));
    assert_eq!(
        h.content_disposition(),
        Some("attachment; filename=\"report.pdf\"")
    );
    assert_eq!(h.content_encoding(), Some("gzip"));
    assert_eq!(h.content_language(), Some("de-CH"));
    assert_eq!(h.expires_string(), Some("Thu, 01 Dec 2033 16:00:00 GMT"));
    let meta = h.metadata().expect("user metadata");
    assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
    assert_eq!(meta.len(), 2, "{meta:?}");
}

#[tokio::test]
async fn sdk_metadata_round_trip() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    ok(alice
        .put_object()
        .bucket("bkt")
        .key("sdk-meta")
        .metadata("project", "cloudmux")
        .metadata("n", "42")
        .content_type("text/plain; charset=utf-8")
        .cache_control("no-cache")
        .content_disposition("inline")
        .content_language("en")
        .body(ByteStream::from_static(b"text"))
        .send()
        .await);
    let g = ok(alice
        .get_object()
        .bucket("bkt")
        .key("sdk-meta")
        .send()
        .await);
    assert_eq!(g.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(g.cache_control(), Some("no-cache"));
    assert_eq!(g.content_disposition(), Some("inline"));
    assert_eq!(g.content_language(), Some("en"));
    let meta = g.metadata().expect("metadata");
    assert_eq!(meta.get("project").map(String::as_str), Some("cloudmux"));
    assert_eq!(meta.get("n").map(String::as_str), Some("42"));
}

#[tokio::test]
async fn request_id_on_every_response() {
    let s = server_with_bucket("bkt").await;
    type Case<'a> = (&'a str, &'a str, Option<(u16, Account)>);
    let cases: Vec<Case> = vec![
        ("PUT", "/bkt/k", None),
        ("GET", "/bkt/k", None),
        ("HEAD", "/bkt/k", None),
        ("GET", "/bkt", None),
        ("GET", "/bkt?list-type=2", None),
        ("GET", "/", None),
        ("GET", "/bkt/missing", Some((404, ALICE))),
        ("HEAD", "/bkt/missing", Some((404, ALICE))),
        ("GET", "/missing-bucket/x", Some((404, ALICE))),
        ("GET", "/bkt/k", Some((403, BOB))),
        ("DELETE", "/bkt/k", None),
    ];
    for (method, path, err) in cases {
        let who = err.map(|(_, a)| a).unwrap_or(ALICE);
        let r = s
            .raw(method, path)
            .signed_by(who)
            .body(if method == "PUT" { "x" } else { "" })
            .send()
            .await;
        if let Some((status, _)) = err {
            assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        } else {
            r.assert_success();
        }
        let id = r.header("x-amz-request-id");
        assert!(
            id.as_deref().is_some_and(|v| !v.is_empty()),
            "{method} {path} ({}) lacks x-amz-request-id",
            r.status
        );
    }
    // Anonymous error too.
    let r = s.raw("GET", "/bkt").anonymous().send().await;
    assert_eq!(r.status, 403);
    assert!(r.header("x-amz-request-id").is_some());
}

#[tokio::test]
async fn keys_with_special_characters_round_trip() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let keys = [
        "with space",
        "plus+sign",
        "unicode/äöü/日本語/🎉",
        "percent%20literal",
        "question?mark",
        "hash#tag",
        "amp&semi;eq=",
        "quote\"apos'",
        "tilde~star*paren()",
        "trailing/slash/",
        "back\\slash",
        "<angle>",
    ];
    for (i, key) in keys.iter().enumerate() {
        let body = format!("body {i}");
        put_object(&alice, "bkt", key, body.as_bytes()).await;
        assert_eq!(
            get_object(&alice, "bkt", key).await,
            body.as_bytes(),
            "{key:?}"
        );
    }
    let mut listed = list_keys(&alice, "bkt").await;
    listed.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

// ---------------------------------------------------------------- GetObject: ranges

fn hundred() -> Vec<u8> {
    (0..100u8).collect()
}

#[tokio::test]
async fn get_object_ranges() {
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "r", &hundred()).await;
    let cases = [
        ("bytes=0-9", 0usize, 9usize),
        ("bytes=-5", 95, 99),
        ("bytes=10-", 10, 99),
        ("bytes=90-200", 90, 99),
        ("bytes=99-99", 99, 99),
        ("bytes=0-0", 0, 0),
        ("bytes=-500", 0, 99),
    ];
    for (range, start, end) in cases {
        let r = s.raw("GET", "/bkt/r").header("range", range).send().await;
        assert_eq!(r.status, 206, "{range}: {}", r.text());
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/100")),
            "{range}"
        );
        assert_eq!(r.body.as_ref(), &hundred()[start..=end], "{range}");
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string()),
            "{range}"
        );
        assert_eq!(r.header("etag"), Some(etag_of(&hundred())), "{range}");
        assert_eq!(
            r.header("accept-ranges").as_deref(),
            Some("bytes"),
            "{range}"
        );
    }
    // The SDK parses the same.
    let out = ok(s
        .client(ALICE)
        .get_object()
        .bucket("bkt")
        .key("r")
        .range("bytes=10-19")
        .send()
        .await);
    assert_eq!(out.content_range(), Some("bytes 10-19/100"));
    assert_eq!(out.content_length(), Some(10));
    let got = out.body.collect().await.expect("body").into_bytes();
    assert_eq!(got.as_ref(), &hundred()[10..20]);
    // HEAD with a range.
    let r = s
        .raw("HEAD", "/bkt/r")
        .header("range", "bytes=0-9")
        .send()
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 0-9/100"));
    assert_eq!(r.header("content-length").as_deref(), Some("10"));
}

#[tokio::test]
async fn get_object_unsatisfiable_range() {
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "r", &hundred()).await;
    for range in ["bytes=100-", "bytes=200-300", "bytes=100-100"] {
        let r = s.raw("GET", "/bkt/r").header("range", range).send().await;
        r.assert_error(416, "InvalidRange");
        assert_eq!(
            r.header("content-range").as_deref(),
            Some("bytes */100"),
            "{range}: Content-Range of a 416"
        );
    }
    // An empty object cannot satisfy any byte range.
    put_object(&s.client(ALICE), "bkt", "empty", b"").await;
    let r = s
        .raw("GET", "/bkt/empty")
        .header("range", "bytes=0-0")
        .send()
        .await;
    r.assert_error(416, "InvalidRange");
}

#[tokio::test]
async fn get_object_ignores_unparseable_range() {
    // RFC 9110 and S3: a syntactically invalid Range header is ignored (200, whole body).
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "r", &hundred()).await;
    for range in ["bytes=abc", "items=0-5", "bytes=5-2"] {
        let r = s.raw("GET", "/bkt/r").header("range", range).send().await;
        assert_eq!(r.status, 200, "{range}: {}", r.text());
        assert_eq!(r.body.as_ref(), hundred().as_slice(), "{range}");
    }
}

// ---------------------------------------------------------------- GetObject: conditionals

struct Cond {
    etag: String,
    last_modified: SystemTime,
}

async fn cond_setup(s: &TestServer) -> Cond {
    put_object(&s.client(ALICE), "bkt", "c", b"conditional body").await;
    let h = s.raw("HEAD", "/bkt/c").send().await;
    Cond {
        etag: h.header("etag").expect("etag"),
        last_modified: parse_http_date(&h.header("last-modified").expect("last-modified")),
    }
}

async fn cond_get(s: &TestServer, method: &str, headers: &[(&str, String)]) -> RawResponse {
    let mut r = s.raw(method, "/bkt/c");
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.send().await
}

#[tokio::test]
async fn get_if_match() {
    let s = server_with_bucket("bkt").await;
    let c = cond_setup(&s).await;
    for method in ["GET", "HEAD"] {
        let r = cond_get(&s, method, &[("if-match", c.etag.clone())]).await;
        assert_eq!(r.status, 200, "{method} If-Match equal");
        let r = cond_get(
            &s,
            method,
            &[("if-match", "\"0123456789abcdef0123456789abcdef\"".into())],
        )
        .await;
        assert_eq!(r.status, 412, "{method} If-Match different");
        if method == "GET" {
            r.assert_error(412, "PreconditionFailed");
        }
    }
    // Unquoted etag matches too (AWS compares the value).
    let bare = c.etag.trim_matches('"').to_owned();
    let r = cond_get(&s, "GET", &[("if-match", bare)]).await;
    assert_eq!(r.status, 200, "If-Match with an unquoted ETag");
    // On a missing key the key's absence wins.
    let r = s
        .raw("GET", "/bkt/missing")
        .header("if-match", &c.etag)
        .send()
        .await;
    r.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn get_if_none_match() {
    let s = server_with_bucket("bkt").await;
    let c = cond_setup(&s).await;
    for method in ["GET", "HEAD"] {
        let r = cond_get(&s, method, &[("if-none-match", c.etag.clone())]).await;
        assert_eq!(r.status, 304, "{method} If-None-Match equal: {}", r.text());
        assert!(r.body.is_empty(), "304 has no body");
        assert_eq!(
            r.header("etag"),
            Some(c.etag.clone()),
            "304 carries the ETag"
        );
        let r = cond_get(
            &s,
            method,
            &[(
                "if-none-match",
                "\"ffffffffffffffffffffffffffffffff\"".into(),
            )],
        )
        .await;
        assert_eq!(r.status, 200, "{method} If-None-Match different");
    }
}

#[tokio::test]
async fn get_if_modified_since() {
    let s = server_with_bucket("bkt").await;
    let c = cond_setup(&s).await;
    let hour = Duration::from_secs(3600);
    for method in ["GET", "HEAD"] {
        let r = cond_get(
            &s,
            method,
            &[("if-modified-since", http_date(c.last_modified))],
        )
        .await;
        assert_eq!(r.status, 304, "{method} If-Modified-Since == Last-Modified");
        let r = cond_get(
            &s,
            method,
            &[("if-modified-since", http_date(c.last_modified + hour))],
        )
        .await;
        assert_eq!(r.status, 304, "{method} If-Modified-Since later");
        let r = cond_get(
            &s,
            method,
            &[("if-modified-since", http_date(c.last_modified - hour))],
        )
        .await;
        assert_eq!(r.status, 200, "{method} If-Modified-Since earlier");
    }
}

#[tokio::test]
async fn get_if_unmodified_since() {
    let s = server_with_bucket("bkt").await;
    let c = cond_setup(&s).await;
    let hour = Duration::from_secs(3600);
    for method in ["GET", "HEAD"] {
        let r = cond_get(
            &s,
            method,
            &[("if-unmodified-since", http_date(c.last_modified - hour))],
        )
        .await;
        assert_eq!(r.status, 412, "{method} If-Unmodified-Since earlier");
        if method == "GET" {
            r.assert_error(412, "PreconditionFailed");
        }
        let r = cond_get(
            &s,
            method,
            &[("if-unmodified-since", http_date(c.last_modified))],
        )
        .await;
        assert_eq!(
            r.status, 200,
            "{method} If-Unmodified-Since == Last-Modified"
        );
        let r = cond_get(
            &s,
            method,
            &[("if-unmodified-since", http_date(c.last_modified + hour))],
        )
        .await;
        assert_eq!(r.status, 200, "{method} If-Unmodified-Since later");
    }
}

#[tokio::test]
async fn get_conditional_precedence() {
    let s = server_with_bucket("bkt").await;
    let c = cond_setup(&s).await;
    let hour = Duration::from_secs(3600);
    // If-Match true + If-Unmodified-Since false -> 200 (AWS: If-Match wins).
    let r = cond_get(
        &s,
        "GET",
        &[
            ("if-match", c.etag.clone()),
            ("if-unmodified-since", http_date(c.last_modified - hour)),
        ],
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "If-Match true overrides If-Unmodified-Since false: {}",
        r.text()
    );
    // If-None-Match false + If-Modified-Since true -> 304.
    let r = cond_get(
        &s,
        "GET",
        &[
            ("if-none-match", c.etag.clone()),
            ("if-modified-since", http_date(c.last_modified - hour)),
        ],
    )
    .await;
    assert_eq!(
        r.status, 304,
        "If-None-Match false with If-Modified-Since true"
    );
    // If-Match false + If-None-Match true -> 412 (If-Match is evaluated first).
    let r = cond_get(
        &s,
        "GET",
        &[
            ("if-match", "\"00000000000000000000000000000000\"".into()),
            (
                "if-none-match",
                "\"11111111111111111111111111111111\"".into(),
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 412, "If-Match false");
}

// ---------------------------------------------------------------- GetObject: overrides

#[tokio::test]
async fn get_response_header_overrides() {
    let s = server_with_bucket("bkt").await;
    s.raw("PUT", "/bkt/o")
        .header("content-type", "text/plain")
        .header("cache-control", "no-cache")
        .body("override me")
        .send()
        .await
        .assert_success();
    let q = [
        ("response-content-type", "application/json"),
        (
            "response-content-disposition",
            "attachment; filename=\"x.json\"",
        ),
        ("response-cache-control", "max-age=60"),
        ("response-expires", "Wed, 21 Oct 2037 07:28:00 GMT"),
        ("response-content-language", "fr"),
        ("response-content-encoding", "identity"),
    ];
    let query: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_query(v)))
        .collect();
    let r = s
        .raw("GET", &format!("/bkt/o?{}", query.join("&")))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_ref(), b"override me");
    for (k, v) in q {
        let header = k.trim_start_matches("response-");
        assert_eq!(r.header(header).as_deref(), Some(v), "override {k}");
    }

    // Through the SDK.
    let out = ok(s
        .client(ALICE)
        .get_object()
        .bucket("bkt")
        .key("o")
        .response_content_type("image/png")
        .response_content_disposition("inline")
        .response_cache_control("private")
        .response_content_language("it")
        .send()
        .await);
    assert_eq!(out.content_type(), Some("image/png"));
    assert_eq!(out.content_disposition(), Some("inline"));
    assert_eq!(out.cache_control(), Some("private"));
    assert_eq!(out.content_language(), Some("it"));
    // Without overrides the stored values come back.
    let r = s.raw("GET", "/bkt/o").send().await;
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
}

/// `response-*` overrides on an anonymous GET are 400 InvalidRequest, as
/// the GetObject reference says, even on a public object; the same object
/// read anonymously without them, or with them by a signed or presigned
/// request, is answered.
#[tokio::test]
async fn anonymous_get_with_response_overrides_is_refused() {
    let s = server_with_bucket("bkt").await;
    ok(s.client(ALICE)
        .put_object()
        .bucket("bkt")
        .key("pub")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .content_type("text/plain")
        .body(ByteStream::from_static(b"public"))
        .send()
        .await);
    let r = s.raw("GET", "/bkt/pub").anonymous().send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    for q in [
        "response-content-type=application%2Fjson",
        "response-cache-control=no-store",
        "response-content-disposition=inline",
    ] {
        let r = s
            .raw("GET", &format!("/bkt/pub?{q}"))
            .anonymous()
            .send()
            .await;
        r.assert_error(400, "InvalidRequest");
        assert!(
            r.text().contains(
                "Request specific response headers cannot be used for anonymous GET requests."
            ),
            "{q}: {}",
            r.text()
        );
    }
    let r = s
        .raw("GET", "/bkt/pub?response-content-type=application%2Fjson")
        .presigned()
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
}

// ---------------------------------------------------------------- GetObject: partNumber, errors

#[tokio::test]
async fn part_number_on_plain_object() {
    let s = server_with_bucket("bkt").await;
    let body = random_bytes(1000);
    put_object(&s.client(ALICE), "bkt", "plain", &body).await;
    let r = s.raw("GET", "/bkt/plain?partNumber=1").send().await;
    assert!(
        r.status == 200 || r.status == 206,
        "partNumber=1 on a plain object: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(
        r.body.as_ref(),
        body.as_slice(),
        "partNumber=1 is the whole object"
    );
    if let Some(n) = r.header("x-amz-mp-parts-count") {
        assert_eq!(n, "1", "a plain object has one part at most");
    }
    if r.status == 206 {
        assert_eq!(
            r.header("content-range").as_deref(),
            Some("bytes 0-999/1000")
        );
    }
    let r = s.raw("GET", "/bkt/plain?partNumber=2").send().await;
    r.assert_error(416, "InvalidPartNumber");
}

#[tokio::test]
async fn get_missing_key_and_bucket() {
    let s = server_with_bucket("bkt").await;
    let r = s.raw("GET", "/bkt/no/such/key.txt").send().await;
    r.assert_error(404, "NoSuchKey");
    assert_eq!(
        r.xml().text_of("Key").as_deref(),
        Some("no/such/key.txt"),
        "Key in the error XML"
    );
    assert!(
        r.header("content-type").is_some_and(|c| c.contains("xml")),
        "error content-type {:?}",
        r.header("content-type")
    );
    let r = s.raw("HEAD", "/bkt/no/such/key.txt").send().await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "HEAD 404 without body");
    let r = s.raw("GET", "/nobucket/key").send().await;
    r.assert_error(404, "NoSuchBucket");
    assert_sdk_err(
        s.client(ALICE)
            .get_object()
            .bucket("bkt")
            .key("nope")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_sdk_status(
        s.client(ALICE)
            .head_object()
            .bucket("bkt")
            .key("nope")
            .send()
            .await,
        404,
    );
}

// ---------------------------------------------------------------- DeleteObject(s)

#[tokio::test]
async fn delete_object_statuses() {
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "gone", b"x").await;
    let r = s.raw("DELETE", "/bkt/gone").send().await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.raw("GET", "/bkt/gone").send().await;
    r.assert_error(404, "NoSuchKey");
    let r = s.raw("DELETE", "/bkt/never-existed").send().await;
    assert_eq!(r.status, 204, "DELETE of a missing key is 204");
    let r = s.raw("DELETE", "/nobucket/x").send().await;
    r.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn delete_objects_reports_deleted() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    for k in ["d1", "d2", "dir/d3", "keep"] {
        put_object(&alice, "bkt", k, k.as_bytes()).await;
    }
    let ids: Vec<ObjectIdentifier> = ["d1", "d2", "dir/d3", "missing"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().expect("id"))
        .collect();
    let out = ok(alice
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .set_objects(Some(ids))
                .build()
                .expect("delete"),
        )
        .send()
        .await);
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec!["d1", "d2", "dir/d3", "missing"],
        "missing keys count as deleted"
    );
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    assert_eq!(list_keys(&alice, "bkt").await, vec!["keep"]);
}

#[tokio::test]
async fn delete_objects_quiet_mode() {
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "q1", b"1").await;
    put_object(&s.client(ALICE), "bkt", "q2", b"2").await;
    let body = "<Delete><Quiet>true</Quiet><Object><Key>q1</Key></Object>\
                <Object><Key>q2</Key></Object></Delete>";
    let r = s
        .raw("POST", "/bkt?delete")
        .body(body)
        .with_content_md5()
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.name, "DeleteResult");
    assert!(
        x.all("Deleted").is_empty(),
        "quiet mode lists no Deleted: {}",
        r.text()
    );
    assert!(x.all("Error").is_empty(), "{}", r.text());
    assert!(list_keys(&s.client(ALICE), "bkt").await.is_empty());
}

#[tokio::test]
async fn delete_objects_raw_result_xml() {
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "a&b", b"1").await;
    let body =
        "<Delete><Object><Key>a&amp;b</Key></Object><Object><Key>nope</Key></Object></Delete>";
    let r = s
        .raw("POST", "/bkt?delete")
        .body(body)
        .with_content_md5()
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    let mut keys = x.texts("Deleted", "Key");
    keys.sort();
    assert_eq!(keys, vec!["a&b", "nope"]);
}

#[tokio::test]
async fn delete_objects_malformed_xml() {
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "stay", b"1").await;
    for body in [
        "<Delete><Object><Key>stay</Key></Object>",
        "this is not xml",
        "<Delete><Object><Key>stay</Key></Objekt></Delete>",
        "",
    ] {
        let r = s
            .raw("POST", "/bkt?delete")
            .body(body)
            .with_content_md5()
            .send()
            .await;
        r.assert_error(400, "MalformedXML");
    }
    assert_eq!(list_keys(&s.client(ALICE), "bkt").await, vec!["stay"]);
}

#[tokio::test]
async fn delete_objects_more_than_1000_keys() {
    let s = server_with_bucket("bkt").await;
    put_object(&s.client(ALICE), "bkt", "k0", b"1").await;
    let mut body = String::from("<Delete>");
    for i in 0..1001 {
        body.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
    }
    body.push_str("</Delete>");
    let r = s
        .raw("POST", "/bkt?delete")
        .body(body)
        .with_content_md5()
        .send()
        .await;
    r.assert_error(400, "MalformedXML");
    assert_eq!(
        list_keys(&s.client(ALICE), "bkt").await,
        vec!["k0"],
        "nothing deleted"
    );

    // Exactly 1000 is allowed.
    let mut body = String::from("<Delete>");
    for i in 0..1000 {
        body.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
    }
    body.push_str("</Delete>");
    let r = s
        .raw("POST", "/bkt?delete")
        .body(body)
        .with_content_md5()
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml().all("Deleted").len(), 1000);
    assert!(list_keys(&s.client(ALICE), "bkt").await.is_empty());
}

// ---------------------------------------------------------------- CopyObject

async fn copy_setup(s: &TestServer) -> Vec<u8> {
    let body = random_bytes(50_000);
    ok(s.client(ALICE)
        .put_object()
        .bucket("bkt")
        .key("src")
        .content_type("text/x-source")
        .metadata("origin", "source")
        .body(ByteStream::from(body.clone()))
        .send()
        .await);
    body
}

#[tokio::test]
async fn copy_object_copies_metadata_by_default() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    create_bucket(&alice, "other").await;
    let body = copy_setup(&s).await;
    let out = ok(alice
        .copy_object()
        .bucket("other")
        .key("dst")
        .copy_source("bkt/src")
        .send()
        .await);
    let res = out.copy_object_result().expect("CopyObjectResult");
    assert_eq!(
        res.e_tag(),
        Some(etag_of(&body).as_str()),
        "CopyObjectResult ETag"
    );
    assert!(
        res.last_modified().is_some(),
        "CopyObjectResult LastModified"
    );
    let g = ok(alice.get_object().bucket("other").key("dst").send().await);
    assert_eq!(g.content_type(), Some("text/x-source"));
    assert_eq!(
        g.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("source")
    );
    let got = g.body.collect().await.expect("body").into_bytes();
    assert_eq!(got.as_ref(), body.as_slice());
    // The source is untouched.
    assert_eq!(get_object(&alice, "bkt", "src").await, body);
}

#[tokio::test]
async fn copy_object_raw_result_xml() {
    let s = server_with_bucket("bkt").await;
    let body = copy_setup(&s).await;
    let r = s
        .raw("PUT", "/bkt/dst-raw")
        .header("x-amz-copy-source", "/bkt/src")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.name, "CopyObjectResult");
    assert_eq!(x.text_of("ETag"), Some(etag_of(&body)));
    let lm = x.text_of("LastModified").expect("LastModified");
    assert!(
        lm.contains('T') && lm.ends_with('Z'),
        "ISO-8601 LastModified: {lm}"
    );
}

#[tokio::test]
async fn copy_object_replace_metadata() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let body = copy_setup(&s).await;
    ok(alice
        .copy_object()
        .bucket("bkt")
        .key("replaced")
        .copy_source("bkt/src")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-new")
        .metadata("fresh", "yes")
        .send()
        .await);
    let h = ok(alice
        .head_object()
        .bucket("bkt")
        .key("replaced")
        .send()
        .await);
    assert_eq!(h.content_type(), Some("application/x-new"));
    let meta = h.metadata().expect("metadata");
    assert_eq!(meta.get("fresh").map(String::as_str), Some("yes"));
    assert!(
        meta.get("origin").is_none(),
        "REPLACE drops the old metadata: {meta:?}"
    );
    assert_eq!(get_object(&alice, "bkt", "replaced").await, body);
}

#[tokio::test]
async fn copy_object_onto_itself() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let body = copy_setup(&s).await;
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("bkt")
            .key("src")
            .copy_source("bkt/src")
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    let h = ok(alice.head_object().bucket("bkt").key("src").send().await);
    assert_eq!(
        h.content_type(),
        Some("text/x-source"),
        "unchanged after the refused copy"
    );

    ok(alice
        .copy_object()
        .bucket("bkt")
        .key("src")
        .copy_source("bkt/src")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/x-changed")
        .metadata("origin", "changed")
        .send()
        .await);
    let h = ok(alice.head_object().bucket("bkt").key("src").send().await);
    assert_eq!(h.content_type(), Some("text/x-changed"));
    assert_eq!(
        h.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("changed")
    );
    assert_eq!(get_object(&alice, "bkt", "src").await, body, "content kept");
}

#[tokio::test]
async fn copy_object_conditionals() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let body = copy_setup(&s).await;
    let etag = etag_of(&body);
    let h = s.raw("HEAD", "/bkt/src").send().await;
    let lm = parse_http_date(&h.header("last-modified").expect("last-modified"));
    let hour = Duration::from_secs(3600);
    let other = "\"0123456789abcdef0123456789abcdef\"".to_owned();

    let failing: Vec<Vec<(&str, String)>> = vec![
        vec![("x-amz-copy-source-if-match", other.clone())],
        vec![("x-amz-copy-source-if-none-match", etag.clone())],
        vec![("x-amz-copy-source-if-modified-since", http_date(lm + hour))],
        vec![(
            "x-amz-copy-source-if-unmodified-since",
            http_date(lm - hour),
        )],
        // If-None-Match false + If-Modified-Since true -> 412.
        vec![
            ("x-amz-copy-source-if-none-match", etag.clone()),
            ("x-amz-copy-source-if-modified-since", http_date(lm - hour)),
        ],
    ];
    for (i, headers) in failing.iter().enumerate() {
        let mut r = s
            .raw("PUT", &format!("/bkt/cond-fail-{i}"))
            .header("x-amz-copy-source", "/bkt/src");
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let r = r.send().await;
        r.assert_error(412, "PreconditionFailed");
        let h = s.raw("HEAD", &format!("/bkt/cond-fail-{i}")).send().await;
        assert_eq!(h.status, 404, "no copy written for {headers:?}");
    }

    let passing: Vec<Vec<(&str, String)>> = vec![
        vec![("x-amz-copy-source-if-match", etag.clone())],
        vec![("x-amz-copy-source-if-none-match", other.clone())],
        vec![("x-amz-copy-source-if-modified-since", http_date(lm - hour))],
        vec![(
            "x-amz-copy-source-if-unmodified-since",
            http_date(lm + hour),
        )],
        // If-Match true + If-Unmodified-Since false -> copies.
        vec![
            ("x-amz-copy-source-if-match", etag.clone()),
            (
                "x-amz-copy-source-if-unmodified-since",
                http_date(lm - hour),
            ),
        ],
    ];
    for (i, headers) in passing.iter().enumerate() {
        let key = format!("cond-pass-{i}");
        let mut r = s
            .raw("PUT", &format!("/bkt/{key}"))
            .header("x-amz-copy-source", "/bkt/src");
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let r = r.send().await;
        assert_eq!(r.status, 200, "{headers:?}: {}", r.text());
        assert_eq!(get_object(&alice, "bkt", &key).await, body, "{headers:?}");
    }

    // Through the SDK.
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("bkt")
            .key("sdk-cond")
            .copy_source("bkt/src")
            .copy_source_if_match(other)
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
}

#[tokio::test]
async fn copy_object_encoded_source_key() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let key = "dir with space/ünï+cødé & more.txt";
    put_object(&alice, "bkt", key, b"encoded source").await;
    let source = format!("bkt/{}", encode_key(key));
    ok(alice
        .copy_object()
        .bucket("bkt")
        .key("copied")
        .copy_source(&source)
        .send()
        .await);
    assert_eq!(get_object(&alice, "bkt", "copied").await, b"encoded source");
    // Also with a leading slash, raw.
    let r = s
        .raw("PUT", "/bkt/copied2")
        .header("x-amz-copy-source", &format!("/{source}"))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get_object(&alice, "bkt", "copied2").await,
        b"encoded source"
    );
}

#[tokio::test]
async fn copy_object_missing_source() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("bkt")
            .key("dst")
            .copy_source("bkt/absent")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("bkt")
            .key("dst")
            .copy_source("nobucket/absent")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    assert!(list_keys(&alice, "bkt").await.is_empty());
}

// ---------------------------------------------------------------- checksums

#[tokio::test]
async fn put_with_each_checksum_algorithm() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let body = random_bytes(200_000);
    for alg in Checksum::ALL {
        let key = format!("ck-{alg:?}");
        let expected = alg.b64(&body);
        let out = ok(alice
            .put_object()
            .bucket("bkt")
            .key(&key)
            .checksum_algorithm(alg.sdk())
            .body(ByteStream::from(body.clone()))
            .send()
            .await);
        let put_value = match alg {
            Checksum::Crc32 => out.checksum_crc32(),
            Checksum::Crc32c => out.checksum_crc32_c(),
            Checksum::Crc64Nvme => out.checksum_crc64_nvme(),
            Checksum::Sha1 => out.checksum_sha1(),
            Checksum::Sha256 => out.checksum_sha256(),
        };
        assert_eq!(
            put_value,
            Some(expected.as_str()),
            "PutObject returns the {alg:?} checksum"
        );

        let h = ok(alice
            .head_object()
            .bucket("bkt")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await);
        let head_value = match alg {
            Checksum::Crc32 => h.checksum_crc32(),
            Checksum::Crc32c => h.checksum_crc32_c(),
            Checksum::Crc64Nvme => h.checksum_crc64_nvme(),
            Checksum::Sha1 => h.checksum_sha1(),
            Checksum::Sha256 => h.checksum_sha256(),
        };
        assert_eq!(head_value, Some(expected.as_str()), "HeadObject {alg:?}");

        let g = ok(alice
            .get_object()
            .bucket("bkt")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await);
        let get_value = match alg {
            Checksum::Crc32 => g.checksum_crc32(),
            Checksum::Crc32c => g.checksum_crc32_c(),
            Checksum::Crc64Nvme => g.checksum_crc64_nvme(),
            Checksum::Sha1 => g.checksum_sha1(),
            Checksum::Sha256 => g.checksum_sha256(),
        }
        .map(str::to_owned);
        assert_eq!(
            get_value.as_deref(),
            Some(expected.as_str()),
            "GetObject {alg:?}"
        );
        // The SDK validates the body against the header while reading.
        let got = g.body.collect().await.expect("validated body").into_bytes();
        assert_eq!(got.as_ref(), body.as_slice());

        // Raw header on HEAD as well.
        let r = s
            .raw("HEAD", &format!("/bkt/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .send()
            .await;
        assert_eq!(
            r.header(alg.header()),
            Some(expected.clone()),
            "raw HEAD {alg:?}"
        );
    }
}

#[tokio::test]
async fn put_streaming_body_with_checksum_trailer() {
    // A file-backed body is streamed by the SDK (aws-chunked with a trailing checksum).
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("upload.bin");
    let body = random_bytes(3 * 1024 * 1024 + 17);
    std::fs::write(&path, &body).expect("write");
    for alg in [Checksum::Crc32, Checksum::Crc32c, Checksum::Sha256] {
        let key = format!("stream-{alg:?}");
        ok(alice
            .put_object()
            .bucket("bkt")
            .key(&key)
            .checksum_algorithm(alg.sdk())
            .body(ByteStream::from_path(&path).await.expect("bytestream"))
            .send()
            .await);
        let r = s
            .raw("HEAD", &format!("/bkt/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .send()
            .await;
        assert_eq!(r.header(alg.header()), Some(alg.b64(&body)), "{alg:?}");
        assert_eq!(r.header("content-length"), Some(body.len().to_string()));
        assert_eq!(r.header("etag"), Some(etag_of(&body)));
        assert_eq!(get_object(&alice, "bkt", &key).await, body);
    }
}

#[tokio::test]
async fn put_with_wrong_checksum_header() {
    let s = server_with_bucket("bkt").await;
    let body = b"checksummed body".to_vec();
    let wrong = Checksum::Crc32.b64(b"different");
    let r = s
        .raw("PUT", "/bkt/ck-wrong")
        .header("x-amz-checksum-crc32", &wrong)
        .body(body.clone())
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let code = r.code().unwrap_or_default();
    assert!(
        code == "BadDigest" || code == "XAmzContentChecksumMismatch",
        "wrong crc32 -> BadDigest, got {code:?}"
    );
    let h = s.raw("HEAD", "/bkt/ck-wrong").send().await;
    assert_eq!(h.status, 404, "nothing stored after a checksum mismatch");

    // A correct one is stored and echoed.
    let right = Checksum::Crc32.b64(&body);
    let r = s
        .raw("PUT", "/bkt/ck-right")
        .header("x-amz-checksum-crc32", &right)
        .body(body.clone())
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(right.clone()));
    let h = s
        .raw("HEAD", "/bkt/ck-right")
        .header("x-amz-checksum-mode", "ENABLED")
        .send()
        .await;
    assert_eq!(h.header("x-amz-checksum-crc32"), Some(right));

    // A value that is not even a CRC32 (wrong length) is rejected too.
    let r = s
        .raw("PUT", "/bkt/ck-malformed")
        .header("x-amz-checksum-crc32", "bm90LWEtY3JjMzItdmFsdWU=")
        .body(body)
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        matches!(
            r.code().as_deref(),
            Some("InvalidRequest" | "InvalidDigest" | "BadDigest" | "InvalidArgument")
        ),
        "malformed checksum: {}",
        r.text()
    );
    let h = s.raw("HEAD", "/bkt/ck-malformed").send().await;
    assert_eq!(h.status, 404);
}

// ---------------------------------------------------------------- concurrency, size

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_to_one_key() {
    let s = server_with_bucket("bkt").await;
    let bodies: Vec<Vec<u8>> = (0..16).map(|_| random_bytes(1024 * 1024)).collect();
    let mut set = tokio::task::JoinSet::new();
    for body in bodies.clone() {
        let client = s.client(ALICE);
        set.spawn(async move {
            ok(client
                .put_object()
                .bucket("bkt")
                .key("contended")
                .body(ByteStream::from(body))
                .send()
                .await);
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("put task");
    }
    let out = ok(s
        .client(ALICE)
        .get_object()
        .bucket("bkt")
        .key("contended")
        .send()
        .await);
    let etag = out.e_tag().expect("etag").to_owned();
    let got = out
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec();
    let idx = bodies.iter().position(|b| *b == got);
    assert!(
        idx.is_some(),
        "GET returns exactly one of the bodies, whole (len {})",
        got.len()
    );
    assert_eq!(etag, etag_of(&got), "ETag matches the returned body");
    assert_eq!(list_keys(&s.client(ALICE), "bkt").await, vec!["contended"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_and_reads_distinct_keys() {
    // 16 writers x 20 small PUTs to distinct keys, each followed by a HEAD and
    // a GET; every request must complete (no stall) and every key be listed.
    let s = server_with_bucket("bkt").await;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..16 {
        let client = s.client(ALICE);
        set.spawn(async move {
            for i in 0..20 {
                let key = format!("w{w:02}/k{i:02}");
                let body = format!("writer {w} item {i}").into_bytes();
                let put = tokio::time::timeout(
                    Duration::from_secs(30),
                    client
                        .put_object()
                        .bucket("bkt")
                        .key(&key)
                        .body(ByteStream::from(body.clone()))
                        .send(),
                )
                .await;
                let Ok(put) = put else {
                    panic!("PUT {key} stalled for 30 s")
                };
                ok(put);
                let head = tokio::time::timeout(
                    Duration::from_secs(30),
                    client.head_object().bucket("bkt").key(&key).send(),
                )
                .await;
                let Ok(head) = head else {
                    panic!("HEAD {key} stalled for 30 s")
                };
                assert_eq!(ok(head).content_length(), Some(body.len() as i64));
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("writer task");
    }
    let keys = list_keys(&s.client(ALICE), "bkt").await;
    assert_eq!(keys.len(), 16 * 20);
}

#[tokio::test]
async fn streaming_64_mib_round_trip() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    let mut expected = Md5::new();
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for _ in 0..64 {
            let chunk = random_bytes(1024 * 1024);
            expected.update(&chunk);
            f.write_all(&chunk).expect("write");
        }
        f.flush().expect("flush");
    }
    let expected = hex::encode(expected.finalize());
    let out = ok(alice
        .put_object()
        .bucket("bkt")
        .key("big")
        .body(ByteStream::from_path(&path).await.expect("bytestream"))
        .send()
        .await);
    assert_eq!(out.e_tag(), Some(format!("\"{expected}\"").as_str()));

    let g = ok(alice.get_object().bucket("bkt").key("big").send().await);
    assert_eq!(g.content_length(), Some(64 * 1024 * 1024));
    let mut body = g.body;
    let mut md5 = Md5::new();
    let mut n = 0usize;
    while let Some(chunk) = body.try_next().await.expect("read chunk") {
        n += chunk.len();
        md5.update(&chunk);
    }
    assert_eq!(n, 64 * 1024 * 1024);
    assert_eq!(
        hex::encode(md5.finalize()),
        expected,
        "md5 of the 64 MiB body"
    );
}

// ---------------------------------------------------------- GetObjectAttributes

#[tokio::test]
async fn get_object_attributes() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectAttributes as A};
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let body = random_bytes(1000);
    ok(alice
        .put_object()
        .bucket("bkt")
        .key("plain")
        .body(ByteStream::from(body.clone()))
        .send()
        .await);
    let out = ok(alice
        .get_object_attributes()
        .bucket("bkt")
        .key("plain")
        .object_attributes(A::Etag)
        .object_attributes(A::ObjectSize)
        .object_attributes(A::StorageClass)
        .object_attributes(A::ObjectParts)
        .send()
        .await);
    assert_eq!(
        out.e_tag(),
        Some(md5_hex(&body).as_str()),
        "ETag is unquoted"
    );
    assert_eq!(out.object_size(), Some(1000));
    assert_eq!(out.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    assert!(
        out.object_parts().is_none(),
        "a single-part object has no parts"
    );
    assert!(out.checksum().is_none(), "not asked for");
    assert!(out.last_modified().is_some());

    // Only what was asked for, and the checksum when the object has one.
    let out = ok(alice
        .put_object()
        .bucket("bkt")
        .key("summed")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(body.clone()))
        .send()
        .await);
    let sha = out
        .checksum_sha256()
        .expect("PUT returns the checksum")
        .to_owned();
    let out = ok(alice
        .get_object_attributes()
        .bucket("bkt")
        .key("summed")
        .object_attributes(A::Checksum)
        .send()
        .await);
    assert_eq!(
        out.checksum().and_then(|c| c.checksum_sha256()),
        Some(sha.as_str())
    );
    assert!(out.e_tag().is_none() && out.object_size().is_none());

    // A multipart object reports its part count.
    let up = ok(alice
        .create_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .send()
        .await);
    let id = up.upload_id().unwrap();
    let five = random_bytes(5 * 1024 * 1024);
    let mut done = aws_sdk_s3::types::CompletedMultipartUpload::builder();
    for n in 1..=3 {
        let p = ok(alice
            .upload_part()
            .bucket("bkt")
            .key("mp")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(if n < 3 {
                five.clone()
            } else {
                body.clone()
            }))
            .send()
            .await);
        done = done.parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    ok(alice
        .complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(id)
        .multipart_upload(done.build())
        .send()
        .await);
    let out = ok(alice
        .get_object_attributes()
        .bucket("bkt")
        .key("mp")
        .object_attributes(A::ObjectParts)
        .object_attributes(A::ObjectSize)
        .send()
        .await);
    assert_eq!(
        out.object_parts().and_then(|p| p.total_parts_count()),
        Some(3)
    );
    assert_eq!(out.object_size(), Some(2 * 5 * 1024 * 1024 + 1000));

    // Errors: a missing key, another account, an unknown attribute, none.
    assert_sdk_err(
        alice
            .get_object_attributes()
            .bucket("bkt")
            .key("missing")
            .object_attributes(A::Etag)
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        s.client(BOB)
            .get_object_attributes()
            .bucket("bkt")
            .key("plain")
            .object_attributes(A::Etag)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let r = s
        .raw("GET", "/bkt/plain?attributes")
        .header("x-amz-object-attributes", "ETag,Colour")
        .send()
        .await;
    assert_eq!(
        (r.status, error_code(&r.text()).as_deref()),
        (400, Some("InvalidArgument"))
    );
    let r = s.raw("GET", "/bkt/plain?attributes").send().await;
    assert_eq!(r.status, 400, "no x-amz-object-attributes: {}", r.text());
}

// ------------------------------------------------------- conditional deletes

#[tokio::test]
async fn conditional_delete_object_and_objects() {
    let s = server_with_bucket("bkt").await;
    let alice = s.client(ALICE);
    let etag = put_object(&alice, "bkt", "k", b"one").await;
    assert_sdk_err(
        alice
            .delete_object()
            .bucket("bkt")
            .key("k")
            .if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(
        get_object(&alice, "bkt", "k").await,
        b"one",
        "kept on mismatch"
    );
    ok(alice
        .delete_object()
        .bucket("bkt")
        .key("k")
        .if_match(etag.trim_matches('"'))
        .send()
        .await);
    assert!(list_keys(&alice, "bkt").await.is_empty());
    assert_sdk_err(
        alice
            .delete_object()
            .bucket("bkt")
            .key("k")
            .if_match("*")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    put_object(&alice, "bkt", "k", b"two").await;
    ok(alice
        .delete_object()
        .bucket("bkt")
        .key("k")
        .if_match("*")
        .send()
        .await);
    assert!(list_keys(&alice, "bkt").await.is_empty());

    // DeleteObjects: the ETag element of each object.
    let e1 = put_object(&alice, "bkt", "a", b"a").await;
    put_object(&alice, "bkt", "b", b"b").await;
    let ident = |k: &str, e: &str| ObjectIdentifier::builder().key(k).e_tag(e).build().unwrap();
    let out = ok(alice
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .objects(ident("a", &e1))
                .objects(ident("b", "\"ffffffffffffffffffffffffffffffff\""))
                .build()
                .unwrap(),
        )
        .send()
        .await);
    let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, ["a"]);
    let errors: Vec<_> = out
        .errors()
        .iter()
        .map(|e| (e.key().unwrap_or(""), e.code().unwrap_or("")))
        .collect();
    assert_eq!(errors, [("b", "PreconditionFailed")]);
    assert_eq!(list_keys(&alice, "bkt").await, ["b"]);
}

/// Data changed behind cloudmux's back in an `fs` location (edited in place
/// with the same size, truncated, or removed) is never served under the old
/// ETag: GET answers 500 InternalError saying so, and the other objects keep
/// being served.
#[tokio::test]
async fn data_changed_outside_cloudmux_is_refused_not_served() {
    use std::io::{Seek, Write};
    let s = TestServer::start();
    let c = s.client(ALICE);
    create_bucket(&c, "native").await;
    for key in ["edited", "truncated", "removed", "kept"] {
        put_object(&c, "native", key, b"0123456789abcdef").await;
    }
    let path = |k: &str| s.data_dir().join("objects/native").join(k);
    // Same size, same inode, other bytes, as an editor writing in place.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path("edited"))
        .unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(b"XXXXXXXXXXXXXXXX").unwrap();
    drop(f);
    std::fs::write(path("truncated"), b"0123").unwrap();
    std::fs::remove_file(path("removed")).unwrap();
    for key in ["edited", "truncated", "removed"] {
        let r = s
            .raw("GET", &format!("/native/{key}"))
            .signed_by(ALICE)
            .send()
            .await;
        r.assert_error(500, "InternalError");
        assert!(
            r.text().contains("changed or removed outside cloudmux"),
            "{key}: {}",
            r.text()
        );
        assert!(!r.text().contains("XXXX"), "{key}: changed bytes served");
    }
    assert!(s.log().contains("changed outside cloudmux"));
    assert_eq!(get_object(&c, "native", "kept").await, b"0123456789abcdef");
}
