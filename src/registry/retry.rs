//! Retries for registry operations: registries throttle (429), time out (408), fail behind
//! load balancers (502, 503) and drop connections. [`Policy::run`] repeats one operation with
//! exponential backoff and full jitter, bounded both in attempts and in total time, logs each
//! retry with its reason, and gives up with the last error. Which failures are worth another
//! attempt is decided by the caller (the remote target knows the registry's error shapes).
//!
//! Written by hand rather than with `backon`/`backoff`: the loop is short, and it must honour a
//! `Retry-After` per failure while keeping the total-time bound, which those crates make awkward.
//!
//! Requests to one registry also share a [`Backoff`]: a bound on requests in flight, and a
//! pause that a 429 or 503 answer to any of them imposes on all of them (the registry's
//! `Retry-After`, else the initial delay), so parallel requests slow down together instead of
//! each running into the throttle on its own.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;
use tracing::warn;

use crate::context::Env;
use crate::error::Error;
use crate::input;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles each time.
    pub initial_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
    /// No new attempt starts after this much time since the first.
    pub max_elapsed: Duration,
    /// How long one read may wait for the registry before the attempt fails (a stall).
    pub read_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 6,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(120),
            read_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// One failed attempt: the error, and whether (and how soon) to try again.
#[derive(Debug)]
pub struct Failure {
    /// The error, already in the core's terms.
    pub error: Error,
    /// `Some` when another attempt may succeed.
    pub retry: Option<Retry>,
}

/// Why another attempt is worth it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// For the log: "HTTP 503", "connection reset".
    pub reason: String,
    /// The registry's `Retry-After`, if it gave one.
    pub after: Option<Duration>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, retry: None }
    }
}

/// The longest bound a `WASM_OCI_*` variable may set, a day: far beyond any useful wait, and
/// small enough that no sum or doubling of durations overflows (1e300 would panic).
const MAX_SECONDS: f64 = 86_400.0;

impl Policy {
    /// The default policy, with bounds overridden by `WASM_OCI_RETRY_MAX_ATTEMPTS`,
    /// `WASM_OCI_RETRY_MAX_ELAPSED`, `WASM_OCI_RETRY_INITIAL_DELAY` and `WASM_OCI_HTTP_TIMEOUT`
    /// (seconds, fractions allowed), for tests and impatient pipelines.
    pub fn from_env(env: &Env) -> Result<Self, Error> {
        let mut policy = Policy::default();
        let seconds = |setting: input::Input| -> Result<Option<Duration>, Error> {
            match env
                .get(setting.name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
            {
                None => Ok(None),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..=MAX_SECONDS).contains(s))
                    .map(|s| Some(Duration::from_secs_f64(s)))
                    .ok_or_else(|| {
                        Error::input(
                            setting,
                            format!("`{v}` is not a number of seconds from 0 to {MAX_SECONDS}"),
                        )
                    }),
            }
        };
        if let Some(d) = seconds(input::RETRY_MAX_ELAPSED)? {
            policy.max_elapsed = d;
        }
        if let Some(d) = seconds(input::RETRY_INITIAL_DELAY)? {
            policy.initial_delay = d;
            policy.max_delay = policy.max_delay.max(d);
        }
        if let Some(d) = seconds(input::HTTP_TIMEOUT)? {
            policy.read_timeout = d;
            policy.connect_timeout = policy.connect_timeout.min(d);
        }
        if let Some(v) = env
            .get(input::RETRY_MAX_ATTEMPTS.name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            policy.max_attempts = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Error::input(
                    input::RETRY_MAX_ATTEMPTS,
                    format!("`{v}` is not a whole number of at least 1"),
                )
            })?;
        }
        Ok(policy)
    }

    /// The wait before attempt `attempt + 1` (1-based `attempt`): full jitter over an
    /// exponentially growing ceiling, or the registry's `Retry-After` when longer.
    fn delay(&self, attempt: u32, after: Option<Duration>) -> Duration {
        let ceiling = self
            .initial_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(rand::rng().random_range(0.0..=1.0));
        after.map_or(jittered, |a| a.max(jittered))
    }

    /// Runs `op` until it succeeds, fails for good, or the bounds run out. `what` names the
    /// operation in the log ("the upload of blob sha256:…").
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempts = self.attempts(what);
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(failure) => attempts.after(failure).await?,
            }
        }
    }

    /// The attempts of one operation, for a caller that keeps state between them (a download
    /// started again into the same file): [`Policy::run`]'s loop, written out by the caller.
    pub fn attempts<'a>(&'a self, what: &'a str) -> Attempts<'a> {
        Attempts {
            policy: self,
            what,
            start: Instant::now(),
            attempt: 1,
        }
    }
}

/// The attempts of one operation so far ([`Policy::attempts`]).
#[derive(Debug)]
pub struct Attempts<'a> {
    policy: &'a Policy,
    what: &'a str,
    start: Instant,
    attempt: u32,
}

impl Attempts<'_> {
    /// After a failed attempt: waits out the backoff and returns when another attempt may
    /// start, or gives up with the error (the failure's own, or "gave up after N attempts").
    pub async fn after(&mut self, failure: Failure) -> Result<(), Error> {
        let Some(retry) = failure.retry else {
            return Err(failure.error);
        };
        let policy = self.policy;
        let attempt = self.attempt;
        let wait = policy.delay(attempt, retry.after);
        let elapsed = self.start.elapsed();
        // A registry's `Retry-After` may be any number of seconds: saturate, not overflow.
        if attempt >= policy.max_attempts || elapsed.saturating_add(wait) > policy.max_elapsed {
            return Err(if attempt == 1 {
                failure.error
            } else {
                Error::GaveUp {
                    attempts: attempt,
                    seconds: elapsed.as_secs(),
                    last: Box::new(failure.error),
                }
            });
        }
        warn!(
            "{} failed ({}); retrying in {:.1}s (attempt {} of at most {})",
            self.what,
            retry.reason,
            wait.as_secs_f64(),
            attempt + 1,
            policy.max_attempts
        );
        tokio::time::sleep(wait).await;
        self.attempt += 1;
        Ok(())
    }
}

/// The most requests one registry has in flight at once.
pub const MAX_IN_FLIGHT: usize = 8;

/// What the requests to one registry share: a bound on how many are in flight, and the time
/// before which none starts because the registry asked for a pause.
#[derive(Debug)]
pub struct Backoff {
    permits: tokio::sync::Semaphore,
    resume_at: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// The pause a 429 or 503 without `Retry-After` imposes.
    pause: Duration,
    /// The longest pause honoured: no operation waits beyond its own time bound anyway.
    longest: Duration,
}

/// Leave to send one request: held until its answer arrives.
#[derive(Debug)]
pub struct Admitted<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Backoff {
    /// The shared state for one registry under `policy`, at most `in_flight` requests at once.
    pub fn new(policy: &Policy, in_flight: usize) -> Self {
        Backoff {
            permits: tokio::sync::Semaphore::new(in_flight.max(1)),
            resume_at: std::sync::Mutex::new(None),
            pause: policy.initial_delay,
            longest: policy.max_elapsed,
        }
    }

    /// Waits for a free place among the requests in flight, then for any pause the registry
    /// asked for to end.
    pub async fn admit(&self) -> Admitted<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // A pause may grow while it is waited out: read it again after each wait.
        loop {
            let until = *self.resume_at.lock().expect("backoff");
            match until {
                Some(until) if until > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(until).await;
                }
                _ => break,
            }
        }
        Admitted { _permit: permit }
    }

    /// A 429 or 503 arrived: no request starts for `after` (the registry's `Retry-After`), or
    /// the initial delay when it named none. Called before the answering request's place is
    /// given up, so the next request admitted sees the pause.
    pub fn slow_down(&self, status: u16, after: Option<Duration>) {
        if !matches!(status, 429 | 503) {
            return;
        }
        let pause = after.unwrap_or(self.pause).min(self.longest);
        let until = tokio::time::Instant::now() + pause;
        let mut resume_at = self.resume_at.lock().expect("backoff");
        if resume_at.is_none_or(|r| r < until) {
            *resume_at = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_throttled_answer_pauses_every_request_admitted_after_it() {
        let backoff = Backoff::new(&quick(), 2);
        let first = backoff.admit().await;
        backoff.slow_down(429, Some(Duration::from_secs(3)));
        drop(first);
        let start = tokio::time::Instant::now();
        let _second = backoff.admit().await;
        assert!(start.elapsed() >= Duration::from_secs(3));
        // Other answers impose nothing.
        backoff.slow_down(500, Some(Duration::from_secs(60)));
        backoff.slow_down(404, None);
        let start = tokio::time::Instant::now();
        let _third = backoff.admit().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_503_without_retry_after_pauses_for_the_initial_delay_and_no_more_than_the_bound() {
        let policy = quick();
        let backoff = Backoff::new(&policy, 1);
        backoff.slow_down(503, None);
        let start = tokio::time::Instant::now();
        drop(backoff.admit().await);
        assert_eq!(start.elapsed(), policy.initial_delay);
        backoff.slow_down(429, Some(Duration::from_secs(u64::MAX / 4)));
        let start = tokio::time::Instant::now();
        drop(backoff.admit().await);
        assert_eq!(start.elapsed(), policy.max_elapsed);
    }

    #[tokio::test]
    async fn no_more_requests_are_admitted_than_the_bound() {
        let backoff = Backoff::new(&quick(), 2);
        let (a, b) = (backoff.admit().await, backoff.admit().await);
        let third = backoff.admit();
        futures_util::pin_mut!(third);
        assert!(futures_util::poll!(third.as_mut()).is_pending());
        drop(a);
        let _c = third.await;
        drop(b);
    }

    fn quick() -> Policy {
        Policy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_elapsed: Duration::from_secs(5),
            ..Policy::default()
        }
    }

    #[test]
    fn the_backoff_is_full_jitter_under_a_doubling_ceiling() {
        let policy = Policy::default();
        for attempt in 1..=3 {
            let ceiling = policy.initial_delay * (1 << (attempt - 1));
            let waits: Vec<Duration> = (0..400).map(|_| policy.delay(attempt, None)).collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "attempt {attempt}");
            // Full jitter draws from the whole range, not only its upper half.
            assert!(
                waits.iter().any(|w| *w < ceiling / 4),
                "attempt {attempt}: {:?}",
                waits.iter().min()
            );
        }
        let after = Duration::from_secs(7);
        assert!(
            policy.delay(1, Some(after)) >= after,
            "Retry-After is honoured"
        );
    }

    fn transient() -> Failure {
        Failure {
            error: Error::Unreachable {
                registry: "r".into(),
                reason: "connection reset".into(),
            },
            retry: Some(Retry {
                reason: "connection reset".into(),
                after: None,
            }),
        }
    }

    #[tokio::test]
    async fn retries_transient_failures_until_success() {
        let calls = AtomicU32::new(0);
        let value = quick()
            .run("op", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(transient())
                } else {
                    Ok(7)
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn fails_at_once_on_a_permanent_error() {
        let calls = AtomicU32::new(0);
        let err = quick()
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Failure::from(Error::input(input::IMAGE, "bad")))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(err.to_string().starts_with("input `image`"));
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_with_the_last_error() {
        let calls = AtomicU32::new(0);
        let err = quick()
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(transient())
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        let text = err.to_string();
        assert!(
            text.contains("connection reset") && text.contains("gave up after 5 attempts"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn respects_the_time_bound_and_retry_after() {
        let policy = Policy {
            max_attempts: 100,
            max_elapsed: Duration::from_millis(300),
            ..quick()
        };
        let start = Instant::now();
        let err = policy
            .run("op", || async {
                Err::<(), _>(Failure {
                    retry: Some(Retry {
                        reason: "HTTP 429".into(),
                        after: Some(Duration::from_millis(100)),
                    }),
                    ..transient()
                })
            })
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(400),
            "{took:?}"
        );
        assert!(matches!(err, Error::GaveUp { attempts: 3, .. }), "{err}");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_any_bound_gives_up_without_waiting() {
        let err = quick()
            .run("op", || async {
                Err::<(), _>(Failure {
                    retry: Some(Retry {
                        reason: "HTTP 429".into(),
                        after: Some(Duration::from_secs(u64::MAX)),
                    }),
                    ..transient()
                })
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
    }

    #[test]
    fn bounds_come_from_the_env() {
        let env: Env = [
            ("WASM_OCI_RETRY_MAX_ELAPSED", "2.5"),
            ("WASM_OCI_RETRY_MAX_ATTEMPTS", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let p = Policy::from_env(&env).unwrap();
        assert_eq!(p.max_elapsed, Duration::from_millis(2500));
        assert_eq!(p.max_attempts, 3);
        for v in ["1e300", "-1", "NaN", "inf", "86401"] {
            for name in ["WASM_OCI_HTTP_TIMEOUT", "WASM_OCI_RETRY_INITIAL_DELAY"] {
                let env: Env = [(name.to_owned(), v.to_owned())].into();
                let err = Policy::from_env(&env).unwrap_err().to_string();
                assert!(err.starts_with(&format!("input `{name}`")), "{err}");
            }
        }
        let bad: Env = [("WASM_OCI_RETRY_MAX_ATTEMPTS".to_owned(), "0".to_owned())].into();
        assert!(Policy::from_env(&bad).is_err());
    }
}
