//! S3 Object Ownership: PutBucketOwnershipControls,
//! GetBucketOwnershipControls, DeleteBucketOwnershipControls, and the
//! `x-amz-object-ownership` header of CreateBucket.

use cloudmux_core::records::ObjectOwnership;
use cloudmux_core::Gateway;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::{empty, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::xml::{self as x, XmlWriter};

/// `OwnershipControls` body: exactly one rule.
#[derive(Debug, Deserialize)]
struct OwnershipControlsXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

/// One `Rule`.
#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ObjectOwnership")]
    object_ownership: String,
}

/// Parses a PutBucketOwnershipControls document: `MalformedXML` unless it
/// holds exactly one rule naming a known setting.
pub(crate) fn parse_controls(body: &[u8]) -> S3Result<ObjectOwnership> {
    x::check_root(body, "OwnershipControls")?;
    let doc: OwnershipControlsXml = x::parse(body)?;
    match doc.rules.as_slice() {
        [rule] => {
            ObjectOwnership::parse(rule.object_ownership.trim()).ok_or_else(S3Error::malformed_xml)
        }
        _ => Err(S3Error::malformed_xml()),
    }
}

/// CreateBucket's `x-amz-object-ownership`: `None` when absent,
/// `InvalidArgument` for an unknown value.
pub(crate) fn requested(req: &Req) -> S3Result<Option<ObjectOwnership>> {
    match req.header("x-amz-object-ownership") {
        None => Ok(None),
        Some(v) => ObjectOwnership::parse(v)
            .map(Some)
            .ok_or_else(|| S3Error::invalid_object_ownership(v)),
    }
}

pub(super) async fn put(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body().await?;
    let ownership = parse_controls(&body)?;
    gw.put_bucket_ownership(&req.principal, req.bucket(), ownership)
        .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let Some(o) = gw.bucket_ownership(&req.principal, req.bucket()).await? else {
        return Err(S3Error::no_ownership_controls(req.bucket()));
    };
    let mut w = XmlWriter::new("OwnershipControls");
    w.open("Rule")
        .elem("ObjectOwnership", o.as_str())
        .close("Rule");
    xml(w.finish("OwnershipControls"))
}

pub(super) async fn delete(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.delete_bucket_ownership(&req.principal, req.bucket())
        .await?;
    empty(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_documents() {
        let doc = |inner: &str| {
            format!(
                r#"<OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</OwnershipControls>"#
            )
        };
        let rule = |v: &str| format!("<Rule><ObjectOwnership>{v}</ObjectOwnership></Rule>");
        for o in [
            "BucketOwnerEnforced",
            "BucketOwnerPreferred",
            "ObjectWriter",
        ] {
            let parsed = parse_controls(doc(&rule(o)).as_bytes()).unwrap();
            assert_eq!(parsed.as_str(), o);
        }
        for bad in [
            doc(""),
            doc(&rule("Nobody")),
            doc(&format!("{}{}", rule("ObjectWriter"), rule("ObjectWriter"))),
            doc("<Rule></Rule>"),
            "<Other/>".to_owned(),
            "not xml".to_owned(),
        ] {
            let e = parse_controls(bad.as_bytes()).unwrap_err();
            assert_eq!(e.code, "MalformedXML", "{bad}");
        }
    }
}
