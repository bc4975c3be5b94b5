//! Operational endpoints on the S3 port: health probes and Prometheus metrics.
//!
//! They are answered before authentication and only for path-style requests
//! (a virtual-hosted request always addresses a bucket):
//! - `GET`/`HEAD /_/health/live`: the process serves requests (always 200).
//!   `_` is not a valid bucket name, so this never hides a bucket.
//! - `GET`/`HEAD /_/health/ready`: 200 when the metadata store answers a read
//!   and the default location answers its probe, else 503.
//! - `GET /metrics` with no query string and no `Authorization` header: the
//!   metrics in OpenMetrics text. `metrics` is a valid bucket name, so every
//!   other request on `/metrics` (signed, with a query such as `?list-type=2`,
//!   or another method) is the S3 operation on the bucket `metrics`. Only an
//!   anonymous, query-less ListObjects on a public bucket called `metrics` is
//!   shadowed by this rule.

use http::{HeaderValue, Method, Request, Response, StatusCode};

use cloudmux_core::Gateway;

use crate::body::{self, ResBody};

/// Path of the liveness probe.
pub const LIVE_PATH: &str = "/_/health/live";
/// Path of the readiness probe.
pub const READY_PATH: &str = "/_/health/ready";
/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";

/// Content type of the metrics exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which operational endpoint a request addresses, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsEndpoint {
    /// `/_/health/live`.
    Live,
    /// `/_/health/ready`.
    Ready,
    /// `GET /metrics`, anonymous and without a query.
    Metrics,
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
            METRICS_PATH
                if *method == Method::GET
                    && req.uri().query().is_none_or(str::is_empty)
                    && !req.headers().contains_key(http::header::AUTHORIZATION) =>
            {
                Some(Self::Metrics)
            }
            _ => None,
        }
    }

    /// The operation name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "HealthLive",
            Self::Ready => "HealthReady",
            Self::Metrics => "Metrics",
        }
    }

    /// Answers the request.
    pub async fn answer(self, gw: &Gateway, head: bool) -> Response<ResBody> {
        let (status, content_type, text) = match self {
            Self::Live => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
            Self::Ready => match gw.ready().await {
                Ok(()) => (
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "ready\n".into(),
                ),
                Err(reason) => {
                    tracing::warn!(%reason, "readiness probe failed");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain; charset=utf-8",
                        "not ready\n".to_owned(),
                    )
                }
            },
            Self::Metrics => (StatusCode::OK, OPENMETRICS, gw.metrics().render()),
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
    fn metrics_is_only_the_anonymous_queryless_get() {
        let m = Some(OpsEndpoint::Metrics);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics", false)), m);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics?", false)), m);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics", true)), None);
        assert_eq!(
            OpsEndpoint::classify(&req("GET", "/metrics?list-type=2", false)),
            None
        );
        assert_eq!(OpsEndpoint::classify(&req("PUT", "/metrics", false)), None);
        assert_eq!(OpsEndpoint::classify(&req("HEAD", "/metrics", false)), None);
        assert_eq!(OpsEndpoint::classify(&req("GET", "/metrics/", false)), None);
    }

    #[test]
    fn health_paths() {
        assert_eq!(
            OpsEndpoint::classify(&req("GET", "/_/health/live", true)),
            Some(OpsEndpoint::Live)
        );
        assert_eq!(
            OpsEndpoint::classify(&req("HEAD", "/_/health/ready", false)),
            Some(OpsEndpoint::Ready)
        );
        assert_eq!(
            OpsEndpoint::classify(&req("PUT", "/_/health/live", false)),
            None
        );
        assert_eq!(OpsEndpoint::classify(&req("GET", "/_/health", false)), None);
    }
}
