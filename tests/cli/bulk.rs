//! `citydb import` in bulk: the same result as the careful import line for line, a kill at any
//! moment resumed by running the same command again, and the store refused while a server
//! holds it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::binary::Serving;
use super::{BIN, citydb, expect_code, fixtures, histories, s, stdout, text};

/// 1/100 of Hải Phòng: the scale the issue asks the equivalence and the kill tests to run at.
const CITIZENS: u64 = 20_000;

/// The fixture with hostile lines mixed in, each a refusal of its own kind: not JSON, a
/// command on a record that does not exist, a command id reused for another command, a line
/// sent twice (answered from its marker), a blank line, a line over the length bound.
fn hostile_file(dir: &Path) -> std::path::PathBuf {
    let file = fixtures(dir, CITIZENS);
    let good: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let parsed = |i: usize| serde_json::from_str::<Value>(&good[i]).unwrap();
    let mut unknown = good
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["command"]["type"] == "ChangeResidence")
        .expect("a ChangeResidence in the fixture");
    unknown["command_id"] = Value::String(uuid::Uuid::now_v7().to_string());
    unknown["command"]["citizen"] = Value::String(uuid::Uuid::now_v7().to_string());
    let mut reused = parsed(7);
    reused["command"] = parsed(8)["command"].clone();
    let n = good.len();
    let mut lines = good;
    lines.insert(3, "{\"command_id\": \"not json".to_owned());
    lines.insert(5, String::new());
    lines.insert(n / 3, unknown.to_string());
    lines.insert(n / 2, reused.to_string());
    lines.insert(2 * n / 3, lines[10].clone());
    lines.push(format!("{{\"pad\": \"{}\"}}", "x".repeat(1_100_000)));
    let hostile = dir.join("hostile.ndjson");
    std::fs::write(&hostile, lines.join("\n") + "\n").unwrap();
    hostile
}

/// The rejection lines of an import's report (`  line N: CODE: reason`).
fn rejections(out: &std::process::Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("  line "))
        .map(str::to_owned)
        .collect()
}

/// Every record's projected state and version, by record id (positions left out: the careful
/// import's concurrent lines may commit in another order).
fn projected(data: &Path) -> BTreeMap<String, (i64, String)> {
    let conn = rusqlite::Connection::open(data.join("projections.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT record_id, version, state FROM records")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The whole log in position order, without what differs between two runs of the same lines
/// in the same order (event ids, times, and the hashes over them).
fn rows(data: &Path) -> Vec<(i64, String, i64, String, Option<String>, String)> {
    let conn = rusqlite::Connection::open(data.join("log.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT position, stream_id, stream_version, event_type, data, metadata
             FROM events ORDER BY position",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn summary_mode(out: &std::process::Output) -> String {
    stdout(out)
        .lines()
        .find(|l| l.contains("events appended"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn bulk_import_equals_careful_import() {
    let dir = tempfile::tempdir().unwrap();
    let file = hostile_file(dir.path());
    let (bulk, careful) = (dir.path().join("bulk"), dir.path().join("careful"));
    let b = citydb(&["import", "--data", s(&bulk), "--mode", "bulk", s(&file)]);
    expect_code(&b, 3);
    assert!(summary_mode(&b).contains("bulk import"), "{}", text(&b));
    let c = citydb(&[
        "import",
        "--data",
        s(&careful),
        "--mode",
        "careful",
        s(&file),
    ]);
    expect_code(&c, 3);
    assert!(summary_mode(&c).contains("careful import"), "{}", text(&c));

    // Same counts and the same refusals, line by line (numbers, codes and reasons).
    assert_eq!(
        stdout(&b).lines().next(),
        stdout(&c).lines().next(),
        "{}\n{}",
        text(&b),
        text(&c)
    );
    let refused = rejections(&b);
    assert_eq!(refused, rejections(&c));
    for code in ["INVALID_INPUT", "RECORD_NOT_FOUND", "COMMAND_ID_REUSED"] {
        assert!(
            refused.iter().any(|l| l.contains(&format!(": {code}: "))),
            "no {code} in {refused:#?}"
        );
    }
    assert!(stdout(&b).contains(" 1 already imported"), "{}", text(&b));

    // Every stream: the same events, types, data and metadata, in the same order.
    let (hb, hc) = (
        histories(&bulk.join("log.db")),
        histories(&careful.join("log.db")),
    );
    assert!(hb.len() > 50_000, "{} streams", hb.len());
    assert_eq!(hb.len(), hc.len());
    for (stream, events) in &hb {
        assert_eq!(Some(events), hc.get(stream), "stream {stream} differs");
    }
    // Every record's projected state: built by the bulk import itself, and from the careful
    // import's log by the rebuild a server would run.
    expect_code(&citydb(&["rebuild-projections", "--data", s(&careful)]), 0);
    let (pb, pc) = (projected(&bulk), projected(&careful));
    assert!(pb.len() > 30_000, "{} records", pb.len());
    assert_eq!(pb, pc);
    expect_code(&citydb(&["verify", "--data", s(&bulk)]), 0);
}

/// A small xorshift, seeded from the clock and printed, so a failing schedule can be re-run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_killed_bulk_import_resumes_to_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = hostile_file(dir.path());
    let reference = dir.path().join("reference");
    let started = Instant::now();
    let whole = citydb(&[
        "import",
        "--data",
        s(&reference),
        "--mode",
        "bulk",
        s(&file),
    ]);
    expect_code(&whole, 3);
    let uninterrupted = started.elapsed();

    let seed = std::env::var("CITYDB_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) << 20 | 0x9e37);
    eprintln!("kill schedule seed {seed} (CITYDB_KILL_SEED to repeat)");
    let mut dice = Dice(seed | 1);
    let data = dir.path().join("killed");
    let mut killed = 0;
    // Five kills (a run that finished before its kill does not count), at most twelve runs.
    for attempt in 0..12 {
        if killed == 5 {
            break;
        }
        let mut child = Command::new(BIN)
            .args(["import", "--data", s(&data), "--mode", "bulk", s(&file)])
            .args(["--progress", "none"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere in the first 60 % of an uninterrupted run (a resumed run has less left to
        // do): while lines are decided, rows inserted, transactions committed, and the
        // projections built.
        let at = uninterrupted.mul_f64(dice.below(600) as f64 / 1000.0);
        std::thread::sleep(at.max(Duration::from_millis(50)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let status = child.wait().unwrap();
        eprintln!("attempt {attempt}: after {at:?}: {status}");
        if data.join("log.db").exists() {
            // What a kill leaves is a consistent store: its chain verifies.
            let out = citydb(&["verify", "--data", s(&data)]);
            expect_code(&out, 0);
        }
    }
    assert!(killed >= 3, "only {killed} runs were killed mid-way");
    let out = citydb(&["import", "--data", s(&data), "--mode", "bulk", s(&file)]);
    expect_code(&out, 3);
    // The same refusals as the uninterrupted run; every other line accepted or already in.
    assert_eq!(rejections(&out), rejections(&whole));

    // The same store: every event at the same position, with the same stream, version, type,
    // data and metadata (only ids and times differ), and the same read models.
    let (got, expected) = (rows(&data), rows(&reference));
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
    assert_eq!(projected(&data), projected(&reference));
    expect_code(&citydb(&["verify", "--data", s(&data)]), 0);
}

#[test]
fn a_bulk_import_needs_the_store_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Another seed than the demo's: other command ids.
    let file = dir.path().join("f.ndjson");
    let out = citydb(&[
        "fixtures",
        "--citizens",
        "20",
        "--seed",
        "99",
        "--out",
        s(&file),
    ]);
    expect_code(&out, 0);
    let server = Serving::start(&["--data", s(&data), "--demo"]);
    // Explicitly bulk: refused at once, with the reason and what to do.
    let out = citydb(&["import", "--data", s(&data), "--mode", "bulk", s(&file)]);
    expect_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use") && err.contains("--mode careful"),
        "{}",
        text(&out)
    );
    // Chosen by default: the careful import runs beside the server instead. (Some of the
    // file's parcels clash with the demo's: those lines are refused, exit 3.)
    let careful = citydb(&["import", "--data", s(&data), s(&file)]);
    expect_code(&careful, 3);
    assert!(
        summary_mode(&careful).contains("careful import"),
        "{}",
        text(&careful)
    );
    drop(server);
    // Once the server is gone, the store is the import's alone again: bulk, every accepted
    // line now already imported, the same lines refused (some for another reason: the store
    // now holds what later lines did, a holder's death for instance).
    let bulk = citydb(&["import", "--data", s(&data), s(&file)]);
    expect_code(&bulk, 3);
    assert!(
        summary_mode(&bulk).contains("bulk import"),
        "{}",
        text(&bulk)
    );
    let numbers = |out| -> Vec<String> {
        rejections(out)
            .iter()
            .map(|l| l.split(':').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(numbers(&bulk), numbers(&careful));
    assert!(stdout(&bulk).contains(" 0 accepted, "), "{}", text(&bulk));
    expect_code(&citydb(&["verify", "--data", s(&data)]), 0);
}

/// Every stream's events (type, data, metadata) of an `citydb export`.
fn exported_streams(out: &std::process::Output) -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut streams: BTreeMap<String, Vec<_>> = BTreeMap::new();
    // Past the header line: one event per line.
    for line in stdout(out).lines().skip(1) {
        let e: Value = serde_json::from_str(line).unwrap();
        streams
            .entry(e["stream_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                e["event_type"].to_string(),
                e["data"].to_string(),
                e["metadata"].to_string(),
            ));
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_into_postgres_copies_whole_commands() {
    use citydb_postgres::testkit::TestCluster;
    let Some(cluster) =
        TestCluster::shared_or_skip("a_bulk_import_into_postgres_copies_whole_commands")
    else {
        return;
    };
    let url = cluster.create_database().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures(dir.path(), 60);
    let (pg, embedded) = (dir.path().join("pg"), dir.path().join("embedded"));
    // An empty PostgreSQL store: bulk by default, through copies of whole commands.
    let out = citydb(&["import", "--data", s(&pg), "--store", &url, s(&file)]);
    expect_code(&out, 0);
    assert!(summary_mode(&out).contains("bulk import"), "{}", text(&out));
    // Not empty any more: careful (a shared store may have other writers), nothing new.
    let again = citydb(&["import", "--data", s(&pg), "--store", &url, s(&file)]);
    expect_code(&again, 0);
    assert!(
        summary_mode(&again).contains("careful import"),
        "{}",
        text(&again)
    );
    assert!(stdout(&again).contains(" 0 accepted, "), "{}", text(&again));
    expect_code(&citydb(&["verify", "--data", s(&pg), "--store", &url]), 0);
    // The same streams as a careful import into the embedded store.
    let careful = citydb(&[
        "import",
        "--data",
        s(&embedded),
        "--mode",
        "careful",
        s(&file),
    ]);
    expect_code(&careful, 0);
    let from_pg = citydb(&["export", "--data", s(&pg), "--store", &url]);
    expect_code(&from_pg, 0);
    let from_embedded = citydb(&["export", "--data", s(&embedded)]);
    expect_code(&from_embedded, 0);
    let (a, b) = (exported_streams(&from_pg), exported_streams(&from_embedded));
    assert!(a.len() > 100, "{} streams", a.len());
    assert_eq!(a, b);
    // The bulk import built this node's projections of the PostgreSQL store.
    assert!(!projected(&pg).is_empty());
    // ... and left the planner's statistics and the visibility map up to date.
    let client = citydb_postgres::testkit::connect(&url).await.unwrap();
    let vacuumed = client
        .query_one(
            "SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables
             WHERE schemaname = current_schema() AND relname = 'events'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        vacuumed.get::<_, bool>(0),
        "no VACUUM (ANALYZE) after the load"
    );

    // A file of new records, bulk into the store that holds the first: the importer reads
    // which streams PostgreSQL holds (`held_streams`) and every line is accepted.
    let beside = dir.path().join("beside.ndjson");
    expect_code(
        &citydb(&[
            "fixtures",
            "--citizens",
            "30",
            "--seed",
            "99",
            "--beside",
            "60",
            "--out",
            s(&beside),
        ]),
        0,
    );
    let out = citydb(&[
        "import",
        "--data",
        s(&pg),
        "--store",
        &url,
        "--mode",
        "bulk",
        s(&beside),
    ]);
    expect_code(&out, 0);
    assert!(summary_mode(&out).contains("bulk import"), "{}", text(&out));
    assert!(rejections(&out).is_empty(), "{}", text(&out));
    assert!(
        stdout(&out).contains(" 0 already imported, 0 rejected"),
        "{}",
        text(&out)
    );
    expect_code(&citydb(&["verify", "--data", s(&pg), "--store", &url]), 0);
    let grown = exported_streams(&citydb(&["export", "--data", s(&pg), "--store", &url]));
    assert!(
        grown.len() > a.len() + 30,
        "{} streams after, {} before",
        grown.len(),
        a.len()
    );
}

/// A bulk import into a store that already holds a city (a second district's file) checks
/// the projections file while it decides its lines and catches the read models up after them:
/// its progress counts the events this import added, not the log's, and a damaged file is
/// found by that check and rebuilt from the log — the same read models as a rebuild either way.
#[test]
fn a_bulk_import_into_a_store_that_holds_a_city_catches_its_projections_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let seeded = |seed: u64| {
        let file = dir.path().join(format!("seed-{seed}.ndjson"));
        let out = citydb(&[
            "fixtures",
            "--citizens",
            "300",
            "--seed",
            &seed.to_string(),
            "--out",
            s(&file),
        ]);
        expect_code(&out, 0);
        file
    };
    let import = |file: &Path| {
        let out = citydb(&[
            "import",
            "--data",
            s(&data),
            "--mode",
            "bulk",
            "--progress",
            "plain",
            s(file),
        ]);
        // Files of different seeds may refuse each other's keys (exit 3).
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", text(&out));
        out
    };
    let logged = || rows(&data).len();
    // As a rebuild builds them, on a copy of the store.
    let rebuilt = |name: &str| {
        let copy = dir.path().join(name);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(data.join("log.db"), copy.join("log.db")).unwrap();
        expect_code(&citydb(&["rebuild-projections", "--data", s(&copy)]), 0);
        projected(&copy)
    };
    import(&seeded(11));

    let before = logged();
    let out = import(&seeded(12));
    let added = logged() - before;
    assert!(added > 0, "the second file added nothing");
    let done = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.starts_with("projections: done, "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no final projections line\n{}", text(&out)));
    let counted: String = done["projections: done, ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "");
    assert_eq!(counted, added.to_string(), "{done}");
    // The wait before the first line is said, not shown as "0 lines".
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("import: reading the streams the store holds: done in "),
        "{}",
        text(&out)
    );
    assert_eq!(projected(&data), rebuilt("rebuilt-1"));

    super::damage_in_the_middle(&data.join("projections.db"));
    import(&seeded(13));
    assert!(
        !data.join("projections.db.damaged").exists(),
        "the mark outlived the file it was about"
    );
    assert_eq!(projected(&data), rebuilt("rebuilt-2"));
    expect_code(&citydb(&["verify", "--data", s(&data)]), 0);
}

/// `citydb fixtures --beside`: a file of only new records for a store that holds a fixture is
/// imported whole into it (exit 0, nothing refused), in bulk, with read models equal to a
/// rebuild's; the held fixture's own seed is refused before any file is written.
#[test]
fn a_file_beside_a_fixture_is_imported_whole_into_a_store_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let held = dir.path().join("held.ndjson");
    let beside = dir.path().join("beside.ndjson");
    expect_code(
        &citydb(&[
            "fixtures",
            "--citizens",
            "300",
            "--seed",
            "11",
            "--out",
            s(&held),
        ]),
        0,
    );
    let generate = |seed: &str, out: &Path| {
        citydb(&[
            "fixtures",
            "--citizens",
            "100",
            "--seed",
            seed,
            "--beside",
            "300",
            "--beside-seed",
            "11",
            "--out",
            s(out),
        ])
    };
    let same_seed = dir.path().join("same.ndjson");
    let refused = generate("11", &same_seed);
    expect_code(&refused, 1);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("needs a seed of its own"),
        "{}",
        text(&refused)
    );
    assert!(!same_seed.exists(), "a refused config left a file");
    expect_code(&generate("21", &beside), 0);

    let import = |file: &Path| citydb(&["import", "--data", s(&data), "--mode", "bulk", s(file)]);
    expect_code(&import(&held), 0);
    let before = rows(&data).len();
    let out = import(&beside);
    expect_code(&out, 0);
    assert!(rejections(&out).is_empty(), "{}", text(&out));
    assert!(rows(&data).len() > before, "the file beside added nothing");

    let copy = dir.path().join("rebuilt");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(data.join("log.db"), copy.join("log.db")).unwrap();
    expect_code(&citydb(&["rebuild-projections", "--data", s(&copy)]), 0);
    assert_eq!(projected(&data), projected(&copy));
    expect_code(&citydb(&["verify", "--data", s(&data)]), 0);
}
