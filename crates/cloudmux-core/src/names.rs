//! Bucket-name and key rules.

use crate::{CoreError, Result};

/// Checks a bucket name against AWS's general-purpose bucket naming rules.
pub fn validate_bucket_name(name: &str) -> Result<()> {
    let bad = || Err(CoreError::InvalidBucketName(name.to_owned()));
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return bad();
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
    {
        return bad();
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return bad();
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad();
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad();
    }
    const PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const SUFFIXES: [&str; 4] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3"];
    if PREFIXES.iter().any(|p| name.starts_with(p)) || SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return bad();
    }
    Ok(())
}

/// Maximum key length in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Checks an object key: non-empty, at most 1024 bytes of UTF-8, no NUL.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(CoreError::InvalidArgument(
            "object key must not be empty".into(),
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(CoreError::KeyTooLong);
    }
    if key.contains('\0') {
        return Err(CoreError::InvalidKey(
            "object keys must not contain the NUL character".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.example", "a1b2c3", &"a".repeat(63)] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "MyBucket",
            "my_bucket",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "a.-b",
            "192.168.5.4",
            "xn--abc",
            "abc-s3alias",
            "abc--ol-s3",
            "sthree-abc",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys() {
        assert!(validate_key("a/b/../c").is_ok());
        assert!(matches!(
            validate_key(&"k".repeat(1025)),
            Err(CoreError::KeyTooLong)
        ));
        assert!(validate_key(&"k".repeat(1024)).is_ok());
        assert!(validate_key("a\0b").is_err());
        assert!(validate_key("").is_err());
    }
}
