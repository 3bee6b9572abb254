//! `citydb verify`: the hash chain of a store, of one stream, or of an export file.
//!
//! A store's whole log is verified by the store itself ([`EventLog::verify_log_counting`]:
//! consecutive position ranges verified concurrently, joined in order — the same result as one
//! sequential pass — with memory bounded however many streams the log has), with a progress
//! bar. An export file is verified offline, line by line, with the same verifier, after its
//! header line (the hash format; none in an export written before citydb stated it: format 1).
//!
//! [`report`] prints the verdict for people; [`summary`] puts the same findings into the
//! `--format json` report (the `--summary json` object: docs/operations.md, "Verifying").

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

use crate::out::say;
use indicatif::ProgressBar;

use citydb_log::chain::LogVerifier;
use citydb_log::{Corruption, EventLog, LogError, LogHead, VerifyReport};

use crate::export::{parse_header, parse_line};
use crate::lines::{Line, next_line};
use crate::summary::{BreachSummary, RedactedSummary, Summary};

/// How a verification ended.
pub enum Outcome {
    /// The chain was read to the end (or to the first breach).
    Report(VerifyReport),
    /// A row or line could not even be decoded: that is a broken log too.
    Undecodable { at: Place, reason: String },
}

/// Where an undecodable input is: a store's row, or an export's line (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Position(u64),
    Line(u64),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Position(p) => write!(f, "position {p}"),
            Place::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// The code of an input that does not even decode (not a breach of the chain's checks, but a
/// broken log all the same: exit 2).
pub const UNDECODABLE: &str = "undecodable";

/// The hash format of an export's events: stated by its header, or format 1 for an export
/// written before the header existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashFormat {
    pub version: u64,
    pub stated: bool,
}

/// What verifying an export found.
pub struct FileVerification {
    pub outcome: Outcome,
    pub hash_format: HashFormat,
}

/// Parses `POSITION:HASH` (the head printed by an earlier verification).
pub fn parse_head(text: &str) -> anyhow::Result<LogHead> {
    let (position, hash) = text
        .split_once(':')
        .context("expected POSITION:HASH, e.g. 41:5f0c…")?;
    Ok(LogHead {
        position: position
            .trim()
            .parse()
            .context("the position is not a number")?,
        hash: citydb_log::Hash::from_hex(hash.trim()).context("the hash is not 64 hex digits")?,
    })
}

/// Verifies the whole log with the store's own verification
/// ([`EventLog::verify_log_counting`]: parallel segments, rows borrowed, stream links set aside
/// past `STREAMS_IN_MEMORY` events), the progress bar following its count.
pub async fn verify_log(
    log: Arc<dyn EventLog>,
    expected_head: Option<LogHead>,
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    if let Some(head) = log.head().await? {
        progress.set_length(head.position + 1);
    }
    let done = Arc::new(AtomicU64::new(0));
    let ticker = {
        let progress = progress.clone();
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                progress.set_position(done.load(Ordering::Relaxed));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
    };
    let result = log.verify_log_counting(expected_head, done.clone()).await;
    ticker.abort();
    match result {
        Ok(report) => {
            progress.set_position(report.events);
            Ok(Outcome::Report(report))
        }
        // A row that cannot be decoded, with no breach before it.
        Err(LogError::Corrupted { position, reason }) => Ok(Outcome::Undecodable {
            at: Place::Position(position),
            reason,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Longest export line read (bytes): an event's data and metadata are at most
/// [`citydb_log::DEFAULT_MAX_EVENT_SIZE`] together, and written into a line they grow at most
/// sixfold (a control character becomes `\u00XX`), plus the fixed fields.
pub const MAX_EXPORT_LINE: usize = 6 * citydb_log::DEFAULT_MAX_EVENT_SIZE + 4096;

/// Partitions of an export's stream links: 21.8 M events (a whole city) make 340 k a
/// partition, some 35 MB of table per checking thread.
const EXPORT_PARTITIONS: usize = 64;

/// Verifies an export file (either flavour, with or without its header line), offline. An
/// export in a hash format this citydb does not know is refused (`Err`: exit 1), not guessed
/// at (docs/audit-format.md, "Changing this format").
pub fn verify_file(
    reader: impl BufRead,
    expected_head: Option<LogHead>,
    progress: &ProgressBar,
) -> anyhow::Result<FileVerification> {
    let mut hash_format = HashFormat {
        version: u64::from(citydb_log::chain::FORMAT_VERSION),
        stated: false,
    };
    let outcome = verify_lines(reader, expected_head, progress, &mut hash_format)?;
    Ok(FileVerification {
        outcome,
        hash_format,
    })
}

fn verify_lines(
    reader: impl BufRead,
    expected_head: Option<LogHead>,
    progress: &ProgressBar,
    hash_format: &mut HashFormat,
) -> anyhow::Result<Outcome> {
    // The stream links set aside, as the stores do past `STREAMS_IN_MEMORY` events: an
    // export's size is not known ahead (standard input), and a whole city's 16 million
    // streams would otherwise take 1.6 GB. Small exports never leave memory (a partition
    // writes out past `LINK_BLOCK_BYTES`).
    let mut verifier = LogVerifier::partitioned(
        0,
        expected_head,
        EXPORT_PARTITIONS,
        citydb_log::chain::LINK_BLOCK_BYTES,
    );
    let mut reader = reader;
    let mut buf = Vec::new();
    let mut number = 0u64;
    let mut bytes = 0u64;
    // Only the first line that is not blank may be the header.
    let mut first = true;
    loop {
        let read = next_line(&mut reader, &mut buf, MAX_EXPORT_LINE)
            .with_context(|| format!("cannot read line {}", number + 1))?;
        let n = match read {
            None => break,
            Some(Line::Fits(n)) => n,
            Some(Line::TooLong(n)) => {
                return Ok(Outcome::Undecodable {
                    at: Place::Line(number + 1),
                    reason: format!(
                        "the line is {n} bytes long; no exported event is longer than {MAX_EXPORT_LINE}"
                    ),
                });
            }
        };
        number += 1;
        bytes += n as u64;
        if number.is_multiple_of(1024) {
            progress.set_position(bytes);
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if std::mem::take(&mut first) {
            match parse_header(&buf) {
                None => {}
                Some(Ok(version)) if version == hash_format.version => {
                    hash_format.stated = true;
                    continue;
                }
                Some(Ok(version)) => anyhow::bail!(
                    "the export states hash format {version}; this citydb verifies format {} only (a newer citydb may know it)",
                    hash_format.version
                ),
                Some(Err(e)) => {
                    return Ok(Outcome::Undecodable {
                        at: Place::Line(number),
                        reason: format!("{e:#}"),
                    });
                }
            }
        }
        let event = match parse_line(&buf) {
            Ok(event) => event,
            Err(e) => {
                return Ok(Outcome::Undecodable {
                    at: Place::Line(number),
                    reason: format!("{e:#}"),
                });
            }
        };
        if verifier.check(&event.view()).is_err() {
            break;
        }
    }
    progress.set_position(bytes);
    Ok(Outcome::Report(verifier.try_finish()?))
}

/// Redacted positions a text report lists (all of them are in `--format json`'s, up to
/// [`citydb_log::chain::REDACTIONS_LISTED`]).
const REDACTIONS_PRINTED: usize = 20;

/// Prints the verdict and gives the exit code: 0 intact, 2 broken. `whole_log`: the head
/// printed is the log's (one stream's last event is not a head to check a copy against).
pub fn report(outcome: &Outcome, what: &str, whole_log: bool) -> u8 {
    let code = match outcome {
        Outcome::Report(VerifyReport {
            events,
            streams,
            head,
            corruption: None,
            ..
        }) => {
            say!("intact: {events} events in {streams} streams ({what})");
            match head {
                Some(h) if whole_log => {
                    say!("head: position {} hash {}", h.position, h.hash);
                    say!(
                        "(write it down; check a later copy with --expected-head {}:{})",
                        h.position,
                        h.hash
                    );
                }
                Some(h) => say!("last event: position {} hash {}", h.position, h.hash),
                None => {}
            }
            0
        }
        Outcome::Report(VerifyReport {
            corruption: Some(Corruption { position, breach }),
            ..
        }) => {
            say!(
                "BROKEN at position {position}: {}: {breach} ({what})",
                breach.code()
            );
            2
        }
        Outcome::Undecodable { at, reason } => {
            say!("BROKEN at {at}: {UNDECODABLE}: {reason} ({what})");
            2
        }
    };
    if let Outcome::Report(r) = outcome {
        report_redactions(&r.redacted, r.corruption.is_some());
    }
    code
}

/// The redacted events passed: intact by the chain (their digest stays), listed all the same.
fn report_redactions(redacted: &citydb_log::chain::Redactions, broken: bool) {
    let before = if broken { " before the breach" } else { "" };
    if redacted.count == 0 {
        say!("redacted: none{before}");
        return;
    }
    let listed: Vec<String> = redacted
        .positions
        .iter()
        .take(REDACTIONS_PRINTED)
        .map(u64::to_string)
        .collect();
    let more = redacted.count - listed.len() as u64;
    let more = if more > 0 {
        format!(
            " and {more} more (--format json lists the first {})",
            citydb_log::chain::REDACTIONS_LISTED
        )
    } else {
        String::new()
    };
    say!(
        "redacted: {} events{before}, at positions {}{more} (their data is gone; their digests are still chained)",
        redacted.count,
        listed.join(", ")
    );
}

/// The findings of a verification in the `--format json` report.
pub fn summary(outcome: &Outcome, verified: &'static str, source: &str) -> Summary {
    let base = Summary {
        verified: Some(verified),
        source: Some(source.to_owned()),
        ..Summary::new("verify")
    };
    match outcome {
        Outcome::Report(report) => Summary {
            events: Some(report.events),
            streams: Some(report.streams),
            head: report.head.as_ref().map(Into::into),
            reason: report
                .corruption
                .as_ref()
                .map(|c| format!("broken at position {}: {}", c.position, c.breach)),
            breach: report.corruption.as_ref().map(BreachSummary::from),
            redacted: Some(RedactedSummary::from(&report.redacted)),
            ..base
        },
        Outcome::Undecodable { at, reason } => Summary {
            reason: Some(format!("broken at {at}: cannot be decoded: {reason}")),
            breach: Some(BreachSummary {
                code: UNDECODABLE,
                position: match at {
                    Place::Position(p) => Some(*p),
                    Place::Line(_) => None,
                },
                line: match at {
                    Place::Line(n) => Some(*n),
                    Place::Position(_) => None,
                },
                message: format!("cannot be decoded: {reason}"),
                ..BreachSummary::default()
            }),
            ..base
        },
    }
}
