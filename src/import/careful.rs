//! The careful import: command requests executed through the [`Registry`], several at a time,
//! beside anything else that writes the store (a running server).
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

use std::collections::{BTreeSet, HashMap, HashSet};
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

use super::{ImportOptions, ImportSummary, Request, Requests};
use crate::progress::Progress;

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
        if let Err(e) = self.summary().record(line, result) {
            // The store failed: not this line's fault, and the next lines would fail too.
            self.stop.store(true, Ordering::SeqCst);
            let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
            if fatal.is_none() {
                *fatal = Some(e);
            }
        }
    }
}

/// Executes every line of `reader` (see the module documentation for the order). `progress`
/// counts the lines read (every 64th line: no per-line cost).
pub async fn import_lines(
    log: Arc<dyn EventLog>,
    reader: impl BufRead,
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
    let mut requests = Requests::new(reader);
    let mut seq: u64 = 0;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(next) = requests.next_request()? else {
            break;
        };
        shared.summary().lines += 1;
        if requests.number.is_multiple_of(64) {
            progress.read(requests.number, requests.bytes);
            progress.set_message(shared.summary().brief());
        }
        let (line, request) = match next {
            Request::Parsed { line, request } => (line, request),
            Request::Refused { line, message } => {
                shared.summary().reject(line, "INVALID_INPUT", message);
                continue;
            }
        };
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
    progress.read(requests.number, requests.bytes);
    progress.set_message(shared.summary().brief());
    if let Some(e) = shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(anyhow::Error::new(e).context(format!(
            "the import stopped at line {}: the store failed (lines already accepted stay; re-run to continue)",
            requests.number
        )));
    }
    let mut summary = std::mem::take(&mut *shared.summary());
    summary.bytes = requests.bytes;
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

    async fn read_stream_to_end(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.check(stream)?;
        self.inner.read_stream_to_end(stream, from).await
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
