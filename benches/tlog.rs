//! Benchmarks of the verifiable log (issue 14, item 9): how fast the Merkle tree is kept, how
//! fast proofs are answered from its tiles, what signing and checking a checkpoint costs, and
//! how many tile requests a real node serves.
//!
//! Run: `cargo bench --bench tlog` (figures and their reading: docs/benchmarks.md, "The
//! verifiable log (issue 14)"). Besides criterion's figures it prints a summary (latency
//! percentiles, HTTP load) at the end and writes it to `target/tmp/tlog-bench/results.md`.
//!
//! Parameters (environment):
//! - `CITYDB_TLOG_BENCH`: which parts run (default `maintenance,proofs,checkpoint,serving`);
//! - `CITYDB_TLOG_PROOF_LEAVES` (10,000,000): the size of the tree proofs are asked of. Its
//!   SQLite file is built once under `target/tmp/tlog-bench/` and reused by later runs;
//! - `CITYDB_TLOG_CITIZENS` (20,000): the city of `citydb fixtures` whose imported log is caught
//!   up and served (kept under `target/tmp/tlog-bench/city-<N>/` and reused);
//! - `CITYDB_TLOG_CLIENTS` (32) keep-alive HTTP clients, `CITYDB_TLOG_SECONDS` (5) of load per
//!   resource after a 1 s warm-up.
//!
//! Everything runs on 127.0.0.1; every load is bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use sha2::{Digest, Sha256};

use citydb_log::EventLog;
use citydb_sqlite::{SqliteConfig, SqliteLog, SqliteTiles};
use citydb_tlog::contract::TestLeaves;
use citydb_tlog::hash::leaf_hash;
use citydb_tlog::memory::MemoryTiles;
use citydb_tlog::proof::{verify_consistency, verify_inclusion};
use citydb_tlog::{Checkpoint, KeyKind, LogLeaves, Query, SignerKey, TileStore, Tlog};

/// The `citydb` binary cargo built for this bench; `CITYDB_TLOG_BIN` runs another (a copy kept
/// out of the shared target directory, which other builds overwrite).
fn bin() -> String {
    std::env::var("CITYDB_TLOG_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_citydb").to_owned())
}
/// Entries per growth step: 64 Ki, what `Tlog::catch_up` reads and stores at once
/// (`citydb_tlog::store::CATCH_UP_BATCH`).
const BATCH: usize = 1 << 16;
/// A growing benchmark tree starts again from empty past this size, so that memory and disk
/// stay bounded however many iterations criterion asks for.
const RESTART_AT: u64 = 4 << 20;
const ORIGIN: &str = "citydb.bench/log";

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn wanted(part: &str) -> bool {
    std::env::var("CITYDB_TLOG_BENCH")
        .map(|v| v.split(',').any(|p| p.trim() == part))
        .unwrap_or(true)
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tlog-bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Lines of the summary printed at the end.
fn summary() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(Default::default)
}

fn report(line: String) {
    eprintln!("[tlog] {line}");
    summary().lock().unwrap().push(line);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The test entries of docs/audit-format.md: e_i = SHA-256(decimal i).
fn entry(i: u64) -> [u8; 32] {
    Sha256::digest(i.to_string().as_bytes()).into()
}

fn entries(from: u64, n: usize) -> Vec<[u8; 32]> {
    (from..from + n as u64).map(entry).collect()
}

/// A small deterministic generator (xorshift64*): the same indexes on every run.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// p50, p99 and max of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99), samples[samples.len() - 1])
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

// --- tree maintenance ---------------------------------------------------------------------------

/// A tree store that can be started again from empty.
trait Fresh {
    fn fresh(&mut self) -> Arc<dyn TileStore>;
}

struct InMemory;

impl Fresh for InMemory {
    fn fresh(&mut self) -> Arc<dyn TileStore> {
        Arc::new(MemoryTiles::new())
    }
}

/// A new SQLite file (synchronous=FULL, the default) each time, the previous one removed.
struct SqliteFiles {
    dir: tempfile::TempDir,
    n: u32,
}

impl Fresh for SqliteFiles {
    fn fresh(&mut self) -> Arc<dyn TileStore> {
        let old = self.dir.path().join(format!("tree-{}.db", self.n));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", old.display()));
        }
        self.n += 1;
        let path = self.dir.path().join(format!("tree-{}.db", self.n));
        Arc::new(SqliteTiles::open(path, &SqliteConfig::default()).unwrap())
    }
}

/// Leaves/s of `Tlog::extend` by batches of 64 Ki synthetic entries.
fn bench_extend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    mut stores: impl Fresh,
) {
    let batch = entries(0, BATCH);
    let mut g = c.benchmark_group("tree_maintenance");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(BATCH as u64));
    let mut tlog = Tlog::new(stores.fresh(), ORIGIN);
    let mut size = 0u64;
    g.bench_function(format!("{name}/extend_64k"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                if size >= RESTART_AT {
                    tlog = Tlog::new(stores.fresh(), ORIGIN);
                    size = 0;
                }
                let started = Instant::now();
                size = rt.block_on(tlog.extend(size, &batch)).unwrap();
                spent += started.elapsed();
            }
            spent
        })
    });
    g.finish();
}

/// The imported city that `catch_up` reads and the node serves: built once, then reused.
struct City {
    data: PathBuf,
    events: u64,
}

fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| {
        let citizens = env_u64("CITYDB_TLOG_CITIZENS", 20_000);
        let dir = work_dir().join(format!("city-{citizens}"));
        let data = dir.join("data");
        let done = dir.join("imported");
        if !done.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let fixture = dir.join("city.ndjson");
            let started = Instant::now();
            run(&[
                "fixtures",
                "--citizens",
                &citizens.to_string(),
                "--out",
                fixture.to_str().unwrap(),
            ]);
            run(&[
                "import",
                fixture.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
            ]);
            std::fs::remove_file(&fixture).unwrap();
            std::fs::write(&done, "").unwrap();
            eprintln!(
                "[tlog] city of {citizens} citizens imported in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        let rt = runtime();
        let log = SqliteLog::open(data.join("log.db"), SqliteConfig::default()).unwrap();
        let events = rt
            .block_on(log.head())
            .unwrap()
            .map_or(0, |h| h.position + 1);
        City { data, events }
    })
}

fn run(args: &[&str]) {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "citydb {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Leaves/s of `catch_up` of the imported log from an empty tree, `read_hashes` included: the
/// tree's tables in the log's own file are emptied (untimed) before each catch-up.
fn bench_catch_up(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let city = city();
    let file = city.data.join("log.db");
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&file, SqliteConfig::default()).unwrap());
    let leaves = LogLeaves(log);
    let tlog = Tlog::new(
        Arc::new(SqliteTiles::open(&file, &SqliteConfig::default()).unwrap()),
        ORIGIN,
    );
    let reset = rusqlite::Connection::open(&file).unwrap();
    reset.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut g = c.benchmark_group("tree_maintenance");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(city.events));
    g.bench_function(
        format!("sqlite/catch_up_imported_log_{}_events", city.events),
        |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    reset
                        .execute_batch("DELETE FROM tlog_tiles; DELETE FROM tlog_size;")
                        .unwrap();
                    let started = Instant::now();
                    let size = rt.block_on(tlog.catch_up(&leaves)).unwrap();
                    spent += started.elapsed();
                    assert_eq!(size, city.events);
                }
                spent
            })
        },
    );
    g.finish();
}

fn maintenance(c: &mut Criterion) {
    let rt = runtime();
    bench_extend(c, &rt, "memory", InMemory);
    bench_extend(
        c,
        &rt,
        "sqlite",
        SqliteFiles {
            dir: tempfile::tempdir_in(work_dir()).unwrap(),
            n: 0,
        },
    );
    bench_catch_up(c, &rt);
}

// --- proofs -------------------------------------------------------------------------------------

/// The tree proofs are asked of: `leaves` test entries in an SQLite file, built once.
fn proof_tree(rt: &tokio::runtime::Runtime, leaves: u64) -> Tlog {
    let path = work_dir().join(format!("proofs-{leaves}.db"));
    let store = Arc::new(SqliteTiles::open(&path, &SqliteConfig::default()).unwrap());
    let tlog = Tlog::new(store, ORIGIN);
    let mut size = rt.block_on(tlog.size()).unwrap();
    if size < leaves {
        let from = size;
        let mut hashing = Duration::ZERO;
        let started = Instant::now();
        while size < leaves {
            let t = Instant::now();
            let batch = entries(size, (leaves - size).min(BATCH as u64) as usize);
            hashing += t.elapsed();
            size = rt.block_on(tlog.extend(size, &batch)).unwrap();
            if size % (1 << 20) < BATCH as u64 {
                eprintln!("[tlog] proof tree: {size} / {leaves} leaves");
            }
        }
        let spent = started.elapsed() - hashing;
        report(format!(
            "built the proof tree: {} leaves in {:.1} s of extend (SQLite, synchronous=FULL) = {:.0} leaves/s",
            size - from,
            spent.as_secs_f64(),
            (size - from) as f64 / spent.as_secs_f64()
        ));
    }
    assert_eq!(size, leaves, "{} holds a larger tree", path.display());
    tlog
}

fn proofs(c: &mut Criterion) {
    let rt = runtime();
    let n = env_u64("CITYDB_TLOG_PROOF_LEAVES", 10_000_000);
    let tlog = proof_tree(&rt, n);
    let root = rt.block_on(tlog.root(n)).unwrap();
    // The answers are right before they are timed.
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..100 {
        let index = rng.below(n);
        let proof = rt
            .block_on(tlog.answer(Query::Inclusion { index, size: n }))
            .unwrap();
        verify_inclusion(&leaf_hash(&entry(index)), index, n, &proof, &root).unwrap();
        let old = 1 + rng.below(n - 1);
        let old_root = rt.block_on(tlog.root(old)).unwrap();
        let proof = rt
            .block_on(tlog.answer(Query::Consistency { old, new: n }))
            .unwrap();
        verify_consistency(old, n, &old_root, &root, &proof).unwrap();
    }
    /// A random query of its kind about the tree of `n` leaves.
    type Ask = fn(&mut Xorshift, u64) -> Query;
    let queries: [(&str, Ask); 2] = [
        ("inclusion", |r, n| Query::Inclusion {
            index: r.below(n),
            size: n,
        }),
        ("consistency", |r, n| Query::Consistency {
            old: 1 + r.below(n - 1),
            new: n,
        }),
    ];
    let mut g = c.benchmark_group("proofs");
    g.sample_size(20).throughput(Throughput::Elements(1));
    for (name, query) in &queries {
        g.bench_function(format!("sqlite/{name}_at_{n}"), |b| {
            let mut rng = Xorshift(7);
            b.iter(|| rt.block_on(tlog.answer(query(&mut rng, n))).unwrap())
        });
        // Percentiles, one query at a time as a GraphQL resolver asks.
        let mut rng = Xorshift(11);
        let mut samples = Vec::with_capacity(20_000);
        let mut tiles = 0;
        for _ in 0..20_000 {
            let q = query(&mut rng, n);
            tiles = tiles.max(q.tiles().unwrap().len());
            let started = Instant::now();
            std::hint::black_box(rt.block_on(tlog.answer(q)).unwrap());
            samples.push(started.elapsed());
        }
        let (p50, p99, max) = percentiles(&mut samples);
        report(format!(
            "{name} proof at {n} leaves (SqliteTiles), 20,000 random queries one at a time: p50 {}, p99 {}, max {}; at most {tiles} tiles read per query",
            micros(p50),
            micros(p99),
            micros(max)
        ));
    }
    g.finish();
}

// --- checkpoints --------------------------------------------------------------------------------

fn checkpoint(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir_in(work_dir()).unwrap();
    let signer = SignerKey::generate(ORIGIN, KeyKind::Log).unwrap();
    let vkey = signer.verifier();
    let batch = entries(0, BATCH);
    let mut g = c.benchmark_group("checkpoint");
    g.sample_size(10).throughput(Throughput::Elements(1));
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        let path = dir.path().join(format!("tree-{n}.db"));
        Tlog::new(
            Arc::new(SqliteTiles::open(path, &SqliteConfig::default()).unwrap()),
            ORIGIN,
        )
    };
    // `sign` after the log grew by one batch: catching up those 64 Ki leaves, the root, the
    // consistency check against the last checkpoint, Ed25519, storing the note.
    // `sign_caught_up`: the same once the tree has already been caught up (as the node's
    // keeper does between two intervals).
    for caught_up in [false, true] {
        let mut tlog = fresh();
        let mut leaves = TestLeaves(Vec::new());
        let name = if caught_up {
            "sqlite/sign_caught_up"
        } else {
            "sqlite/sign_after_64k_more"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    if leaves.0.len() as u64 >= RESTART_AT {
                        tlog = fresh();
                        leaves.0.clear();
                    }
                    leaves.0.extend_from_slice(&batch);
                    if caught_up {
                        rt.block_on(tlog.catch_up(&leaves)).unwrap();
                    }
                    let started = Instant::now();
                    let note = rt.block_on(tlog.sign(&signer, &leaves)).unwrap();
                    spent += started.elapsed();
                    std::hint::black_box(note);
                }
                spent
            })
        });
    }
    let tlog = fresh();
    let leaves = TestLeaves(batch.clone());
    let note = rt.block_on(tlog.sign(&signer, &leaves)).unwrap();
    g.bench_function("verify_signed_checkpoint", |b| {
        b.iter(|| {
            Checkpoint::open(std::hint::black_box(&note), std::slice::from_ref(&vkey)).unwrap()
        })
    });
    g.finish();
}

// --- serving tiles over HTTP --------------------------------------------------------------------

/// The path of the next request, and the body length it must have (0: any).
type PathFn = Arc<dyn Fn(&mut Xorshift) -> (String, usize) + Send + Sync>;

struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `citydb serve` of the imported city with a signing key, once its first checkpoint is out.
fn start_node(data: &Path, key: &Path) -> Node {
    use std::io::{BufRead, BufReader};
    // One principal, because serve wants some; the published resources need no token.
    let token = Command::new(bin())
        .args(["token", "--id", "bench-auditor", "--role", "auditor"])
        .output()
        .unwrap();
    assert!(token.status.success(), "citydb token failed");
    let principals = work_dir().join("principals.toml");
    std::fs::write(&principals, &token.stdout).unwrap();
    let mut child = Command::new(bin())
        .arg("serve")
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(&principals)
        .arg("--signing-key")
        .arg(key)
        .args(["--listen", "127.0.0.1:0", "--checkpoint-interval", "1"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(work_dir().join("serve.err")).unwrap())
        .spawn()
        .expect("cannot start citydb serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" on http://").nth(1) {
                let _ = tx.send(format!("http://{}", rest.split('/').next().unwrap_or("")));
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("citydb serve printed no address (see target/tmp/tlog-bench/serve.err)");
    Node { child, base }
}

/// What one resource under load gave: requests/s, p50, p99.
async fn load(
    base: &str,
    clients: usize,
    seconds: u64,
    path: PathFn,
) -> (f64, Duration, Duration, u64) {
    let warm_until = Instant::now() + Duration::from_secs(1);
    let until = warm_until + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|k| {
            let base = base.to_owned();
            let path = path.clone();
            tokio::spawn(async move {
                // One client per task: each keeps its own keep-alive connection.
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let mut rng = Xorshift(0x1234_5678 + k as u64);
                let mut samples = Vec::new();
                loop {
                    let (p, len) = path(&mut rng);
                    let started = Instant::now();
                    let r = http.get(format!("{base}{p}")).send().await.unwrap();
                    assert_eq!(r.status(), 200, "{p}");
                    let body = r.bytes().await.unwrap();
                    assert!(len == 0 || body.len() == len, "{p}: {} bytes", body.len());
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    if started >= warm_until {
                        samples.push(now - started);
                    }
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let count = all.len() as u64;
    let (p50, p99, _) = percentiles(&mut all);
    (count as f64 / seconds as f64, p50, p99, count)
}

fn serving() {
    let city = city();
    let clients = env_u64("CITYDB_TLOG_CLIENTS", 32) as usize;
    let seconds = env_u64("CITYDB_TLOG_SECONDS", 5);
    let key = work_dir().join("bench-signing-key");
    std::fs::write(
        &key,
        SignerKey::generate(ORIGIN, KeyKind::Log)
            .unwrap()
            .to_file_text(),
    )
    .unwrap();
    let node = start_node(&city.data, &key);
    let rt = runtime();
    let base = format!("{}/log", node.base);
    // Wait for the first checkpoint (the tree caught up with the imported log).
    let deadline = Instant::now() + Duration::from_secs(600);
    let size = loop {
        let got = rt.block_on(async {
            let r = reqwest::get(format!("{base}/checkpoint")).await.ok()?;
            if r.status() != 200 {
                return None;
            }
            let note = r.text().await.ok()?;
            Some(
                Checkpoint::parse_text(&citydb_tlog::Note::parse(&note).ok()?.text)
                    .ok()?
                    .size,
            )
        });
        match got {
            Some(size) if size >= city.events => break size,
            _ => {}
        }
        assert!(Instant::now() < deadline, "no checkpoint of the whole log");
        std::thread::sleep(Duration::from_millis(100));
    };
    let full_tiles = size / 256;
    assert!(full_tiles > 0);
    // The tiles served are the tree's: the first hash tile holds the leaf hashes of the first
    // entry bundle.
    rt.block_on(async {
        let tile = reqwest::get(format!("{base}/tile/0/000"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let bundle = reqwest::get(format!("{base}/tile/entries/000"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        for i in 0..256 {
            let e = &bundle[i * 34 + 2..i * 34 + 34];
            assert_eq!(&tile[i * 32..i * 32 + 32], &leaf_hash(e)[..], "hash {i}");
        }
    });
    let tile_path = |level: &'static str, len: usize| -> PathFn {
        Arc::new(move |r: &mut Xorshift| {
            let request = citydb_tlog::TileRequest {
                key: citydb_tlog::TileKey {
                    level: if level == "entries" {
                        citydb_tlog::Level::Entries
                    } else {
                        citydb_tlog::Level::Hashes(0)
                    },
                    index: r.below(full_tiles),
                },
                width: 256,
            };
            (format!("/tile/{}", request.path()), len)
        })
    };
    for (name, path) in [
        (
            "/log/tile/0/<N> (full level-0 tiles, 8,192 B)",
            tile_path("0", 8192),
        ),
        (
            "/log/tile/entries/<N> (full entry bundles, 8,704 B)",
            tile_path("entries", 8704),
        ),
        (
            "/log/checkpoint",
            Arc::new(|_: &mut Xorshift| ("/checkpoint".to_owned(), 0usize)) as PathFn,
        ),
    ] {
        let (rate, p50, p99, count) = rt.block_on(load(&base, clients, seconds, path));
        report(format!(
            "GET {name}: {rate:.0} req/s, p50 {}, p99 {} ({count} requests by {clients} keep-alive clients in {seconds} s, tree of {size} leaves, {full_tiles} full tiles; client and node on the same 2 cores)",
            micros(p50),
            micros(p99)
        ));
    }
    drop(node);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    if wanted("maintenance") {
        maintenance(&mut c);
    }
    if wanted("proofs") {
        proofs(&mut c);
    }
    if wanted("checkpoint") {
        checkpoint(&mut c);
    }
    if wanted("serving") {
        serving();
    }
    c.final_summary();
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    report(format!(
        "load average before: {}; after: {}",
        load_before.trim(),
        load_after.trim()
    ));
    let lines = summary().lock().unwrap().join("\n");
    println!("\n## tlog bench summary\n{lines}");
    std::fs::write(work_dir().join("results.md"), lines + "\n").unwrap();
}
