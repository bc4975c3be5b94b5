//! POST Object: browser-based uploads with `multipart/form-data`.
//!
//! The form fields before `file` are collected (each at most 20 KiB, 64 KiB
//! in all), the policy signature is verified (SigV4 or SigV2), the policy
//! document's expiration and conditions are checked, and the `file` part then
//! streams into the location exactly like a PutObject body, verified against
//! an `x-amz-checksum-*` field or given the checksum `x-amz-checksum-algorithm`
//! names. Fields after `file` are ignored, as S3 does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use cloudmux_core::acl::{AclRequest, CannedAcl};
use cloudmux_core::checksum::ALL_ALGORITHMS;
use cloudmux_core::digest::{BodyExpectations, ChecksumSource, ExpectedChecksum};
use cloudmux_core::records::{EntityHeaders, ObjectMeta};
use cloudmux_core::{
    CoreError, Gateway, Principal, PutObjectInput, RequestContext, WriteConditions,
};
use cloudmux_data::{BodyError, BodyStream};
use futures_util::{StreamExt, TryStreamExt};
use http::{Response, StatusCode};
use http_body_util::BodyStream as HttpBodyStream;
use serde_json::Value;

use crate::auth::post_policy::verify_post_form;
use crate::auth::{AuthContext, Credentials};
use crate::body::{self, ResBody};
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers::MAX_USER_METADATA;
use crate::xml::XmlWriter;

/// Largest form field (other than `file`) accepted.
const MAX_FIELD: usize = 20 * 1024;

/// Largest total size of the form fields before `file`.
const MAX_FIELDS_TOTAL: usize = 64 * 1024;

/// Fields that need no policy condition.
fn exempt(name: &str) -> bool {
    matches!(
        name,
        "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid" | "file"
    ) || name.starts_with("x-ignore-")
}

struct AccountKeys<'a>(&'a Gateway);

impl Credentials for AccountKeys<'_> {
    fn secret_for(&self, access_key: &str) -> Option<String> {
        self.0
            .accounts()
            .by_access_key(access_key)
            .map(|a| a.secret_key.clone())
    }
}

fn policy_failed(msg: impl std::fmt::Display) -> S3Error {
    S3Error::access_denied(format!("Invalid according to Policy: {msg}"))
}

fn invalid_policy(msg: &str) -> S3Error {
    S3Error::invalid_policy(msg)
}

/// The byte bounds of `content-length-range`.
#[derive(Debug, Default, Clone, Copy)]
struct LengthRange {
    min: u64,
    max: Option<u64>,
}

/// Checks a decoded policy document against the form fields (names
/// lower-cased; `key` after `${filename}` substitution) and returns its
/// content-length range.
fn check_policy(
    doc: &[u8],
    fields: &[(String, String)],
    bucket: &str,
    now: time::OffsetDateTime,
) -> S3Result<LengthRange> {
    let policy: Value =
        serde_json::from_slice(doc).map_err(|_| invalid_policy("Policy is not valid JSON."))?;
    let exp = policy
        .get("expiration")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_policy("Policy missing expiration."))?;
    let exp = time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid_policy(&format!("Invalid 'expiration' value: '{exp}'")))?;
    if exp < now {
        return Err(policy_failed("Policy expired."));
    }
    let conditions = policy
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_policy("Policy missing conditions."))?;
    let value_of = |name: &str| -> Option<String> {
        if name == "bucket" {
            return Some(bucket.to_owned());
        }
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut covered: Vec<String> = vec!["bucket".into()];
    let mut range = LengthRange::default();
    for c in conditions {
        match c {
            Value::Object(map) => {
                if map.is_empty() {
                    return Err(invalid_policy("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."));
                }
                for (k, v) in map {
                    let name = k.to_ascii_lowercase();
                    let want = v
                        .as_str()
                        .ok_or_else(|| invalid_policy("Invalid condition value."))?;
                    if value_of(&name).as_deref() != Some(want) {
                        return Err(policy_failed(format!(
                            "Policy Condition failed: [\"eq\", \"${name}\", \"{want}\"]"
                        )));
                    }
                    covered.push(name);
                }
            }
            Value::Array(items) => {
                let op = items
                    .first()
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid_policy("Invalid condition."))?
                    .to_ascii_lowercase();
                if op == "content-length-range" {
                    let n = |i: usize| {
                        items
                            .get(i)
                            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                            .ok_or_else(|| invalid_policy("Invalid content-length-range."))
                    };
                    range = LengthRange {
                        min: n(1)?,
                        max: Some(n(2)?),
                    };
                    continue;
                }
                let (Some(field), Some(want)) = (
                    items.get(1).and_then(Value::as_str),
                    items.get(2).and_then(Value::as_str),
                ) else {
                    return Err(invalid_policy("Invalid condition."));
                };
                let name = field.trim_start_matches('$').to_ascii_lowercase();
                let have = value_of(&name).unwrap_or_default();
                let ok = match op.as_str() {
                    "eq" => have == want,
                    "starts-with" => {
                        if name == "content-type" {
                            have.split(',').all(|v| v.trim().starts_with(want))
                        } else {
                            have.starts_with(want)
                        }
                    }
                    _ => return Err(invalid_policy(&format!("Invalid condition operator: {op}"))),
                };
                if !ok {
                    return Err(policy_failed(format!(
                        "Policy Condition failed: [\"{op}\", \"${name}\", \"{want}\"]"
                    )));
                }
                covered.push(name);
            }
            _ => return Err(invalid_policy("Invalid condition.")),
        }
    }
    for (name, _) in fields {
        if !exempt(name) && !covered.contains(name) {
            return Err(policy_failed(format!("Extra input fields: {name}")));
        }
    }
    Ok(range)
}

/// Reads a small form field fully.
async fn field_text(field: multer::Field<'static>) -> S3Result<String> {
    let mut buf = Vec::new();
    let mut field = field;
    while let Some(chunk) = field.chunk().await.map_err(|_| S3Error::malformed_post())? {
        if buf.len() + chunk.len() > MAX_FIELD {
            return Err(S3Error::invalid_argument("Form field too large"));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| S3Error::malformed_post())
}

/// The object metadata given by form fields.
fn form_meta(fields: &[(String, String)]) -> S3Result<ObjectMeta> {
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut user = Vec::new();
    let mut size = 0;
    for (k, v) in fields {
        if let Some(n) = k.strip_prefix("x-amz-meta-") {
            size += n.len() + v.len();
            user.push((n.to_owned(), v.clone()));
        }
    }
    if size > MAX_USER_METADATA {
        return Err(S3Error::metadata_too_large());
    }
    user.sort();
    Ok(ObjectMeta {
        headers: EntityHeaders {
            content_type: get("content-type"),
            cache_control: get("cache-control"),
            content_disposition: get("content-disposition"),
            content_encoding: get("content-encoding")
                .as_deref()
                .and_then(crate::headers::without_aws_chunked),
            content_language: None,
            expires: get("expires"),
            website_redirect: get("x-amz-website-redirect-location"),
        },
        user,
        storage_class: get("x-amz-storage-class"),
        tags: match get("tagging") {
            Some(doc) => super::tagging::parse_tagging(doc.as_bytes())?,
            None => Vec::new(),
        },
    })
}

/// The additional checksum a form declares: one `x-amz-checksum-<alg>`
/// field (base64, verified against the file) and/or `x-amz-checksum-algorithm`
/// (computed and stored), as PutObject's headers. Two values, a malformed
/// value or an algorithm that differs from the value's are InvalidRequest.
fn form_checksum(fields: &[(String, String)]) -> S3Result<Option<ExpectedChecksum>> {
    if let Some(name) =
        crate::headers::unknown_checksum_name(fields.iter().map(|(k, _)| k.as_str()))
    {
        return Err(S3Error::unsupported_checksum(name));
    }
    let mut found: Option<ExpectedChecksum> = None;
    for alg in ALL_ALGORITHMS {
        let Some((_, v)) = fields.iter().find(|(k, _)| k == alg.header_name()) else {
            continue;
        };
        if found.is_some() {
            return Err(S3Error::invalid_request(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        if alg.decode_value(v).is_none() {
            return Err(S3Error::invalid_request(format!(
                "Value for {} header is invalid.",
                alg.header_name()
            )));
        }
        found = Some(ExpectedChecksum {
            algorithm: alg,
            source: ChecksumSource::Header(v.trim().to_owned()),
        });
    }
    match fields.iter().find(|(k, _)| k == "x-amz-checksum-algorithm") {
        Some((_, name)) => {
            crate::body::with_declared_algorithm(found, "x-amz-checksum-algorithm", name)
        }
        None => Ok(found),
    }
}

pub(super) async fn post_object(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let boundary = req
        .header("content-type")
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(S3Error::post_not_multipart)?;
    let incoming = req.body.take().ok_or_else(S3Error::malformed_post)?;
    let raw: BodyStream = Box::pin(
        HttpBodyStream::new(incoming)
            .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
            .map_err(|e| BodyError::Io(e.to_string())),
    );
    let mut form = multer::Multipart::new(raw, boundary);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut total = 0;
    let file = loop {
        let Some(field) = form
            .next_field()
            .await
            .map_err(|_| S3Error::malformed_post())?
        else {
            return Err(S3Error::post_missing_file());
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            break field;
        }
        let value = field_text(field).await?;
        total += name.len() + value.len();
        if total > MAX_FIELDS_TOTAL {
            return Err(S3Error::invalid_argument("POST form fields are too large"));
        }
        if !fields.iter().any(|(n, _)| *n == name) {
            fields.push((name, value));
        }
    };
    let filename = file.file_name().unwrap_or_default().to_owned();
    let key = fields
        .iter()
        .find(|(n, _)| n == "key")
        .map(|(_, v)| v.replace("${filename}", &filename))
        .ok_or_else(|| {
            S3Error::invalid_argument("Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
                .with("ArgumentName", "key")
                .with("ArgumentValue", "")
        })?;
    if let Some(slot) = fields.iter_mut().find(|(n, _)| n == "key") {
        slot.1 = key.clone();
    }
    let ctx = AuthContext {
        region: gw.region().to_owned(),
        now: time::OffsetDateTime::now_utc(),
    };
    let signer = verify_post_form(&fields, &AccountKeys(gw), &ctx).map_err(S3Error::from)?;
    let principal = match &signer {
        Some(k) => Principal::Account(
            gw.accounts()
                .by_access_key(k)
                .cloned()
                .ok_or_else(|| S3Error::from(CoreError::AccessDenied))?,
        ),
        None => Principal::Anonymous,
    };
    // The form's signer acts, in the environment of the POST request.
    let principal = RequestContext::new(principal, req.principal.env().clone());
    let policy = fields
        .iter()
        .find(|(n, _)| n == "policy")
        .map(|(_, v)| v.clone());
    let range = match policy {
        Some(p) => {
            let doc = B64
                .decode(p.trim())
                .map_err(|_| invalid_policy("Policy is not valid base64."))?;
            check_policy(&doc, &fields, req.bucket(), ctx.now)?
        }
        None if signer.is_some() => {
            return Err(S3Error::invalid_argument(
                "Bucket POST must contain a field named 'policy'.",
            )
            .with("ArgumentName", "policy"))
        }
        None => LengthRange::default(),
    };
    let acl = fields
        .iter()
        .find(|(n, _)| n == "acl")
        .map(|(_, v)| CannedAcl::parse(v.trim()).map(AclRequest::Canned))
        .transpose()?;
    let meta = form_meta(&fields)?;
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let sse = crate::headers::write_encryption(field)?;
    let lock = crate::headers::object_lock(field)?;
    let expect = BodyExpectations {
        checksum: form_checksum(&fields)?,
        ..BodyExpectations::default()
    };
    let count = Arc::new(AtomicU64::new(0));
    let too_large = Arc::new(AtomicBool::new(false));
    let counted = {
        let count = count.clone();
        let too_large = too_large.clone();
        let max = range.max;
        file.map(move |r| {
            let chunk: Bytes = r.map_err(|e| BodyError::Io(e.to_string()))?;
            let total = count.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            if max.is_some_and(|m| total > m) {
                too_large.store(true, Ordering::Relaxed);
                return Err(BodyError::TooLarge);
            }
            Ok(chunk)
        })
    };
    let min = range.min;
    let seen = count.clone();
    let checked = counted.chain(futures_util::stream::once(async move {
        if seen.load(Ordering::Relaxed) < min {
            Err(BodyError::Incomplete)
        } else {
            Ok(Bytes::new())
        }
    }));
    let result = gw
        .put_object(
            &principal,
            PutObjectInput {
                bucket: req.bucket().to_owned(),
                key: key.clone(),
                body: Box::pin(checked),
                expect,
                meta,
                acl,
                location: None,
                sse,
                conditions: WriteConditions::default(),
                lock,
            },
        )
        .await;
    let out = match result {
        Ok(o) => o,
        Err(_) if too_large.load(Ordering::Relaxed) => return Err(S3Error::entity_too_large()),
        Err(CoreError::Body(BodyError::Incomplete)) if count.load(Ordering::Relaxed) < min => {
            return Err(S3Error::entity_too_small())
        }
        Err(e) => return Err(e.into()),
    };
    let etag = format!("\"{}\"", out.etag);
    let bucket = req.bucket().to_owned();
    let location = format!("/{}/{}", bucket, key);
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if let Some(url) = get("success_action_redirect").or_else(|| get("redirect")) {
        if let Ok(mut u) = url.parse::<http::Uri>().map(|u| u.to_string()) {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("bucket", &bucket)
                .append_pair("key", &key)
                .append_pair("etag", &etag)
                .finish();
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str(&q);
            return Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header("location", u)
                .header("etag", &etag)
                .header("content-length", 0)
                .body(body::empty())
                .map_err(S3Error::internal);
        }
    }
    let status = get("success_action_status").unwrap_or_default();
    let mut b = Response::builder()
        .header("etag", &etag)
        .header("location", &location);
    if let Some(s) = sse {
        b = b.header("x-amz-server-side-encryption", s.as_str());
    }
    if let Some(v) = &out.version_id {
        b = b.header("x-amz-version-id", v);
    }
    if let Some(c) = &out.checksum {
        b = b
            .header(c.algorithm.header_name(), &c.value)
            .header("x-amz-checksum-type", c.kind.as_str());
    }
    match status.as_str() {
        "200" => b
            .status(StatusCode::OK)
            .header("content-length", 0)
            .body(body::empty())
            .map_err(S3Error::internal),
        "201" => {
            let mut w = XmlWriter::bare("PostResponse");
            w.elem("Location", &location)
                .elem("Bucket", &bucket)
                .elem("Key", &key)
                .elem("ETag", &etag);
            let doc = w.finish("PostResponse");
            b.status(StatusCode::CREATED)
                .header("content-type", "application/xml")
                .header("content-length", doc.len())
                .body(body::full(doc))
                .map_err(S3Error::internal)
        }
        _ => b
            .status(StatusCode::NO_CONTENT)
            .body(body::empty())
            .map_err(S3Error::internal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn policy_conditions() {
        let now = time::OffsetDateTime::now_utc();
        let doc = br#"{"expiration":"2999-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key","up/"],{"acl":"private"},["content-length-range",1,10],["eq","$Content-Type","text/plain"]]}"#;
        let ok = f(&[
            ("key", "up/a"),
            ("acl", "private"),
            ("content-type", "text/plain"),
            ("policy", "x"),
        ]);
        let r = check_policy(doc, &ok, "b", now).unwrap();
        assert_eq!((r.min, r.max), (1, Some(10)));
        let bad_key = f(&[
            ("key", "down/a"),
            ("acl", "private"),
            ("content-type", "text/plain"),
        ]);
        assert_eq!(
            check_policy(doc, &bad_key, "b", now).unwrap_err().code,
            "AccessDenied"
        );
        let extra = f(&[
            ("key", "up/a"),
            ("acl", "private"),
            ("content-type", "text/plain"),
            ("x-amz-meta-a", "1"),
        ]);
        assert!(check_policy(doc, &extra, "b", now)
            .unwrap_err()
            .message
            .contains("Extra input fields"));
        assert!(check_policy(doc, &ok, "other", now).is_err());
        let expired = br#"{"expiration":"2000-01-01T00:00:00Z","conditions":[]}"#;
        assert!(check_policy(expired, &[], "b", now)
            .unwrap_err()
            .message
            .contains("Policy expired"));
        assert_eq!(
            check_policy(b"{}", &[], "b", now).unwrap_err().code,
            "InvalidPolicyDocument"
        );
        let empty = br#"{"expiration":"2999-01-01T00:00:00Z","conditions":[{}]}"#;
        assert_eq!(
            check_policy(empty, &[], "b", now).unwrap_err().code,
            "InvalidPolicyDocument"
        );
    }
}
