//! Group commit: requests queued together share a transaction, and one that fails at INSERT
//! fails alone without deciding the others.

use super::*;

/// Requests queued together commit in one transaction, and a request whose INSERT fails inside
/// such a group is rolled back to its savepoint and fails alone. The failure is provoked with a
/// trigger that refuses one event type; a clash of event ids between members of one group
/// is refused too, and a failing request alone in its transaction leaves the connection usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_fail_alone() {
    if TestCluster::shared_or_skip("group_members_fail_alone").is_none() {
        return;
    }
    let url = fresh_db().await;
    let log = Arc::new(open(&url).await);
    install_poison(&url).await;
    let poisoned = || {
        let mut e = event(0);
        e.event_type = "Poison".into();
        e
    };
    let clash = event(1);
    let mut tasks = Vec::new();
    for w in 0..48u64 {
        let (log, clash) = (log.clone(), clash.clone());
        let e = match w % 8 {
            0 => poisoned(),
            4 => clash,
            _ => event(w),
        };
        tasks.push(tokio::spawn(async move {
            let r = log
                .append(vec![StreamAppend::new(
                    stream("citizen"),
                    ExpectedVersion::NoStream,
                    vec![e],
                )])
                .await;
            (w, r)
        }));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (w, Err(LogError::Storage(msg))) if w % 8 == 0 => {
                assert!(msg.detail.contains("poisoned"), "{msg}")
            }
            (w, Ok(_)) if w % 8 != 0 => ok += 1,
            (w, Err(LogError::IdempotencyConflict { .. })) if w % 8 == 4 => conflicts += 1,
            (w, r) => panic!("request {w}: {r:?}"),
        }
    }
    // The clashing id lands once; its five other senders conflict.
    assert_eq!((ok, conflicts), (37, 5));
    let all = read_everything(&*log).await;
    assert_eq!(all.len(), 37);
    assert_eq!(
        all.iter().filter(|e| e.event_id == clash.event_id).count(),
        1
    );
    // One transaction reads the clock once: fewer timestamps than requests means requests
    // were committed together.
    let stamps: HashSet<i64> = all.iter().map(|e| e.recorded_at).collect();
    assert!(
        stamps.len() < all.len(),
        "no two requests shared a transaction"
    );
    assert_intact(&*log, None).await;

    // Alone in its transaction, a failing request leaves the writer's connection usable.
    let err = log
        .append(vec![StreamAppend::new(
            stream("citizen"),
            ExpectedVersion::Any,
            vec![poisoned()],
        )])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::Storage(_)), "{err:?}");
    let out = log
        .append(vec![StreamAppend::new(
            stream("citizen"),
            ExpectedVersion::Any,
            vec![event(99)],
        )])
        .await
        .unwrap();
    assert_eq!(out.first_position, Some(37));
    assert_intact(&*log, None).await;
}

/// Installs a trigger that refuses events of type `Poison`: an INSERT failure no check of the
/// log can foresee.
async fn install_poison(url: &str) {
    testkit::connect(url)
        .await
        .unwrap()
        .batch_execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.event_type = 'Poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON events
                 FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await
        .unwrap();
}

/// When a request of a group fails at INSERT, the requests after it in the same group must not
/// keep answers that were computed against its effects. Here B would conflict with A (both
/// create stream S); A fails, so B must succeed. The two are forced into one group by holding
/// the append lock from another connection while they queue up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_does_not_decide_the_next_ones() {
    if TestCluster::shared_or_skip("a_failed_request_does_not_decide_the_next_ones").is_none() {
        return;
    }
    let url = fresh_db().await;
    let log = Arc::new(open(&url).await);
    install_poison(&url).await;
    let blocker = testkit::connect(&url).await.unwrap();
    blocker
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({})",
            citydb_postgres::APPEND_LOCK_KEY
        ))
        .await
        .unwrap();
    let send = |evs: Vec<NewEvent>, s: StreamId| {
        let log = log.clone();
        tokio::spawn(async move {
            log.append(vec![StreamAppend::new(s, ExpectedVersion::NoStream, evs)])
                .await
        })
    };
    // The writer takes the first request and waits for the lock; A and B queue behind it.
    let first = send(vec![event(0)], stream("citizen"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = stream("citizen");
    let mut poison = event(1);
    poison.event_type = "Poison".into();
    let a = send(vec![poison], s.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = send(vec![event(2)], s.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    blocker.batch_execute("COMMIT").await.unwrap();

    first.await.unwrap().unwrap();
    let a = a.await.unwrap();
    assert!(
        matches!(a, Err(LogError::Storage(ref m)) if m.detail.contains("poisoned")),
        "{a:?}"
    );
    let b = b.await.unwrap().unwrap();
    assert_eq!(b.streams[0].first_version, Some(0));
    assert_eq!(log.stream_version(&s).await.unwrap(), Some(0));
    assert_intact(&*log, None).await;
}
