//! Progress of a long upload or download, for whoever watches the log: a transfer that runs
//! longer than [`INTERVAL`] says, every [`INTERVAL`], how many bytes went, the percent of the
//! whole and the rate so far, as an `info` event (a plain line in the action's log, a line on
//! stderr from the CLI). The CLI on a terminal draws a progress bar on stderr instead
//! ([`Display::Bar`], chosen by the front door), once a transfer has run [`BAR_AFTER`].
//!
//! The transfers count their bytes through [`Progress::advance`] as each block passes: the
//! upload's file blocks (`remote::gated_blocks`) and the download's chunks (`download.rs`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracing::info;

/// How often a line is logged, and how long a transfer runs before its first one.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How long a transfer runs before the terminal's bar appears: a short one draws none.
pub const BAR_AFTER: Duration = Duration::from_secs(1);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A line every [`INTERVAL`] (the action's log, stderr that is not a terminal).
    Lines,
    /// A bar on stderr (the CLI on a terminal).
    Bar,
}

static DISPLAY: OnceLock<Display> = OnceLock::new();

/// Shows progress as `display` from now on; lines until this is called. The first call wins.
pub fn show_as(display: Display) {
    let _ = DISPLAY.set(display);
}

fn display() -> Display {
    DISPLAY.get().copied().unwrap_or(Display::Lines)
}

/// One transfer's progress.
#[derive(Debug)]
pub struct Progress {
    what: String,
    total: u64,
    done: u64,
    started: Instant,
    /// When the next line is due.
    next: Instant,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A transfer of `total` bytes called `what` (`upload of app.wasm`), starting now.
    pub fn new(what: impl Into<String>, total: u64) -> Self {
        let started = Instant::now();
        Progress {
            what: what.into(),
            total,
            done: 0,
            started,
            next: started + INTERVAL,
            bar: None,
        }
    }

    /// `bytes` more went.
    pub fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        let now = Instant::now();
        match display() {
            Display::Bar => {
                if self.bar.is_none() && now.duration_since(self.started) >= BAR_AFTER {
                    self.bar = Some(self.start_bar());
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(self.done);
                }
            }
            Display::Lines if now >= self.next => {
                // The next line INTERVAL after the one due, not after this block: a slow
                // block does not push every later line back.
                while self.next <= now {
                    self.next += INTERVAL;
                }
                info!("{}", self.line(now.duration_since(self.started)));
            }
            Display::Lines => {}
        }
    }

    /// `upload of app.wasm: 12.0 MiB of 64.0 MiB, 18 percent, 1.2 MiB/s` (no `%`, which the
    /// action's log escapes).
    fn line(&self, elapsed: Duration) -> String {
        let percent = (self.done.saturating_mul(100))
            .checked_div(self.total)
            .unwrap_or(100);
        let rate = self.done as f64 / elapsed.as_secs_f64().max(0.001);
        format!(
            "{}: {} of {}, {percent} percent, {}/s",
            self.what,
            size(self.done as f64),
            size(self.total as f64),
            size(rate)
        )
    }

    fn start_bar(&self) -> indicatif::ProgressBar {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(self.total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .expect("the template parses")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(self.what.clone());
        bar
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes in binary units, one decimal: `512 B`, `12.0 MiB`.
fn size(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024.0 {
        return format!("{bytes:.0} B");
    }
    let mut value = bytes / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_bytes_share_and_rate() {
        let mut progress = Progress::new("upload of app.wasm", 64 << 20);
        progress.done = 12 << 20;
        assert_eq!(
            progress.line(Duration::from_secs(10)),
            "upload of app.wasm: 12.0 MiB of 64.0 MiB, 18 percent, 1.2 MiB/s"
        );
        progress.total = 0;
        progress.done = 0;
        assert_eq!(
            progress.line(Duration::ZERO),
            "upload of app.wasm: 0 B of 0 B, 100 percent, 0 B/s"
        );
    }

    #[test]
    fn no_line_is_due_before_the_interval() {
        let mut progress = Progress::new("download of app.wasm", 100);
        progress.advance(50);
        assert_eq!(
            progress.next,
            progress.started + INTERVAL,
            "nothing logged yet"
        );
        // As if the interval had passed: the next line is due one interval later.
        progress.next = Instant::now();
        progress.advance(10);
        assert!(progress.next > Instant::now() + INTERVAL - Duration::from_secs(1));
        assert_eq!(progress.done, 60);
    }
}
