//! A small command handler over an event log (load → decide → append, the way the registry
//! drives the domain), and fixtures for valid identifiers. The log is the in-memory one: these
//! tests are about the read models, not a store; [`World::on_sqlite`] for the one that needs
//! a log file.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use citydb_domain::business::{Address, RegisterBranch, RegisterBusiness};
use citydb_domain::citizen::RegistrationOrigin;
use citydb_domain::parcel::{Holder, Holding, RegisterParcel};
use citydb_domain::stewardship::{Actor, StewardRole};
use citydb_domain::*;
use citydb_log::memory::MemoryLog;
use citydb_log::{
    AppendOutcome, Direction, EventLog, ExpectedVersion, Metadata, NewEvent, READ_BATCH,
    StreamAppend, StreamId,
};
use citydb_projections::{ProjectionConfig, Projections};
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};

pub struct World {
    /// The projection files (and the log file of [`World::on_sqlite`]).
    pub dir: tempfile::TempDir,
    pub log: Arc<dyn EventLog>,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        World {
            dir,
            log: Arc::new(MemoryLog::new()),
        }
    }

    /// A world whose log is an SQLite file, `log.db`.
    pub fn on_sqlite() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = SqliteConfig {
            durability: Durability::Normal,
            ..SqliteConfig::default()
        };
        let log = Arc::new(SqliteLog::open(dir.path().join("log.db"), config).expect("open log"));
        World { dir, log }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub async fn projections(&self, name: &str, config: ProjectionConfig) -> Projections {
        Projections::open(self.path(name), self.log.clone(), config)
            .await
            .expect("open projections")
    }

    /// Projections driven by hand (no background follower).
    pub async fn manual(&self, name: &str) -> Projections {
        self.projections(
            name,
            ProjectionConfig {
                follow: false,
                ..ProjectionConfig::default()
            },
        )
        .await
    }

    /// All events of a stream, upcast, and its current version.
    pub async fn load(&self, target: Target) -> (Vec<Event>, Option<u64>) {
        let stream: StreamId = target.stream_id().parse().expect("stream id");
        let mut events = Vec::new();
        let mut from = 0;
        loop {
            let batch = self
                .log
                .read_stream(&stream, from, Direction::Forward, READ_BATCH)
                .await
                .expect("read stream");
            let Some(last) = batch.last() else { break };
            from = last.stream_version + 1;
            for e in &batch {
                // A blanked payload (a redaction) is folded as its approval's replacement.
                let event = (!e.is_redacted()).then(|| {
                    let data: serde_json::Value = serde_json::from_slice(&e.data).expect("json");
                    upcast(&e.event_type, e.schema_version, &data).expect("upcast")
                });
                events.push((e.position, event));
            }
        }
        let replacements = citydb_domain::redaction::replacements(events.iter().flat_map(|e| &e.1));
        let events = events
            .iter()
            .map(|(position, event)| {
                citydb_domain::redaction::in_place(&replacements, *position, event.as_ref())
                    .expect("a redacted event has an approval")
                    .clone()
            })
            .collect();
        let version = self.log.stream_version(&stream).await.expect("version");
        (events, version)
    }

    /// The record as the log says it is now.
    pub async fn replayed(&self, id: RecordId) -> Option<Record> {
        let (events, _) = self.load(Target::Record(id)).await;
        replay(&events).expect("replay")
    }

    pub async fn try_run(&self, command: &Command) -> Result<AppendOutcome, DomainError> {
        let actor = Actor {
            id: "steward-lan".to_owned(),
            role: StewardRole::Steward,
        };
        self.try_run_as(command, &actor).await
    }

    /// [`World::try_run`] by another actor (a supervisor approving a correction).
    pub async fn try_run_as(
        &self,
        command: &Command,
        actor: &Actor,
    ) -> Result<AppendOutcome, DomainError> {
        self.try_run_at(command, actor, None).await
    }

    /// [`World::try_run_as`] with the command's `effective_at` (its valid time) in the
    /// metadata of the events it records, as the registry writes it.
    pub async fn try_run_at(
        &self,
        command: &Command,
        actor: &Actor,
        effective_at: Option<Date>,
    ) -> Result<AppendOutcome, DomainError> {
        let metadata = Metadata {
            effective_at: effective_at.map(|d| d.to_string()),
            ..Metadata::default()
        };
        let reads = command.reads();
        let mut targets: Vec<Target> = reads
            .records
            .iter()
            .map(|r| Target::Record(*r))
            .chain(reads.keys.iter().map(|k| Target::Key(*k)))
            .collect();
        loop {
            let mut snapshot = Snapshot::new();
            let mut versions: HashMap<Target, Option<u64>> = HashMap::new();
            for t in &targets {
                let (events, version) = self.load(*t).await;
                versions.insert(*t, version);
                match t {
                    Target::Record(id) => {
                        snapshot.insert_record(*id, replay(&events).expect("replay"))
                    }
                    Target::Key(k) => {
                        snapshot.insert_key(*k, replay_key(&events).expect("replay key"))
                    }
                }
            }
            if let Command::ProposeRedaction(c) = command {
                // What the registry reads for a redaction: the event at the position named.
                let found = self.log.read_all(c.position, 1).await.expect("read");
                if let Some(e) = found.first().filter(|e| e.position == c.position) {
                    let event = (!e.is_redacted()).then(|| {
                        let data: serde_json::Value =
                            serde_json::from_slice(&e.data).expect("json");
                        upcast(&e.event_type, e.schema_version, &data).expect("upcast")
                    });
                    snapshot.insert_logged(
                        c.position,
                        citydb_domain::redaction::LoggedEvent {
                            stream: e.stream_id.as_str().to_owned(),
                            event_hash: e.hash.to_hex(),
                            event,
                        },
                    );
                }
            }
            match decide(&snapshot, command, actor) {
                Err(DomainError::NotLoaded(t)) => {
                    assert!(!targets.contains(&t), "decide asked twice for {t}");
                    targets.push(t);
                }
                Err(e) => return Err(e),
                Ok(decision) => {
                    let mut appends = Vec::new();
                    for change in &decision.changes {
                        let events = change
                            .events
                            .iter()
                            .map(|e| {
                                NewEvent::new(
                                    e.event_type(),
                                    e.schema_version(),
                                    &e.to_json().expect("to json"),
                                    &metadata,
                                )
                                .expect("new event")
                            })
                            .collect();
                        let expected = versions
                            .get(&change.target)
                            .map_or(ExpectedVersion::Any, |v| ExpectedVersion::from_current(*v));
                        appends.push(StreamAppend::new(
                            change.target.stream_id().parse().expect("stream id"),
                            expected,
                            events,
                        ));
                    }
                    // The command marker the registry writes next to every decision; read
                    // models must ignore it.
                    appends.push(StreamAppend::new(
                        StreamId::new("command", Uuid::now_v7()).expect("stream id"),
                        ExpectedVersion::NoStream,
                        vec![
                            NewEvent::new(
                                "CommandAccepted",
                                1,
                                &json!({"command": command.command_type()}),
                                &Metadata::default(),
                            )
                            .expect("marker"),
                        ],
                    ));
                    return Ok(self.log.append(appends).await.expect("append"));
                }
            }
        }
    }

    pub async fn run(&self, command: Command) -> AppendOutcome {
        match self.try_run(&command).await {
            Ok(outcome) => outcome,
            Err(e) => panic!("{} refused: {e:?}", command.command_type()),
        }
    }

    /// Appends raw events to one stream, bypassing `decide` (for events `decide` never makes).
    pub async fn append_raw(
        &self,
        stream: &str,
        events: &[(&str, u32, serde_json::Value)],
    ) -> AppendOutcome {
        let events = events
            .iter()
            .map(|(t, v, data)| NewEvent::new(*t, *v, data, &Metadata::default()).expect("event"))
            .collect();
        self.log
            .append(vec![StreamAppend::new(
                stream.parse().expect("stream id"),
                ExpectedVersion::Any,
                events,
            )])
            .await
            .expect("append")
    }

    pub async fn head(&self) -> u64 {
        self.log
            .head()
            .await
            .expect("head")
            .map_or(0, |h| h.position)
    }
}

// Builders of ids, values and commands: one set for every crate's tests. The
// functions below are this crate's command forms of them (they shadow the
// glob: `register_citizen` here takes a name and returns a `Command`).
pub use citydb_domain::testing::*;

/// Citizen `n` with a (family, middle, given) name, born in 11311.
pub fn register_citizen(n: u128, name: (&str, &str, &str), sex: Sex, year: u16) -> Command {
    Command::RegisterCitizen(register_named_citizen(n, name, sex, year))
}

/// Business `n` (code `enterprise(n * 10)`) named `name`, head office in `commune`.
pub fn register_business(n: u128, name: &str, commune: &str, reps: Vec<CitizenId>) -> Command {
    let code = enterprise(u32::try_from(n).expect("small n") * 10);
    Command::RegisterBusiness(RegisterBusiness {
        names: names(name),
        head_office: Address {
            commune: unit(commune),
            ..office()
        },
        ..citydb_domain::testing::register_business(n, code, reps)
    })
}

pub fn register_branch(n: u128, parent: u128, suffix: u16, reps: Vec<CitizenId>) -> Command {
    let parent_code = enterprise(u32::try_from(parent).expect("small n") * 10);
    Command::RegisterBranch(RegisterBranch {
        branch: bid(n),
        parent: bid(parent),
        code: parent_code.branch(suffix).expect("branch code"),
        names: names(&format!("Chi nhánh {suffix}")),
        address: Address {
            commune: unit("10507"),
            street: "2 Lạch Tray".to_owned(),
        },
        legal_representatives: reps,
        business_lines: vec!["5210".parse().expect("vsic")],
        registration_date: date("2024-05-01"),
        origin: RegistrationOrigin::Registration,
    })
}

/// Parcel `n` of 120.5 m² with one land use.
pub fn register_parcel(n: u128, key: ParcelKey, land_use: &str, holders: Vec<Holding>) -> Command {
    Command::RegisterParcel(RegisterParcel {
        land_use: vec![land_use.parse().expect("land use")],
        ..citydb_domain::testing::register_parcel(n, key, "120.5", holders)
    })
}

pub fn halves(a: Holder, b: Holder) -> Vec<Holding> {
    shares(&[(a, "1/2"), (b, "1/2")])
}
