//! The HTTP server: connections (plain or TLS), addressing, authentication,
//! routing, and the error document. Every response carries a request id.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudmux_core::{Gateway, Principal, RequestContext};
use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::{self, AuthContext, Authenticated, Credentials, SignedRequest};
use crate::body::{self, ResBody};
use crate::context::{Query, Req};
use crate::error::{S3Error, S3Result};
use crate::handlers;
use crate::limits::{
    self, Admission, BusyGuard, ConnState, Expiry, Held, Limits, Tracker, Watched,
};
use crate::ops::{self, Access, OpsEndpoint, Readiness};
use crate::router::Endpoint;
use crate::xml::XmlWriter;

/// Largest request header section S3 accepts.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Front-end settings. Its `Debug` output leaves the metrics token out.
#[derive(Clone, Default)]
pub struct FrontConfig {
    /// Region answered in headers and checked in signatures.
    pub region: String,
    /// Domains for virtual-hosted-style requests (`bucket.<domain>`).
    pub domains: Vec<String>,
    /// The bearer token that may read `/metrics` (`[server] metrics_token`).
    pub metrics_token: Option<String>,
    /// Connection, timeout, body memory and per-account limits (`[limits]`).
    pub limits: Limits,
    /// Proxies whose `X-Forwarded-For` and `Forwarded` headers are believed
    /// (`[server] trusted_proxies`), for `aws:SourceIp` and the logs.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Whether `/metrics` and the admin routes under `/_/` are also served on
    /// the S3 listener (`[server] admin_on_s3_port`, default true). When
    /// false they are served only by [`S3Service::serve_admin`]; the health
    /// routes stay on both.
    pub admin_on_s3_port: bool,
}

impl std::fmt::Debug for FrontConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontConfig")
            .field("region", &self.region)
            .field("domains", &self.domains)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("limits", &self.limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("admin_on_s3_port", &self.admin_on_s3_port)
            .finish()
    }
}

/// The connection a request arrived on, as bucket policy conditions see it
/// (`aws:SourceIp`, `aws:SecureTransport`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conn {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub secure: bool,
    /// Which listener accepted it.
    pub listener: Listener,
}

/// The listeners a service serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Listener {
    /// The S3 listener (`[server] listen`).
    #[default]
    S3,
    /// The admin listener (`[server] admin_listen`): the health routes,
    /// `/metrics` and the admin routes under `/_/`, nothing else.
    Admin,
}

/// The S3 service: the gateway plus front-end settings.
pub struct S3Service {
    gw: Arc<Gateway>,
    cfg: FrontConfig,
    ready: Readiness,
    admission: Admission,
}

struct AccountCredentials<'a>(&'a Gateway);

impl Credentials for AccountCredentials<'_> {
    fn secret_for(&self, access_key: &str) -> Option<String> {
        self.0
            .accounts()
            .by_access_key(access_key)
            .map(|a| a.secret_key.clone())
    }
}

fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

impl S3Service {
    /// A service over a gateway.
    pub fn new(gw: Arc<Gateway>, cfg: FrontConfig) -> Arc<Self> {
        Arc::new(Self {
            gw,
            admission: Admission::new(&cfg.limits),
            cfg,
            ready: Readiness::default(),
        })
    }

    /// Accepts connections until `shutdown` resolves, then drains: the
    /// listener is closed at once (new connections are refused), idle
    /// keep-alive connections are closed, and requests in flight may finish
    /// for up to `grace`. Connections still open after `grace` are dropped
    /// and their number is logged. With `tls`, every connection is TLS.
    ///
    /// At most `[limits] max_connections` connections are open: a new one
    /// closes the connection idle the longest, or waits while every
    /// connection is busy.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) -> std::io::Result<()> {
        self.ready.refresh(&self.gw).await;
        let _refresher = self.ready.spawn_refresher(self.gw.clone());
        self.serve_on(listener, tls, shutdown, grace, Listener::S3)
            .await
    }

    /// Serves the admin listener (`[server] admin_listen`): the health
    /// routes, `/metrics` and the admin routes, with the same access rules
    /// as on the S3 listener; any other request is 404. Shuts down like
    /// [`S3Service::serve`]; run it beside that, which keeps readiness fresh.
    pub async fn serve_admin(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) -> std::io::Result<()> {
        self.serve_on(listener, tls, shutdown, grace, Listener::Admin)
            .await
    }

    async fn serve_on(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl std::future::Future<Output = ()>,
        grace: Duration,
        kind: Listener,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        let (drain_tx, drain) = watch::channel(false);
        let tracker = Tracker::new(self.cfg.limits.max_connections);
        let mut conns = JoinSet::new();
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                () = &mut shutdown => break,
            };
            let admitted = tokio::select! {
                a = tracker.admit() => a,
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            let tls = tls.clone();
            let mut drain = drain.clone();
            conns.spawn(async move {
                let state = admitted.state().clone();
                match tls {
                    Some(acceptor) => {
                        let handshake = tokio::select! {
                            r = tokio::time::timeout(limits::HEADER_TIMEOUT, acceptor.accept(stream)) => r,
                            () = drained(&mut drain) => return,
                            () = state.close_requested() => return,
                        };
                        match handshake {
                            Ok(Ok(s)) => {
                                let conn = Conn {
                                    peer: Some(peer),
                                    secure: true,
                                    listener: kind,
                                };
                                me.connection(s, conn, drain, state).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                    None => {
                        let conn = Conn {
                            peer: Some(peer),
                            secure: false,
                            listener: kind,
                        };
                        me.connection(stream, conn, drain, state).await
                    }
                }
                drop(admitted);
            });
        }
        drop(listener);
        drain_tx.send_replace(true);
        tracing::info!(
            open = conns.len(),
            grace_secs = grace.as_secs(),
            "shutting down: new connections are refused, requests in flight may finish"
        );
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = conns.join_next() => if r.is_none() { break },
                () = &mut deadline => break,
            }
        }
        let cut = conns.len();
        if cut > 0 {
            tracing::warn!(
                cut,
                grace_secs = grace.as_secs(),
                "shutdown deadline passed: dropping the connections still open"
            );
            conns.shutdown().await;
        } else {
            tracing::info!("shutdown: every connection finished");
        }
        Ok(())
    }

    /// Serves one connection until it ends. Once the server drains, or the
    /// connection limit needs its place, or it has been idle for
    /// `[limits] idle_timeout_secs`, the connection finishes the request in
    /// flight, if any, and closes. A header section still incomplete
    /// [`limits::HEADER_TIMEOUT`] after its first byte drops the connection;
    /// a request whose body or response stalls for
    /// `[limits] body_timeout_secs` fails (see [`Watched`]).
    async fn connection<S>(
        self: Arc<Self>,
        io: S,
        conn: Conn,
        mut drain: watch::Receiver<bool>,
        state: Arc<ConnState>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let peer = conn.peer.map(|p| p.to_string()).unwrap_or_default();
        let limits = self.cfg.limits.clone();
        let io = TokioIo::new(Watched::new(io, state.clone(), limits.body_timeout));
        let svc = {
            let state = state.clone();
            service_fn(move |req| {
                let me = self.clone();
                let busy = state.begin();
                async move { Ok::<_, Infallible>(me.respond(req, conn, Some(busy)).await) }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .half_close(true)
            .max_headers(256)
            .max_buf_size(limits::READ_BUFFER_BYTES);
        let served = builder.serve_connection(io, svc);
        tokio::pin!(served);
        let mut closing_since: Option<Instant> = None;
        let result = loop {
            let deadline = state.deadline(limits.idle_timeout, closing_since);
            let timer = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = served.as_mut() => break r,
                () = drained(&mut drain), if closing_since.is_none() => {
                    served.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now());
                }
                () = state.close_requested(), if closing_since.is_none() => {
                    served.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now());
                }
                () = state.changed() => {}
                () = timer => match state.deadline(limits.idle_timeout, closing_since) {
                    Some((at, Expiry::Idle)) if at <= Instant::now() => {
                        served.as_mut().graceful_shutdown();
                        closing_since = Some(Instant::now());
                    }
                    Some((at, Expiry::Hard)) if at <= Instant::now() => {
                        tracing::debug!(%peer, "connection dropped: header section or close too slow");
                        return;
                    }
                    _ => {}
                },
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }

    /// Handles one request end to end.
    pub async fn handle(&self, req: Request<Incoming>, conn: Conn) -> Response<ResBody> {
        self.respond(req, conn, None).await
    }

    /// Handles one request; `busy` marks its connection busy until the
    /// response has been sent, as do the permits `route` takes.
    async fn respond(
        &self,
        req: Request<Incoming>,
        conn: Conn,
        busy: Option<BusyGuard>,
    ) -> Response<ResBody> {
        let id = request_id();
        let start = Instant::now();
        let method = req.method().clone();
        let resource = req.uri().path().to_owned();
        let received = declared_length(req.headers());
        let has_body = received > 0 || req.headers().contains_key(http::header::TRANSFER_ENCODING);
        let mut conn = conn;
        if let Some(peer) = conn.peer {
            let ip =
                crate::client_ip::client_ip(peer.ip(), req.headers(), &self.cfg.trusted_proxies);
            conn.peer = Some(SocketAddr::new(ip, peer.port()));
        }
        let origin = req
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut held = Held {
            busy,
            ..Held::default()
        };
        let (mut result, op, bucket) = self.route(req, conn, &mut held).await;
        if result.is_err() && held.body_timed_out() {
            result = Err(S3Error::request_timeout());
        }
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                let mut resp = error_response(e, &resource, &id, method == Method::HEAD);
                if has_body {
                    // An error may come before the body was read, and hyper
                    // then closes the connection after the answer without
                    // saying so; a client reusing it would fail its next
                    // request. Saying `Connection: close` keeps it from trying.
                    resp.headers_mut()
                        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                }
                resp
            }
        };
        if let (Some(origin), Some(b)) = (origin.as_deref(), bucket.as_deref()) {
            if method != Method::OPTIONS {
                handlers::cors::decorate(&self.gw, b, origin, &method, &mut resp).await;
            }
        }
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&id) {
            h.insert("x-amz-request-id", v.clone());
            h.insert("x-amz-id-2", v);
        }
        h.insert("server", HeaderValue::from_static("cloudmux"));
        let status = resp.status().as_u16();
        let sent = if method == Method::HEAD || status == 204 || status == 304 {
            0
        } else {
            declared_length(resp.headers())
        };
        let elapsed = start.elapsed();
        self.gw
            .metrics()
            .record_request(op, status, elapsed, received, sent);
        tracing::info!(
            request_id = %id,
            client = %conn.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
            op,
            bucket = bucket.as_deref().unwrap_or(""),
            status,
            bytes_in = received,
            bytes_out = sent,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        held.attach(resp)
    }

    fn addressing(
        &self,
        req: &Request<Incoming>,
    ) -> S3Result<(Option<String>, Option<String>, Option<String>)> {
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(|h| {
                h.rsplit_once(':').map_or(h, |(name, port)| {
                    if port.chars().all(|c| c.is_ascii_digit()) {
                        name
                    } else {
                        h
                    }
                })
            })
            .unwrap_or("")
            .to_ascii_lowercase();
        let vhost = self.cfg.domains.iter().find_map(|d| {
            host.strip_suffix(d.as_str())
                .and_then(|b| b.strip_suffix('.'))
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
        });
        let decode = |s: &str| -> S3Result<String> {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| S3Error::invalid_uri())
        };
        let path = req.uri().path();
        let path = path.strip_prefix('/').unwrap_or(path);
        Ok(match vhost {
            Some(b) => {
                let key = Some(decode(path)?).filter(|k| !k.is_empty());
                (Some(b.clone()), key, Some(b))
            }
            None => {
                let (b, k) = path.split_once('/').unwrap_or((path, ""));
                let bucket = Some(decode(b)?).filter(|b| !b.is_empty());
                let key = Some(decode(k)?).filter(|k| !k.is_empty());
                (bucket, key, None)
            }
        })
    }

    /// Authenticates and dispatches a request. Past authentication it takes
    /// the account's request permit and the body memory permit into `held`.
    async fn route(
        &self,
        req: Request<Incoming>,
        conn: Conn,
        held: &mut Held,
    ) -> (S3Result<Response<ResBody>>, &'static str, Option<String>) {
        let header_bytes: usize = req
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            return (Err(S3Error::headers_too_large()), "-", None);
        }
        let (bucket, key, vhost_bucket) = match self.addressing(&req) {
            Ok(x) => x,
            Err(e) => return (Err(e), "-", None),
        };
        let ops = match OpsEndpoint::classify(&req).filter(|_| vhost_bucket.is_none()) {
            // With `admin_on_s3_port = false` the S3 listener keeps only the
            // health routes; `/metrics` is then an ordinary bucket name.
            Some(ops)
                if conn.listener == Listener::S3
                    && !self.cfg.admin_on_s3_port
                    && ops.access() != Access::Open =>
            {
                None
            }
            other => other,
        };
        if ops.is_none() && conn.listener == Listener::Admin {
            return (Err(S3Error::not_an_admin_route()), "-", None);
        }
        {
            if let Some(ops) = ops {
                if let Err(e) = self.ops_access(ops.access(), &req, vhost_bucket.as_deref()) {
                    return (Err(e), ops.name(), None);
                }
                if ops == OpsEndpoint::Failpoints {
                    return (Ok(ops::failpoints(&req)), ops.name(), None);
                }
                let head = req.method() == Method::HEAD;
                return (
                    Ok(ops.answer(&self.gw, &self.ready, head).await),
                    ops.name(),
                    None,
                );
            }
        }
        let (parts, incoming) = req.into_parts();
        if parts.method == Method::OPTIONS {
            if let Some(b) = bucket.as_deref() {
                let r = handlers::cors::preflight(&self.gw, b, &parts.headers).await;
                return (r, Endpoint::CorsPreflight.name(), bucket);
            }
        }
        let signed = SignedRequest {
            method: &parts.method,
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query(),
            headers: &parts.headers,
            virtual_host_bucket: vhost_bucket.as_deref(),
        };
        let (principal, payload) = match self.authenticate(&signed) {
            Ok(x) => x,
            Err(e) => return (Err(e.into()), "-", bucket),
        };
        let query = Query::parse(parts.uri.query());
        let ep = Endpoint::classify(
            &parts.method,
            bucket.as_deref(),
            key.as_deref(),
            |k| query.has(k),
            query.get("list-type"),
            parts.headers.contains_key("x-amz-copy-source"),
        );
        if let Principal::Account(a) = &principal {
            match self.admission.account(&a.canonical_id) {
                Ok(p) => held.account = Some(p),
                Err(e) => return (Err(e), ep.name(), bucket),
            }
        }
        match self
            .admission
            .body(limits::declared_body(&parts.headers))
            .await
        {
            Ok(p) => held.body = p,
            Err(e) => return (Err(e), ep.name(), bucket),
        }
        let env = crate::policy_env::request_env(ep, conn, &query, &parts.headers);
        let principal = RequestContext::new(principal, env);
        let r = Req {
            method: parts.method,
            bucket: bucket.clone(),
            key,
            query,
            headers: parts.headers,
            body: Some(incoming),
            principal,
            payload,
        };
        let result = handlers::dispatch(&self.gw, ep, r).await;
        (result, ep.name(), bucket)
    }
}

impl S3Service {
    /// Checks the signature of a request and resolves its principal, with
    /// the way its body is protected.
    fn authenticate(
        &self,
        signed: &SignedRequest<'_>,
    ) -> Result<(Principal, auth::Payload), auth::AuthError> {
        let ctx = AuthContext {
            region: self.cfg.region.clone(),
            now: time::OffsetDateTime::now_utc(),
        };
        match auth::authenticate(signed, &AccountCredentials(&self.gw), &ctx)? {
            Authenticated::Anonymous => {
                auth::unsigned_payload(signed.headers).map(|p| (Principal::Anonymous, p))
            }
            Authenticated::Signed {
                access_key,
                payload,
            } => match self.gw.accounts().by_access_key(&access_key).cloned() {
                Some(a) => Ok((Principal::Account(a), payload)),
                None => Err(auth::AuthError::InvalidAccessKeyId { access_key }),
            },
        }
    }

    /// Decides whether a request may reach an operational endpoint: open
    /// ones always; the metrics endpoint with the configured bearer token or
    /// an admin's signature; admin routes with an admin's signature only.
    fn ops_access<B>(
        &self,
        access: Access,
        req: &Request<B>,
        vhost_bucket: Option<&str>,
    ) -> S3Result<()> {
        if access == Access::Open {
            return Ok(());
        }
        if let Some(token) = ops::bearer_token(req.headers()) {
            let expected = self.cfg.metrics_token.as_deref().map(str::as_bytes);
            let valid = access == Access::TokenOrAdmin
                && expected.is_some_and(|e| auth::token_eq(token, e));
            return if valid {
                Ok(())
            } else {
                Err(S3Error::access_denied("Access Denied"))
            };
        }
        let signed = SignedRequest {
            method: req.method(),
            raw_path: req.uri().path(),
            raw_query: req.uri().query(),
            headers: req.headers(),
            virtual_host_bucket: vhost_bucket,
        };
        match self.authenticate(&signed)? {
            (Principal::Account(a), _) if a.admin => Ok(()),
            _ => Err(S3Error::access_denied("Access Denied")),
        }
    }
}

/// Resolves once the server drains (or the server is gone).
async fn drained(drain: &mut watch::Receiver<bool>) {
    let _ = drain.wait_for(|d| *d).await;
}

/// The `Content-Length` a message declares (0 when absent): the bytes counted
/// in logs and metrics.
fn declared_length(h: &http::HeaderMap) -> u64 {
    h.get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Renders an error as S3 does: an `<Error>` document (none for HEAD and 304).
fn error_response(e: S3Error, resource: &str, id: &str, head: bool) -> Response<ResBody> {
    let mut b = Response::builder().status(e.status);
    for (n, v) in &e.headers {
        b = b.header(*n, v);
    }
    if head || e.status == http::StatusCode::NOT_MODIFIED {
        return b
            .body(body::empty())
            .unwrap_or_else(|_| Response::new(body::empty()));
    }
    let mut w = XmlWriter::bare("Error");
    w.elem("Code", e.code).elem("Message", &e.message);
    for (n, v) in &e.extra {
        w.elem(n, v);
    }
    w.elem("Resource", resource)
        .elem("RequestId", id)
        .elem("HostId", id);
    let doc = w.finish("Error");
    b.header("content-type", "application/xml")
        .header("content-length", doc.len())
        .body(body::full(doc))
        .unwrap_or_else(|_| Response::new(body::empty()))
}

/// Loads a PEM certificate chain and key into a TLS acceptor.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
