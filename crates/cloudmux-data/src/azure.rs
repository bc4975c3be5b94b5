//! Azure Blob Storage location (`type = "azure"`).
//!
//! Each S3 object is one block blob in the configured container, named by
//! the [cloud layer](crate::cloud) (`<bucket>/<key>`, or `<key>` with
//! `bucket_match = true`), which also gives the staging area, timeouts,
//! retries and the reading of error answers. Content-Type, Cache-Control,
//! Content-Disposition, Content-Encoding, Content-Language and Content-MD5
//! become the blob's properties; user metadata becomes blob metadata with
//! names encoded by [`sign::encode_meta_name`] (Azure metadata names must be
//! C# identifiers) and values that are not printable ASCII as RFC 2047
//! encoded words ([`sign::encode_meta_value`]). Expires has no blob property
//! and is kept only in cloudmux's metadata.
//!
//! The client is a thin REST client over `reqwest` signing with Shared Key
//! (or appending a SAS token); see ARCHITECTURE.md for why no SDK crate.
//!
//! Writes:
//! - `stage` streams the body as blocks of at most 8 MiB (each block buffered,
//!   so memory is bounded and every block upload can be retried; the next
//!   block is read while the previous one uploads) onto a fresh blob under
//!   [`STAGING_PREFIX`](cloud::STAGING_PREFIX), then commits the block list.
//!   `Staged::id` is that staging blob's name. A body that fails commits an
//!   empty block list and deletes the blob, which drops every uploaded block.
//! - `publish` sets the content properties on the staging blob, copies it
//!   server-side onto the target (Copy Blob, with the encoded metadata), waits
//!   for the copy to finish (a copy still pending after four times
//!   `request_timeout_ms` is [`DataError::Unavailable`]) and deletes the
//!   staging blob. The target appears at once with its properties.
//!   `DataRef::locator` is the blob name and `DataRef::stamp` the first 8
//!   bytes of SHA-256 of the blob's ETag, which reads and deletes check so
//!   that data replaced behind cloudmux's back is never served as, or deleted
//!   for, an older version.
//! - `assemble` (multipart Complete) writes a new staging blob whose blocks
//!   are the pieces in order, each piece split into blocks of at most 8 MiB
//!   (well under the 100 MiB a block may hold), and commits the block list.
//!   The bytes are streamed through cloudmux because Azurite does not
//!   implement Put Block From URL; parts stay staging blobs until the core
//!   discards them (after Complete and on Abort). A whole published blob
//!   alone (a copy) is copied server-side (Copy Blob) into the staging area.
//!
//! Noncurrent versions: [`keep_version`](crate::Backend::keep_version)
//! copies the object's blob server-side (Copy Blob, polled until done as
//! for `publish`) onto `.cloudmux-versions/<name>/<version>`, the
//! [cloud layer](crate::cloud)'s versions area, with `x-ms-source-if-match`
//! of the ETag the reference's stamp names, so a replacement racing the copy
//! fails it ([`DataError::Stale`]). Copy Blob carries the content
//! properties; metadata given to it replaces the source's, so the source's
//! `x-ms-meta-*` entries (the staged-id entry included) are sent again,
//! with one more: `x-ms-meta-cmx__version_of` ([`SOURCE_META`]), the
//! source's ETag. A blob at the version's name whose copy finished, with
//! that entry equal to the current source's ETag and the same size, holds
//! those bytes (Azure ETags name one write of one blob) and is answered as
//! it is, so a retry makes no second copy; anything else there is copied
//! over. The copy's reference has its own stamp (SHA-256 of its ETag), which
//! reads and deletes check. [`locate_version`](crate::Backend::locate_version)
//! reads the copy's properties (a copy still pending is
//! [`DataError::Unavailable`]). Cost: one Copy Blob (and its polling) per
//! kept version, and a full copy's storage.
//!
//! Garbage collection: [`list_staged`](crate::Backend::list_staged) lists
//! the blobs under each of [`STAGING_PREFIXES`]
//! (List Blobs with the prefix and `include=uncommittedblobs`, every page),
//! so a blob that holds only uncommitted blocks (a staging write cut off by
//! a crash before its block list was committed) is listed too, each under
//! its name (the [`Staged::id`](crate::Staged)) with its Last-Modified. Only
//! staging names are listed, never a blob outside the staging area.
//! `discard` deletes the blob; when Delete Blob finds none (the blob is
//! gone, or holds only uncommitted blocks and the service does not count it
//! as a blob; Azurite deletes such a blob) it commits an empty block list,
//! which drops every uncommitted block, and deletes the empty blob. So a
//! listed id alone (size 0, stamp 0) removes the entry completely, and
//! `discard` refuses ids that are not staging names. Azure itself drops
//! uncommitted blocks a week after the last Put Block. The Last-Modified of
//! a blob of uncommitted blocks only may be that of its first block
//! (Azurite's is), so the caller's age guard must be longer than its longest
//! staging write.
//!
//! Finding published data after a crash: `publish` gives the target one
//! more metadata entry, `x-ms-meta-cmx__staged: <Staged::id>` (the name
//! [`STAGED_META`], a C# identifier that [`sign::encode_meta_name`] never
//! makes and [`sign::decode_meta_name`] refuses, so it cannot collide with a
//! client's metadata and [`decode_metadata`] leaves it out). A staged id
//! names one write only, so [`locate`](crate::Backend::locate) reads the
//! target's properties and answers it when that entry equals the staged
//! handle's id, the copy has finished (`x-ms-copy-status` absent or
//! `success`; `pending` is [`DataError::Unavailable`], to be asked again
//! later; `failed` or `aborted` is not found) and the size matches.
//! cloudmux answers S3 clients from its own records, never from native
//! metadata; native tools see the entry as one more metadata field.

#[path = "azure/sign.rs"]
pub mod sign;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::cloud::http::{self, Http};
use crate::cloud::{self, CloudOptions, STAGING_PREFIXES};
use crate::{
    Backend, BodyStream, ByteRange, DataError, DataRef, NativeMeta, ObjectPath, Piece, Result,
    Staged, StagedEntry,
};

/// Largest block `stage` and `assemble` upload.
pub const BLOCK_SIZE: usize = 8 << 20;
/// The Blob service REST version cloudmux speaks.
const API_VERSION: &str = "2021-08-06";
/// The metadata name under which `publish` records the staged id of the
/// bytes it published (see the [module documentation](self)).
pub const STAGED_META: &str = "cmx__staged";
/// The metadata name under which `keep_version` records, on the copy of a
/// noncurrent version, the ETag of the blob it copied (see the
/// [module documentation](self)). Like [`STAGED_META`], a name
/// [`sign::encode_meta_name`] never makes.
pub const SOURCE_META: &str = "cmx__version_of";

/// `[locations.NAME]` with `type = "azure"`. Its `Debug` output leaves the
/// account key and the SAS token out.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// Storage account name (`devstoreaccount1` for Azurite).
    pub account: String,
    /// Account key (base64), for Shared Key authorization.
    #[serde(default)]
    pub account_key: Option<String>,
    /// File holding the account key.
    #[serde(default)]
    pub account_key_file: Option<std::path::PathBuf>,
    /// Environment variable holding the account key.
    #[serde(default)]
    pub account_key_env: Option<String>,
    /// A SAS token (with or without the leading `?`) used instead of an
    /// account key; it needs read, write, delete and list rights on the
    /// container.
    #[serde(default)]
    pub sas_token: Option<String>,
    /// Blob service endpoint including the account for emulators
    /// (`http://127.0.0.1:10000/devstoreaccount1`); omitted for Azure itself
    /// (`https://ACCOUNT.blob.core.windows.net`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The container holding the objects; it must exist.
    pub container: String,
    /// Options shared by all cloud locations (`bucket_match`,
    /// `connect_timeout_ms`, `request_timeout_ms`, `max_retries`).
    #[serde(flatten)]
    pub cloud: CloudOptions,
}

impl std::fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("AzureConfig")
            .field("account", &self.account)
            .field("account_key", &redacted(&self.account_key))
            .field("account_key_file", &self.account_key_file)
            .field("account_key_env", &self.account_key_env)
            .field("sas_token", &redacted(&self.sas_token))
            .field("endpoint", &self.endpoint)
            .field("container", &self.container)
            .field("cloud", &self.cloud)
            .finish()
    }
}

/// How requests are authorized.
#[derive(Clone)]
enum Auth {
    /// Shared Key with the decoded account key.
    Key(Vec<u8>),
    /// A SAS token appended to every URL (without the leading `?`).
    Sas(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Key(_) => "Key(..)",
            Auth::Sas(_) => "Sas(..)",
        })
    }
}

/// Characters escaped in a blob name: everything but unreserved characters
/// and `/`.
const NAME: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// [`NAME`] with `/` escaped too, for names with `.` or `..` segments: the
/// whole name is then one URL path segment, which URL normalization leaves
/// alone (the Blob service decodes `%2F` back to `/`).
const NAME_OPAQUE: &AsciiSet = &NAME.add(b'/');

/// Data backend storing objects as block blobs in one Azure container.
#[derive(Debug, Clone)]
pub struct AzureBackend {
    http: Http,
    account: String,
    auth: Auth,
    /// Endpoint without a trailing `/`.
    endpoint: String,
    container: String,
}

/// One request before signing.
struct Req<'a> {
    method: Method,
    blob: Option<&'a str>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
}

impl<'a> Req<'a> {
    fn new(method: Method, blob: Option<&'a str>) -> Self {
        Self {
            method,
            blob,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn q(mut self, n: &str, v: &str) -> Self {
        self.query.push((n.to_owned(), v.to_owned()));
        self
    }

    fn h(mut self, n: &str, v: impl Into<String>) -> Self {
        self.headers.push((n.to_owned(), v.into()));
        self
    }

    fn body(mut self, b: Bytes) -> Self {
        self.body = Some(b);
        self
    }
}

impl AzureBackend {
    /// Builds the backend for location `name`. Reads the account key from
    /// its file or environment variable; does not contact Azure (see
    /// [`Backend::probe`]).
    pub fn new(name: &str, config: &AzureConfig) -> std::result::Result<Self, String> {
        let key = crate::secret::SecretSource {
            field: "account_key",
            inline: config.account_key.as_deref(),
            file: config.account_key_file.as_deref(),
            env: config.account_key_env.as_deref(),
        }
        .resolve()?;
        let auth = match (key, &config.sas_token) {
            (Some(k), None) => Auth::Key(
                base64::engine::general_purpose::STANDARD
                    .decode(k.trim())
                    .map_err(|_| "account_key: not valid base64".to_owned())?,
            ),
            (None, Some(s)) => Auth::Sas(s.trim().trim_start_matches('?').to_owned()),
            (None, None) => return Err("give account_key (or _file/_env) or sas_token".into()),
            (Some(_), Some(_)) => return Err("give account_key or sas_token, not both".into()),
        };
        if config.container.is_empty() {
            return Err("container: must not be empty".into());
        }
        let endpoint = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", config.account))
            .trim_end_matches('/')
            .to_owned();
        reqwest::Url::parse(&endpoint).map_err(|e| format!("endpoint: {e}"))?;
        Ok(Self {
            http: Http::new(name, &config.cloud)?,
            account: config.account.clone(),
            auth,
            endpoint,
            container: config.container.clone(),
        })
    }

    /// Creates the container if it does not exist (for setup tools and
    /// tests; cloudmux itself expects the container to exist).
    pub async fn create_container(&self) -> Result<()> {
        let resp = self
            .call(
                "create container",
                true,
                Req::new(Method::PUT, None).q("restype", "container"),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Ok(()),
            _ => Err(self.http.refused("create container", resp).await),
        }
    }

    /// Names of the blobs under `prefix`, including blobs that hold only
    /// uncommitted blocks (for `locations check` and tests).
    pub async fn list_names(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .list_blobs(prefix)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// The blobs under `prefix`, including blobs that hold only uncommitted
    /// blocks, with their Last-Modified when it parses; every page.
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<(String, Option<SystemTime>)>> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let mut r = Req::new(Method::GET, None)
                .q("restype", "container")
                .q("comp", "list")
                .q("prefix", prefix)
                .q("include", "uncommittedblobs");
            if !marker.is_empty() {
                r = r.q("marker", &marker);
            }
            let resp = self.call("list blobs", true, r).await?;
            if !resp.status().is_success() {
                return Err(self.http.refused("list blobs", resp).await);
            }
            let text = resp
                .text()
                .await
                .map_err(|e| self.http.unavailable(http::describe(e)))?;
            for blob in xml_elements(&text, "Blob") {
                let Some(name) = xml_values(blob, "Name").pop() else {
                    continue;
                };
                let modified = xml_values(blob, "Last-Modified")
                    .pop()
                    .and_then(|t| httpdate::parse_http_date(&t).ok());
                out.push((name, modified));
            }
            marker = xml_values(&text, "NextMarker").pop().unwrap_or_default();
            if marker.is_empty() {
                return Ok(out);
            }
        }
    }

    /// The URL path and full URL (without query) of a blob or the container.
    fn url(&self, blob: Option<&str>) -> Result<reqwest::Url> {
        let mut s = format!("{}/{}", self.endpoint, self.container);
        if let Some(b) = blob {
            s.push('/');
            let dots = b.split('/').any(|seg| seg == "." || seg == "..");
            s.extend(utf8_percent_encode(
                b,
                if dots { NAME_OPAQUE } else { NAME },
            ));
        }
        reqwest::Url::parse(&s).map_err(|e| self.http.failed(format!("bad URL: {e}")))
    }

    /// A blob URL that Azure itself can read as a copy source.
    fn source_url(&self, blob: &str) -> Result<String> {
        let mut url = self.url(Some(blob))?;
        if let Auth::Sas(s) = &self.auth {
            url.set_query(Some(s));
        }
        Ok(url.to_string())
    }

    /// Builds a signed request.
    fn build(&self, r: &Req<'_>) -> Result<reqwest::RequestBuilder> {
        let mut url = self.url(r.blob)?;
        {
            let mut qp = url.query_pairs_mut();
            for (n, v) in &r.query {
                qp.append_pair(n, v);
            }
        }
        if let Auth::Sas(s) = &self.auth {
            let q = match url.query() {
                Some(q) if !q.is_empty() => format!("{q}&{s}"),
                _ => s.clone(),
            };
            url.set_query(Some(&q));
        } else if r.query.is_empty() {
            url.set_query(None);
        }
        let mut headers = r.headers.clone();
        headers.push(("x-ms-version".into(), API_VERSION.into()));
        headers.push((
            "x-ms-date".into(),
            httpdate::fmt_http_date(SystemTime::now()),
        ));
        let len = r.body.as_ref().map_or(0, |b| b.len());
        if matches!(r.method, Method::PUT | Method::POST) {
            headers.push(("content-length".into(), len.to_string()));
        }
        if let Auth::Key(key) = &self.auth {
            let auth = sign::shared_key(
                &self.account,
                key,
                r.method.as_str(),
                url.path(),
                &r.query,
                &headers,
            );
            headers.push(("authorization".into(), auth));
        }
        let mut rb = self.http.client.request(r.method.clone(), url);
        for (n, v) in headers {
            if n == "content-length" {
                continue;
            }
            rb = rb.header(n, v);
        }
        rb = rb.body(r.body.clone().unwrap_or_default());
        Ok(rb)
    }

    /// Sends a request without a streamed body, retrying when idempotent.
    async fn call(&self, what: &str, idempotent: bool, r: Req<'_>) -> Result<reqwest::Response> {
        self.http
            .send(what, idempotent, true, || self.build(&r))
            .await
    }

    /// The block id of block `n` of a blob (all ids of a blob have one length).
    fn block_id(n: usize) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("blk{n:010}"))
    }

    async fn put_block(&self, blob: &str, n: usize, data: Bytes) -> Result<()> {
        let id = Self::block_id(n);
        let resp = self
            .call(
                "put block",
                true,
                Req::new(Method::PUT, Some(blob))
                    .q("comp", "block")
                    .q("blockid", &id)
                    .body(data),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("put block", resp).await);
        }
        Ok(())
    }

    /// Commits blocks `0..count` as the blob's content.
    async fn put_block_list(&self, blob: &str, count: usize) -> Result<()> {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for n in 0..count {
            xml.push_str("<Latest>");
            xml.push_str(&Self::block_id(n));
            xml.push_str("</Latest>");
        }
        xml.push_str("</BlockList>");
        let resp = self
            .call(
                "put block list",
                true,
                Req::new(Method::PUT, Some(blob))
                    .q("comp", "blocklist")
                    .h("content-type", "application/xml")
                    .body(Bytes::from(xml)),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("put block list", resp).await);
        }
        Ok(())
    }

    /// Deletes a blob, optionally only if its ETag still matches. Gone (or
    /// replaced, with `if_match`) counts as done.
    async fn delete_blob(&self, blob: &str, if_match: Option<&str>) -> Result<()> {
        let mut r = Req::new(Method::DELETE, Some(blob));
        if let Some(e) = if_match {
            r = r.h("if-match", e);
        }
        let resp = self.call("delete blob", true, r).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED => Ok(()),
            _ => Err(self.http.refused("delete blob", resp).await),
        }
    }

    /// Removes a blob that may hold only uncommitted blocks: committing an
    /// empty block list drops them, then the empty blob is deleted.
    async fn drop_blob(&self, blob: &str) -> Result<()> {
        self.put_block_list(blob, 0).await?;
        self.delete_blob(blob, None).await
    }

    /// The response headers of Get Blob Properties of a blob, `None` if it
    /// does not exist.
    async fn properties(&self, blob: &str) -> Result<Option<reqwest::header::HeaderMap>> {
        let resp = self
            .call(
                "get blob properties",
                true,
                Req::new(Method::HEAD, Some(blob)),
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp.headers().clone())),
            _ => Err(self.http.refused("get blob properties", resp).await),
        }
    }

    /// The ETag and size among a blob's properties.
    fn etag_and_size(
        &self,
        blob: &str,
        props: &reqwest::header::HeaderMap,
    ) -> Result<(String, u64)> {
        let size = header_value(props, "content-length").and_then(|v| v.parse::<u64>().ok());
        match (header_value(props, "etag"), size) {
            (Some(etag), Some(size)) => Ok((etag, size)),
            _ => Err(self
                .http
                .failed(format!("blob {blob}: properties without size or ETag"))),
        }
    }

    /// The ETag of a blob, `None` if it does not exist.
    async fn etag(&self, blob: &str) -> Result<Option<String>> {
        let resp = self
            .call(
                "get blob properties",
                true,
                Req::new(Method::HEAD, Some(blob)),
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(header(&resp, "etag")),
            _ => Err(self.http.refused("get blob properties", resp).await),
        }
    }

    /// Writes `body` as blocks onto `blob` and commits them; on failure the
    /// blocks are dropped. Returns the size.
    async fn write_blocks(&self, blob: &str, body: BodyStream) -> Result<u64> {
        let mut n = 0usize;
        let res = self.put_stream(blob, &mut n, body, false).await;
        let size = match res {
            Ok(size) => size,
            Err(e) => {
                if n > 0 {
                    let _ = self.drop_blob(blob).await;
                }
                return Err(e);
            }
        };
        self.put_block_list(blob, n).await?;
        Ok(size)
    }

    /// Uploads `body` as uncommitted blocks `n..` of `blob` (advancing `n`),
    /// reading the next block while the previous one uploads, so at most two
    /// blocks are in memory. A failing stream is the client's
    /// ([`DataError::Body`]) unless `from_cloud`, when it is the cloud's
    /// ([`DataError::Unavailable`]). Returns the number of bytes.
    async fn put_stream(
        &self,
        blob: &str,
        n: &mut usize,
        mut body: BodyStream,
        from_cloud: bool,
    ) -> Result<u64> {
        let lift = |e: crate::BodyError| {
            if from_cloud {
                self.http.unavailable(format!("reading a piece: {e}"))
            } else {
                DataError::Body(e)
            }
        };
        let mut carry = None;
        let mut size = 0u64;
        let mut buf = BytesMut::with_capacity(BLOCK_SIZE);
        let mut more = http::fill(&mut body, &mut buf, BLOCK_SIZE, &mut carry)
            .await
            .map_err(lift)?;
        while !buf.is_empty() {
            let block = buf.split().freeze();
            size += block.len() as u64;
            if !more {
                self.put_block(blob, *n, block).await?;
                *n += 1;
                break;
            }
            let mut next = BytesMut::with_capacity(BLOCK_SIZE);
            let (put, read) = futures_util::future::join(
                self.put_block(blob, *n, block),
                http::fill(&mut body, &mut next, BLOCK_SIZE, &mut carry),
            )
            .await;
            *n += 1;
            put?;
            more = read.map_err(lift)?;
            buf = next;
        }
        Ok(size)
    }

    /// Streams a blob (or a range of it), checking its stamp when non-zero.
    async fn get(&self, blob: &str, stamp: u64, range: Option<ByteRange>) -> Result<BodyStream> {
        let mut r = Req::new(Method::GET, Some(blob));
        if let Some(rg) = range {
            r = r.h("x-ms-range", format!("bytes={}-{}", rg.first, rg.last));
        }
        let resp = self.call_streaming("get blob", r).await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("get blob", resp).await);
        }
        if stamp != 0 && header(&resp, "etag").map(|e| stamp_of(&e)) != Some(stamp) {
            return Err(DataError::Stale(format!(
                "location {}: blob {blob} was replaced",
                self.http.location
            )));
        }
        Ok(http::response_stream(&self.http.location, resp))
    }

    /// Sends a request whose answer is streamed: only the wait for the
    /// response headers (and each later read) is bounded.
    async fn call_streaming(&self, what: &str, r: Req<'_>) -> Result<reqwest::Response> {
        self.http.send(what, true, false, || self.build(&r)).await
    }

    /// Content properties as Set Blob Properties headers.
    fn property_headers<'a>(mut r: Req<'a>, meta: &NativeMeta) -> Req<'a> {
        let props = [
            ("x-ms-blob-content-type", &meta.content_type),
            ("x-ms-blob-cache-control", &meta.cache_control),
            ("x-ms-blob-content-disposition", &meta.content_disposition),
            ("x-ms-blob-content-encoding", &meta.content_encoding),
            ("x-ms-blob-content-language", &meta.content_language),
        ];
        for (h, v) in props {
            if let Some(v) = v {
                r = r.h(h, v.clone());
            }
        }
        if let Some(md5) = meta.content_md5 {
            r = r.h(
                "x-ms-blob-content-md5",
                base64::engine::general_purpose::STANDARD.encode(md5),
            );
        }
        r
    }

    /// Copies published data server-side into a new staging blob (a copy
    /// within the location), checking the source's stamp and clearing the
    /// metadata Copy Blob carries over, so `publish` sets exactly the new
    /// object's.
    async fn copy_to_staging(&self, src: &DataRef) -> Result<Staged> {
        let etag = self
            .etag(&src.locator)
            .await?
            .ok_or_else(|| DataError::NotFound(format!("blob {} is gone", src.locator)))?;
        if src.stamp != 0 && stamp_of(&etag) != src.stamp {
            return Err(DataError::Stale(format!(
                "location {}: blob {} was replaced",
                self.http.location, src.locator
            )));
        }
        let blob = cloud::staging_name();
        let res = async {
            let r = Req::new(Method::PUT, Some(&blob))
                .h("x-ms-copy-source", self.source_url(&src.locator)?)
                .h("x-ms-source-if-match", etag.clone());
            self.start_copy(&blob, r).await?;
            let resp = self
                .call(
                    "set blob metadata",
                    true,
                    Req::new(Method::PUT, Some(&blob)).q("comp", "metadata"),
                )
                .await?;
            if !resp.status().is_success() {
                return Err(self.http.refused("set blob metadata", resp).await);
            }
            Ok(())
        }
        .await;
        if let Err(e) = res {
            let _ = self.delete_blob(&blob, None).await;
            return Err(e);
        }
        Ok(Staged {
            id: blob,
            size: src.size,
            stamp: 0,
        })
    }

    /// Copies the staging blob `src` onto `dst` server-side with `meta`'s
    /// user metadata and `src` as the [`STAGED_META`] entry, and waits until
    /// the copy has finished.
    async fn copy_blob(&self, src: &str, dst: &str, meta: &NativeMeta) -> Result<()> {
        let mut r = Req::new(Method::PUT, Some(dst))
            .h("x-ms-copy-source", self.source_url(src)?)
            .h(&format!("x-ms-meta-{STAGED_META}"), src);
        for (n, v) in &meta.user {
            r = r.h(
                &format!("x-ms-meta-{}", sign::encode_meta_name(n)),
                sign::encode_meta_value(v),
            );
        }
        self.start_copy(dst, r).await
    }

    /// What [`Backend::locate`] answers from the properties of blob `name`.
    async fn locate_blob(&self, name: String, staged: &Staged) -> Result<Option<DataRef>> {
        let resp = self
            .call(
                "get blob properties",
                true,
                Req::new(Method::HEAD, Some(&name)),
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            _ => return Err(self.http.refused("get blob properties", resp).await),
        }
        let id = header(&resp, &format!("x-ms-meta-{STAGED_META}"));
        if id.as_deref() != Some(staged.id.as_str()) {
            return Ok(None);
        }
        match header(&resp, "x-ms-copy-status").as_deref() {
            None | Some("success") => {}
            Some("pending") => {
                return Err(self
                    .http
                    .unavailable(format!("blob {name}: copy still pending")))
            }
            Some(_) => return Ok(None),
        }
        let size = header(&resp, "content-length").and_then(|v| v.parse::<u64>().ok());
        let etag = header(&resp, "etag");
        let (Some(size), Some(etag)) = (size, etag) else {
            return Err(self
                .http
                .failed(format!("blob {name}: properties without size or ETag")));
        };
        if size != staged.size {
            tracing::warn!(location = %self.http.location, blob = %name, size, staged = staged.size,
                "published data has another size than was staged");
            return Ok(None);
        }
        Ok(Some(DataRef {
            locator: name,
            size,
            stamp: stamp_of(&etag),
        }))
    }

    /// Sends a Copy Blob request onto `dst` and waits until the copy has
    /// finished (polling while Azure reports it pending).
    async fn start_copy(&self, dst: &str, r: Req<'_>) -> Result<()> {
        let resp = self.call("copy blob", true, r).await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("copy blob", resp).await);
        }
        let mut status = header(&resp, "x-ms-copy-status").unwrap_or_default();
        let deadline = tokio::time::Instant::now() + self.http.opts.request_timeout() * 4;
        while status == "pending" {
            if tokio::time::Instant::now() > deadline {
                return Err(self.http.unavailable("copy blob: still pending"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let resp = self
                .call(
                    "get blob properties",
                    true,
                    Req::new(Method::HEAD, Some(dst)),
                )
                .await?;
            if !resp.status().is_success() {
                return Err(self.http.refused("get blob properties", resp).await);
            }
            status = header(&resp, "x-ms-copy-status").unwrap_or_default();
        }
        if status != "success" && !status.is_empty() {
            return Err(self.http.failed(format!("copy blob ended as {status}")));
        }
        Ok(())
    }

    /// Where a piece's bytes are: blob name, stamp to check, range, and
    /// length. A staged piece must have a staging name.
    fn piece_source(piece: &Piece) -> Result<(String, u64, Option<ByteRange>, u64)> {
        match piece {
            Piece::Staged(s) => {
                cloud::check_staging_name(&s.id)?;
                Ok((s.id.clone(), 0, None, s.size))
            }
            Piece::Published(d, r) => {
                let len = r.map_or(d.size, |r| r.last - r.first + 1);
                Ok((d.locator.clone(), d.stamp, *r, len))
            }
        }
    }
}

/// The raw contents of every `<tag>` element in `xml` (not nested in
/// itself), not unescaped.
fn xml_elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(&rest[..j]);
        rest = &rest[j + close.len()..];
    }
    out
}

/// The text of every `<tag>` element in `xml`, unescaped.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(
            rest[..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &rest[j + close.len()..];
    }
    out
}

/// A response header as a string.
fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    header_value(resp.headers(), name)
}

/// A header of a header map as a string.
fn header_value(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The stamp of an ETag: its SHA-256's first 8 bytes (never 0).
pub(crate) fn stamp_of(etag: &str) -> u64 {
    let h = Sha256::digest(etag.trim_matches('"').as_bytes());
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes")).max(1)
}

#[async_trait::async_trait]
impl Backend for AzureBackend {
    async fn stage(&self, body: BodyStream) -> Result<Staged> {
        let blob = cloud::staging_name();
        let size = self.write_blocks(&blob, body).await?;
        Ok(Staged {
            id: blob,
            size,
            stamp: 0,
        })
    }

    async fn persist(&self, staged: &Staged) -> Result<()> {
        // Staged data is durable once uploaded; only the id is checked.
        cloud::check_staging_name(&staged.id)
    }

    async fn publish(&self, staged: Staged, target: ObjectPath<'_>) -> Result<DataRef> {
        cloud::check_staging_name(&staged.id)?;
        let name = self
            .http
            .opts
            .target_name(&self.http.location, target.bucket, target.key)?;
        let r = Self::property_headers(
            Req::new(Method::PUT, Some(&staged.id)).q("comp", "properties"),
            target.meta,
        );
        let resp = self.call("set blob properties", true, r).await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("set blob properties", resp).await);
        }
        self.copy_blob(&staged.id, &name, target.meta).await?;
        let etag = self
            .etag(&name)
            .await?
            .ok_or_else(|| DataError::NotFound(format!("blob {name} vanished after copy")))?;
        if let Err(e) = self.delete_blob(&staged.id, None).await {
            tracing::warn!(location = %self.http.location, blob = %staged.id, error = %e, "staging blob left behind");
        }
        Ok(DataRef {
            locator: name,
            size: staged.size,
            stamp: stamp_of(&etag),
        })
    }

    /// A server-side Copy Blob onto the version's name, marked with the
    /// source's ETag (see the [module documentation](self)).
    async fn keep_version(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef> {
        crate::check_version(version)?;
        let opts = &self.http.opts;
        opts.target_name(&self.http.location, target.bucket, target.key)?;
        let dest = opts.version_name(target.bucket, target.key, version);
        let Some(source) = self.properties(&data.locator).await? else {
            return Err(DataError::NotFound(format!(
                "location {}: blob {} is gone",
                self.http.location, data.locator
            )));
        };
        let (etag, size) = self.etag_and_size(&data.locator, &source)?;
        if size != data.size || (data.stamp != 0 && stamp_of(&etag) != data.stamp) {
            return Err(DataError::Stale(format!(
                "location {}: blob {} was replaced",
                self.http.location, data.locator
            )));
        }
        let mark = etag.trim_matches('"').to_owned();
        let marker = format!("x-ms-meta-{SOURCE_META}");
        if let Some(kept) = self.properties(&dest).await? {
            let done = matches!(
                header_value(&kept, "x-ms-copy-status").as_deref(),
                None | Some("success")
            );
            let (kept_etag, kept_size) = self.etag_and_size(&dest, &kept)?;
            if done && kept_size == size && header_value(&kept, &marker) == Some(mark.clone()) {
                return Ok(DataRef {
                    locator: dest,
                    size,
                    stamp: stamp_of(&kept_etag),
                });
            }
        }
        // Metadata given to Copy Blob replaces the source's, so the source's
        // entries are sent again beside the marker.
        let mut r = Req::new(Method::PUT, Some(&dest))
            .h("x-ms-copy-source", self.source_url(&data.locator)?)
            .h("x-ms-source-if-match", etag.clone());
        for (name, value) in &source {
            let name = name.as_str();
            if name.starts_with("x-ms-meta-") && name != marker {
                let value = value.to_str().map_err(|_| {
                    self.http
                        .failed(format!("blob {}: metadata {name} is no text", data.locator))
                })?;
                r = r.h(name, value);
            }
        }
        r = r.h(&marker, mark);
        self.start_copy(&dest, r).await?;
        let copied = self
            .etag(&dest)
            .await?
            .ok_or_else(|| DataError::NotFound(format!("blob {dest} vanished after copy")))?;
        Ok(DataRef {
            locator: dest,
            size,
            stamp: stamp_of(&copied),
        })
    }

    /// The copy is durable on return, as with `keep_version`.
    async fn keep_version_unsynced(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef> {
        self.keep_version(data, target, version).await
    }

    async fn locate_version(
        &self,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<Option<DataRef>> {
        crate::check_version(version)?;
        let name = self
            .http
            .opts
            .version_name(target.bucket, target.key, version);
        let found = async {
            let Some(kept) = self.properties(&name).await? else {
                return Ok(None);
            };
            match header_value(&kept, "x-ms-copy-status").as_deref() {
                None | Some("success") => {}
                Some("pending") => {
                    return Err(self
                        .http
                        .unavailable(format!("blob {name}: copy still pending")))
                }
                Some(_) => return Ok(None),
            }
            let (etag, size) = self.etag_and_size(&name, &kept)?;
            Ok(Some(DataRef {
                locator: name.clone(),
                size,
                stamp: stamp_of(&etag),
            }))
        };
        found.await.map_err(|e| match e {
            DataError::Unavailable(m) => DataError::Unavailable(m),
            e => DataError::Unavailable(e.to_string()),
        })
    }

    /// A staged copy here is a temp object: it is published before a
    /// record may name it.
    async fn staged_ref(
        &self,
        _staged: &Staged,
        _target: ObjectPath<'_>,
    ) -> Result<Option<DataRef>> {
        Ok(None)
    }

    async fn discard(&self, staged: &Staged) -> Result<()> {
        cloud::check_staging_name(&staged.id)?;
        let resp = self
            .call(
                "delete blob",
                true,
                Req::new(Method::DELETE, Some(&staged.id)),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            // Gone, or a blob of uncommitted blocks only, which Delete Blob
            // does not see (see the module documentation).
            StatusCode::NOT_FOUND => self.drop_blob(&staged.id).await,
            _ => Err(self.http.refused("delete blob", resp).await),
        }
    }

    async fn read(&self, data: &DataRef, range: Option<ByteRange>) -> Result<BodyStream> {
        self.get(&data.locator, data.stamp, range).await
    }

    async fn read_staged(&self, staged: &Staged, range: Option<ByteRange>) -> Result<BodyStream> {
        cloud::check_staging_name(&staged.id)?;
        self.get(&staged.id, 0, range).await
    }

    async fn delete(&self, data: &DataRef) -> Result<()> {
        let Some(etag) = self.etag(&data.locator).await? else {
            return Ok(());
        };
        if data.stamp != 0 && stamp_of(&etag) != data.stamp {
            return Ok(());
        }
        self.delete_blob(&data.locator, Some(&etag)).await
    }

    async fn assemble(&self, pieces: Vec<Piece>) -> Result<Staged> {
        if let [Piece::Published(d, None)] = pieces.as_slice() {
            return self.copy_to_staging(d).await;
        }
        let blob = cloud::staging_name();
        let mut n = 0usize;
        let mut size = 0u64;
        let res: Result<()> = async {
            for piece in &pieces {
                let (src, stamp, range, len) = Self::piece_source(piece)?;
                if len == 0 {
                    continue;
                }
                let body = self.get(&src, stamp, range).await?;
                let copied = self.put_stream(&blob, &mut n, body, true).await?;
                if copied != len {
                    return Err(self
                        .http
                        .failed(format!("piece {src}: expected {len} bytes, read {copied}")));
                }
                size += copied;
            }
            Ok(())
        }
        .await;
        if let Err(e) = res {
            if n > 0 {
                let _ = self.drop_blob(&blob).await;
            }
            return Err(e);
        }
        self.put_block_list(&blob, n).await?;
        Ok(Staged {
            id: blob,
            size,
            stamp: 0,
        })
    }

    async fn locate(&self, target: ObjectPath<'_>, staged: &Staged) -> Result<Option<DataRef>> {
        let name = self.http.opts.object_name(target.bucket, target.key);
        self.locate_blob(name, staged).await.map_err(|e| match e {
            DataError::Unavailable(m) => DataError::Unavailable(m),
            e => DataError::Unavailable(e.to_string()),
        })
    }

    async fn list_staged(&self) -> Result<Vec<StagedEntry>> {
        let mut out = Vec::new();
        for prefix in STAGING_PREFIXES {
            for (id, modified) in self.list_blobs(prefix).await? {
                if cloud::is_staging_name(&id) {
                    out.push(StagedEntry {
                        id,
                        // No time reported: taken as written just now, so
                        // the entry waits for a sweep that sees one.
                        modified: modified.unwrap_or_else(SystemTime::now),
                    });
                }
            }
        }
        Ok(out)
    }

    /// A server-side copy the cloud accepted may land up to one request
    /// timeout after its client gave up or died.
    fn publish_grace(&self) -> std::time::Duration {
        self.http.opts.request_timeout()
    }

    /// Azure Storage encrypts all data at rest with AES-256 and cannot be
    /// turned off ("Azure Storage encryption for data at rest").
    fn encrypts_at_rest(&self) -> bool {
        true
    }

    async fn probe(&self) -> Result<()> {
        let resp = self
            .call(
                "get container properties",
                true,
                Req::new(Method::HEAD, None).q("restype", "container"),
            )
            .await?;
        if !resp.status().is_success() {
            return cloud::container_call(Err(self
                .http
                .refused("get container properties", resp)
                .await));
        }
        Ok(())
    }
}

/// Reads the user metadata of a blob's response headers back into S3 names
/// (used by tests and tools).
pub fn decode_metadata<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    headers
        .filter_map(|(n, v)| {
            let n = n.to_ascii_lowercase();
            let name = n.strip_prefix("x-ms-meta-")?;
            Some((sign::decode_meta_name(name)?, v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_read_blob_by_blob() {
        let xml = "<?xml version=\"1.0\"?><EnumerationResults><Prefix>.cloudmux-staging/</Prefix>\
            <Blobs><Blob><Name>.cloudmux-staging/a&amp;b</Name><Properties>\
            <Last-Modified>Thu, 03 Dec 2026 09:48:04 GMT</Last-Modified></Properties></Blob>\
            <Blob><Name>.cloudmux-staging/c</Name><Properties></Properties></Blob></Blobs>\
            <NextMarker>m1</NextMarker></EnumerationResults>";
        let blobs = xml_elements(xml, "Blob");
        assert_eq!(blobs.len(), 2);
        assert_eq!(xml_values(blobs[0], "Name"), [".cloudmux-staging/a&b"]);
        assert_eq!(
            xml_values(blobs[0], "Last-Modified")
                .pop()
                .map(|t| httpdate::parse_http_date(&t).unwrap()),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_291_284))
        );
        assert!(xml_values(blobs[1], "Last-Modified").is_empty());
        assert_eq!(xml_values(xml, "NextMarker"), ["m1"]);
    }

    #[test]
    fn the_staged_entry_is_never_a_client_name() {
        assert_eq!(sign::decode_meta_name(STAGED_META), None);
        assert_eq!(sign::decode_meta_name(SOURCE_META), None);
        for n in [
            "staged",
            "_staged",
            "cmx__staged",
            STAGED_META,
            "cmx_staged",
            "version_of",
            "_version_of",
            SOURCE_META,
        ] {
            assert_ne!(sign::encode_meta_name(n), STAGED_META, "{n}");
            assert_ne!(sign::encode_meta_name(n), SOURCE_META, "{n}");
        }
        let headers = [
            ("x-ms-meta-cmx__staged", ".cloudmux-staging/x"),
            ("x-ms-meta-cmx__version_of", "0x8DC0FFEE"),
            ("x-ms-meta-color", "blue"),
        ];
        assert_eq!(
            decode_metadata(headers.into_iter()),
            [("color".to_owned(), "blue".to_owned())]
        );
    }
}
