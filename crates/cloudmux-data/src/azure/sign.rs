//! Azure Storage request authorization: Shared Key signatures (HMAC-SHA256
//! over the canonical request, as the Blob service defines it) and the
//! reversible encoding of S3 metadata names into Azure metadata names.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The headers that take a fixed slot in the Shared Key string to sign, in
/// order.
const STANDARD: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// The `Authorization` header value for a request.
///
/// `path` is the URL path exactly as sent (percent-encoded), `query` the
/// decoded query parameters, `headers` every header sent with lower-case
/// names. Public for tools and tests that act on a container behind
/// cloudmux's back.
pub fn shared_key(
    account: &str,
    key: &[u8],
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
) -> String {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let mut s = String::with_capacity(256);
    s.push_str(method);
    s.push('\n');
    for h in STANDARD {
        let v = get(h);
        if h == "content-length" && v == "0" {
            s.push('\n');
            continue;
        }
        s.push_str(v);
        s.push('\n');
    }
    let mut ms: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-ms-"))
        .map(|(n, v)| (n.as_str(), v.trim()))
        .collect();
    ms.sort();
    for (n, v) in ms {
        s.push_str(n);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push('/');
    s.push_str(account);
    s.push_str(path);
    let mut q: Vec<(String, &str)> = query
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str()))
        .collect();
    q.sort();
    for (n, v) in q {
        s.push('\n');
        s.push_str(&n);
        s.push(':');
        s.push_str(v);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(s.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("SharedKey {account}:{sig}")
}

/// Prefix of encoded metadata names.
pub const META_PREFIX: &str = "cmx_";

/// Encodes an S3 user-metadata name (lower-case, without `x-amz-meta-`) as an
/// Azure metadata name, which must be a C# identifier
/// (`[A-Za-z_][A-Za-z0-9_]*`, compared case-insensitively).
///
/// The rule: a name made only of ASCII letters and digits that starts with a
/// letter is kept as it is. Any other name becomes `cmx_` followed by the
/// name with every byte outside `[a-z0-9]` written as `_` and two lower-case
/// hex digits (`my-key` → `cmx_my_2dkey`, `a_b` → `cmx_a_5fb`). Kept names
/// never contain `_`, so decoding is unambiguous.
pub fn encode_meta_name(name: &str) -> String {
    let plain = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric());
    if plain {
        return name.to_owned();
    }
    let mut out = String::from(META_PREFIX);
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// Reverses [`encode_meta_name`]; `None` for a name it cannot have made.
pub fn decode_meta_name(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let Some(rest) = name.strip_prefix(META_PREFIX) else {
        return Some(name);
    };
    let mut out = Vec::with_capacity(rest.len());
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = rest.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes a metadata value for an HTTP header: printable ASCII without
/// surrounding spaces is kept; anything else becomes an RFC 2047 encoded word
/// (`=?UTF-8?B?<base64>?=`), as S3 itself reports non-ASCII metadata.
pub fn encode_meta_value(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b)) && value.trim() == value;
    if plain {
        value.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_values_are_header_safe() {
        assert_eq!(encode_meta_value("blue sky"), "blue sky");
        assert_eq!(encode_meta_value("ünï"), "=?UTF-8?B?w7xuw68=?=");
        assert_eq!(encode_meta_value(" x"), "=?UTF-8?B?IHg=?=");
    }

    #[test]
    fn meta_names_round_trip() {
        for n in [
            "color", "my-key", "a_b", "cmx_x", "9lives", "", "ünï", "x.y z",
        ] {
            let e = encode_meta_name(n);
            assert!(
                e.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                    && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{e} is not a C# identifier"
            );
            assert_eq!(decode_meta_name(&e).as_deref(), Some(n), "{n}");
        }
        assert_eq!(encode_meta_name("color"), "color");
        assert_eq!(encode_meta_name("my-key"), "cmx_my_2dkey");
    }

    #[test]
    fn shared_key_matches_the_documented_layout() {
        let auth = shared_key(
            "acct",
            b"key",
            "GET",
            "/c/b",
            &[("comp".into(), "block".into())],
            &[
                ("x-ms-date".into(), "d".into()),
                ("content-length".into(), "0".into()),
            ],
        );
        assert!(auth.starts_with("SharedKey acct:"));
    }
}
