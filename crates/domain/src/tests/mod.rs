//! Scenario and property tests of `decide`/`evolve` through the public API,
//! driven the way a handler drives them (reads → snapshot → decide → append).

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::business::*;
use crate::citizen::*;
use crate::command::*;
use crate::parcel::*;
use crate::stewardship::CorrectionStatus;
use crate::testing::*;
use crate::*;

// --- a tiny in-memory handler ------------------------------------------------

#[derive(Default)]
struct World {
    streams: HashMap<Target, Vec<Event>>,
    /// States folded incrementally as events are appended.
    records: HashMap<RecordId, Record>,
    keys: HashMap<NaturalKey, KeyClaim>,
}

impl World {
    fn events(&self, t: Target) -> &[Event] {
        self.streams.get(&t).map(Vec::as_slice).unwrap_or(&[])
    }

    fn snapshot(&self, reads: &Reads, extra: &[Target]) -> Snapshot {
        let mut s = Snapshot::new();
        let targets = reads
            .records
            .iter()
            .map(|r| Target::Record(*r))
            .chain(reads.keys.iter().map(|k| Target::Key(*k)))
            .chain(extra.iter().copied());
        for t in targets {
            match t {
                Target::Record(id) => s.insert_record(id, replay(self.events(t)).unwrap()),
                Target::Key(k) => s.insert_key(k, replay_key(self.events(t)).unwrap()),
            }
        }
        s
    }

    fn run(&mut self, command: &Command, actor: &Actor) -> Result<Decision, DomainError> {
        let mut extra = Vec::new();
        loop {
            let snapshot = self.snapshot(&command.reads(), &extra);
            match decide(&snapshot, command, actor) {
                Err(DomainError::NotLoaded(t)) => {
                    assert!(!extra.contains(&t), "decide asked twice for {t}");
                    extra.push(t);
                }
                Err(e) => return Err(e),
                Ok(d) => {
                    for change in &d.changes {
                        for event in &change.events {
                            match change.target {
                                Target::Record(id) => {
                                    let next = evolve(self.records.remove(&id), event).unwrap();
                                    self.records.insert(id, next);
                                }
                                Target::Key(k) => {
                                    let next = evolve_key(self.keys.remove(&k), event).unwrap();
                                    self.keys.insert(k, next);
                                }
                            }
                        }
                        self.streams
                            .entry(change.target)
                            .or_default()
                            .extend(change.events.clone());
                    }
                    return Ok(d);
                }
            }
        }
    }

    fn ok(&mut self, command: Command) -> Decision {
        match self.run(&command, &steward()) {
            Ok(d) => d,
            Err(e) => panic!("{} refused: {e:?}", command.command_type()),
        }
    }

    /// Asserts a refusal with `code` and that nothing was written.
    fn refused(&mut self, command: Command, code: &str) {
        self.refused_by(command, &steward(), code);
    }

    fn refused_by(&mut self, command: Command, actor: &Actor, code: &str) {
        let before: usize = self.streams.values().map(Vec::len).sum();
        match self.run(&command, actor) {
            Err(e) => assert_eq!(e.code(), code, "{e:?}"),
            Ok(d) => panic!(
                "{} accepted, expected {code}: {d:?}",
                command.command_type()
            ),
        }
        assert_eq!(before, self.streams.values().map(Vec::len).sum::<usize>());
    }

    fn record(&self, id: impl Into<RecordId>) -> Record {
        replay(self.events(Target::Record(id.into())))
            .unwrap()
            .unwrap()
    }
    fn citizen(&self, id: CitizenId) -> Citizen {
        match self.record(id) {
            Record::Citizen(c) => c,
            other => panic!("{other:?}"),
        }
    }
    fn business(&self, id: BusinessId) -> Business {
        match self.record(id) {
            Record::Business(b) => b,
            other => panic!("{other:?}"),
        }
    }
    fn parcel(&self, id: ParcelId) -> Parcel {
        match self.record(id) {
            Record::Parcel(p) => p,
            other => panic!("{other:?}"),
        }
    }
    fn key(&self, key: NaturalKey) -> KeyClaim {
        replay_key(self.events(Target::Key(key))).unwrap()
    }
}

fn add_citizen(w: &mut World, n: u128, sex: Sex, year: u16) -> CitizenId {
    w.ok(Command::RegisterCitizen(register_citizen(n, sex, year)));
    cid(n)
}

mod business;
mod citizen;
mod input;
mod parcel;
mod props;
mod protocol;
mod redaction;
mod stewardship;
