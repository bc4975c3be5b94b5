//! Bucket policies: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy and
//! GetBucketPolicyStatus. The document is JSON, validated and evaluated by
//! `cloudmux_core::policy`; this module only moves it over HTTP.

use cloudmux_core::{CoreError, Gateway};
use http::{Response, StatusCode};

use super::{empty, xml};
use crate::body::{self, ResBody};
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::xml::XmlWriter;

pub(super) async fn put(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let declared = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cloudmux_core::policy::MAX_POLICY_BYTES) {
        return Err(CoreError::PolicyTooLarge.into());
    }
    let body = req.read_small_body().await?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        S3Error::from(CoreError::MalformedPolicy(
            "This policy contains invalid Json".into(),
        ))
    })?;
    gw.put_bucket_policy(&req.principal, req.bucket(), text)
        .await?;
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn get(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let doc = gw.bucket_policy(&req.principal, req.bucket()).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("content-length", doc.len())
        .body(body::full(doc))
        .map_err(S3Error::internal)
}

pub(super) async fn delete(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.delete_bucket_policy(&req.principal, req.bucket())
        .await?;
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn status(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let public = gw
        .bucket_policy_status(&req.principal, req.bucket())
        .await?;
    let mut w = XmlWriter::new("PolicyStatus");
    w.elem("IsPublic", if public { "true" } else { "false" });
    xml(w.finish("PolicyStatus"))
}
