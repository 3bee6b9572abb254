//! Shared fixtures: a real SQLite log in a tempdir (or, where a test needs only a log, the
//! in-memory one), a registry on it, command builders, and the from-scratch replay check.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use citydb_domain::business::*;
use citydb_domain::citizen::*;
use citydb_domain::parcel::*;
use citydb_domain::*;
use citydb_log::memory::MemoryLog;
use citydb_log::{
    AppendOutcome, Direction, EventLog, LogError, LogHead, RecordedEvent, StreamAppend, StreamId,
};
use citydb_registry::{
    COMMAND_EXECUTED, CommandExecuted, CommandRequest, Executed, Registry, RegistryError, decode,
    fold_key, fold_record,
};
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};
use tempfile::TempDir;
use tokio::sync::watch;
use uuid::Uuid;

pub struct Env {
    pub log: Arc<dyn EventLog>,
    pub registry: Registry,
    // Last: the log must close before its directory goes. `None`: the log is in memory.
    pub dir: Option<TempDir>,
}

pub fn open() -> Env {
    open_with(Durability::Full)
}

/// The in-memory log: for the property test, which opens many logs and is about the
/// registry's replay, not about a store.
pub fn open_fast() -> Env {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    Env {
        registry: Registry::new(log.clone()),
        log,
        dir: None,
    }
}

fn open_with(durability: Durability) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SqliteConfig {
        durability,
        ..SqliteConfig::default()
    };
    let log: Arc<dyn EventLog> =
        Arc::new(SqliteLog::open(dir.path().join("log.db"), config).expect("open log"));
    Env {
        registry: Registry::new(log.clone()),
        log,
        dir: Some(dir),
    }
}

impl Env {
    pub async fn run(&self, command: Command, actor: &Actor) -> Result<Executed, RegistryError> {
        self.registry
            .execute(CommandRequest::new(Uuid::now_v7(), command, actor.clone()))
            .await
    }

    pub async fn ok(&self, command: Command) -> Executed {
        self.ok_by(command, &steward()).await
    }

    pub async fn ok_by(&self, command: Command, actor: &Actor) -> Executed {
        let kind = command.command_type();
        match self.run(command, actor).await {
            Ok(done) => {
                assert!(!done.already_executed);
                done
            }
            Err(e) => panic!("{kind} refused: {e:?}"),
        }
    }

    pub async fn refused(&self, command: Command, code: &str) {
        self.refused_by(command, &steward(), code).await;
    }

    /// Asserts a refusal with `code` and that the log did not move.
    pub async fn refused_by(&self, command: Command, actor: &Actor, code: &str) {
        let before = self.head().await;
        let kind = command.command_type();
        match self.run(command, actor).await {
            Err(e) => assert_eq!(e.code(), code, "{kind}: {e:?}"),
            Ok(done) => panic!("{kind} accepted, expected {code}: {done:?}"),
        }
        assert_eq!(self.head().await, before, "{kind} refused but wrote");
    }

    pub async fn head(&self) -> Option<LogHead> {
        self.log.head().await.expect("head")
    }

    pub async fn record(&self, id: impl Into<RecordId>) -> Record {
        let id = id.into();
        self.registry
            .load_record(id)
            .await
            .expect("load")
            .unwrap_or_else(|| panic!("{id} not found"))
            .record
    }

    pub async fn version(&self, id: impl Into<RecordId>) -> u64 {
        let id = id.into();
        self.registry
            .load_record(id)
            .await
            .expect("load")
            .map(|l| l.version)
            .unwrap_or_else(|| panic!("{id} not found"))
    }

    pub async fn citizen(&self, id: CitizenId) -> Citizen {
        match self.record(id).await {
            Record::Citizen(c) => c,
            other => panic!("{other:?}"),
        }
    }

    pub async fn business(&self, id: BusinessId) -> Business {
        match self.record(id).await {
            Record::Business(b) => b,
            other => panic!("{other:?}"),
        }
    }

    pub async fn parcel(&self, id: ParcelId) -> Parcel {
        match self.record(id).await {
            Record::Parcel(p) => p,
            other => panic!("{other:?}"),
        }
    }

    /// Rebuilds every stream from scratch out of `read_all` and checks that it equals what the
    /// registry serves, that every event decodes, every marker matches its stream, and the
    /// hash chain is intact. Returns the number of events.
    pub async fn check_replay(&self) -> u64 {
        let all = read_all(self.log.as_ref()).await;
        let mut streams: BTreeMap<StreamId, Vec<RecordedEvent>> = BTreeMap::new();
        for (i, event) in all.iter().enumerate() {
            assert_eq!(event.position, i as u64, "positions are gapless");
            streams
                .entry(event.stream_id.clone())
                .or_default()
                .push(event.clone());
        }
        for (stream, events) in &streams {
            for (v, e) in events.iter().enumerate() {
                assert_eq!(e.stream_version, v as u64, "{stream} versions are gapless");
                let metadata = e.metadata();
                assert!(metadata.actor.is_some(), "{stream}: no actor");
                assert!(metadata.causation_id.is_some(), "{stream}: no causation");
                assert!(
                    metadata.correlation_id.is_some(),
                    "{stream}: no correlation"
                );
                assert_eq!(e.event_id.get_version_num(), 7, "event ids are UUIDv7");
            }
            match stream.category() {
                "citizen" | "business" | "parcel" => {
                    let id: RecordId = stream.as_str().parse().expect("record stream id");
                    let replayed = fold_record(id, events).expect("replay").expect("non-empty");
                    let served = self
                        .registry
                        .load_record(id)
                        .await
                        .expect("load")
                        .expect("served");
                    assert_eq!(served.record, replayed, "{stream}");
                    assert_eq!(served.version, events.len() as u64 - 1);
                    assert_eq!(served.last_position, events.last().unwrap().position);
                    assert_eq!(self.registry.history(id).await.unwrap(), *events);
                }
                "key" => {
                    let key = match decode(&events[0]).expect("decode") {
                        Event::KeyClaimed { key, .. } => key,
                        other => panic!("key stream starts with {other:?}"),
                    };
                    assert_eq!(
                        stream.as_str(),
                        Target::Key(key).stream_id(),
                        "key stream id"
                    );
                    let replayed = fold_key(&key, events).expect("replay key");
                    assert_eq!(self.registry.key_claim(&key).await.unwrap(), replayed);
                    assert_eq!(self.registry.load_key(&key).await.unwrap(), replayed.holder);
                }
                "command" => {
                    assert_eq!(events.len(), 1, "one marker per command");
                    assert_eq!(events[0].event_type, COMMAND_EXECUTED);
                    let marker: CommandExecuted = events[0].data_as().expect("marker");
                    assert_eq!(marker.command_id, stream.id());
                    let result = self
                        .registry
                        .command_result(marker.command_id)
                        .await
                        .unwrap()
                        .expect("result");
                    // The marker's claims about the append hold in the log.
                    let first = result.first_position.expect("first") as usize;
                    let last = result.last_position.expect("last") as usize;
                    assert_eq!((last - first + 1) as u64, marker.event_count);
                    for change in &marker.changes {
                        let written: Vec<&RecordedEvent> = all[first..=last]
                            .iter()
                            .filter(|e| e.stream_id == change.stream)
                            .collect();
                        assert_eq!(written.len() as u64, change.events);
                        assert_eq!(
                            written.last().map(|e| e.stream_version),
                            Some(change.version)
                        );
                    }
                    for e in &all[first..=last] {
                        assert_eq!(e.metadata().causation_id, Some(marker.command_id));
                    }
                }
                other => panic!("unexpected stream category {other}"),
            }
        }
        let report = self
            .log
            .verify_log(self.head().await)
            .await
            .expect("verify");
        assert!(report.is_intact(), "{report:?}");
        all.len() as u64
    }
}

pub async fn read_all(log: &dyn EventLog) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    loop {
        let batch = log
            .read_all(all.len() as u64, 1024)
            .await
            .expect("read_all");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

// --- a log that lets a test run something just before an append --------------------------

/// Which appends a hook fires on.
type Trigger = Box<dyn Fn(&[StreamAppend]) -> bool + Send + Sync>;

type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Wraps a log; the first append that `trigger` matches first runs `hook` (typically a
/// competing command on the inner log), then proceeds. Makes races deterministic.
pub struct Interleave {
    inner: Arc<dyn EventLog>,
    trigger: Trigger,
    read_trigger: Option<ReadTrigger>,
    hooks: Mutex<Vec<Hook>>,
}

/// Which stream reads a hook fires on.
type ReadTrigger = Box<dyn Fn(&StreamId) -> bool + Send + Sync>;

impl Interleave {
    pub fn new(
        inner: Arc<dyn EventLog>,
        trigger: impl Fn(&[StreamAppend]) -> bool + Send + Sync + 'static,
    ) -> Self {
        Interleave {
            inner,
            trigger: Box::new(trigger),
            read_trigger: None,
            hooks: Mutex::new(Vec::new()),
        }
    }

    /// Fires hooks before reads of the streams `trigger` matches instead of before appends.
    pub fn on_read(
        inner: Arc<dyn EventLog>,
        trigger: impl Fn(&StreamId) -> bool + Send + Sync + 'static,
    ) -> Self {
        Interleave {
            inner,
            trigger: Box::new(|_| false),
            read_trigger: Some(Box::new(trigger)),
            hooks: Mutex::new(Vec::new()),
        }
    }

    fn next_hook(&self) -> Option<Hook> {
        let mut hooks = self.hooks.lock().unwrap();
        (!hooks.is_empty()).then(|| hooks.remove(0))
    }

    /// Queues a hook; each matching append runs the next one.
    pub fn before_append<F>(&self, hook: impl FnOnce() -> F + Send + 'static)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.hooks
            .lock()
            .unwrap()
            .push(Box::new(move || Box::pin(hook())));
    }
}

/// Whether an append writes an event of type `event_type`.
pub fn writes(appends: &[StreamAppend], event_type: &str) -> bool {
    appends
        .iter()
        .any(|a| a.events.iter().any(|e| e.event_type == event_type))
}

#[async_trait]
impl EventLog for Interleave {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        let hook = if (self.trigger)(&appends) {
            self.next_hook()
        } else {
            None
        };
        if let Some(hook) = hook {
            hook().await;
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
        let hook = match &self.read_trigger {
            Some(trigger) if trigger(stream) => self.next_hook(),
            _ => None,
        };
        if let Some(hook) = hook {
            hook().await;
        }
        self.inner.read_stream(stream, from, direction, max).await
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_all(from, max).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        self.inner.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.watch_head()
    }
}

// Builders of ids, values and commands: one set for every crate's tests.
pub use citydb_domain::testing::*;
