//! GetObjectAttributes: the parts of HEAD and ListParts a client asks for by
//! name in `x-amz-object-attributes`, as one XML document. A multipart
//! object's `ObjectParts` pages through its parts (`x-amz-max-parts`,
//! `x-amz-part-number-marker`), each with its size and its checksum.

use cloudmux_core::checksum::{self, ChecksumType, StoredChecksum};
use cloudmux_core::records::{ObjectRecord, PartSummary};
use cloudmux_core::{Gateway, GetObjectInput};
use http::Response;

use crate::body::{self, ResBody};
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers::http_date;
use crate::xml::XmlWriter;

/// The attributes S3 defines, in the order the response lists them.
const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

/// Parses `x-amz-object-attributes` (comma-separated, each name at most once
/// counted) into flags in [`ATTRIBUTES`] order.
fn wanted(req: &Req) -> S3Result<[bool; 5]> {
    let invalid = || S3Error::invalid_argument("Invalid attribute name specified.");
    let mut want = [false; 5];
    let mut any = false;
    for value in req.headers.get_all("x-amz-object-attributes") {
        let value = value.to_str().map_err(|_| invalid())?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let i = ATTRIBUTES
                .iter()
                .position(|a| *a == name)
                .ok_or_else(invalid)?;
            want[i] = true;
            any = true;
        }
    }
    if !any {
        return Err(S3Error::invalid_request(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        ));
    }
    Ok(want)
}

/// Parses the `x-amz-max-parts` and `x-amz-part-number-marker` headers:
/// at most 1000 parts a page (the default), after the marker (0 when absent).
fn parts_page(req: &Req) -> S3Result<(usize, u32)> {
    let max = match req.header("x-amz-max-parts") {
        None => 1000,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| S3Error::invalid_integer_argument("x-amz-max-parts", v))?,
    };
    let marker = match req.header("x-amz-part-number-marker") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| S3Error::invalid_integer_argument("x-amz-part-number-marker", v))?,
    };
    Ok((max, marker))
}

/// The composite checksum without its `-N` part count, as GetObjectAttributes
/// gives it (the part count is `ObjectParts/PartsCount`).
fn checksum_value(c: &StoredChecksum) -> &str {
    match c.kind {
        ChecksumType::Composite => c.value.rsplit_once('-').map_or(&c.value, |(v, _)| v),
        ChecksumType::FullObject => &c.value,
    }
}

/// The `ObjectParts` element of a multipart object: the page of parts after
/// `marker`, each with its size and, when the object keeps them, its
/// checksum.
fn object_parts(w: &mut XmlWriter, rec: &ObjectRecord, max: usize, marker: u32) {
    let total = rec.parts.len();
    let first = (marker as usize).min(total);
    let page: Vec<(usize, &PartSummary)> =
        rec.parts.iter().enumerate().skip(first).take(max).collect();
    let truncated = first + page.len() < total;
    let next = page.last().map_or(marker as usize, |(i, _)| i + 1);
    w.open("ObjectParts")
        .elem("PartsCount", &total.to_string())
        .elem("PartNumberMarker", &marker.to_string())
        .elem("NextPartNumberMarker", &next.to_string())
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    for (i, p) in page {
        w.open("Part")
            .elem("PartNumber", &(i + 1).to_string())
            .elem("Size", &p.size.to_string());
        if let (Some(c), Some(raw)) = (&rec.checksum, &p.checksum) {
            w.elem(
                &format!("Checksum{}", c.algorithm.as_str()),
                &checksum::b64(raw),
            );
        }
        w.close("Part");
    }
    w.close("ObjectParts");
}

/// `GET /bucket/key?attributes`.
pub(super) async fn get_object_attributes(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let want = wanted(&req)?;
    let (max_parts, marker) = parts_page(&req)?;
    let input = GetObjectInput {
        bucket: req.bucket().to_owned(),
        key: req.key().to_owned(),
        head: true,
        version_id: crate::headers::version_id(&req)?,
        ..GetObjectInput::default()
    };
    let rec = gw.get_object(&req.principal, input).await?.record;
    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if want[0] {
        w.elem("ETag", &rec.etag);
    }
    if want[1] {
        if let Some(c) = &rec.checksum {
            w.open("Checksum")
                .elem(
                    &format!("Checksum{}", c.algorithm.as_str()),
                    checksum_value(c),
                )
                .elem("ChecksumType", c.kind.as_str())
                .close("Checksum");
        }
    }
    if want[2] && !rec.parts.is_empty() {
        object_parts(&mut w, &rec, max_parts, marker);
    }
    if want[3] {
        w.elem(
            "StorageClass",
            rec.meta.storage_class.as_deref().unwrap_or("STANDARD"),
        );
    }
    if want[4] {
        w.elem("ObjectSize", &rec.size.to_string());
    }
    let doc = w.finish("GetObjectAttributesResponse");
    let mut b = Response::builder()
        .header("content-type", "application/xml")
        .header("content-length", doc.len())
        .header("last-modified", http_date(rec.last_modified_ms));
    if let Some(v) = &rec.version.id {
        b = b.header("x-amz-version-id", v);
    }
    b.body(body::full(doc)).map_err(S3Error::internal)
}
