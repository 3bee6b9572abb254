//! Event-log benchmarks on both backends — the embedded SQLite file (`synchronous=FULL`) and
//! PostgreSQL (a throwaway local cluster, fsync and synchronous_commit on) — with durable
//! commits and events of realistic size (~550 bytes of JSON data plus metadata).
//!
//! Run: `cargo bench --bench log` (figures and their interpretation: docs/benchmarks.md).
//! `CITYDB_BENCH_BACKENDS=sqlite` limits the run to one backend.
//! The `machine_limits` group measures what this machine can do at best on the same bytes:
//! blake3 throughput and fsync'd sequential writes, to put the log's figures in proportion.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use uuid::Uuid;

use citydb_log::{EventLog, ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId};
use citydb_postgres::testkit::TestCluster;
use citydb_postgres::{PostgresConfig, PostgresLog};
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};

fn realistic_event(n: u64) -> NewEvent {
    let data = json!({
        "citizen_id": Uuid::from_u128(n as u128).to_string(),
        "pin": format!("031{:09}", n % 1_000_000_000),
        "name": { "family": "Nguyễn", "middle": "Thị Thu", "given": "Hoà" },
        "sex": "female",
        "birth_date": "1987-03-14",
        "birth_place": { "commune": "11311", "name": "Phường Hồng Bàng" },
        "residence": { "kind": "permanent", "commune": "11311", "address": "Số 12 ngõ 45 phố Hoàng Văn Thụ, tổ dân phố 7" },
        "ethnicity": "Kinh", "nationality": "VN",
        "parents": { "father": Uuid::from_u128(n as u128 + 7).to_string(), "mother": Uuid::from_u128(n as u128 + 9).to_string() },
        "source": { "register": "birth", "book": "05/2018", "entry": n },
    });
    let metadata = Metadata {
        actor: Some("steward-hong-bang-01".into()),
        role: Some("steward".into()),
        reason: Some("initial load".into()),
        legal_basis: Some("QĐ 19/2025/QĐ-TTg".into()),
        correlation_id: Some(Uuid::now_v7()),
        ..Metadata::default()
    };
    NewEvent::new("CitizenRegistered", 1, &data, &metadata).unwrap()
}

/// `n` realistic events over `n / 4` citizen streams, chained as a log would chain them.
fn in_memory_chain(n: u64) -> Vec<citydb_log::RecordedEvent> {
    let mut out: Vec<citydb_log::RecordedEvent> = Vec::new();
    let mut streams: std::collections::HashMap<u64, (u64, citydb_log::Hash)> = Default::default();
    let mut prev_log = citydb_log::Hash::ZERO;
    for i in 0..n {
        let e = realistic_event(i);
        let s = i % (n / 4).max(1);
        let stream = StreamId::new("citizen", Uuid::from_u128(0x0193_0000 + s as u128)).unwrap();
        let (version, prev_stream) = streams
            .get(&s)
            .copied()
            .unwrap_or((0, citydb_log::Hash::ZERO));
        let recorded_at = 1_764_201_600_000_000 + i as i64;
        let env = citydb_log::chain::Envelope {
            position: i,
            stream_id: stream.as_str(),
            stream_version: version,
            event_id: e.event_id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            recorded_at,
            metadata: &e.metadata,
        };
        let link = citydb_log::chain::ChainLink::compute(&env, &e.data, prev_stream, prev_log);
        streams.insert(s, (version + 1, link.hash));
        prev_log = link.hash;
        out.push(citydb_log::RecordedEvent {
            position: i,
            stream_id: stream,
            stream_version: version,
            event_id: e.event_id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            recorded_at,
            data: e.data,
            metadata: e.metadata,
            data_hash: link.data_hash,
            prev_stream_hash: link.prev_stream_hash,
            prev_log_hash: link.prev_log_hash,
            hash: link.hash,
        });
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn backends() -> Vec<&'static str> {
    let wanted =
        std::env::var("CITYDB_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    ["sqlite", "postgres"]
        .into_iter()
        .filter(|b| wanted.contains(b))
        .collect()
}

/// A fresh, empty log on `backend` (and the directory to keep alive while it is used).
fn open(
    rt: &tokio::runtime::Runtime,
    backend: &str,
    durability: Durability,
) -> (Option<tempfile::TempDir>, Arc<dyn EventLog>) {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let config = SqliteConfig {
                durability,
                ..SqliteConfig::default()
            };
            let log = SqliteLog::open(dir.path().join("bench.db"), config).unwrap();
            (Some(dir), Arc::new(log))
        }
        _ => {
            let log = rt.block_on(async {
                let url = TestCluster::shared()
                    .unwrap()
                    .create_database()
                    .await
                    .unwrap();
                PostgresLog::connect(&url, PostgresConfig::default())
                    .await
                    .unwrap()
            });
            (None, Arc::new(log))
        }
    }
}

fn stream() -> StreamId {
    StreamId::new("citizen", Uuid::now_v7()).unwrap()
}

/// Appends `total` events from `writers` concurrent tasks, `per_append` events at a time.
async fn append_load(
    log: &Arc<dyn EventLog>,
    writers: u64,
    per_append: u64,
    total: u64,
) -> Duration {
    let appends_per_writer = total / writers / per_append;
    // Prepare the events first, so that only the log is timed.
    let mut work = Vec::new();
    for w in 0..writers {
        let batches: Vec<Vec<NewEvent>> = (0..appends_per_writer)
            .map(|a| {
                (0..per_append)
                    .map(|k| realistic_event(w * 1_000_000 + a * per_append + k))
                    .collect()
            })
            .collect();
        work.push(batches);
    }
    let start = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|batches| {
            let log = log.clone();
            tokio::spawn(async move {
                let s = stream();
                for events in batches {
                    log.append(vec![StreamAppend::new(
                        s.clone(),
                        ExpectedVersion::Any,
                        events,
                    )])
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn appends(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("append");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    use Durability::{Full, Normal};
    for backend in backends() {
        for (name, durability, writers, per_append, total) in [
            ("single_event_1_writer", Full, 1u64, 1u64, 1_000u64),
            ("single_event_64_writers", Full, 64, 1, 6_400),
            ("batch_100_1_writer", Full, 1, 100, 20_000),
            ("batch_100_4_writers", Full, 4, 100, 20_000),
            // Without fsync per commit: what the CPU alone allows (not the default).
            ("batch_100_1_writer_no_fsync", Normal, 1, 100, 20_000),
        ] {
            if backend == "postgres" && durability == Normal {
                continue;
            }
            let (_store, log) = open(&rt, backend, durability);
            g.throughput(Throughput::Elements(total));
            g.bench_function(format!("{backend}/{name}"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| rt.block_on(append_load(&log, writers, per_append, total)))
                        .sum()
                })
            });
        }
    }
    g.finish();
}

const READ_EVENTS: u64 = 100_000;

fn reads_and_verify(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("log");
    g.sample_size(10)
        .throughput(Throughput::Elements(READ_EVENTS));
    for backend in backends() {
        let (_store, log) = open(&rt, backend, Durability::Full);
        rt.block_on(append_load(&log, 4, 500, READ_EVENTS));
        g.bench_function(format!("{backend}/read_all_100k"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut from = 0;
                    loop {
                        let batch = log.read_all(from, 4096).await.unwrap();
                        let Some(last) = batch.last() else { break };
                        from = last.position + 1;
                    }
                    assert_eq!(from, READ_EVENTS);
                })
            })
        });
        g.bench_function(format!("{backend}/verify_log_100k"), |b| {
            b.iter(|| {
                let report = rt.block_on(log.verify_log(None)).unwrap();
                assert!(report.is_intact());
                assert_eq!(report.events, READ_EVENTS);
            })
        });
        // The same log verified as a city's is (stream links set aside in partitions,
        // `LogVerifier::bounded`): what bounding the memory costs.
        if let Some(dir) = &_store {
            let config = SqliteConfig {
                verify_streams_in_memory: 1 << 14,
                ..SqliteConfig::default()
            };
            let bounded = SqliteLog::open(dir.path().join("bench.db"), config).unwrap();
            g.bench_function(format!("{backend}/verify_log_100k_links_set_aside"), |b| {
                b.iter(|| {
                    let report = rt.block_on(bounded.verify_log(None)).unwrap();
                    assert!(report.is_intact());
                    assert_eq!(report.events, READ_EVENTS);
                })
            });
        }
    }
    g.finish();
}

fn machine_limits(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine_limits");
    g.sample_size(10);
    // The hashing one event costs: blake3 of its data and its event hash over the envelope —
    // exactly what appending or verifying computes (`ChainLink::compute`), on one core.
    let e = realistic_event(1);
    let stream = "citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc";
    let envelope = citydb_log::chain::Envelope {
        position: 1_000_000,
        stream_id: stream,
        stream_version: 3,
        event_id: e.event_id,
        event_type: &e.event_type,
        schema_version: 1,
        recorded_at: 1_764_201_600_000_000,
        metadata: &e.metadata,
    };
    g.throughput(Throughput::Elements(1));
    // The checks every store makes of an event before appending it (`NewEvent::validate`:
    // type, size, data is JSON, metadata is a JSON object): per event, on one core.
    g.bench_function("validate_per_event", |b| {
        b.iter(|| std::hint::black_box(&e).validate(1 << 20).unwrap())
    });
    g.bench_function("blake3_per_event", |b| {
        b.iter(|| {
            let link = citydb_log::chain::ChainLink::compute(
                std::hint::black_box(&envelope),
                &e.data,
                citydb_log::Hash::ZERO,
                citydb_log::Hash::ZERO,
            );
            std::hint::black_box(link.hash)
        })
    });
    // Verifying a chain already in memory on one core, hashing sixteen or eight events at a time
    // (`LogVerifier::check_batch`, as a store's verification does): the ceiling of a
    // verifying thread with no storage engine under it.
    let chain = in_memory_chain(4096);
    g.throughput(Throughput::Elements(chain.len() as u64));
    g.bench_function("verify_in_memory_one_core", |b| {
        let mut batch = citydb_log::chain::EventBatch::default();
        b.iter(|| {
            let mut v = citydb_log::chain::LogVerifier::new(None);
            for events in chain.chunks(64) {
                batch.clear();
                for e in events {
                    batch.push(&citydb_log::chain::EventView::from(e));
                }
                v.check_batch(&batch).unwrap();
            }
            assert!(v.finish().is_intact());
        })
    });
    g.throughput(Throughput::Elements(1));
    // One fsync'd write of 4 KiB: the floor under a durable commit.
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("fsync")).unwrap();
    let page = vec![1u8; 4096];
    g.bench_function("write_4k_fsync", |b| {
        b.iter(|| {
            f.write_all(&page).unwrap();
            f.sync_data().unwrap();
        })
    });
    // Sequential write bandwidth with one fsync per 1 MiB.
    let chunk = vec![2u8; 1 << 20];
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("write_1m_fsync", |b| {
        b.iter(|| {
            f.write_all(&chunk).unwrap();
            f.sync_data().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, machine_limits, appends, reads_and_verify);
criterion_main!(benches);
