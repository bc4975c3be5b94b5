//! Listings served from the metadata store in key order: objects (v1, v2 and
//! versions share one walk) and multipart uploads.

use crate::RequestContext;
use cloudmux_meta::{codec, prefix_end};

use crate::acl::Permission;
use crate::records::{self, ObjectRecord, UploadRecord};
use crate::{Gateway, Result};

/// One listing request, already translated from v1 marker / v2 token.
#[derive(Debug, Clone, Default)]
pub struct ListObjectsInput {
    /// Bucket.
    pub bucket: String,
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to common prefixes at this delimiter.
    pub delimiter: Option<String>,
    /// Start strictly after this key (marker, start-after, decoded token).
    pub start_after: Option<String>,
    /// At most this many keys plus common prefixes (0..=1000).
    pub max_keys: usize,
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListObjectsOutput {
    /// Objects, in key order.
    pub objects: Vec<(String, ObjectRecord)>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// The last key or common prefix returned (the next marker).
    pub last: Option<String>,
}

/// A ListMultipartUploads request.
#[derive(Debug, Clone, Default)]
pub struct ListUploadsInput {
    /// Bucket.
    pub bucket: String,
    /// Key prefix.
    pub prefix: String,
    /// Delimiter.
    pub delimiter: Option<String>,
    /// key-marker.
    pub key_marker: Option<String>,
    /// upload-id-marker (only with key-marker).
    pub upload_id_marker: Option<String>,
    /// max-uploads.
    pub max_uploads: usize,
}

/// An in-progress upload as listed.
#[derive(Debug, Clone)]
pub struct ListedUpload {
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// The upload.
    pub record: UploadRecord,
}

/// A page of ListMultipartUploads.
#[derive(Debug, Clone, Default)]
pub struct ListUploadsOutput {
    /// Uploads, by key then initiation.
    pub uploads: Vec<ListedUpload>,
    /// Common prefixes.
    pub common_prefixes: Vec<String>,
    /// More follow.
    pub is_truncated: bool,
    /// Next key-marker.
    pub next_key_marker: Option<String>,
    /// Next upload-id-marker.
    pub next_upload_id_marker: Option<String>,
}

/// The walk shared by the object and upload listings: entries under
/// `base + prefix`, where `name_of` extracts the S3 key from a record key.
struct Walk<'a> {
    base: Vec<u8>,
    prefix: &'a str,
    delimiter: Option<&'a str>,
}

enum Item {
    Entry(Vec<u8>, Vec<u8>),
    Prefix(String),
}

impl Walk<'_> {
    fn start(&self, after: Option<&[u8]>) -> Vec<u8> {
        let lower = [self.base.as_slice(), self.prefix.as_bytes()].concat();
        match after {
            Some(a) => {
                let mut k = [self.base.as_slice(), a].concat();
                k.push(0);
                k.max(lower)
            }
            None => lower,
        }
    }

    fn end(&self) -> Vec<u8> {
        let p = [self.base.as_slice(), self.prefix.as_bytes()].concat();
        prefix_end(&p).unwrap_or_else(|| vec![0xff; p.len() + 1])
    }

    /// Collects up to `max` items starting at `cursor`, then reports whether
    /// any item follows. `key_of` turns a record key (without base) into the
    /// S3 key.
    async fn run(
        &self,
        gw: &Gateway,
        mut cursor: Vec<u8>,
        max: usize,
        key_of: fn(&[u8]) -> &[u8],
        listed: fn(&[u8]) -> bool,
    ) -> Result<(Vec<Item>, bool)> {
        let end = self.end();
        let mut items = Vec::new();
        loop {
            let want = if items.len() < max {
                (max - items.len() + 1).min(1000)
            } else {
                1
            };
            let batch = gw.meta.scan(&cursor, &end, want).await?;
            if batch.is_empty() {
                return Ok((items, false));
            }
            let full = batch.len() == want;
            let mut jumped = false;
            for (k, v) in batch {
                if !listed(&v) {
                    // Not listed (a delete marker in an object listing), and
                    // no common prefix for it either.
                    cursor = k.clone();
                    cursor.push(0);
                    continue;
                }
                if items.len() >= max {
                    return Ok((items, true));
                }
                let name = key_of(&k[self.base.len()..]);
                let rest = &name[self.prefix.len()..];
                if let Some(d) = self.delimiter.filter(|d| !d.is_empty()) {
                    if let Some(pos) = find(rest, d.as_bytes()) {
                        let cp = &name[..self.prefix.len() + pos + d.len()];
                        items.push(Item::Prefix(String::from_utf8_lossy(cp).into_owned()));
                        let full_cp = [self.base.as_slice(), cp].concat();
                        match prefix_end(&full_cp) {
                            Some(next) => cursor = next,
                            None => return Ok((items, false)),
                        }
                        jumped = true;
                        break;
                    }
                }
                cursor = k.clone();
                cursor.push(0);
                items.push(Item::Entry(k, v));
            }
            if !jumped && !full {
                return Ok((items, false));
            }
        }
    }
}

fn object_name(k: &[u8]) -> &[u8] {
    k
}

/// Everything is listed.
fn all(_: &[u8]) -> bool {
    true
}

/// An object record is listed by ListObjects unless it is a delete marker
/// (a record that does not decode is listed, so its error surfaces).
fn live(v: &[u8]) -> bool {
    codec::decode::<ObjectRecord>(v).map_or(true, |r| !r.version.delete_marker)
}

fn upload_name(k: &[u8]) -> &[u8] {
    k.split(|c| *c == 0).next().unwrap_or(k)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Gateway {
    /// ListObjects (v1, v2): one page of current versions, delete markers
    /// left out.
    pub async fn list_objects(
        &self,
        who: &RequestContext,
        input: ListObjectsInput,
    ) -> Result<ListObjectsOutput> {
        let (bucket, _) = self
            .bucket_for(who, &input.bucket, Permission::Read, None)
            .await?;
        let walk = Walk {
            base: records::objects_prefix(&input.bucket),
            prefix: &input.prefix,
            delimiter: input.delimiter.as_deref(),
        };
        if input.max_keys == 0 {
            return Ok(ListObjectsOutput::default());
        }
        let mut cursor = walk.start(input.start_after.as_deref().map(str::as_bytes));
        if let (Some(a), Some(d)) = (
            input.start_after.as_deref(),
            walk.delimiter.filter(|d| !d.is_empty()),
        ) {
            // A marker that is itself a common prefix resumes after all its keys.
            if a.starts_with(&input.prefix) && a.len() > input.prefix.len() && a.ends_with(d) {
                let rest = &a[input.prefix.len()..];
                if find(rest.as_bytes(), d.as_bytes()) == Some(rest.len() - d.len()) {
                    if let Some(next) = prefix_end(&[walk.base.as_slice(), a.as_bytes()].concat()) {
                        cursor = next;
                    }
                }
            }
        }
        let (items, is_truncated) = walk
            .run(self, cursor, input.max_keys, object_name, live)
            .await?;
        let mut out = ListObjectsOutput {
            is_truncated,
            ..Default::default()
        };
        for item in items {
            match item {
                Item::Prefix(p) => {
                    out.last = Some(p.clone());
                    out.common_prefixes.push(p);
                }
                Item::Entry(k, v) => {
                    let key = String::from_utf8_lossy(&k[walk.base.len()..]).into_owned();
                    out.last = Some(key.clone());
                    let mut rec: ObjectRecord = codec::decode(&v)?;
                    if bucket.acls_disabled() {
                        // The bucket owner owns every object while ACLs are
                        // disabled, those written before included.
                        rec.owner.clone_from(&bucket.owner);
                    }
                    out.objects.push((key, rec));
                }
            }
        }
        Ok(out)
    }

    /// ListMultipartUploads: one page.
    pub async fn list_uploads(
        &self,
        who: &RequestContext,
        input: ListUploadsInput,
    ) -> Result<ListUploadsOutput> {
        self.bucket_for(who, &input.bucket, Permission::Read, None)
            .await?;
        let walk = Walk {
            base: records::uploads_prefix(&input.bucket),
            prefix: &input.prefix,
            delimiter: input.delimiter.as_deref(),
        };
        let after: Option<Vec<u8>> =
            input
                .key_marker
                .as_ref()
                .map(|km| match &input.upload_id_marker {
                    Some(id) => [km.as_bytes(), b"\0", id.as_bytes()].concat(),
                    None => [km.as_bytes(), b"\0\xff"].concat(),
                });
        let cursor = walk.start(after.as_deref());
        let (items, is_truncated) = walk
            .run(self, cursor, input.max_uploads, upload_name, all)
            .await?;
        let mut out = ListUploadsOutput {
            is_truncated,
            ..Default::default()
        };
        for item in items {
            match item {
                Item::Prefix(p) => {
                    out.next_key_marker = Some(p.clone());
                    out.next_upload_id_marker = None;
                    out.common_prefixes.push(p);
                }
                Item::Entry(k, v) => {
                    let rest = &k[walk.base.len()..];
                    let mut it = rest.splitn(2, |c| *c == 0);
                    let key = String::from_utf8_lossy(it.next().unwrap_or_default()).into_owned();
                    let upload_id =
                        String::from_utf8_lossy(it.next().unwrap_or_default()).into_owned();
                    out.next_key_marker = Some(key.clone());
                    out.next_upload_id_marker = Some(upload_id.clone());
                    out.uploads.push(ListedUpload {
                        key,
                        upload_id,
                        record: codec::decode(&v)?,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// A ListObjectVersions request.
#[derive(Debug, Clone, Default)]
pub struct ListVersionsInput {
    /// Bucket.
    pub bucket: String,
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to common prefixes at this delimiter.
    pub delimiter: Option<String>,
    /// `key-marker`: start after this key, or (with `version_id_marker`)
    /// within it.
    pub key_marker: Option<String>,
    /// `version-id-marker`: start after this version of `key_marker`.
    pub version_id_marker: Option<String>,
    /// At most this many versions, delete markers and common prefixes
    /// (0..=1000).
    pub max_keys: usize,
}

/// One version as ListObjectVersions shows it.
#[derive(Debug, Clone)]
pub struct ListedVersion {
    /// The key.
    pub key: String,
    /// The version (a delete marker when `record.version.delete_marker`).
    pub record: ObjectRecord,
    /// Whether it is the key's current version.
    pub is_latest: bool,
}

/// A page of ListObjectVersions.
#[derive(Debug, Clone, Default)]
pub struct ListVersionsOutput {
    /// Versions and delete markers: by key, newest first within a key.
    pub versions: Vec<ListedVersion>,
    /// Common prefixes.
    pub common_prefixes: Vec<String>,
    /// More follow.
    pub is_truncated: bool,
    /// `NextKeyMarker`, when truncated.
    pub next_key_marker: Option<String>,
    /// `NextVersionIdMarker`, when truncated and the page ended in a key.
    pub next_version_id_marker: Option<String>,
}

impl Gateway {
    /// ListObjectVersions: one page. Each key's current version comes
    /// first, then its noncurrent ones, newest first; a page may end inside
    /// a key, and the markers resume right after its last version.
    pub async fn list_versions(
        &self,
        who: &RequestContext,
        input: ListVersionsInput,
    ) -> Result<ListVersionsOutput> {
        let (bucket, _) = self
            .bucket_for(who, &input.bucket, Permission::Read, None)
            .await?;
        let walk = Walk {
            base: records::objects_prefix(&input.bucket),
            prefix: &input.prefix,
            delimiter: input.delimiter.as_deref(),
        };
        let mut out = ListVersionsOutput::default();
        let mut remaining = input.max_keys;
        let owner_of = |mut rec: ObjectRecord| {
            if bucket.acls_disabled() {
                rec.owner.clone_from(&bucket.owner);
            }
            rec
        };
        let mut cursor = walk.start(None);
        if let Some(km) = input.key_marker.as_deref() {
            cursor = walk.start(Some(km.as_bytes()));
            if let Some(d) = walk.delimiter.filter(|d| !d.is_empty()) {
                // A marker that is itself a common prefix resumes after all
                // its keys.
                let rest = km.strip_prefix(input.prefix.as_str()).unwrap_or("");
                if !rest.is_empty()
                    && km.ends_with(d)
                    && find(rest.as_bytes(), d.as_bytes()) == Some(rest.len() - d.len())
                {
                    if let Some(next) = prefix_end(&[walk.base.as_slice(), km.as_bytes()].concat())
                    {
                        cursor = next;
                    }
                }
            }
            if let Some(vm) = input.version_id_marker.as_deref() {
                if km.starts_with(input.prefix.as_str()) {
                    let versions = self.versions_of(&input.bucket, km).await?;
                    let after = versions
                        .iter()
                        .position(|(r, _)| crate::versions::shown_id(&r.version) == vm)
                        .map_or(versions.len(), |i| i + 1);
                    for (rec, is_latest) in versions.into_iter().skip(after) {
                        if remaining == 0 {
                            out.is_truncated = true;
                            return Ok(out);
                        }
                        remaining -= 1;
                        out.next_key_marker = Some(km.to_owned());
                        out.next_version_id_marker =
                            Some(crate::versions::shown_id(&rec.version).to_owned());
                        out.versions.push(ListedVersion {
                            key: km.to_owned(),
                            record: owner_of(rec),
                            is_latest,
                        });
                    }
                }
            }
        }
        loop {
            let (mut items, _) = walk.run(self, cursor.clone(), 1, object_name, all).await?;
            let Some(item) = items.pop() else {
                break;
            };
            if remaining == 0 {
                out.is_truncated = true;
                break;
            }
            match item {
                Item::Prefix(p) => {
                    remaining -= 1;
                    out.next_key_marker = Some(p.clone());
                    out.next_version_id_marker = None;
                    match prefix_end(&[walk.base.as_slice(), p.as_bytes()].concat()) {
                        Some(next) => cursor = next,
                        None => {
                            out.common_prefixes.push(p);
                            break;
                        }
                    }
                    out.common_prefixes.push(p);
                }
                Item::Entry(k, _) => {
                    let key = String::from_utf8_lossy(&k[walk.base.len()..]).into_owned();
                    for (rec, is_latest) in self.versions_of(&input.bucket, &key).await? {
                        if remaining == 0 {
                            out.is_truncated = true;
                            return Ok(out);
                        }
                        remaining -= 1;
                        out.next_key_marker = Some(key.clone());
                        out.next_version_id_marker =
                            Some(crate::versions::shown_id(&rec.version).to_owned());
                        out.versions.push(ListedVersion {
                            key: key.clone(),
                            record: owner_of(rec),
                            is_latest,
                        });
                    }
                    cursor = k;
                    cursor.push(0);
                }
            }
        }
        if !out.is_truncated {
            out.next_key_marker = None;
            out.next_version_id_marker = None;
        }
        Ok(out)
    }

    /// Every version of a key, newest first, each with whether it is the
    /// current one.
    async fn versions_of(&self, bucket: &str, key: &str) -> Result<Vec<(ObjectRecord, bool)>> {
        let mut out = Vec::new();
        if let Some((cur, _)) = self.current(bucket, key).await? {
            out.push((cur, true));
        }
        for (_, rec, _) in self.noncurrent(bucket, key).await? {
            out.push((rec, false));
        }
        Ok(out)
    }
}
