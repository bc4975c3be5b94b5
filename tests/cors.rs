//! CORS: PutBucketCors / GetBucketCors / DeleteBucketCors, the unauthenticated
//! preflight and its errors, and the CORS headers on actual requests (signed,
//! presigned, anonymous, and error responses).

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use bytes::Bytes;
use cloudmux_e2e::*;
use http_body_util::Full;

fn rules() -> CorsConfiguration {
    CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .id("app")
                .allowed_origins("http://*.example.com")
                .allowed_origins("https://app.test")
                .allowed_methods("GET")
                .allowed_methods("PUT")
                .allowed_headers("x-amz-*")
                .allowed_headers("Content-Type")
                .expose_headers("ETag")
                .expose_headers("x-amz-request-id")
                .max_age_seconds(600)
                .build()
                .expect("rule"),
        )
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("*")
                .allowed_methods("HEAD")
                .build()
                .expect("rule"),
        )
        .build()
        .expect("configuration")
}

async fn setup() -> TestServer {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    ok(alice.create_bucket().bucket("web").send().await);
    put_object(&alice, "web", "page.html", b"<html/>").await;
    ok(alice
        .put_bucket_cors()
        .bucket("web")
        .cors_configuration(rules())
        .send()
        .await);
    s
}

#[tokio::test]
async fn cors_configuration_roundtrip_and_errors() {
    let s = TestServer::start();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    ok(alice.create_bucket().bucket("web").send().await);
    assert_sdk_err(
        alice.get_bucket_cors().bucket("web").send().await,
        404,
        "NoSuchCORSConfiguration",
    );
    ok(alice
        .put_bucket_cors()
        .bucket("web")
        .cors_configuration(rules())
        .send()
        .await);
    let got = ok(alice.get_bucket_cors().bucket("web").send().await);
    let r = got.cors_rules();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].id(), Some("app"));
    assert_eq!(
        r[0].allowed_origins(),
        ["http://*.example.com", "https://app.test"]
    );
    assert_eq!(r[0].allowed_methods(), ["GET", "PUT"]);
    assert_eq!(r[0].allowed_headers(), ["x-amz-*", "Content-Type"]);
    assert_eq!(r[0].expose_headers(), ["ETag", "x-amz-request-id"]);
    assert_eq!(r[0].max_age_seconds(), Some(600));
    assert_eq!(r[1].allowed_origins(), ["*"]);
    // Only the owner manages CORS.
    assert_sdk_err(
        bob.get_bucket_cors().bucket("web").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_bucket_cors()
            .bucket("web")
            .cors_configuration(rules())
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // Malformed configurations.
    s.raw("PUT", "/web?cors")
        .body("<CORSConfiguration></CORSConfiguration>")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "MalformedXML");
    s.raw("PUT", "/web?cors")
        .body("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    s.raw("PUT", "/web?cors")
        .body("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "MalformedXML");
    s.raw("PUT", "/web?cors")
        .body("not xml")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "MalformedXML");
    assert_sdk_err(
        alice
            .put_bucket_cors()
            .bucket("nosuchbucket")
            .cors_configuration(rules())
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    // The earlier configuration survived the failed puts; delete removes it.
    assert_eq!(
        ok(alice.get_bucket_cors().bucket("web").send().await)
            .cors_rules()
            .len(),
        2
    );
    ok(alice.delete_bucket_cors().bucket("web").send().await);
    assert_sdk_err(
        alice.get_bucket_cors().bucket("web").send().await,
        404,
        "NoSuchCORSConfiguration",
    );
}

#[tokio::test]
async fn preflight_is_answered_without_authentication() {
    let s = setup().await;
    let r = s
        .raw("OPTIONS", "/web/page.html")
        .anonymous()
        .header("origin", "http://www.example.com")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "content-type, x-amz-meta-color",
        )
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("http://www.example.com")
    );
    assert_eq!(
        r.header("access-control-allow-methods").as_deref(),
        Some("GET, PUT")
    );
    assert_eq!(
        r.header("access-control-allow-headers").as_deref(),
        Some("content-type, x-amz-meta-color")
    );
    assert_eq!(
        r.header("access-control-expose-headers").as_deref(),
        Some("ETag, x-amz-request-id")
    );
    assert_eq!(r.header("access-control-max-age").as_deref(), Some("600"));
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert!(r.headers.contains_key("x-amz-request-id"));
    // A wildcard rule answers with `*`; a bogus Authorization header is ignored.
    let r = s
        .raw("OPTIONS", "/web")
        .anonymous()
        .header("authorization", "AWS4-HMAC-SHA256 nonsense")
        .header("origin", "http://anything.test")
        .header("access-control-request-method", "HEAD")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(r.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn preflight_errors() {
    let s = setup().await;
    let pre = |origin: Option<&str>, method: Option<&str>, headers: Option<&str>, path: &str| {
        let mut r = s.raw("OPTIONS", path).anonymous();
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(m) = method {
            r = r.header("access-control-request-method", m);
        }
        if let Some(h) = headers {
            r = r.header("access-control-request-headers", h);
        }
        r.send()
    };
    // No rule for this origin, method or header.
    for (origin, method, headers) in [
        ("http://example.org", "GET", None),
        ("http://www.example.com", "DELETE", None),
        ("http://www.example.com", "PUT", Some("authorization")),
        ("https://app.test.evil", "GET", None),
    ] {
        let r = pre(Some(origin), Some(method), headers, "/web/page.html").await;
        r.assert_error(403, "AccessForbidden");
        assert!(r.text().contains("CORSResponse"), "{}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    pre(None, Some("GET"), None, "/web/page.html")
        .await
        .assert_error(400, "BadRequest");
    pre(Some("http://www.example.com"), None, None, "/web/page.html")
        .await
        .assert_error(400, "BadRequest");
    // A bucket without CORS, and no bucket at all.
    ok(s.client(ALICE).create_bucket().bucket("plain").send().await);
    pre(
        Some("http://www.example.com"),
        Some("GET"),
        None,
        "/plain/x",
    )
    .await
    .assert_error(403, "AccessForbidden");
    pre(
        Some("http://www.example.com"),
        Some("GET"),
        None,
        "/missing/x",
    )
    .await
    .assert_error(403, "AccessForbidden");
}

#[tokio::test]
async fn actual_requests_carry_cors_headers() {
    let s = setup().await;
    let origin = "http://shop.example.com";
    // Signed GET.
    let r = s
        .raw("GET", "/web/page.html")
        .header("origin", origin)
        .send()
        .await;
    r.assert_success();
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(origin)
    );
    assert_eq!(
        r.header("access-control-expose-headers").as_deref(),
        Some("ETag, x-amz-request-id")
    );
    // Error responses too (404 NoSuchKey).
    let r = s
        .raw("GET", "/web/missing")
        .header("origin", origin)
        .send()
        .await;
    r.assert_error(404, "NoSuchKey");
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(origin)
    );
    // An origin or method no rule allows gets no CORS headers.
    let r = s
        .raw("GET", "/web/page.html")
        .header("origin", "http://example.org")
        .send()
        .await;
    r.assert_success();
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = s
        .raw("DELETE", "/web/other")
        .header("origin", origin)
        .send()
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A presigned GET with an Origin.
    let presigned = ok_presign(
        s.client(ALICE)
            .get_object()
            .bucket("web")
            .key("page.html")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
            .await,
    );
    let uri: http::Uri = presigned.uri().parse().unwrap();
    let req = http::Request::builder()
        .method("GET")
        .uri(uri.path_and_query().unwrap().as_str())
        .header("host", s.addr().to_string())
        .header("origin", origin)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send_http1(s.addr(), req).await;
    r.assert_success();
    assert_eq!(r.body.as_ref(), b"<html/>");
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(origin)
    );
    // HEAD matches the wildcard rule.
    let r = s
        .raw("HEAD", "/web/page.html")
        .header("origin", "http://anyone.test")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
}

fn ok_presign<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("presign: {e:?}"))
}
