//! Operational endpoints on the S3 port: health probes, Prometheus metrics and
//! the admin surface under `/_/`.
//!
//! They are recognised only in path-style requests (a virtual-hosted request
//! always addresses a bucket):
//! - `GET`/`HEAD /_/health/live`: the process serves requests (always 200),
//!   open to anyone. `_` is not a valid bucket name, so this never hides a
//!   bucket.
//! - `GET`/`HEAD /_/health/ready`: open to anyone, answered from the last
//!   result of a probe that [`Readiness`] runs in the background (the
//!   metadata store answers a read), so an anonymous caller never causes a
//!   store or cloud request. A failing location does not make the process
//!   unready: the other locations keep serving.
//! - `GET`/`HEAD /_/health/locations`: open to anyone, one line per location,
//!   `NAME up` or `NAME down`, from the same background probe (200 when all
//!   are up, else 503); the reasons are in the log and `cloudmux_location_up`
//!   is on `/metrics`.
//! - `GET /metrics` without a query (or with only presigned-URL parameters):
//!   the metrics in OpenMetrics text, for a request carrying
//!   `Authorization: Bearer <server.metrics_token>` or signed (SigV4 or
//!   SigV2, header or presigned) by an `admin = true` account; anything else
//!   is 403 AccessDenied. `metrics` is a valid bucket name: every other
//!   request on `/metrics` (with an S3 query such as `?list-type=2`, or
//!   another method) is the S3 operation on the bucket `metrics`.
//! - Every other request whose path starts with `/_/` is an admin route: it
//!   must be signed by an `admin = true` account (bearer tokens are refused
//!   there), else 403 AccessDenied. `GET /_/meta/export` answers a consistent
//!   snapshot of the metadata store in the backup format of
//!   `cloudmux_meta::backup` (what `cloudmux meta export` saves).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use cloudmux_core::Gateway;

use crate::body::{self, ResBody};

/// Path of the liveness probe.
pub const LIVE_PATH: &str = "/_/health/live";
/// Path of the readiness probe.
pub const READY_PATH: &str = "/_/health/ready";
/// Path of the per-location health route.
pub const LOCATIONS_PATH: &str = "/_/health/locations";
/// Path of the metadata export (admin).
pub const META_EXPORT_PATH: &str = "/_/meta/export";

/// Prefix of the failpoint routes of test builds (the `failpoints` feature):
/// `GET /_/failpoints` lists the registered points, `PUT
/// /_/failpoints/NAME?action=ACTION` arms one, `DELETE /_/failpoints`
/// disarms every point (admin).
pub const FAILPOINTS_PATH: &str = "/_/failpoints";
/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";
/// Prefix of the operational and admin routes.
pub const ADMIN_PREFIX: &str = "/_/";

/// How often the background readiness probe runs.
pub const READINESS_INTERVAL: Duration = Duration::from_secs(2);
/// How long one readiness probe may take before it counts as failed.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(10);

/// Content type of the metrics exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which operational endpoint a request addresses, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsEndpoint {
    /// `/_/health/live`.
    Live,
    /// `/_/health/ready`.
    Ready,
    /// `/_/health/locations`.
    Locations,
    /// `GET /metrics` without an S3 query.
    Metrics,
    /// `GET /_/meta/export`: the metadata backup (admin).
    MetaExport,
    /// `/_/failpoints...`: arming failpoints in test builds (admin).
    Failpoints,
    /// Any other path under `/_/`: an admin route.
    Admin,
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, unauthenticated.
    Open,
    /// The metrics bearer token, or a request signed by an admin account.
    TokenOrAdmin,
    /// A request signed by an admin account only.
    Admin,
}

/// Whether every query parameter is one of a presigned URL's (SigV4 or
/// SigV2), which do not make a request an S3 operation.
fn only_presign_params(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .all(|p| {
            let key = p.split_once('=').map_or(p, |(k, _)| k);
            key.starts_with("X-Amz-") || matches!(key, "AWSAccessKeyId" | "Signature" | "Expires")
        })
}

impl OpsEndpoint {
    /// Classifies a path-style request; `None` means it is an S3 request.
    pub fn classify<B>(req: &Request<B>) -> Option<Self> {
        let path = req.uri().path();
        let method = req.method();
        let head_or_get = *method == Method::GET || *method == Method::HEAD;
        match path {
            LIVE_PATH if head_or_get => Some(Self::Live),
            READY_PATH if head_or_get => Some(Self::Ready),
            LOCATIONS_PATH if head_or_get => Some(Self::Locations),
            METRICS_PATH if *method == Method::GET && only_presign_params(req.uri().query()) => {
                Some(Self::Metrics)
            }
            META_EXPORT_PATH if *method == Method::GET => Some(Self::MetaExport),
            p if p == FAILPOINTS_PATH || p.starts_with("/_/failpoints/") => Some(Self::Failpoints),
            p if p.starts_with(ADMIN_PREFIX) => Some(Self::Admin),
            _ => None,
        }
    }

    /// Who may call this endpoint.
    pub fn access(self) -> Access {
        match self {
            Self::Live | Self::Ready | Self::Locations => Access::Open,
            Self::Metrics => Access::TokenOrAdmin,
            Self::MetaExport | Self::Failpoints | Self::Admin => Access::Admin,
        }
    }

    /// The operation name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "HealthLive",
            Self::Ready => "HealthReady",
            Self::Locations => "HealthLocations",
            Self::Metrics => "Metrics",
            Self::MetaExport => "MetaExport",
            Self::Failpoints => "Failpoints",
            Self::Admin => "Admin",
        }
    }

    /// Answers a request that passed [`OpsEndpoint::access`].
    pub async fn answer(self, gw: &Gateway, ready: &Readiness, head: bool) -> Response<ResBody> {
        if self == Self::MetaExport {
            return export(gw).await;
        }
        let (status, content_type, text) = match self {
            Self::Live => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
            Self::Ready => match ready.current() {
                Ok(()) => (
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "ready\n".into(),
                ),
                Err(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "not ready\n".to_owned(),
                ),
            },
            Self::Locations => {
                let locations = ready.locations();
                let mut text = String::new();
                for (name, result) in &locations {
                    let state = if result.is_ok() { "up" } else { "down" };
                    text.push_str(&format!("{name} {state}\n"));
                }
                let status = if !locations.is_empty() && locations.iter().all(|(_, r)| r.is_ok()) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (status, "text/plain; charset=utf-8", text)
            }
            Self::Metrics => (StatusCode::OK, OPENMETRICS, gw.metrics().render()),
            Self::MetaExport | Self::Failpoints | Self::Admin => (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "no such admin route\n".into(),
            ),
        };
        let len = text.len();
        let body = if head {
            body::empty()
        } else {
            body::full(text)
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static(content_type));
        h.insert("content-length", HeaderValue::from(len));
        h.insert("cache-control", HeaderValue::from_static("no-store"));
        resp
    }
}

/// Answers a failpoint route (see [`FAILPOINTS_PATH`]); 404 in builds
/// without the `failpoints` feature.
pub fn failpoints<B>(req: &Request<B>) -> Response<ResBody> {
    let (status, text) = arm_failpoint(req);
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(feature = "failpoints")]
fn arm_failpoint<B>(req: &Request<B>) -> (StatusCode, String) {
    use cloudmux_core::faults;
    let path = req.uri().path();
    if path == FAILPOINTS_PATH {
        return match *req.method() {
            Method::DELETE => {
                faults::clear();
                (StatusCode::OK, "cleared\n".into())
            }
            Method::GET => (
                StatusCode::OK,
                faults::REGISTRY
                    .iter()
                    .map(|(name, step)| format!("{name}\t{step}\n"))
                    .collect(),
            ),
            _ => (StatusCode::METHOD_NOT_ALLOWED, "GET or DELETE\n".into()),
        };
    }
    let name = path.strip_prefix("/_/failpoints/").unwrap_or_default();
    let action = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "action")
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        });
    match (req.method().clone(), action) {
        (Method::PUT, Some(action)) => match faults::configure(name, &action) {
            Ok(()) => (StatusCode::OK, format!("{name}={action}\n")),
            Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
        },
        _ => (
            StatusCode::BAD_REQUEST,
            "PUT /_/failpoints/NAME?action=ACTION or DELETE /_/failpoints\n".into(),
        ),
    }
}

#[cfg(not(feature = "failpoints"))]
fn arm_failpoint<B>(_req: &Request<B>) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        "this build has no failpoints (cargo feature `failpoints`)\n".into(),
    )
}

/// Answers the metadata backup, or 503 when the store cannot be read.
async fn export(gw: &Gateway) -> Response<ResBody> {
    let (status, content_type, bytes) = match gw.export_metadata().await {
        Ok(b) => (StatusCode::OK, "application/octet-stream", b),
        Err(e) => {
            tracing::warn!(error = %e, "metadata export failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                b"metadata export failed\n".to_vec(),
            )
        }
    };
    let len = bytes.len();
    let mut resp = Response::new(body::full(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert("content-length", HeaderValue::from(len));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    resp
}

/// The bearer token of an `Authorization: Bearer <token>` header, if the
/// request carries one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .as_bytes()
        .trim_ascii();
    if value.eq_ignore_ascii_case(b"bearer") {
        return Some(b"");
    }
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
}

/// The last readiness verdict and location health, refreshed by a background
/// task so that probes (often anonymous, often frequent) never reach the
/// stores themselves.
#[derive(Debug, Clone)]
pub struct Readiness {
    state: Arc<Mutex<Health>>,
}

/// What the last background probe found.
#[derive(Debug)]
struct Health {
    ready: Result<(), String>,
    locations: Vec<(String, Result<(), String>)>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(Health {
                ready: Err("no probe has finished yet".into()),
                locations: Vec::new(),
            })),
        }
    }
}

impl Readiness {
    /// The last verdict.
    pub fn current(&self) -> Result<(), String> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ready
            .clone()
    }

    /// The last result of each location's probe, by name.
    pub fn locations(&self) -> Vec<(String, Result<(), String>)> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .locations
            .clone()
    }

    /// Runs one probe of the metadata store and of every location (each
    /// bounded by [`READINESS_TIMEOUT`]) and records them; logs changes.
    pub async fn refresh(&self, gw: &Gateway) {
        let ready = async {
            match tokio::time::timeout(READINESS_TIMEOUT, gw.ready()).await {
                Ok(v) => v,
                Err(_) => Err(format!(
                    "probe did not answer within {} s",
                    READINESS_TIMEOUT.as_secs()
                )),
            }
        };
        let (verdict, locations) = tokio::join!(ready, gw.location_health(READINESS_TIMEOUT));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match (&state.ready, &verdict) {
            (Ok(()), Err(reason)) => tracing::warn!(%reason, "readiness probe failed"),
            (Err(_), Ok(())) => tracing::info!("readiness probe passed"),
            (Err(old), Err(reason)) if old != reason => {
                tracing::warn!(%reason, "readiness probe failed")
            }
            _ => {}
        }
        for (name, result) in &locations {
            let before = state
                .locations
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r);
            match (before, result) {
                (Some(Ok(())) | None, Err(reason)) => {
                    tracing::warn!(location = %name, %reason, "location probe failed")
                }
                (Some(Err(_)), Ok(())) => tracing::info!(location = %name, "location is back"),
                _ => {}
            }
        }
        state.ready = verdict;
        state.locations = locations;
    }

    /// Refreshes the verdict every [`READINESS_INTERVAL`] until the returned
    /// handle is dropped.
    pub fn spawn_refresher(&self, gw: Arc<Gateway>) -> AbortOnDrop {
        let me = self.clone();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(READINESS_INTERVAL).await;
                me.refresh(&gw).await;
            }
        }))
    }
}

/// A task handle that aborts its task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Takes charge of a spawned task.
    pub fn new(task: tokio::task::JoinHandle<()>) -> Self {
        Self(task)
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, auth: bool) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        if auth {
            b = b.header("authorization", "AWS4-HMAC-SHA256 Credential=x");
        }
        b.body(()).unwrap()
    }

    #[test]
    fn metrics_is_the_queryless_get_whoever_signs_it() {
        let m = Some(OpsEndpoint::Metrics);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics", false)), m);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics?", false)), m);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics", true)), m);
        assert_eq!(
            OpsEndpoint::classify(&req(
                "GET",
                "/metrics?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
                false
            )),
            m
        );
        assert_eq!(
            OpsEndpoint::classify(&req("GET", "/metrics?list-type=2", false)),
            None
        );
        assert_eq!(
            OpsEndpoint::classify(&req("GET", "/metrics?encoding-type=url", true)),
            None
        );
        assert_eq!(OpsEndpoint::classify(&req("PUT", "/metrics", false)), None);
        assert_eq!(OpsEndpoint::classify(&req("HEAD", "/metrics", false)), None);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics/", false)), None);
        assert_eq!(OpsEndpoint::Metrics.access(), Access::TokenOrAdmin);
    }

    #[test]
    fn health_paths_are_open_and_the_rest_of_underscore_is_admin() {
        assert_eq!(
            OpsEndpoint::classify(&req("GET", "/_/health/live", true)),
            Some(OpsEndpoint::Live)
        );
        assert_eq!(
            OpsEndpoint::classify(&req("HEAD", "/_/health/ready", false)),
            Some(OpsEndpoint::Ready)
        );
        for (method, path) in [
            ("PUT", "/_/health/live"),
            ("GET", "/_/health"),
            ("GET", "/_/backbeat/api/metrics"),
            ("POST", "/_/anything"),
        ] {
            let ep = OpsEndpoint::classify(&req(method, path, false));
            assert_eq!(ep, Some(OpsEndpoint::Admin), "{method} {path}");
            assert_eq!(ep.unwrap().access(), Access::Admin);
        }
        assert_eq!(OpsEndpoint::Live.access(), Access::Open);
        assert_eq!(OpsEndpoint::Ready.access(), Access::Open);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/_x/y", false)), None);
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer  abc "));
        assert_eq!(bearer_token(&h), Some(&b"abc"[..]));
        h.insert("authorization", HeaderValue::from_static("bearer xyz"));
        assert_eq!(bearer_token(&h), Some(&b"xyz"[..]));
        h.insert("authorization", HeaderValue::from_static("Bearer"));
        assert_eq!(bearer_token(&h), Some(&b""[..]));
        h.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 x"),
        );
        assert_eq!(bearer_token(&h), None);
    }
}
