//! Default bucket encryption: PutBucketEncryption, GetBucketEncryption,
//! DeleteBucketEncryption. Only SSE-S3 (`AES256`) exists, and only on
//! buckets whose location encrypts at rest (the clouds); the core decides.

use cloudmux_core::{Gateway, ServerSideEncryption};
use http::{Response, StatusCode};
use serde::Deserialize;

use super::{empty, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::xml::{self as x, XmlWriter};

/// `ServerSideEncryptionConfiguration` body.
#[derive(Debug, Deserialize)]
struct ConfigXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

/// One `Rule`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleXml {
    apply_server_side_encryption_by_default: Option<DefaultXml>,
    bucket_key_enabled: Option<bool>,
}

/// `ApplyServerSideEncryptionByDefault`.
#[derive(Debug, Deserialize)]
struct DefaultXml {
    #[serde(rename = "SSEAlgorithm")]
    sse_algorithm: Option<String>,
    #[serde(rename = "KMSMasterKeyID")]
    kms_master_key_id: Option<String>,
}

/// The encryption a configuration document asks for: one rule with
/// `AES256`; SSE-KMS and S3 Bucket Keys are 501 NotImplemented, an unknown
/// algorithm or a missing one MalformedXML, a KMS key with `AES256`
/// InvalidArgument.
fn parse_config(body: &[u8]) -> S3Result<ServerSideEncryption> {
    x::check_root(body, "ServerSideEncryptionConfiguration")?;
    let doc: ConfigXml = x::parse(body)?;
    let [rule] = doc.rules.as_slice() else {
        return Err(S3Error::malformed_xml());
    };
    let Some(default) = &rule.apply_server_side_encryption_by_default else {
        return Err(S3Error::malformed_xml());
    };
    let sse = match default.sse_algorithm.as_deref().map(str::trim) {
        Some("AES256") => ServerSideEncryption::Aes256,
        Some(v @ ("aws:kms" | "aws:kms:dsse")) => {
            return Err(S3Error::not_implemented(&format!("SSEAlgorithm {v}")))
        }
        _ => return Err(S3Error::malformed_xml()),
    };
    if default.kms_master_key_id.is_some() {
        return Err(S3Error::invalid_argument(
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
        )
        .with("ArgumentName", "ApplyServerSideEncryptionByDefault"));
    }
    if rule.bucket_key_enabled == Some(true) {
        return Err(S3Error::not_implemented("BucketKeyEnabled"));
    }
    Ok(sse)
}

pub(super) async fn put(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body().await?;
    let sse = parse_config(&body)?;
    gw.put_bucket_encryption(&req.principal, req.bucket(), sse)
        .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let Some(sse) = gw.bucket_encryption(&req.principal, req.bucket()).await? else {
        return Err(S3Error::config_not_found("encryption", req.bucket()));
    };
    let mut w = XmlWriter::new("ServerSideEncryptionConfiguration");
    w.open("Rule")
        .open("ApplyServerSideEncryptionByDefault")
        .elem("SSEAlgorithm", sse.as_str())
        .close("ApplyServerSideEncryptionByDefault")
        .elem("BucketKeyEnabled", "false")
        .close("Rule");
    xml(w.finish("ServerSideEncryptionConfiguration"))
}

pub(super) async fn delete(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.delete_bucket_encryption(&req.principal, req.bucket())
        .await?;
    empty(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rule: &str) -> String {
        format!("<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule>{rule}</Rule></ServerSideEncryptionConfiguration>")
    }

    #[test]
    fn configuration_documents() {
        let aes = "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault>";
        assert_eq!(
            parse_config(doc(aes).as_bytes()).unwrap(),
            ServerSideEncryption::Aes256
        );
        let code = |rule: &str| parse_config(doc(rule).as_bytes()).unwrap_err().code;
        assert_eq!(
            code("<ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault>"),
            "NotImplemented"
        );
        assert_eq!(
            code("<ApplyServerSideEncryptionByDefault><SSEAlgorithm>DES</SSEAlgorithm></ApplyServerSideEncryptionByDefault>"),
            "MalformedXML"
        );
        assert_eq!(
            code(&format!("{aes}<BucketKeyEnabled>true</BucketKeyEnabled>")),
            "NotImplemented"
        );
        assert_eq!(
            code("<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault>"),
            "InvalidArgument"
        );
        assert_eq!(code(""), "MalformedXML");
    }
}
