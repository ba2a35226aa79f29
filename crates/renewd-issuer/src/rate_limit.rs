//! The per-CA request rate limit: a token bucket in front of the CA's HTTP client, through
//! the ACME client's [`HttpClient`] seam. Every request to the CA — probes, orders, polls —
//! takes a token; when the bucket is empty the request waits its turn (first come, first
//! served), so a burst of renewals never exceeds `requests_per_second`.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use renewd_acme::{BoxFuture, HttpClient, TransportError};
use tokio::time::Instant;

/// Tokens refill at `rate` per second up to `capacity`. A request takes one token, going
/// into debt when none is left; the debt is the wait.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket: `per_second` tokens a second, bursts of up to `per_second`.
    pub(crate) fn new(per_second: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(per_second.max(1));
        TokenBucket {
            rate,
            capacity: rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes a token; returns how long the taker must wait before sending.
    pub(crate) fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// An [`HttpClient`] that waits for a token before each request.
pub(crate) struct RateLimitedHttp<C> {
    inner: C,
    bucket: Mutex<TokenBucket>,
}

impl<C> RateLimitedHttp<C> {
    pub(crate) fn new(inner: C, per_second: u32) -> RateLimitedHttp<C> {
        RateLimitedHttp {
            inner,
            bucket: Mutex::new(TokenBucket::new(per_second, Instant::now())),
        }
    }
}

impl<C> fmt::Debug for RateLimitedHttp<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedHttp").finish_non_exhaustive()
    }
}

impl<C: HttpClient> HttpClient for RateLimitedHttp<C> {
    fn request(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(async move {
            let wait = self
                .bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            self.inner.request(request).await
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn bursts_then_spaces_requests() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(4, t0);
        for _ in 0..4 {
            assert_eq!(b.take(t0), Duration::ZERO);
        }
        // Empty: the fifth waits a quarter second, the sixth half a second.
        assert_eq!(b.take(t0), Duration::from_millis(250));
        assert_eq!(b.take(t0), Duration::from_millis(500));
        // A second later the debt is paid and two tokens are back.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.take(t1), Duration::ZERO);
        assert_eq!(b.take(t1), Duration::ZERO);
        assert_eq!(b.take(t1), Duration::from_millis(250));
        // Never more than the capacity saved up.
        let later = t1 + Duration::from_secs(3600);
        for _ in 0..4 {
            assert_eq!(b.take(later), Duration::ZERO);
        }
        assert!(b.take(later) > Duration::ZERO);
    }

    struct Counting(Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn request(
            &self,
            _: http::Request<Bytes>,
        ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(http::Response::new(Bytes::new())) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_client_waits_for_tokens() {
        let sent = Arc::new(AtomicUsize::new(0));
        let limited = Arc::new(RateLimitedHttp::new(Counting(sent.clone()), 2));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let limited = limited.clone();
            tasks.push(tokio::spawn(async move {
                limited
                    .request(http::Request::new(Bytes::new()))
                    .await
                    .unwrap();
                Instant::now()
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap() - started);
        }
        done.sort();
        assert_eq!(sent.load(Ordering::SeqCst), 6);
        // Two at once, then one every half second.
        assert_eq!(done[1], Duration::ZERO);
        assert_eq!(done[2], Duration::from_millis(500));
        assert_eq!(done[5], Duration::from_millis(2000));
    }
}
