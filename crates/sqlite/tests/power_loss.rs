//! Power loss: writes that were not synced are lost at the moment of the crash.
//!
//! SIGKILL (`crash.rs`) never loses a write the kernel has accepted, so it would pass with
//! `synchronous=OFF` too. Here the log runs on `testkit::PowerCutVfs`, which keeps every
//! unsynced page in memory; concurrent appenders run until a number of appends (drawn per
//! round) is acknowledged, then the power is cut: unsynced pages are dropped, or torn (a random
//! subset reaches the disk). The files are then reopened with the ordinary VFS, as after a
//! reboot, and every acknowledged event must be there, where it was acknowledged, and the chain
//! must verify. The same harness, run on a store opened with `synchronous=OFF`, must find the
//! loss — which shows that it can fail.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use citydb_log::conformance::event;
use citydb_log::{EventLog, ExpectedVersion, StreamAppend, StreamId};
use citydb_sqlite::testkit::{CutReport, PowerCutVfs};
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};

/// An acknowledged event: where the log said it put it.
#[derive(Clone, Debug)]
struct Acked {
    event_id: Uuid,
    stream: StreamId,
    version: u64,
    position: u64,
}

const APPENDERS: u64 = 6;

/// When the power goes.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Once this many events are acknowledged: by the test, between two of its appends.
    AfterAcks(usize),
    /// Right after this many writes through the VFS (from the open on): by the VFS, wherever
    /// the writer is, most often between a commit's writes and its sync. If the appenders
    /// reach `FALLBACK_ACKS` first, the test cuts.
    AtWrite(u64),
}

const FALLBACK_ACKS: usize = 3_000;

/// Appends from `APPENDERS` tasks until the cut (tearing with `tear`), lets the appenders
/// fail, closes the log. Every acknowledgement any task received, before or after the cut, is
/// returned: an acknowledged append must be durable whenever the acknowledgement arrives.
async fn run_until_cut(
    path: &Path,
    durability: Durability,
    cut: Cut,
    tear: Option<u64>,
) -> (Vec<Acked>, CutReport) {
    let vfs = Arc::new(PowerCutVfs::register().expect("register the VFS"));
    let cut_after = match cut {
        Cut::AfterAcks(n) => n,
        Cut::AtWrite(n) => {
            vfs.cut_power_at_write(n, tear);
            FALLBACK_ACKS
        }
    };
    let config = SqliteConfig {
        durability,
        vfs: Some(vfs.name().to_owned()),
        ..SqliteConfig::default()
    };
    let log = match SqliteLog::open(path, config) {
        Ok(log) => Arc::new(log),
        // The power went while the file and its schema were being created: nothing was
        // acknowledged, and the reboot must still find a store that opens.
        Err(e) if vfs.is_cut() => {
            println!("cut while opening: {e}");
            return (Vec::new(), vfs.last_cut().unwrap_or_default());
        }
        Err(e) => panic!("cannot open through the VFS: {e}"),
    };
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let cut_started = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..APPENDERS {
        let (log, acked, vfs, cut_started) =
            (log.clone(), acked.clone(), vfs.clone(), cut_started.clone());
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new("citizen", Uuid::now_v7()).expect("stream id");
            for i in 0u64.. {
                // Single events and small batches, each its own append.
                let events: Vec<_> = (0..1 + (i + w) % 3)
                    .map(|k| event(w * 10_000_000 + i * 10 + k))
                    .collect();
                let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
                let appended = log
                    .append(vec![StreamAppend::new(
                        stream.clone(),
                        ExpectedVersion::Any,
                        events,
                    )])
                    .await;
                let Ok(out) = appended else {
                    // Only the cut makes appends fail here.
                    assert!(
                        vfs.is_cut(),
                        "an append failed before the cut: {appended:?}"
                    );
                    return;
                };
                let (Some(first), Some(first_version)) =
                    (out.first_position, out.streams[0].first_version)
                else {
                    panic!("an append of new events wrote nothing: {out:?}");
                };
                let total = {
                    let mut acked = acked.lock().expect("acked");
                    for (k, id) in ids.iter().enumerate() {
                        acked.push(Acked {
                            event_id: *id,
                            stream: stream.clone(),
                            version: first_version + k as u64,
                            position: first + k as u64,
                        });
                    }
                    acked.len()
                };
                if total >= cut_after && !cut_started.swap(true, Ordering::SeqCst) {
                    vfs.cut_power(tear);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("appender");
    }
    drop(log); // Closing after the cut writes nothing: every write fails.
    let acked = acked.lock().expect("acked").clone();
    (acked, vfs.last_cut().unwrap_or_default())
}

/// Reopens the files as after a reboot (the ordinary VFS) and checks them: every acknowledged
/// event where it was acknowledged, and an intact chain. `Err` describes the first loss found.
async fn check_after_reboot(path: &Path, acked: &[Acked]) -> Result<usize, String> {
    let log = SqliteLog::open(path, SqliteConfig::default())
        .map_err(|e| format!("the store does not open after the power cut: {e}"))?;
    let report = log
        .verify_log(None)
        .await
        .map_err(|e| format!("verification could not run: {e}"))?;
    if !report.is_intact() {
        return Err(format!("the chain is broken: {report:?}"));
    }
    let mut present = HashMap::new();
    let mut from = 0;
    loop {
        let page = log
            .read_all(from, 10_000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for e in page {
            present.insert(e.event_id, e);
        }
    }
    let missing = acked
        .iter()
        .filter(|a| !present.contains_key(&a.event_id))
        .count();
    if missing > 0 {
        return Err(format!(
            "{missing} of {} acknowledged events are missing after the power cut",
            acked.len()
        ));
    }
    for a in acked {
        let e = &present[&a.event_id];
        if (e.position, &e.stream_id, e.stream_version) != (a.position, &a.stream, a.version) {
            return Err(format!("{a:?} was found elsewhere: {e:?}"));
        }
    }
    // The store takes appends again after the reboot, chained on the survivors.
    let stream = StreamId::new("citizen", Uuid::now_v7()).map_err(|e| e.to_string())?;
    log.append(vec![StreamAppend::new(
        stream,
        ExpectedVersion::NoStream,
        vec![event(u64::MAX)],
    )])
    .await
    .map_err(|e| format!("no append after the reboot: {e}"))?;
    let report = log.verify_log(None).await.map_err(|e| e.to_string())?;
    if !report.is_intact() {
        return Err(format!(
            "the chain broke on the first append after the reboot: {report:?}"
        ));
    }
    Ok(present.len())
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_power_loss() {
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    println!("seed {seed:#x}");
    let (mut acknowledged, mut lost, mut torn) = (0, 0, 0);
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("power.db");
        // Half the rounds cut at a write (from the schema's first pages to a thousand writes
        // in), half after a number of acknowledged events; every other pair of rounds tears
        // the unsynced pages instead of dropping them all.
        let cut = match round % 2 {
            0 => Cut::AtWrite(1 + xorshift(&mut seed) % 1_000),
            _ => Cut::AfterAcks(1 + (xorshift(&mut seed) % 400) as usize),
        };
        let tear = (round % 4 >= 2).then(|| xorshift(&mut seed));
        let (acked, report) = run_until_cut(&path, Durability::Full, cut, tear).await;
        let survived = check_after_reboot(&path, &acked)
            .await
            .unwrap_or_else(|loss| panic!("round {round} ({cut:?}, tear {tear:?}): {loss}"));
        assert!(survived >= acked.len());
        acknowledged += acked.len();
        lost += report.pages_lost;
        torn += report.pages_written;
    }
    // The cuts did drop writes: otherwise the test would prove nothing.
    assert!(lost > 0, "no unsynced page was ever lost");
    println!(
        "{acknowledged} acknowledged events survived {ROUNDS} power cuts \
         ({lost} unsynced pages lost, {torn} torn in)"
    );
}

const ROUNDS: usize = 16;

/// The harness catches a store that does not sync: with `synchronous=OFF` nothing reaches the
/// disk before the cut, and the check reports the acknowledged events as missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_power_cut_catches_a_store_that_does_not_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("unsynced.db");
    let (acked, report) = run_until_cut(&path, Durability::Off, Cut::AfterAcks(200), None).await;
    assert!(report.pages_lost > 0, "{report:?}");
    let loss = check_after_reboot(&path, &acked)
        .await
        .expect_err("synchronous=OFF lost nothing: the power cut does not drop unsynced writes");
    assert!(loss.contains("missing"), "{loss}");
}

/// Synced data is not lost: with the default durability and no append in flight, a cut drops
/// nothing that matters and the log reopens with all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_after_the_last_acknowledgement_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("quiet.db");
    let vfs = PowerCutVfs::register().expect("register");
    let config = SqliteConfig {
        vfs: Some(vfs.name().to_owned()),
        ..SqliteConfig::default()
    };
    let log = SqliteLog::open(&path, config).expect("open");
    let stream = StreamId::new("citizen", Uuid::now_v7()).expect("stream");
    let out = log
        .append(vec![StreamAppend::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            (0..5).map(event).collect(),
        )])
        .await
        .expect("append");
    assert!(vfs.flushes() > 0, "a FULL commit synced nothing");
    vfs.cut_power(None);
    drop(log);
    let log = SqliteLog::open(&path, SqliteConfig::default()).expect("reopen");
    let events = log
        .read_stream(&stream, 0, citydb_log::Direction::Forward, 10)
        .await
        .expect("read");
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].position, out.last_position.expect("last"));
    assert!(log.verify_log(None).await.expect("verify").is_intact());
}
