//! `citydb import`: executes NDJSON command requests through the registry, several at a time.
//!
//! One line = one `CommandRequest` (see `citydb_registry::CommandRequest` for the shape). A
//! line that does not parse, or whose command is refused, is counted and reported with its
//! line number, code and reason; it never stops the import. Re-running an import adds
//! nothing: every line carries a command id, and an executed id answers from its marker.
//!
//! # Concurrency, and why the result equals a one-at-a-time import
//!
//! Later lines may depend on earlier ones (a marriage on two registrations), so lines cannot
//! simply run in any order. Each command names the streams it reads (`Command::reads`: its
//! records, the records it references, the natural keys it claims), plus its own marker
//! stream and the record of an `expected` version. A line waits for the last earlier line
//! that names any of the same streams, so two lines sharing a stream run in file order, and
//! lines with nothing in common run concurrently (their appends share group commits, one
//! fsync for many commands). Two commands that touch disjoint streams commute, so the outcome
//! of every line is the one a sequential import would give.
//!
//! A few rules read streams known only from state (the spouse on a death, the new key of an
//! approved correction, the duplicate's key on a merge). Those command types are *barriers*:
//! they start once every earlier line is done, and no later line starts before they are done.
//! As a safety net, every command runs over a log wrapper that refuses a read of a stream the
//! command did not declare; such a command (a rule that gained a read since this list was
//! written) wrote nothing, and is executed again on its own once every earlier line is done.
//! The summary counts these; each is a prompt to add the command type to [`is_barrier`].

use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use async_trait::async_trait;
use tokio::sync::{Semaphore, watch};

use citydb_domain::{Command, Target};
use citydb_log::{
    AppendOutcome, Direction, EventLog, LogError, LogHead, RecordedEvent, StreamAppend, StreamId,
    VerifyReport,
};
use citydb_registry::{CommandRequest, Registry, RegistryError, command_stream, stream_of};

use crate::lines::{Line, next_line};
use crate::progress::Progress;

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

impl ImportSummary {
    fn reject(&mut self, line: u64, code: impl Into<String>, message: impl Into<String>) {
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

    fn finish(mut self) -> Self {
        self.rejections = std::mem::take(&mut self.kept).into_sorted_vec();
        self
    }

    fn brief(&self) -> String {
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

/// Command types whose rules read streams that `Command::reads` cannot name (they are known
/// only from the state): they run alone, after every earlier line and before any later one.
pub fn is_barrier(command: &Command) -> bool {
    matches!(
        command,
        Command::RecordDeath(_)
            | Command::MergeCitizens(_)
            | Command::CorrectRecord(_)
            | Command::ProposeCorrection(_)
            | Command::ApproveCorrection(_)
            | Command::RejectCorrection(_)
            | Command::WithdrawCorrection(_)
    )
}

/// The streams a request declares: the command's reads, the record of its expected version,
/// and its marker. `None` if one cannot be named (then the request runs as a barrier).
fn declared_streams(request: &CommandRequest) -> Option<HashSet<StreamId>> {
    let reads = request.command.reads();
    let targets = reads
        .records
        .iter()
        .map(|id| Target::Record(*id))
        .chain(reads.keys.iter().map(|key| Target::Key(*key)))
        .chain(request.expected.map(|e| Target::Record(e.record)));
    let mut streams = HashSet::new();
    for target in targets {
        streams.insert(stream_of(&target).ok()?);
    }
    streams.insert(command_stream(request.command_id).ok()?);
    Some(streams)
}

/// Which lines are done: every sequence number below `next` is, plus the ones in `finished`.
struct Completion {
    next: u64,
    finished: BTreeSet<u64>,
}

struct Shared {
    log: Arc<dyn EventLog>,
    summary: Mutex<ImportSummary>,
    completion: Mutex<Completion>,
    /// Every command with a sequence number below this value is done.
    prefix: watch::Sender<u64>,
    fatal: Mutex<Option<RegistryError>>,
    stop: AtomicBool,
}

impl Shared {
    fn complete(&self, seq: u64) {
        let mut c = self.completion.lock().unwrap_or_else(|p| p.into_inner());
        c.finished.insert(seq);
        let before = c.next;
        loop {
            let next = c.next;
            if !c.finished.remove(&next) {
                break;
            }
            c.next = next + 1;
        }
        if c.next != before {
            let next = c.next;
            self.prefix.send_if_modified(|p| {
                let changed = *p != next;
                *p = next;
                changed
            });
        }
    }

    /// Returns once every command before `seq` is done.
    async fn wait_for_prefix(&self, seq: u64) {
        let mut rx = self.prefix.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|p| *p >= seq).await;
    }

    fn summary(&self) -> std::sync::MutexGuard<'_, ImportSummary> {
        self.summary.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, line: u64, result: Result<citydb_registry::Executed, RegistryError>) {
        match result {
            Ok(done) if done.already_executed => self.summary().already_imported += 1,
            Ok(done) => {
                let mut s = self.summary();
                s.accepted += 1;
                if let (Some(first), Some(last)) = (done.first_position, done.last_position) {
                    s.events += last + 1 - first;
                    s.last_position = s.last_position.max(Some(last));
                }
            }
            Err(e @ RegistryError::Log(LogError::Storage(_) | LogError::Closed)) => {
                // The store failed: not this line's fault, and the next lines would fail too.
                self.stop.store(true, Ordering::SeqCst);
                let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
                if fatal.is_none() {
                    *fatal = Some(e);
                }
            }
            Err(e) => self.summary().reject(line, e.code(), e.to_string()),
        }
    }
}

/// Executes every line of `reader` (see the module documentation for the order). `progress`
/// counts the lines read (every 64th line: no per-line cost).
pub async fn import_lines(
    log: Arc<dyn EventLog>,
    mut reader: impl BufRead,
    options: &ImportOptions,
    progress: &Progress,
) -> anyhow::Result<ImportSummary> {
    let jobs = options.jobs.max(1);
    let (prefix, _) = watch::channel(0u64);
    let shared = Arc::new(Shared {
        log,
        summary: Mutex::new(ImportSummary::default()),
        completion: Mutex::new(Completion {
            next: 0,
            finished: BTreeSet::new(),
        }),
        prefix,
        fatal: Mutex::new(None),
        stop: AtomicBool::new(false),
    });
    let permits = Arc::new(Semaphore::new(jobs));
    // For each stream, the latest line naming it; its receiver errors once that line is done.
    let mut last_toucher: HashMap<StreamId, watch::Receiver<()>> = HashMap::new();
    let mut buf = Vec::with_capacity(4096);
    let mut number: u64 = 0;
    let mut seq: u64 = 0;
    let mut bytes: u64 = 0;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let read = next_line(&mut reader, &mut buf, MAX_LINE)
            .with_context(|| format!("cannot read line {}", number + 1))?;
        let Some(read) = read else { break };
        number += 1;
        let (n, fits) = match read {
            Line::Fits(n) => (n, true),
            Line::TooLong(n) => (n, false),
        };
        bytes += n as u64;
        if number.is_multiple_of(64) {
            progress.read(number, bytes);
            progress.set_message(shared.summary().brief());
        }
        if !fits {
            shared.summary().lines += 1;
            shared.summary().reject(
                number,
                "INVALID_INPUT",
                format!("the line is {n} bytes long; at most {MAX_LINE} are read"),
            );
            continue;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        shared.summary().lines += 1;
        let request: CommandRequest = match serde_json::from_slice(&buf) {
            Ok(r) => r,
            Err(e) => {
                shared
                    .summary()
                    .reject(number, "INVALID_INPUT", e.to_string());
                continue;
            }
        };
        let line = number;
        let this = seq;
        seq += 1;

        let declared = declared_streams(&request);
        let Some(declared) = declared.filter(|_| !is_barrier(&request.command)) else {
            // A barrier: alone, after everything before it.
            shared.wait_for_prefix(this).await;
            let result = Registry::new(shared.log.clone()).execute(request).await;
            shared.record(line, result);
            shared.complete(this);
            last_toucher.clear();
            continue;
        };

        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .context("the import's scheduler closed")?;
        let (done_tx, done_rx) = watch::channel(());
        let mut deps: Vec<watch::Receiver<()>> = Vec::new();
        for stream in &declared {
            if let Some(before) = last_toucher.insert(stream.clone(), done_rx.clone())
                && before.has_changed().is_ok()
                && !deps.iter().any(|d| d.same_channel(&before))
            {
                deps.push(before);
            }
        }
        if this.is_multiple_of(4096) {
            // Forget lines that are done, so the map holds only what is in flight.
            last_toucher.retain(|_, rx| rx.has_changed().is_ok());
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            for mut dep in deps {
                // Errors when the line it belongs to is done (its sender dropped).
                while dep.changed().await.is_ok() {}
            }
            if !shared.stop.load(Ordering::SeqCst) {
                let tracked = Arc::new(Declared::new(shared.log.clone(), declared));
                let mut result = Registry::new(tracked.clone())
                    .execute(request.clone())
                    .await;
                if tracked.escaped() {
                    // Refused before anything was appended: run again in file order.
                    tracing::warn!(
                        line,
                        command = request.command.command_type(),
                        "the command read a stream it does not declare; executing it in order"
                    );
                    shared.wait_for_prefix(this).await;
                    result = Registry::new(shared.log.clone()).execute(request).await;
                    shared.summary().serialized += 1;
                }
                shared.record(line, result);
            }
            shared.complete(this);
            drop(done_tx);
            drop(permit);
        });
    }
    // Every task holds a permit until it is done.
    let _all = permits
        .acquire_many(u32::try_from(jobs).unwrap_or(u32::MAX))
        .await
        .context("the import's scheduler closed")?;
    progress.read(number, bytes);
    progress.set_message(shared.summary().brief());
    if let Some(e) = shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(anyhow::Error::new(e).context(format!(
            "the import stopped at line {number}: the store failed (lines already accepted stay; re-run to continue)"
        )));
    }
    let mut summary = std::mem::take(&mut *shared.summary());
    summary.bytes = bytes;
    Ok(summary.finish())
}

/// The log as one command sees it: reads of streams the command did not declare are refused
/// (and noted), everything else goes through.
struct Declared {
    inner: Arc<dyn EventLog>,
    streams: HashSet<StreamId>,
    escaped: AtomicBool,
}

impl Declared {
    fn new(inner: Arc<dyn EventLog>, streams: HashSet<StreamId>) -> Self {
        Declared {
            inner,
            streams,
            escaped: AtomicBool::new(false),
        }
    }

    fn escaped(&self) -> bool {
        self.escaped.load(Ordering::SeqCst)
    }

    fn check(&self, stream: &StreamId) -> Result<(), LogError> {
        if self.streams.contains(stream) {
            Ok(())
        } else {
            self.escaped.store(true, Ordering::SeqCst);
            Err(LogError::InvalidAppend {
                reason: format!("{stream} is not among the command's declared reads"),
            })
        }
    }
}

#[async_trait]
impl EventLog for Declared {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        for append in &appends {
            self.check(&append.stream)?;
        }
        self.inner.append(appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.check(stream)?;
        self.inner.read_stream(stream, from, direction, max).await
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_all(from, max).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        self.check(stream)?;
        self.inner.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.watch_head()
    }

    async fn verify_log(&self, expected_head: Option<LogHead>) -> Result<VerifyReport, LogError> {
        self.inner.verify_log(expected_head).await
    }

    async fn verify_stream(&self, stream: &StreamId) -> Result<VerifyReport, LogError> {
        self.inner.verify_stream(stream).await
    }

    async fn copy_in(&self, events: Vec<RecordedEvent>) -> Result<LogHead, LogError> {
        self.inner.copy_in(events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
