//! Unit tests of the request format and the marker payload.

use citydb_domain::{Actor, DomainError, DomainWarning, StewardRole};
use serde_json::json;
use uuid::Uuid;

use crate::{CommandExecuted, CommandRequest, Warning, command_stream};

const DOCUMENTED: &str = r#"{
  "command_id": "0193e3a4-7c1b-7d2e-8f00-123456789abc",
  "actor": { "id": "steward-lan", "role": "steward" },
  "context": {
    "reason": "khai sinh",
    "legal_basis": "123/QĐ-UBND ngày 01/08/2025",
    "end_user": "officer-42",
    "case": "HS-2025-000123",
    "correlation_id": "0193e3a4-0000-7000-8000-000000000001"
  },
  "command": {
    "type": "RegisterCitizen",
    "citizen": "0193e3a4-7c1b-7d2e-8f00-00000000c001",
    "pin": "031199000001",
    "name": { "family": "Nguyễn", "middle": "Thị", "given": "Hoà" },
    "sex": "female",
    "birth_date": "1999-07-21",
    "birth_place": "11311",
    "origin": { "kind": "registration" }
  }
}"#;

#[test]
fn the_documented_request_parses_and_round_trips() {
    let request: CommandRequest = serde_json::from_str(DOCUMENTED).unwrap();
    assert_eq!(request.command.command_type(), "RegisterCitizen");
    assert_eq!(request.actor.role, StewardRole::Steward);
    assert_eq!(request.context.case.as_deref(), Some("HS-2025-000123"));
    let back: CommandRequest =
        serde_json::from_value(serde_json::to_value(&request).unwrap()).unwrap();
    assert_eq!(back, request);

    let metadata = crate::metadata_of(&request);
    assert_eq!(metadata.actor.as_deref(), Some("steward-lan"));
    assert_eq!(metadata.role.as_deref(), Some("steward"));
    assert_eq!(metadata.causation_id, Some(request.command_id));
    assert_eq!(metadata.correlation_id, request.context.correlation_id);
    assert_eq!(metadata.case_id.as_deref(), Some("HS-2025-000123"));
    assert_eq!(metadata.end_user.as_deref(), Some("officer-42"));
}

#[test]
fn context_is_optional_and_correlation_defaults_to_the_command() {
    let mut value: serde_json::Value = serde_json::from_str(DOCUMENTED).unwrap();
    value.as_object_mut().unwrap().remove("context");
    let request: CommandRequest = serde_json::from_value(value).unwrap();
    let metadata = crate::metadata_of(&request);
    assert_eq!(metadata.correlation_id, Some(request.command_id));
    assert_eq!(metadata.reason, None);
    // An empty context serialises to an empty object, not a list of nulls.
    assert_eq!(
        serde_json::to_value(&request).unwrap()["context"],
        json!({})
    );
}

#[test]
fn malformed_requests_are_refused_by_serde() {
    let bad_pin = DOCUMENTED.replace("031199000001", "03119900000");
    assert!(serde_json::from_str::<CommandRequest>(&bad_pin).is_err());
    let bad_role = DOCUMENTED.replace(r#""role": "steward""#, r#""role": "mayor""#);
    assert!(serde_json::from_str::<CommandRequest>(&bad_role).is_err());
    let no_id = DOCUMENTED.replace(r#""command_id""#, r#""id""#);
    assert!(serde_json::from_str::<CommandRequest>(&no_id).is_err());
}

#[test]
fn unknown_keys_are_refused_at_every_level_of_an_import_line() {
    assert!(serde_json::from_str::<CommandRequest>(DOCUMENTED).is_ok());
    for (from, to) in [
        (r#""command_id""#, r#""priority": 1, "command_id""#),
        (r#""reason""#, r#""reasn": "x", "reason""#),
        (r#""role""#, r#""rank": "x", "role""#),
        (r#""pin""#, r#""adress": "x", "pin""#),
        (r#""given""#, r#""nick": "x", "given""#),
    ] {
        let line = DOCUMENTED.replacen(from, to, 1);
        assert_ne!(line, DOCUMENTED);
        let e = serde_json::from_str::<CommandRequest>(&line).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{from}: {e}");
    }
}

#[test]
fn request_text_over_its_maximum_is_refused() {
    let mut request: CommandRequest = serde_json::from_str(DOCUMENTED).unwrap();
    assert_eq!(request.check_text(), Ok(()));
    request.context.reason = Some("x".repeat(500_000));
    match request.check_text() {
        Err(DomainError::TextTooLong { field, max, length }) => {
            assert_eq!((field.as_str(), max, length), ("reason", 2_000, 500_000));
        }
        other => panic!("expected TEXT_TOO_LONG, got {other:?}"),
    }
}

#[test]
fn warnings_keep_code_and_detail() {
    let code = "0201000007";
    let (legacy, _) = citydb_domain::EnterpriseCode::parse_legacy(code).unwrap();
    let w = Warning::from(&DomainWarning::LegacyCheckDigit { code: legacy });
    assert_eq!(w.code, "LEGACY_CHECK_DIGIT");
    assert_eq!(w.detail, json!({ "code": code }));
}

#[test]
fn marker_positions_are_derived_from_the_event_count() {
    let record = CommandExecuted {
        command_id: Uuid::from_u128(1),
        command_type: "X".to_owned(),
        command: json!({}),
        actor: Actor {
            id: "a".to_owned(),
            role: StewardRole::Steward,
        },
        changes: vec![],
        warnings: vec![],
        event_count: 3,
    };
    let executed = record.executed(10, true);
    assert_eq!(
        (executed.first_position, executed.last_position),
        (Some(8), Some(10))
    );
    assert!(executed.already_executed);
    assert_eq!(
        command_stream(Uuid::from_u128(1)).unwrap().as_str(),
        "command-00000000-0000-0000-0000-000000000001"
    );
}

/// The marker is written from the borrowed command (`MarkerPayload`); a re-send compares the
/// stored command with the request's `Value`, so both must be the same JSON object.
#[test]
fn the_marker_written_from_the_command_reads_back_as_its_value() {
    let request: CommandRequest = serde_json::from_str(DOCUMENTED).unwrap();
    let warnings = vec![Warning {
        code: "LEGACY_CHECK_DIGIT".to_owned(),
        detail: json!({ "code": "0201000007" }),
    }];
    let payload = crate::registry::MarkerPayload {
        command_id: request.command_id,
        command_type: request.command.command_type(),
        command: &request.command,
        actor: &request.actor,
        changes: &[],
        warnings: &warnings,
        event_count: 3,
    };
    let written: CommandExecuted =
        serde_json::from_slice(&serde_json::to_vec(&payload).unwrap()).unwrap();
    let expected = CommandExecuted {
        command_id: request.command_id,
        command_type: "RegisterCitizen".to_owned(),
        command: serde_json::to_value(&request.command).unwrap(),
        actor: request.actor.clone(),
        changes: vec![],
        warnings: warnings.clone(),
        event_count: 3,
    };
    assert_eq!(written, expected);
    assert_eq!(
        serde_json::to_value(&payload).unwrap(),
        serde_json::to_value(&expected).unwrap()
    );
}
