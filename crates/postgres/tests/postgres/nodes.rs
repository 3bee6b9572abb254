//! Several nodes on one database.

use super::*;

/// Four independent `PostgresLog`s (separate pools and writers, as four citydb nodes would
/// have) append concurrently, some to their own streams, some under exact expected versions to
/// one shared stream; a fifth node, which never writes, follows the log with a subscription,
/// woken only by NOTIFY and polling. The log must be gapless, verify, hold every acknowledged
/// event exactly once where it was acknowledged, and the follower must have seen every
/// position in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_nodes_append_concurrently() {
    if TestCluster::shared_or_skip("independent_nodes_append_concurrently").is_none() {
        return;
    }
    const NODES: u64 = 4;
    const TASKS: u64 = 3;
    const APPENDS: u64 = 25;
    let url = fresh_db().await;
    let shared = stream("parcel");
    let follower: Arc<dyn EventLog> = Arc::new(open(&url).await);
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Arc::new(open(&url).await));
    }
    // Every task appends the same number of events: two per shared-stream append, else 1 to 3.
    let per_task: u64 = (0..APPENDS)
        .map(|i| if i % 5 == 4 { 2 } else { 1 + i % 3 })
        .sum();
    let total = NODES * TASKS * per_task;
    let follow = {
        let follower = follower.clone();
        tokio::spawn(async move {
            let mut sub = subscribe(follower, 0);
            let mut seen = Vec::new();
            while (seen.len() as u64) < total {
                let event = tokio::time::timeout(Duration::from_secs(10), sub.next())
                    .await
                    .expect("the follower stalled");
                seen.push(event.unwrap().position);
            }
            // And nothing more.
            assert!(
                tokio::time::timeout(Duration::from_millis(200), sub.next())
                    .await
                    .is_err()
            );
            seen
        })
    };

    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..TASKS {
            let (node, shared) = (node.clone(), shared.clone());
            let w = n as u64 * TASKS + t;
            tasks.push(tokio::spawn(async move {
                let own = stream("citizen");
                let mut acks: Vec<(Uuid, u64)> = Vec::new();
                let mut shared_wins = 0u64;
                for i in 0..APPENDS {
                    let seq = w * 10_000 + i * 10;
                    if i % 5 == 4 {
                        // Read-modify-write on the shared stream, across nodes: retry on
                        // conflict with the version actually there.
                        loop {
                            let current = node.stream_version(&shared).await.unwrap();
                            let evs = vec![event(seq), event(seq + 1)];
                            let ids: Vec<_> = evs.iter().map(|e| e.event_id).collect();
                            let request = vec![
                                StreamAppend::new(
                                    shared.clone(),
                                    ExpectedVersion::from_current(current),
                                    evs,
                                ),
                                StreamAppend::new(own.clone(), ExpectedVersion::Any, vec![]),
                            ];
                            match node.append(request).await {
                                Ok(out) => {
                                    let first = out.first_position.unwrap();
                                    acks.extend(ids.into_iter().zip(first..));
                                    shared_wins += 1;
                                    break;
                                }
                                Err(LogError::WrongExpectedVersion { .. }) => continue,
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    } else {
                        let evs: Vec<_> = (0..1 + i % 3).map(|k| event(seq + k)).collect();
                        let ids: Vec<_> = evs.iter().map(|e| e.event_id).collect();
                        let out = node
                            .append(vec![StreamAppend::new(
                                own.clone(),
                                ExpectedVersion::Any,
                                evs,
                            )])
                            .await
                            .unwrap();
                        let first = out.first_position.unwrap();
                        acks.extend(ids.into_iter().zip(first..));
                    }
                }
                (acks, shared_wins)
            }));
        }
    }
    let mut acknowledged = Vec::new();
    let mut shared_wins = 0;
    for t in tasks {
        let (acks, wins) = t.await.unwrap();
        acknowledged.extend(acks);
        shared_wins += wins;
    }

    let all = read_everything(&*follower).await;
    assert_eq!(all.len() as u64, total);
    assert_eq!(
        all.len(),
        acknowledged.len(),
        "every event was acknowledged once"
    );
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64, "positions are gapless");
        if i > 0 {
            assert!(
                e.recorded_at >= all[i - 1].recorded_at,
                "time went backwards"
            );
        }
    }
    let mut ids = HashSet::new();
    for (id, position) in &acknowledged {
        assert!(ids.insert(*id), "event {id} acknowledged twice");
        assert_eq!(all[*position as usize].event_id, *id, "event {id} moved");
    }
    assert_eq!(
        follower.stream_version(&shared).await.unwrap(),
        Some(shared_wins * 2 - 1)
    );
    assert_intact(&*follower, None).await;
    for node in &nodes {
        assert_intact(&**node, None).await;
    }
    let seen = follow.await.unwrap();
    assert_eq!(
        seen,
        (0..all.len() as u64).collect::<Vec<_>>(),
        "the follower saw every position once, in order"
    );
}
