//! Streams the domain could not have produced are reported, never served or written on.

mod common;

use citydb_domain::*;
use citydb_log::{ExpectedVersion, Metadata, NewEvent, StreamAppend};
use citydb_registry::{RegistryError, record_stream};
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_corrupt_stream_is_reported_and_blocks_commands_on_it() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1980,
    )))
    .await;
    // Written behind the registry's back: an event type no build knows.
    let stream = record_stream(cid(1).into()).unwrap();
    env.log
        .append(vec![StreamAppend::new(
            stream.clone(),
            ExpectedVersion::Exact(0),
            vec![NewEvent::new("CitizenTeleported", 1, &json!({}), &Metadata::default()).unwrap()],
        )])
        .await
        .unwrap();
    let err = env.registry.load_record(cid(1).into()).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::Corrupt { stream: s, .. } if *s == stream.to_string()),
        "{err:?}"
    );
    assert_eq!(err.code(), "CORRUPT_STREAM");
    // As of before the bad event the record still reads.
    let position = env.registry.history(cid(1).into()).await.unwrap()[0].position;
    assert!(
        env.registry
            .load_record_as_of(cid(1).into(), position)
            .await
            .unwrap()
            .is_some()
    );
    let head = env.head().await;
    let err = env
        .run(
            residence(cid(1), "10507", "1 Lê Lợi", "2024-01-01"),
            &steward(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CORRUPT_STREAM");
    assert_eq!(env.head().await, head);
}

#[tokio::test]
async fn another_records_events_in_a_stream_are_corruption() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1980,
    )))
    .await;
    let registered = env.registry.history(cid(1).into()).await.unwrap();
    // Copy citizen 1's registration into citizen 2's stream.
    let copy = NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: registered[0].event_type.clone(),
        schema_version: registered[0].schema_version,
        data: registered[0].data.clone(),
        metadata: registered[0].metadata.clone(),
    };
    env.log
        .append(vec![StreamAppend::new(
            record_stream(cid(2).into()).unwrap(),
            ExpectedVersion::NoStream,
            vec![copy],
        )])
        .await
        .unwrap();
    let err = env.registry.load_record(cid(2).into()).await.unwrap_err();
    assert_eq!(err.code(), "CORRUPT_STREAM", "{err:?}");
}
