//! The conformance tests of copying a log, hash for hash (`EventLog::copy_in`, `copy_log`).

use super::*;

/// A history worth copying: three streams, then a multi-stream append opening a fourth. `n + 3`
/// events.
pub(super) async fn copy_source<L: EventLog + ?Sized>(log: &L, n: u64) -> Vec<StreamId> {
    let mut streams = fill(log, n).await;
    let parcel = stream("parcel");
    log.append(vec![
        StreamAppend::new(streams[0].clone(), ExpectedVersion::Any, vec![event(1000)]),
        StreamAppend::new(
            parcel.clone(),
            ExpectedVersion::NoStream,
            vec![event(1001), event(1002)],
        ),
    ])
    .await
    .unwrap();
    streams.push(parcel);
    streams
}

/// Recomputes an edited event's own hashes, keeping its links: only the edit is wrong.
fn rehash(e: &mut RecordedEvent) {
    let link = ChainLink::compute(
        &EventView::from(&*e).envelope,
        &e.data,
        e.prev_stream_hash,
        e.prev_log_hash,
    );
    e.data_hash = link.data_hash;
    e.hash = link.hash;
}

fn is_refused(err: &LogError, at: u64, check: impl Fn(&CopyRefusal) -> bool) -> bool {
    matches!(err, LogError::CopyRefused { position, reason } if *position == at && check(reason))
}

fn breach(err: &LogError, at: u64, check: impl Fn(&Breach) -> bool) -> bool {
    is_refused(err, at, |r| matches!(r, CopyRefusal::Chain(b) if check(b)))
}

pub async fn copy_in_then_appends_continue<B: Backend>(b: &B) {
    let source = b.open().await;
    let streams = copy_source(&*source, 9).await;
    let all = read_everything(&*source).await;
    assert_eq!(all.len(), 12);
    let source_head = source.head().await.unwrap().unwrap();
    let target = b.open_second().await;
    let mut watch = target.watch_head();
    // Two batches: the second continues the streams the first started.
    let head = target.copy_in(all[..5].to_vec()).await.unwrap();
    assert_eq!(
        head,
        LogHead {
            position: 4,
            hash: all[4].hash
        }
    );
    assert_eq!(
        *watch.borrow_and_update(),
        Some(4),
        "a copy publishes the head"
    );
    assert_eq!(
        target.copy_in(all[5..].to_vec()).await.unwrap(),
        source_head
    );
    assert_eq!(*watch.borrow_and_update(), Some(source_head.position));
    assert_eq!(read_everything(&*target).await, all, "copied verbatim");
    assert_eq!(target.head().await.unwrap(), Some(source_head));
    for s in &streams {
        assert_eq!(
            target.stream_version(s).await.unwrap(),
            source.stream_version(s).await.unwrap()
        );
        assert!(target.verify_stream(s).await.unwrap().is_intact());
    }
    let report = target.verify_log(Some(source_head)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    assert_eq!((report.events, report.streams), (12, 4));

    // Normal appends continue the chain, and the streams, after the copy.
    let v = target.stream_version(&streams[1]).await.unwrap().unwrap();
    let out = append_one(
        &*target,
        &streams[1],
        ExpectedVersion::Exact(v),
        vec![event(77)],
    )
    .await
    .unwrap();
    assert_eq!(out.first_position, Some(12));
    assert_eq!(out.streams[0].first_version, Some(v + 1));
    let appended = &target.read_all(12, 1).await.unwrap()[0];
    assert_eq!(appended.prev_log_hash, source_head.hash);
    let last_of_stream = all.iter().rev().find(|e| e.stream_id == streams[1]);
    assert_eq!(
        Some(appended.prev_stream_hash),
        last_of_stream.map(|e| e.hash)
    );
    assert!(appended.recorded_at >= all[11].recorded_at);
    let report = target.verify_log(Some(source_head)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    assert_eq!(report.events, 13);
    // And a stream new to the copy starts at 0.
    append_one(
        &*target,
        &stream("business"),
        ExpectedVersion::NoStream,
        vec![event(78)],
    )
    .await
    .unwrap();
    assert_intact(&*target).await;
}

pub async fn copy_in_refusals_leave_the_log_unchanged<B: Backend>(b: &B) {
    let source = b.open().await;
    copy_source(&*source, 9).await;
    let all = read_everything(&*source).await;
    let target = b.open_second().await;
    let base = target.copy_in(all[..4].to_vec()).await.unwrap();
    let rest = || all[4..].to_vec();
    let edit = |i: usize, f: &dyn Fn(&mut RecordedEvent)| {
        let mut batch = rest();
        f(&mut batch[i]);
        batch
    };
    type Check<'a> = Box<dyn Fn(&LogError) -> bool + 'a>;
    let cases: Vec<(&str, Vec<RecordedEvent>, Check<'_>)> = vec![
        (
            "a gap before the batch",
            all[5..].to_vec(),
            Box::new(|e| {
                breach(e, 5, |b| {
                    *b == Breach::PositionGap {
                        expected: 4,
                        found: 5,
                    }
                })
            }),
        ),
        (
            "events already held",
            all[2..8].to_vec(),
            Box::new(|e| breach(e, 2, |b| matches!(b, Breach::PositionGap { .. }))),
        ),
        (
            "a gap inside the batch",
            {
                let mut batch = rest();
                batch.remove(2);
                batch
            },
            Box::new(|e| breach(e, 7, |b| matches!(b, Breach::PositionGap { .. }))),
        ),
        (
            "a wrong previous hash at the seam",
            edit(0, &|e| {
                e.prev_log_hash = Hash([7; 32]);
                rehash(e);
            }),
            Box::new(|e| breach(e, 4, |b| *b == Breach::LogLinkBroken)),
        ),
        (
            "a wrong previous hash inside the batch",
            edit(2, &|e| {
                e.prev_log_hash = all[4].hash;
                rehash(e);
            }),
            Box::new(|e| breach(e, 6, |b| *b == Breach::LogLinkBroken)),
        ),
        (
            "altered data",
            edit(2, &|e| {
                e.data = String::from_utf8(e.data.clone())
                    .unwrap()
                    .replacen("\"n\":", "\"m\":", 1)
                    .into_bytes();
            }),
            Box::new(|e| breach(e, 6, |b| *b == Breach::DataChanged)),
        ),
        (
            "altered metadata",
            edit(1, &|e| {
                e.metadata = b"{\"actor\":\"someone else\"}".to_vec()
            }),
            Box::new(|e| breach(e, 5, |b| *b == Breach::HashMismatch)),
        ),
        (
            "an altered hash",
            edit(3, &|e| e.hash.0[0] ^= 1),
            Box::new(|e| breach(e, 7, |b| *b == Breach::HashMismatch)),
        ),
        (
            "an altered data hash",
            edit(3, &|e| e.data_hash.0[31] ^= 1),
            Box::new(|e| breach(e, 7, |b| *b == Breach::DataChanged)),
        ),
        (
            "time going backwards at the seam",
            edit(0, &|e| {
                e.recorded_at = all[3].recorded_at - 1;
                rehash(e);
            }),
            Box::new(|e| breach(e, 4, |b| *b == Breach::TimeWentBackwards)),
        ),
        (
            "time going backwards inside the batch",
            edit(1, &|e| {
                e.recorded_at = all[4].recorded_at - 1;
                rehash(e);
            }),
            Box::new(|e| breach(e, 5, |b| *b == Breach::TimeWentBackwards)),
        ),
        (
            "an event id already recorded",
            edit(1, &|e| {
                e.event_id = all[0].event_id;
                rehash(e);
            }),
            Box::new(|e| {
                is_refused(e, 5, |r| {
                    *r == CopyRefusal::DuplicateEventId {
                        event_id: all[0].event_id,
                    }
                })
            }),
        ),
        (
            "an event id twice in the batch",
            edit(2, &|e| {
                e.event_id = all[5].event_id;
                rehash(e);
            }),
            Box::new(|e| {
                is_refused(e, 6, |r| {
                    *r == CopyRefusal::DuplicateEventId {
                        event_id: all[5].event_id,
                    }
                })
            }),
        ),
        (
            "a stream version that does not continue",
            edit(1, &|e| {
                e.stream_version += 1;
                rehash(e);
            }),
            Box::new(|e| breach(e, 5, |b| matches!(b, Breach::StreamVersionGap { .. }))),
        ),
        (
            "a stream link that does not continue",
            edit(1, &|e| {
                e.prev_stream_hash = Hash([9; 32]);
                rehash(e);
            }),
            Box::new(|e| breach(e, 5, |b| *b == Breach::StreamLinkBroken)),
        ),
        (
            "a new stream that does not start at version 0",
            edit(0, &|e| {
                e.stream_id = stream("citizen");
                rehash(e);
            }),
            Box::new(|e| {
                breach(e, 4, |b| {
                    matches!(b, Breach::StreamVersionGap { expected: 0, .. })
                })
            }),
        ),
        (
            "an invalid event type",
            edit(2, &|e| {
                e.event_type = "Not valid!".into();
                rehash(e);
            }),
            Box::new(|e| matches!(e, LogError::InvalidEvent { .. })),
        ),
        (
            "an empty batch",
            Vec::new(),
            Box::new(|e| matches!(e, LogError::InvalidAppend { .. })),
        ),
    ];
    for (what, batch, check) in cases {
        let err = target.copy_in(batch).await.unwrap_err();
        assert!(check(&err), "{what}: {err:?}");
        assert_eq!(target.head().await.unwrap(), Some(base), "{what}");
        assert_eq!(read_everything(&*target).await, all[..4], "{what}");
        assert_eq!(*target.watch_head().borrow(), Some(3), "{what}");
    }
    // The right batch still goes in, and the log verifies.
    let head = target.copy_in(rest()).await.unwrap();
    assert_eq!(Some(head), source.head().await.unwrap());
    let report = target.verify_log(Some(head)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    assert_eq!(read_everything(&*target).await, all);
}

pub async fn copy_in_is_serialised_with_appends<B: Backend>(b: &B) {
    let source = b.open().await;
    copy_source(&*source, 9).await;
    let all = read_everything(&*source).await;
    let target = b.open_second().await;
    target.copy_in(all[..4].to_vec()).await.unwrap();
    // A copy races with appends: it goes in whole before them, or is refused whole after one.
    let copy = {
        let (target, batch) = (target.clone(), all[4..].to_vec());
        tokio::spawn(async move { target.copy_in(batch).await })
    };
    let mut appends = Vec::new();
    for w in 0..8u64 {
        let target = target.clone();
        appends.push(tokio::spawn(async move {
            append_one(
                &*target,
                &stream("citizen"),
                ExpectedVersion::NoStream,
                vec![event(500 + w)],
            )
            .await
        }));
    }
    let copied = match copy.await.unwrap() {
        Ok(_) => true,
        Err(e) => {
            assert!(
                breach(&e, 4, |b| matches!(b, Breach::PositionGap { .. })),
                "{e:?}"
            );
            false
        }
    };
    for a in appends {
        a.await.unwrap().unwrap();
    }
    let everything = read_everything(&*target).await;
    assert_eq!(everything.len(), 4 + 8 + if copied { 8 } else { 0 });
    assert_eq!(everything[..4], all[..4]);
    if copied {
        let at = everything
            .iter()
            .position(|e| e.event_id == all[4].event_id)
            .unwrap();
        assert_eq!(everything[at..at + 8], all[4..]);
    }
    assert_intact(&*target).await;
}

pub async fn copy_log_copies_identically<B: Backend>(b: &B) {
    let source = b.open().await;
    copy_source(&*source, 22).await;
    let all = read_everything(&*source).await;
    let source_head = source.head().await.unwrap();
    let target = b.open_second().await;
    let mut seen = Vec::new();
    let report = copy_log(&*source, &*target, 7, |n| seen.push(n))
        .await
        .unwrap();
    assert_eq!(seen, [7, 14, 21, 25]);
    assert_eq!(report.events, 25);
    assert_eq!(report.resumed_from, 0);
    assert_eq!(report.streams, 4);
    assert_eq!(report.source_head, source_head);
    assert_eq!(report.target_head, source_head);
    assert_eq!(
        read_everything(&*target).await,
        all,
        "identical, byte for byte"
    );
    assert_eq!(target.head().await.unwrap(), source_head);
    // Run again: nothing left to copy.
    let again = copy_log(&*source, &*target, 7, |n| {
        panic!("nothing to copy, got {n}")
    })
    .await
    .unwrap();
    assert_eq!((again.events, again.resumed_from), (0, 25));
    assert_eq!(again.target_head, source_head);
    // Appends continue on the copy.
    let s = &all[24].stream_id;
    append_one(&*target, s, ExpectedVersion::Exact(1), vec![event(99)])
        .await
        .unwrap();
    let report = target.verify_log(source_head).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    assert_eq!(report.events, 26);
}

pub async fn copy_log_resumes<B: Backend>(b: &B) {
    let source = b.open().await;
    let streams = copy_source(&*source, 22).await;
    let all = read_everything(&*source).await;
    let target = b.open_second().await;
    // What an interrupted run leaves: a prefix.
    target.copy_in(all[..10].to_vec()).await.unwrap();
    let mut seen = Vec::new();
    let report = copy_log(&*source, &*target, 4, |n| seen.push(n))
        .await
        .unwrap();
    // The source is read (and verified) from 0; only what the target lacks is written.
    assert_eq!(seen, [12, 16, 20, 24, 25]);
    assert_eq!((report.events, report.resumed_from), (15, 10));
    assert_eq!(report.target_head, source.head().await.unwrap());
    assert_eq!(read_everything(&*target).await, all);

    // The source grows: the next run copies only the new events.
    append_one(
        &*source,
        &streams[2],
        ExpectedVersion::Any,
        vec![event(200), event(201)],
    )
    .await
    .unwrap();
    let report = copy_log(&*source, &*target, 4, |_| {}).await.unwrap();
    assert_eq!((report.events, report.resumed_from), (2, 25));
    assert_eq!(
        read_everything(&*target).await,
        read_everything(&*source).await
    );

    // A target that is not a prefix of the source is refused, and left as it is.
    append_one(
        &*target,
        &streams[0],
        ExpectedVersion::Any,
        vec![event(300)],
    )
    .await
    .unwrap();
    let before = read_everything(&*target).await;
    let err = copy_log(&*source, &*target, 4, |_| {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            LogError::CopyDiverged {
                position: 27,
                source_hash: None,
                target_hash: Some(_)
            }
        ),
        "{err:?}"
    );
    append_one(
        &*source,
        &streams[0],
        ExpectedVersion::Any,
        vec![event(301)],
    )
    .await
    .unwrap();
    let err = copy_log(&*source, &*target, 4, |_| {}).await.unwrap_err();
    match err {
        LogError::CopyDiverged {
            position: 27,
            source_hash: Some(s),
            target_hash: Some(t),
        } => assert_ne!(s, t),
        e => panic!("{e:?}"),
    }
    assert_eq!(read_everything(&*target).await, before);
}

pub async fn copy_log_refuses_a_corrupted_source<B: Backend>(b: &B) {
    let (source, _) = history(b).await;
    b.tamper(Tamper::FlipDataByte { position: 5 }).await;
    let target = b.open_second().await;
    let err = copy_log(&*source, &*target, 3, |_| {}).await.unwrap_err();
    assert!(
        matches!(err, LogError::Corrupted { position: 5, ref reason } if reason.contains("source")),
        "{err:?}"
    );
    // The batch holding the breach was not copied; what was copied before verifies.
    let copied = read_everything(&*target).await;
    assert_eq!(copied.len(), 3);
    assert_intact(&*target).await;
}

pub async fn copy_keeps_redactions<B: Backend>(b: &B) {
    let (source, head) = history(b).await;
    b.tamper(Tamper::Redact { position: 4 }).await;
    // A redaction leaves the chain intact…
    let report = source.verify_log(Some(head)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    let all = read_everything(&*source).await;
    assert!(all[4].is_redacted() && !all[3].is_redacted());
    // …and is copied as such.
    let target = b.open_second().await;
    let report = copy_log(&*source, &*target, 5, |_| {}).await.unwrap();
    assert_eq!(report.target_head, Some(head));
    let copied = read_everything(&*target).await;
    assert_eq!(copied, all);
    assert!(copied[4].is_redacted());
    let report = target.verify_log(Some(head)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
}
