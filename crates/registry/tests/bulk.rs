//! The bulk handler answers exactly as the careful one run one request after the other: the
//! same answers (results, refusals and their codes), the same events with the same data and
//! metadata in every stream — on an empty store, and continuing a store that holds a prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use citydb_fixtures::{FixtureConfig, write_ndjson};
use citydb_log::backend::plan::Tip;
use citydb_log::bulk::{BulkSink, CopySink};
use citydb_log::memory::MemoryLog;
use citydb_log::{EventLog, LogError, RecordedEvent, StreamId};
use citydb_registry::{
    BulkRegistry, CommandRequest, ExpectedRecordVersion, Registry, RegistryError,
};
use uuid::Uuid;

/// One answer, without what may differ between two runs (nothing, for sequential runs: the
/// positions are the same too).
#[derive(Debug, PartialEq)]
enum Answer {
    Done {
        already: bool,
        changes: String,
        warnings: String,
        positions: (Option<u64>, Option<u64>),
    },
    Refused {
        code: String,
        message: String,
    },
}

fn answer(result: Result<citydb_registry::Executed, RegistryError>) -> Answer {
    match result {
        Ok(done) => Answer::Done {
            already: done.already_executed,
            changes: serde_json::to_string(&done.changes).unwrap(),
            warnings: serde_json::to_string(&done.warnings).unwrap(),
            positions: (done.first_position, done.last_position),
        },
        Err(e) => Answer::Refused {
            code: e.code().to_owned(),
            message: e.to_string(),
        },
    }
}

/// Every stream's events as (version, type, schema version, data, metadata).
type Streams = BTreeMap<String, Vec<(u64, String, u32, String, String)>>;

async fn streams(log: &MemoryLog) -> Streams {
    let mut out = Streams::new();
    let mut from = 0;
    loop {
        let batch = log.read_all(from, 1000).await.unwrap();
        let Some(last) = batch.last() else {
            return out;
        };
        from = last.position + 1;
        for e in batch {
            out.entry(e.stream_id.to_string()).or_default().push((
                e.stream_version,
                e.event_type,
                e.schema_version,
                String::from_utf8(e.data).unwrap(),
                String::from_utf8(e.metadata).unwrap(),
            ));
        }
    }
}

/// A small city's import file as requests, with hostile lines mixed in: a re-sent request, a
/// command id reused for another command, a stale expected version, a registration of a PIN
/// already held, a command on a record that does not exist, and an over-long reason.
fn requests() -> Vec<CommandRequest> {
    let mut file = Vec::new();
    write_ndjson(&FixtureConfig::scaled(300, 7), &mut file).unwrap();
    let mut requests = parse(&file);
    let n = requests.len();
    assert!(n > 1000, "the fixture is too small to mean anything: {n}");
    let first = requests[0].clone();
    let mut reused = requests[5].clone();
    reused.command = requests[6].command.clone();
    let mut stale = requests[n / 2].clone();
    stale.command_id = Uuid::now_v7();
    let record = *stale.command.reads().records.iter().next().unwrap();
    stale.expected = Some(ExpectedRecordVersion { record, version: 0 });
    let mut duplicate_pin = first.clone();
    duplicate_pin.command_id = Uuid::now_v7();
    let mut unknown = requests[n / 3].clone();
    unknown.command_id = Uuid::now_v7();
    let mut json = serde_json::to_value(&unknown).unwrap();
    let target = *unknown.command.reads().records.iter().next().unwrap();
    replace_uuids(&mut json, &target.uuid().to_string());
    let unknown: CommandRequest = serde_json::from_value(json).unwrap();
    let mut too_long = requests[10].clone();
    too_long.command_id = Uuid::now_v7();
    too_long.context.reason = Some("x".repeat(100_000));
    requests.insert(n / 4, first);
    requests.insert(n / 4 + 1, reused);
    requests.insert(n / 2 + 10, stale);
    requests.push(duplicate_pin);
    requests.push(unknown);
    requests.push(too_long);
    requests
}

/// An NDJSON import file's requests.
fn parse(file: &[u8]) -> Vec<CommandRequest> {
    file.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// Points every mention of `uuid` at a record that does not exist.
fn replace_uuids(value: &mut serde_json::Value, uuid: &str) {
    match value {
        serde_json::Value::String(s) if s == uuid => {
            *s = "0193e3a4-0000-7000-8000-0000000dead0".into();
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| replace_uuids(v, uuid)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| replace_uuids(v, uuid)),
        _ => {}
    }
}

async fn careful(log: &MemoryLog, requests: &[CommandRequest]) -> Vec<Answer> {
    let registry = Registry::new(Arc::new(log.clone()));
    let mut answers = Vec::new();
    for request in requests {
        answers.push(answer(registry.execute(request.clone()).await));
    }
    answers
}

async fn bulk(log: &MemoryLog, requests: &[CommandRequest]) -> Vec<Answer> {
    bulk_holding(log, requests, citydb_registry::DEFAULT_STATES_IN_MEMORY).await
}

/// A bulk import holding at most `states` record states in memory.
async fn bulk_holding(log: &MemoryLog, requests: &[CommandRequest], states: usize) -> Vec<Answer> {
    let sink = CopySink::open(Arc::new(log.clone())).await.unwrap();
    let mut registry = BulkRegistry::new(Box::new(sink), citydb_log::DEFAULT_MAX_EVENT_SIZE)
        .with_states_in_memory(states);
    let mut answers = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        answers.push(answer(registry.execute(request.clone()).await));
        if i % 500 == 499 {
            registry.commit().await.unwrap();
        }
    }
    if states < 100 {
        assert!(
            registry.bytes_set_aside() > 0,
            "a budget of {states} states set nothing aside"
        );
    }
    registry.finish().await.unwrap();
    answers
}

fn refusal_codes(answers: &[Answer]) -> Vec<&str> {
    answers
        .iter()
        .filter_map(|a| match a {
            Answer::Refused { code, .. } => Some(code.as_str()),
            Answer::Done { .. } => None,
        })
        .collect()
}

/// Every request got the same answer both ways.
fn assert_same_answers(requests: &[CommandRequest], expected: &[Answer], got: &[Answer]) {
    assert_eq!(expected.len(), got.len());
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        assert_eq!(
            e,
            g,
            "request {i}: {:?}",
            requests[i].command.command_type()
        );
    }
}

#[tokio::test]
async fn bulk_answers_and_writes_what_careful_does() {
    let requests = requests();
    let (careful_log, bulk_log) = (MemoryLog::new(), MemoryLog::new());
    let expected = careful(&careful_log, &requests).await;
    let got = bulk(&bulk_log, &requests).await;
    // The hostile lines are refused (or answered from their marker), not all accepted.
    let codes = refusal_codes(&expected);
    for code in [
        "COMMAND_ID_REUSED",
        "STALE_VERSION",
        "RECORD_NOT_FOUND",
        "TEXT_TOO_LONG",
    ] {
        assert!(codes.contains(&code), "{code} not among {codes:?}");
    }
    assert!(
        expected
            .iter()
            .any(|a| matches!(a, Answer::Done { already: true, .. }))
    );
    assert_same_answers(&requests, &expected, &got);
    assert_eq!(streams(&careful_log).await, streams(&bulk_log).await);
    let report = bulk_log.verify_log(None).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
}

/// The same, with record states set aside on disk past 5 in memory: every state a command
/// needs comes back from the temporary file, changed ones written again.
#[tokio::test]
async fn bulk_with_states_set_aside_answers_and_writes_what_careful_does() {
    let requests = requests();
    let (careful_log, bulk_log) = (MemoryLog::new(), MemoryLog::new());
    let expected = careful(&careful_log, &requests).await;
    let got = bulk_holding(&bulk_log, &requests, 5).await;
    assert_same_answers(&requests, &expected, &got);
    assert_eq!(streams(&careful_log).await, streams(&bulk_log).await);
}

#[tokio::test]
async fn bulk_continues_a_store_that_holds_a_prefix() {
    let requests = requests();
    let (careful_log, bulk_log) = (MemoryLog::new(), MemoryLog::new());
    let expected = careful(&careful_log, &requests).await;
    // A kill after the first third: the store holds those commands; the same file is run
    // again from the start.
    let third = requests.len() / 3;
    let mut got = careful(&bulk_log, &requests[..third]).await;
    let rerun = bulk(&bulk_log, &requests).await;
    for (i, answer) in rerun[..third].iter().enumerate() {
        match (&expected[i], answer) {
            (
                Answer::Done { changes, .. },
                Answer::Done {
                    already,
                    changes: again,
                    ..
                },
            ) => {
                assert!(*already, "request {i} was executed twice");
                assert_eq!(changes, again);
            }
            (e, g) => assert_eq!(e, g, "request {i}"),
        }
    }
    got.extend(rerun.into_iter().skip(third));
    assert_eq!(expected, got);
    assert_eq!(streams(&careful_log).await, streams(&bulk_log).await);
}

/// A sink whose writes fail from the start.
struct FailingSink;

#[async_trait]
impl BulkSink for FailingSink {
    fn tip(&self) -> Tip {
        Tip::EMPTY
    }
    async fn read_stream(&mut self, _: &StreamId) -> Result<Vec<RecordedEvent>, LogError> {
        Ok(Vec::new())
    }
    async fn read_event(&mut self, _: u64) -> Result<Option<RecordedEvent>, LogError> {
        Ok(None)
    }
    async fn write(&mut self, _: Vec<RecordedEvent>) -> Result<(), LogError> {
        Err(LogError::storage(citydb_log::FaultKind::Full, "disk full"))
    }
    async fn commit(&mut self) -> Result<(), LogError> {
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<(), LogError> {
        Ok(())
    }
}

#[tokio::test]
async fn nothing_is_decided_after_the_sink_failed() {
    let requests = requests();
    let mut registry = BulkRegistry::new(Box::new(FailingSink), citydb_log::DEFAULT_MAX_EVENT_SIZE);
    registry.execute(requests[0].clone()).await.unwrap();
    let failed = registry.commit().await.unwrap_err();
    assert_eq!(failed.code(), "STORAGE_UNAVAILABLE");
    // The memory is ahead of the store now: every later request is refused, none decided.
    let next = registry.execute(requests[1].clone()).await.unwrap_err();
    assert!(
        matches!(next, RegistryError::Log(LogError::Closed)),
        "{next:?}"
    );
    assert!(registry.finish().await.is_err());
}

/// A log that counts the streams read from it, lists its streams only when `lists`, and
/// refuses every copy when `refuses_copies` (a disk that is full).
struct Counted {
    log: MemoryLog,
    lists: bool,
    refuses_copies: bool,
    reads: std::sync::atomic::AtomicUsize,
}

impl Counted {
    fn new(log: MemoryLog, lists: bool, refuses_copies: bool) -> Arc<Counted> {
        Arc::new(Counted {
            log,
            lists,
            refuses_copies,
            reads: Default::default(),
        })
    }
}

#[async_trait]
impl EventLog for Counted {
    async fn append(
        &self,
        appends: Vec<citydb_log::StreamAppend>,
    ) -> Result<citydb_log::AppendOutcome, LogError> {
        self.log.append(appends).await
    }
    async fn copy_in(&self, events: Vec<RecordedEvent>) -> Result<citydb_log::LogHead, LogError> {
        if self.refuses_copies {
            return Err(LogError::storage(citydb_log::FaultKind::Full, "disk full"));
        }
        self.log.copy_in(events).await
    }
    async fn held_streams(&self) -> Result<Option<citydb_log::bulk::StreamFilter>, LogError> {
        if self.lists {
            self.log.held_streams().await
        } else {
            Ok(None)
        }
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: citydb_log::Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.log.read_stream(stream, from, direction, max).await
    }
    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.log.read_all(from, max).await
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        self.log.stream_version(stream).await
    }
    async fn head(&self) -> Result<Option<citydb_log::LogHead>, LogError> {
        self.log.head().await
    }
    fn watch_head(&self) -> tokio::sync::watch::Receiver<Option<u64>> {
        self.log.watch_head()
    }
}

/// A file of new records bulk-imported through [`CopySink`] into a log that holds a city asks
/// the log about almost none of its streams when the log lists the ones it holds (PostgreSQL
/// does): each question is a server round trip, and a flush of the rows gathered for one copy.
#[tokio::test]
async fn a_file_of_new_records_asks_a_listing_log_about_almost_none_of_its_streams() {
    let held = FixtureConfig::scaled(300, 7);
    let (mut city, mut beside) = (Vec::new(), Vec::new());
    write_ndjson(&held, &mut city).unwrap();
    let generator =
        citydb_fixtures::try_generate_beside(&FixtureConfig::scaled(100, 8), &held).unwrap();
    citydb_fixtures::write_lines(generator, &mut beside).unwrap();
    let beside = parse(&beside);
    let base = MemoryLog::new();
    bulk(&base, &parse(&city)).await;
    let mut reads = Vec::new();
    for lists in [true, false] {
        let log = MemoryLog::new();
        log.copy_in(base.read_all(0, usize::MAX).await.unwrap())
            .await
            .unwrap();
        let counted = Counted::new(log, lists, false);
        let sink = CopySink::open(counted.clone()).await.unwrap();
        let mut registry = BulkRegistry::new(Box::new(sink), citydb_log::DEFAULT_MAX_EVENT_SIZE);
        for request in &beside {
            let answer = answer(registry.execute(request.clone()).await);
            assert!(
                matches!(answer, Answer::Done { already: false, .. }),
                "{answer:?}"
            );
        }
        registry.finish().await.unwrap();
        reads.push(counted.reads.load(std::sync::atomic::Ordering::Relaxed));
    }
    let lines = beside.len();
    assert!(lines > 300, "{lines} lines");
    // Listed: only the filter's rare false "maybe"s. Not listed: every command id's marker and
    // every record a line names.
    assert!(
        reads[0] <= lines / 100,
        "{} reads for {lines} lines",
        reads[0]
    );
    assert!(reads[1] >= lines, "{} reads for {lines} lines", reads[1]);
}

/// `CopySink` copies one batch while the importer decides the next: a copy that fails in
/// flight is the answer of the next call that waits for it, the importer decides nothing
/// after it, and nothing of the failed batches is stored.
#[tokio::test]
async fn a_copy_that_fails_in_flight_stops_the_import() {
    let mut file = Vec::new();
    write_ndjson(&FixtureConfig::scaled(3000, 9), &mut file).unwrap();
    let requests = parse(&file);
    let counted = Counted::new(MemoryLog::new(), true, true);
    let sink = CopySink::open(counted.clone()).await.unwrap();
    let mut registry = BulkRegistry::new(Box::new(sink), citydb_log::DEFAULT_MAX_EVENT_SIZE);
    let mut lines = requests.iter().cloned();
    let failed_at = loop {
        let Some(request) = lines.next() else {
            panic!("{} lines decided and no copy failed", requests.len());
        };
        if let Err(e) = registry.execute(request).await {
            assert!(
                matches!(&e, RegistryError::Log(LogError::Storage(f)) if f.kind == citydb_log::FaultKind::Full),
                "{e:?}"
            );
            break requests.len() - lines.len();
        }
    };
    // Failed before the end of the file: the failure came back from a copy in flight.
    assert!(failed_at < requests.len(), "failed at line {failed_at}");
    let next = registry
        .execute(requests[failed_at].clone())
        .await
        .unwrap_err();
    assert!(
        matches!(next, RegistryError::Log(LogError::Closed)),
        "{next:?}"
    );
    assert!(registry.finish().await.is_err());
    assert_eq!(counted.log.head().await.unwrap(), None);
}
