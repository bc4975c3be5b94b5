//! SigV2 tests: the examples of the AWS documentation ("Signing and
//! authenticating REST requests") and the error cases.

use http::Method;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::test_support::*;
use super::{AuthError, Authenticated, Payload};

fn johnsmith(method: Method, path: &str, query: Option<&str>) -> Req {
    let mut req = Req::new(method, path, query).header("host", "johnsmith.s3.amazonaws.com");
    req.bucket = Some("johnsmith".into());
    req
}

fn assert_signed(req: &Req, now: OffsetDateTime) {
    match req.auth("us-east-1", now) {
        Ok(Authenticated::Signed {
            access_key,
            payload: Payload::Unsigned,
        }) => assert_eq!(access_key, AKID),
        other => panic!("expected a signed request, got {other:?}"),
    }
}

#[test]
fn doc_object_get() {
    let req = johnsmith(Method::GET, "/photos/puppy.jpg", None)
        .header("date", "Tue, 27 Mar 2007 19:36:42 +0000")
        .header(
            "authorization",
            &format!("AWS {AKID}:bWq2s1WEIj+Ydj0vQ697zp+IXMU="),
        );
    assert_signed(&req, datetime!(2007-03-27 19:36:42 UTC));
}

#[test]
fn doc_object_put() {
    let req = johnsmith(Method::PUT, "/photos/puppy.jpg", None)
        .header("content-type", "image/jpeg")
        .header("content-length", "94328")
        .header("date", "Tue, 27 Mar 2007 21:15:45 +0000")
        .header(
            "authorization",
            &format!("AWS {AKID}:MyyxeRY7whkBe+bq8fHCL/2kKUg="),
        );
    assert_signed(&req, datetime!(2007-03-27 21:15:45 UTC));
}

#[test]
fn doc_list() {
    let req = johnsmith(
        Method::GET,
        "/",
        Some("prefix=photos&max-keys=50&marker=puppy"),
    )
    .header("user-agent", "Mozilla/5.0")
    .header("date", "Tue, 27 Mar 2007 19:42:41 +0000")
    .header(
        "authorization",
        &format!("AWS {AKID}:htDYFYduRNen8P9ZfE/s9SuKy0U="),
    );
    assert_signed(&req, datetime!(2007-03-27 19:42:41 UTC));
}

#[test]
fn doc_fetch_acl() {
    let req = johnsmith(Method::GET, "/", Some("acl"))
        .header("date", "Tue, 27 Mar 2007 19:44:46 +0000")
        .header(
            "authorization",
            &format!("AWS {AKID}:c2WLPFtWHVgbEmeEG93a4cG37dM="),
        );
    assert_signed(&req, datetime!(2007-03-27 19:44:46 UTC));
}

#[test]
fn doc_delete_with_amz_date() {
    let req = Req::new(Method::DELETE, "/johnsmith/photos/puppy.jpg", None)
        .header("host", "s3.amazonaws.com")
        .header("user-agent", "dotnet")
        .header("date", "Tue, 27 Mar 2007 21:20:27 +0000")
        .header("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000")
        .header(
            "authorization",
            &format!("AWS {AKID}:lx3byBScXR6KzyMaifNkardMwNk="),
        );
    assert_signed(&req, datetime!(2007-03-27 21:20:26 UTC));
}

#[test]
fn mismatch_reports_string_to_sign() {
    let req = johnsmith(
        Method::GET,
        "/photos/puppy.jpg",
        Some("versionId=7&foo=bar"),
    )
    .header("date", "Tue, 27 Mar 2007 19:36:42 +0000")
    .header("x-amz-meta-b", "2")
    .header("x-amz-meta-a", " 1 ")
    .header(
        "authorization",
        &format!("AWS {AKID}:bWq2s1WEIj+Ydj0vQ697zp+IXMU="),
    );
    let Err(AuthError::SignatureDoesNotMatch(mismatch)) =
        req.auth("us-east-1", datetime!(2007-03-27 19:36:42 UTC))
    else {
        panic!("expected SignatureDoesNotMatch");
    };
    assert_eq!(
        mismatch.string_to_sign,
        "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\nx-amz-meta-a:1\nx-amz-meta-b:2\n/johnsmith/photos/puppy.jpg?versionId=7"
    );
    assert_eq!(mismatch.canonical_request, None);
}

#[test]
fn skew_and_missing_date() {
    let req = johnsmith(Method::GET, "/photos/puppy.jpg", None)
        .header("date", "Tue, 27 Mar 2007 19:36:42 +0000")
        .header(
            "authorization",
            &format!("AWS {AKID}:bWq2s1WEIj+Ydj0vQ697zp+IXMU="),
        );
    let now = datetime!(2007-03-27 19:36:42 UTC);
    assert!(matches!(
        req.auth("us-east-1", now + Duration::minutes(16)),
        Err(AuthError::RequestTimeTooSkewed { .. })
    ));
    let mut undated = req;
    undated.headers.remove("date");
    assert!(matches!(
        undated.auth("us-east-1", now),
        Err(AuthError::AccessDenied(_))
    ));
}

#[test]
fn malformed_and_unknown_key() {
    let req = Req::new(Method::GET, "/", None).header("authorization", "AWS nocolon");
    assert!(matches!(
        req.auth("us-east-1", OffsetDateTime::UNIX_EPOCH),
        Err(AuthError::InvalidArgument(_))
    ));
    let req = Req::new(Method::GET, "/", None)
        .header("date", "Tue, 27 Mar 2007 19:36:42 +0000")
        .header("authorization", "AWS NOBODY:abc=");
    assert_eq!(
        req.auth("us-east-1", datetime!(2007-03-27 19:36:42 UTC))
            .unwrap_err(),
        AuthError::InvalidAccessKeyId {
            access_key: "NOBODY".into()
        }
    );
}

/// A SigV2 presigned URL: `GET\n\n\n<expires>\n/bucket/key`.
fn presigned_v2(expires: i64, signature: &str) -> Req {
    Req::new(
        Method::GET,
        "/bkt/x%20y",
        Some(&format!(
            "AWSAccessKeyId={AKID}&Expires={expires}&Signature={}",
            percent_encoding::utf8_percent_encode(signature, percent_encoding::NON_ALPHANUMERIC)
        )),
    )
}

fn v2_signature(string_to_sign: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn query_signature_and_expiry() {
    let expires = 1_700_000_000;
    let signature = v2_signature(&format!("GET\n\n\n{expires}\n/bkt/x%20y"));
    let req = presigned_v2(expires, &signature);
    let before = OffsetDateTime::from_unix_timestamp(expires - 10).unwrap();
    assert_signed(&req, before);
    let after = OffsetDateTime::from_unix_timestamp(expires + 1).unwrap();
    assert_eq!(
        req.auth("us-east-1", after).unwrap_err(),
        AuthError::AccessDenied("Request has expired".into())
    );
    let tampered = presigned_v2(expires + 1, &signature);
    assert!(matches!(
        tampered.auth("us-east-1", before),
        Err(AuthError::SignatureDoesNotMatch(_))
    ));
    let incomplete = Req::new(
        Method::GET,
        "/bkt/k",
        Some(&format!("AWSAccessKeyId={AKID}")),
    );
    assert!(matches!(
        incomplete.auth("us-east-1", before),
        Err(AuthError::AccessDenied(_))
    ));
}

#[test]
fn query_v2_and_header_conflict() {
    let req = presigned_v2(1, "x").header("authorization", &format!("AWS {AKID}:abc="));
    assert!(matches!(
        req.auth("us-east-1", OffsetDateTime::UNIX_EPOCH),
        Err(AuthError::InvalidArgument(_))
    ));
}

#[test]
fn subresource_lists_are_sorted() {
    for list in [super::sigv2::SUBRESOURCES, super::sigv2::SUBRESOURCES_MINIO] {
        assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
    }
}
