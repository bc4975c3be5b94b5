//! Handlers, grouped by feature. Each takes the gateway and a [`Req`] and
//! returns a response or an [`S3Error`].

mod acl;
mod attributes;
mod bucket;
pub mod cors;
mod encryption;
mod list;
mod lock;
mod multipart;
mod object;
pub(crate) mod ownership;
mod policy;
mod post_object;
mod public_access;
mod tagging;

use cloudmux_core::{Gateway, Principal};
use http::{Response, StatusCode};

use crate::body::{self, ResBody};
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::router::Endpoint;
use crate::xml::XmlWriter;

/// Runs the handler of an operation.
pub async fn dispatch(gw: &Gateway, ep: Endpoint, req: Req) -> S3Result<Response<ResBody>> {
    use Endpoint as E;
    crate::headers::refuse_unknown_checksum_headers(&req)?;
    if req.key.is_some() {
        crate::headers::version_id(&req)?;
    }
    if let (Some(owner), Some(b)) = (
        req.header("x-amz-expected-bucket-owner"),
        req.bucket.as_deref(),
    ) {
        gw.check_expected_owner(b, owner).await?;
    }
    if let (Some(owner), Some(src)) = (
        req.header("x-amz-source-expected-bucket-owner"),
        req.header("x-amz-copy-source"),
    ) {
        if let Ok((b, _)) = crate::headers::parse_copy_source(src) {
            gw.check_expected_owner(&b, owner).await?;
        }
    }
    match ep {
        E::ListBuckets => bucket::list_buckets(gw, req).await,
        E::CreateBucket => bucket::create_bucket(gw, req).await,
        E::HeadBucket => bucket::head_bucket(gw, req).await,
        E::DeleteBucket => bucket::delete_bucket(gw, req).await,
        E::GetBucketLocation => bucket::get_location(gw, req).await,
        E::GetBucketVersioning => bucket::get_versioning(gw, req).await,
        E::PutBucketVersioning => bucket::put_versioning(gw, req).await,
        E::GetBucketConfigNotSet(sub) => bucket::config_not_set(gw, req, sub).await,
        E::GetBucketAcl => acl::get_bucket_acl(gw, req).await,
        E::PutBucketAcl => acl::put_bucket_acl(gw, req).await,
        E::GetObjectAcl => acl::get_object_acl(gw, req).await,
        E::PutObjectAcl => acl::put_object_acl(gw, req).await,
        E::ListObjects => list::list_v1(gw, req).await,
        E::ListObjectsV2 => list::list_v2(gw, req).await,
        E::ListObjectVersions => list::list_versions(gw, req).await,
        E::ListMultipartUploads => list::list_uploads(gw, req).await,
        E::DeleteObjects => object::delete_objects(gw, req).await,
        E::PutObject => object::put_object(gw, req).await,
        E::CopyObject => object::copy_object(gw, req).await,
        E::GetObject => object::get_object(gw, req, false).await,
        E::HeadObject => object::get_object(gw, req, true).await,
        E::GetObjectAttributes => attributes::get_object_attributes(gw, req).await,
        E::DeleteObject => object::delete_object(gw, req).await,
        E::CreateMultipartUpload => multipart::create(gw, req).await,
        E::UploadPart => multipart::upload_part(gw, req).await,
        E::UploadPartCopy => multipart::upload_part_copy(gw, req).await,
        E::CompleteMultipartUpload => multipart::complete(gw, req).await,
        E::AbortMultipartUpload => multipart::abort(gw, req).await,
        E::ListParts => multipart::list_parts(gw, req).await,
        E::PutBucketCors => cors::put_bucket_cors(gw, req).await,
        E::GetBucketCors => cors::get_bucket_cors(gw, req).await,
        E::DeleteBucketCors => cors::delete_bucket_cors(gw, req).await,
        E::PutPublicAccessBlock => public_access::put(gw, req).await,
        E::GetPublicAccessBlock => public_access::get(gw, req).await,
        E::DeletePublicAccessBlock => public_access::delete(gw, req).await,
        E::PutBucketOwnershipControls => ownership::put(gw, req).await,
        E::GetBucketOwnershipControls => ownership::get(gw, req).await,
        E::DeleteBucketOwnershipControls => ownership::delete(gw, req).await,
        E::PutObjectTagging => tagging::put_object_tagging(gw, req).await,
        E::GetObjectTagging => tagging::get_object_tagging(gw, req).await,
        E::DeleteObjectTagging => tagging::delete_object_tagging(gw, req).await,
        E::PutBucketTagging => tagging::put_bucket_tagging(gw, req).await,
        E::GetBucketTagging => tagging::get_bucket_tagging(gw, req).await,
        E::DeleteBucketTagging => tagging::delete_bucket_tagging(gw, req).await,
        E::PutBucketPolicy => policy::put(gw, req).await,
        E::GetBucketPolicy => policy::get(gw, req).await,
        E::DeleteBucketPolicy => policy::delete(gw, req).await,
        E::GetBucketPolicyStatus => policy::status(gw, req).await,
        E::PutBucketEncryption => encryption::put(gw, req).await,
        E::GetBucketEncryption => encryption::get(gw, req).await,
        E::DeleteBucketEncryption => encryption::delete(gw, req).await,
        E::PutObjectLockConfiguration => lock::put_configuration(gw, req).await,
        E::GetObjectLockConfiguration => lock::get_configuration(gw, req).await,
        E::PutObjectRetention => lock::put_retention(gw, req).await,
        E::GetObjectRetention => lock::get_retention(gw, req).await,
        E::PutObjectLegalHold => lock::put_legal_hold(gw, req).await,
        E::GetObjectLegalHold => lock::get_legal_hold(gw, req).await,
        E::PostObject => post_object::post_object(gw, req).await,
        E::CorsPreflight => cors::preflight(gw, req.bucket(), &req.headers).await,
        E::NotImplemented(what) => Err(S3Error::not_implemented(what)),
        E::MethodNotAllowed => Err(S3Error::method_not_allowed()),
    }
}

/// A 200 response with an XML document.
pub(crate) fn xml(doc: String) -> S3Result<Response<ResBody>> {
    xml_status(StatusCode::OK, doc)
}

/// A response with an XML document and a status.
pub(crate) fn xml_status(status: StatusCode, doc: String) -> S3Result<Response<ResBody>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("content-length", doc.len())
        .body(body::full(doc))
        .map_err(S3Error::internal)
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> S3Result<Response<ResBody>> {
    Response::builder()
        .status(status)
        .body(body::empty())
        .map_err(S3Error::internal)
}

/// Writes `<Owner>` (or another element of that shape).
pub(crate) fn owner_elem(w: &mut XmlWriter, gw: &Gateway, elem: &str, id: &str) {
    w.open(elem)
        .elem("ID", id)
        .elem("DisplayName", &gw.accounts().display_name(id))
        .close(elem);
}

/// The account of a signed request, or AccessDenied.
pub(crate) fn signed(p: &Principal) -> S3Result<()> {
    if p.account().is_some() {
        Ok(())
    } else {
        Err(S3Error::from(cloudmux_core::CoreError::AccessDenied))
    }
}

/// Sets a response header whose value came from a request or a record;
/// a value that cannot be a header is left out.
pub(super) fn set_header(resp: &mut Response<ResBody>, name: &'static str, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}
