//! The HTTP client of the REST cloud locations ([`azure`](crate::azure) and
//! [`gcs`](crate::gcs)): one `reqwest` client per location with its
//! timeouts, requests sent through the one retry loop ([`Retry`]) and error
//! answers read by the one classification ([`classify`](super::classify)).
//! Error messages name the location and never carry a URL (a SAS token
//! lives in the query string) or a header.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{CloudOptions, Retry};
use crate::{BodyError, BodyStream, DataError, Result};

/// The HTTP client of one cloud location.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    /// The location's name, for messages.
    pub location: String,
    /// The client (connection pool, timeouts, TLS with the system's roots).
    pub client: reqwest::Client,
    /// The location's options.
    pub opts: CloudOptions,
    /// The location's retry policy.
    pub retry: Retry,
}

impl Http {
    /// Builds the client for a location.
    pub fn new(location: &str, opts: &CloudOptions) -> std::result::Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout())
            .read_timeout(opts.request_timeout())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            location: location.to_owned(),
            client,
            opts: opts.clone(),
            retry: opts.retry(location),
        })
    }

    /// A [`DataError::Unavailable`] naming the location.
    pub fn unavailable(&self, what: impl std::fmt::Display) -> DataError {
        DataError::Unavailable(format!("location {}: {what}", self.location))
    }

    /// A permanent failure naming the location.
    pub fn failed(&self, what: impl std::fmt::Display) -> DataError {
        DataError::Io(std::io::Error::other(format!(
            "location {}: {what}",
            self.location
        )))
    }

    /// The error an unsuccessful answer to call `what` means (see
    /// [`classify`](super::classify)), with the start of its body as detail.
    /// Azure names its error code in `x-ms-error-code`; GCS puts it in the
    /// body, which the message keeps.
    pub async fn refused(&self, what: &str, resp: reqwest::Response) -> DataError {
        let status = resp.status().as_u16();
        let code = resp
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = error_text(resp).await;
        super::classify(&self.location, what, status, code.as_deref(), &text)
    }

    /// Sends the request `build` makes within one deadline
    /// (`request_timeout_ms`), retrying transient failures (transport
    /// errors, timeouts, [transient](super::is_transient) statuses) when
    /// `idempotent`. Answers with any other response, whatever its status.
    /// Unless `streamed`, the deadline also bounds reading the answer's body;
    /// a streamed body is bounded by the client's read timeout, chunk by
    /// chunk.
    pub async fn send<F>(
        &self,
        what: &str,
        idempotent: bool,
        streamed: bool,
        build: F,
    ) -> Result<reqwest::Response>
    where
        F: Fn() -> Result<reqwest::RequestBuilder>,
    {
        let deadline = self.retry.deadline();
        let build = &build;
        let attempt = move || async move {
            let mut rb = build()?;
            if !streamed {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                rb = rb.timeout(left.max(Duration::from_millis(1)));
            }
            match rb.send().await {
                Ok(r) if super::is_transient(r.status().as_u16()) => {
                    Err(self.unavailable(format!("{what}: HTTP {}", r.status().as_u16())))
                }
                Ok(r) => Ok(r),
                Err(e) => Err(self.unavailable(format!("{what}: {}", describe(e)))),
            }
        };
        if idempotent {
            self.retry.run_until(what, deadline, attempt).await
        } else {
            self.retry.once(what, attempt()).await
        }
    }
}

/// A transport error described without its URL (which may carry a SAS token).
pub(crate) fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Turns a response body into a [`BodyStream`], mapping transport errors
/// (including the read timeout) to [`BodyError::Io`] naming the location.
pub(crate) fn response_stream(location: &str, resp: reqwest::Response) -> BodyStream {
    let location = location.to_owned();
    Box::pin(resp.bytes_stream().map(move |r| {
        r.map_err(|e| BodyError::Io(format!("location {location}: {}", describe(e))))
    }))
}

/// The start of a short response body as text (error details), bounded.
pub(crate) async fn error_text(resp: reqwest::Response) -> String {
    let body = resp.bytes().await.unwrap_or_default();
    String::from_utf8_lossy(&body[..body.len().min(512)])
        .trim()
        .to_owned()
}

/// Reads from `body` until `buf` holds `size` bytes or the stream ends.
/// Returns `false` at end of stream.
pub(crate) async fn fill(
    body: &mut BodyStream,
    buf: &mut bytes::BytesMut,
    size: usize,
    carry: &mut Option<Bytes>,
) -> std::result::Result<bool, BodyError> {
    loop {
        let chunk = match carry.take() {
            Some(c) => c,
            None => match body.next().await {
                Some(c) => c?,
                None => return Ok(false),
            },
        };
        let room = size - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            *carry = Some(chunk.slice(room..));
        } else {
            buf.extend_from_slice(&chunk);
        }
        if buf.len() == size {
            return Ok(true);
        }
    }
}
