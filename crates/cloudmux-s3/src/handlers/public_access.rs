//! Block Public Access: PutPublicAccessBlock, GetPublicAccessBlock,
//! DeletePublicAccessBlock on buckets.

use cloudmux_core::records::PublicAccessBlock;
use cloudmux_core::Gateway;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::{empty, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::xml::{self as x, XmlWriter};

/// `PublicAccessBlockConfiguration` body; absent settings are false.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicAccessBlockXml {
    #[serde(default)]
    block_public_acls: bool,
    #[serde(default)]
    ignore_public_acls: bool,
    #[serde(default)]
    block_public_policy: bool,
    #[serde(default)]
    restrict_public_buckets: bool,
}

pub(super) async fn put(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body().await?;
    x::check_root(&body, "PublicAccessBlockConfiguration")?;
    let doc: PublicAccessBlockXml = x::parse(&body)?;
    let pab = PublicAccessBlock {
        block_public_acls: doc.block_public_acls,
        ignore_public_acls: doc.ignore_public_acls,
        block_public_policy: doc.block_public_policy,
        restrict_public_buckets: doc.restrict_public_buckets,
    };
    gw.put_public_access_block(&req.principal, req.bucket(), pab)
        .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let Some(p) = gw.public_access_block(&req.principal, req.bucket()).await? else {
        return Err(S3Error::no_such_public_access_block(req.bucket()));
    };
    let b = |v: bool| if v { "true" } else { "false" };
    let mut w = XmlWriter::new("PublicAccessBlockConfiguration");
    w.elem("BlockPublicAcls", b(p.block_public_acls))
        .elem("IgnorePublicAcls", b(p.ignore_public_acls))
        .elem("BlockPublicPolicy", b(p.block_public_policy))
        .elem("RestrictPublicBuckets", b(p.restrict_public_buckets));
    xml(w.finish("PublicAccessBlockConfiguration"))
}

pub(super) async fn delete(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.delete_public_access_block(&req.principal, req.bucket())
        .await?;
    empty(StatusCode::NO_CONTENT)
}
