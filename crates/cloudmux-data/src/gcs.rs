//! Google Cloud Storage location (`type = "gcs"`).
//!
//! Each S3 object is one object in the configured GCS bucket, named by the
//! [cloud layer](crate::cloud) (`<bucket>/<key>`, or `<key>` with
//! `bucket_match = true`), which also gives the staging area, timeouts,
//! retries and the reading of error answers (GCS names no error code that
//! tells a missing bucket from a missing object, so outside a probe both are
//! [`DataError::NotFound`]). Content-Type, Cache-Control,
//! Content-Disposition, Content-Encoding and Content-Language become the
//! object's own fields and user metadata its custom `metadata` map, names
//! and values unchanged.
//! Reads always send `Accept-Encoding: gzip`, so GCS never transcodes an
//! object stored with `Content-Encoding: gzip` and ranges stay byte-exact.
//!
//! The client is a thin client of the GCS JSON API over `reqwest` (see
//! ARCHITECTURE.md for why not the `google-cloud-storage` crate). With a
//! `credentials_file` (a service-account key) requests carry OAuth tokens
//! minted by `gcs/auth.rs`; without one they are anonymous (emulators).
//!
//! Writes:
//! - `stage` uploads the body to a fresh object under
//!   [`STAGING_PREFIX`](cloud::STAGING_PREFIX): one media upload when it fits
//!   in [`UPLOAD_CHUNK`] (8 MiB), else a resumable upload sent in 8 MiB chunks,
//!   each buffered (bounded memory) and retried on its own. `Staged::id` is
//!   the object's name and `Staged::stamp` its generation.
//! - `publish` rewrites the staging object onto the target server-side
//!   (`rewriteTo`, carrying the content fields and metadata, so the target
//!   appears at once complete and keeps its MD5), then deletes the staging
//!   object. `DataRef::locator` is the object name, `DataRef::stamp` its
//!   generation: reads check `x-goog-generation` and deletes send
//!   `ifGenerationMatch`, so replaced data is neither served nor deleted.
//! - `assemble` composes the pieces server-side, at most 32 sources per
//!   compose call: pieces are grouped by 32 into intermediate objects, round
//!   after round, until one compose makes the result (10,000 parts take three
//!   rounds: 313, 10, 1 calls). Intermediates are deleted as soon as the
//!   next round has used them; a range of a published object is first
//!   copied into its own temporary object (streamed through cloudmux, as
//!   compose takes only whole objects).
//!
//! Noncurrent versions: [`keep_version`](crate::Backend::keep_version)
//! rewrites the object server-side (`rewriteTo` with
//! `ifSourceGenerationMatch` of the reference's stamp, so a replacement
//! racing the copy fails it) onto `.cloudmux-versions/<name>/<version>`,
//! the [cloud layer](crate::cloud)'s versions area. The copy is given the
//! source's content fields and custom metadata (the staged-id entry
//! included) and one more entry, [`SOURCE_META`]
//! (`cloudmux-version-of: <generation>`), the source's generation; a client's
//! entry of that name is replaced in the copy's native metadata. An object
//! at the version's name with that entry equal to the current source's
//! generation and the same size holds those bytes (a generation names one
//! write of one object) and is answered as it is, so a retry makes no
//! second copy; anything else there is rewritten over. The copy's reference
//! has its own generation as the stamp, which reads and deletes check.
//! [`locate_version`](crate::Backend::locate_version) reads the copy's
//! resource. Cost: one rewrite per kept version (more calls for objects GCS
//! copies in several steps), and a full copy's storage.
//!
//! Garbage collection: [`list_staged`](crate::Backend::list_staged) lists
//! the objects under each of [`STAGING_PREFIXES`] (objects.list with the
//! prefix, every page), each under its name (the
//! [`Staged::id`](crate::Staged)) with its `updated` time; only staging
//! names are listed, never an object outside the staging area. `discard`
//! deletes the object, so a listed id alone (size 0, stamp 0) removes it,
//! and refuses ids that are not staging names. A resumable upload cut off
//! by a crash is no object and is not listed: GCS expires an unfinished
//! resumable upload session by itself a week after it started, and its
//! bytes never become an object.
//!
//! Finding published data after a crash: `publish` adds the staged id to the
//! target's custom metadata under the reserved name [`STAGED_META`]
//! (`"metadata": {"cloudmux-staged": "<Staged::id>"}`, replacing a client's
//! entry of that name in the native copy; cloudmux's records keep the
//! client's). A staged id names one write only, so
//! [`locate`](crate::Backend::locate) reads the target's resource and answers
//! it (generation as the stamp) when that entry equals the staged handle's id
//! and the size matches. cloudmux answers S3 clients from its own records,
//! never from this native metadata; native tools see the entry as one more
//! custom metadata field.

#[path = "gcs/auth.rs"]
mod auth;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};

use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cloud::http::{self, Http};
use crate::cloud::{self, CloudOptions, STAGING_PREFIXES};
use crate::{
    Backend, BodyStream, ByteRange, DataError, DataRef, NativeMeta, ObjectPath, Piece, Result,
    Staged, StagedEntry,
};

/// Most sources one compose call accepts.
pub const MAX_COMPOSE: usize = 32;
/// Size of one resumable-upload chunk (a multiple of 256 KiB, as GCS
/// requires); bodies up to this size are sent in one media upload.
pub const UPLOAD_CHUNK: usize = 8 << 20;
/// Compose calls run at once within one round.
const COMPOSE_CONCURRENCY: usize = 8;
/// The custom-metadata name under which `publish` records the staged id of
/// the bytes it published (see the [module documentation](self)).
pub const STAGED_META: &str = "cloudmux-staged";
/// The custom-metadata name under which `keep_version` records, on the copy
/// of a noncurrent version, the generation of the object it copied (see the
/// [module documentation](self)).
pub const SOURCE_META: &str = "cloudmux-version-of";

/// `[locations.NAME]` with `type = "gcs"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    /// The GCS bucket holding the objects; it must exist.
    pub bucket: String,
    /// JSON API endpoint for emulators (`http://127.0.0.1:4443`); omitted for
    /// Google itself (`https://storage.googleapis.com`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A service-account key file (JSON). Omitted: anonymous requests (for
    /// an emulator).
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    /// Options shared by all cloud locations (`bucket_match`,
    /// `connect_timeout_ms`, `request_timeout_ms`, `max_retries`).
    #[serde(flatten)]
    pub cloud: CloudOptions,
}

/// Characters escaped in a path segment (everything but unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Data backend storing objects in one Google Cloud Storage bucket.
#[derive(Debug, Clone)]
pub struct GcsBackend {
    http: Http,
    /// Endpoint without a trailing `/`.
    endpoint: String,
    bucket: String,
    account: Option<Arc<auth::ServiceAccount>>,
}

impl GcsBackend {
    /// Builds the backend for location `name`. Reads the credentials file;
    /// does not contact GCS (see [`Backend::probe`]).
    pub fn new(name: &str, config: &GcsConfig) -> std::result::Result<Self, String> {
        if config.bucket.is_empty() {
            return Err("bucket: must not be empty".into());
        }
        let endpoint = config
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://storage.googleapis.com".into())
            .trim_end_matches('/')
            .to_owned();
        reqwest::Url::parse(&endpoint).map_err(|e| format!("endpoint: {e}"))?;
        let account = match &config.credentials_file {
            Some(p) => Some(Arc::new(auth::ServiceAccount::from_file(p)?)),
            None => None,
        };
        Ok(Self {
            http: Http::new(name, &config.cloud)?,
            endpoint,
            bucket: config.bucket.clone(),
            account,
        })
    }

    /// Names of the objects under `prefix` (for `locations check` and
    /// tests).
    pub async fn list_names(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .list_objects(prefix)
            .await?
            .iter()
            .filter_map(|item| item.get("name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect())
    }

    /// The object resources under `prefix`, every page.
    async fn list_objects(&self, prefix: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut page = String::new();
        loop {
            let mut url = reqwest::Url::parse(&format!(
                "{}/storage/v1/b/{}/o",
                self.endpoint,
                Self::seg(&self.bucket)
            ))
            .map_err(|e| self.http.failed(format!("bad URL: {e}")))?;
            url.query_pairs_mut().append_pair("prefix", prefix);
            if !page.is_empty() {
                url.query_pairs_mut().append_pair("pageToken", &page);
            }
            let resp = self
                .call("list objects", Method::GET, url.as_str(), None)
                .await?;
            if !resp.status().is_success() {
                return Err(self.http.refused("list objects", resp).await);
            }
            let mut v: Value = resp
                .json()
                .await
                .map_err(|e| self.http.unavailable(format!("list: {}", e.without_url())))?;
            if let Some(Value::Array(items)) = v.get_mut("items").map(Value::take) {
                out.extend(items);
            }
            match v.get("nextPageToken").and_then(Value::as_str) {
                Some(t) if !t.is_empty() && t != page => page = t.to_owned(),
                _ => return Ok(out),
            }
        }
    }

    fn seg(s: &str) -> String {
        utf8_percent_encode(s, SEGMENT).to_string()
    }

    /// The JSON API URL of an object (or of `suffix` after it).
    fn object_url(&self, name: &str, suffix: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}{suffix}",
            self.endpoint,
            Self::seg(&self.bucket),
            Self::seg(name)
        )
    }

    /// Sends an idempotent JSON API call, retrying transient failures.
    async fn call(
        &self,
        what: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        let token = self.token().await?;
        let url =
            reqwest::Url::parse(url).map_err(|e| self.http.failed(format!("bad URL: {e}")))?;
        self.http
            .send(what, true, true, || {
                let mut rb = self.http.client.request(method.clone(), url.clone());
                if let Some(t) = &token {
                    rb = rb.bearer_auth(t);
                }
                if let Some(b) = body {
                    rb = rb
                        .header("content-type", "application/json")
                        .body(b.to_string());
                }
                Ok(rb)
            })
            .await
    }

    /// Parses an object resource's generation and size.
    fn generation_and_size(&self, v: &Value) -> Result<(u64, u64)> {
        let num = |f: &str| {
            v.get(f)
                .and_then(|x| match x {
                    Value::String(s) => s.parse().ok(),
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                })
                .ok_or_else(|| self.http.failed(format!("object resource without {f}")))
        };
        Ok((num("generation")?, num("size")?))
    }

    /// Uploads `body` as a new object `name`: a body that fits in one
    /// [`UPLOAD_CHUNK`] is one media upload, a larger one a resumable upload
    /// sent chunk by chunk (memory stays bounded, and each chunk is retried
    /// on its own). A failing body cancels the upload and leaves nothing.
    async fn upload(&self, name: &str, mut body: BodyStream) -> Result<(u64, u64)> {
        let mut carry = None;
        let mut buf = BytesMut::with_capacity(UPLOAD_CHUNK);
        let more = http::fill(&mut body, &mut buf, UPLOAD_CHUNK, &mut carry).await?;
        let first = buf.freeze();
        if !more {
            return self.upload_small(name, first).await;
        }
        let session = self.start_resumable(name).await?;
        let res = self
            .upload_chunks(&session, first, &mut body, &mut carry)
            .await;
        if res.is_err() {
            let mut rb = self
                .http
                .client
                .delete(session.as_str())
                .timeout(self.http.opts.request_timeout());
            if let Ok(Some(t)) = self.token().await {
                rb = rb.bearer_auth(t);
            }
            let _ = rb.send().await;
        }
        res
    }

    /// The JSON API upload URL for object `name` with `uploadType`.
    fn upload_url(&self, upload_type: &str, name: &str) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/upload/storage/v1/b/{}/o",
            self.endpoint,
            Self::seg(&self.bucket)
        ))
        .map_err(|e| self.http.failed(format!("bad URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("uploadType", upload_type)
            .append_pair("name", name);
        Ok(url)
    }

    /// One media upload of a buffered body.
    async fn upload_small(&self, name: &str, data: Bytes) -> Result<(u64, u64)> {
        let url = self.upload_url("media", name)?;
        let token = self.token().await?;
        let resp = self
            .http
            .send("upload", true, true, || {
                let mut rb = self
                    .http
                    .client
                    .post(url.clone())
                    .header("content-type", "application/octet-stream")
                    .body(data.clone());
                if let Some(t) = &token {
                    rb = rb.bearer_auth(t);
                }
                Ok(rb)
            })
            .await?;
        self.uploaded(name, resp, data.len() as u64).await
    }

    /// Starts a resumable upload; answers the session URI.
    async fn start_resumable(&self, name: &str) -> Result<reqwest::Url> {
        let url = self.upload_url("resumable", name)?;
        let resp = self
            .call("start upload", Method::POST, url.as_str(), Some(&json!({})))
            .await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("start upload", resp).await);
        }
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.http.failed("start upload: no session URI"))?;
        reqwest::Url::parse(loc).map_err(|e| self.http.failed(format!("session URI: {e}")))
    }

    /// Sends the chunks of a resumable upload, `first` then the rest of
    /// `body`; the last chunk names the total size.
    async fn upload_chunks(
        &self,
        session: &reqwest::Url,
        first: Bytes,
        body: &mut BodyStream,
        carry: &mut Option<Bytes>,
    ) -> Result<(u64, u64)> {
        let token = self.token().await?;
        let mut offset = 0u64;
        let mut chunk = first;
        loop {
            let mut next = BytesMut::with_capacity(UPLOAD_CHUNK);
            let more = http::fill(body, &mut next, UPLOAD_CHUNK, carry).await?;
            let last = !more && next.is_empty();
            let len = chunk.len() as u64;
            let range = match (len, last) {
                (0, _) => format!("bytes */{offset}"),
                (_, true) => format!("bytes {offset}-{}/{}", offset + len - 1, offset + len),
                (_, false) => format!("bytes {offset}-{}/*", offset + len - 1),
            };
            let resp = self
                .http
                .send("upload chunk", true, true, || {
                    let mut rb = self
                        .http
                        .client
                        .put(session.clone())
                        .header("content-range", range.clone())
                        .body(chunk.clone());
                    if let Some(t) = &token {
                        rb = rb.bearer_auth(t);
                    }
                    Ok(rb)
                })
                .await?;
            offset += len;
            if last {
                return self.uploaded("resumable upload", resp, offset).await;
            }
            if resp.status().as_u16() != 308 {
                return Err(self.http.refused("upload chunk", resp).await);
            }
            chunk = next.freeze();
        }
    }

    /// Checks the answer of a finished upload of `expected` bytes.
    async fn uploaded(
        &self,
        what: &str,
        resp: reqwest::Response,
        expected: u64,
    ) -> Result<(u64, u64)> {
        if !resp.status().is_success() {
            return Err(self.http.refused(what, resp).await);
        }
        let v: Value = resp.json().await.map_err(|e| {
            self.http
                .unavailable(format!("{what}: {}", e.without_url()))
        })?;
        let (generation, size) = self.generation_and_size(&v)?;
        if size != expected {
            if let Some(n) = v.get("name").and_then(Value::as_str) {
                let _ = self.delete_object(n, Some(generation)).await;
            }
            return Err(self
                .http
                .failed(format!("{what}: stored {size} bytes of {expected}")));
        }
        Ok((generation, size))
    }

    /// A fresh access token, if the location has credentials.
    async fn token(&self) -> Result<Option<String>> {
        match &self.account {
            Some(sa) => Ok(Some(sa.token(&self.http).await?)),
            None => Ok(None),
        }
    }

    /// Deletes an object (only that generation, when given). Gone or
    /// replaced counts as done.
    async fn delete_object(&self, name: &str, generation: Option<u64>) -> Result<()> {
        let mut url = self.object_url(name, "");
        if let Some(g) = generation {
            url.push_str(&format!("?ifGenerationMatch={g}"));
        }
        let resp = self
            .call("delete object", Method::DELETE, &url, None)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED => Ok(()),
            _ => Err(self.http.refused("delete object", resp).await),
        }
    }

    /// Streams an object (or a range), checking the generation when non-zero.
    async fn get(
        &self,
        name: &str,
        generation: u64,
        range: Option<ByteRange>,
    ) -> Result<BodyStream> {
        let mut url = self.object_url(name, "?alt=media");
        if generation != 0 {
            url.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        let token = self.token().await?;
        let url =
            reqwest::Url::parse(&url).map_err(|e| self.http.failed(format!("bad URL: {e}")))?;
        let resp = self
            .http
            .send("get object", true, false, || {
                let mut rb = self
                    .http
                    .client
                    .get(url.clone())
                    .header("accept-encoding", "gzip");
                if let Some(t) = &token {
                    rb = rb.bearer_auth(t);
                }
                if let Some(r) = range {
                    rb = rb.header("range", format!("bytes={}-{}", r.first, r.last));
                }
                Ok(rb)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("get object", resp).await);
        }
        let got = resp
            .headers()
            .get("x-goog-generation")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if generation != 0 && got.is_some_and(|g| g != generation) {
            return Err(DataError::Stale(format!(
                "location {}: object {name} was replaced",
                self.http.location
            )));
        }
        Ok(http::response_stream(&self.http.location, resp))
    }

    /// Copies object `src` (only generation `src_gen`, when non-zero) onto
    /// `dst` server-side with `rewriteTo`, giving it the fields of
    /// `resource`; answers the new object's resource.
    async fn rewrite(&self, src: &str, src_gen: u64, dst: &str, resource: &Value) -> Result<Value> {
        let mut url = format!(
            "{}/rewriteTo/b/{}/o/{}",
            self.object_url(src, ""),
            Self::seg(&self.bucket),
            Self::seg(dst)
        );
        if src_gen != 0 {
            url.push_str(&format!("?ifSourceGenerationMatch={src_gen}"));
        }
        let mut token: Option<String> = None;
        loop {
            let u = match &token {
                Some(t) => format!(
                    "{url}{}rewriteToken={}",
                    if url.contains('?') { "&" } else { "?" },
                    Self::seg(t)
                ),
                None => url.clone(),
            };
            let resp = self
                .call("rewrite", Method::POST, &u, Some(resource))
                .await?;
            if !resp.status().is_success() {
                return Err(self.http.refused("rewrite", resp).await);
            }
            let v: Value = resp.json().await.map_err(|e| {
                self.http
                    .unavailable(format!("rewrite: {}", e.without_url()))
            })?;
            if v.get("done").and_then(Value::as_bool).unwrap_or(false) {
                return Ok(v.get("resource").cloned().unwrap_or(Value::Null));
            }
            token = v
                .get("rewriteToken")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if token.is_none() {
                return Err(self.http.failed("rewrite: not done and no token"));
            }
        }
    }

    /// The live generation of an object, `None` if it does not exist.
    async fn generation_of(&self, name: &str) -> Result<Option<u64>> {
        match self.object_resource(name).await? {
            Some(v) => Ok(Some(self.generation_and_size(&v)?.0)),
            None => Ok(None),
        }
    }

    /// The resource (JSON metadata) of an object, `None` if it does not
    /// exist.
    async fn object_resource(&self, name: &str) -> Result<Option<Value>> {
        let url = self.object_url(name, "");
        let resp = self
            .call("get object metadata", Method::GET, &url, None)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => resp.json().await.map(Some).map_err(|e| {
                self.http
                    .unavailable(format!("get object metadata: {}", e.without_url()))
            }),
            _ => Err(self.http.refused("get object metadata", resp).await),
        }
    }

    /// The object resource fields that carry `meta`, with `staged`'s id as
    /// the [`STAGED_META`] entry.
    fn resource(meta: &NativeMeta, staged: &Staged) -> Value {
        let mut r = serde_json::Map::new();
        let fields = [
            ("contentType", &meta.content_type),
            ("cacheControl", &meta.cache_control),
            ("contentDisposition", &meta.content_disposition),
            ("contentEncoding", &meta.content_encoding),
            ("contentLanguage", &meta.content_language),
        ];
        for (f, v) in fields {
            if let Some(v) = v {
                r.insert(f.into(), Value::String(v.clone()));
            }
        }
        let mut m: serde_json::Map<String, Value> = meta
            .user
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        m.insert(STAGED_META.into(), Value::String(staged.id.clone()));
        r.insert("metadata".into(), Value::Object(m));
        Value::Object(r)
    }

    /// The resource fields a noncurrent version's copy is given, from the
    /// resource `source` of the object it copies: the content fields and
    /// custom metadata (the staged-id entry included), with `mark` (the
    /// source's generation) as the [`SOURCE_META`] entry. Given in full,
    /// since a rewrite on some emulators copies only some fields by itself.
    fn version_resource(source: &Value, mark: &str) -> Value {
        let mut r = serde_json::Map::new();
        for f in [
            "contentType",
            "cacheControl",
            "contentDisposition",
            "contentEncoding",
            "contentLanguage",
        ] {
            if let Some(v @ Value::String(_)) = source.get(f) {
                r.insert(f.into(), v.clone());
            }
        }
        let mut m = match source.get("metadata") {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        m.insert(SOURCE_META.into(), Value::String(mark.to_owned()));
        r.insert("metadata".into(), Value::Object(m));
        Value::Object(r)
    }

    /// Composes `sources` (name, generation) into a new staging object.
    async fn compose(&self, sources: &[(String, u64)]) -> Result<(String, u64, u64)> {
        let dest = cloud::staging_name();
        let src: Vec<Value> = sources
            .iter()
            .map(|(n, g)| {
                if *g == 0 {
                    json!({ "name": n })
                } else {
                    json!({ "name": n, "objectPreconditions": { "ifGenerationMatch": g } })
                }
            })
            .collect();
        let body = json!({
            "sourceObjects": src,
            "destination": { "contentType": "application/octet-stream" },
        });
        let url = self.object_url(&dest, "/compose");
        let resp = self
            .call("compose", Method::POST, &url, Some(&body))
            .await?;
        if !resp.status().is_success() {
            return Err(self.http.refused("compose", resp).await);
        }
        let v: Value = resp.json().await.map_err(|e| {
            self.http
                .unavailable(format!("compose: {}", e.without_url()))
        })?;
        let (g, s) = self.generation_and_size(&v)?;
        Ok((dest, g, s))
    }

    /// Composes any number of whole objects, in rounds of at most
    /// [`MAX_COMPOSE`]; intermediates are removed, `sources` are not.
    async fn compose_all(&self, sources: Vec<(String, u64)>) -> Result<(String, u64, u64)> {
        let mut level = sources;
        let mut owned = false;
        loop {
            if level.len() <= MAX_COMPOSE {
                let out = self.compose(&level).await;
                if owned {
                    self.delete_all(&level).await;
                }
                return out;
            }
            let groups: Vec<Vec<(String, u64)>> =
                level.chunks(MAX_COMPOSE).map(<[_]>::to_vec).collect();
            let results: Vec<Result<(String, u64, u64)>> = futures_util::stream::iter(groups)
                .map(|g| async move { self.compose(&g).await })
                .buffered(COMPOSE_CONCURRENCY)
                .collect()
                .await;
            if owned {
                self.delete_all(&level).await;
            }
            let mut next = Vec::with_capacity(results.len());
            let mut failed = None;
            for r in results {
                match r {
                    Ok((n, g, _)) => next.push((n, g)),
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                self.delete_all(&next).await;
                return Err(e);
            }
            level = next;
            owned = true;
        }
    }

    /// Best-effort removal of temporary objects.
    async fn delete_all(&self, objs: &[(String, u64)]) {
        let _: Vec<()> = futures_util::stream::iter(objs.to_vec())
            .map(|(n, g)| async move {
                if let Err(e) = self.delete_object(&n, Some(g)).await {
                    tracing::warn!(location = %self.http.location, object = %n, error = %e, "temporary object left behind");
                }
            })
            .buffer_unordered(COMPOSE_CONCURRENCY)
            .collect()
            .await;
    }
}

#[async_trait::async_trait]
impl Backend for GcsBackend {
    async fn stage(&self, body: BodyStream) -> Result<Staged> {
        let name = cloud::staging_name();
        let (generation, size) = self.upload(&name, body).await?;
        Ok(Staged {
            id: name,
            size,
            stamp: generation,
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
        let resource = self
            .rewrite(
                &staged.id,
                staged.stamp,
                &name,
                &Self::resource(target.meta, &staged),
            )
            .await?;
        let (generation, _) = self.generation_and_size(&resource)?;
        if let Err(e) = self.delete_object(&staged.id, None).await {
            tracing::warn!(location = %self.http.location, object = %staged.id, error = %e, "staging object left behind");
        }
        Ok(DataRef {
            locator: name,
            size: staged.size,
            stamp: generation,
        })
    }

    /// A server-side `rewriteTo` onto the version's name, marked with the
    /// source's generation (see the [module documentation](self)).
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
        let Some(source) = self.object_resource(&data.locator).await? else {
            return Err(DataError::NotFound(format!(
                "location {}: object {} is gone",
                self.http.location, data.locator
            )));
        };
        // The rewrite carries ifSourceGenerationMatch; the generation is
        // also checked first because some emulators ignore it.
        let (generation, size) = self.generation_and_size(&source)?;
        if size != data.size || (data.stamp != 0 && generation != data.stamp) {
            return Err(DataError::Stale(format!(
                "location {}: object {} was replaced",
                self.http.location, data.locator
            )));
        }
        let mark = generation.to_string();
        if let Some(kept) = self.object_resource(&dest).await? {
            let (kept_generation, kept_size) = self.generation_and_size(&kept)?;
            let marked = kept
                .get("metadata")
                .and_then(|m| m.get(SOURCE_META))
                .and_then(Value::as_str);
            if kept_size == size && marked == Some(mark.as_str()) {
                return Ok(DataRef {
                    locator: dest,
                    size,
                    stamp: kept_generation,
                });
            }
        }
        let copied = self
            .rewrite(
                &data.locator,
                generation,
                &dest,
                &Self::version_resource(&source, &mark),
            )
            .await?;
        let (stamp, size) = self.generation_and_size(&copied)?;
        Ok(DataRef {
            locator: dest,
            size,
            stamp,
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
            let Some(kept) = self.object_resource(&name).await? else {
                return Ok(None);
            };
            let (generation, size) = self.generation_and_size(&kept)?;
            Ok(Some(DataRef {
                locator: name.clone(),
                size,
                stamp: generation,
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
        self.delete_object(&staged.id, None).await
    }

    async fn read(&self, data: &DataRef, range: Option<ByteRange>) -> Result<BodyStream> {
        self.get(&data.locator, data.stamp, range).await
    }

    async fn read_staged(&self, staged: &Staged, range: Option<ByteRange>) -> Result<BodyStream> {
        cloud::check_staging_name(&staged.id)?;
        self.get(&staged.id, 0, range).await
    }

    async fn delete(&self, data: &DataRef) -> Result<()> {
        if data.stamp == 0 {
            return self.delete_object(&data.locator, None).await;
        }
        // GCS honours ifGenerationMatch on delete; the generation is also
        // checked first because some emulators ignore the precondition.
        if self.generation_of(&data.locator).await? != Some(data.stamp) {
            return Ok(());
        }
        self.delete_object(&data.locator, Some(data.stamp)).await
    }

    async fn assemble(&self, pieces: Vec<Piece>) -> Result<Staged> {
        if let [Piece::Published(d, None)] = pieces.as_slice() {
            // The rewrite carries ifSourceGenerationMatch; the generation is
            // also checked first because some emulators ignore it.
            if d.stamp != 0 && self.generation_of(&d.locator).await? != Some(d.stamp) {
                return Err(DataError::Stale(format!(
                    "location {}: object {} was replaced",
                    self.http.location, d.locator
                )));
            }
            let name = cloud::staging_name();
            let v = self.rewrite(&d.locator, d.stamp, &name, &json!({})).await?;
            let (stamp, size) = self.generation_and_size(&v)?;
            return Ok(Staged {
                id: name,
                size,
                stamp,
            });
        }
        let mut sources = Vec::with_capacity(pieces.len());
        let mut copies = Vec::new();
        let mut fail = None;
        for p in pieces {
            let src = match p {
                Piece::Staged(s) => cloud::check_staging_name(&s.id).map(|()| (s.id, s.stamp)),
                Piece::Published(d, None) => Ok((d.locator, d.stamp)),
                Piece::Published(d, Some(r)) => {
                    let name = cloud::staging_name();
                    match self.get(&d.locator, d.stamp, Some(r)).await {
                        Ok(body) => self.upload(&name, body).await.map(|(g, _)| {
                            copies.push((name.clone(), g));
                            (name, g)
                        }),
                        Err(e) => Err(e),
                    }
                }
            };
            match src {
                Ok(s) => sources.push(s),
                Err(e) => {
                    fail = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = fail {
            self.delete_all(&copies).await;
            return Err(e);
        }
        let out = if sources.is_empty() {
            let empty: BodyStream = Box::pin(futures_util::stream::empty());
            let name = cloud::staging_name();
            self.upload(&name, empty).await.map(|(g, s)| (name, g, s))
        } else {
            self.compose_all(sources).await
        };
        self.delete_all(&copies).await;
        let (id, stamp, size) = out?;
        Ok(Staged { id, size, stamp })
    }

    async fn locate(&self, target: ObjectPath<'_>, staged: &Staged) -> Result<Option<DataRef>> {
        let name = self.http.opts.object_name(target.bucket, target.key);
        let v = match self.object_resource(&name).await {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(DataError::Unavailable(m)) => return Err(DataError::Unavailable(m)),
            Err(e) => return Err(DataError::Unavailable(e.to_string())),
        };
        let id = v
            .get("metadata")
            .and_then(|m| m.get(STAGED_META))
            .and_then(Value::as_str);
        if id != Some(staged.id.as_str()) {
            return Ok(None);
        }
        let (generation, size) = self
            .generation_and_size(&v)
            .map_err(|e| DataError::Unavailable(e.to_string()))?;
        if size != staged.size {
            tracing::warn!(location = %self.http.location, object = %name, size, staged = staged.size,
                "published data has another size than was staged");
            return Ok(None);
        }
        Ok(Some(DataRef {
            locator: name,
            size,
            stamp: generation,
        }))
    }

    async fn list_staged(&self) -> Result<Vec<StagedEntry>> {
        let mut items = Vec::new();
        for prefix in STAGING_PREFIXES {
            items.extend(self.list_objects(prefix).await?);
        }
        Ok(items
            .iter()
            .filter_map(|item| {
                let id = item.get("name").and_then(Value::as_str)?;
                if !cloud::is_staging_name(id) {
                    return None;
                }
                let time = |f: &str| item.get(f).and_then(Value::as_str).and_then(parse_rfc3339);
                Some(StagedEntry {
                    id: id.to_owned(),
                    // No time reported: taken as written just now, so the
                    // entry waits for a sweep that sees one.
                    modified: time("updated")
                        .or_else(|| time("timeCreated"))
                        .unwrap_or_else(SystemTime::now),
                })
            })
            .collect())
    }

    /// A server-side copy the cloud accepted may land up to one request
    /// timeout after its client gave up or died.
    fn publish_grace(&self) -> std::time::Duration {
        self.http.opts.request_timeout()
    }

    /// Cloud Storage encrypts all data at rest with AES-256 by default
    /// ("Google-managed encryption keys").
    fn encrypts_at_rest(&self) -> bool {
        true
    }

    async fn probe(&self) -> Result<()> {
        let url = format!("{}/storage/v1/b/{}", self.endpoint, Self::seg(&self.bucket));
        let resp = self.call("get bucket", Method::GET, &url, None).await?;
        if !resp.status().is_success() {
            return cloud::container_call(Err(self.http.refused("get bucket", resp).await));
        }
        Ok(())
    }
}

/// Parses an RFC 3339 time as the JSON API writes it
/// (`2026-12-03T09:48:04.123Z`, or with a `+hh:mm`/`-hh:mm` offset).
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        if d.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(d).ok()?.parse().ok()
        } else {
            None
        }
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub((i - start) as u32));
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && sep(i + 3, b":") => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from 1970-01-01 to the civil date (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse() {
        let at = |secs: u64, nanos: u32| Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), at(0, 0));
        assert_eq!(
            parse_rfc3339("2026-12-03T09:48:04.123Z"),
            at(1_796_291_284, 123_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-03T09:48:04.123456789123Z"),
            at(1_796_291_284, 123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2026-12-03T10:48:04+01:00"),
            at(1_796_291_284, 0)
        );
        assert_eq!(
            parse_rfc3339("2026-12-03T08:18:04-01:30"),
            at(1_796_291_284, 0)
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), at(1_709_164_800, 0));
        for bad in [
            "",
            "2026-12-03",
            "2026-12-03T09:48:04",
            "2026-13-03T09:48:04Z",
            "2026-12-03T09:48:04.Z",
            "2026-12-03T09:48:04Zx",
            "2026-12-03T09:48:04+0100",
            "1969-12-31T23:59:59Z",
            "2026-12-03T09:4a:04Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
