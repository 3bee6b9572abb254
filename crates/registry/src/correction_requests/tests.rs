//! Request commands through the registry: one append per command id, version checks on the
//! citizen's record, and the resolution only after the four-eyes approval.

use std::sync::Arc;

use citydb_domain::calendar::WorkingCalendar;
use citydb_domain::command::{ApproveCorrection, ProposeCorrection};
use citydb_domain::correction_request::{
    Deadline, RequestActor, RequestCommand, RequestId, RequestStatus, overdue_command_id,
};
use citydb_domain::testing::{basis, cid, corr, date, fc, register_citizen, steward, supervisor};
use citydb_domain::{Command, CommandRequest, RecordId, Sex};
use citydb_log::memory::MemoryLog;
use serde_json::json;
use uuid::Uuid;

use super::{RequestExecution, RequestRegistryError};
use crate::Registry;

fn registry() -> Registry {
    Registry::new(Arc::new(MemoryLog::new()))
}

fn run(command: RequestCommand, actor: RequestActor) -> RequestExecution {
    RequestExecution {
        command_id: Uuid::now_v7(),
        actor,
        context: Default::default(),
        command,
    }
}

fn rid() -> RequestId {
    RequestId(Uuid::from_u128(0xE001))
}

fn file() -> RequestCommand {
    RequestCommand::RequestCorrection {
        request: rid(),
        citizen: cid(1),
        field: "birth_date".to_owned(),
        proposed_value: "1990-03-04".to_owned(),
        reason: "thiếu ngày tháng sinh".to_owned(),
        evidence: vec!["Giấy khai sinh 12/1990".to_owned()],
        on: date("2026-12-01"),
    }
}

fn me() -> RequestActor {
    RequestActor::Citizen { record: cid(1) }
}

fn staff() -> RequestActor {
    RequestActor::Staff { actor: steward() }
}

async fn with_citizen() -> Registry {
    let r = registry();
    let register = Command::RegisterCitizen(register_citizen(1, Sex::Female, 1990));
    r.execute(CommandRequest::new(Uuid::now_v7(), register, steward()))
        .await
        .unwrap();
    r
}

#[tokio::test]
async fn a_command_id_appends_once_and_answers_again() {
    let r = with_citizen().await;
    let cal = WorkingCalendar::vietnam();
    let filing = run(file(), me());
    let first = r.execute_request(filing.clone(), cal).await.unwrap();
    assert!(!first.already_executed);
    assert_eq!(first.changes[0].version, 0);
    let again = r.execute_request(filing.clone(), cal).await.unwrap();
    assert!(again.already_executed);
    assert_eq!(again.last_position, first.last_position);
    assert_eq!(r.request_history(rid()).await.unwrap().len(), 1);
    // The same id for another command is refused.
    let mut other = run(
        RequestCommand::WithdrawCorrectionRequest {
            request: rid(),
            on: date("2026-12-02"),
        },
        me(),
    );
    other.command_id = filing.command_id;
    let err = r.execute_request(other, cal).await.unwrap_err();
    assert_eq!(
        err,
        RequestRegistryError::Registry(crate::RegistryError::CommandIdReused {
            command_id: filing.command_id
        })
    );
}

#[tokio::test]
async fn filing_needs_the_record_and_a_refusal_writes_nothing() {
    let r = registry();
    let cal = WorkingCalendar::vietnam();
    let head = r.log().head().await.unwrap();
    let err = r.execute_request(run(file(), me()), cal).await.unwrap_err();
    assert!(
        matches!(err, RequestRegistryError::Refused(ref e) if e.code() == "RECORD_NOT_FOUND"),
        "{err}"
    );
    assert_eq!(r.log().head().await.unwrap(), head);
}

#[tokio::test]
async fn overdue_from_two_runs_is_one_event() {
    let r = with_citizen().await;
    let cal = WorkingCalendar::vietnam();
    r.execute_request(run(file(), me()), cal).await.unwrap();
    let overdue = RequestExecution {
        command_id: overdue_command_id(rid(), Deadline::Acknowledge),
        actor: RequestActor::Clock,
        context: Default::default(),
        command: RequestCommand::RecordCorrectionRequestOverdue {
            request: rid(),
            deadline: Deadline::Acknowledge,
            on: date("2026-12-04"),
        },
    };
    let first = r.execute_request(overdue.clone(), cal).await.unwrap();
    assert!(!first.already_executed);
    // A second node (or a restart) sends the same derived id: answered, not appended.
    let second = r.execute_request(overdue, cal).await.unwrap();
    assert!(second.already_executed);
    let types: Vec<String> = r
        .request_history(rid())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        ["CorrectionRequestSubmitted", "CorrectionRequestOverdue"]
    );
    assert!(
        r.load_request(rid())
            .await
            .unwrap()
            .unwrap()
            .request
            .is_overdue()
    );
}

#[tokio::test]
async fn resolution_follows_the_approved_correction() {
    let r = with_citizen().await;
    let cal = WorkingCalendar::vietnam();
    r.execute_request(run(file(), me()), cal).await.unwrap();
    r.execute_request(
        run(
            RequestCommand::AcknowledgeCorrectionRequest {
                request: rid(),
                on: date("2026-12-02"),
            },
            staff(),
        ),
        cal,
    )
    .await
    .unwrap();
    let record = RecordId::Citizen(cid(1));
    let propose = Command::ProposeCorrection(ProposeCorrection {
        record,
        correction: corr(1),
        changes: vec![fc("birth_date", json!("1990"), json!("1990-03-04"))],
        reason: "theo yêu cầu của công dân".to_owned(),
        legal_basis: basis(),
    });
    r.execute(CommandRequest::new(Uuid::now_v7(), propose, steward()))
        .await
        .unwrap();
    let resolve = run(
        RequestCommand::ResolveCorrectionRequest {
            request: rid(),
            correction: corr(1),
            on: date("2026-12-03"),
        },
        staff(),
    );
    let err = r.execute_request(resolve.clone(), cal).await.unwrap_err();
    assert!(
        matches!(err, RequestRegistryError::Refused(ref e) if e.code() == "CORRECTION_NOT_APPLIED"),
        "{err}"
    );
    let approve = Command::ApproveCorrection(ApproveCorrection {
        record,
        correction: corr(1),
    });
    r.execute(CommandRequest::new(Uuid::now_v7(), approve, supervisor()))
        .await
        .unwrap();
    r.execute_request(resolve, cal).await.unwrap();
    let loaded = r.load_request(rid()).await.unwrap().unwrap();
    assert_eq!(loaded.request.status, RequestStatus::Resolved);
    assert_eq!(loaded.version, 2);
}
