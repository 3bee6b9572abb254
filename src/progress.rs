//! Progress a person can watch, decided once per run (`--progress`, default `auto`):
//!
//! - `bar`: an indicatif bar on standard error with position/total, rate and time left (a
//!   spinner with the rate while the total is unknown). `auto` picks it when standard error is
//!   a terminal.
//! - `plain`: one line on standard error every `--progress-interval` (5 s by default) and a
//!   final line, without escape codes (CI logs, pipes, the journal). `auto` picks it when
//!   standard error is not a terminal.
//! - `none`: nothing.
//!
//! The work only moves counters: the commands call `set_position` (an atomic store inside
//! the indicatif bar) every batch of lines or events, never per event; the bar or the plain
//! reporter thread reads them on its own clock and does all the formatting.

use std::io::{IsTerminal as _, Write as _};
use std::ops::Deref;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};

/// How progress is shown (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A bar when standard error is a terminal, plain lines otherwise.
    Auto,
    /// An indicatif progress bar (with escape codes).
    Bar,
    /// Plain periodic lines, no escape codes.
    Plain,
    /// No progress output.
    None,
}

/// The default interval between two plain progress lines.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

struct Settings {
    mode: Mode,
    interval: Duration,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Decides, once, how every progress of this run is shown: `auto` is resolved here against
/// standard error, so all commands of the run show progress the same way.
pub fn init(mode: Mode, interval: Duration) {
    let mode = match mode {
        Mode::Auto if std::io::stderr().is_terminal() => Mode::Bar,
        Mode::Auto => Mode::Plain,
        other => other,
    };
    let _ = SETTINGS.set(Settings {
        mode,
        // A zero interval would make the reporter spin.
        interval: interval.max(Duration::from_millis(1)),
    });
}

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings {
        mode: Mode::None,
        interval: DEFAULT_INTERVAL,
    })
}

/// What the position counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Lines,
    Events,
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Lines => "lines",
            Unit::Events => "events",
            Unit::Bytes => "bytes",
        }
    }

    fn amount(self, n: u64) -> String {
        match self {
            Unit::Bytes => HumanBytes(n).to_string(),
            _ => format!("{} {}", HumanCount(n), self.name()),
        }
    }

    fn count(self, n: u64) -> String {
        match self {
            Unit::Bytes => HumanBytes(n).to_string(),
            _ => HumanCount(n).to_string(),
        }
    }

    fn rate(self, per_sec: f64) -> String {
        match self {
            Unit::Bytes => format!("{}/s", HumanBytes(per_sec as u64)),
            _ => format!("{} {}/s", HumanCount(per_sec as u64), self.name()),
        }
    }
}

/// The progress of one command: an indicatif bar (drawn, or hidden and read by the plain
/// reporter), so the work updates it the same way whatever is shown. Derefs to the bar for
/// `set_length`, `set_position` and `set_message`.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    inner: Arc<Inner>,
}

/// A stretch of work during which the position cannot move (indexes built after the last
/// event): what it is and when it began. Set once, shared with the plain reporter.
type Stage = Arc<OnceLock<(&'static str, Instant)>>;

struct Inner {
    /// The input's size in bytes, when known: the total of lines is estimated from it.
    input_len: Option<u64>,
    unit: Unit,
    stage: Stage,
    /// Dropping it stops the plain reporter; `finish` sends on it to get the final line.
    plain: Option<mpsc::Sender<()>>,
    reporter: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Deref for Progress {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.bar
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress {
    /// Progress over log events; its total is set once the head is known.
    pub fn events(what: &'static str) -> Progress {
        Self::new(what, Unit::Events, None, true)
    }

    /// Progress over log events whose total is not known (a spinner with the rate).
    pub fn spinner(what: &'static str) -> Progress {
        Self::new(what, Unit::Events, None, false)
    }

    /// Progress over the lines of an input of `input_len` bytes (unknown for standard input):
    /// the total of lines is estimated from the bytes read so far (see [`read`](Self::read)).
    pub fn lines(what: &'static str, input_len: Option<u64>) -> Progress {
        Self::new(what, Unit::Lines, input_len, input_len.is_some())
    }

    /// Progress over the bytes of an input (a spinner when its length is unknown).
    pub fn bytes(what: &'static str, len: Option<u64>) -> Progress {
        let progress = Self::new(what, Unit::Bytes, None, len.is_some());
        if let Some(len) = len {
            progress.set_length(len);
        }
        progress
    }

    /// Progress of one stage without a count (an index build): a spinner with the time so
    /// far; plain lines say the stage and how long it has run, the final one how long it took.
    pub fn stage(what: &'static str, stage: &'static str) -> Progress {
        let progress = Self::new(what, Unit::Events, None, false);
        progress.set_stage(stage);
        progress
    }

    /// Progress that shows nothing (the demo load, tests).
    pub fn hidden() -> Progress {
        Self::with_mode("", Unit::Events, None, false, Mode::None)
    }

    /// `known_total`: whether the bar shows a total and time left (the total itself may come
    /// a moment later, e.g. once the log's head is read) or is a spinner with the rate.
    fn new(what: &'static str, unit: Unit, input_len: Option<u64>, known_total: bool) -> Progress {
        Self::with_mode(what, unit, input_len, known_total, settings().mode)
    }

    fn with_mode(
        what: &'static str,
        unit: Unit,
        input_len: Option<u64>,
        known_total: bool,
        mode: Mode,
    ) -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        let stage = Stage::default();
        let (plain, reporter) = match mode {
            Mode::Bar | Mode::Auto => {
                bar.set_style(bar_style(unit, known_total));
                bar.set_prefix(what);
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(200));
                (None, None)
            }
            Mode::Plain => {
                let (tx, rx) = mpsc::channel();
                let reporter = std::thread::spawn({
                    let bar = bar.clone();
                    let stage = stage.clone();
                    let interval = settings().interval;
                    move || report_plain(&bar, &stage, what, unit, interval, &rx)
                });
                (Some(tx), Some(reporter))
            }
            Mode::None => (None, None),
        };
        Progress {
            bar,
            inner: Arc::new(Inner {
                input_len,
                unit,
                stage,
                plain,
                reporter: std::sync::Mutex::new(reporter),
            }),
        }
    }

    /// Counts `lines` read in `bytes` of the input: the position, and the total estimated as
    /// `lines × input size / bytes read`. Call it per batch of lines, not per line.
    pub fn read(&self, lines: u64, bytes: u64) {
        if let Some(len) = self.inner.input_len
            && bytes > 0
        {
            let estimate = (u128::from(lines) * u128::from(len) / u128::from(bytes)) as u64;
            self.bar.set_length(estimate.max(lines));
        }
        self.bar.set_position(lines);
    }

    /// Says what the work does from now on while its position cannot move (once; later calls
    /// are ignored): the bar turns into a spinner with the stage, and the plain lines say the
    /// stage and how long it has run instead of a rate and a time left that would only fall.
    pub fn set_stage(&self, stage: &'static str) {
        if self.inner.stage.set((stage, Instant::now())).is_err() {
            return;
        }
        let done = self.bar.position();
        let message = if done > 0 {
            format!("{stage}, after {}", self.inner.unit.amount(done))
        } else {
            stage.to_owned()
        };
        self.bar
            .set_style(style("{prefix} {spinner} [{elapsed_precise}] {msg}"));
        self.bar.set_message(message);
    }

    /// Ends the progress: clears the bar, or prints the plain final line.
    pub fn finish(&self) {
        if let Some(tx) = &self.inner.plain {
            // The reporter prints its final line on this message, then ends.
            let _ = tx.send(());
            let reporter = self
                .inner
                .reporter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(reporter) = reporter {
                let _ = reporter.join();
            }
        } else {
            self.bar.finish_and_clear();
        }
    }
}

/// The bar's look: a short fixed-width bar, so that position, rate, time left and the
/// message fit on one line of a usual terminal; the rate and time left in the plain lines'
/// words.
fn bar_style(unit: Unit, known_total: bool) -> ProgressStyle {
    let (pos, len) = match unit {
        Unit::Bytes => ("{bytes}", "{total_bytes}"),
        Unit::Lines => ("{human_pos}", "{human_len} lines"),
        Unit::Events => ("{human_pos}", "{human_len} events"),
    };
    let template = if known_total {
        format!(
            "{{prefix}} [{{elapsed_precise}}] {{bar:20}} {pos}/{len} ({{rate}}, ~{{left}} left) {{msg}}"
        )
    } else {
        let pos = match unit {
            Unit::Bytes => "{bytes}".to_owned(),
            _ => format!("{{human_pos}} {}", unit.name()),
        };
        format!("{{prefix}} {{spinner}} [{{elapsed_precise}}] {pos} ({{rate}}) {{msg}}")
    };
    style(&template)
        .with_key(
            "rate",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&unit.rate(state.per_sec()));
            },
        )
        .with_key(
            "left",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&clock(state.eta()));
            },
        )
}

/// The plain reporter: a line every `interval` until `finish` (then the final line) or until
/// the progress is dropped (an error ended the command; its message says why).
fn report_plain(
    bar: &ProgressBar,
    stage: &Stage,
    what: &str,
    unit: Unit,
    interval: Duration,
    stop: &mpsc::Receiver<()>,
) {
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {
                let line = match stage.get() {
                    Some(&(stage, since)) => stage_line(bar, what, unit, stage, since.elapsed()),
                    None => periodic_line(bar, what, unit),
                };
                emit(&line);
            }
            Ok(()) => {
                let stage = stage.get().map(|&(stage, since)| (stage, since.elapsed()));
                emit(&final_line(bar, what, unit, stage));
                return;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn emit(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn per_sec(done: u64, elapsed: Duration) -> f64 {
    done as f64 / elapsed.as_secs_f64().max(1e-3)
}

/// `import: 1,234,000/8,860,000 lines (13.9%), 41,200 lines/s, ~3m05s left; 1,200 accepted, …`
fn periodic_line(bar: &ProgressBar, what: &str, unit: Unit) -> String {
    let done = bar.position();
    let rate = per_sec(done, bar.elapsed());
    let mut line = match bar.length() {
        Some(total) if total > 0 => {
            let left = total.saturating_sub(done);
            let eta = if rate > 0.0 {
                format!(
                    "~{} left",
                    clock(Duration::from_secs_f64(left as f64 / rate))
                )
            } else {
                "time left unknown".to_owned()
            };
            format!(
                "{what}: {}/{} ({:.1}%), {}, {eta}",
                unit.count(done),
                unit.amount(total),
                done as f64 * 100.0 / total as f64,
                unit.rate(rate),
            )
        }
        _ => format!("{what}: {}, {}", unit.amount(done), unit.rate(rate)),
    };
    let message = bar.message();
    if !message.is_empty() {
        line.push_str("; ");
        line.push_str(&message);
    }
    line
}

/// `rebuild-projections: building the indexes for 1m10s, after 21,159,936/21,833,266 events`
fn stage_line(bar: &ProgressBar, what: &str, unit: Unit, stage: &str, since: Duration) -> String {
    let done = bar.position();
    let mut line = format!("{what}: {stage} for {}", clock(since));
    if done > 0 {
        let shown = match bar.length().filter(|&total| total > 0) {
            Some(total) => format!("{}/{}", unit.count(done), unit.amount(total)),
            None => unit.amount(done),
        };
        line.push_str(&format!(", after {shown}"));
    }
    line
}

/// `import: done, 8,860,000 lines in 3m35s (41,200 lines/s); …`, with how long a stage took
/// (`rebuild-projections: done, …; building the indexes took 2m20s`). A progress that is
/// only a stage says `import: building the log's indexes: done in 2m25s`.
fn final_line(
    bar: &ProgressBar,
    what: &str,
    unit: Unit,
    stage: Option<(&str, Duration)>,
) -> String {
    let done = bar.position();
    let elapsed = bar.elapsed();
    if let (Some((stage, took)), 0) = (stage, done) {
        return format!("{what}: {stage}: done in {}", clock(took));
    }
    let mut line = format!(
        "{what}: done, {} in {} ({})",
        unit.amount(done),
        clock(elapsed),
        unit.rate(per_sec(done, elapsed))
    );
    match stage {
        Some((stage, took)) => line.push_str(&format!("; {stage} took {}", clock(took))),
        None => {
            let message = bar.message();
            if !message.is_empty() {
                line.push_str("; ");
                line.push_str(&message);
            }
        }
    }
    line
}

/// `3m05s`, `1h02m`, `4.2s`: short enough for a log line.
fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_position_total_rate_and_time_left() {
        let bar = ProgressBar::hidden();
        bar.set_length(8_860_000);
        bar.set_position(1_234_000);
        bar.set_message("5 rejected");
        let line = periodic_line(&bar, "import", Unit::Lines);
        assert!(
            line.starts_with("import: 1,234,000/8,860,000 lines (13.9%), "),
            "{line}"
        );
        assert!(
            line.contains(" lines/s, ~") && line.ends_with(" left; 5 rejected"),
            "{line}"
        );
        let spinner = ProgressBar::hidden();
        spinner.set_position(42);
        let line = periodic_line(&spinner, "verify", Unit::Events);
        assert!(line.starts_with("verify: 42 events, "), "{line}");
        assert!(line.ends_with(" events/s"), "{line}");
        assert!(
            final_line(&bar, "import", Unit::Lines, None)
                .starts_with("import: done, 1,234,000 lines in ")
        );
    }

    #[test]
    fn a_stage_replaces_the_rate_and_time_left() {
        let bar = ProgressBar::hidden();
        bar.set_length(21_833_266);
        bar.set_position(21_159_936);
        let since = Duration::from_secs(70);
        assert_eq!(
            stage_line(
                &bar,
                "rebuild-projections",
                Unit::Events,
                "building the indexes",
                since
            ),
            "rebuild-projections: building the indexes for 1m10s, after 21,159,936/21,833,266 events"
        );
        let line = final_line(
            &bar,
            "rebuild-projections",
            Unit::Events,
            Some(("building the indexes", Duration::from_secs(140))),
        );
        assert!(
            line.starts_with("rebuild-projections: done, 21,159,936 events in ")
                && line.ends_with("; building the indexes took 2m20s"),
            "{line}"
        );
        // A progress that is only a stage has no count to show.
        let stage = ProgressBar::hidden();
        assert_eq!(
            stage_line(
                &stage,
                "import",
                Unit::Events,
                "building the log's indexes",
                since
            ),
            "import: building the log's indexes for 1m10s"
        );
        assert_eq!(
            final_line(
                &stage,
                "import",
                Unit::Events,
                Some(("building the log's indexes", Duration::from_millis(4200)))
            ),
            "import: building the log's indexes: done in 4.2s"
        );
    }

    #[test]
    fn a_stage_is_set_once_and_shown_on_the_bar() {
        let progress =
            Progress::with_mode("rebuild-projections", Unit::Events, None, true, Mode::None);
        progress.set_position(1_000);
        progress.set_stage("building the indexes");
        progress.set_stage("something else");
        assert_eq!(
            progress.inner.stage.get().map(|&(stage, _)| stage),
            Some("building the indexes")
        );
        assert_eq!(
            progress.message(),
            "building the indexes, after 1,000 events"
        );
    }

    #[test]
    fn the_line_total_is_estimated_from_the_bytes_read() {
        let progress = Progress::with_mode("import", Unit::Lines, Some(1000), true, Mode::None);
        progress.read(10, 100);
        assert_eq!(progress.length(), Some(100));
        assert_eq!(progress.position(), 10);
        // Never below what was read (the last line may be longer than the average).
        progress.read(60, 1000);
        assert_eq!(progress.length(), Some(60));
    }

    #[test]
    fn clock_is_short() {
        assert_eq!(clock(Duration::from_secs(185)), "3m05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h02m");
        assert_eq!(clock(Duration::from_millis(4200)), "4.2s");
    }
}
