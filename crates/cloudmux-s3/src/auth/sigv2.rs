//! AWS Signature Version 2: `Authorization: AWS AKID:signature` and the
//! `AWSAccessKeyId`/`Expires`/`Signature` query form.
//!
//! The string to sign is
//! `METHOD\nContent-MD5\nContent-Type\nDate\nCanonicalizedAmzHeaders CanonicalizedResource`,
//! where the date line is empty when `x-amz-date` is present (that header is
//! then covered through the `x-amz-*` headers) and is the `Expires` value in
//! the query form.

use base64::Engine;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, DATE};
use http::HeaderMap;
use sha1::Sha1;

use super::util::{self, X_AMZ_DATE};
use super::{
    unsigned_payload, AuthContext, AuthError, Authenticated, Credentials, SignatureMismatch,
    SignedRequest,
};

const CONTENT_MD5: &str = "content-md5";

/// The subresources botocore (and the AWS documentation) include in the
/// canonical resource. Sorted.
pub(crate) const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// The subresources the MinIO clients include, which differ from botocore's
/// in a few names. A signature that fails with [`SUBRESOURCES`] is tried
/// again with these. Sorted.
pub(crate) const SUBRESOURCES_MINIO: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "encryption",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Checks `Authorization: AWS AKID:signature`; `rest` is the part after
/// `AWS `.
pub(crate) fn authenticate_header(
    req: &SignedRequest<'_>,
    rest: &str,
    creds: &dyn Credentials,
    ctx: &AuthContext,
) -> Result<Authenticated, AuthError> {
    let (access_key, signature) = rest
        .trim()
        .rsplit_once(':')
        .filter(|(ak, sig)| !ak.is_empty() && !sig.is_empty())
        .ok_or_else(|| {
            AuthError::InvalidArgument(
                "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature".into(),
            )
        })?;
    let secret = creds
        .secret_for(access_key)
        .ok_or_else(|| AuthError::InvalidAccessKeyId {
            access_key: access_key.to_owned(),
        })?;
    let denied = || {
        AuthError::AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header".into(),
        )
    };
    let amz_date = req.headers.get(X_AMZ_DATE);
    let date_value = amz_date
        .or_else(|| req.headers.get(DATE))
        .ok_or_else(denied)?
        .to_str()
        .map_err(|_| denied())?;
    let when = util::parse_http_date(date_value)
        .or_else(|| util::parse_amz_date(date_value.trim()))
        .ok_or_else(denied)?;
    if (ctx.now - when).abs() > util::MAX_SKEW {
        return Err(AuthError::RequestTimeTooSkewed {
            request_time: date_value.to_owned(),
            server_time: util::format_rfc3339(ctx.now),
        });
    }
    // x-amz-date overrides Date: the AWS examples put its value on the date
    // line and leave it out of the x-amz-* headers. The AWS text (and boto)
    // instead leave the date line empty and sign x-amz-date among the x-amz-*
    // headers, and botocore keeps Date on the line; all three are accepted.
    let plain_date = req.headers.get(DATE).and_then(|v| v.to_str().ok());
    let date_lines: &[(&str, bool)] = match (amz_date, plain_date) {
        (None, _) => &[(date_value.trim(), true)],
        (Some(_), Some(date)) => &[(date_value.trim(), false), ("", true), (date.trim(), true)],
        (Some(_), None) => &[(date_value.trim(), false), ("", true)],
    };
    verify(req, &secret, access_key, signature, date_lines)?;
    Ok(Authenticated::Signed {
        access_key: access_key.to_owned(),
        payload: unsigned_payload(req.headers)?,
    })
}

/// Checks a SigV2 presigned URL (`AWSAccessKeyId`, `Expires`, `Signature`).
pub(crate) fn authenticate_query(
    req: &SignedRequest<'_>,
    creds: &dyn Credentials,
    ctx: &AuthContext,
) -> Result<Authenticated, AuthError> {
    let raw = req.raw_query.unwrap_or("");
    let (Some(access_key), Some(expires), Some(signature)) = (
        util::query_param(raw, "AWSAccessKeyId"),
        util::query_param(raw, "Expires"),
        util::query_pairs(raw)
            .find(|(key, _)| *key == "Signature")
            .map(|(_, value)| String::from_utf8_lossy(&util::decode_path(value)).into_owned()),
    ) else {
        return Err(AuthError::AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
                .into(),
        ));
    };
    let expires_at: i64 = expires.trim().parse().map_err(|_| {
        AuthError::AccessDenied(format!(
            "Invalid date (should be seconds since epoch): {expires}"
        ))
    })?;
    let secret = creds
        .secret_for(&access_key)
        .ok_or_else(|| AuthError::InvalidAccessKeyId {
            access_key: access_key.clone().into_owned(),
        })?;
    if ctx.now.unix_timestamp() > expires_at {
        return Err(AuthError::AccessDenied("Request has expired".into()));
    }
    verify(
        req,
        &secret,
        &access_key,
        &signature,
        &[(expires.trim(), true)],
    )?;
    Ok(Authenticated::Signed {
        access_key: access_key.into_owned(),
        payload: unsigned_payload(req.headers)?,
    })
}

/// Compares `provided` with the signature of the request for each date line
/// candidate (with or without `x-amz-date` among the `x-amz-*` headers), under each subresource list, and for a path-style bucket
/// request (`/bucket`) also with a trailing slash (`/bucket/`), which botocore
/// signs. The first candidate is the canonical one, reported on failure.
fn verify(
    req: &SignedRequest<'_>,
    secret: &str,
    access_key: &str,
    provided: &str,
    date_lines: &[(&str, bool)],
) -> Result<(), AuthError> {
    let mut first_string_to_sign = None;
    for &(date_line, with_amz_date) in date_lines {
        let prefix =
            string_to_sign_prefix(req.method.as_str(), req.headers, date_line, with_amz_date);
        match verify_resources(req, secret, provided, &prefix) {
            Ok(()) => return Ok(()),
            Err(string_to_sign) => {
                first_string_to_sign.get_or_insert(string_to_sign);
            }
        }
    }
    Err(AuthError::SignatureDoesNotMatch(Box::new(
        SignatureMismatch {
            access_key: access_key.to_owned(),
            signature_provided: provided.to_owned(),
            string_to_sign: first_string_to_sign.unwrap_or_default(),
            canonical_request: None,
        },
    )))
}

/// Tries the canonical resource variants after `prefix`; on failure returns
/// the canonical string to sign.
fn verify_resources(
    req: &SignedRequest<'_>,
    secret: &str,
    provided: &str,
    prefix: &str,
) -> Result<(), String> {
    let bucket_only = req.virtual_host_bucket.is_none()
        && req.raw_path.len() > 1
        && !req.raw_path[1..].contains('/');
    let mut tried: Vec<String> = Vec::with_capacity(4);
    for subresources in [SUBRESOURCES, SUBRESOURCES_MINIO] {
        for slash in [false, true] {
            if slash && !bucket_only {
                continue;
            }
            let resource = canonical_resource(req, subresources, slash);
            if tried.contains(&resource) {
                continue;
            }
            let string_to_sign = format!("{prefix}{resource}");
            if util::ct_eq(
                sign(secret, &string_to_sign).as_bytes(),
                provided.as_bytes(),
            ) {
                return Ok(());
            }
            tried.push(resource);
        }
    }
    Err(format!("{prefix}{}", tried[0]))
}

/// Base64 of HMAC-SHA1.
pub(super) fn sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Everything in the string to sign before the canonical resource.
fn string_to_sign_prefix(
    method: &str,
    headers: &HeaderMap,
    date_line: &str,
    with_amz_date: bool,
) -> String {
    let header = |name| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .unwrap_or_default()
    };
    let mut out = String::with_capacity(128);
    out.push_str(method);
    out.push('\n');
    out.push_str(&header(CONTENT_MD5));
    out.push('\n');
    out.push_str(&header(CONTENT_TYPE.as_str()));
    out.push('\n');
    out.push_str(date_line);
    out.push('\n');
    let mut names: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-amz-") && (with_amz_date || *name != "x-amz-date"))
        .collect();
    names.sort_unstable();
    for name in names {
        out.push_str(name);
        out.push(':');
        for (i, value) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(String::from_utf8_lossy(value.as_bytes()).trim());
        }
        out.push('\n');
    }
    out
}

/// `/bucket` (virtual-hosted style) + the raw path (+ `/` if `slash`) + the
/// sorted subresources that are in `subresources`, values percent-decoded.
fn canonical_resource(req: &SignedRequest<'_>, subresources: &[&str], slash: bool) -> String {
    let mut out = String::with_capacity(req.raw_path.len() + 32);
    if let Some(bucket) = req.virtual_host_bucket {
        out.push('/');
        out.push_str(bucket);
    }
    if req.raw_path.is_empty() {
        out.push('/');
    } else {
        out.push_str(req.raw_path);
    }
    if slash {
        out.push('/');
    }
    let mut params: Vec<(&str, Option<&str>)> = req
        .raw_query
        .map(|raw| {
            raw.split('&')
                .map(|segment| match segment.split_once('=') {
                    Some((key, value)) => (key, Some(value)),
                    None => (segment, None),
                })
                .filter(|(key, _)| subresources.binary_search(key).is_ok())
                .collect()
        })
        .unwrap_or_default();
    params.sort_by_key(|(key, _)| *key);
    for (i, (key, value)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        if let Some(value) = value {
            out.push('=');
            out.push_str(&String::from_utf8_lossy(&util::decode_path(value)));
        }
    }
    out
}
