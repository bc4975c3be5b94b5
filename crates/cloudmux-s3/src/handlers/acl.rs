//! ACL handlers: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl.

use cloudmux_core::acl::{Acl, Grantee};
use cloudmux_core::Gateway;
use http::{Response, StatusCode};

use super::{empty, owner_elem, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers;
use crate::xml::XmlWriter;

const XSI: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";

fn acl_doc(gw: &Gateway, acl: &Acl) -> String {
    let mut w = XmlWriter::new("AccessControlPolicy");
    owner_elem(&mut w, gw, "Owner", &acl.owner);
    w.open("AccessControlList");
    for g in &acl.grants {
        w.open("Grant");
        match &g.grantee {
            Grantee::Canonical(id) => {
                w.open_attrs("Grantee", &format!("{XSI} xsi:type=\"CanonicalUser\""))
                    .elem("ID", id)
                    .elem("DisplayName", &gw.accounts().display_name(id))
                    .close("Grantee");
            }
            group => {
                w.open_attrs("Grantee", &format!("{XSI} xsi:type=\"Group\""))
                    .elem("URI", group.group_uri().unwrap_or_default())
                    .close("Grantee");
            }
        }
        w.elem("Permission", g.permission.as_str()).close("Grant");
    }
    w.close("AccessControlList");
    w.finish("AccessControlPolicy")
}

/// The canned ACL a Put*Acl request sets. ACL documents and grant headers are
/// not supported yet.
async fn requested_canned(req: &mut Req) -> S3Result<cloudmux_core::acl::CannedAcl> {
    headers::refuse_unsupported_write_headers(req)?;
    let canned = headers::canned_acl(req)?;
    let body = req.read_small_body().await?;
    match (canned, body.iter().all(u8::is_ascii_whitespace)) {
        (Some(c), true) => Ok(c),
        (Some(_), false) => Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "UnexpectedContent",
            "This request does not support content",
        )),
        (None, true) => Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "MissingSecurityHeader",
            "Your request was missing a required header",
        )
        .with("MissingHeaderName", "x-amz-acl")),
        (None, false) => Err(S3Error::not_implemented("AccessControlPolicy documents")),
    }
}

pub(super) async fn get_bucket_acl(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let acl = gw.bucket_acl(&req.principal, req.bucket()).await?;
    xml(acl_doc(gw, &acl))
}

pub(super) async fn put_bucket_acl(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let canned = requested_canned(&mut req).await?;
    gw.put_bucket_acl(&req.principal, req.bucket(), canned)
        .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get_object_acl(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let acl = gw
        .object_acl(&req.principal, req.bucket(), req.key())
        .await?;
    xml(acl_doc(gw, &acl))
}

pub(super) async fn put_object_acl(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let canned = requested_canned(&mut req).await?;
    gw.put_object_acl(&req.principal, req.bucket(), req.key(), canned)
        .await?;
    empty(StatusCode::OK)
}
