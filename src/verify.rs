//! `citydb verify`: the hash chain of a store, of one stream, or of an export file.
//!
//! A store's whole log is verified by the store itself ([`EventLog::verify_log_counting`]:
//! consecutive position ranges verified concurrently, joined in order — the same result as one
//! sequential pass — with memory bounded however many streams the log has), with a progress
//! bar. An export file is verified offline, line by line, with the same verifier.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

use crate::out::say;
use indicatif::ProgressBar;

use citydb_log::chain::LogVerifier;
use citydb_log::{Corruption, EventLog, LogError, LogHead, VerifyReport};

use crate::export::parse_line;
use crate::lines::{Line, next_line};

/// Why a verification ended without a verdict on the chain.
pub enum Outcome {
    /// The chain was read to the end (or to the first breach).
    Report(VerifyReport),
    /// A row or line could not even be decoded: that is a broken log too.
    Undecodable { at: String, reason: String },
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
            at: format!("position {position}"),
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

/// Verifies an export file (either flavour), offline.
pub fn verify_file(
    reader: impl BufRead,
    expected_head: Option<LogHead>,
    progress: &ProgressBar,
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
    loop {
        let read = next_line(&mut reader, &mut buf, MAX_EXPORT_LINE)
            .with_context(|| format!("cannot read line {}", number + 1))?;
        let n = match read {
            None => break,
            Some(Line::Fits(n)) => n,
            Some(Line::TooLong(n)) => {
                return Ok(Outcome::Undecodable {
                    at: format!("line {}", number + 1),
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
        let event = match parse_line(&buf) {
            Ok(event) => event,
            Err(e) => {
                return Ok(Outcome::Undecodable {
                    at: format!("line {number}"),
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

/// Prints the verdict and gives the exit code: 0 intact, 2 broken. `whole_log`: the head
/// printed is the log's (one stream's last event is not a head to check a copy against).
pub fn report(outcome: &Outcome, what: &str, whole_log: bool) -> u8 {
    match outcome {
        Outcome::Report(VerifyReport {
            events,
            streams,
            head,
            corruption: None,
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
            say!("BROKEN at position {position}: {breach} ({what})");
            2
        }
        Outcome::Undecodable { at, reason } => {
            say!("BROKEN at {at}: cannot be decoded: {reason} ({what})");
            2
        }
    }
}
