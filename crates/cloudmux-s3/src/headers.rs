//! Request headers to core inputs, and object records to response headers.

use std::time::{Duration, UNIX_EPOCH};

use cloudmux_core::acl::CannedAcl;
use cloudmux_core::checksum::{self, ChecksumAlgorithm, ChecksumType, ALL_ALGORITHMS};
use cloudmux_core::lock::LockHeaders;
use cloudmux_core::records::{EntityHeaders, LockMode, ObjectMeta, ObjectRecord};
use cloudmux_core::{RangeSpec, ReadConditions, ServerSideEncryption, WriteConditions};
use http::response::Builder;

use crate::context::Req;
use crate::error::{S3Error, S3Result};

/// Largest total size of user metadata (names and values), as S3 allows.
pub const MAX_USER_METADATA: usize = 2048;

/// Formats ms since the epoch as an HTTP date.
pub fn http_date(ms: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// Formats ms since the epoch as S3's XML timestamp (`2009-10-12T17:50:30.000Z`).
pub fn iso_date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

fn parse_http_date(v: &str) -> Option<i64> {
    httpdate::parse_http_date(v.trim())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

/// The entity headers and user metadata of a write.
pub fn object_meta(req: &Req) -> S3Result<ObjectMeta> {
    let get = |n: &str| req.header(n).map(str::to_owned);
    let content_encoding = req.header("content-encoding").and_then(without_aws_chunked);
    let mut user = Vec::new();
    let mut size = 0;
    for (name, value) in &req.headers {
        if let Some(n) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = header_text(value.as_bytes());
            size += n.len() + v.len();
            user.push((n.to_owned(), v));
        }
    }
    if size > MAX_USER_METADATA {
        return Err(S3Error::metadata_too_large());
    }
    user.sort();
    let storage_class = match req.header("x-amz-storage-class") {
        None => None,
        Some(c) => {
            const CLASSES: [&str; 9] = [
                "STANDARD",
                "REDUCED_REDUNDANCY",
                "STANDARD_IA",
                "ONEZONE_IA",
                "INTELLIGENT_TIERING",
                "GLACIER",
                "DEEP_ARCHIVE",
                "GLACIER_IR",
                "EXPRESS_ONEZONE",
            ];
            if !CLASSES.contains(&c) {
                return Err(S3Error::invalid_storage_class());
            }
            Some(c.to_owned())
        }
    };
    Ok(ObjectMeta {
        headers: EntityHeaders {
            content_type: get("content-type"),
            cache_control: get("cache-control"),
            content_disposition: get("content-disposition"),
            content_encoding,
            content_language: get("content-language"),
            expires: get("expires"),
            website_redirect: get("x-amz-website-redirect-location"),
        },
        user,
        storage_class,
        tags: tagging_header(req)?,
    })
}

/// A `Content-Encoding` as the client sent it, byte for byte, without the
/// `aws-chunked` token (and its comma) that only describes the transfer;
/// `None` when nothing else is left.
pub fn without_aws_chunked(v: &str) -> Option<String> {
    let is_chunked = |t: &str| t.trim().eq_ignore_ascii_case("aws-chunked");
    let kept = if v.split(',').any(is_chunked) {
        v.split(',')
            .filter(|t| !is_chunked(t))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        v.to_owned()
    };
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_owned())
}

/// A header value as text: UTF-8 when its bytes are UTF-8, else ISO-8859-1
/// (HTTP's historical charset, which is what clients such as botocore put
/// on the wire for non-ASCII metadata).
pub fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A user metadata value as S3 returns it: as stored when it is printable
/// US-ASCII, else RFC 2047 encoded (`=?UTF-8?B?...?=`), as Amazon S3 does
/// ("Working with object metadata": values with non US-ASCII characters are
/// "encoded as per RFC 2047 to make them mail-safe before returning").
pub fn metadata_value(v: &str) -> std::borrow::Cow<'_, str> {
    use base64::Engine;
    if v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        std::borrow::Cow::Borrowed(v)
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
        std::borrow::Cow::Owned(format!("=?UTF-8?B?{b64}?="))
    }
}

/// The tags of `x-amz-tagging` (`k1=v1&k2=v2`, URL-encoded); a name given
/// twice is InvalidArgument, as S3 answers. The tag rules are checked by the
/// core.
pub fn tagging_header(req: &Req) -> S3Result<Vec<(String, String)>> {
    let Some(v) = req.headers.get("x-amz-tagging") else {
        return Ok(Vec::new());
    };
    let mut tags: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(v.as_bytes()) {
        if tags.iter().any(|(seen, _)| *seen == k) {
            return Err(S3Error::invalid_tagging_header());
        }
        tags.push((k.into_owned(), v.into_owned()));
    }
    Ok(tags)
}

/// Refuses request features that would otherwise be silently ignored
/// (encryption, as [`write_encryption`] refuses it).
pub fn refuse_unsupported_write_headers(req: &Req) -> S3Result<()> {
    write_encryption(|n| req.header(n)).map(|_| ())
}

/// Parses an ISO 8601 timestamp as S3 sends them (`2030-01-01T00:00:00Z`,
/// with or without fractional seconds, or with an offset): ms since the
/// epoch.
pub fn parse_iso_date(v: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The Object Lock settings of a write (`x-amz-object-lock-mode`,
/// `x-amz-object-lock-retain-until-date`, `x-amz-object-lock-legal-hold`),
/// with `get` reading a header (or a POST form field) by its lower-case
/// name. A value that is not a mode, an ISO 8601 date or `ON`/`OFF` is 400
/// InvalidArgument; the rules between them are the core's.
pub fn object_lock<'a>(get: impl Fn(&str) -> Option<&'a str>) -> S3Result<LockHeaders> {
    let bad = |name: &str, v: &str| S3Error::invalid_lock_header(name, v);
    let mode = match get("x-amz-object-lock-mode") {
        None => None,
        Some(v) => Some(LockMode::parse(v.trim()).ok_or_else(|| bad("x-amz-object-lock-mode", v))?),
    };
    let name = "x-amz-object-lock-retain-until-date";
    let retain_until_ms = match get(name) {
        None => None,
        Some(v) => Some(parse_iso_date(v).ok_or_else(|| bad(name, v))?),
    };
    let legal_hold = match get("x-amz-object-lock-legal-hold").map(str::trim) {
        None => None,
        Some("ON") => Some(true),
        Some("OFF") => Some(false),
        Some(v) => return Err(bad("x-amz-object-lock-legal-hold", v)),
    };
    Ok(LockHeaders {
        mode,
        retain_until_ms,
        legal_hold,
    })
}

/// The SSE-C headers (customer-provided keys), which cloudmux does not
/// implement.
const SSE_C: [&str; 3] = [
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
];

/// The SSE-C headers of a copy's source.
const SSE_C_SOURCE: [&str; 3] = [
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];

/// Refuses SSE-C (`x-amz-server-side-encryption-customer-*`, and
/// `x-amz-copy-source-server-side-encryption-customer-*`) with 501
/// NotImplemented naming the header: on reads (GET, HEAD), UploadPart and
/// UploadPartCopy, where no other encryption header applies.
pub fn refuse_sse_c<'a>(get: impl Fn(&str) -> Option<&'a str>) -> S3Result<()> {
    match SSE_C.iter().chain(&SSE_C_SOURCE).find(|h| get(h).is_some()) {
        Some(h) => Err(S3Error::not_implemented(h)),
        None => Ok(()),
    }
}

/// The server-side encryption a write asks for, with `get` reading a header
/// (or a POST form field) by its lower-case name. SSE-C and SSE-KMS
/// (`aws:kms`, `aws:kms:dsse`, a KMS key id, an encryption context, an S3
/// Bucket Key) are 501 NotImplemented naming the header; a value of
/// `x-amz-server-side-encryption` S3 does not know is 400 InvalidArgument.
/// `AES256` is returned for the core to accept only where the data is
/// encrypted at rest.
pub fn write_encryption<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> S3Result<Option<ServerSideEncryption>> {
    refuse_sse_c(&get)?;
    for h in [
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-context",
    ] {
        if get(h).is_some() {
            return Err(S3Error::not_implemented(h));
        }
    }
    if get("x-amz-server-side-encryption-bucket-key-enabled")
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("false"))
    {
        return Err(S3Error::not_implemented(
            "x-amz-server-side-encryption-bucket-key-enabled",
        ));
    }
    match get("x-amz-server-side-encryption").map(str::trim) {
        None => Ok(None),
        Some("AES256") => Ok(Some(ServerSideEncryption::Aes256)),
        Some(v @ ("aws:kms" | "aws:kms:dsse")) => Err(S3Error::not_implemented(&format!(
            "x-amz-server-side-encryption: {v}"
        ))),
        Some(v) => Err(S3Error::invalid_encryption_method(
            "x-amz-server-side-encryption",
            v,
        )),
    }
}

/// The canned ACL of `x-amz-acl`.
pub fn canned_acl(req: &Req) -> S3Result<Option<CannedAcl>> {
    req.header("x-amz-acl")
        .map(|v| CannedAcl::parse(v.trim()).map_err(S3Error::from))
        .transpose()
}

/// The per-object placement header (Zenko-compatible).
pub fn placement(req: &Req) -> Option<String> {
    req.header("x-amz-meta-scal-location-constraint")
        .map(str::to_owned)
}

/// GET/HEAD conditions, or the `x-amz-copy-source-if-*` ones with `prefix`.
pub fn read_conditions(req: &Req, prefix: &str) -> ReadConditions {
    let h = |n: &str| req.header(&format!("{prefix}{n}")).map(str::to_owned);
    ReadConditions {
        if_match: h("if-match"),
        if_none_match: h("if-none-match"),
        if_modified_since: h("if-modified-since").as_deref().and_then(parse_http_date),
        if_unmodified_since: h("if-unmodified-since")
            .as_deref()
            .and_then(parse_http_date),
    }
}

/// Conditional-write headers.
pub fn write_conditions(req: &Req) -> WriteConditions {
    WriteConditions {
        if_match: req.header("if-match").map(str::to_owned),
        if_none_match: req.header("if-none-match").map(str::to_owned),
    }
}

/// Parses a `Range` header; syntactically invalid or multi-range values are
/// ignored as S3 does.
pub fn parse_range(v: &str) -> Option<RangeSpec> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return b.parse().ok().map(RangeSpec::Suffix);
    }
    let first: u64 = a.parse().ok()?;
    if b.is_empty() {
        return Some(RangeSpec::FromTo(first, None));
    }
    let last: u64 = b.parse().ok()?;
    (last >= first).then_some(RangeSpec::FromTo(first, Some(last)))
}

/// Parses `x-amz-copy-source-range` (`bytes=first-last`, both given,
/// `first <= last`); anything else is 400 InvalidArgument, as S3 answers.
pub fn parse_copy_range(v: &str) -> S3Result<(u64, u64)> {
    let bad = || S3Error::invalid_copy_range(v);
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return Err(bad());
    }
    let first: u64 = a.parse().map_err(|_| bad())?;
    let last: u64 = b.parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    Ok((first, last))
}

/// Parses a `partNumber` query argument: an integer from 1 to 10000, else
/// 400 InvalidArgument naming it.
pub fn parse_part_number(v: &str) -> S3Result<u32> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| S3Error::invalid_part_number(v))
}

/// Parses `x-amz-copy-source` (`bucket/key` or `/bucket/key`, URL-encoded,
/// optionally `?versionId=`): the bucket and key.
pub fn parse_copy_source(v: &str) -> S3Result<(String, String)> {
    parse_copy_source_version(v).map(|(b, k, _)| (b, k))
}

/// Parses `x-amz-copy-source` with its optional `?versionId=`: the bucket,
/// the key and the version.
pub fn parse_copy_source_version(v: &str) -> S3Result<(String, String, Option<String>)> {
    let bad = || {
        S3Error::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    let (path, query) = v.split_once('?').unwrap_or((v, ""));
    let mut version_id = None;
    if let Some(version) = query.strip_prefix("versionId=") {
        let version = percent_encoding::percent_decode_str(version).decode_utf8_lossy();
        if !cloudmux_core::versions::is_version_id(&version) {
            return Err(S3Error::invalid_version_id(&version));
        }
        version_id = Some(version.into_owned());
    }
    let decoded = percent_encoding::percent_decode_str(path.trim_start_matches('/'))
        .decode_utf8()
        .map_err(|_| bad())?;
    let (bucket, key) = decoded.split_once('/').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok((bucket.to_owned(), key.to_owned(), version_id))
}

/// The `versionId` query parameter, checked: `null` or an id cloudmux
/// hands out, else 400 InvalidArgument.
pub fn version_id(req: &crate::context::Req) -> S3Result<Option<String>> {
    match req.query.get("versionId") {
        None => Ok(None),
        Some(v) if cloudmux_core::versions::is_version_id(v) => Ok(Some(v.to_owned())),
        Some(v) => Err(S3Error::invalid_version_id(v)),
    }
}

/// Adds the headers describing a stored object (GET, HEAD), naming
/// `version_id` in `x-amz-version-id`.
pub fn object_headers(
    mut b: Builder,
    rec: &ObjectRecord,
    version_id: Option<&str>,
    checksum_mode: bool,
    whole: bool,
) -> Builder {
    let h = &rec.meta.headers;
    if let Some(id) = version_id {
        b = b.header("x-amz-version-id", id);
    }
    b = b
        .header("last-modified", http_date(rec.last_modified_ms))
        .header("etag", format!("\"{}\"", rec.etag))
        .header("accept-ranges", "bytes")
        .header(
            "content-type",
            h.content_type.as_deref().unwrap_or("binary/octet-stream"),
        );
    for (name, value) in [
        ("cache-control", &h.cache_control),
        ("content-disposition", &h.content_disposition),
        ("content-encoding", &h.content_encoding),
        ("content-language", &h.content_language),
        ("expires", &h.expires),
        ("x-amz-website-redirect-location", &h.website_redirect),
    ] {
        if let Some(v) = value {
            b = b.header(name, v);
        }
    }
    for (k, v) in &rec.meta.user {
        b = b.header(format!("x-amz-meta-{k}"), metadata_value(v).as_ref());
    }
    if !rec.meta.tags.is_empty() {
        b = b.header("x-amz-tagging-count", rec.meta.tags.len());
    }
    if let Some(r) = &rec.version.retention {
        b = b
            .header("x-amz-object-lock-mode", r.mode.as_str())
            .header("x-amz-object-lock-retain-until-date", iso_date(r.until_ms));
    }
    if rec.version.legal_hold {
        b = b.header("x-amz-object-lock-legal-hold", "ON");
    }
    if let Some(sc) = rec
        .meta
        .storage_class
        .as_deref()
        .filter(|s| *s != "STANDARD")
    {
        b = b.header("x-amz-storage-class", sc);
    }
    if checksum_mode && whole {
        b = checksum_headers(b, rec);
    }
    b
}

/// The object's checksum headers (`x-amz-checksum-*`, with a composite
/// checksum as `<base64>-N`, and `x-amz-checksum-type`).
pub fn checksum_headers(mut b: Builder, rec: &ObjectRecord) -> Builder {
    if let Some(c) = &rec.checksum {
        b = b
            .header(c.algorithm.header_name(), &c.value)
            .header("x-amz-checksum-type", c.kind.as_str());
    }
    b
}

/// The checksum headers of a `partNumber` GET or HEAD of a multipart object
/// (with `x-amz-checksum-mode: ENABLED`): the part's own checksum, which
/// only a composite object keeps in a form that covers the part's bytes.
pub fn part_checksum_headers(mut b: Builder, rec: &ObjectRecord, part_number: u32) -> Builder {
    let Some(c) = rec
        .checksum
        .as_ref()
        .filter(|c| c.kind == ChecksumType::Composite)
    else {
        return b;
    };
    let raw = rec
        .parts
        .get(part_number as usize - 1)
        .and_then(|p| p.checksum.as_deref());
    if let Some(raw) = raw {
        b = b
            .header(c.algorithm.header_name(), checksum::b64(raw))
            .header("x-amz-checksum-type", c.kind.as_str());
    }
    b
}

/// The `x-amz-checksum-*` names that are not a checksum value: the
/// algorithm of CreateMultipartUpload and CopyObject, the multipart type,
/// and GET/HEAD's checksum mode.
const CHECKSUM_NON_VALUES: [&str; 3] = [
    "x-amz-checksum-algorithm",
    "x-amz-checksum-type",
    "x-amz-checksum-mode",
];

/// The first name (a header or form field, any case) that looks like an
/// `x-amz-checksum-<alg>` value of an algorithm cloudmux does not implement.
pub fn unknown_checksum_name<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names.into_iter().find(|n| {
        let lower = n.to_ascii_lowercase();
        lower.starts_with("x-amz-checksum-")
            && !CHECKSUM_NON_VALUES.contains(&lower.as_str())
            && !ALL_ALGORITHMS.iter().any(|a| a.header_name() == lower)
    })
}

/// Refuses a request carrying an `x-amz-checksum-*` header of an algorithm
/// cloudmux does not implement (the 2025 additions SHA512, MD5, XXHASH64,
/// XXHASH3 and XXHASH128, or any unknown name) with 400 InvalidRequest
/// naming the header, on every operation: such a checksum is never
/// silently ignored.
pub fn refuse_unknown_checksum_headers(req: &Req) -> S3Result<()> {
    match unknown_checksum_name(req.headers.keys().map(|k| k.as_str())) {
        Some(name) => Err(S3Error::unsupported_checksum(name)),
        None => Ok(()),
    }
}

/// Parses `x-amz-checksum-type` (`COMPOSITE` or `FULL_OBJECT`).
pub fn checksum_type(req: &Req) -> S3Result<Option<ChecksumType>> {
    match req.header("x-amz-checksum-type") {
        None => Ok(None),
        Some(t) if t.eq_ignore_ascii_case("FULL_OBJECT") => Ok(Some(ChecksumType::FullObject)),
        Some(t) if t.eq_ignore_ascii_case("COMPOSITE") => Ok(Some(ChecksumType::Composite)),
        Some(_) => Err(S3Error::invalid_request(
            "Value for x-amz-checksum-type header is invalid.",
        )),
    }
}

/// The object checksum CompleteMultipartUpload may carry in one
/// `x-amz-checksum-*` header: a checksum of the algorithm's length, with the
/// `-N` part count of a composite checksum allowed. Two such headers, or a
/// malformed value, are InvalidRequest.
pub fn complete_checksum(req: &Req) -> S3Result<Option<(ChecksumAlgorithm, String)>> {
    let mut found = None;
    for alg in ALL_ALGORITHMS {
        let Some(v) = req.header(alg.header_name()) else {
            continue;
        };
        if found.is_some() {
            return Err(S3Error::invalid_request(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        let value = v.trim();
        let digest = match value.rsplit_once('-') {
            Some((d, n)) if n.parse::<u32>().is_ok_and(|n| n > 0) => d,
            _ => value,
        };
        if alg.decode_value(digest).is_none() {
            return Err(S3Error::invalid_request(format!(
                "Value for {} header is invalid.",
                alg.header_name()
            )));
        }
        found = Some((alg, value.to_owned()));
    }
    Ok(found)
}

/// The `response-*` query parameters of GetObject and the headers they set.
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// Refuses `response-*` overrides on an anonymous request, as S3 does
/// (400 InvalidRequest, GetObject reference).
pub fn refuse_anonymous_overrides(req: &Req) -> S3Result<()> {
    let anonymous = req.principal.principal().account().is_none();
    if anonymous && RESPONSE_OVERRIDES.iter().any(|(p, _)| req.query.has(p)) {
        return Err(S3Error::anonymous_response_overrides());
    }
    Ok(())
}

/// Applies the `response-*` query overrides of GetObject.
pub fn response_overrides(mut b: Builder, req: &Req) -> Builder {
    for (param, header) in RESPONSE_OVERRIDES {
        if let Some(v) = req.query.get(param) {
            if let Some(hs) = b.headers_mut() {
                if let Ok(v) = http::HeaderValue::from_str(v) {
                    hs.insert(header, v);
                }
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(RangeSpec::FromTo(0, Some(9)))
        );
        assert_eq!(parse_range("bytes=-5"), Some(RangeSpec::Suffix(5)));
        assert_eq!(parse_range("bytes=10-"), Some(RangeSpec::FromTo(10, None)));
        assert_eq!(parse_range("bytes=9-1"), None);
        assert_eq!(parse_range("bytes=0-1,3-4"), None);
        assert_eq!(parse_range("items=0-1"), None);
    }

    #[test]
    fn copy_source() {
        assert_eq!(
            parse_copy_source("/b/a%20b/c").unwrap(),
            ("b".to_owned(), "a b/c".to_owned())
        );
        assert_eq!(parse_copy_source("b/k?versionId=null").unwrap().1, "k");
        assert!(parse_copy_source("b").is_err());
        let e = parse_copy_source("b/k?versionId=abc").unwrap_err();
        let id = format!("{:016x}{}", 7u64, "0123456789abcdef");
        let (_, _, v) = parse_copy_source_version(&format!("b/k?versionId={id}")).unwrap();
        assert_eq!(v.as_deref(), Some(id.as_str()));
        assert_eq!((e.status.as_u16(), e.code), (400, "InvalidArgument"));
    }

    #[test]
    fn content_encoding_keeps_the_client_bytes() {
        for (sent, kept) in [
            ("gzip", Some("gzip")),
            ("aws-chunked,gzip", Some("gzip")),
            ("gzip, aws-chunked", Some("gzip")),
            ("AWS-Chunked", None),
            ("aws-chunked", None),
            ("gzip,  br", Some("gzip,  br")),
            ("gzip, aws-chunked, br", Some("gzip, br")),
            ("x-custom;q=1", Some("x-custom;q=1")),
        ] {
            assert_eq!(without_aws_chunked(sent).as_deref(), kept, "{sent}");
        }
    }

    #[test]
    fn metadata_values_follow_rfc_2047() {
        assert_eq!(metadata_value("plain ascii"), "plain ascii");
        assert_eq!(metadata_value("caf\u{e9}"), "=?UTF-8?B?Y2Fmw6k=?=");
        assert_eq!(metadata_value("a\u{1}b"), "=?UTF-8?B?YQFi?=");
        assert_eq!(metadata_value("=?UTF-8?B?w6k=?="), "=?UTF-8?B?w6k=?=");
        assert_eq!(header_text("café".as_bytes()), "café");
        assert_eq!(header_text(b"caf\xe9"), "café");
    }

    #[test]
    fn lock_headers() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            object_lock(move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
        };
        assert_eq!(h(&[]).unwrap(), LockHeaders::default());
        let all = h(&[
            ("x-amz-object-lock-mode", "COMPLIANCE"),
            (
                "x-amz-object-lock-retain-until-date",
                "2030-01-01T00:00:00.250Z",
            ),
            ("x-amz-object-lock-legal-hold", "ON"),
        ])
        .unwrap();
        assert_eq!(all.mode, Some(LockMode::Compliance));
        assert_eq!(all.retain_until_ms, Some(1_893_456_000_250));
        assert_eq!(all.legal_hold, Some(true));
        for bad in [
            &[("x-amz-object-lock-mode", "compliance")][..],
            &[("x-amz-object-lock-retain-until-date", "2030-01-01")][..],
            &[("x-amz-object-lock-legal-hold", "on")][..],
        ] {
            let e = h(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "InvalidArgument"));
        }
        assert_eq!(
            parse_iso_date("2030-01-01T01:00:00+01:00"),
            Some(1_893_456_000_000)
        );
    }

    #[test]
    fn dates() {
        assert_eq!(iso_date(1_255_369_830_000), "2009-10-12T17:50:30.000Z");
        assert_eq!(
            http_date(1_255_369_830_000),
            "Mon, 12 Oct 2009 17:50:30 GMT"
        );
    }
}
