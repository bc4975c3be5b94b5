//! The one retry loop of the cloud locations: bounded retries of transient
//! failures with full-jitter exponential backoff, all within one deadline
//! per call (see the [cloud module documentation](super)).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::DataError;

/// The ceiling of the first backoff wait; it doubles with every retry.
const BASE: Duration = Duration::from_millis(100);
/// The highest ceiling of a backoff wait.
const CAP: Duration = Duration::from_secs(5);

/// Bounded retries with exponential backoff and full jitter, and a deadline
/// (`request_timeout_ms`) for the whole call, retries included.
#[derive(Debug, Clone)]
pub struct Retry {
    location: String,
    max_retries: u32,
    timeout: Duration,
}

impl Retry {
    /// The policy of location `location`: at most `max_retries` retries, and
    /// `timeout` for each call, retries included.
    pub fn new(location: &str, max_retries: u32, timeout: Duration) -> Self {
        Self {
            location: location.to_owned(),
            max_retries,
            timeout,
        }
    }

    /// The deadline of a call starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Runs an idempotent call, retrying it after transient failures
    /// ([`DataError::Unavailable`]) until it succeeds, fails otherwise, has
    /// been retried `max_retries` times, or the deadline passes. `what` names
    /// the call in errors.
    pub async fn run<T, F, Fut>(&self, what: &str, call: F) -> crate::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = crate::Result<T>>,
    {
        self.run_until(what, self.deadline(), call).await
    }

    /// [`run`](Self::run) with the deadline given: for callers that also
    /// bound what they do with the answer by it.
    pub async fn run_until<T, F, Fut>(
        &self,
        what: &str,
        deadline: Instant,
        mut call: F,
    ) -> crate::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = crate::Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            let result = match tokio::time::timeout_at(deadline, call()).await {
                Ok(r) => r,
                Err(_) => return Err(self.timed_out(what)),
            };
            match result {
                Err(DataError::Unavailable(msg)) if attempt < self.max_retries => {
                    let wait = backoff(attempt);
                    if Instant::now() + wait >= deadline {
                        return Err(DataError::Unavailable(msg));
                    }
                    tracing::debug!(location = %self.location, what, attempt, error = %msg, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Runs a call that is not idempotent once, bounded by the deadline.
    pub async fn once<T, Fut>(&self, what: &str, call: Fut) -> crate::Result<T>
    where
        Fut: Future<Output = crate::Result<T>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(what)),
        }
    }

    fn timed_out(&self, what: &str) -> DataError {
        DataError::Unavailable(format!(
            "location {}: {what}: no answer within {} ms",
            self.location,
            self.timeout.as_millis()
        ))
    }
}

/// The wait before retry number `attempt + 1`: uniform in
/// `[0, min(5 s, 100 ms * 2^attempt)]` (full jitter).
pub fn backoff(attempt: u32) -> Duration {
    let nanos = ceiling(attempt).as_nanos() as u64;
    Duration::from_nanos(rand::random_range(0..=nanos))
}

/// The largest wait before retry number `attempt + 1`.
fn ceiling(attempt: u32) -> Duration {
    BASE.saturating_mul(1u32 << attempt.min(20)).min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_is_full_jitter_below_a_bounded_ceiling() {
        assert_eq!(ceiling(0), Duration::from_millis(100));
        assert_eq!(ceiling(1), Duration::from_millis(200));
        assert_eq!(ceiling(5), Duration::from_millis(3_200));
        assert_eq!(ceiling(6), CAP);
        assert_eq!(ceiling(u32::MAX), CAP);
        for attempt in 0..40 {
            let waits: Vec<Duration> = (0..200).map(|_| backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= ceiling(attempt)), "{attempt}");
            // Full jitter draws from the whole range, not only near the
            // ceiling: 200 draws all in the top half happen with
            // probability 2^-200.
            assert!(waits.iter().any(|w| *w < ceiling(attempt) / 2), "{attempt}");
        }
    }

    #[tokio::test]
    async fn retries_transient_failures_only_and_stops() {
        let retry = Retry::new("l", 2, Duration::from_secs(60));
        let calls = AtomicU32::new(0);
        let r: crate::Result<()> = retry
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(DataError::Unavailable("down".into()))
            })
            .await;
        assert!(matches!(r, Err(DataError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let permanent = [
            DataError::NotFound("gone".into()),
            DataError::Stale("replaced".into()),
            DataError::Misconfigured {
                location: "l".into(),
                message: "HTTP 403".into(),
            },
            DataError::Io(std::io::Error::other("bad request")),
        ];
        for e in permanent {
            let shown = e.to_string();
            calls.store(0, Ordering::SeqCst);
            let mut e = Some(e);
            let r: crate::Result<()> = retry
                .run("op", || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let e = e.take().expect("called once");
                    async move { Err(e) }
                })
                .await;
            assert_eq!(r.unwrap_err().to_string(), shown);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{shown} was retried");
        }

        calls.store(0, Ordering::SeqCst);
        let r = retry
            .run("op", || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(DataError::Unavailable("blip".into()))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[tokio::test]
    async fn the_deadline_bounds_a_hung_call() {
        let retry = Retry::new("l", 3, Duration::from_millis(300));
        let start = Instant::now();
        let r: crate::Result<()> = retry.run("op", std::future::pending).await;
        assert!(matches!(r, Err(DataError::Unavailable(m)) if m.contains("location l")));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        let r: crate::Result<()> = retry.once("op", std::future::pending()).await;
        assert!(matches!(r, Err(DataError::Unavailable(m)) if m.contains("300 ms")));
    }

    #[tokio::test]
    async fn the_deadline_bounds_retries_and_waits() {
        let retry = Retry::new("l", 1_000, Duration::from_millis(500));
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let r: crate::Result<()> = retry
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(DataError::Unavailable("down".into()))
            })
            .await;
        let took = start.elapsed();
        assert!(matches!(r, Err(DataError::Unavailable(_))));
        assert!(took < Duration::from_millis(600), "{took:?}");
        let n = calls.load(Ordering::SeqCst);
        assert!((2..1_000).contains(&n), "{n} attempts");
    }
}
