//! The slowest a blob transfer may go. The read timeout (`WASM_OCI_HTTP_TIMEOUT`) ends a
//! transfer that stops; one that trickles (ten bytes a second, each read well inside the
//! timeout) would go on for ever. So, as curl's `--speed-limit`/`--speed-time`: a blob
//! download or upload that moves fewer than [`FLOOR`] bytes a second, averaged over any window
//! of `WASM_OCI_HTTP_TIMEOUT` seconds, is cut, and the retry policy tries again.
//!
//! The floor, 1 KiB/s, is far below any link a runner has (a 56k modem moves 7 KiB/s), and a
//! transfer only has to keep it up on average over the whole window (120 s by default): a
//! slow link is never cut, a registry that trickles is cut within one window.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The floor, in bytes a second.
pub(super) const FLOOR: u64 = 1024;

/// The bytes a transfer has moved so far, counted where they are handed over (read from the
/// body, or taken by the HTTP client to send).
#[derive(Debug, Clone, Default)]
pub(super) struct Meter(Arc<AtomicU64>);

impl Meter {
    /// Counts `n` more bytes.
    pub(super) fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A transfer that fell below the floor: what it moved in the last window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooSlow {
    /// Bytes moved in the window.
    pub moved: u64,
    /// The window.
    pub window: Duration,
}

impl TooSlow {
    /// "12 bytes in the last 2s, under the floor of 1 KiB/s (`WASM_OCI_HTTP_TIMEOUT`)", or
    /// "nothing moved in the last 2s (…)".
    pub(super) fn describe(&self) -> String {
        if self.moved == 0 {
            return format!(
                "nothing moved in the last {}s (`WASM_OCI_HTTP_TIMEOUT`)",
                self.window.as_secs_f64()
            );
        }
        format!(
            "{} bytes in the last {}s, under the floor of {} KiB/s (`WASM_OCI_HTTP_TIMEOUT`)",
            self.moved,
            self.window.as_secs_f64(),
            FLOOR / 1024
        )
    }
}

/// How many samples a window holds at most: the total is sampled at most this often per
/// window, so a fast transfer costs a few comparisons, not one entry per chunk.
const SAMPLES: u32 = 16;

/// The totals seen over the last window, oldest first: each an instant and the total then.
#[derive(Debug)]
struct Pace {
    window: Duration,
    start: Instant,
    samples: VecDeque<(Instant, u64)>,
}

impl Pace {
    fn new(window: Duration, now: Instant) -> Self {
        Pace {
            window,
            start: now,
            samples: VecDeque::from([(now, 0)]),
        }
    }

    /// Records `total` at `now`; `Some` when less than the floor moved in the window that
    /// ends now (once the transfer has lasted a window).
    fn observe(&mut self, total: u64, now: Instant) -> Option<TooSlow> {
        let step = self.window / SAMPLES;
        let len = self.samples.len();
        if len >= 2 && now.duration_since(self.samples[len - 2].0) < step {
            self.samples[len - 1] = (now, total);
        } else {
            self.samples.push_back((now, total));
        }
        let window_start = now.checked_sub(self.window)?;
        if window_start < self.start {
            return None;
        }
        // The oldest sample kept is the last at or before the window's start: the total then
        // was at least its total, so what moved since is never undercounted.
        while self.samples.len() > 1 && self.samples[1].0 <= window_start {
            self.samples.pop_front();
        }
        let moved = total.saturating_sub(self.samples[0].1);
        let floor = (FLOOR as f64 * self.window.as_secs_f64()) as u64;
        (moved < floor).then_some(TooSlow {
            moved,
            window: self.window,
        })
    }
}

/// Runs `transfer`, checking `meter` against the floor over windows of `window` a few times a
/// window; `Err` when it fell below, and `transfer` is dropped (its request aborted).
pub(super) async fn watched<T>(
    meter: &Meter,
    window: Duration,
    transfer: impl Future<Output = T>,
) -> Result<T, TooSlow> {
    let tick = (window / SAMPLES).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut pace = Pace::new(window, Instant::now());
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(transfer);
    loop {
        tokio::select! {
            done = &mut transfer => return Ok(done),
            _ = ticks.tick() => {
                if let Some(slow) = pace.observe(meter.total(), Instant::now()) {
                    return Err(slow);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_trickle_is_too_slow_once_a_window_has_passed() {
        let start = Instant::now();
        let mut pace = Pace::new(2 * SECOND, start);
        let mut verdict = None;
        for s in 1..=3u64 {
            verdict = pace.observe(10 * s, start + SECOND * s as u32);
            if s < 2 {
                assert_eq!(verdict, None, "not before a window has passed");
            }
        }
        assert_eq!(
            verdict,
            Some(TooSlow {
                moved: 20,
                window: 2 * SECOND
            })
        );
    }

    #[test]
    fn a_slow_but_steady_transfer_above_the_floor_goes_on() {
        let start = Instant::now();
        let mut pace = Pace::new(10 * SECOND, start);
        // 1.5 KiB/s, in chunks every 100 ms, for a minute.
        for tenth in 1..=600u64 {
            let now = start + Duration::from_millis(100 * tenth);
            assert_eq!(pace.observe(tenth * 154, now), None, "at {tenth}");
        }
        assert!(
            pace.samples.len() <= SAMPLES as usize + 2,
            "{}",
            pace.samples.len()
        );
    }

    #[test]
    fn a_fast_start_does_not_carry_a_stall() {
        let start = Instant::now();
        let mut pace = Pace::new(2 * SECOND, start);
        assert_eq!(pace.observe(10 << 20, start + SECOND), None);
        // Nothing more for two seconds after the burst.
        assert!(pace.observe(10 << 20, start + 3 * SECOND).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_watched_transfer_is_cut_when_it_trickles() {
        let meter = Meter::default();
        let fed = meter.clone();
        let trickle = async move {
            loop {
                fed.add(10);
                tokio::time::sleep(SECOND).await;
            }
        };
        let cut: Result<(), TooSlow> = watched(&meter, 2 * SECOND, trickle).await;
        let slow = cut.unwrap_err();
        assert!(slow.moved <= 40, "{slow:?}");
        assert!(slow.describe().contains("under the floor of 1 KiB/s"));
        let done = watched(&meter, 2 * SECOND, async { 7 }).await;
        assert_eq!(done, Ok(7));
    }
}
