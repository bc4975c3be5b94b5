//! A minimal S3 client: the hyper 1 client (a keep-alive connection pool over
//! `HttpConnector`) and the in-process SigV4 [`Signer`].

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::body::RepeatBody;
use crate::sigv4::{encode_path, encode_query, sha256_hex, AmzDate, Signer, EMPTY_SHA256};

/// Credentials and addressing of one S3 endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `http://host:port`.
    pub url: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Region the requests are signed for.
    pub region: String,
}

/// One answered request: its status and how many body bytes came back.
pub struct Response {
    /// HTTP status.
    pub status: StatusCode,
    /// Response body length as received.
    pub bytes: u64,
    /// The body, when it was asked for or the status is not a success.
    pub body: Option<Bytes>,
    /// The response headers.
    pub headers: http::HeaderMap,
}

impl Response {
    /// `Ok(self)` on a 2xx status, else an error naming the status and the
    /// start of the body.
    pub fn ok(self) -> Result<Self, String> {
        if self.status.is_success() {
            return Ok(self);
        }
        let text = self
            .body
            .as_ref()
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
            .unwrap_or_default();
        let text = match (element(&text, "Code"), element(&text, "Message")) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        Err(format!("HTTP {}: {text}", self.status.as_u16()))
    }
}

/// One page of a ListObjectsV2 answer.
pub struct ListPage {
    /// Number of `<Contents>` entries.
    pub keys: usize,
    /// The continuation token, when the listing is truncated.
    pub next: Option<String>,
    /// Bytes of XML received.
    pub bytes: u64,
}

/// Where a ListObjectVersions walk resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionMarkers {
    /// `key-marker`.
    pub key: String,
    /// `version-id-marker` (absent to start after every version of `key`).
    pub version_id: Option<String>,
}

/// One page of a ListObjectVersions answer.
pub struct VersionPage {
    /// Number of `<Version>` and `<DeleteMarker>` entries.
    pub entries: usize,
    /// The markers of the next page, when the listing is truncated.
    pub next: Option<VersionMarkers>,
    /// Bytes of XML received.
    pub bytes: u64,
}

/// A signing S3 client for path-style requests to one endpoint.
pub struct S3Client {
    http: Client<HttpConnector, RepeatBody>,
    base: String,
    host: String,
    signer: Signer,
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl S3Client {
    /// A client for `ep` keeping up to `pool` idle keep-alive connections.
    pub fn new(ep: &Endpoint, pool: usize) -> Result<Self, String> {
        let uri: Uri = ep
            .url
            .parse()
            .map_err(|e| format!("endpoint {}: {e}", ep.url))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("endpoint {}: only http:// is supported", ep.url));
        }
        let host = uri
            .authority()
            .ok_or_else(|| format!("endpoint {}: no host", ep.url))?
            .to_string();
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(conn);
        Ok(S3Client {
            http,
            base: format!("http://{host}"),
            host,
            signer: Signer::new(&ep.access_key, &ep.secret_key, &ep.region),
        })
    }

    /// Sends one signed request for `path` (`/bucket` or `/bucket/key`, not
    /// yet encoded) and reads the whole response body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: RepeatBody,
        payload_hash: &str,
        keep_body: bool,
    ) -> Result<Response, String> {
        let path = encode_path(path);
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (encode_query(k), encode_query(v)))
            .collect();
        q.sort();
        let qs = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let date = AmzDate::now();
        let auth = self.signer.authorization(
            method.as_str(),
            &path,
            &qs,
            &[
                ("host", &self.host),
                ("x-amz-content-sha256", payload_hash),
                ("x-amz-date", &date.long),
            ],
            payload_hash,
            &date,
        );
        let uri = if qs.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{qs}", self.base)
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(HOST, &self.host)
            .header("x-amz-content-sha256", payload_hash)
            .header("x-amz-date", &date.long)
            .header(AUTHORIZATION, auth);
        if method == Method::PUT || body.len() > 0 {
            req = req.header(CONTENT_LENGTH, body.len());
        }
        let req = req.body(body).map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let keep = keep_body || !status.is_success();
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| format!("reading the response body: {}", error_chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                bytes += data.len() as u64;
                if keep {
                    kept.extend_from_slice(&data);
                }
            }
        }
        Ok(Response {
            status,
            bytes,
            body: keep.then(|| Bytes::from(kept)),
            headers,
        })
    }

    /// CreateBucket; a bucket that already exists is fine.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        self.create_bucket_in(bucket, None).await
    }

    /// CreateBucket with a `LocationConstraint` naming `location` (cloudmux
    /// places the bucket in the location of that name); a bucket that
    /// already exists is fine.
    pub async fn create_bucket_in(
        &self,
        bucket: &str,
        location: Option<&str>,
    ) -> Result<(), String> {
        let (body, hash) = match location {
            Some(l) => {
                let xml = format!(
                    "<CreateBucketConfiguration><LocationConstraint>{l}</LocationConstraint></CreateBucketConfiguration>"
                );
                let hash = sha256_hex(xml.as_bytes());
                (RepeatBody::bytes(Bytes::from(xml)), hash)
            }
            None => (RepeatBody::empty(), EMPTY_SHA256.to_owned()),
        };
        let r = self
            .send(Method::PUT, &format!("/{bucket}"), &[], body, &hash, false)
            .await?;
        let owned = r.status == StatusCode::CONFLICT
            && r.body.as_ref().is_some_and(|b| {
                // Servers over a directory say "exists" for one seeded on disk.
                let text = String::from_utf8_lossy(b);
                text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists")
            });
        if owned {
            return Ok(());
        }
        r.ok().map(drop)
    }

    /// PutObject.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: RepeatBody,
        payload_hash: &str,
    ) -> Result<Response, String> {
        self.send(
            Method::PUT,
            &format!("/{bucket}/{key}"),
            &[],
            body,
            payload_hash,
            false,
        )
        .await?
        .ok()
    }

    /// GetObject (`Method::GET`) or HeadObject (`Method::HEAD`).
    pub async fn get(&self, method: Method, bucket: &str, key: &str) -> Result<Response, String> {
        self.send(
            method,
            &format!("/{bucket}/{key}"),
            &[],
            RepeatBody::empty(),
            EMPTY_SHA256,
            false,
        )
        .await?
        .ok()
    }

    /// PutBucketVersioning with `Status` Enabled.
    pub async fn enable_versioning(&self, bucket: &str) -> Result<(), String> {
        let xml = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        let hash = sha256_hex(xml.as_bytes());
        self.send(
            Method::PUT,
            &format!("/{bucket}"),
            &[("versioning", "")],
            RepeatBody::bytes(Bytes::from_static(xml.as_bytes())),
            &hash,
            false,
        )
        .await?
        .ok()
        .map(drop)
    }

    /// One ListObjectVersions page of up to `max_keys` versions and delete
    /// markers, after `markers` (`key-marker`, and `version-id-marker` when
    /// the previous page ended inside a key).
    pub async fn list_versions(
        &self,
        bucket: &str,
        markers: Option<&VersionMarkers>,
        max_keys: usize,
    ) -> Result<VersionPage, String> {
        let max = max_keys.to_string();
        let mut q = vec![("versions", ""), ("max-keys", max.as_str())];
        if let Some(m) = markers {
            q.push(("key-marker", &m.key));
            if let Some(v) = &m.version_id {
                q.push(("version-id-marker", v));
            }
        }
        let r = self
            .send(
                Method::GET,
                &format!("/{bucket}"),
                &q,
                RepeatBody::empty(),
                EMPTY_SHA256,
                true,
            )
            .await?
            .ok()?;
        let xml = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default());
        version_page(&xml, r.bytes)
    }

    /// One ListObjectsV2 page of up to `max_keys` keys.
    pub async fn list_v2(
        &self,
        bucket: &str,
        token: Option<&str>,
        start_after: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, String> {
        let max = max_keys.to_string();
        let mut q = vec![("list-type", "2"), ("max-keys", max.as_str())];
        if let Some(t) = token {
            q.push(("continuation-token", t));
        }
        if let Some(s) = start_after {
            q.push(("start-after", s));
        }
        let r = self
            .send(
                Method::GET,
                &format!("/{bucket}"),
                &q,
                RepeatBody::empty(),
                EMPTY_SHA256,
                true,
            )
            .await?
            .ok()?;
        let xml = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default());
        let truncated = element(&xml, "IsTruncated").is_some_and(|v| v == "true");
        let next = match element(&xml, "NextContinuationToken") {
            Some(t) if truncated => Some(unescape(t)),
            None if truncated => return Err("truncated listing without a token".into()),
            _ => None,
        };
        Ok(ListPage {
            keys: xml.matches("<Contents>").count(),
            next,
            bytes: r.bytes,
        })
    }
}

/// Reads a ListObjectVersions answer of `bytes` bytes: its entries and the
/// markers of the next page.
fn version_page(xml: &str, bytes: u64) -> Result<VersionPage, String> {
    let truncated = element(xml, "IsTruncated").is_some_and(|v| v == "true");
    let next = match element(xml, "NextKeyMarker") {
        Some(k) if truncated => Some(VersionMarkers {
            key: unescape(k),
            version_id: element(xml, "NextVersionIdMarker")
                .filter(|v| !v.is_empty())
                .map(unescape),
        }),
        None if truncated => return Err("truncated version listing without NextKeyMarker".into()),
        _ => None,
    };
    Ok(VersionPage {
        entries: xml.matches("<Version>").count() + xml.matches("<DeleteMarker>").count(),
        next,
        bytes,
    })
}

/// The text of the first `<name>` element of `xml`.
pub(crate) fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find("</")? + start;
    Some(&xml[start..end])
}

/// Replaces XML's predefined entities and the character references S3
/// servers use (`&#43;`, `&#x2F;`...) by the characters they stand for.
pub(crate) fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "amp" => Some('&'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{version_page, VersionMarkers};

    #[test]
    fn version_pages_give_entries_and_markers() {
        // A page that ends inside a key, as cloudmux answers it.
        let xml = "<ListVersionsResult><Name>b</Name><KeyMarker>k1</KeyMarker>\
            <VersionIdMarker></VersionIdMarker><MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>\
            <NextKeyMarker>k&amp;2</NextKeyMarker><NextVersionIdMarker>ff01</NextVersionIdMarker>\
            <Version><Key>k2</Key><VersionId>ff03</VersionId><IsLatest>true</IsLatest></Version>\
            <DeleteMarker><Key>k2</Key><VersionId>ff02</VersionId></DeleteMarker>\
            <Version><Key>k2</Key><VersionId>ff01</VersionId><IsLatest>false</IsLatest></Version>\
            </ListVersionsResult>";
        let p = version_page(xml, 7).unwrap();
        assert_eq!(p.entries, 3);
        assert_eq!(
            p.next,
            Some(VersionMarkers {
                key: "k&2".into(),
                version_id: Some("ff01".into())
            })
        );
        // The last page: no markers to follow.
        let xml = "<ListVersionsResult><IsTruncated>false</IsTruncated>\
            <Version><Key>k9</Key><VersionId>null</VersionId></Version></ListVersionsResult>";
        let p = version_page(xml, 7).unwrap();
        assert_eq!((p.entries, p.next), (1, None));
        let xml = "<ListVersionsResult><IsTruncated>true</IsTruncated></ListVersionsResult>";
        assert!(version_page(xml, 7).is_err());
    }

    #[test]
    fn unescape_entities_and_references() {
        assert_eq!(
            super::unescape("a&amp;b &lt;&#43;&#x2F;&gt; &bogus"),
            "a&b <+/> &bogus"
        );
    }
}
