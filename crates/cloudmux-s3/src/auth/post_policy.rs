//! Signatures of browser-based uploads (POST Object): the form carries a
//! base64 policy document and its signature, SigV4 (`x-amz-algorithm`,
//! `x-amz-credential`, `x-amz-date`, `x-amz-signature`) or SigV2
//! (`AWSAccessKeyId`, `signature`). The policy's conditions are checked by the
//! POST Object handler; this module only says who signed it.

use super::{sigv2, sigv4, util, AuthContext, AuthError, Credentials, SignatureMismatch};

/// A form field value by lower-cased name.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn mismatch(access_key: &str, provided: &str, policy: &str) -> AuthError {
    AuthError::SignatureDoesNotMatch(Box::new(SignatureMismatch {
        access_key: access_key.to_owned(),
        signature_provided: provided.to_owned(),
        string_to_sign: policy.to_owned(),
        canonical_request: None,
    }))
}

/// Verifies the signature of a POST form whose field names are lower-cased.
/// Returns the signer's access key, or `None` for an unsigned (anonymous)
/// form.
pub fn verify_post_form(
    fields: &[(String, String)],
    creds: &dyn Credentials,
    ctx: &AuthContext,
) -> Result<Option<String>, AuthError> {
    let policy = field(fields, "policy");
    if let Some(signature) = field(fields, "x-amz-signature") {
        let algorithm = field(fields, "x-amz-algorithm").unwrap_or_default();
        if algorithm != "AWS4-HMAC-SHA256" {
            return Err(AuthError::InvalidArgument(format!(
                "Unsupported x-amz-algorithm: {algorithm}"
            )));
        }
        let credential = field(fields, "x-amz-credential").ok_or_else(|| {
            AuthError::InvalidArgument("POST requires the x-amz-credential field".into())
        })?;
        let policy = policy.ok_or_else(|| {
            AuthError::InvalidArgument("POST requires the policy field with x-amz-signature".into())
        })?;
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key, date, region, "s3", "aws4_request"] = parts.as_slice() else {
            return Err(AuthError::InvalidArgument(format!(
                "Invalid credential: {credential}"
            )));
        };
        if *region != ctx.region {
            return Err(AuthError::InvalidArgument(format!(
                "Invalid credential region {region}, expecting {}",
                ctx.region
            )));
        }
        let secret = creds
            .secret_for(access_key)
            .ok_or_else(|| AuthError::InvalidAccessKeyId {
                access_key: (*access_key).to_owned(),
            })?;
        let key = sigv4::signing_key(&secret, date, region);
        let expected = util::hex32(&util::hmac_sha256(&key, &[policy.as_bytes()]));
        if !util::ct_eq(&expected, signature.to_ascii_lowercase().as_bytes()) {
            return Err(mismatch(access_key, signature, policy));
        }
        return Ok(Some((*access_key).to_owned()));
    }
    if let Some(access_key) = field(fields, "awsaccesskeyid") {
        let signature = field(fields, "signature").ok_or_else(|| {
            AuthError::InvalidArgument("POST requires the signature field".into())
        })?;
        let policy = policy.ok_or_else(|| {
            AuthError::InvalidArgument("POST requires the policy field with a signature".into())
        })?;
        let secret = creds
            .secret_for(access_key)
            .ok_or_else(|| AuthError::InvalidAccessKeyId {
                access_key: access_key.to_owned(),
            })?;
        let expected = sigv2::sign(&secret, policy);
        if !util::ct_eq(expected.as_bytes(), signature.as_bytes()) {
            return Err(mismatch(access_key, signature, policy));
        }
        return Ok(Some(access_key.to_owned()));
    }
    if field(fields, "x-amz-credential").is_some() || field(fields, "signature").is_some() {
        return Err(AuthError::InvalidArgument(
            "POST form signature fields are incomplete".into(),
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::Keys;

    fn ctx() -> AuthContext {
        AuthContext {
            region: "us-east-1".into(),
            now: time::OffsetDateTime::now_utc(),
        }
    }

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn v2_and_v4_forms() {
        let secret = Keys.secret_for("AKIAIOSFODNN7EXAMPLE").unwrap();
        let policy = "eyJleHBpcmF0aW9uIjoiMjAzMC0wMS0wMVQwMDowMDowMFoiLCJjb25kaXRpb25zIjpbXX0=";
        let v2 = sigv2::sign(&secret, policy);
        let ok = f(&[
            ("awsaccesskeyid", "AKIAIOSFODNN7EXAMPLE"),
            ("policy", policy),
            ("signature", &v2),
        ]);
        assert_eq!(
            verify_post_form(&ok, &Keys, &ctx()).unwrap().as_deref(),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        let bad = f(&[
            ("awsaccesskeyid", "AKIAIOSFODNN7EXAMPLE"),
            ("policy", policy),
            ("signature", "AAAA"),
        ]);
        assert!(matches!(
            verify_post_form(&bad, &Keys, &ctx()),
            Err(AuthError::SignatureDoesNotMatch(_))
        ));
        let key = sigv4::signing_key(&secret, "20300101", "us-east-1");
        let sig =
            String::from_utf8(util::hex32(&util::hmac_sha256(&key, &[policy.as_bytes()])).to_vec())
                .unwrap();
        let v4 = f(&[
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            (
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20300101/us-east-1/s3/aws4_request",
            ),
            ("policy", policy),
            ("x-amz-signature", &sig),
        ]);
        assert!(verify_post_form(&v4, &Keys, &ctx()).unwrap().is_some());
        assert_eq!(
            verify_post_form(&f(&[("key", "k")]), &Keys, &ctx()).unwrap(),
            None
        );
    }
}
