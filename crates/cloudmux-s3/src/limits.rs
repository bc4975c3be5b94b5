//! Resource limits of the front end: how many connections may be open, how
//! long a connection may sit idle or stall mid-request, how much memory
//! request bodies may hold, and how many requests one account may have in
//! flight.
//!
//! [`Limits`] is the configuration (`[limits]`). The rest is what
//! [`server`](crate::server) uses:
//! - [`Tracker`] registers every open connection. At `max_connections` it
//!   closes the connection that has been idle the longest to admit a new
//!   one; when every connection is busy, accepting waits for room.
//! - [`ConnState`] says whether a connection is idle or serving a request
//!   (from the call of the service until its response body is dropped, that
//!   is sent), since when, and whether the current request's body stalled.
//! - [`Watched`] wraps a connection's socket. While a request is in flight,
//!   a read or write that makes no progress for `body_timeout` fails with
//!   `TimedOut`; the request then answers 400 RequestTimeout. Between
//!   requests it notes when the next header section starts, so
//!   [`HEADER_TIMEOUT`] applies from its first byte and `idle_timeout` to
//!   the wait before it.
//! - [`Admission`] holds the in-flight body memory semaphore and one
//!   semaphore per account; [`Held`] keeps a request's permits until its
//!   response has been sent.
//!
//! Body memory is charged per request when it is dispatched: the declared
//! length, at most [`MAX_BODY_CHARGE`] (a body of unknown length is charged
//! that much). hyper reads a body only as the handler consumes it, into a
//! buffer of at most [`READ_BUFFER_BYTES`], so no request holds more body
//! bytes in the front end than its charge, and the sum of the charges bounds
//! them all. Memory a location keeps per write (a cloud location's upload
//! buffer) is that location's own bound, not counted here.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::body::ResBody;
use crate::error::{S3Error, S3Result};

/// The largest buffer hyper reads one connection into (its `max_buf_size`).
pub const READ_BUFFER_BYTES: usize = 256 * 1024;

/// The most body memory one request is charged: hyper's read buffer plus the
/// chunk it already handed to the handler.
pub const MAX_BODY_CHARGE: u64 = 2 * READ_BUFFER_BYTES as u64;

/// How long a client may take to send a request's header section, from its
/// first byte, and to finish a TLS handshake.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request waits for body memory before it is refused with 503
/// SlowDown.
pub const BODY_MEMORY_WAIT: Duration = Duration::from_secs(1);

/// The front end's resource limits (`[limits]`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; at the limit the longest-idle connection
    /// is closed to admit a new one.
    pub max_connections: usize,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long a request's body (or its response) may make no progress.
    pub body_timeout: Duration,
    /// Memory that the bodies of requests in flight may hold, in bytes.
    pub max_inflight_body_bytes: u64,
    /// Requests in flight per authenticated account.
    pub max_requests_per_account: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_inflight_body_bytes: 256 * 1024 * 1024,
            max_requests_per_account: 1024,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `head_since` when no header section is being received.
const NONE: u64 = u64::MAX;

/// The registry of open connections.
pub struct Tracker {
    epoch: Instant,
    max: usize,
    registry: Mutex<Registry>,
    room: Arc<Notify>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    /// Connections counted against the limit: open and not asked to close.
    open: usize,
    conns: HashMap<u64, Arc<ConnState>>,
}

impl Tracker {
    /// A registry admitting at most `max` connections at once.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            max: max.max(1),
            registry: Mutex::new(Registry::default()),
            room: Arc::new(Notify::new()),
        })
    }

    /// Admits a new connection. At the limit, the connection idle the
    /// longest is asked to close and no longer counts; when none is idle,
    /// this waits until one is or one ends.
    pub async fn admit(self: &Arc<Self>) -> Admitted {
        let mut logged = false;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if let Some(a) = self.try_admit() {
                return a;
            }
            if !logged {
                tracing::warn!(
                    max_connections = self.max,
                    "every connection is busy: new connections wait"
                );
                logged = true;
            }
            room.await;
        }
    }

    fn try_admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut reg = lock(&self.registry);
        if reg.open >= self.max {
            let victim = reg
                .conns
                .values()
                .filter(|c| c.idle() && !c.closing.load(Ordering::Acquire))
                .min_by_key(|c| c.idle_since.load(Ordering::Acquire))?;
            victim.closing.store(true, Ordering::Release);
            victim.close.notify_one();
            reg.open -= 1;
            tracing::debug!("connection limit reached: closing the longest-idle connection");
        }
        let id = reg.next;
        reg.next += 1;
        reg.open += 1;
        let state = Arc::new(ConnState {
            epoch: self.epoch,
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(micros_since(self.epoch)),
            head_since: AtomicU64::new(NONE),
            request: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            changed: Notify::new(),
            room: self.room.clone(),
        });
        reg.conns.insert(id, state.clone());
        Some(Admitted {
            tracker: self.clone(),
            id,
            state,
        })
    }
}

/// A connection's place in the [`Tracker`], given up when dropped.
pub struct Admitted {
    tracker: Arc<Tracker>,
    id: u64,
    state: Arc<ConnState>,
}

impl Admitted {
    /// The connection's state.
    pub fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut reg = lock(&self.tracker.registry);
        if let Some(c) = reg.conns.remove(&self.id) {
            if !c.closing.load(Ordering::Acquire) {
                reg.open -= 1;
            }
        }
        drop(reg);
        self.tracker.room.notify_waiters();
    }
}

fn micros_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// What one connection is doing, shared by its task, its socket wrapper and
/// the [`Tracker`].
pub struct ConnState {
    epoch: Instant,
    busy: AtomicUsize,
    idle_since: AtomicU64,
    head_since: AtomicU64,
    request: AtomicU64,
    timed_out: AtomicU64,
    closing: AtomicBool,
    close: Notify,
    changed: Notify,
    room: Arc<Notify>,
}

/// What to do when a connection's deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Idle too long: close it gracefully.
    Idle,
    /// A header section, or a close, is taking too long: drop it.
    Hard,
}

impl ConnState {
    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    fn instant(&self, us: u64) -> Instant {
        self.epoch + Duration::from_micros(us)
    }

    /// Marks a request as started; the connection is busy until the guard
    /// is dropped.
    pub fn begin(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let seq = self.request.fetch_add(1, Ordering::AcqRel) + 1;
        self.head_since.store(NONE, Ordering::Release);
        BusyGuard {
            state: self.clone(),
            seq,
        }
    }

    /// The request in flight, if any.
    fn current(&self) -> Option<u64> {
        (!self.idle()).then(|| self.request.load(Ordering::Acquire))
    }

    /// Notes bytes read: between requests, the first of them starts the
    /// next header section.
    fn on_read(&self) {
        if self.idle()
            && self.head_since.load(Ordering::Acquire) == NONE
            && self
                .head_since
                .compare_exchange(
                    NONE,
                    micros_since(self.epoch),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// Resolves when the [`Tracker`] asks this connection to close.
    pub async fn close_requested(&self) {
        self.close.notified().await;
    }

    /// Resolves when the connection goes idle or starts receiving a header
    /// section, so that its deadline is computed again.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The connection's next deadline and what it means; `None` while a
    /// request is in flight (its socket wrapper times it). `closing_since`
    /// is when the connection was asked to close.
    pub fn deadline(
        &self,
        idle_timeout: Duration,
        closing_since: Option<Instant>,
    ) -> Option<(Instant, Expiry)> {
        if !self.idle() {
            return None;
        }
        if let Some(t) = closing_since {
            return Some((t + HEADER_TIMEOUT, Expiry::Hard));
        }
        match self.head_since.load(Ordering::Acquire) {
            NONE => Some((
                self.instant(self.idle_since.load(Ordering::Acquire)) + idle_timeout,
                Expiry::Idle,
            )),
            head => Some((self.instant(head) + HEADER_TIMEOUT, Expiry::Hard)),
        }
    }
}

/// Marks a connection busy for one request; dropped once its response has
/// been sent (or abandoned).
pub struct BusyGuard {
    state: Arc<ConnState>,
    seq: u64,
}

impl BusyGuard {
    /// Whether this request's body stalled past the body timeout.
    pub fn timed_out(&self) -> bool {
        self.state.timed_out.load(Ordering::Acquire) == self.seq
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let s = &self.state;
        if s.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.idle_since.store(micros_since(s.epoch), Ordering::Release);
            s.head_since.store(NONE, Ordering::Release);
            s.changed.notify_one();
            s.room.notify_waiters();
        }
    }
}

/// A timer for one direction of a socket: armed when an operation of a
/// request first returns `Pending`, cleared by progress.
#[derive(Default)]
struct Stall {
    armed: Option<u64>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Stall {
    fn clear(&mut self) {
        self.armed = None;
    }

    /// Whether request `seq` has now waited `timeout` without progress.
    fn expired(&mut self, seq: u64, timeout: Duration, cx: &mut Context<'_>) -> bool {
        let at = tokio::time::Instant::now() + timeout;
        if self.armed != Some(seq) {
            self.armed = Some(seq);
            match &mut self.sleep {
                Some(s) => s.as_mut().reset(at),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        self.sleep
            .as_mut()
            .is_some_and(|s| s.as_mut().poll(cx).is_ready())
    }
}

/// A connection's socket, timed while a request is in flight (see the
/// module documentation).
pub struct Watched<S> {
    io: S,
    state: Arc<ConnState>,
    timeout: Duration,
    read: Stall,
    write: Stall,
}

impl<S> Watched<S> {
    /// Wraps a socket whose stalls longer than `timeout` fail the request.
    pub fn new(io: S, state: Arc<ConnState>, timeout: Duration) -> Self {
        Self {
            io,
            state,
            timeout,
            read: Stall::default(),
            write: Stall::default(),
        }
    }

    /// Turns a `Pending` write into `TimedOut` once the request in flight
    /// has waited too long.
    fn write_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.state.current() {
            Some(seq) if self.write.expired(seq, self.timeout, cx) => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client took nothing of the response within the body timeout",
                )))
            }
            Some(_) => Poll::Pending,
            None => {
                self.write.clear();
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut me.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                me.read.clear();
                if buf.filled().len() > before {
                    me.state.on_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match me.state.current() {
                Some(seq) if me.read.expired(seq, me.timeout, cx) => {
                    me.state.timed_out.store(seq, Ordering::Release);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request body sent nothing within the body timeout",
                    )))
                }
                Some(_) => Poll::Pending,
                None => {
                    me.read.clear();
                    Poll::Pending
                }
            },
            err => err,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        match Pin::new(&mut me.io).poll_write(cx, data) {
            Poll::Pending => me.write_pending(cx),
            done => {
                me.write.clear();
                done
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        match Pin::new(&mut me.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => me.write_pending(cx),
            done => {
                me.write.clear();
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        match Pin::new(&mut me.io).poll_flush(cx) {
            Poll::Pending => me.write_pending(cx),
            done => {
                me.write.clear();
                done
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The request-level limits: body memory and per-account concurrency.
pub struct Admission {
    body: Arc<Semaphore>,
    body_capacity: u64,
    per_account: usize,
    accounts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Admission {
    /// The semaphores for `limits`.
    pub fn new(limits: &Limits) -> Self {
        let capacity = limits
            .max_inflight_body_bytes
            .clamp(1, Semaphore::MAX_PERMITS as u64);
        Self {
            body: Arc::new(Semaphore::new(capacity as usize)),
            body_capacity: capacity,
            per_account: limits.max_requests_per_account.max(1),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// A permit for one more request of the account `id`, or 503 SlowDown
    /// when it already has its maximum in flight.
    pub fn account(&self, id: &str) -> S3Result<OwnedSemaphorePermit> {
        let sem = {
            let mut map = lock(&self.accounts);
            match map.get(id) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(Semaphore::new(self.per_account));
                    map.insert(id.to_owned(), s.clone());
                    s
                }
            }
        };
        sem.try_acquire_owned().map_err(|_| {
            tracing::debug!(account = id, "too many requests in flight for one account");
            S3Error::slow_down()
        })
    }

    /// Body memory for a request whose body is `declared` bytes long
    /// (`None`: of unknown length), waiting at most [`BODY_MEMORY_WAIT`];
    /// 503 SlowDown when it cannot be had. A request without a body takes
    /// nothing.
    pub async fn body(&self, declared: Option<u64>) -> S3Result<Option<OwnedSemaphorePermit>> {
        let charge = match declared {
            Some(0) => return Ok(None),
            Some(n) => n.min(MAX_BODY_CHARGE),
            None => MAX_BODY_CHARGE,
        }
        .min(self.body_capacity) as u32;
        let wait = self.body.clone().acquire_many_owned(charge);
        match tokio::time::timeout(BODY_MEMORY_WAIT, wait).await {
            Ok(Ok(p)) => Ok(Some(p)),
            _ => {
                tracing::debug!(charge, "request body memory exhausted");
                Err(S3Error::slow_down())
            }
        }
    }
}

/// The body length a request declares: its `Content-Length`, 0 without a
/// body, `None` for a length only the end of the body tells
/// (`Transfer-Encoding`).
pub fn declared_body(headers: &http::HeaderMap) -> Option<u64> {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return None;
    }
    match headers.get(http::header::CONTENT_LENGTH) {
        None => Some(0),
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse().ok()),
    }
}

/// What a request holds until its response has been sent.
#[derive(Default)]
pub struct Held {
    /// The connection's busy mark.
    pub busy: Option<BusyGuard>,
    /// The account's request permit.
    pub account: Option<OwnedSemaphorePermit>,
    /// The body memory permit.
    pub body: Option<OwnedSemaphorePermit>,
}

impl Held {
    /// Whether the request's body stalled past the body timeout.
    pub fn body_timed_out(&self) -> bool {
        self.busy.as_ref().is_some_and(BusyGuard::timed_out)
    }

    /// Ties what is held to the response body, which hyper drops once it
    /// has been sent.
    pub fn attach(self, resp: Response<ResBody>) -> Response<ResBody> {
        if self.busy.is_none() && self.account.is_none() && self.body.is_none() {
            return resp;
        }
        resp.map(|inner| HeldBody { inner, _held: self }.boxed_unsync())
    }
}

struct HeldBody {
    inner: ResBody,
    _held: Held,
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_longest_idle_connection_makes_room() {
        let t = Tracker::new(2);
        let a = t.admit().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let b = t.admit().await;
        let busy = b.state().begin();
        let c = t.admit().await;
        assert!(
            a.state().closing.load(Ordering::Acquire),
            "a was idle the longest"
        );
        assert!(!b.state().closing.load(Ordering::Acquire), "b is busy");
        let _busy_c = c.state().begin();
        let waiting = tokio::spawn({
            let t = t.clone();
            async move { t.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "every connection is busy");
        drop(busy);
        let d = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("b went idle")
            .expect("join");
        assert!(b.state().closing.load(Ordering::Acquire));
        drop((a, d));
    }

    #[tokio::test]
    async fn body_memory_is_charged_up_to_the_cap() {
        let adm = Admission::new(&Limits {
            max_inflight_body_bytes: MAX_BODY_CHARGE + 10,
            ..Limits::default()
        });
        assert!(adm.body(Some(0)).await.expect("no body").is_none());
        let big = adm.body(Some(u64::MAX)).await.expect("fits");
        let small = adm.body(Some(10)).await.expect("fits");
        let e = adm.body(None).await.expect_err("full");
        assert_eq!((e.status.as_u16(), e.code), (503, "SlowDown"));
        drop((big, small));
        assert!(adm.body(None).await.expect("freed").is_some());
    }

    #[test]
    fn account_permits_are_per_account() {
        let adm = Admission::new(&Limits {
            max_requests_per_account: 1,
            ..Limits::default()
        });
        let a = adm.account("a").expect("first");
        assert_eq!(adm.account("a").expect_err("second").code, "SlowDown");
        let _b = adm.account("b").expect("other account");
        drop(a);
        assert!(adm.account("a").is_ok());
    }

    #[test]
    fn declared_body_lengths() {
        let mut h = http::HeaderMap::new();
        assert_eq!(declared_body(&h), Some(0));
        h.insert("content-length", http::HeaderValue::from_static("42"));
        assert_eq!(declared_body(&h), Some(42));
        h.insert(
            "transfer-encoding",
            http::HeaderValue::from_static("chunked"),
        );
        assert_eq!(declared_body(&h), None);
    }
}
