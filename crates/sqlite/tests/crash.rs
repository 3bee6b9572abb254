//! Crash safety: a child process appends and reports each acknowledged append on stdout; the
//! parent SIGKILLs it at a random moment, several times over the same file, then checks that
//! every acknowledged event is in the log, where it was acknowledged, and that the chain
//! verifies.
//!
//! The child is this same test binary, re-run with `CITYDB_CRASH_CHILD` set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use citydb_log::conformance::event;
use citydb_log::{EventLog, ExpectedVersion, StreamAppend, StreamId};
use citydb_sqlite::{SqliteConfig, SqliteLog};

const CHILD_ENV: &str = "CITYDB_CRASH_CHILD";

/// In the child: append forever from several tasks, printing `event_id position` per ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_entry() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do in a normal run.
    };
    let log = Arc::new(SqliteLog::open(&path, SqliteConfig::default()).unwrap());
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new("citizen", Uuid::now_v7()).unwrap();
            for i in 0.. {
                // Mix single events and small batches.
                let events: Vec<_> = (0..1 + (i + w) % 4)
                    .map(|k| event(w * 1_000_000 + i * 10 + k))
                    .collect();
                let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
                let out = log
                    .append(vec![StreamAppend::new(
                        stream.clone(),
                        ExpectedVersion::Any,
                        events,
                    )])
                    .await
                    .unwrap();
                let first = out.first_position.unwrap();
                for (k, id) in ids.iter().enumerate() {
                    println!("{id} {}", first + k as u64);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut acknowledged: Vec<(Uuid, u64)> = Vec::new();

    for round in 0..5 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Read acknowledgements on a thread while the child runs.
        // The reader signals the first acknowledgement, so that the random delay starts once
        // the child is really writing (its start-up time varies with the machine's load).
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                if let (Some(id), Some(pos)) = (parts.next(), parts.next())
                    && let (Ok(id), Ok(pos)) = (id.parse::<Uuid>(), pos.parse::<u64>())
                {
                    if acks.is_empty() {
                        let _ = started_tx.send(());
                    }
                    acks.push((id, pos));
                }
            }
            acks
        });
        let start = Instant::now();
        let _ = started_rx.recv_timeout(Duration::from_secs(60));
        let delay = Duration::from_millis(150 + xorshift(&mut seed) % 400);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        assert!(
            !acks.is_empty(),
            "round {round}: the child acknowledged nothing in {:?}",
            start.elapsed()
        );
        acknowledged.extend(acks);

        let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
        let report = log.verify_log(None).await.unwrap();
        assert!(report.is_intact(), "round {round}: {:?}", report.corruption);
        for (id, position) in &acknowledged {
            let found = log.read_all(*position, 1).await.unwrap();
            assert_eq!(
                found.first().map(|e| e.event_id),
                Some(*id),
                "round {round}: acknowledged event {id} is not at position {position}"
            );
        }
        assert!(report.events as usize >= acknowledged.len());
    }
}
