//! The floor: a bare hyper server that speaks just enough S3 for the
//! workloads, with no authentication, no disk and no durability.
//!
//! PUT reads the body to the end and remembers only the key and its length;
//! GET answers with that many bytes sliced from one shared random buffer;
//! HEAD answers the length; ListObjectsV2 walks the remembered keys in order,
//! and ListObjectVersions walks them as one `null` version each (the floor
//! keeps no versions: PutBucketVersioning is answered 200 and ignored).
//! It is the most any HTTP server can do on this machine with this client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::body::{Payload, RepeatBody};

/// The in-memory state: `bucket/key` to object length.
struct Floor {
    objects: RwLock<BTreeMap<String, u64>>,
    payload: Payload,
}

/// Binds `addr` and serves the floor on the current tokio runtime until the
/// process ends. Returns the bound address.
pub async fn start(addr: &str) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let state = Arc::new(Floor {
        objects: RwLock::new(BTreeMap::new()),
        payload: Payload::random(1 << 20),
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(state.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(local)
}

fn reply(status: StatusCode, body: RepeatBody) -> Response<RepeatBody> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

async fn handle(
    state: Arc<Floor>,
    req: Request<Incoming>,
) -> Result<Response<RepeatBody>, hyper::Error> {
    let path = req.uri().path().trim_start_matches('/').to_owned();
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b.to_owned(), Some(k.to_owned())),
        _ => (path.trim_end_matches('/').to_owned(), None),
    };
    let method = req.method().clone();
    let Some(key) = key else {
        if method == Method::GET {
            let query = req.uri().query().unwrap_or("").to_owned();
            return Ok(list(&state, &bucket, &query));
        }
        return Ok(reply(StatusCode::OK, RepeatBody::empty()));
    };
    let full = format!("{bucket}/{key}");
    match method {
        Method::PUT => {
            let mut body = req.into_body();
            let mut len = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    len += data.len() as u64;
                }
            }
            state.objects.write().expect("lock").insert(full, len);
            let mut r = reply(StatusCode::OK, RepeatBody::empty());
            r.headers_mut()
                .insert(header::ETAG, header::HeaderValue::from_static("\"floor\""));
            Ok(r)
        }
        Method::GET | Method::HEAD => {
            let len = state.objects.read().expect("lock").get(&full).copied();
            let Some(len) = len else {
                return Ok(reply(StatusCode::NOT_FOUND, RepeatBody::empty()));
            };
            let body = if method == Method::GET {
                state.payload.body(len)
            } else {
                RepeatBody::empty()
            };
            let mut r = reply(StatusCode::OK, body);
            r.headers_mut().insert(header::CONTENT_LENGTH, len.into());
            Ok(r)
        }
        Method::DELETE => {
            state.objects.write().expect("lock").remove(&full);
            Ok(reply(StatusCode::NO_CONTENT, RepeatBody::empty()))
        }
        _ => Ok(reply(StatusCode::NOT_IMPLEMENTED, RepeatBody::empty())),
    }
}

/// ListObjectsV2: up to `max-keys` keys after the continuation token (which
/// is the last key returned) or `start-after`; with `versions` in the query,
/// ListObjectVersions after `key-marker`. Keys are written unescaped: the
/// generator only makes keys of `[a-z0-9/-]`.
fn list(state: &Floor, bucket: &str, query: &str) -> Response<RepeatBody> {
    let mut max = 1000usize;
    let mut after = String::new();
    let mut prefix = String::new();
    let mut versions = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "max-keys" => max = v.parse().unwrap_or(1000).min(1000),
            "continuation-token" | "start-after" | "key-marker" if *v > *after => {
                after = v.into_owned()
            }
            "prefix" => prefix = v.into_owned(),
            "versions" => versions = true,
            _ => {}
        }
    }
    let root = if versions {
        "ListVersionsResult"
    } else {
        "ListBucketResult"
    };
    let lo = format!("{bucket}/{prefix}");
    let from = format!("{bucket}/{after}");
    let objects = state.objects.read().expect("lock");
    let mut xml = String::with_capacity(200 + max * 200);
    xml.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}><Name>"
    ));
    xml.push_str(bucket);
    xml.push_str("</Name>");
    let mut n = 0;
    let mut last = None;
    let mut iter = objects
        .range(from.clone().max(lo.clone())..)
        .filter(|(k, _)| **k != from)
        .take_while(|(k, _)| k.starts_with(&lo))
        .peekable();
    while n < max {
        let Some((k, len)) = iter.next() else { break };
        let key = &k[bucket.len() + 1..];
        let (open, close) = if versions {
            ("<Version>", "</Version>")
        } else {
            ("<Contents>", "</Contents>")
        };
        xml.push_str(open);
        xml.push_str("<Key>");
        xml.push_str(key);
        xml.push_str("</Key>");
        if versions {
            xml.push_str("<VersionId>null</VersionId><IsLatest>true</IsLatest>");
        }
        xml.push_str("<LastModified>2026-01-01T00:00:00.000Z</LastModified>");
        xml.push_str("<ETag>&quot;floor&quot;</ETag><Size>");
        xml.push_str(&len.to_string());
        xml.push_str("</Size><StorageClass>STANDARD</StorageClass>");
        xml.push_str(close);
        last = Some(key.to_owned());
        n += 1;
    }
    let truncated = iter.peek().is_some();
    xml.push_str(&format!("<KeyCount>{n}</KeyCount><MaxKeys>{max}</MaxKeys>"));
    xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    match (truncated, last) {
        (true, Some(last)) if versions => xml.push_str(&format!(
            "<NextKeyMarker>{last}</NextKeyMarker><NextVersionIdMarker>null</NextVersionIdMarker>"
        )),
        (true, Some(last)) => xml.push_str(&format!(
            "<NextContinuationToken>{last}</NextContinuationToken>"
        )),
        _ => {}
    }
    xml.push_str(&format!("</{root}>"));
    let mut r = reply(StatusCode::OK, RepeatBody::bytes(Bytes::from(xml)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/xml"),
    );
    r
}
