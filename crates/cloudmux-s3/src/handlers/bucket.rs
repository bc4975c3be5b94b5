//! Bucket handlers.

use cloudmux_core::records::Versioning;
use cloudmux_core::{CreateBucketInput, Gateway};
use http::{Response, StatusCode};

use super::{empty, owner_elem, signed, xml};
use crate::body::{self, ResBody};
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers::{self, iso_date};
use crate::xml::{self as x, XmlWriter};

pub(super) async fn list_buckets(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
    use base64::Engine;
    signed(&req.principal)?;
    let max = match req.query.get("max-buckets") {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    S3Error::invalid_argument(
                        "Argument max-buckets must be an integer between 1 and 10000.",
                    )
                    .with("ArgumentName", "max-buckets")
                    .with("ArgumentValue", v)
                })?,
        ),
    };
    let after = match req.query.get("continuation-token") {
        None => None,
        Some(t) => Some(
            TOKEN
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    S3Error::invalid_argument("The continuation token provided is incorrect")
                })?,
        ),
    };
    let prefix = req.query.get("prefix").unwrap_or("");
    let region_ok = req
        .query
        .get("bucket-region")
        .is_none_or(|r| r == gw.region());
    let buckets = gw.list_buckets(&req.principal).await?;
    let mut page: Vec<_> = buckets
        .iter()
        .filter(|b| region_ok && b.name.starts_with(prefix))
        .filter(|b| after.as_deref().is_none_or(|a| b.name.as_str() > a))
        .collect();
    let next = match max {
        Some(n) if page.len() > n => {
            page.truncate(n);
            page.last().map(|b| TOKEN.encode(&b.name))
        }
        _ => None,
    };
    let me = req.principal.canonical_id().unwrap_or_default();
    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    owner_elem(&mut w, gw, "Owner", me);
    w.open("Buckets");
    for b in &page {
        w.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso_date(b.created_ms))
            .elem("BucketRegion", gw.region())
            .close("Bucket");
    }
    w.close("Buckets");
    if let Some(t) = &next {
        w.elem("ContinuationToken", t);
    }
    if req.query.get("prefix").is_some() {
        w.elem("Prefix", prefix);
    }
    xml(w.finish("ListAllMyBucketsResult"))
}

pub(super) async fn create_bucket(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    signed(&req.principal)?;
    headers::refuse_unsupported_write_headers(&req)?;
    let object_lock = req
        .header("x-amz-bucket-object-lock-enabled")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let acl = super::acl::requested_acl(gw, &req)?;
    let ownership = super::ownership::requested(&req)?;
    let body = req.read_small_body().await?;
    let constraint = x::parse_create_bucket(&body)?;
    let name = req.bucket().to_owned();
    gw.create_bucket_with(
        &req.principal,
        &name,
        CreateBucketInput {
            constraint,
            acl,
            ownership,
            object_lock,
        },
    )
    .await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("location", format!("/{name}"))
        .header("content-length", 0)
        .body(body::empty())
        .map_err(S3Error::internal)
}

pub(super) async fn head_bucket(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.head_bucket(&req.principal, req.bucket()).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", gw.region())
        .body(body::empty())
        .map_err(S3Error::internal)
}

pub(super) async fn delete_bucket(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.delete_bucket(&req.principal, req.bucket()).await?;
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn get_location(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let loc = gw.bucket_location(&req.principal, req.bucket()).await?;
    let mut doc = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    match loc.constraint {
        Some(c) => doc.push_str(&format!(
            "<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
            x::NS,
            quick_xml::escape::escape(c.as_str())
        )),
        None => doc.push_str(&format!("<LocationConstraint xmlns=\"{}\"/>", x::NS)),
    }
    xml(doc)
}

pub(super) async fn get_versioning(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let status = gw.bucket_versioning(&req.principal, req.bucket()).await?;
    let mut w = XmlWriter::new("VersioningConfiguration");
    match status {
        Some(Versioning::Enabled) => {
            w.elem("Status", "Enabled").elem("MfaDelete", "Disabled");
        }
        Some(Versioning::Suspended) => {
            w.elem("Status", "Suspended").elem("MfaDelete", "Disabled");
        }
        None => {}
    }
    xml(w.finish("VersioningConfiguration"))
}

pub(super) async fn put_versioning(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body().await?;
    let doc = x::parse_versioning(&body)?;
    let status = match doc.status.as_deref() {
        None => None,
        Some("Enabled") => Some(Versioning::Enabled),
        Some("Suspended") => Some(Versioning::Suspended),
        Some(_) => return Err(S3Error::malformed_xml()),
    };
    let mfa_delete = match doc.mfa_delete.as_deref() {
        None => None,
        Some("Enabled") => Some(true),
        Some("Disabled") => Some(false),
        Some(_) => return Err(S3Error::malformed_xml()),
    };
    gw.put_bucket_versioning(&req.principal, req.bucket(), status, mfa_delete)
        .await?;
    empty(StatusCode::OK)
}

/// GET of a bucket configuration that cannot be set yet: the bucket must
/// exist and belong to the caller, then S3's "not configured" error.
pub(super) async fn config_not_set(
    gw: &Gateway,
    req: Req,
    sub: &'static str,
) -> S3Result<Response<ResBody>> {
    gw.bucket_location(&req.principal, req.bucket()).await?;
    Err(S3Error::config_not_found(sub, req.bucket()))
}
