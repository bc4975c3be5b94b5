//! Resource limits (`[limits]`), one test each, with small limits over real
//! sockets: idle connections make room for a new client at
//! `max_connections`, keep-alive connections close after
//! `idle_timeout_secs`, a stalled body is answered 400 RequestTimeout after
//! `body_timeout_secs` while a slow but steady one is not, and requests over
//! `max_inflight_body_bytes` or `max_requests_per_account` get 503 SlowDown.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::config::Credentials;
use cloudmux_e2e::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const BUCKET: &str = "limits";

fn server(limits: &str) -> TestServer {
    TestServer::start_with(ServerOptions {
        extra_config: format!("[limits]\n{limits}\n"),
        ..Default::default()
    })
}

/// The head of a SigV4-signed request with an `UNSIGNED-PAYLOAD` body of
/// `length` bytes, as bytes to write to a socket.
fn signed_head(addr: SocketAddr, method: &str, path: &str, length: usize, who: Account) -> Vec<u8> {
    let host = addr.to_string();
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &host)
        .header("content-length", length.to_string())
        .body(())
        .expect("request");
    let identity = Credentials::new(who.access_key, who.secret_key, None, None, "limits").into();
    let mut settings = aws_sigv4::http_request::SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        method,
        format!("http://{host}{path}"),
        req.headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().expect("ascii header"))),
        aws_sigv4::http_request::SignableBody::UnsignedPayload,
    )
    .expect("signable");
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .expect("sign")
        .into_parts();
    instructions.apply_to_request_http1x(&mut req);
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in req.headers() {
        head.push_str(&format!("{k}: {}\r\n", v.to_str().expect("ascii header")));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Opens a connection and sends the head of a PUT of `length` bytes with
/// `Expect: 100-continue`, waits for `100 Continue` (the request has been
/// admitted and its handler reads the body), then sends the first `sent`
/// bytes; the rest is up to the caller.
async fn start_put(
    addr: SocketAddr,
    key: &str,
    length: usize,
    sent: usize,
    who: Account,
) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let path = format!("/{BUCKET}/{key}");
    let mut head = signed_head(addr, "PUT", &path, length, who);
    head.truncate(head.len() - 2);
    head.extend_from_slice(b"expect: 100-continue\r\n\r\n");
    c.write_all(&head).await.expect("send head");
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b))
            .await
            .expect("100 Continue in time")
            .expect("read");
        assert_eq!(n, 1, "closed before 100 Continue");
        got.push(b[0]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 100"), "{text}");
    c.write_all(&vec![b'x'; sent]).await.expect("send body");
    c
}

/// Reads one response (status and body) from `c`, failing after `within`.
async fn read_response(c: &mut TcpStream, within: Duration) -> (u16, String) {
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text[..end]
                    .to_ascii_lowercase()
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().expect("Content-Length"));
                if got.len() >= end + 4 + len {
                    let status = text[9..12].parse().expect("status code");
                    return (status, text[end + 4..].to_owned());
                }
            }
            let n = c.read(&mut buf).await.expect("read response");
            assert!(n > 0, "connection closed before a response: {text}");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("no response in time")
}

/// Whether the server closed `c` within `within` (EOF or reset).
async fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, c.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Retries a request until it succeeds or `within` has passed.
async fn eventually_ok<F, Fut>(within: Duration, mut send: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = RawResponse>,
{
    let start = Instant::now();
    loop {
        let r = send().await;
        if r.status == 200 {
            return;
        }
        assert!(
            start.elapsed() < within,
            "still {} after {within:?}: {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_make_room_for_a_new_client() {
    let s = server("max_connections = 50");
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(TcpStream::connect(s.addr()).await.expect("connect"));
    }
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        s.raw("GET", "/_/health/live").anonymous().send(),
    )
    .await
    .expect("a new client is served while 100 idle connections are open");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut closed = 0;
    for c in &mut idle {
        if closed_within(c, Duration::from_millis(50)).await {
            closed += 1;
        }
    }
    assert!(
        (51..=100).contains(&closed),
        "{closed} of 100 idle connections were closed to stay at 50"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connections_close_after_the_idle_timeout() {
    let s = server("idle_timeout_secs = 1");
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    for _ in 0..3 {
        c.write_all(b"GET /_/health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("send");
        let (status, _) = read_response(&mut c, Duration::from_secs(5)).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let start = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(5)).await);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "closed after {waited:?} more, 1.5 s after its last request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_request_timeout_and_a_slow_one_does_not() {
    let s = server("body_timeout_secs = 2");
    create_bucket(&s.client(ALICE), BUCKET).await;

    let mut slow = start_put(s.addr(), "slow", 5, 1, ALICE).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        slow.write_all(b"x").await.expect("send a byte");
    }
    let (status, body) = read_response(&mut slow, Duration::from_secs(5)).await;
    assert_eq!(
        status, 200,
        "a body sending a byte a second took 5 s: {body}"
    );

    let start = Instant::now();
    let mut stalled = start_put(s.addr(), "stalled", 100, 10, ALICE).await;
    let (status, body) = read_response(&mut stalled, Duration::from_secs(10)).await;
    let waited = start.elapsed();
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_code(&body).as_deref(),
        Some("RequestTimeout"),
        "{body}"
    );
    assert!(
        body.contains("not read from or written to within the timeout period"),
        "{body}"
    );
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
    assert!(closed_within(&mut stalled, Duration::from_secs(2)).await);
    let r = s.raw("GET", &format!("/{BUCKET}/stalled")).send().await;
    r.assert_error(404, "NoSuchKey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_memory_bound_get_slow_down() {
    let s = server("max_inflight_body_bytes = 1048576");
    create_bucket(&s.client(ALICE), BUCKET).await;
    let half = 512 * 1024;
    let mut holders = Vec::new();
    for i in 0..2 {
        holders.push(start_put(s.addr(), &format!("held-{i}"), half, 100, ALICE).await);
    }

    let start = Instant::now();
    let put = || {
        s.raw("PUT", &format!("/{BUCKET}/small"))
            .body(b"small".to_vec())
            .send()
    };
    let r = put().await;
    r.assert_error(503, "SlowDown");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "refused after waiting {:?}, not about 1 s",
        start.elapsed()
    );
    let r = s.raw("GET", &format!("/{BUCKET}?list-type=2")).send().await;
    assert_eq!(
        r.status,
        200,
        "a request without a body is not charged: {}",
        r.text()
    );

    holders.pop();
    eventually_ok(Duration::from_secs(5), put).await;
    let mut last = holders.pop().expect("one left");
    last.write_all(&vec![b'x'; half - 100])
        .await
        .expect("finish body");
    let (status, body) = read_response(&mut last, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_over_its_request_cap_gets_slow_down() {
    let s = server("max_requests_per_account = 2");
    create_bucket(&s.client(ALICE), BUCKET).await;
    let mut holders = Vec::new();
    for i in 0..2 {
        holders.push(start_put(s.addr(), &format!("held-{i}"), 10, 1, ALICE).await);
    }

    let list = || s.raw("GET", &format!("/{BUCKET}?list-type=2")).send();
    let start = Instant::now();
    list().await.assert_error(503, "SlowDown");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "refused at once"
    );
    let r = s.raw("GET", "/").signed_by(BOB).send().await;
    assert_eq!(
        r.status,
        200,
        "another account is not limited: {}",
        r.text()
    );

    let mut done = holders.pop().expect("two");
    done.write_all(&[b'x'; 9]).await.expect("finish body");
    let (status, body) = read_response(&mut done, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "{body}");
    eventually_ok(Duration::from_secs(5), list).await;
}
