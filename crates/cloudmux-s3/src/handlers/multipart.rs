//! Multipart upload handlers.

use cloudmux_core::checksum::{ChecksumAlgorithm, ALL_ALGORITHMS};
use cloudmux_core::{
    CompletePart, CompleteUploadInput, CreateUploadInput, Gateway, ListPartsInput,
    UploadPartCopyInput, UploadPartInput, UploadPartOutput,
};
use http::{Response, StatusCode};

use super::object::require_length;
use super::{empty, owner_elem, xml};
use crate::body::{self, ResBody};
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers::{self, iso_date};
use crate::xml::{self as x, XmlWriter};

fn upload_id(req: &Req) -> S3Result<String> {
    req.query
        .get("uploadId")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| S3Error::invalid_argument("uploadId must not be empty"))
}

fn part_number(req: &Req) -> S3Result<u32> {
    headers::parse_part_number(req.query.get("partNumber").unwrap_or_default())
}

pub(super) async fn create(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    headers::refuse_unsupported_write_headers(&req)?;
    let sse = headers::write_encryption(|n| req.header(n))?;
    let kind = headers::checksum_type(&req)?;
    let checksum = match req.header("x-amz-checksum-algorithm") {
        None if kind.is_some() => {
            return Err(S3Error::invalid_request(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            ))
        }
        None => None,
        Some(v) => {
            let alg = ChecksumAlgorithm::parse(v.trim()).ok_or_else(|| {
                S3Error::invalid_request("Checksum algorithm provided is unsupported")
            })?;
            Some((alg, kind))
        }
    };
    let info = gw
        .create_upload(
            &req.principal,
            CreateUploadInput {
                bucket: req.bucket().to_owned(),
                key: req.key().to_owned(),
                meta: headers::object_meta(&req)?,
                acl: super::acl::requested_acl(gw, &req)?,
                location: headers::placement(&req),
                sse,
                checksum,
                lock: headers::object_lock(|n| req.header(n))?,
            },
        )
        .await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", req.bucket())
        .elem("Key", req.key())
        .elem("UploadId", &info.upload_id);
    let mut resp = xml(w.finish("InitiateMultipartUploadResult"))?;
    if let Some(s) = sse {
        resp.headers_mut().insert(
            "x-amz-server-side-encryption",
            http::HeaderValue::from_static(s.as_str()),
        );
    }
    if let Some((alg, kind)) = info.checksum {
        let h = resp.headers_mut();
        h.insert(
            "x-amz-checksum-algorithm",
            alg.as_str().parse().map_err(S3Error::internal)?,
        );
        h.insert(
            "x-amz-checksum-type",
            kind.as_str().parse().map_err(S3Error::internal)?,
        );
    }
    Ok(resp)
}

fn part_response(out: &UploadPartOutput) -> http::response::Builder {
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("etag", format!("\"{}\"", out.etag));
    if let Some((alg, v)) = &out.checksum {
        b = b.header(alg.header_name(), v);
    }
    b
}

pub(super) async fn upload_part(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    headers::refuse_sse_c(|n| req.header(n))?;
    require_length(&req)?;
    let number = part_number(&req)?;
    let id = upload_id(&req)?;
    let (stream, expect) = body::request_stream(&mut req)?;
    let out = gw
        .upload_part(
            &req.principal,
            UploadPartInput {
                bucket: req.bucket().to_owned(),
                key: req.key().to_owned(),
                upload_id: id,
                part_number: number,
                body: stream,
                expect,
            },
        )
        .await?;
    part_response(&out)
        .header("content-length", 0)
        .body(body::empty())
        .map_err(S3Error::internal)
}

pub(super) async fn upload_part_copy(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    headers::refuse_sse_c(|n| req.header(n))?;
    let (src_bucket, src_key, src_version_id) =
        headers::parse_copy_source_version(req.header("x-amz-copy-source").unwrap_or_default())?;
    let range = req
        .header("x-amz-copy-source-range")
        .map(headers::parse_copy_range)
        .transpose()?;
    let out = gw
        .upload_part_copy(
            &req.principal,
            UploadPartCopyInput {
                bucket: req.bucket().to_owned(),
                key: req.key().to_owned(),
                upload_id: upload_id(&req)?,
                part_number: part_number(&req)?,
                src_bucket,
                src_key,
                src_version_id: src_version_id.clone(),
                range,
                conditions: headers::read_conditions(&req, "x-amz-copy-source-"),
            },
        )
        .await?;
    let mut w = XmlWriter::new("CopyPartResult");
    w.elem("LastModified", &iso_date(out.last_modified_ms))
        .elem("ETag", &format!("\"{}\"", out.etag));
    if let Some((alg, v)) = &out.checksum {
        w.elem(&format!("Checksum{}", alg.as_str()), v);
    }
    let mut resp = xml(w.finish("CopyPartResult"))?;
    if let Some(v) = src_version_id.filter(|v| v != "null") {
        super::set_header(&mut resp, "x-amz-copy-source-version-id", &v);
    }
    Ok(resp)
}

pub(super) async fn complete(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let id = upload_id(&req)?;
    let checksum_type = headers::checksum_type(&req)?;
    let checksum = headers::complete_checksum(&req)?;
    // Complete's `x-amz-checksum-*` headers describe the object, not the
    // XML document, so the body is not checked against them.
    for alg in ALL_ALGORITHMS {
        req.headers.remove(alg.header_name());
    }
    let body = req.read_small_body().await?;
    let doc = x::parse_complete(&body)?;
    if doc.parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if let Some(name) = doc.parts.iter().find_map(|p| p.unsupported_checksum()) {
        return Err(S3Error::unsupported_checksum(name));
    }
    let parts = doc
        .parts
        .into_iter()
        .map(|p| {
            let checksums = [
                (ChecksumAlgorithm::Crc32, p.checksum_crc32),
                (ChecksumAlgorithm::Crc32c, p.checksum_crc32c),
                (ChecksumAlgorithm::Crc64Nvme, p.checksum_crc64nvme),
                (ChecksumAlgorithm::Sha1, p.checksum_sha1),
                (ChecksumAlgorithm::Sha256, p.checksum_sha256),
            ]
            .into_iter()
            .filter_map(|(a, v)| v.map(|v| (a, v)))
            .collect();
            CompletePart {
                part_number: p.part_number,
                etag: p.etag,
                checksums,
            }
        })
        .collect();
    let out = gw
        .complete_upload(
            &req.principal,
            CompleteUploadInput {
                bucket: req.bucket().to_owned(),
                key: req.key().to_owned(),
                upload_id: id,
                parts,
                conditions: headers::write_conditions(&req),
                checksum_type,
                checksum,
            },
        )
        .await?;
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    let host = req.header("host").unwrap_or("localhost");
    w.elem(
        "Location",
        &format!("http://{host}/{}/{}", req.bucket(), req.key()),
    )
    .elem("Bucket", req.bucket())
    .elem("Key", req.key())
    .elem("ETag", &format!("\"{}\"", out.etag));
    if let Some(c) = &out.checksum {
        w.elem(&format!("Checksum{}", c.algorithm.as_str()), &c.value)
            .elem("ChecksumType", c.kind.as_str());
    }
    let mut resp = xml(w.finish("CompleteMultipartUploadResult"))?;
    if let Some(v) = &out.version_id {
        super::set_header(&mut resp, "x-amz-version-id", v);
    }
    Ok(resp)
}

pub(super) async fn abort(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.abort_upload(&req.principal, req.bucket(), req.key(), &upload_id(&req)?)
        .await?;
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn list_parts(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let max_parts = match req.query.get("max-parts") {
        None => 1000,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| S3Error::invalid_integer_argument("max-parts", v))?,
    };
    let marker = match req.query.get("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| S3Error::invalid_integer_argument("part-number-marker", v))?,
    };
    let out = gw
        .list_parts(
            &req.principal,
            ListPartsInput {
                bucket: req.bucket().to_owned(),
                key: req.key().to_owned(),
                upload_id: upload_id(&req)?,
                marker,
                max_parts,
            },
        )
        .await?;
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", req.bucket())
        .elem("Key", req.key())
        .elem("UploadId", &upload_id(&req)?);
    owner_elem(&mut w, gw, "Initiator", &out.upload.owner);
    owner_elem(&mut w, gw, "Owner", &out.upload.owner);
    w.elem(
        "StorageClass",
        out.upload
            .meta
            .storage_class
            .as_deref()
            .unwrap_or("STANDARD"),
    )
    .elem("PartNumberMarker", &marker.to_string())
    .elem(
        "NextPartNumberMarker",
        &out.next_marker.unwrap_or(0).to_string(),
    )
    .elem("MaxParts", &max_parts.to_string())
    .elem(
        "IsTruncated",
        if out.is_truncated { "true" } else { "false" },
    );
    if let Some((alg, kind)) = out.upload.checksum {
        w.elem("ChecksumAlgorithm", alg.as_str())
            .elem("ChecksumType", kind.as_str());
    }
    for p in &out.parts {
        w.open("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .elem("LastModified", &iso_date(p.last_modified_ms))
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string());
        if let (Some((alg, _)), Some(v)) = (out.upload.checksum, &p.checksum) {
            w.elem(&format!("Checksum{}", alg.as_str()), v);
        }
        w.close("Part");
    }
    xml(w.finish("ListPartsResult"))
}
