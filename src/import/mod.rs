//! `citydb import`: executes NDJSON command requests, one per line, in one of two ways.
//!
//! One line = one `CommandRequest` (see `citydb_registry::CommandRequest` for the shape). A
//! line that does not parse, or whose command is refused, is counted and reported with its
//! line number, code and reason; it never stops the import. Re-running an import adds
//! nothing: every line carries a command id, and an executed id answers from its marker.
//!
//! - [`careful`]: through the [`Registry`](citydb_registry::Registry), beside anything else
//!   that writes the store, several commands at a time in an order that gives the result of a
//!   one-at-a-time import.
//! - [`bulk`]: through the [`BulkRegistry`](citydb_registry::BulkRegistry), holding the store
//!   alone: one command after the other, decided on state kept in memory, written in large
//!   transactions. Same answers line for line (tested: `tests/bulk_import.rs`).
//!
//! Both read the file through [`Requests`] and report in an [`ImportSummary`].

pub mod bulk;
pub mod careful;

use std::collections::BinaryHeap;
use std::fmt;
use std::io::BufRead;

use anyhow::Context as _;

use citydb_registry::{CommandRequest, Executed, RegistryError};

use crate::lines::{Line, next_line};

pub use careful::import_lines;

/// How many rejections a summary keeps (with their reasons); the rest are only counted.
const KEPT_REJECTIONS: usize = 10_000;

/// Longest reason kept per rejection (bytes). A reason may quote the line (serde names an
/// unknown variant in full): without a bound, 10,000 kept rejections of 1 MiB lines would
/// hold 10 GB.
const KEPT_MESSAGE: usize = 500;

/// Longest import line read (bytes). A command's events are at most
/// [`citydb_log::DEFAULT_MAX_EVENT_SIZE`] each, and a command line holds less than its events;
/// a longer line is refused as `INVALID_INPUT` without being held in memory.
pub const MAX_LINE: usize = citydb_log::DEFAULT_MAX_EVENT_SIZE;

/// Default number of commands in flight at once.
pub const DEFAULT_JOBS: usize = 64;

/// How the import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Commands in flight at once (1 = strictly one after the other).
    pub jobs: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { jobs: DEFAULT_JOBS }
    }
}

/// One refused line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rejection {
    /// 1-based line number in the input.
    pub line: u64,
    /// `INVALID_INPUT` for a line that is not a command request, else the registry's code
    /// (`DUPLICATE_KEY`, `RECORD_NOT_FOUND`, …).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct ImportSummary {
    /// Non-blank lines read.
    pub lines: u64,
    pub accepted: u64,
    pub already_imported: u64,
    pub rejected: u64,
    /// The first [`KEPT_REJECTIONS`] rejections by line number, in line order.
    pub rejections: Vec<Rejection>,
    /// While importing: the kept rejections, the highest line on top.
    kept: BinaryHeap<Rejection>,
    /// Events appended by this run (the command markers included).
    pub events: u64,
    pub last_position: Option<u64>,
    /// Commands that read a stream they did not declare and were executed again in order.
    pub serialized: u64,
    /// Bytes of input read.
    pub bytes: u64,
}

/// A line as a command request. One UTF-8 check of the whole line, then `from_str`, whose
/// reader trusts it: `from_slice` checks every string by itself (a fifth of the parsing
/// thread's instructions in a bulk import at 1/100, docs/benchmarks.md, 2026-12-04). A line
/// that is not UTF-8 goes through `from_slice`, for its error; both give the same request and
/// the same errors otherwise.
fn parse_request(line: &[u8]) -> serde_json::Result<CommandRequest> {
    match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(line),
    }
}

impl ImportSummary {
    pub(crate) fn reject(
        &mut self,
        line: u64,
        code: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.rejected += 1;
        let mut message = message.into();
        if message.len() > KEPT_MESSAGE {
            let mut end = KEPT_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let rejection = Rejection {
            line,
            code: code.into(),
            message,
        };
        // Lines finish out of order: keep the lowest line numbers.
        self.kept.push(rejection);
        if self.kept.len() > KEPT_REJECTIONS {
            self.kept.pop();
        }
    }

    pub(crate) fn finish(mut self) -> Self {
        self.rejections = std::mem::take(&mut self.kept).into_sorted_vec();
        self
    }

    pub(crate) fn brief(&self) -> String {
        format!(
            "{} accepted, {} already imported, {} rejected",
            self.accepted, self.already_imported, self.rejected
        )
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lines: {}", self.lines, self.brief())?;
        if self.serialized > 0 {
            write!(
                f,
                "\n  {} command(s) read streams they did not declare and ran on their own",
                self.serialized
            )?;
        }
        for r in &self.rejections {
            write!(f, "\n  line {}: {}: {}", r.line, r.code, r.message)?;
        }
        let shown = self.rejections.len() as u64;
        if self.rejected > shown {
            write!(f, "\n  … and {} more", self.rejected - shown)?;
        }
        Ok(())
    }
}

/// The lines of an import file as command requests, in file order: blank lines are skipped,
/// a line over [`MAX_LINE`] bytes or one that is not a request is refused (`INVALID_INPUT`)
/// with its line number.
pub struct Requests<R> {
    reader: R,
    buf: Vec<u8>,
    /// Lines read so far (1-based number of the last one).
    pub number: u64,
    /// Bytes read so far.
    pub bytes: u64,
}

/// One non-blank line of an import file. Not boxed: one lives at a time.
#[allow(clippy::large_enum_variant)]
pub enum Request {
    Parsed { line: u64, request: CommandRequest },
    Refused { line: u64, message: String },
}

impl<R: BufRead> Requests<R> {
    pub fn new(reader: R) -> Self {
        Requests {
            reader,
            buf: Vec::with_capacity(4096),
            number: 0,
            bytes: 0,
        }
    }

    /// The next non-blank line; `None` at the end of the input.
    pub fn next_request(&mut self) -> anyhow::Result<Option<Request>> {
        loop {
            let read = next_line(&mut self.reader, &mut self.buf, MAX_LINE)
                .with_context(|| format!("cannot read line {}", self.number + 1))?;
            let Some(read) = read else { return Ok(None) };
            self.number += 1;
            let line = self.number;
            match read {
                Line::TooLong(n) => {
                    self.bytes += n as u64;
                    return Ok(Some(Request::Refused {
                        line,
                        message: format!("the line is {n} bytes long; at most {MAX_LINE} are read"),
                    }));
                }
                Line::Fits(n) => self.bytes += n as u64,
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(match parse_request(&self.buf) {
                Ok(request) => Request::Parsed { line, request },
                Err(e) => Request::Refused {
                    line,
                    message: e.to_string(),
                },
            }));
        }
    }
}

impl ImportSummary {
    /// Counts one line's outcome. `Err` only for a failure of the store: not the line's fault,
    /// and every later line would meet it too.
    pub(crate) fn record(
        &mut self,
        line: u64,
        result: Result<Executed, RegistryError>,
    ) -> Result<(), RegistryError> {
        match result {
            Ok(done) if done.already_executed => self.already_imported += 1,
            Ok(done) => {
                self.accepted += 1;
                if let (Some(first), Some(last)) = (done.first_position, done.last_position) {
                    self.events += last + 1 - first;
                    self.last_position = self.last_position.max(Some(last));
                }
            }
            Err(e) if is_store_failure(&e) => return Err(e),
            Err(e) => self.reject(line, e.code(), e.to_string()),
        }
        Ok(())
    }
}

/// A failure of the store rather than a refusal of the command.
pub(crate) fn is_store_failure(e: &RegistryError) -> bool {
    use citydb_log::LogError;
    matches!(
        e,
        RegistryError::Log(LogError::Storage(_) | LogError::Closed | LogError::CopyRefused { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one UTF-8 check of the line changes neither what a line reads as nor how a bad one
    /// is refused: every line gives what `from_slice` gives, message included.
    #[test]
    fn a_line_reads_as_from_slice_reads_it() {
        let good = r#"{"command_id":"22ed2420-9431-800c-8ce9-c7c8895e16d7","actor":{"id":"steward-1","role":"steward"},"context":{"reason":"Chuy\u1ec3n đổi"},"command":{"type":"RecordDeath","citizen":"22ed2420-9431-8001-baf7-6af2e76794d0","date":"2018-07-01"}}"#.as_bytes();
        let mut not_utf8 = good.to_vec();
        let at = not_utf8
            .iter()
            .position(|&b| b == 0xc4)
            .expect("a 2-byte character");
        not_utf8[at] = 0xff;
        let lines: [&[u8]; 5] = [
            good,
            &not_utf8,
            br#"{"command_id":"nope"}"#,
            br#"{"command_id":"22ed2420-9431-800c-8ce9-c7c8895e16d7","actor":{"id":"s","role":"steward"},"command":{"type":"Nope"}}"#,
            b"{\"command\": \"\xe1\xbb\"}",
        ];
        for line in lines {
            let ours = parse_request(line).map_err(|e| e.to_string());
            let slice = serde_json::from_slice::<CommandRequest>(line).map_err(|e| e.to_string());
            assert_eq!(ours, slice, "{}", String::from_utf8_lossy(line));
        }
        assert!(parse_request(good).is_ok());
        assert!(parse_request(&not_utf8).is_err());
    }

    #[test]
    fn keeps_the_lowest_rejections() {
        let mut s = ImportSummary::default();
        for line in (1..=KEPT_REJECTIONS as u64 + 10).rev() {
            s.reject(line, "X", "y");
        }
        let s = s.finish();
        assert_eq!(s.rejected, KEPT_REJECTIONS as u64 + 10);
        assert_eq!(s.rejections.len(), KEPT_REJECTIONS);
        assert!(
            s.rejections
                .iter()
                .all(|r| r.line <= KEPT_REJECTIONS as u64)
        );
        assert_eq!(s.rejections[0].line, 1);
    }

    #[test]
    fn a_reason_quoting_a_huge_line_is_cut() {
        let mut s = ImportSummary::default();
        let huge = format!("unknown variant `{}`", "ệ".repeat(100_000));
        s.reject(1, "INVALID_INPUT", huge);
        let s = s.finish();
        let kept = &s.rejections[0].message;
        assert!(
            kept.len() <= KEPT_MESSAGE + '…'.len_utf8(),
            "{}",
            kept.len()
        );
        assert!(kept.starts_with("unknown variant `ệ") && kept.ends_with('…'));
    }
}
