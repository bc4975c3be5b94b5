//! Graceful shutdown: SIGTERM the server while 20 uploads of 16 MiB are in
//! flight, then check that the listener and idle keep-alive connections
//! closed at once, that the process exited by itself after
//! `[server] shutdown_timeout_secs`, and, after a restart on the same data,
//! that every upload either completed and reads back whole or failed cleanly
//! and succeeds when retried, with no object ever half-written.

use std::future::Future as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use cloudmux_e2e::*;
use hyper::body::{Body, Frame, SizeHint};

const BUCKET: &str = "shutdown";
const SIZE: usize = 16 * 1024 * 1024;
const PART: usize = SIZE / 2;
const CHUNK: usize = 256 * 1024;
/// The configured `shutdown_timeout_secs`.
/// Generous, so that the parts in flight finish even on a loaded 2-core
/// machine, where 20 concurrent uploads make the syncs slow.
const DEADLINE: Duration = Duration::from_secs(20);
/// How late after the deadline the process may exit.
const MARGIN: Duration = Duration::from_secs(5);

/// How an upload is sent, and so how it must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One PutObject, streamed over about 3 s: it is in flight at SIGTERM and
    /// must complete within the deadline.
    Put,
    /// A multipart upload of two 8 MiB parts, each streamed over about 1.6 s:
    /// the part in flight at SIGTERM may finish, the next request finds the
    /// listener closed.
    Multipart,
    /// One PutObject streamed over about a minute: its connection is still
    /// busy at the deadline and is cut.
    Slow,
}

/// The uploads: 12 PutObject, 6 multipart, 2 too slow for the deadline.
const KINDS: [Kind; 20] = {
    let mut k = [Kind::Put; 20];
    let mut i = 12;
    while i < 18 {
        k[i] = Kind::Multipart;
        i += 1;
    }
    k[18] = Kind::Slow;
    k[19] = Kind::Slow;
    k
};

/// A request body that hands out its bytes `CHUNK` at a time with a pause
/// between chunks, so that an upload is reliably in flight when the signal
/// comes. Its first poll counts it in `started`.
struct Paced {
    data: Bytes,
    pos: usize,
    pause: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    started: Option<Arc<AtomicUsize>>,
}

impl Paced {
    fn stream(data: Bytes, pause: Duration, started: Option<Arc<AtomicUsize>>) -> ByteStream {
        ByteStream::from_body_1_x(Paced {
            data,
            pos: 0,
            pause,
            sleep: None,
            started,
        })
    }
}

impl Body for Paced {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let me = self.get_mut();
        if let Some(started) = me.started.take() {
            started.fetch_add(1, Ordering::SeqCst);
        }
        if me.pos == me.data.len() {
            return Poll::Ready(None);
        }
        if let Some(sleep) = me.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let end = (me.pos + CHUNK).min(me.data.len());
        let frame = me.data.slice(me.pos..end);
        me.pos = end;
        me.sleep = Some(Box::pin(tokio::time::sleep(me.pause)));
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos == self.data.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.data.len() - self.pos) as u64)
    }
}

fn key(i: usize) -> String {
    format!("upload-{i:02}")
}

/// Sends upload `i` as its kind says; `Err` describes the first failed call.
async fn upload(
    client: &Client,
    i: usize,
    body: Bytes,
    started: Arc<AtomicUsize>,
) -> Result<(), String> {
    let key = key(i);
    let fail = |what: &str, e: &dyn std::fmt::Debug| format!("{key}: {what}: {e:?}");
    match KINDS[i] {
        Kind::Put | Kind::Slow => {
            let pause = if KINDS[i] == Kind::Put {
                Duration::from_millis(50)
            } else {
                Duration::from_secs(1)
            };
            let out = client
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(Paced::stream(body.clone(), pause, Some(started)))
                .send()
                .await
                .map_err(|e| fail("PutObject", &e))?;
            assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()), "{key}: ETag");
            Ok(())
        }
        Kind::Multipart => {
            let created = client
                .create_multipart_upload()
                .bucket(BUCKET)
                .key(&key)
                .send()
                .await
                .map_err(|e| fail("CreateMultipartUpload", &e))?;
            let id = created.upload_id().expect("UploadId").to_owned();
            let mut started = Some(started);
            let mut parts = Vec::new();
            for (n, range) in [(1, 0..PART), (2, PART..SIZE)] {
                let part = body.slice(range);
                let out = client
                    .upload_part()
                    .bucket(BUCKET)
                    .key(&key)
                    .upload_id(&id)
                    .part_number(n)
                    .body(Paced::stream(
                        part,
                        Duration::from_millis(50),
                        started.take(),
                    ))
                    .send()
                    .await
                    .map_err(|e| fail(&format!("UploadPart {n}"), &e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .build(),
                );
            }
            client
                .complete_multipart_upload()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| fail("CompleteMultipartUpload", &e))?;
            Ok(())
        }
    }
}

/// Opens a connection, reads one whole response on it (a liveness probe)
/// and returns it idle, kept alive.
fn idle_connection(s: &TestServer) -> TcpStream {
    let mut c = TcpStream::connect(s.addr()).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    c.write_all(b"GET /_/health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send probe");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf).expect("read probe response");
        assert!(n > 0, "the connection closed before answering");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("Content-Length"));
            if got.len() >= end + 4 + len {
                assert!(text.starts_with("http/1.1 200"), "probe: {text}");
                return c;
            }
        }
    }
}

/// Polls until a TCP connection to the server is refused; returns how long
/// that took, or `None` if it was still accepted after `within`.
fn refused_within(s: &TestServer, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        match TcpStream::connect_timeout(&s.addr(), Duration::from_millis(500)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Some(start.elapsed())
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_uploads_in_flight_and_loses_nothing() {
    let mut s = TestServer::start_with(ServerOptions {
        extra_config: String::new(),
        env: vec![
            (
                "CLOUDMUX__SERVER__SHUTDOWN_TIMEOUT_SECS".to_owned(),
                DEADLINE.as_secs().to_string(),
            ),
            ("CLOUDMUX_LOG_FORMAT".to_owned(), "json".to_owned()),
        ],
        ..Default::default()
    });
    let client = s.client(ALICE);
    create_bucket(&client, BUCKET).await;
    let bodies: Vec<Bytes> = (0..KINDS.len())
        .map(|_| Bytes::from(random_bytes(SIZE)))
        .collect();

    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.iter().enumerate() {
        let client = client.clone();
        let body = body.clone();
        let started = started.clone();
        tasks.spawn(async move { (i, upload(&client, i, body, started).await) });
    }
    let wait = Instant::now();
    while started.load(Ordering::SeqCst) < KINDS.len() {
        assert!(
            wait.elapsed() < Duration::from_secs(20),
            "only {} of {} uploads started sending",
            started.load(Ordering::SeqCst),
            KINDS.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut idle = tokio::task::block_in_place(|| idle_connection(&s));

    let sigterm = Instant::now();
    s.terminate();
    let closed = tokio::task::block_in_place(|| idle.read(&mut [0u8; 64]));
    assert!(
        matches!(closed, Ok(0)) && sigterm.elapsed() < Duration::from_secs(2),
        "an idle keep-alive connection was not closed at SIGTERM: {closed:?} after {:?}",
        sigterm.elapsed()
    );
    let refused = tokio::task::block_in_place(|| refused_within(&s, Duration::from_secs(3)));
    assert!(
        refused.is_some(),
        "a new connection was still accepted 3 s after SIGTERM"
    );
    assert!(
        tokio::task::block_in_place(|| s.wait_exit(Duration::ZERO)).is_none(),
        "the server exited at once instead of draining its uploads"
    );
    let late = s.client(ALICE).head_bucket().bucket(BUCKET).send().await;
    assert!(late.is_err(), "a request after SIGTERM succeeded");
    let status = tokio::task::block_in_place(|| s.wait_exit(DEADLINE + MARGIN));
    let exited_after = sigterm.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the server still runs {:?} after SIGTERM; log:\n{}",
            DEADLINE + MARGIN,
            s.log()
        )
    });
    assert!(status.success(), "exit status {status}; log:\n{}", s.log());
    assert!(
        exited_after >= DEADLINE - Duration::from_millis(500),
        "exited {exited_after:?} after SIGTERM, before the deadline, with uploads in flight"
    );
    let slow = KINDS.iter().filter(|k| **k == Kind::Slow).count();
    assert!(
        s.log().contains(&format!("\"cut\":{slow}")),
        "the log does not report {slow} connections cut:\n{}",
        s.log()
    );

    let mut outcomes = vec![None; KINDS.len()];
    while let Some(r) = tasks.join_next().await {
        let (i, outcome) = r.expect("upload task panicked");
        outcomes[i] = Some(outcome);
    }
    let outcomes: Vec<Result<(), String>> = outcomes.into_iter().map(Option::unwrap).collect();
    for (i, o) in outcomes.iter().enumerate() {
        match KINDS[i] {
            Kind::Put => assert!(o.is_ok(), "in flight at SIGTERM, yet failed: {o:?}"),
            Kind::Slow => assert!(o.is_err(), "{}: finished after the deadline", key(i)),
            Kind::Multipart => assert!(
                o.as_ref()
                    .err()
                    .is_none_or(|e| !e.contains("Create") && !e.contains("UploadPart 1")),
                "the part in flight at SIGTERM failed: {o:?}"
            ),
        }
    }
    eprintln!(
        "shutdown: refused after {:?}, exited after {exited_after:?}, {} of {} uploads completed",
        refused.unwrap_or_default(),
        outcomes.iter().filter(|o| o.is_ok()).count(),
        outcomes.len()
    );

    s.spawn();
    let client = s.client(ALICE);
    for k in list_keys(&client, BUCKET).await {
        let i = (0..KINDS.len())
            .find(|&i| key(i) == k)
            .unwrap_or_else(|| panic!("listed key {k:?} was never uploaded"));
        let got = get_object(&client, BUCKET, &k).await;
        assert!(
            got.as_slice() == bodies[i].as_ref(),
            "{k}: reads back {} bytes that are not the {SIZE} bytes sent",
            got.len()
        );
    }
    for (i, outcome) in outcomes.iter().enumerate() {
        let k = key(i);
        match outcome {
            Ok(()) => {
                let got = get_object(&client, BUCKET, &k).await;
                assert!(
                    got.as_slice() == bodies[i].as_ref(),
                    "{k}: acknowledged, but reads back {} different bytes",
                    got.len()
                );
            }
            Err(e) => {
                eprintln!("shutdown: retrying {e}");
                put_object(&client, BUCKET, &k, &bodies[i]).await;
                let got = get_object(&client, BUCKET, &k).await;
                assert!(got.as_slice() == bodies[i].as_ref(), "{k}: retried");
            }
        }
    }
    let mut on_disk = 0;
    for path in walk(&s.data_dir().join("objects").join(BUCKET)) {
        if path.components().any(|c| c.as_os_str() == ".cloudmux") || path.is_dir() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let i = (0..KINDS.len())
            .find(|&i| key(i) == name)
            .unwrap_or_else(|| panic!("stray file {}", path.display()));
        let data = std::fs::read(&path).expect("read object file");
        assert!(data == bodies[i], "{}: not the bytes sent", path.display());
        on_disk += 1;
    }
    assert_eq!(on_disk, KINDS.len(), "object files on disk");
}
