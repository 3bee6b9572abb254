//! Benchmarks of reading what the store holds as JSON: a projected record state (read on every
//! record a GraphQL request shows, and by a rebuild for every record it cannot keep in memory)
//! and an event's payload (read by every fold: a rebuild, a catch-up, a past state).
//!
//! Run: `cargo bench --bench states` (figures: docs/benchmarks.md, "Reading states and events
//! without buffering"). The inputs are real: a city of `CITYDB_STATES_CITIZENS` (2,000)
//! citizens made by `citydb fixtures` and imported by `citydb import` into a temporary
//! directory; the bench then reads every state of `projections.db` and every event of the
//! record and key streams of `log.db` (the command streams' receipts are not domain events).

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, Throughput};

use citydb_domain::business::Business;
use citydb_domain::citizen::Citizen;
use citydb_domain::parcel::Parcel;
use citydb_domain::{Record, upcast_slice};
use serde::Deserialize;

/// What serde's derive makes of `Record`'s stored format (internally tagged): it copies the
/// object into a buffer before reading the variant. `Record`'s own reader takes the tag first
/// and reads the rest straight from the text; this is the comparison.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(dead_code)]
enum Buffered {
    Citizen(Citizen),
    Business(Business),
    Parcel(Parcel),
}

const BIN: &str = env!("CARGO_BIN_EXE_citydb");

struct StoredEvent {
    event_type: String,
    schema_version: u32,
    data: Vec<u8>,
}

fn run(args: &[&str]) {
    let status = Command::new(BIN)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run citydb {args:?}: {e}"));
    assert!(status.success(), "citydb {args:?} failed: {status}");
}

/// Every state of the projections and every event of the log of a freshly imported city.
fn city(dir: &Path) -> (Vec<String>, Vec<StoredEvent>) {
    let citizens = std::env::var("CITYDB_STATES_CITIZENS").unwrap_or_else(|_| "2000".into());
    let fixture = dir.join("city.ndjson");
    let data = dir.join("data");
    let (fixture_arg, data_arg) = (fixture.to_str().unwrap(), data.to_str().unwrap());
    run(&["fixtures", "--citizens", &citizens, "--out", fixture_arg]);
    run(&[
        "import",
        "--data",
        data_arg,
        "--progress",
        "none",
        fixture_arg,
    ]);
    let projections = rusqlite::Connection::open(data.join("projections.db")).unwrap();
    let states = projections
        .prepare("SELECT state FROM records ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    let log = rusqlite::Connection::open(data.join("log.db")).unwrap();
    let events = log
        .prepare(
            "SELECT event_type, schema_version, data FROM events
             WHERE data IS NOT NULL AND stream_id NOT LIKE 'command-%' ORDER BY position",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(StoredEvent {
                event_type: r.get(0)?,
                schema_version: r.get(1)?,
                data: r.get::<_, String>(2)?.into_bytes(),
            })
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (states, events)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (states, events) = city(dir.path());
    eprintln!(
        "[states] {} states ({} bytes on average), {} events",
        states.len(),
        states.iter().map(String::len).sum::<usize>() / states.len().max(1),
        events.len()
    );
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("states");
    g.throughput(Throughput::Elements(states.len() as u64));
    g.bench_function("record_from_json", |b| {
        b.iter(|| {
            for s in &states {
                let record: Record = serde_json::from_str(s).unwrap();
                std::hint::black_box(record);
            }
        })
    });
    g.bench_function("record_from_json_buffered", |b| {
        b.iter(|| {
            for s in &states {
                let record: Buffered = serde_json::from_str(s).unwrap();
                std::hint::black_box(record);
            }
        })
    });
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("event_upcast_slice", |b| {
        b.iter(|| {
            for e in &events {
                let event = upcast_slice(&e.event_type, e.schema_version, &e.data).unwrap();
                std::hint::black_box(event);
            }
        })
    });
    g.finish();
    c.final_summary();
}
