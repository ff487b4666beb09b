//! Progress of long runs on standard error: an indicatif bar on a terminal, a plain line
//! every few seconds otherwise, nothing with `--quiet`. The only importer of indicatif; the
//! scan engine knows nothing of it (it reports counts, this draws them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An animated bar (standard error is a terminal).
    Bar,
    /// A plain line every [`PLAIN_INTERVAL`] (logs, CI).
    Plain,
    /// Nothing.
    Quiet,
}

/// How often plain progress lines are written.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// The counts shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Domains finished (including invalid rows).
    pub done: u64,
    /// Domains with an error finding.
    pub failing: u64,
    /// Domains where something could not be tested.
    pub inconclusive: u64,
}

/// How far a run is from its end, as far as it can be known without reading the input twice.
#[derive(Debug, Clone)]
pub enum Total {
    /// This many domains (given on the command line).
    Domains(u64),
    /// An input file of `len` bytes, of which a reader has consumed `read` so far (the
    /// input is read once, as a stream; its rows are not counted beforehand).
    InputBytes {
        /// The file's size.
        len: u64,
        /// Bytes consumed so far, updated by the reader.
        read: Arc<AtomicU64>,
    },
    /// Unknown (a pipe, a FIFO, standard input).
    Unknown,
}

/// A progress display.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: Total,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Starts showing progress towards `total`.
    pub fn new(mode: ProgressMode, total: Total) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let (len, template) = match &total {
                Total::Domains(n) => (
                    Some(*n),
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} domains, {per_sec}, ETA {eta} {msg}",
                ),
                Total::InputBytes { len, .. } => (
                    Some(*len),
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent}% of the input read, ETA {eta}, {msg}",
                ),
                Total::Unknown => (None, "{spinner} [{elapsed_precise}] {pos} domains, {per_sec} {msg}"),
            };
            let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("the template is a constant and valid"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            mode,
            bar,
            total,
            started: now,
            last_line: now,
        }
    }

    /// Shows the counts so far.
    pub fn update(&mut self, tally: Tally) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    if let Total::InputBytes { read, .. } = &self.total {
                        bar.set_position(read.load(Ordering::Relaxed));
                        bar.set_message(format!(
                            "{} {}, failing {}, inconclusive {}",
                            tally.done,
                            domains(tally.done),
                            tally.failing,
                            tally.inconclusive
                        ));
                    } else {
                        bar.set_position(tally.done);
                        bar.set_message(format!(
                            "failing {}, inconclusive {}",
                            tally.failing, tally.inconclusive
                        ));
                    }
                }
            }
            ProgressMode::Plain => {
                if self.last_line.elapsed() >= PLAIN_INTERVAL {
                    self.last_line = Instant::now();
                    eprintln!("mxprobe: {}", self.line(tally));
                }
            }
        }
    }

    /// Removes the bar (or writes the last plain line).
    pub fn finish(self, tally: Tally) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Bar => {
                if let Some(bar) = self.bar {
                    bar.finish_and_clear();
                }
            }
            ProgressMode::Plain => eprintln!("mxprobe: {}", self.line(tally)),
        }
    }

    fn line(&self, tally: Tally) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut noun = domains(tally.done);
        let of = match &self.total {
            Total::Domains(t) => {
                noun = domains(*t);
                format!("/{t}")
            }
            Total::InputBytes { len, read } => format!(
                " (input {}% read)",
                read.load(Ordering::Relaxed)
                    .min(*len)
                    .saturating_mul(100)
                    .checked_div(*len)
                    .unwrap_or(100)
            ),
            Total::Unknown => String::new(),
        };
        format!(
            "{}{of} {noun}, {:.0}/s, {} failing, {} inconclusive",
            tally.done,
            tally.done as f64 / secs,
            tally.failing,
            tally.inconclusive
        )
    }
}

/// "domain" or "domains", after `n`.
fn domains(n: u64) -> &'static str {
    if n == 1 { "domain" } else { "domains" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_domain_is_singular() {
        let progress = Progress::new(ProgressMode::Quiet, Total::Unknown);
        let tally = Tally {
            done: 1,
            ..Tally::default()
        };
        assert!(
            progress.line(tally).starts_with("1 domain, "),
            "{}",
            progress.line(tally)
        );
        let tally = Tally {
            done: 2,
            ..Tally::default()
        };
        assert!(progress.line(tally).starts_with("2 domains, "));
        let progress = Progress::new(ProgressMode::Quiet, Total::Domains(1));
        assert!(progress.line(Tally::default()).starts_with("0/1 domain, "));
    }
}
