//! A compact AWS Signature Version 4 signer for S3 requests.
//!
//! The signing key (`HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
//! "s3"), "aws4_request")`) is derived once, when the [`Signer`] is made; each
//! request then costs one SHA-256 of the canonical request and one HMAC of the
//! string to sign. Only a run that crosses midnight UTC derives a second key.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// The payload hash that tells the server the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string: the payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Characters that stay unencoded in SigV4: `A-Za-z0-9-._~`.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// As [`QUERY`], and `/` is kept: the S3 canonical URI encodes path segments once.
const PATH: &AsciiSet = &QUERY.remove(b'/');

/// URI-encodes a query-string name or value the way SigV4 wants it.
pub fn encode_query(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

/// URI-encodes an object path (`/bucket/key`), keeping `/`.
pub fn encode_path(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Hex SHA-256 of `data` (for a pre-computed payload hash).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A request time in the two forms SigV4 uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmzDate {
    /// `YYYYMMDDTHHMMSSZ`, the `x-amz-date` header.
    pub long: String,
}

impl AmzDate {
    /// The current time.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    /// The time `secs` seconds after the Unix epoch.
    pub fn from_unix(secs: u64) -> Self {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        AmzDate {
            long: format!(
                "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            ),
        }
    }

    /// `YYYYMMDD`, the date of the credential scope.
    pub fn day(&self) -> &str {
        &self.long[..8]
    }
}

/// Signs S3 requests for one access key and region.
pub struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    day: String,
    key: [u8; 32],
}

impl Signer {
    /// A signer whose signing key is derived now, for today's date.
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Self {
        let today = AmzDate::now();
        let mut s = Signer {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            day: today.day().to_owned(),
            key: [0; 32],
        };
        s.key = s.derive(&s.day);
        s
    }

    fn derive(&self, day: &str) -> [u8; 32] {
        let k = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            day.as_bytes(),
        );
        let k = hmac(&k, self.region.as_bytes());
        let k = hmac(&k, b"s3");
        hmac(&k, b"aws4_request")
    }

    /// The `Authorization` header value for one request.
    ///
    /// `path` is the already-encoded canonical URI, `query` the canonical
    /// query string (encoded, sorted by name), `headers` the signed headers
    /// as lowercase names sorted by name with trimmed values; they must
    /// include `host`, `x-amz-content-sha256` and `x-amz-date`, and
    /// `payload_hash` is the value of `x-amz-content-sha256`.
    pub fn authorization(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        payload_hash: &str,
        date: &AmzDate,
    ) -> String {
        let mut creq = String::with_capacity(256);
        for part in [method, "\n", path, "\n", query, "\n"] {
            creq.push_str(part);
        }
        let mut names = String::with_capacity(64);
        for (i, (name, value)) in headers.iter().enumerate() {
            creq.push_str(name);
            creq.push(':');
            creq.push_str(value);
            creq.push('\n');
            if i > 0 {
                names.push(';');
            }
            names.push_str(name);
        }
        creq.push('\n');
        creq.push_str(&names);
        creq.push('\n');
        creq.push_str(payload_hash);

        let day = date.day();
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let sts = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            date.long,
            sha256_hex(creq.as_bytes())
        );
        let sig = if day == self.day {
            hmac(&self.key, sts.as_bytes())
        } else {
            hmac(&self.derive(day), sts.as_bytes())
        };
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={}",
            self.access_key,
            hex::encode(sig)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GetObject example of the AWS "Signature Calculations for the
    /// Authorization Header" documentation.
    #[test]
    fn aws_documented_get_object_example() {
        let mut s = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        s.day = "20130524".into();
        s.key = s.derive("20130524");
        let date = AmzDate::from_unix(1_369_353_600);
        assert_eq!(date.long, "20130524T000000Z");
        let auth = s.authorization(
            "GET",
            "/test.txt",
            "",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", &date.long),
            ],
            EMPTY_SHA256,
            &date,
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn dates_and_encoding() {
        assert_eq!(AmzDate::from_unix(0).long, "19700101T000000Z");
        assert_eq!(AmzDate::from_unix(951_782_400).long, "20000229T000000Z");
        assert_eq!(AmzDate::from_unix(4_102_444_799).long, "20991231T235959Z");
        assert_eq!(encode_query("a b/c=d~"), "a%20b%2Fc%3Dd~");
        assert_eq!(encode_path("/b/k 1/x+y"), "/b/k%201/x%2By");
    }
}
