//! Listing handlers: ListObjects v1 and v2, ListObjectVersions,
//! ListMultipartUploads.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use base64::Engine;
use cloudmux_core::records::ObjectRecord;
use cloudmux_core::{Gateway, ListObjectsInput, ListUploadsInput, ListVersionsInput};
use http::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{owner_elem, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers::iso_date;
use crate::xml::XmlWriter;

/// What `encoding-type=url` leaves unescaped: unreserved characters and `/`.
const KEY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encodes keys and prefixes as the request asked.
struct Enc(bool);

impl Enc {
    fn from(req: &Req) -> S3Result<Self> {
        match req.query.get("encoding-type") {
            None => Ok(Enc(false)),
            Some(v) if v.eq_ignore_ascii_case("url") => Ok(Enc(true)),
            Some(v) => Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
            )
            .with("ArgumentName", "encoding-type")
            .with("ArgumentValue", v)),
        }
    }
    fn s(&self, v: &str) -> String {
        if self.0 {
            utf8_percent_encode(v, KEY_ESCAPE).to_string()
        } else {
            v.to_owned()
        }
    }
}

fn max_param(req: &Req, name: &str) -> S3Result<usize> {
    match req.query.get(name) {
        None => Ok(1000),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| S3Error::invalid_integer_argument(name, v)),
    }
}

fn delimiter(req: &Req) -> Option<String> {
    req.query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// The parameters every listing shares.
struct Common {
    enc: Enc,
    max: usize,
    prefix: String,
    delim: Option<String>,
}

impl Common {
    fn parse(req: &Req, max_name: &str) -> S3Result<Self> {
        Ok(Self {
            enc: Enc::from(req)?,
            max: max_param(req, max_name)?,
            prefix: req.query.get("prefix").unwrap_or_default().to_owned(),
            delim: delimiter(req),
        })
    }

    fn objects(&self, req: &Req, start_after: Option<String>) -> ListObjectsInput {
        ListObjectsInput {
            bucket: req.bucket().to_owned(),
            prefix: self.prefix.clone(),
            delimiter: self.delim.clone(),
            start_after,
            max_keys: self.max,
        }
    }

    /// Writes `Prefix`, then `Delimiter` when given.
    fn prefix_and_delimiter(&self, w: &mut XmlWriter) {
        w.elem("Prefix", &self.enc.s(&self.prefix));
        if let Some(d) = &self.delim {
            w.elem("Delimiter", &self.enc.s(d));
        }
    }
}

fn contents(w: &mut XmlWriter, gw: &Gateway, enc: &Enc, key: &str, r: &ObjectRecord, owner: bool) {
    w.open("Contents")
        .elem("Key", &enc.s(key))
        .elem("LastModified", &iso_date(r.last_modified_ms))
        .elem("ETag", &format!("\"{}\"", r.etag))
        .elem("Size", &r.size.to_string());
    if let Some(c) = &r.checksum {
        w.elem("ChecksumAlgorithm", c.algorithm.as_str())
            .elem("ChecksumType", c.kind.as_str());
    }
    if owner {
        owner_elem(w, gw, "Owner", &r.owner);
    }
    w.elem(
        "StorageClass",
        r.meta.storage_class.as_deref().unwrap_or("STANDARD"),
    )
    .close("Contents");
}

fn prefixes(w: &mut XmlWriter, enc: &Enc, list: &[String]) {
    for p in list {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.s(p))
            .close("CommonPrefixes");
    }
}

pub(super) async fn list_v1(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    // The router sends `list-type=2` to ListObjectsV2; any other value
    // names no listing S3 has, and is refused rather than answered as v1.
    if let Some(t) = req.query.get("list-type") {
        return Err(S3Error::invalid_list_type(t));
    }
    let c = Common::parse(&req, "max-keys")?;
    let marker = req
        .query
        .get("marker")
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let page = gw
        .list_objects(&req.principal, c.objects(&req, marker.clone()))
        .await?;
    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", req.bucket());
    c.prefix_and_delimiter(&mut w);
    w.elem("Marker", &c.enc.s(marker.as_deref().unwrap_or_default()))
        .elem("MaxKeys", &c.max.to_string())
        .elem("IsTruncated", bool_str(page.is_truncated));
    if page.is_truncated && c.delim.is_some() {
        w.opt(
            "NextMarker",
            page.last.as_deref().map(|l| c.enc.s(l)).as_deref(),
        );
    }
    encoding(&mut w, &c.enc);
    for (k, r) in &page.objects {
        contents(&mut w, gw, &c.enc, k, r, true);
    }
    prefixes(&mut w, &c.enc, &page.common_prefixes);
    xml(w.finish("ListBucketResult"))
}

pub(super) async fn list_v2(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let c = Common::parse(&req, "max-keys")?;
    let token = req.query.get("continuation-token").map(str::to_owned);
    let start_after = req
        .query
        .get("start-after")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let fetch_owner = req.query.get("fetch-owner") == Some("true");
    let after = match &token {
        Some(t) => Some(
            TOKEN
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    S3Error::invalid_argument("The continuation token provided is incorrect")
                })?,
        ),
        None => start_after.clone(),
    };
    let page = gw
        .list_objects(&req.principal, c.objects(&req, after))
        .await?;
    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", req.bucket());
    c.prefix_and_delimiter(&mut w);
    w.elem("MaxKeys", &c.max.to_string())
        .elem(
            "KeyCount",
            &(page.objects.len() + page.common_prefixes.len()).to_string(),
        )
        .elem("IsTruncated", bool_str(page.is_truncated));
    w.opt("ContinuationToken", token.as_deref());
    if page.is_truncated {
        w.opt(
            "NextContinuationToken",
            page.last.as_ref().map(|l| TOKEN.encode(l)).as_deref(),
        );
    }
    w.opt(
        "StartAfter",
        start_after.as_deref().map(|s| c.enc.s(s)).as_deref(),
    );
    encoding(&mut w, &c.enc);
    for (k, r) in &page.objects {
        contents(&mut w, gw, &c.enc, k, r, fetch_owner);
    }
    prefixes(&mut w, &c.enc, &page.common_prefixes);
    xml(w.finish("ListBucketResult"))
}

pub(super) async fn list_versions(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let c = Common::parse(&req, "max-keys")?;
    let key_marker = req
        .query
        .get("key-marker")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let version_marker = req
        .query
        .get("version-id-marker")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if version_marker.is_some() && key_marker.is_none() {
        return Err(S3Error::invalid_argument(
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    if let Some(v) = version_marker.as_deref() {
        if !cloudmux_core::versions::is_version_id(v) {
            return Err(S3Error::invalid_argument("Invalid version id specified")
                .with("ArgumentName", "version-id-marker")
                .with("ArgumentValue", v));
        }
    }
    let input = ListVersionsInput {
        bucket: req.bucket().to_owned(),
        prefix: c.prefix.clone(),
        delimiter: c.delim.clone(),
        key_marker: key_marker.clone(),
        version_id_marker: version_marker.clone(),
        max_keys: c.max,
    };
    let page = gw.list_versions(&req.principal, input).await?;
    let mut w = XmlWriter::new("ListVersionsResult");
    w.elem("Name", req.bucket());
    c.prefix_and_delimiter(&mut w);
    w.elem(
        "KeyMarker",
        &c.enc.s(key_marker.as_deref().unwrap_or_default()),
    )
    .elem(
        "VersionIdMarker",
        version_marker.as_deref().unwrap_or_default(),
    )
    .elem("MaxKeys", &c.max.to_string())
    .elem("IsTruncated", bool_str(page.is_truncated));
    if page.is_truncated {
        if let Some(k) = &page.next_key_marker {
            w.elem("NextKeyMarker", &c.enc.s(k));
        }
        if let Some(v) = &page.next_version_id_marker {
            w.elem("NextVersionIdMarker", v);
        }
    }
    encoding(&mut w, &c.enc);
    for v in &page.versions {
        let r = &v.record;
        let id = cloudmux_core::versions::shown_id(&r.version);
        if r.version.delete_marker {
            w.open("DeleteMarker");
            owner_elem(&mut w, gw, "Owner", &r.owner);
            w.elem("Key", &c.enc.s(&v.key))
                .elem("VersionId", id)
                .elem("IsLatest", bool_str(v.is_latest))
                .elem("LastModified", &iso_date(r.last_modified_ms))
                .close("DeleteMarker");
            continue;
        }
        w.open("Version")
            .elem("Key", &c.enc.s(&v.key))
            .elem("VersionId", id)
            .elem("IsLatest", bool_str(v.is_latest))
            .elem("LastModified", &iso_date(r.last_modified_ms))
            .elem("ETag", &format!("\"{}\"", r.etag))
            .elem("Size", &r.size.to_string());
        owner_elem(&mut w, gw, "Owner", &r.owner);
        w.elem(
            "StorageClass",
            r.meta.storage_class.as_deref().unwrap_or("STANDARD"),
        );
        if let Some(ck) = &r.checksum {
            w.elem("ChecksumAlgorithm", ck.algorithm.as_str())
                .elem("ChecksumType", ck.kind.as_str());
        }
        w.close("Version");
    }
    prefixes(&mut w, &c.enc, &page.common_prefixes);
    xml(w.finish("ListVersionsResult"))
}

pub(super) async fn list_uploads(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let c = Common::parse(&req, "max-uploads")?;
    let key_marker = req
        .query
        .get("key-marker")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let id_marker = req
        .query
        .get("upload-id-marker")
        .filter(|s| !s.is_empty() && key_marker.is_some())
        .map(str::to_owned);
    let input = ListUploadsInput {
        bucket: req.bucket().to_owned(),
        prefix: c.prefix.clone(),
        delimiter: c.delim.clone(),
        key_marker: key_marker.clone(),
        upload_id_marker: id_marker.clone(),
        max_uploads: c.max,
    };
    let page = gw.list_uploads(&req.principal, input).await?;
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", req.bucket())
        .elem(
            "KeyMarker",
            &c.enc.s(key_marker.as_deref().unwrap_or_default()),
        )
        .elem("UploadIdMarker", id_marker.as_deref().unwrap_or_default())
        .elem(
            "NextKeyMarker",
            &c.enc.s(page.next_key_marker.as_deref().unwrap_or_default()),
        )
        .elem(
            "NextUploadIdMarker",
            page.next_upload_id_marker.as_deref().unwrap_or_default(),
        );
    c.prefix_and_delimiter(&mut w);
    w.elem("MaxUploads", &c.max.to_string())
        .elem("IsTruncated", bool_str(page.is_truncated));
    encoding(&mut w, &c.enc);
    for u in &page.uploads {
        w.open("Upload")
            .elem("Key", &c.enc.s(&u.key))
            .elem("UploadId", &u.upload_id);
        owner_elem(&mut w, gw, "Initiator", &u.record.owner);
        owner_elem(&mut w, gw, "Owner", &u.record.owner);
        w.elem(
            "StorageClass",
            u.record.meta.storage_class.as_deref().unwrap_or("STANDARD"),
        )
        .elem("Initiated", &iso_date(u.record.initiated_ms));
        if let Some((alg, kind)) = u.record.checksum {
            w.elem("ChecksumAlgorithm", alg.as_str())
                .elem("ChecksumType", kind.as_str());
        }
        w.close("Upload");
    }
    prefixes(&mut w, &c.enc, &page.common_prefixes);
    xml(w.finish("ListMultipartUploadsResult"))
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn encoding(w: &mut XmlWriter, enc: &Enc) {
    if enc.0 {
        w.elem("EncodingType", "url");
    }
}
