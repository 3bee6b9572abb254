//! The machine-readable end of a long-running command (`--summary json`): one JSON object,
//! on standard output or in `--summary-file PATH`, with the command, its counts, the elapsed
//! time, the rate and the outcome (its exit code and what the code means).
//!
//! With the JSON on standard output, the human report moves to standard error (see
//! [`crate::out::report_on_stderr`]), so standard output holds the object alone.
//!
//! `verify --format json` is this object too (one machine-readable report, not two): verify
//! adds what it verified, the breach with its code and positions, and the redacted events.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use citydb_log::LogHead;
use citydb_log::chain::{Breach, Corruption, Redactions};

/// What a long-running command prints at its end (`--summary`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The human report only (the default).
    Text,
    /// One JSON object as well (on standard output, or in --summary-file).
    Json,
}

enum Target {
    Stdout,
    File(PathBuf),
}

struct Settings {
    target: Option<Target>,
    started: Instant,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
/// Set once the summary is written: an error after it must not write a second one.
static WRITTEN: AtomicBool = AtomicBool::new(false);

/// Decides, once, where the summary goes: `--summary-file` implies JSON.
pub fn init(format: Format, file: Option<PathBuf>) {
    let target = match (format, file) {
        (_, Some(path)) => Some(Target::File(path)),
        (Format::Json, None) => {
            crate::out::report_on_stderr();
            Some(Target::Stdout)
        }
        (Format::Text, None) => None,
    };
    let _ = SETTINGS.set(Settings {
        target,
        started: Instant::now(),
    });
}

/// Whether the JSON summary takes standard output (then nothing else may: `export` without
/// `--out` refuses).
pub fn on_stdout() -> bool {
    matches!(
        SETTINGS.get().and_then(|s| s.target.as_ref()),
        Some(Target::Stdout)
    )
}

/// What the exit codes mean (docs/operations.md, "Exit codes").
fn outcome(exit_code: u8) -> &'static str {
    match exit_code {
        0 => "success",
        2 => "broken",
        3 => "rejected",
        _ => "error",
    }
}

/// The summary of one command. Counts a command does not have stay out of the object.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub command: &'static str,
    /// `success` (0), `error` (1), `broken` (2: a broken chain, or a diverging migration
    /// target), `rejected` (3: an import with rejected lines).
    pub outcome: &'static str,
    pub exit_code: u8,
    pub elapsed_seconds: f64,
    /// How an import ran: `bulk` or `careful`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_imported: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Of `rate_unit` (`lines` for import, `events` otherwise) per second of `elapsed_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_unit: Option<&'static str>,
    /// The log's head after the command (verify: the head checked; export: the last event
    /// written; migrate: the target's head).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
    /// Why the outcome is not `success`: the error, or the breach found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// verify: what was verified: `log`, `stream`, `access_log` or `export`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<&'static str>,
    /// verify: the log file (or PostgreSQL store) or export verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// verify of an export: the hash format of its events, and whether its header stated it
    /// (an export without a header is format 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_format: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_format_stated: Option<bool>,
    /// verify: the first breach, when broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach: Option<BreachSummary>,
    /// verify: the redacted events among those verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<RedactedSummary>,
}

/// The first breach a verification found, by its stable code (docs/operations.md,
/// "Verifying"): `position` is the event whose check failed (for `position_gap` the position
/// found, `expected` the one due); `line` the export line that does not decode.
#[derive(Debug, Default, Serialize)]
pub struct BreachSummary {
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub message: String,
}

impl From<&Corruption> for BreachSummary {
    fn from(c: &Corruption) -> BreachSummary {
        let mut summary = BreachSummary {
            code: c.breach.code(),
            position: Some(c.position),
            message: c.breach.to_string(),
            ..BreachSummary::default()
        };
        match &c.breach {
            Breach::PositionGap { expected, found } => {
                summary.expected = Some(*expected);
                summary.found = Some(*found);
            }
            Breach::StreamVersionGap {
                stream,
                expected,
                found,
            } => {
                summary.stream = Some(stream.clone());
                summary.expected = Some(*expected);
                summary.found = Some(*found);
            }
            Breach::DerivedTableMismatch { table } => summary.table = Some(table.clone()),
            Breach::DataChanged
            | Breach::HashMismatch
            | Breach::LogLinkBroken
            | Breach::StreamLinkBroken
            | Breach::TimeWentBackwards
            | Breach::Truncated
            | Breach::HeadRewritten => {}
        }
        summary
    }
}

/// The redacted events a verification passed: how many, and the lowest positions of them
/// (at most [`citydb_log::chain::REDACTIONS_LISTED`]; `all_listed` says whether that is all).
#[derive(Debug, Serialize)]
pub struct RedactedSummary {
    pub count: u64,
    pub positions: Vec<u64>,
    pub all_listed: bool,
}

impl From<&Redactions> for RedactedSummary {
    fn from(r: &Redactions) -> RedactedSummary {
        RedactedSummary {
            count: r.count,
            positions: r.positions.clone(),
            all_listed: r.count == r.positions.len() as u64,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Head {
    pub position: u64,
    pub hash: String,
}

impl From<&LogHead> for Head {
    fn from(h: &LogHead) -> Head {
        Head {
            position: h.position,
            hash: h.hash.to_string(),
        }
    }
}

impl Summary {
    pub fn new(command: &'static str) -> Summary {
        Summary {
            command,
            ..Summary::default()
        }
    }

    /// Writes the summary, if one was asked for, with `exit_code` and the rate of `count`
    /// `unit`s over the time since the command started. Returns the exit code.
    pub fn write(
        mut self,
        exit_code: u8,
        count: Option<(u64, &'static str)>,
    ) -> anyhow::Result<u8> {
        let Some(settings) = SETTINGS.get() else {
            return Ok(exit_code);
        };
        let Some(target) = &settings.target else {
            return Ok(exit_code);
        };
        let elapsed = settings.started.elapsed().as_secs_f64();
        self.exit_code = exit_code;
        self.outcome = outcome(exit_code);
        self.elapsed_seconds = (elapsed * 1000.0).round() / 1000.0;
        if let Some((n, unit)) = count {
            self.rate = Some((n as f64 / elapsed.max(1e-3)).round());
            self.rate_unit = Some(unit);
        }
        let json = serde_json::to_string(&self).context("cannot encode the summary")?;
        WRITTEN.store(true, Ordering::SeqCst);
        match target {
            Target::Stdout => crate::out::json_line(&json),
            Target::File(path) => std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("cannot write the summary to {}", path.display()))?,
        }
        Ok(exit_code)
    }
}

/// The summary of a command that ended in an error (exit 1), unless one was written already.
pub fn write_error(command: &'static str, error: &anyhow::Error) {
    if WRITTEN.load(Ordering::SeqCst) {
        return;
    }
    let summary = Summary {
        reason: Some(format!("{error:#}")),
        ..Summary::new(command)
    };
    if let Err(e) = summary.write(1, None) {
        eprintln!("error: {e:#}");
    }
}
