//! Tagging: PutObjectTagging, GetObjectTagging, DeleteObjectTagging,
//! PutBucketTagging, GetBucketTagging, DeleteBucketTagging, and the `Tagging`
//! document they share with POST Object's `tagging` field.

use cloudmux_core::tagging::Tags;
use cloudmux_core::Gateway;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::{empty, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::xml::{self as x, XmlWriter};

/// `Tagging` body.
#[derive(Debug, Deserialize)]
struct TaggingXml {
    #[serde(rename = "TagSet")]
    tag_set: TagSetXml,
}

/// `TagSet`.
#[derive(Debug, Deserialize)]
struct TagSetXml {
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
}

/// One `Tag`; both elements are required.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagXml {
    key: String,
    value: String,
}

/// Parses a `Tagging` document into its tags, in document order. A document
/// of another shape is MalformedXML; the tag rules are checked by the core.
pub(crate) fn parse_tagging(body: &[u8]) -> S3Result<Tags> {
    x::check_root(body, "Tagging")?;
    let doc: TaggingXml = x::parse(body)?;
    Ok(doc
        .tag_set
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect())
}

/// Writes a `Tagging` document.
fn tagging_doc(tags: &[(String, String)]) -> String {
    let mut w = XmlWriter::new("Tagging");
    w.open("TagSet");
    for (k, v) in tags {
        w.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
    }
    w.close("TagSet");
    w.finish("Tagging")
}

pub(super) async fn put_object_tagging(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body().await?;
    let tags = parse_tagging(&body)?;
    let version = crate::headers::version_id(&req)?;
    let version = gw
        .put_object_tags(
            &req.principal,
            req.bucket(),
            req.key(),
            version.as_deref(),
            tags,
        )
        .await?;
    with_version(empty(StatusCode::OK)?, version)
}

/// Answers the id of the version whose tags a request read or changed, as
/// S3 does.
fn with_version(
    mut resp: Response<ResBody>,
    version: Option<String>,
) -> S3Result<Response<ResBody>> {
    if let Some(v) = version {
        super::set_header(&mut resp, "x-amz-version-id", &v);
    }
    Ok(resp)
}

pub(super) async fn get_object_tagging(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let version = crate::headers::version_id(&req)?;
    let (tags, version) = gw
        .object_tags(&req.principal, req.bucket(), req.key(), version.as_deref())
        .await?;
    with_version(xml(tagging_doc(&tags))?, version)
}

pub(super) async fn delete_object_tagging(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let version = crate::headers::version_id(&req)?;
    let version = gw
        .put_object_tags(
            &req.principal,
            req.bucket(),
            req.key(),
            version.as_deref(),
            Vec::new(),
        )
        .await?;
    with_version(empty(StatusCode::NO_CONTENT)?, version)
}

pub(super) async fn put_bucket_tagging(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body_with_digest().await?;
    let tags = parse_tagging(&body)?;
    gw.put_bucket_tags(&req.principal, req.bucket(), tags)
        .await?;
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn get_bucket_tagging(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    match gw.bucket_tags(&req.principal, req.bucket()).await? {
        Some(tags) => xml(tagging_doc(&tags)),
        None => Err(S3Error::no_such_tag_set(req.bucket())),
    }
}

pub(super) async fn delete_bucket_tagging(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.delete_bucket_tags(&req.principal, req.bucket()).await?;
    empty(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_in_order() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?><Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>b</Key><Value>1 &amp; 2</Value></Tag><Tag><Key>a</Key><Value></Value></Tag></TagSet></Tagging>"#;
        let tags = parse_tagging(doc).unwrap();
        assert_eq!(
            tags,
            vec![
                ("b".to_owned(), "1 & 2".to_owned()),
                ("a".to_owned(), String::new())
            ]
        );
        assert!(parse_tagging(b"<Tagging><TagSet></TagSet></Tagging>")
            .unwrap()
            .is_empty());
        assert!(
            parse_tagging(b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>").is_err()
        );
        assert!(parse_tagging(b"<Tagging></Tagging>").is_err());
        assert!(parse_tagging(b"<Other><TagSet/></Other>").is_err());
        assert!(parse_tagging(b"<Tagging><TagSet>").is_err());
    }

    #[test]
    fn writes_documents() {
        let doc = tagging_doc(&[("k".into(), "a<b".into())]);
        assert!(doc.contains("<TagSet><Tag><Key>k</Key><Value>a&lt;b</Value></Tag></TagSet>"));
        assert!(tagging_doc(&[]).contains("<TagSet></TagSet>"));
    }
}
