//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the
//! corpus replay test (`tests/fuzz_corpus.rs`), so that the fuzzer and an
//! ordinary `cargo test` run exactly the same code.
//!
//! Each entry point takes arbitrary bytes and must never panic: a panic is a
//! bug in the parser it reaches, since every entry point only calls the code
//! the server runs on a request. The entry points are:
//!
//! - [`auth`]: SigV4 and SigV2 `Authorization` headers and presigned query
//!   strings ([`crate::auth::authenticate`], [`crate::auth::unsigned_payload`]),
//!   and an aws-chunked body when the request declares one.
//! - [`aws_chunked`]: the aws-chunked decoder with signed chunks, signed and
//!   unsigned trailers, fed in pieces of a chosen size.
//! - [`xml_bodies`]: every XML request document: CompleteMultipartUpload,
//!   Delete and CreateBucketConfiguration directly, and AccessControlPolicy,
//!   CORSConfiguration, Tagging and PublicAccessBlockConfiguration through
//!   their handlers (signed requests of the bucket owner, served in process).
//! - [`post_object`]: the POST Object `multipart/form-data` form, its policy
//!   signature and its policy document, through the handler.
//! - [`bucket_policy`]: the bucket policy JSON (`cloudmux_core::policy`),
//!   parsed as PutBucketPolicy and as a stored policy, then evaluated.
//! - [`router`]: the operation table ([`Endpoint::classify`]) and the
//!   operational endpoints on a method, target and headers, then the same
//!   request through the whole service.
//!
//! Requests that need the service go through [`S3Service::handle`] over an
//! in-memory HTTP/1.1 connection, on a gateway with an in-memory metadata
//! store and an `fs` location in a scratch directory. That gateway has one
//! account, the AWS documentation's example key
//! (`AKIAIOSFODNN7EXAMPLE`), which owns the bucket `fuzz-bucket`; nothing a
//! fuzz input sends can write object data (POST Object goes to a bucket that
//! does not exist, other requests are anonymous or carry XML documents).
//!
//! Input formats (text, so that seeds are readable):
//!
//! - *request* ([`auth`], [`router`]): an optional first line
//!   `@<unix seconds> [<virtual-host bucket>]` giving the clock and the
//!   bucket named by the `Host` header ([`auth`] only), then the request line
//!   `METHOD target`, then `name: value` header lines, an empty line, and the
//!   body. Lines end in LF or CRLF.
//! - [`aws_chunked`]: one byte choosing the decoding spec (its value modulo
//!   [`CHUNKED_MODES`]: `0` the AWS chunked upload example, signed chunks;
//!   `1` signed chunks and a signed `x-amz-checksum-crc32` trailer; `2`
//!   unsigned with that trailer; `3` unsigned without trailer), one byte
//!   giving the size of the pieces the body arrives in (`0`: in one piece),
//!   then the body.
//! - [`post_object`]: the boundary on the first line, then the form body.
//! - [`xml_bodies`], [`bucket_policy`]: the document itself.
#![doc(hidden)]

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use cloudmux_core::policy::{Access, Policy, RequestEnv};
use cloudmux_core::{Account, Accounts, Gateway, GatewayConfig, Locations, Principal};
use cloudmux_data::{BodyError, BodyStream};
use futures_util::Stream;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::{
    self, AuthContext, AuthError, Authenticated, ChunkedSpec, Credentials, Payload, SignedRequest,
};
use crate::context::Query;
use crate::ops::OpsEndpoint;
use crate::router::Endpoint;
use crate::server::{Conn, FrontConfig, S3Service};

/// The access key id of the one account (the AWS documentation's example).
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// Its secret key.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The account's e-mail address, for grants by e-mail.
pub const EMAIL: &str = "fuzz@example.com";
/// The region of the gateway and of every signature.
pub const REGION: &str = "us-east-1";
/// The bucket the account owns.
pub const BUCKET: &str = "fuzz-bucket";
/// The bucket POST Object forms are sent to; it does not exist.
pub const POST_BUCKET: &str = "post-bucket";
/// The domain of virtual-hosted-style requests.
pub const DOMAIN: &str = "s3.example.com";
/// How many decoding specs [`aws_chunked`] chooses from.
pub const CHUNKED_MODES: u8 = 4;

/// The one known key pair.
struct Keys;

impl Credentials for Keys {
    fn secret_for(&self, access_key: &str) -> Option<String> {
        (access_key == ACCESS_KEY).then(|| SECRET_KEY.to_owned())
    }
}

/// The one account.
fn account() -> Account {
    let mut a = Account::new("fuzz", ACCESS_KEY, SECRET_KEY);
    a.email = Some(EMAIL.to_owned());
    a
}

/// 2013-05-24T00:00:00Z, the time of the AWS SigV4 examples.
fn may_24_2013() -> OffsetDateTime {
    time::macros::datetime!(2013-05-24 00:00:00 UTC)
}

/// A request parsed from the *request* input format.
struct TextRequest<'a> {
    now: Option<OffsetDateTime>,
    vhost: Option<&'a str>,
    method: Method,
    target: &'a str,
    headers: HeaderMap,
    body: &'a [u8],
}

impl<'a> TextRequest<'a> {
    /// Parses the *request* format; `None` when the method or target is not
    /// something an HTTP server would hand on.
    fn parse(data: &'a [u8]) -> Option<Self> {
        let mut rest = data;
        let mut next_line = || -> Option<&'a [u8]> {
            if rest.is_empty() {
                return None;
            }
            let (line, after) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = after;
            Some(line.strip_suffix(b"\r").unwrap_or(line))
        };
        let mut first = next_line()?;
        let (mut now, mut vhost) = (None, None);
        if let Some(clock) = first.strip_prefix(b"@") {
            let clock = std::str::from_utf8(clock).ok()?;
            let mut words = clock.split(' ');
            now = words
                .next()
                .and_then(|s| s.parse::<i64>().ok())
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
            vhost = words.next().filter(|b| !b.is_empty());
            first = next_line()?;
        }
        let first = std::str::from_utf8(first).ok()?;
        let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
        let method = Method::from_bytes(method.as_bytes()).ok()?;
        http::uri::PathAndQuery::try_from(target).ok()?;
        let mut headers = HeaderMap::new();
        while let Some(line) = next_line() {
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = line[colon + 1..].trim_ascii();
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        Some(TextRequest {
            now,
            vhost,
            method,
            target,
            headers,
            body: rest,
        })
    }

    fn path(&self) -> &'a str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// Drains a stream that never waits (its input is in memory): the data, then
/// the error that ended it, if any.
fn drain(stream: BodyStream) -> (Vec<u8>, Option<BodyError>) {
    let mut stream = pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    let mut data = Vec::new();
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(bytes))) => data.extend_from_slice(&bytes),
            Poll::Ready(Some(Err(e))) => return (data, Some(e)),
            Poll::Ready(None) | Poll::Pending => return (data, None),
        }
    }
}

/// What decoding an aws-chunked body gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The payload.
    pub data: Vec<u8>,
    /// The declared trailer's value, if it arrived.
    pub trailer: Option<String>,
    /// The error that ended the body, if any.
    pub error: Option<BodyError>,
}

/// Decodes `body`, arriving in pieces of `piece` bytes (0: one piece).
fn decode(body: &[u8], piece: usize, spec: ChunkedSpec) -> Decoded {
    let pieces: Vec<Result<Bytes, BodyError>> = if piece == 0 {
        vec![Ok(Bytes::copy_from_slice(body))]
    } else {
        body.chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    };
    let slot = Arc::new(OnceLock::new());
    let stream = auth::decode_aws_chunked(
        Box::pin(futures_util::stream::iter(pieces)),
        spec,
        slot.clone(),
    );
    let (data, error) = drain(stream);
    Decoded {
        data,
        trailer: slot.get().cloned(),
        error,
    }
}

/// The SigV4 signing key of the account for a date and the region.
fn signing_key(date: &str) -> [u8; 32] {
    let mut key = format!("AWS4{SECRET_KEY}").into_bytes();
    for part in [date, REGION, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes()).to_vec();
    }
    let mut out = [0; 32];
    out.copy_from_slice(&key);
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Signs a request whose `authorization` header is a SigV4 header with a
/// placeholder signature: the string to sign is taken from the mismatch the
/// server's own check reports, so the canonicalisation is the server's.
fn sign(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &mut HeaderMap,
    now: OffsetDateTime,
) {
    let req = SignedRequest {
        method,
        raw_path: path,
        raw_query: query,
        headers,
        virtual_host_bucket: None,
    };
    let ctx = AuthContext {
        region: REGION.to_owned(),
        now,
    };
    let Err(AuthError::SignatureDoesNotMatch(mismatch)) = auth::authenticate(&req, &Keys, &ctx)
    else {
        return;
    };
    let Some(date) = mismatch
        .string_to_sign
        .split('\n')
        .nth(2)
        .and_then(|s| s.get(..8))
    else {
        return;
    };
    let signature = hex::encode(hmac(&signing_key(date), mismatch.string_to_sign.as_bytes()));
    let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once("Signature="))
        .map(|(head, _)| format!("{head}Signature={signature}"))
    else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(http::header::AUTHORIZATION, value);
    }
}

/// Builds a header map from pairs known to be valid.
fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .filter_map(|(n, v)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect()
}

/// The spec `authenticate` derives from a signed request, or an unsigned one
/// if it does not verify (it always does; the replay test checks).
fn spec_of(method: Method, path: &str, headers: &HeaderMap, fallback: ChunkedSpec) -> ChunkedSpec {
    let req = SignedRequest {
        method: &method,
        raw_path: path,
        raw_query: None,
        headers,
        virtual_host_bucket: None,
    };
    let ctx = AuthContext {
        region: REGION.to_owned(),
        now: may_24_2013(),
    };
    match auth::authenticate(&req, &Keys, &ctx) {
        Ok(Authenticated::Signed {
            payload: Payload::Chunked(spec),
            ..
        }) => spec,
        _ => fallback,
    }
}

/// The decoding spec of an [`aws_chunked`] mode (its value modulo
/// [`CHUNKED_MODES`]).
pub fn chunked_spec(mode: u8) -> ChunkedSpec {
    static SIGNED: OnceLock<[ChunkedSpec; 2]> = OnceLock::new();
    let crc = "x-amz-checksum-crc32";
    let signed = SIGNED.get_or_init(|| {
        // The AWS chunked upload example ("Example: PUT Object").
        let doc = header_map(&[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
        ]);
        let doc = spec_of(
            Method::PUT,
            "/examplebucket/chunkObject.txt",
            &doc,
            ChunkedSpec::unsigned(None, Some(66560)),
        );
        // The signed-trailer request of the decoder's tests.
        let mut trailer = header_map(&[
            ("host", "localhost:9000"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
            ("content-encoding", "gzip,aws-chunked"),
            ("x-amz-decoded-content-length", "11"),
            ("x-amz-trailer", crc),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-trailer, Signature=0000000000000000000000000000000000000000000000000000000000000000"),
        ]);
        sign(&Method::PUT, "/bucket/key", None, &mut trailer, may_24_2013());
        let trailer = spec_of(
            Method::PUT,
            "/bucket/key",
            &trailer,
            ChunkedSpec::unsigned(Some(crc), Some(11)),
        );
        [doc, trailer]
    });
    match mode % CHUNKED_MODES {
        0 => signed[0].clone(),
        1 => signed[1].clone(),
        2 => ChunkedSpec::unsigned(Some(crc), None),
        _ => ChunkedSpec::unsigned(None, None),
    }
}

/// Decodes an [`aws_chunked`] input and says what came out.
pub fn decode_chunked(data: &[u8]) -> Decoded {
    let (mode, piece, body) = match data {
        [mode, piece, body @ ..] => (*mode, *piece as usize, body),
        _ => return decode(data, 0, chunked_spec(3)),
    };
    decode(body, piece, chunked_spec(mode))
}

/// Fuzz entry point: the aws-chunked decoder (see the module docs for the
/// input format).
pub fn aws_chunked(data: &[u8]) {
    let _ = decode_chunked(data);
}

/// Fuzz entry point: request authentication, SigV4 and SigV2, header and
/// presigned (the *request* input format). A request that declares an
/// aws-chunked body has its body decoded with the spec it gave.
pub fn auth(data: &[u8]) {
    let Some(req) = TextRequest::parse(data) else {
        return;
    };
    let signed = SignedRequest {
        method: &req.method,
        raw_path: req.path(),
        raw_query: req.query(),
        headers: &req.headers,
        virtual_host_bucket: req.vhost,
    };
    let ctx = AuthContext {
        region: REGION.to_owned(),
        now: req.now.unwrap_or_else(may_24_2013),
    };
    let payload = match auth::authenticate(&signed, &Keys, &ctx) {
        Ok(Authenticated::Signed { payload, .. }) => Ok(payload),
        Ok(Authenticated::Anonymous) | Err(_) => auth::unsigned_payload(&req.headers),
    };
    if let Ok(Payload::Chunked(spec)) = payload {
        let _ = (
            spec.trailer_name(),
            spec.decoded_length(),
            spec.trailer_signed(),
        );
        decode(req.body, 0, spec);
    }
}

/// The in-process service the handler-level entry points send requests to.
struct Harness {
    rt: tokio::runtime::Runtime,
    svc: Arc<S3Service>,
}

/// Where the harness of this process keeps its `fs` location.
fn scratch_dir() -> PathBuf {
    let base = std::env::temp_dir();
    // Directories of earlier processes that have exited are removed, so
    // repeated runs do not pile them up.
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("cloudmux-fuzz-"))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if std::path::Path::new("/proc/self").exists()
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    base.join(format!("cloudmux-fuzz-{}", std::process::id()))
}

impl Harness {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = scratch_dir();
        let _ = std::fs::remove_dir_all(&dir);
        let fs = cloudmux_data::fs::FsBackend::open(&cloudmux_data::fs::FsConfig { path: dir })
            .expect("a scratch fs location");
        let backends: std::collections::HashMap<String, Arc<dyn cloudmux_data::Backend>> = [(
            "local".to_owned(),
            Arc::new(fs) as Arc<dyn cloudmux_data::Backend>,
        )]
        .into();
        let locations = Locations::new(backends, "local".into()).expect("one location");
        let accounts = Accounts::new(vec![account()]);
        let owner = cloudmux_core::RequestContext::new(
            Principal::Account(Arc::new(account())),
            cloudmux_core::policy::RequestEnv::default(),
        );
        let gw = rt.block_on(async {
            let gw = Gateway::new(
                GatewayConfig {
                    region: REGION.into(),
                },
                Arc::new(cloudmux_meta::MemStore::new()),
                accounts,
                locations,
            );
            gw.create_bucket(&owner, BUCKET, None, None, None)
                .await
                .expect("the fuzz bucket");
            Arc::new(gw)
        });
        let svc = S3Service::new(
            gw,
            FrontConfig {
                region: REGION.into(),
                domains: vec![DOMAIN.into()],
                ..FrontConfig::default()
            },
        );
        Harness { rt, svc }
    }

    /// Sends one request over a fresh in-memory connection and returns the
    /// response status (0 when none could be read).
    fn send(&self, method: &Method, target: &str, headers: &HeaderMap, body: &[u8]) -> u16 {
        let mut raw = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
        if !headers.contains_key(http::header::HOST) {
            raw.extend_from_slice(b"host: localhost\r\n");
        }
        for (name, value) in headers {
            if matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            ) {
                continue;
            }
            raw.extend_from_slice(name.as_str().as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value.as_bytes());
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        raw.extend_from_slice(body);
        let svc = self.svc.clone();
        self.rt.block_on(async move {
            let (mut client, server) = tokio::io::duplex(1 << 20);
            let serve = hyper::server::conn::http1::Builder::new().serve_connection(
                TokioIo::new(server),
                service_fn(move |req| {
                    let svc = svc.clone();
                    async move { Ok::<_, Infallible>(svc.handle(req, Conn::default()).await) }
                }),
            );
            let talk = async move {
                // The server may answer and close before it has read the
                // whole body, so a failed write is not an error here.
                let _ = client.write_all(&raw).await;
                let mut response = Vec::new();
                let _ = client.read_to_end(&mut response).await;
                response
            };
            let (_, response) = tokio::join!(serve, talk);
            response
                .get(9..12)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        })
    }

    /// Sends a request signed by the bucket owner with an unsigned payload
    /// and, when it has a body, its `Content-MD5` (which DeleteObjects,
    /// PutBucketCors and PutBucketTagging require).
    fn send_signed(&self, method: Method, target: &str, body: &[u8]) -> u16 {
        let now = OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let signed = if body.is_empty() {
            "host;x-amz-content-sha256;x-amz-date"
        } else {
            "content-md5;host;x-amz-content-sha256;x-amz-date"
        };
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{}/{REGION}/s3/aws4_request, SignedHeaders={signed}, Signature={}",
            &stamp[..8],
            "0".repeat(64)
        );
        let mut headers = header_map(&[
            ("host", "localhost"),
            ("x-amz-date", &stamp),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", &auth),
        ]);
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        if !body.is_empty() {
            use base64::Engine;
            use md5::Digest;
            let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
            if let Ok(v) = http::HeaderValue::from_str(&md5) {
                headers.insert("content-md5", v);
            }
        }
        sign(&method, path, query, &mut headers, now);
        self.send(&method, target, &headers, body)
    }
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::new)
}

/// The requests [`xml_bodies`] sends, in order; the first resets the Block
/// Public Access setting the previous input may have left.
pub const XML_REQUESTS: &[(&str, &str)] = &[
    ("DELETE", "/fuzz-bucket?publicAccessBlock"),
    ("PUT", "/fuzz-bucket?acl"),
    ("PUT", "/fuzz-bucket?cors"),
    ("PUT", "/fuzz-bucket?tagging"),
    ("PUT", "/fuzz-bucket?publicAccessBlock"),
];

/// Sends `doc` as the body of every request of [`XML_REQUESTS`] (signed by
/// the bucket owner) and returns their statuses.
pub fn xml_statuses(doc: &[u8]) -> Vec<u16> {
    let h = harness();
    XML_REQUESTS
        .iter()
        .map(|(method, target)| {
            let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::PUT);
            let body = if method == Method::DELETE {
                &[][..]
            } else {
                doc
            };
            h.send_signed(method, target, body)
        })
        .collect()
}

/// Fuzz entry point: every XML request document, directly where the parser
/// is public and through its handler otherwise.
pub fn xml_bodies(data: &[u8]) {
    let _ = crate::xml::parse_complete(data);
    let _ = crate::xml::parse_delete(data);
    let _ = crate::xml::parse_create_bucket(data);
    let _ = crate::handlers::ownership::parse_controls(data);
    xml_statuses(data);
}

/// Sends a POST Object form (boundary on the first line, then the body) to
/// [`POST_BUCKET`] and returns the response status.
pub fn post_status(data: &[u8]) -> u16 {
    let (boundary, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let boundary = boundary.strip_suffix(b"\r").unwrap_or(boundary);
    let mut content_type = b"multipart/form-data; boundary=".to_vec();
    content_type.extend_from_slice(boundary);
    let Ok(content_type) = HeaderValue::from_bytes(&content_type) else {
        return 0;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, content_type);
    harness().send(&Method::POST, &format!("/{POST_BUCKET}"), &headers, body)
}

/// Fuzz entry point: POST Object forms, their signatures and policies.
pub fn post_object(data: &[u8]) {
    post_status(data);
}

/// Fuzz entry point: a bucket policy document, parsed as PutBucketPolicy
/// does and as a stored policy is, then evaluated for a few requests.
pub fn bucket_policy(data: &[u8]) {
    static ACCOUNTS: OnceLock<Accounts> = OnceLock::new();
    let accounts = ACCOUNTS.get_or_init(|| Accounts::new(vec![account()]));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let strict = Policy::parse(text, BUCKET, accounts);
    let Ok(policy) = Policy::load(text, BUCKET, accounts) else {
        return;
    };
    let _ = (strict.is_ok(), policy.is_public());
    let env = RequestEnv {
        action: Some("s3:GetObject"),
        source_ip: Some(std::net::Ipv4Addr::new(192, 0, 2, 7).into()),
        secure_transport: true,
        values: vec![
            ("s3:prefix", "home/".to_owned()),
            ("aws:referer", "https://www.example.com/".to_owned()),
            ("s3:x-amz-acl", "public-read".to_owned()),
            ("s3:max-keys", "10".to_owned()),
        ],
    };
    let who = [
        Principal::Anonymous,
        Principal::Account(Arc::new(account())),
    ];
    let accesses = [
        Access {
            action: "s3:GetObject",
            bucket: BUCKET,
            key: Some("home/a b*?.txt"),
        },
        Access {
            action: "s3:ListBucket",
            bucket: BUCKET,
            key: None,
        },
        Access {
            action: "s3:PutObject",
            bucket: "other",
            key: Some(""),
        },
    ];
    for who in &who {
        for access in &accesses {
            policy.evaluate(who, access, &env);
            policy.evaluate(who, access, &RequestEnv::default());
        }
    }
}

/// Classifies a request as the server does: the operational endpoints, then
/// path-style addressing and the operation table. `None` when the request
/// line is not one an HTTP server would hand on.
pub fn classify(data: &[u8]) -> Option<(Option<OpsEndpoint>, Endpoint)> {
    let req = TextRequest::parse(data)?;
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(req.target);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(()).ok()?;
    let ops = OpsEndpoint::classify(&request);
    let query = Query::parse(request.uri().query());
    let path = request.uri().path();
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
            .filter(|s| !s.is_empty())
    };
    let (bucket, key) = (decode(bucket), decode(key));
    let ep = Endpoint::classify(
        request.method(),
        bucket.as_deref(),
        key.as_deref(),
        |k| query.has(k),
        query.get("list-type"),
        request.headers().contains_key("x-amz-copy-source"),
    );
    let _ = (
        ep.name(),
        ep.s3_action(),
        ops.map(|o| (o.name(), o.access())),
    );
    Some((ops, ep))
}

/// Sends a *request* input through the whole service and returns the
/// response status (`None` when it is not a valid request). Its signatures,
/// if any, cannot verify at the current time, so it acts as anonymous.
pub fn route_status(data: &[u8]) -> Option<u16> {
    let req = TextRequest::parse(data)?;
    Some(harness().send(&req.method, req.target, &req.headers, req.body))
}

/// Fuzz entry point: the router's classification of a method, target and
/// headers, and the same request through the service.
pub fn router(data: &[u8]) {
    if classify(data).is_some() {
        route_status(data);
    }
}
