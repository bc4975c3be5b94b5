//! The locations as their own services see them: creating the target
//! bucket or container before the soak, and the raw listings the orphan
//! check compares with cloudmux's records (the fs location's files, moto's
//! objects and unfinished multipart uploads, Azure's blobs including those
//! holding only uncommitted blocks, GCS's objects).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use super::{blocks, request, TARGET};
use crate::body::RepeatBody;
use crate::client::{element, unescape, Endpoint, S3Client};
use crate::sigv4::encode_query;

/// The Blob service version the listing speaks.
const AZURE_VERSION: &str = "2021-08-06";

/// The third location's service.
pub(crate) enum Cloud {
    /// Azure Blob Storage (Azurite).
    Azure {
        /// `http://host:port/account`.
        endpoint: String,
        /// The account name (the endpoint's last path segment).
        account: String,
        /// The decoded account key.
        key: Vec<u8>,
    },
    /// Google Cloud Storage (fake-gcs-server), anonymous.
    Gcs {
        /// `http://host:port`.
        endpoint: String,
    },
}

impl Cloud {
    /// Azure at `endpoint` (`http://HOST:PORT/ACCOUNT`) with the base64
    /// account key `key`.
    pub fn azure(endpoint: &str, key: &str) -> Result<Self, String> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let account = endpoint
            .rsplit_once('/')
            .map(|(_, a)| a.to_owned())
            .filter(|a| !a.is_empty() && !a.contains(':'))
            .ok_or_else(|| format!("azure endpoint {endpoint}: no account in the path"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|e| format!("azure key: {e}"))?;
        Ok(Cloud::Azure {
            endpoint,
            account,
            key,
        })
    }
}

/// Access to every location's own service.
pub(crate) struct Natives {
    /// Root of the fs location.
    pub fs_root: PathBuf,
    moto: S3Client,
    cloud: Cloud,
    http: Client<HttpConnector, RepeatBody>,
}

/// One raw answer.
struct Raw {
    status: StatusCode,
    body: Bytes,
}

impl Natives {
    /// Clients for moto at `moto` and for `cloud`.
    pub fn new(fs_root: PathBuf, moto: &str, cloud: Cloud) -> Result<Self, String> {
        let moto = S3Client::new(
            &Endpoint {
                url: moto.trim_end_matches('/').to_owned(),
                access_key: "testing".into(),
                secret_key: "testing".into(),
                region: "us-east-1".into(),
            },
            4,
        )?;
        Ok(Natives {
            fs_root,
            moto,
            cloud,
            http: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        })
    }

    /// Creates the moto bucket and the Azure container or GCS bucket
    /// [`TARGET`] (an existing one is fine).
    pub async fn setup(&self) -> Result<(), String> {
        let r = request(
            &self.moto,
            Method::PUT,
            &format!("/{TARGET}"),
            &[],
            Bytes::new(),
            true,
        )
        .await?;
        let text = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
        if !r.status.is_success() && !text.contains("BucketAlreadyOwnedByYou") {
            return Err(format!(
                "moto: create bucket {TARGET}: HTTP {}: {text}",
                r.status
            ));
        }
        let r = match &self.cloud {
            Cloud::Azure { .. } => {
                self.azure(Method::PUT, &[("restype", "container")], Bytes::new())
                    .await?
            }
            Cloud::Gcs { endpoint } => {
                self.raw(
                    Method::POST,
                    &format!("{endpoint}/storage/v1/b"),
                    vec![("content-type".into(), "application/json".into())],
                    Bytes::from(format!("{{\"name\":\"{TARGET}\"}}")),
                )
                .await?
            }
        };
        if r.status.is_success() || r.status == StatusCode::CONFLICT {
            Ok(())
        } else {
            Err(format!(
                "create the cloud target {TARGET}: HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ))
        }
    }

    async fn raw(
        &self,
        method: Method,
        url: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<Raw, String> {
        let mut req = Request::builder().method(method).uri(url);
        for (n, v) in &headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let req = req
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(RepeatBody::bytes(body))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(60), self.http.request(req))
            .await
            .map_err(|_| format!("{url}: timed out"))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok(Raw { status, body })
    }

    /// A Shared Key request on the container [`TARGET`].
    async fn azure(
        &self,
        method: Method,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Raw, String> {
        let Cloud::Azure {
            endpoint,
            account,
            key,
        } = &self.cloud
        else {
            return Err("not an Azure soak".into());
        };
        let url = format!("{endpoint}/{TARGET}");
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let headers = vec![
            ("x-ms-date".to_owned(), date),
            ("x-ms-version".to_owned(), AZURE_VERSION.to_owned()),
        ];
        // The verb, Content-Encoding, Content-Language and Content-Length
        // (empty for 0), then Content-MD5, Content-Type, Date, the four If-*
        // headers and Range, which are never sent.
        let len = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let mut to_sign = format!("{method}\n\n\n{len}\n\n\n\n\n\n\n\n\n");
        for (n, v) in &headers {
            to_sign.push_str(&format!("{n}:{v}\n"));
        }
        to_sign.push_str(&format!("/{account}{path}"));
        let mut q: Vec<(String, &str)> = query
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), *v))
            .collect();
        q.sort();
        for (n, v) in &q {
            to_sign.push_str(&format!("\n{n}:{v}"));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let qs = query
            .iter()
            .map(|(n, v)| format!("{}={}", encode_query(n), encode_query(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut all = headers;
        all.push((
            "authorization".to_owned(),
            format!("SharedKey {account}:{sig}"),
        ));
        self.raw(method, &format!("{url}?{qs}"), all, body).await
    }

    /// Every regular file (or anything else that is not a directory) under
    /// the fs location's root, as paths relative to it.
    pub fn fs_files(&self) -> Result<Vec<String>, String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
            let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = entry.path();
                let ft = entry
                    .file_type()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if ft.is_dir() {
                    walk(root, &path, out)?;
                } else {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.fs_root, &self.fs_root, &mut out)?;
        Ok(out)
    }

    /// Every object name in moto's [`TARGET`] bucket, and every unfinished
    /// multipart upload there as `upload:NAME:ID`.
    pub async fn moto_names(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("list-type", "2")];
            if let Some(t) = &token {
                q.push(("continuation-token", t));
            }
            let xml = self.moto_get(&q).await?;
            for c in blocks(&xml, "Contents") {
                if let Some(k) = element(c, "Key") {
                    out.push(unescape(k));
                }
            }
            token = (element(&xml, "IsTruncated") == Some("true"))
                .then(|| element(&xml, "NextContinuationToken").map(unescape))
                .flatten();
            if token.is_none() {
                break;
            }
        }
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut q = vec![("uploads", "")];
            if let Some((k, u)) = &markers {
                q.push(("key-marker", k));
                q.push(("upload-id-marker", u));
            }
            let xml = self.moto_get(&q).await?;
            for up in blocks(&xml, "Upload") {
                out.push(format!(
                    "upload:{}:{}",
                    element(up, "Key").map(unescape).unwrap_or_default(),
                    element(up, "UploadId").map(unescape).unwrap_or_default()
                ));
            }
            let next = element(&xml, "NextKeyMarker").map(unescape);
            let next_id = element(&xml, "NextUploadIdMarker").map(unescape);
            match (next, next_id) {
                (Some(k), Some(u)) if element(&xml, "IsTruncated") == Some("true") => {
                    markers = Some((k, u))
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn moto_get(&self, q: &[(&str, &str)]) -> Result<String, String> {
        let r = request(
            &self.moto,
            Method::GET,
            &format!("/{TARGET}"),
            q,
            Bytes::new(),
            true,
        )
        .await?
        .ok()?;
        Ok(String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned())
    }

    /// Every blob (Azure, uncommitted ones included) or object (GCS) name
    /// in the cloud's [`TARGET`].
    pub async fn cloud_names(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let (page, next) = match &self.cloud {
                Cloud::Azure { .. } => {
                    let mut q = vec![
                        ("restype", "container"),
                        ("comp", "list"),
                        ("include", "uncommittedblobs"),
                    ];
                    if !marker.is_empty() {
                        q.push(("marker", &marker));
                    }
                    let r = self.azure(Method::GET, &q, Bytes::new()).await?;
                    let text = String::from_utf8_lossy(&r.body).into_owned();
                    if !r.status.is_success() {
                        return Err(format!("azure list blobs: HTTP {}: {text}", r.status));
                    }
                    let names: Vec<String> = blocks(&text, "Blob")
                        .iter()
                        .filter_map(|b| element(b, "Name").map(unescape))
                        .collect();
                    let next = element(&text, "NextMarker")
                        .map(unescape)
                        .unwrap_or_default();
                    (names, next)
                }
                Cloud::Gcs { endpoint } => {
                    let mut url = format!("{endpoint}/storage/v1/b/{TARGET}/o");
                    if !marker.is_empty() {
                        url.push_str(&format!("?pageToken={}", encode_query(&marker)));
                    }
                    let r = self
                        .raw(Method::GET, &url, Vec::new(), Bytes::new())
                        .await?;
                    if !r.status.is_success() {
                        return Err(format!(
                            "gcs list objects: HTTP {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        ));
                    }
                    let v: serde_json::Value =
                        serde_json::from_slice(&r.body).map_err(|e| format!("gcs list: {e}"))?;
                    let names = v["items"]
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    let next = v["nextPageToken"].as_str().unwrap_or_default().to_owned();
                    (names, next)
                }
            };
            out.extend(page);
            if next.is_empty() {
                return Ok(out);
            }
            marker = next;
        }
    }
}
