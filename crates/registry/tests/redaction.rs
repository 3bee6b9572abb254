//! Issue 15 item 4 in the registry: an approved redaction blanks the event and its command's
//! marker in the log (every hash kept), every fold (current, as-of, from scratch) shows the
//! replacement, and a blanking interrupted after the approval is completed by a re-run.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use citydb_domain::redaction::*;
use citydb_domain::*;
use citydb_log::memory::MemoryLog;
use citydb_log::{
    AppendOutcome, Direction, EventLog, FaultKind, Hash, LogError, LogHead, RecordedEvent,
    Redacted, StreamAppend, StreamId,
};
use citydb_registry::{Registry, command_stream, decode, fold_record};
use common::*;
use tokio::sync::watch;

const ADDRESS: &str = "12 Lý Thái Tổ";
const PLACEHOLDER: &str = "[redacted: 15/2026/QĐ-TA]";

fn order() -> LegalBasis {
    LegalBasis {
        document_number: "15/2026/QĐ-TA".to_owned(),
        document_date: date("2026-03-02"),
    }
}

fn other_supervisor() -> Actor {
    Actor {
        id: "supervisor-tuan".to_owned(),
        role: StewardRole::Supervisor,
    }
}

fn propose(a: CitizenId, position: u64) -> Command {
    Command::ProposeRedaction(ProposeRedaction {
        record: a.into(),
        position,
        reason: "court order: erase the address".to_owned(),
        legal_basis: order(),
    })
}

fn approve(a: CitizenId, position: u64) -> Command {
    Command::ApproveRedaction(ApproveRedaction {
        record: a.into(),
        position,
    })
}

/// Registers citizen 1 and moves them to [`ADDRESS`]; the residence event's position.
async fn citizen_with_address(registry: &Registry, log: &dyn EventLog) -> (CitizenId, u64) {
    let a = cid(1);
    let run = |command: Command| {
        registry.execute(citydb_registry::CommandRequest::new(
            uuid::Uuid::now_v7(),
            command,
            steward(),
        ))
    };
    run(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Female,
        1990,
    )))
    .await
    .unwrap();
    run(residence(a, HOME_UNIT, ADDRESS, "2020-01-01"))
        .await
        .unwrap();
    let history = read_all(log).await;
    let moved = history
        .iter()
        .find(|e| e.event_type == "ResidenceChanged")
        .unwrap();
    (a, moved.position)
}

fn address_of(record: &Record) -> String {
    match record {
        Record::Citizen(c) => c.permanent_residence.as_ref().unwrap().address.clone(),
        other => panic!("{other:?}"),
    }
}

/// No stored payload holds the original address any more.
async fn nowhere_in_the_log(log: &dyn EventLog, text: &str) {
    for e in read_all(log).await {
        let data = String::from_utf8_lossy(&e.data);
        assert!(
            !data.contains(text),
            "{} at {} holds it",
            e.event_type,
            e.position
        );
    }
}

#[tokio::test]
async fn an_approved_redaction_blanks_the_event_and_its_marker_and_every_fold_shows_it() {
    let env = open();
    let (a, position) = citizen_with_address(&env.registry, env.log.as_ref()).await;
    let target = read_all(env.log.as_ref()).await[position as usize].clone();
    let marker = command_stream(target.metadata().causation_id.unwrap()).unwrap();
    let marker_position = env
        .log
        .read_stream(&marker, 0, Direction::Forward, 1)
        .await
        .unwrap()[0]
        .position;

    // Not an event of this record, or not an event at all.
    env.refused(propose(a, 0), "REDACTION_TARGET_NOT_FOUND")
        .await;
    env.refused(propose(a, 10_000), "REDACTION_TARGET_NOT_FOUND")
        .await;
    env.ok(propose(a, position)).await;
    // Nothing is blanked by a proposal.
    assert!(!read_all(env.log.as_ref()).await[position as usize].is_redacted());
    env.refused_by(approve(a, position), &steward2(), "NOT_SUPERVISOR")
        .await;
    let proposer_as_supervisor = Actor {
        id: steward().id,
        role: StewardRole::Supervisor,
    };
    env.refused_by(approve(a, position), &proposer_as_supervisor, "SELF_REVIEW")
        .await;
    let approved = env.ok_by(approve(a, position), &other_supervisor()).await;
    let approval_position = approved.first_position.unwrap();

    let all = read_all(env.log.as_ref()).await;
    assert!(all[position as usize].is_redacted());
    assert!(all[marker_position as usize].is_redacted());
    assert_eq!(all.iter().filter(|e| e.is_redacted()).count(), 2);
    nowhere_in_the_log(env.log.as_ref(), ADDRESS).await;
    // Every hash kept: the chain verifies and lists both redactions.
    let report = env.log.verify_log(env.head().await).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let mut listed = vec![position, marker_position];
    listed.sort();
    assert_eq!(report.redacted.positions, listed);

    // The current state, an as-of state from before the approval, and a replay from scratch
    // all show the order's placeholder.
    assert_eq!(address_of(&env.record(a).await), PLACEHOLDER);
    let as_of = env
        .registry
        .load_record_as_of(a.into(), approval_position - 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(address_of(&as_of.record), PLACEHOLDER);
    let history = env.registry.history(a.into()).await.unwrap();
    let replayed = fold_record(a.into(), &history).unwrap().unwrap();
    assert_eq!(address_of(&replayed), PLACEHOLDER);
    assert!(matches!(
        replayed.privacy().redaction(position).unwrap().status,
        RedactionStatus::Approved { .. }
    ));
    // The redaction itself is an event of the record: who, why, which order, which event.
    let approval = decode(&all[approval_position as usize]).unwrap();
    match approval {
        Event::RedactionApproved {
            position: p,
            supervisor,
            steward: proposer,
            legal_basis,
            event_hash,
            ..
        } => {
            assert_eq!((p, supervisor.as_str()), (position, "supervisor-tuan"));
            assert_eq!((proposer.as_str(), legal_basis), ("steward-lan", order()));
            assert_eq!(event_hash, target.hash.to_hex());
        }
        other => panic!("{other:?}"),
    }
    // Once blanked, it cannot be proposed again; later events still apply.
    env.refused(propose(a, position), "REDACTION_EXISTS").await;
    env.ok(residence(a, HOME_UNIT, "3 Hàng Bài", "2026-04-01"))
        .await;
    assert_eq!(address_of(&env.record(a).await), "3 Hàng Bài");
}

#[tokio::test]
async fn a_redacted_registration_replays_with_the_name_redacted() {
    let env = open();
    let (a, _) = citizen_with_address(&env.registry, env.log.as_ref()).await;
    let registered = read_all(env.log.as_ref())
        .await
        .into_iter()
        .find(|e| e.event_type == "CitizenRegistered")
        .unwrap();
    env.ok(propose(a, registered.position)).await;
    env.ok_by(approve(a, registered.position), &other_supervisor())
        .await;
    let citizen = env.citizen(a).await;
    assert_eq!(citizen.name.given(), PLACEHOLDER);
    assert_eq!(citizen.pin, register_citizen(1, Sex::Female, 1990).pin);
    nowhere_in_the_log(env.log.as_ref(), "Hòa 1").await;
}

/// A log whose `redact` fails: the approval commits, the blanking does not (a crash there).
struct NoRedaction(MemoryLog);

#[async_trait]
impl EventLog for NoRedaction {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        self.0.append(appends).await
    }
    async fn redact(&self, _: u64, _: Hash) -> Result<Redacted, LogError> {
        Err(LogError::storage(FaultKind::Unavailable, "gone mid-way"))
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.0.read_stream(stream, from, direction, max).await
    }
    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.0.read_all(from, max).await
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        self.0.stream_version(stream).await
    }
    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        self.0.head().await
    }
    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.0.watch_head()
    }
}

#[tokio::test]
async fn a_blanking_interrupted_after_the_approval_is_completed_by_a_rerun() {
    let memory = MemoryLog::new();
    let failing = Registry::new(Arc::new(NoRedaction(memory.clone())));
    let (a, position) = citizen_with_address(&failing, &memory).await;
    let run = |command: Command, actor: Actor| {
        failing.execute(citydb_registry::CommandRequest::new(
            uuid::Uuid::now_v7(),
            command,
            actor,
        ))
    };
    run(propose(a, position), steward()).await.unwrap();
    let interrupted = run(approve(a, position), other_supervisor()).await;
    assert!(interrupted.is_err(), "{interrupted:?}");
    // The approval is durable, the payload still there: the state already reads redacted.
    let all = read_all(&memory).await;
    assert!(all.iter().any(|e| e.event_type == "RedactionApproved"));
    assert!(!all[position as usize].is_redacted());
    let registry = Registry::new(Arc::new(memory.clone()));
    assert_eq!(
        address_of(
            &registry
                .load_record(a.into())
                .await
                .unwrap()
                .unwrap()
                .record
        ),
        PLACEHOLDER
    );
    // The re-run blanks the event and the marker; a second re-run finds them blanked.
    let done = registry.complete_redactions(a.into()).await.unwrap();
    assert_eq!((done.blanked, done.already), (2, 0));
    nowhere_in_the_log(&memory, ADDRESS).await;
    let again = registry.complete_redactions(a.into()).await.unwrap();
    assert_eq!((again.blanked, again.already), (0, 2));
    let report = memory.verify_log(None).await.unwrap();
    assert!(
        report.is_intact() && report.redacted.count == 2,
        "{report:?}"
    );
}
