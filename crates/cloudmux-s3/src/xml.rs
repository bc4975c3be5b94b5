//! XML: a small writer for response documents (escaping by quick-xml) and the
//! serde shapes of request bodies (parsed by quick-xml).

use quick_xml::escape::escape;
use serde::Deserialize;

use crate::error::{S3Error, S3Result};

/// The S3 namespace.
pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document.
pub struct XmlWriter {
    buf: String,
}

impl XmlWriter {
    /// A document whose root element carries the S3 namespace.
    pub fn new(root: &str) -> Self {
        let mut buf = String::with_capacity(512);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        buf.push_str(root);
        buf.push_str(" xmlns=\"");
        buf.push_str(NS);
        buf.push_str("\">");
        Self { buf }
    }
    /// A document whose root element has no namespace (Error documents).
    pub fn bare(root: &str) -> Self {
        let mut buf = String::with_capacity(256);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        buf.push_str(root);
        buf.push('>');
        Self { buf }
    }
    /// `<name>escaped text</name>`.
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.buf.push_str(&escape(text));
        self.close(name)
    }
    /// `<name>` when `text` is present.
    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.elem(name, t);
        }
        self
    }
    /// Opens an element.
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }
    /// Opens an element with raw attributes (already escaped).
    pub fn open_attrs(&mut self, name: &str, attrs: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push(' ');
        self.buf.push_str(attrs);
        self.buf.push('>');
        self
    }
    /// Closes an element.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }
    /// Closes the root and returns the document.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.buf
    }
}

pub(crate) fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> S3Result<T> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::malformed_xml())?;
    quick_xml::de::from_str(text).map_err(|_| S3Error::malformed_xml())
}

/// `CompleteMultipartUpload` body.
#[derive(Debug, Deserialize)]
pub struct CompleteMultipartUpload {
    /// Parts.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePartXml>,
}

/// One `Part`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompletePartXml {
    /// PartNumber.
    pub part_number: u32,
    /// ETag.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// ChecksumCRC32.
    #[serde(rename = "ChecksumCRC32")]
    pub checksum_crc32: Option<String>,
    /// ChecksumCRC32C.
    #[serde(rename = "ChecksumCRC32C")]
    pub checksum_crc32c: Option<String>,
    /// ChecksumCRC64NVME.
    #[serde(rename = "ChecksumCRC64NVME")]
    pub checksum_crc64nvme: Option<String>,
    /// ChecksumSHA1.
    #[serde(rename = "ChecksumSHA1")]
    pub checksum_sha1: Option<String>,
    /// ChecksumSHA256.
    #[serde(rename = "ChecksumSHA256")]
    pub checksum_sha256: Option<String>,
    /// ChecksumSHA512, ChecksumMD5, ChecksumXXHASH64, ChecksumXXHASH3 and
    /// ChecksumXXHASH128: algorithms cloudmux does not implement, read only
    /// to be refused.
    #[serde(rename = "ChecksumSHA512")]
    pub checksum_sha512: Option<String>,
    /// See `checksum_sha512`.
    #[serde(rename = "ChecksumMD5")]
    pub checksum_md5: Option<String>,
    /// See `checksum_sha512`.
    #[serde(rename = "ChecksumXXHASH64")]
    pub checksum_xxhash64: Option<String>,
    /// See `checksum_sha512`.
    #[serde(rename = "ChecksumXXHASH3")]
    pub checksum_xxhash3: Option<String>,
    /// See `checksum_sha512`.
    #[serde(rename = "ChecksumXXHASH128")]
    pub checksum_xxhash128: Option<String>,
}

impl CompletePartXml {
    /// The element name of the first checksum of an algorithm cloudmux does
    /// not implement, if the part carries one.
    pub fn unsupported_checksum(&self) -> Option<&'static str> {
        [
            ("ChecksumSHA512", &self.checksum_sha512),
            ("ChecksumMD5", &self.checksum_md5),
            ("ChecksumXXHASH64", &self.checksum_xxhash64),
            ("ChecksumXXHASH3", &self.checksum_xxhash3),
            ("ChecksumXXHASH128", &self.checksum_xxhash128),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some())
        .map(|(n, _)| n)
    }
}

/// Parses a CompleteMultipartUpload body.
pub fn parse_complete(body: &[u8]) -> S3Result<CompleteMultipartUpload> {
    check_root(body, "CompleteMultipartUpload")?;
    parse(body)
}

/// `Delete` body of DeleteObjects.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteXml {
    /// Quiet mode.
    #[serde(default)]
    pub quiet: Option<bool>,
    /// Objects.
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteObjectXml>,
}

/// One `Object` of DeleteObjects.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteObjectXml {
    /// Key.
    pub key: String,
    /// VersionId.
    pub version_id: Option<String>,
    /// ETag: delete only if the object's ETag matches (conditional delete).
    #[serde(rename = "ETag")]
    pub e_tag: Option<String>,
}

/// Parses a DeleteObjects body.
pub fn parse_delete(body: &[u8]) -> S3Result<DeleteXml> {
    check_root(body, "Delete")?;
    parse(body)
}

/// `VersioningConfiguration` (PutBucketVersioning).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersioningConfiguration {
    /// `Enabled` or `Suspended`.
    pub status: Option<String>,
    /// `Enabled` or `Disabled`.
    pub mfa_delete: Option<String>,
}

/// Parses a PutBucketVersioning body.
pub fn parse_versioning(body: &[u8]) -> S3Result<VersioningConfiguration> {
    check_root(body, "VersioningConfiguration")?;
    parse(body)
}

/// `CreateBucketConfiguration`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBucketConfiguration {
    /// LocationConstraint.
    pub location_constraint: Option<String>,
}

/// Parses a CreateBucket body (empty bodies are allowed).
pub fn parse_create_bucket(body: &[u8]) -> S3Result<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    check_root(body, "CreateBucketConfiguration")?;
    let c: CreateBucketConfiguration = parse(body)?;
    Ok(c.location_constraint)
}

/// Checks the document's root element name, since serde ignores it.
pub(crate) fn check_root(body: &[u8], want: &str) -> S3Result<()> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            // A root without content (`<Retention/>`) is an empty element.
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                let name = e.local_name();
                return if name.as_ref() == want.as_bytes() {
                    Ok(())
                } else {
                    Err(S3Error::malformed_xml())
                };
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return Err(S3Error::malformed_xml()),
            Ok(_) => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_parses_and_rejects() {
        let ok = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part><Part><ETag>b</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>"#;
        let c = parse_complete(ok).unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!(c.parts[1].checksum_crc32.as_deref(), Some("AAAAAA=="));
        assert!(parse_complete(b"<CompleteMultipartUpload><Part>").is_err());
        assert!(parse_complete(
            b"<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>"
        )
        .is_err());
        assert!(parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>").is_err());
    }

    #[test]
    fn delete_parses() {
        let d = parse_delete(b"<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object></Delete>").unwrap();
        assert_eq!(d.quiet, Some(true));
        assert_eq!(d.objects[0].key, "a&b");
        assert!(parse_delete(b"not xml").is_err());
    }

    #[test]
    fn writer_escapes() {
        let mut w = XmlWriter::new("R");
        w.elem("Key", "a<b&c");
        assert!(w.finish("R").contains("<Key>a&lt;b&amp;c</Key>"));
    }
}
