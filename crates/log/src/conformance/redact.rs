//! The conformance tests of [`EventLog::redact`]: a payload blanked, every hash kept.

use super::*;

/// Redacts the event at `position`, which must exist, naming its own hash.
async fn redact_at<L: EventLog + ?Sized>(log: &L, position: u64) -> crate::Redacted {
    let hash = log.read_all(position, 1).await.unwrap()[0].hash;
    log.redact(position, hash).await.unwrap()
}

pub async fn redact_blanks_the_payload_and_keeps_every_hash<B: Backend>(b: &B) {
    let (log, head) = history(b).await;
    let before = read_everything(&*log).await;
    let redacted = redact_at(&*log, 4).await;
    assert_eq!(redacted.position, 4);
    assert_eq!(redacted.hash, before[4].hash);
    assert!(!redacted.already_redacted);
    let after = read_everything(&*log).await;
    assert!(after[4].is_redacted() && after[4].data.is_empty());
    // Only the data changed: every other field of it, and every other event, as before.
    for (b4, a4) in before.iter().zip(&after) {
        if b4.position == 4 {
            assert_eq!(
                (&a4.data_hash, &a4.hash, &a4.metadata, &a4.event_type),
                (&b4.data_hash, &b4.hash, &b4.metadata, &b4.event_type)
            );
        } else {
            assert_eq!(a4, b4);
        }
    }
    let report = log.verify_log(Some(head)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    assert_eq!(report.redacted.positions, vec![4]);
    assert_eq!(report.redacted.count, 1);
    // A stream read sees the redaction too, and the stream still verifies.
    let stream = &before[4].stream_id;
    let read = log
        .read_stream(stream, 0, Direction::Forward, 100)
        .await
        .unwrap();
    let at = read.iter().find(|e| e.position == 4).unwrap();
    assert!(at.is_redacted());
    assert_eq!(read.iter().filter(|e| e.is_redacted()).count(), 1);
    let report = log.verify_stream(stream).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    assert_eq!(report.redacted.positions, vec![4]);
    assert_eq!(log.head().await.unwrap(), Some(head));
    // Appends continue the chain after it.
    append_one(&*log, stream, ExpectedVersion::Any, vec![event(99)])
        .await
        .unwrap();
    assert_intact(&*log).await;
}

pub async fn redact_is_idempotent_and_durable<B: Backend>(b: &B) {
    let (log, head) = history(b).await;
    assert!(!redact_at(&*log, 7).await.already_redacted);
    let again = redact_at(&*log, 7).await;
    assert!(again.already_redacted);
    assert_eq!(again.hash, read_everything(&*log).await[7].hash);
    drop(log);
    let log = b.open().await;
    let all = read_everything(&*log).await;
    assert!(all[7].is_redacted());
    assert_eq!(all.iter().filter(|e| e.is_redacted()).count(), 1);
    assert!(redact_at(&*log, 7).await.already_redacted);
    let report = log.verify_log(Some(head)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    assert_eq!(report.redacted.positions, vec![7]);
}

pub async fn redact_refuses_a_missing_position_or_another_hash<B: Backend>(b: &B) {
    let (log, head) = history(b).await;
    let before = read_everything(&*log).await;
    let missing = log.redact(head.position + 1, before[0].hash).await;
    assert_eq!(
        missing,
        Err(LogError::NoSuchPosition {
            position: head.position + 1
        })
    );
    // The hash of another event: the caller means another event than the one there.
    let wrong = log.redact(3, before[2].hash).await;
    assert_eq!(
        wrong,
        Err(LogError::RedactionRefused {
            position: 3,
            expected: before[2].hash,
            found: before[3].hash,
        })
    );
    assert_eq!(read_everything(&*log).await, before);
    let report = log.verify_log(Some(head)).await.unwrap();
    assert!(report.is_intact() && report.redacted.count == 0);
}
