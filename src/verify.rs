//! `citydb verify`: the hash chain of a store, of one stream, or of an export file.
//!
//! A store's whole log is read through the [`EventLog`] trait in consecutive position ranges
//! verified concurrently, each by its own [`LogVerifier`] segment, joined in order
//! (`LogVerifier::join` checks the seams) — the same result as one sequential pass, with a
//! progress bar. An export file is verified offline, line by line, with the same verifier.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

use crate::out::say;
use indicatif::ProgressBar;

use citydb_log::chain::LogVerifier;
use citydb_log::{Corruption, EventLog, LogError, LogHead, READ_BATCH, VerifyReport};

use crate::export::{parse_line, view_of};
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

/// Verifies the whole log, `segments` ranges at a time.
pub async fn verify_log(
    log: Arc<dyn EventLog>,
    expected_head: Option<LogHead>,
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    let Some(head) = log.head().await? else {
        return Ok(Outcome::Report(LogVerifier::new(expected_head).finish()));
    };
    let total = head.position + 1;
    progress.set_length(total);
    let segments = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4) as u64;
    let segments = if total < 10_000 {
        1
    } else {
        segments.min(total)
    };
    let step = total.div_ceil(segments);
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for k in 0..segments {
        let (from, to) = (k * step, ((k + 1) * step).min(total));
        let log = log.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            verify_range(log, from, to, expected_head, &done).await
        }));
    }
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
    let mut joined: Option<LogVerifier> = None;
    let mut undecodable = None;
    let mut tasks = tasks.into_iter();
    for task in tasks.by_ref() {
        match task.await.context("a verification task failed")? {
            Ok(segment) => {
                joined = Some(match joined {
                    None => segment,
                    Some(before) => before.join(segment),
                });
            }
            Err(LogError::Corrupted { position, reason }) => {
                // Everything before this segment is joined; the later ones do not matter.
                undecodable = Some((position, reason));
                break;
            }
            Err(e) => {
                ticker.abort();
                return Err(e.into());
            }
        }
    }
    for task in tasks {
        task.abort();
    }
    ticker.abort();
    progress.set_position(done.load(Ordering::Relaxed));
    let report = joined
        .unwrap_or_else(|| LogVerifier::new(expected_head))
        .finish();
    match undecodable {
        // A breach in an earlier segment comes first.
        Some((position, reason)) if report.corruption.is_none() => Ok(Outcome::Undecodable {
            at: format!("position {position}"),
            reason,
        }),
        _ => Ok(Outcome::Report(report)),
    }
}

/// Verifies positions `from..to` as one segment.
async fn verify_range(
    log: Arc<dyn EventLog>,
    from: u64,
    to: u64,
    expected_head: Option<LogHead>,
    done: &AtomicU64,
) -> Result<LogVerifier, LogError> {
    let mut verifier = LogVerifier::segment(from, expected_head);
    let mut next = from;
    while next < to {
        let want = usize::try_from(to - next)
            .unwrap_or(usize::MAX)
            .min(READ_BATCH);
        let batch = log.read_all(next, want).await?;
        if batch.is_empty() {
            break;
        }
        // Hashed together (`LogVerifier::check_views`): several times faster than one by one.
        let views: Vec<_> = batch
            .iter()
            .take_while(|e| e.position < to)
            .map(view_of)
            .collect();
        if verifier.check_views(&views).is_err() {
            return Ok(verifier);
        }
        done.fetch_add(views.len() as u64, Ordering::Relaxed);
        match views.last() {
            Some(last) if views.len() == batch.len() => next = last.envelope.position + 1,
            // The batch ran past this segment.
            _ => return Ok(verifier),
        }
    }
    Ok(verifier)
}

/// Longest export line read (bytes): an event's data and metadata are at most
/// [`citydb_log::DEFAULT_MAX_EVENT_SIZE`] together, and written into a line they grow at most
/// sixfold (a control character becomes `\u00XX`), plus the fixed fields.
pub const MAX_EXPORT_LINE: usize = 6 * citydb_log::DEFAULT_MAX_EVENT_SIZE + 4096;

/// Verifies an export file (either flavour), offline.
pub fn verify_file(
    reader: impl BufRead,
    expected_head: Option<LogHead>,
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    let mut verifier = LogVerifier::new(expected_head);
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
    Ok(Outcome::Report(verifier.finish()))
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
