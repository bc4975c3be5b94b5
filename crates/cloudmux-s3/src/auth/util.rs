//! Helpers shared by the signature versions: query scanning, AWS URI
//! encoding, header lookups, timestamps, HMAC.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use http::header::{HeaderName, CONTENT_ENCODING};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::AuthError;

pub(crate) const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
pub(crate) const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
pub(crate) const X_AMZ_TRAILER: HeaderName = HeaderName::from_static("x-amz-trailer");
pub(crate) const X_AMZ_DECODED_CONTENT_LENGTH: HeaderName =
    HeaderName::from_static("x-amz-decoded-content-length");

/// Hex SHA-256 of the empty string.
pub(crate) const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The largest allowed clock difference for header authentication.
pub(crate) const MAX_SKEW: time::Duration = time::Duration::minutes(15);

/// AWS URI encoding: everything but `A-Za-z0-9-_.~` is percent-encoded with
/// uppercase hex.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Like [`AWS_ENCODE`] but keeps `/` (for paths).
const AWS_ENCODE_PATH: &AsciiSet = &AWS_ENCODE.remove(b'/');

/// Which signature mechanisms the query string carries.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct QueryScan {
    pub(crate) v4: bool,
    pub(crate) v2: bool,
}

/// Looks for SigV4 and SigV2 signature parameters in a raw query string.
pub(crate) fn scan_query(raw: &str) -> QueryScan {
    let mut scan = QueryScan::default();
    for (key, _) in query_pairs(raw) {
        match key {
            "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature" | "X-Amz-SignedHeaders" => {
                scan.v4 = true
            }
            "AWSAccessKeyId" | "Signature" => scan.v2 = true,
            _ => {}
        }
    }
    scan
}

/// The raw `(key, value)` pairs of a query string; a parameter without `=`
/// has an empty value. Empty segments (`a&&b`) are skipped.
pub(crate) fn query_pairs(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
}

/// The first value of query parameter `name` (compared raw, since signature
/// parameter names never need encoding), decoded.
pub(crate) fn query_param<'a>(raw: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query_pairs(raw)
        .find(|(key, _)| *key == name)
        .map(|(_, value)| decode_str(value))
}

/// Percent-decodes a query component, reading `+` as a space.
pub(crate) fn decode_bytes(raw: &str) -> Cow<'_, [u8]> {
    if raw.contains('+') {
        let replaced = raw.replace('+', " ");
        Cow::Owned(percent_encoding::percent_decode_str(&replaced).collect())
    } else {
        percent_encoding::percent_decode_str(raw).into()
    }
}

/// [`decode_bytes`] as text (invalid UTF-8 replaced).
pub(crate) fn decode_str(raw: &str) -> Cow<'_, str> {
    match decode_bytes(raw) {
        Cow::Borrowed(bytes) => String::from_utf8_lossy(bytes),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// AWS URI-encodes `bytes` (all of them but `A-Za-z0-9-_.~`).
pub(crate) fn aws_encode(bytes: &[u8]) -> Cow<'_, str> {
    percent_encoding::percent_encode(bytes, AWS_ENCODE).into()
}

/// AWS URI-encodes a decoded path, keeping `/`.
pub(crate) fn aws_encode_path(bytes: &[u8]) -> Cow<'_, str> {
    percent_encoding::percent_encode(bytes, AWS_ENCODE_PATH).into()
}

/// Percent-decodes a path (a `+` stays a `+`).
pub(crate) fn decode_path(raw: &str) -> Cow<'_, [u8]> {
    percent_encoding::percent_decode_str(raw).into()
}

/// The `x-amz-content-sha256` header, if present.
pub(crate) fn content_sha256(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    match headers.get(X_AMZ_CONTENT_SHA256) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| super::invalid_content_sha256()),
    }
}

/// The trailer declared by `x-amz-trailer`, lowercase.
pub(crate) fn trailer_name(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let Some(value) = headers.get(X_AMZ_TRAILER) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidArgument("invalid x-amz-trailer header".into()))?
        .trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.contains(',') {
        return Err(AuthError::InvalidRequest(
            "Only one trailing header is supported in x-amz-trailer".into(),
        ));
    }
    Ok(Some(value.to_ascii_lowercase()))
}

/// `x-amz-decoded-content-length`, if present.
pub(crate) fn decoded_length(headers: &HeaderMap) -> Result<Option<u64>, AuthError> {
    let Some(value) = headers.get(X_AMZ_DECODED_CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            AuthError::InvalidArgument("x-amz-decoded-content-length must be a number".into())
        })
}

/// Whether `Content-Encoding` lists `aws-chunked`.
pub(crate) fn is_aws_chunked(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_ENCODING).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|coding| coding.trim().eq_ignore_ascii_case("aws-chunked"))
        })
    })
}

/// Parses an ISO 8601 basic timestamp, `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_amz_date(value: &str) -> Option<OffsetDateTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(9..11)?).ok()?;
    let minute = u8::try_from(num(11..13)?).ok()?;
    let second = u8::try_from(num(13..15)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Formats a time as RFC 3339 in UTC, e.g. `2013-05-24T00:00:00Z`.
pub(crate) fn format_rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an HTTP `Date` (IMF-fixdate, RFC 850, asctime) or an RFC 2822 date
/// with a numeric zone (`Tue, 27 Mar 2007 19:36:42 +0000`, which SigV2
/// clients send).
pub(crate) fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    if let Ok(t) = httpdate::parse_http_date(value) {
        return Some(OffsetDateTime::from(t));
    }
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lowercase hex of a 32-byte digest, without allocating.
pub(crate) fn hex32(digest: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    hex::encode_to_slice(digest, &mut out).expect("64 bytes hold 32 in hex");
    out
}

/// Constant-time equality of two byte strings (false if lengths differ).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Collapses runs of spaces and trims, as SigV4 canonical headers require.
pub(crate) fn push_trimmed_value(out: &mut Vec<u8>, value: &[u8]) {
    let value = value.trim_ascii();
    if !value.windows(2).any(|w| w == b"  ") {
        out.extend_from_slice(value);
        return;
    }
    let mut previous_space = false;
    for &c in value {
        if c == b' ' {
            if !previous_space {
                out.push(c);
            }
            previous_space = true;
        } else {
            out.push(c);
            previous_space = false;
        }
    }
}
