//! SigV4 tests: the AWS documentation examples, requests signed by botocore,
//! and the error cases.

use http::Method;
use time::Duration;

use super::botocore_vectors::VECTORS;
use super::test_support::*;
use super::{AuthError, Authenticated, Payload};

const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn auth_header(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// GET Object from the AWS documentation ("Example: GET Object").
fn get_object(signature: &str) -> Req {
    Req::new(Method::GET, "/test.txt", None)
        .header("host", "examplebucket.s3.amazonaws.com")
        .header("range", "bytes=0-9")
        .header("x-amz-content-sha256", EMPTY)
        .header("x-amz-date", "20130524T000000Z")
        .header(
            "authorization",
            &auth_header("host;range;x-amz-content-sha256;x-amz-date", signature),
        )
}

const GET_OBJECT_SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

fn signed_key(result: Result<Authenticated, AuthError>) -> (String, Payload) {
    match result {
        Ok(Authenticated::Signed {
            access_key,
            payload,
        }) => (access_key, payload),
        other => panic!("expected a signed request, got {other:?}"),
    }
}

#[test]
fn doc_get_object() {
    let (access_key, payload) =
        signed_key(get_object(GET_OBJECT_SIG).auth("us-east-1", may_24_2013()));
    assert_eq!(access_key, AKID);
    assert!(matches!(payload, Payload::Sha256(d) if hex::encode(d) == EMPTY));
}

#[test]
fn doc_get_object_mismatch_reports_canonical_request() {
    let bad = GET_OBJECT_SIG.replace('f', "e");
    let Err(AuthError::SignatureDoesNotMatch(mismatch)) =
        get_object(&bad).auth("us-east-1", may_24_2013())
    else {
        panic!("expected SignatureDoesNotMatch");
    };
    assert_eq!(
        mismatch.canonical_request.as_deref(),
        Some(
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
    );
    assert_eq!(
        mismatch.string_to_sign,
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
         7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    );
    assert_eq!(mismatch.signature_provided, bad);
    assert_eq!(mismatch.access_key, AKID);
}

#[test]
fn doc_put_object() {
    let req = Req::new(Method::PUT, "/test%24file.text", None)
        .header("host", "examplebucket.s3.amazonaws.com")
        .header("date", "Fri, 24 May 2013 00:00:00 GMT")
        .header("x-amz-date", "20130524T000000Z")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .header(
            "x-amz-content-sha256",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        )
        .header(
            "authorization",
            &auth_header(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
        );
    let (_, payload) = signed_key(req.auth("us-east-1", may_24_2013()));
    assert!(
        matches!(payload, Payload::Sha256(d) if d == crate::auth::util::sha256(b"Welcome to Amazon S3."))
    );
}

fn bucket_get(query: &str, signature: &str) -> Req {
    Req::new(Method::GET, "/", Some(query))
        .header("host", "examplebucket.s3.amazonaws.com")
        .header("x-amz-date", "20130524T000000Z")
        .header("x-amz-content-sha256", EMPTY)
        .header(
            "authorization",
            &auth_header("host;x-amz-content-sha256;x-amz-date", signature),
        )
}

#[test]
fn doc_get_bucket_lifecycle() {
    let req = bucket_get(
        "lifecycle",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    );
    signed_key(req.auth("us-east-1", may_24_2013()));
}

#[test]
fn doc_list_objects() {
    let req = bucket_get(
        "max-keys=2&prefix=J",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    signed_key(req.auth("us-east-1", may_24_2013()));
    let reordered = bucket_get(
        "prefix=J&max-keys=2",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    signed_key(reordered.auth("us-east-1", may_24_2013()));
}

const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

fn presigned(query: &str) -> Req {
    Req::new(Method::GET, "/test.txt", Some(query)).header("host", "examplebucket.s3.amazonaws.com")
}

#[test]
fn doc_presigned_url() {
    let (access_key, payload) =
        signed_key(presigned(PRESIGNED_QUERY).auth("us-east-1", may_24_2013()));
    assert_eq!(access_key, AKID);
    assert!(matches!(payload, Payload::Unsigned));
    let later = may_24_2013() + Duration::seconds(86_400);
    signed_key(presigned(PRESIGNED_QUERY).auth("us-east-1", later));
}

#[test]
fn presigned_expired() {
    let later = may_24_2013() + Duration::seconds(86_401);
    assert_eq!(
        presigned(PRESIGNED_QUERY)
            .auth("us-east-1", later)
            .unwrap_err(),
        AuthError::AccessDenied("Request has expired".into())
    );
}

#[test]
fn presigned_not_yet_valid() {
    let earlier = may_24_2013() - Duration::minutes(16);
    assert!(matches!(
        presigned(PRESIGNED_QUERY).auth("us-east-1", earlier),
        Err(AuthError::AccessDenied(msg)) if msg == "Request is not valid yet"
    ));
    let slightly_earlier = may_24_2013() - Duration::minutes(14);
    signed_key(presigned(PRESIGNED_QUERY).auth("us-east-1", slightly_earlier));
}

#[test]
fn presigned_expires_bounds() {
    let query = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=0");
    let result = presigned(&query).auth("us-east-1", may_24_2013());
    assert!(
        matches!(result, Err(AuthError::AccessDenied(_))),
        "0 is valid but already expired: {result:?}"
    );
    for (expires, ok) in [
        ("-1", false),
        ("1", true),
        ("604800", true),
        ("604801", false),
        ("x", false),
    ] {
        let query =
            PRESIGNED_QUERY.replace("X-Amz-Expires=86400", &format!("X-Amz-Expires={expires}"));
        let result = presigned(&query).auth("us-east-1", may_24_2013());
        if ok {
            // The signature covers X-Amz-Expires, so only the error kind is checked.
            assert!(
                matches!(result, Err(AuthError::SignatureDoesNotMatch(_))),
                "{expires}"
            );
        } else {
            assert!(
                matches!(result, Err(AuthError::AuthorizationQueryParametersError(_))),
                "{expires}: {result:?}"
            );
        }
    }
}

#[test]
fn presigned_missing_parameter() {
    let query = PRESIGNED_QUERY.replace("&X-Amz-SignedHeaders=host", "");
    assert!(matches!(
        presigned(&query).auth("us-east-1", may_24_2013()),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
}

#[test]
fn presigned_tampered_query() {
    let query = format!("{PRESIGNED_QUERY}&versionId=1");
    assert!(matches!(
        presigned(&query).auth("us-east-1", may_24_2013()),
        Err(AuthError::SignatureDoesNotMatch(_))
    ));
}

#[test]
fn presigned_wrong_region() {
    let Err(AuthError::AuthorizationQueryParametersError(msg)) =
        presigned(PRESIGNED_QUERY).auth("eu-west-1", may_24_2013())
    else {
        panic!("expected AuthorizationQueryParametersError");
    };
    assert!(
        msg.contains("the region 'us-east-1' is wrong; expecting 'eu-west-1'"),
        "{msg}"
    );
}

#[test]
fn presigned_sigv4a_not_implemented() {
    let query = PRESIGNED_QUERY.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
    assert!(matches!(
        presigned(&query).auth("us-east-1", may_24_2013()),
        Err(AuthError::NotImplemented(_))
    ));
}

#[test]
fn header_and_query_signature_conflict() {
    let req = Req::new(Method::GET, "/test.txt", Some(PRESIGNED_QUERY))
        .header("host", "examplebucket.s3.amazonaws.com")
        .header("authorization", &auth_header("host", GET_OBJECT_SIG));
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::InvalidArgument(msg)) if msg.starts_with("Only one auth mechanism allowed")
    ));
}

#[test]
fn clock_skew() {
    let req = get_object(GET_OBJECT_SIG);
    signed_key(req.auth("us-east-1", may_24_2013() + Duration::minutes(15)));
    signed_key(req.auth("us-east-1", may_24_2013() - Duration::minutes(15)));
    for skew in [Duration::minutes(16), -Duration::minutes(16)] {
        assert!(matches!(
            req.auth("us-east-1", may_24_2013() + skew),
            Err(AuthError::RequestTimeTooSkewed { request_time, .. }) if request_time == "20130524T000000Z"
        ));
    }
}

#[test]
fn wrong_region_names_expected_region() {
    assert_eq!(
        get_object(GET_OBJECT_SIG).auth("us-west-2", may_24_2013()).unwrap_err(),
        AuthError::AuthorizationHeaderMalformed(
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'us-west-2'"
                .into()
        )
    );
}

#[test]
fn unknown_access_key() {
    let mut req = get_object(GET_OBJECT_SIG);
    let value = req.headers["authorization"]
        .to_str()
        .unwrap()
        .replace(AKID, "AKIDUNKNOWN");
    req.headers.insert("authorization", value.parse().unwrap());
    assert_eq!(
        req.auth("us-east-1", may_24_2013()).unwrap_err(),
        AuthError::InvalidAccessKeyId {
            access_key: "AKIDUNKNOWN".into()
        }
    );
}

#[test]
fn content_sha256_rules() {
    let mut req = get_object(GET_OBJECT_SIG);
    req.headers.remove("x-amz-content-sha256");
    assert_eq!(
        req.auth("us-east-1", may_24_2013()).unwrap_err(),
        AuthError::InvalidRequest(
            "Missing required header for this request: x-amz-content-sha256".into()
        )
    );
    for (value, want_invalid) in [
        ("nonsense", true),
        ("abc", true),
        ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", false),
    ] {
        req.headers
            .insert("x-amz-content-sha256", value.parse().unwrap());
        let err = req.auth("us-east-1", may_24_2013()).unwrap_err();
        if want_invalid {
            assert!(
                matches!(&err, AuthError::InvalidArgument(msg) if msg.starts_with("x-amz-content-sha256 must be")),
                "{err:?}"
            );
        } else {
            assert!(matches!(err, AuthError::NotImplemented(_)), "{err:?}");
        }
    }
}

#[test]
fn missing_date() {
    let mut req = get_object(GET_OBJECT_SIG);
    req.headers.remove("x-amz-date");
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::AccessDenied(msg)) if msg.contains("valid Date or x-amz-date")
    ));
}

#[test]
fn unsigned_amz_header_refused() {
    let req = get_object(GET_OBJECT_SIG).header("x-amz-meta-sneaky", "1");
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::HeadersNotSigned(names)) if names == ["x-amz-meta-sneaky"]
    ));
}

#[test]
fn unsigned_content_md5_refused() {
    let req = get_object(GET_OBJECT_SIG).header("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==");
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::HeadersNotSigned(names)) if names == ["content-md5"]
    ));
}

#[test]
fn presigned_unsigned_amz_headers_refused() {
    let req = presigned(PRESIGNED_QUERY)
        .header("x-amz-copy-source", "/private/secret.txt")
        .header("x-amz-acl", "public-read");
    match req.auth("us-east-1", may_24_2013()) {
        Err(AuthError::HeadersNotSigned(mut names)) => {
            names.sort();
            assert_eq!(names, ["x-amz-acl", "x-amz-copy-source"]);
        }
        other => panic!("expected HeadersNotSigned, got {other:?}"),
    }
    let req = presigned(PRESIGNED_QUERY).header("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==");
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::HeadersNotSigned(names)) if names == ["content-md5"]
    ));
}

#[test]
fn presigned_unsigned_content_sha256_accepted() {
    // S3 tolerates this one header unsigned in a presigned request.
    let req = presigned(PRESIGNED_QUERY).header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    signed_key(req.auth("us-east-1", may_24_2013()));
}

#[test]
fn host_must_be_signed() {
    let req = Req::new(Method::GET, "/test.txt", None)
        .header("host", "examplebucket.s3.amazonaws.com")
        .header("x-amz-content-sha256", EMPTY)
        .header("x-amz-date", "20130524T000000Z")
        .header(
            "authorization",
            &auth_header("x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG),
        );
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::HeadersNotSigned(names)) if names == ["host"]
    ));
}

#[test]
fn sigv4a_header_not_implemented() {
    let req = Req::new(Method::GET, "/", None).header(
        "authorization",
        "AWS4-ECDSA-P256-SHA256 Credential=x, SignedHeaders=host, Signature=00",
    );
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::NotImplemented(_))
    ));
}

#[test]
fn malformed_headers() {
    for value in [
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1, SignedHeaders=host, Signature=00",
    ] {
        let req = get_object(GET_OBJECT_SIG).header("authorization", value);
        let mut req = req;
        req.headers.insert("authorization", value.parse().unwrap());
        assert!(
            matches!(req.auth("us-east-1", may_24_2013()), Err(AuthError::AuthorizationHeaderMalformed(_))),
            "{value}"
        );
    }
    let req = Req::new(Method::GET, "/", None).header("authorization", "Bearer abc");
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::InvalidArgument(_))
    ));
}

#[test]
fn anonymous() {
    let req = Req::new(Method::GET, "/bucket/key", Some("versionId=1"));
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Ok(Authenticated::Anonymous)
    ));
}

/// The AWS chunked upload example: seed signature of the headers.
pub(super) fn doc_chunked_request() -> Req {
    Req::new(Method::PUT, "/examplebucket/chunkObject.txt", None)
        .header("host", "s3.amazonaws.com")
        .header("x-amz-date", "20130524T000000Z")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", "66560")
        .header("content-length", "66824")
        .header(
            "authorization",
            &auth_header(
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
                "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
        )
}

#[test]
fn doc_chunked_seed_signature() {
    let (_, payload) = signed_key(doc_chunked_request().auth("us-east-1", may_24_2013()));
    let Payload::Chunked(spec) = payload else {
        panic!("expected a chunked payload");
    };
    assert!(spec.chunks_signed());
    assert!(!spec.trailer_signed());
    assert_eq!(spec.decoded_length(), Some(66560));
    assert_eq!(spec.trailer_name(), None);
    let signing = spec.signing.as_ref().unwrap();
    assert_eq!(
        &signing.seed[..],
        b"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    );
    assert_eq!(signing.scope, "20130524/us-east-1/s3/aws4_request");
    assert_eq!(signing.timestamp, "20130524T000000Z");
}

#[test]
fn signing_key_cache_is_consistent() {
    let a = super::sigv4::signing_key(SECRET, "20130524", "us-east-1");
    let b = super::sigv4::signing_key(SECRET, "20130524", "us-east-1");
    let c = super::sigv4::signing_key(SECRET, "20130525", "us-east-1");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

fn vector_request(v: &super::botocore_vectors::Vector) -> Req {
    let method = Method::from_bytes(v.method.as_bytes()).unwrap();
    let query = (!v.query.is_empty()).then_some(v.query);
    let mut req = Req::new(method, v.path, query);
    for (name, value) in v.headers {
        req = req.header(name, value);
    }
    req.bucket = v.virtual_bucket.map(str::to_owned);
    req
}

/// The time of a captured request: its x-amz-date, X-Amz-Date or Date.
pub(super) fn vector_time(req: &Req) -> time::OffsetDateTime {
    if let Some(query) = &req.query {
        if let Some(date) = crate::auth::util::query_param(query, "X-Amz-Date") {
            return crate::auth::util::parse_amz_date(&date).unwrap();
        }
        if let Some(expires) = crate::auth::util::query_param(query, "Expires") {
            return time::OffsetDateTime::from_unix_timestamp(
                expires.parse::<i64>().unwrap() - 3600,
            )
            .unwrap();
        }
    }
    if let Some(date) = req.headers.get("x-amz-date") {
        return crate::auth::util::parse_amz_date(date.to_str().unwrap()).unwrap();
    }
    crate::auth::util::parse_http_date(req.headers["date"].to_str().unwrap()).unwrap()
}

#[test]
fn botocore_requests_verify() {
    for v in VECTORS {
        let req = vector_request(v);
        let now = vector_time(&req);
        let result = req.auth("us-east-1", now);
        assert!(
            matches!(result, Ok(Authenticated::Signed { ref access_key, .. }) if access_key == AKID),
            "{}: {result:?}",
            v.name
        );
    }
}

#[test]
fn botocore_requests_tampered_fail() {
    for v in VECTORS {
        let mut req = vector_request(v);
        req.path.push('x');
        let now = vector_time(&req);
        assert!(
            matches!(
                req.auth("us-east-1", now),
                Err(AuthError::SignatureDoesNotMatch(_))
            ),
            "{}",
            v.name
        );
    }
}

#[test]
fn botocore_unsigned_trailer_payload() {
    let v = VECTORS
        .iter()
        .find(|v| v.name == "v4_https_put_trailer")
        .unwrap();
    let req = vector_request(v);
    let (_, payload) = signed_key(req.auth("us-east-1", vector_time(&req)));
    let Payload::Chunked(spec) = payload else {
        panic!("expected a chunked payload");
    };
    assert!(!spec.chunks_signed());
    assert_eq!(spec.trailer_name(), Some("x-amz-checksum-crc32"));
    assert_eq!(spec.decoded_length(), Some(35));
    let (drained, trailer) = decode(vec![hex::decode(v.body_hex).unwrap()], spec);
    assert_eq!(drained.error, None);
    assert_eq!(drained.data, b"hello world, this is a trailer test");
    assert_eq!(trailer.as_deref(), Some("L30DjQ=="));
}

/// s3-tests (ceph) expectations about which error wins.
#[test]
fn error_precedence() {
    // A stale x-amz-date swapped in after signing: the clock check comes
    // before the credential date check.
    let mut req = get_object(GET_OBJECT_SIG);
    req.headers
        .insert("x-amz-date", "20100707T215304Z".parse().unwrap());
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::RequestTimeTooSkewed { .. })
    ));
    // An unknown key is reported before the scope is examined.
    let req = Req::new(Method::PUT, "/bucket/key", None)
        .header("host", "localhost")
        .header("x-amz-date", "20130524T000000Z")
        .header("x-amz-content-sha256", EMPTY)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIGR7ZNNBHC5BKSUB/20150930/us-east-1/s3/aws4_request,SignedHeaders=host;user-agent,Signature=0",
        );
    assert!(matches!(
        req.auth("eu-west-1", may_24_2013()),
        Err(AuthError::InvalidAccessKeyId { .. })
    ));
    // Within the skew window, a credential date that differs is malformed.
    let mut req = get_object(GET_OBJECT_SIG);
    req.headers
        .insert("x-amz-date", "20130523T235959Z".parse().unwrap());
    assert!(matches!(
        req.auth("us-east-1", may_24_2013()),
        Err(AuthError::AuthorizationHeaderMalformed(msg)) if msg.contains("Invalid credential date")
    ));
}
