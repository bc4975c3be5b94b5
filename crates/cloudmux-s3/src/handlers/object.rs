//! Object handlers: put, get, head, delete, copy, delete-multiple.

use cloudmux_core::checksum::ChecksumAlgorithm;
use cloudmux_core::{
    CopyObjectInput, CoreError, DeleteInput, Gateway, GetObjectInput, PutObjectInput,
};
use http::{Response, StatusCode};

use super::{empty, xml};
use crate::body::{self, ResBody};
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers::{self, http_date, iso_date};
use crate::xml::{self as x, XmlWriter};

/// Checks the request is a well-formed upload: it declares its length, in
/// `Content-Length` or, for an aws-chunked body (which may itself travel
/// with `Transfer-Encoding: chunked`), in `x-amz-decoded-content-length`.
/// A plain `Transfer-Encoding: chunked` body of unknown length is 411
/// MissingContentLength, as S3 answers it (s3-tests
/// `test_object_create_bad_contentlength_none`).
pub(super) fn require_length(req: &Req) -> S3Result<()> {
    if req.headers.contains_key("content-length")
        || req.headers.contains_key("x-amz-decoded-content-length")
    {
        Ok(())
    } else {
        Err(S3Error::missing_content_length())
    }
}

pub(super) async fn put_object(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    headers::refuse_unsupported_write_headers(&req)?;
    let sse = headers::write_encryption(|n| req.header(n))?;
    require_length(&req)?;
    let meta = headers::object_meta(&req)?;
    let acl = super::acl::requested_acl(gw, &req)?;
    let lock = headers::object_lock(|n| req.header(n))?;
    let (stream, expect) = body::request_stream(&mut req)?;
    let out = gw
        .put_object(
            &req.principal,
            PutObjectInput {
                bucket: req.bucket().to_owned(),
                key: req.key().to_owned(),
                body: stream,
                expect,
                meta,
                acl,
                location: headers::placement(&req),
                sse,
                conditions: headers::write_conditions(&req),
                lock,
            },
        )
        .await?;
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("etag", format!("\"{}\"", out.etag))
        .header("content-length", 0);
    if let Some(s) = sse {
        b = b.header("x-amz-server-side-encryption", s.as_str());
    }
    if let Some(v) = &out.version_id {
        b = b.header("x-amz-version-id", v);
    }
    if let Some(c) = &out.checksum {
        b = b
            .header(c.algorithm.header_name(), &c.value)
            .header("x-amz-checksum-type", c.kind.as_str());
    }
    b.body(body::empty()).map_err(S3Error::internal)
}

pub(super) async fn get_object(gw: &Gateway, req: Req, head: bool) -> S3Result<Response<ResBody>> {
    headers::refuse_sse_c(|n| req.header(n))?;
    if !head {
        headers::refuse_anonymous_overrides(&req)?;
    }
    let part_number = req
        .query
        .get("partNumber")
        .map(headers::parse_part_number)
        .transpose()?;
    let range = req.header("range").and_then(headers::parse_range);
    let input = GetObjectInput {
        bucket: req.bucket().to_owned(),
        key: req.key().to_owned(),
        range,
        part_number,
        conditions: headers::read_conditions(&req, ""),
        head,
        version_id: headers::version_id(&req)?,
    };
    let out = match gw.get_object(&req.principal, input).await {
        Err(CoreError::NotModified {
            etag,
            last_modified_ms,
        }) => {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header("etag", format!("\"{etag}\""))
                .header("last-modified", http_date(last_modified_ms))
                .body(body::empty())
                .map_err(S3Error::internal);
        }
        other => other?,
    };
    let checksum_mode = req
        .header("x-amz-checksum-mode")
        .is_some_and(|v| v.eq_ignore_ascii_case("ENABLED"));
    let rec = &out.record;
    let whole = out.range.is_none() && part_number.is_none();
    let mut b = headers::object_headers(
        Response::builder(),
        rec,
        out.version_id.as_deref(),
        checksum_mode,
        whole,
    );
    if gw.location_encrypts(&rec.location) {
        b = b.header("x-amz-server-side-encryption", "AES256");
    }
    match part_number {
        // Part 1 of a single-part object is the whole object.
        Some(_) if checksum_mode && rec.parts.is_empty() => b = headers::checksum_headers(b, rec),
        Some(n) if checksum_mode => b = headers::part_checksum_headers(b, rec, n),
        _ => {}
    }
    if let Some(n) = out.parts_count {
        b = b.header("x-amz-mp-parts-count", n);
    }
    let partial = out.range.is_some() || part_number.is_some();
    let len = match out.range {
        Some(r) => {
            b = b.header(
                "content-range",
                format!("bytes {}-{}/{}", r.first, r.last, rec.size),
            );
            r.last - r.first + 1
        }
        None => rec.size,
    };
    b = b
        .status(if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header("content-length", len);
    if !head {
        b = headers::response_overrides(b, &req);
    }
    let body = match out.body {
        Some(s) if len > 0 => body::stream(s),
        _ => body::empty(),
    };
    b.body(body).map_err(S3Error::internal)
}

pub(super) async fn delete_object(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let out = gw
        .delete_object(
            &req.principal,
            req.bucket(),
            DeleteInput {
                key: req.key().to_owned(),
                version_id: headers::version_id(&req)?,
                if_match: req.header("if-match").map(str::to_owned),
                bypass_governance: bypass_governance(&req),
            },
        )
        .await?;
    let mut resp = empty(StatusCode::NO_CONTENT)?;
    if out.delete_marker {
        super::set_header(&mut resp, "x-amz-delete-marker", "true");
    }
    if let Some(v) = &out.version_id {
        super::set_header(&mut resp, "x-amz-version-id", v);
    }
    Ok(resp)
}

/// `x-amz-bypass-governance-retention: true`.
pub(super) fn bypass_governance(req: &Req) -> bool {
    req.header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub(super) async fn delete_objects(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body_with_digest().await?;
    let doc = x::parse_delete(&body)?;
    if doc.objects.is_empty() || doc.objects.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    let quiet = doc.quiet.unwrap_or(false);
    let bypass = bypass_governance(&req);
    let mut entries = Vec::with_capacity(doc.objects.len());
    for o in doc.objects {
        if let Some(v) = &o.version_id {
            if !cloudmux_core::versions::is_version_id(v) {
                return Err(S3Error::invalid_version_id(v));
            }
        }
        entries.push(DeleteInput {
            key: o.key,
            version_id: o.version_id,
            if_match: o.e_tag,
            bypass_governance: bypass,
        });
    }
    let outcomes = gw
        .delete_objects(&req.principal, req.bucket(), entries)
        .await?;
    let mut w = XmlWriter::new("DeleteResult");
    for o in outcomes {
        match o.result {
            Ok(_) if quiet => {}
            Ok(done) => {
                w.open("Deleted").elem("Key", &o.key);
                w.opt("VersionId", o.requested_version.as_deref());
                if done.delete_marker {
                    w.elem("DeleteMarker", "true");
                    w.opt("DeleteMarkerVersionId", done.version_id.as_deref());
                }
                w.close("Deleted");
            }
            Err(e) => {
                let e = S3Error::from(e);
                w.open("Error").elem("Key", &o.key);
                w.opt("VersionId", o.requested_version.as_deref());
                w.elem("Code", e.code)
                    .elem("Message", &e.message)
                    .close("Error");
            }
        }
    }
    xml(w.finish("DeleteResult"))
}

pub(super) async fn copy_object(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    headers::refuse_unsupported_write_headers(&req)?;
    let sse = headers::write_encryption(|n| req.header(n))?;
    let (src_bucket, src_key, src_version_id) =
        headers::parse_copy_source_version(req.header("x-amz-copy-source").unwrap_or_default())?;
    let replace = match req.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => return Err(S3Error::invalid_argument("Unknown metadata directive.")),
    };
    let replace_tagging = match req.header("x-amz-tagging-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => return Err(S3Error::invalid_tagging_directive()),
    };
    let checksum_algorithm = req
        .header("x-amz-checksum-algorithm")
        .map(|v| {
            ChecksumAlgorithm::parse(v).ok_or_else(|| {
                S3Error::invalid_request("Checksum algorithm provided is unsupported")
            })
        })
        .transpose()?;
    let input = CopyObjectInput {
        src_bucket,
        src_key,
        src_version_id: src_version_id.clone(),
        bucket: req.bucket().to_owned(),
        key: req.key().to_owned(),
        replace_metadata: replace,
        replace_tagging,
        meta: headers::object_meta(&req)?,
        conditions: headers::read_conditions(&req, "x-amz-copy-source-"),
        dest_conditions: headers::write_conditions(&req),
        acl: super::acl::requested_acl(gw, &req)?,
        location: headers::placement(&req),
        sse,
        checksum_algorithm,
        lock: headers::object_lock(|n| req.header(n))?,
    };
    let out = gw.copy_object(&req.principal, input).await?;
    let mut w = XmlWriter::new("CopyObjectResult");
    w.elem("LastModified", &iso_date(out.last_modified_ms))
        .elem("ETag", &format!("\"{}\"", out.etag));
    if let Some(c) = &out.checksum {
        w.elem("ChecksumType", c.kind.as_str())
            .elem(&format!("Checksum{}", c.algorithm.as_str()), &c.value);
    }
    let mut resp = xml(w.finish("CopyObjectResult"))?;
    if let Some(v) = &out.version_id {
        super::set_header(&mut resp, "x-amz-version-id", v);
    }
    if let Some(v) = out
        .source_version_id
        .as_deref()
        .or(src_version_id.as_deref().filter(|v| *v != "null"))
    {
        super::set_header(&mut resp, "x-amz-copy-source-version-id", v);
    }
    if let Some(s) = sse {
        resp.headers_mut().insert(
            "x-amz-server-side-encryption",
            http::HeaderValue::from_static(s.as_str()),
        );
    }
    Ok(resp)
}
