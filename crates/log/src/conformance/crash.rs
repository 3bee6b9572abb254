//! Crash safety, for any backend: a child process appends and reports each acknowledged append
//! on stdout; the parent SIGKILLs it at a random moment, five times over the same store, and
//! after each kill checks that every acknowledged event is in the log where it was
//! acknowledged, that the chain verifies, and that the store takes an append at once (a dead
//! appender leaves no lock behind).
//!
//! The child is the same test binary, re-run with [`CHILD_ENV`] set to the store's place, so a
//! backend provides a [`CrashStore`] and expands [`crash_tests!`](crate::crash_tests) at the
//! root of one of its test files (the child is started by the test's exact name).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use super::event;
use crate::{EventLog, ExpectedVersion, StreamAppend, StreamId};

/// Set in the child process to the place of the store it appends to.
pub const CHILD_ENV: &str = "CITYDB_CRASH_CHILD";

/// The test (at the root of the test binary) that runs the child's appends.
pub const CHILD_TEST: &str = "crash_child_entry";

/// A backend under the crash test.
#[async_trait]
pub trait CrashStore: Send + Sync + Sized {
    /// Makes a new, empty store (in the parent only: making one may start a server).
    async fn create() -> Self;
    /// Where the store is, in a form [`CrashStore::open`] takes in another process (a file
    /// path, a URL).
    fn place(&self) -> String;
    /// Opens the store at `place`: in the child, and in the parent after each kill.
    async fn open(place: &str) -> Arc<dyn EventLog>;
}

/// Runs the crash test against the [`CrashStore`] `$store`: the child's entry point and the
/// parent. Expand it at the root of a test file. `run_if` as for
/// [`conformance_tests!`](crate::conformance_tests), for the parent only.
#[macro_export]
macro_rules! crash_tests {
    ($store:ty) => {
        $crate::crash_tests!($store, run_if = $crate::conformance::always);
    };
    ($store:ty, run_if = $run_if:path) => {
        /// In the child: appends forever; in a normal run, nothing.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn crash_child_entry() {
            $crate::conformance::crash::child(|place| async move {
                <$store as $crate::conformance::crash::CrashStore>::open(&place).await
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn acknowledged_appends_survive_sigkill() {
            if std::env::var($crate::conformance::crash::CHILD_ENV).is_ok()
                || !$run_if("acknowledged_appends_survive_sigkill")
            {
                return;
            }
            let store = <$store as $crate::conformance::crash::CrashStore>::create().await;
            $crate::conformance::crash::acknowledged_appends_survive_sigkill(&store).await;
        }
    };
}

/// In the child (when [`CHILD_ENV`] is set): opens the store with `open` and appends forever
/// from eight tasks, printing `event_id position` per acknowledged event. Otherwise returns.
pub async fn child<F, Fut>(open: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn EventLog>>,
{
    let Ok(place) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do in a normal run.
    };
    let log = open(place).await;
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new("citizen", Uuid::now_v7()).expect("a valid stream id");
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
                    .expect("the child's append failed");
                let first = out.first_position.expect("events were appended");
                for (k, id) in ids.iter().enumerate() {
                    println!("{id} {}", first + k as u64);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a child task panicked");
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The parent: five rounds of start the child, wait for its first acknowledgement, SIGKILL it
/// after a random 200–600 ms, then reopen the store and check it.
pub async fn acknowledged_appends_survive_sigkill<S: CrashStore>(store: &S) {
    let place = store.place();
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut acknowledged: Vec<(Uuid, u64)> = Vec::new();

    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &place)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the child");
        let stdout = child.stdout.take().expect("the child's stdout is piped");
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
        let delay = Duration::from_millis(200 + xorshift(&mut seed) % 400);
        tokio::time::sleep(delay).await;
        child.kill().expect("cannot kill the child"); // SIGKILL on Unix
        child.wait().expect("cannot reap the child");
        let acks = reader.join().expect("the reader panicked");
        assert!(
            !acks.is_empty(),
            "round {round}: the child acknowledged nothing in {:?}",
            start.elapsed()
        );
        acknowledged.extend(acks);

        let log = S::open(&place).await;
        let report = log.verify_log(None).await.expect("verify");
        assert!(report.is_intact(), "round {round}: {:?}", report.corruption);
        for (id, position) in &acknowledged {
            let found = log.read_all(*position, 1).await.expect("read");
            assert_eq!(
                found.first().map(|e| e.event_id),
                Some(*id),
                "round {round}: acknowledged event {id} is not at position {position}"
            );
        }
        assert!(report.events as usize >= acknowledged.len());
        // The dead child left no lock behind: this process can append right away.
        let probe = StreamId::new("probe", Uuid::now_v7()).expect("a valid stream id");
        tokio::time::timeout(
            Duration::from_secs(10),
            log.append(vec![StreamAppend::new(
                probe,
                ExpectedVersion::NoStream,
                vec![event(round)],
            )]),
        )
        .await
        .expect("the store did not take an append after the kill")
        .expect("append after the kill");
    }
}
