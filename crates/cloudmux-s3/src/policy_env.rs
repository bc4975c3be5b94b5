//! The request values bucket policy conditions test: the S3 action of the
//! operation, the connection, and the condition keys S3 takes from the query
//! string and headers.

use cloudmux_core::policy::RequestEnv;
use http::HeaderMap;

use crate::context::Query;
use crate::router::Endpoint;
use crate::server::Conn;

/// Builds the policy environment of one request.
pub(crate) fn request_env(
    ep: Endpoint,
    conn: Conn,
    query: &Query,
    headers: &HeaderMap,
) -> RequestEnv {
    let mut values: Vec<(&'static str, String)> = Vec::new();
    if matches!(
        ep,
        Endpoint::ListObjects
            | Endpoint::ListObjectsV2
            | Endpoint::ListObjectVersions
            | Endpoint::ListMultipartUploads
    ) {
        values.push(("s3:prefix", query.get("prefix").unwrap_or("").to_owned()));
        for (key, param) in [("s3:delimiter", "delimiter"), ("s3:max-keys", "max-keys")] {
            if let Some(v) = query.get(param) {
                values.push((key, v.to_owned()));
            }
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    for (key, name) in [
        ("s3:x-amz-acl", "x-amz-acl"),
        ("s3:x-amz-metadata-directive", "x-amz-metadata-directive"),
        ("s3:x-amz-content-sha256", "x-amz-content-sha256"),
        ("s3:x-amz-storage-class", "x-amz-storage-class"),
        ("s3:x-amz-grant-read", "x-amz-grant-read"),
        ("s3:x-amz-grant-write", "x-amz-grant-write"),
        ("s3:x-amz-grant-read-acp", "x-amz-grant-read-acp"),
        ("s3:x-amz-grant-write-acp", "x-amz-grant-write-acp"),
        ("s3:x-amz-grant-full-control", "x-amz-grant-full-control"),
        (
            "s3:x-amz-server-side-encryption",
            "x-amz-server-side-encryption",
        ),
        (
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
            "x-amz-server-side-encryption-aws-kms-key-id",
        ),
        ("aws:referer", "referer"),
        ("aws:useragent", "user-agent"),
    ] {
        if let Some(v) = header(name) {
            values.push((key, v.to_owned()));
        }
    }
    if let Some(src) = header("x-amz-copy-source") {
        let src = percent_encoding::percent_decode_str(src).decode_utf8_lossy();
        let src = src.trim_start_matches('/');
        let src = src.split_once("?versionId=").map_or(src, |(s, _)| s);
        values.push(("s3:x-amz-copy-source", src.to_owned()));
    }
    let auth = header("authorization");
    let (auth_type, sig) = if query.has("X-Amz-Signature") {
        (Some("REST-QUERY-STRING"), Some("AWS4-HMAC-SHA256"))
    } else if query.has("Signature") {
        (Some("REST-QUERY-STRING"), Some("AWS"))
    } else if let Some(a) = auth {
        let sig = if a.starts_with("AWS4-HMAC-SHA256") {
            "AWS4-HMAC-SHA256"
        } else {
            "AWS"
        };
        (Some("REST-HEADER"), Some(sig))
    } else {
        (None, None)
    };
    if let (Some(t), Some(s)) = (auth_type, sig) {
        values.push(("s3:authtype", t.to_owned()));
        values.push(("s3:signatureversion", s.to_owned()));
    }
    RequestEnv {
        action: if query.has("versionId") {
            ep.s3_version_action()
        } else {
            ep.s3_action()
        },
        source_ip: conn.peer.map(|p| p.ip()),
        secure_transport: conn.secure,
        values,
    }
}
