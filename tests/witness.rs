//! Witnesses, end to end (C2SP tlog-witness): keys from `citydb keygen`, two real
//! `citydb witness` processes, and a log (`citydb_tlog::Tlog` over memory tiles) that submits
//! its checkpoints through `citydb_api::Witnesses` as it grows — then forks (a log restored
//! from an old backup and written to) and is refused by both witnesses. Also the HTTP edge
//! cases a witness must answer with the status the specification assigns.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use citydb_api::{WitnessConfig, WitnessOutcome, Witnesses};
use citydb_tlog::checkpoint::Checkpoint;
use citydb_tlog::contract::TestLeaves;
use citydb_tlog::memory::MemoryTiles;
use citydb_tlog::note::KeyKind;
use citydb_tlog::witness::AddCheckpoint;
use citydb_tlog::{Note, Query, SignerKey, Tlog, VerifierKey};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_citydb");
const ORIGIN: &str = "citydb.test/log";

/// `citydb keygen`: the key file and the vkey it printed.
fn keygen(dir: &Path, name: &str, cosigner: bool) -> (PathBuf, VerifierKey) {
    let out = dir.join(format!("{}.key", name.replace('/', "_")));
    let mut command = Command::new(BIN);
    command
        .args(["keygen", "--origin", name, "--out"])
        .arg(&out);
    if cosigner {
        command.arg("--cosigner");
    }
    let output = command.env_remove("RUST_LOG").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    (out, VerifierKey::parse(stdout.trim_end()).unwrap())
}

fn signer(path: &Path) -> SignerKey {
    SignerKey::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A running `citydb witness`, killed when dropped.
struct WitnessProcess {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl WitnessProcess {
    /// Starts a witness on `listen` (`127.0.0.1:0` for any port) and waits for its address.
    fn start(key: &Path, logs: &[&VerifierKey], state: &Path, listen: &str) -> WitnessProcess {
        let mut command = Command::new(BIN);
        command.arg("witness").arg("--key").arg(key);
        for log in logs {
            command.args(["--log-key", &log.to_string()]);
        }
        command.arg("--state").arg(state).args(["--listen", listen]);
        let mut child = command
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = match lines.next() {
            Some(Ok(line)) => line
                .split(" on http://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_else(|| panic!("no address in {line:?}"))
                .to_owned(),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the witness printed no address ({other:?}); stderr:\n{}",
                    stderr.lock().unwrap().join("\n")
                )
            }
        };
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        WitnessProcess {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn config(&self, key: &VerifierKey) -> WitnessConfig {
        format!("{},{key}", self.url()).parse().unwrap()
    }

    /// Killed without warning (SIGKILL): what it answered must already be on disk.
    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.addr.clone()
    }

    fn log_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs a raw add-checkpoint body: status, content type, body.
async fn post(url: &str, body: impl Into<reqwest::Body>) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, r.text().await.unwrap())
}

/// The monitor retrieval: status and body of `GET <url>/<hex sha256(origin)>/checkpoint`.
async fn monitored(url: &str, origin: &str) -> (u16, String) {
    let hash: String = Sha256::digest(origin.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let r = reqwest::get(format!("{url}/{hash}/checkpoint"))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn size_of(note: &str) -> u64 {
    Checkpoint::parse_text(&Note::parse(note).unwrap().text)
        .unwrap()
        .size
}

/// The cosigners whose valid cosignatures `note` carries (the log's signature must verify).
fn cosigners(note: &str, keys: &[&VerifierKey]) -> Vec<String> {
    let keys: Vec<VerifierKey> = keys.iter().map(|k| (*k).clone()).collect();
    let mut names: Vec<String> = Note::parse(note)
        .unwrap()
        .verify(&keys)
        .unwrap()
        .cosigners
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    names
}

#[test]
fn keygen_writes_a_private_key_once_and_prints_its_vkey() {
    let dir = tempfile::tempdir().unwrap();
    let (path, vkey) = keygen(dir.path(), ORIGIN, false);
    assert_eq!((vkey.name(), vkey.kind()), (ORIGIN, KeyKind::Log));
    assert_eq!(
        signer(&path).verifier(),
        vkey,
        "the file holds the key of the vkey"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (cosigner, wkey) = keygen(dir.path(), "witness.test/w1", true);
    assert_eq!(wkey.kind(), KeyKind::Cosigner);
    assert_eq!(signer(&cosigner).verifier(), wkey);

    // Never overwritten: exit 2, the old key intact.
    let before = std::fs::read(&path).unwrap();
    let again = Command::new(BIN)
        .args(["keygen", "--origin", ORIGIN, "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(again.stdout.is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A name the signed-note format forbids is an error, and no file is left behind.
    let bad = dir.path().join("bad.key");
    let refused = Command::new(BIN)
        .args(["keygen", "--origin", "a b", "--out"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(!bad.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_witnesses_cosign_a_growing_log_survive_a_restart_and_refuse_its_fork() {
    let dir = tempfile::tempdir().unwrap();
    let (log_path, log_vkey) = keygen(dir.path(), ORIGIN, false);
    let log_key = signer(&log_path);
    let (w1_key, w1_vkey) = keygen(dir.path(), "witness.test/w1", true);
    let (w2_key, w2_vkey) = keygen(dir.path(), "witness.test/w2", true);
    let (w1_state, w2_state) = (dir.path().join("w1.db"), dir.path().join("w2.db"));
    let w1 = WitnessProcess::start(&w1_key, &[&log_vkey], &w1_state, "127.0.0.1:0");
    let w2 = WitnessProcess::start(&w2_key, &[&log_vkey], &w2_state, "127.0.0.1:0");
    let witnesses = Witnesses::new(vec![w1.config(&w1_vkey), w2.config(&w2_vkey)]);
    let all_keys = [&log_vkey, &w1_vkey, &w2_vkey];

    // The log grows; each new checkpoint is cosigned by both, from the size each holds.
    let tlog = Tlog::new(Arc::new(MemoryTiles::new()), ORIGIN);
    for size in [1u64, 10, 300, 1000] {
        let note = tlog.sign(&log_key, &TestLeaves::first(size)).await.unwrap();
        let (cosigned, outcomes) = witnesses.cosign(&tlog, &note).await;
        for outcome in &outcomes {
            assert!(
                matches!(outcome, WitnessOutcome::Cosigned { time, .. } if *time > 0),
                "size {size}: {outcomes:?}"
            );
        }
        assert_eq!(size_of(&cosigned), size);
        assert_eq!(
            cosigners(&cosigned, &all_keys),
            ["witness.test/w1", "witness.test/w2"]
        );
    }
    // No submission needed a retry: each witness was asked from the size it held.
    for w in [&w1, &w2] {
        assert!(!w.log_text().contains("refused"), "{}", w.log_text());
    }
    // Monitors get the latest cosigned checkpoint with the log's signature and the
    // witness's own cosignature.
    let (status, note) = monitored(&w1.url(), ORIGIN).await;
    assert_eq!(status, 200, "{note}");
    assert_eq!(size_of(&note), 1000);
    assert_eq!(cosigners(&note, &all_keys), ["witness.test/w1"]);

    // w1 is killed and started again on the same state file and port: it still holds 1000.
    let addr = w1.kill();
    let w1 = WitnessProcess::start(&w1_key, &[&log_vkey], &w1_state, &addr);
    let stale = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: tlog.latest().await.unwrap().unwrap().1,
    };
    let (status, ctype, body) = post(&w1.url(), stale.to_body()).await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "1000\n")
    );
    assert_eq!(size_of(&monitored(&w1.url(), ORIGIN).await.1), 1000);
    let note = tlog.sign(&log_key, &TestLeaves::first(1500)).await.unwrap();
    let (cosigned, outcomes) = witnesses.cosign(&tlog, &note).await;
    assert_eq!(
        cosigners(&cosigned, &all_keys),
        ["witness.test/w1", "witness.test/w2"],
        "{outcomes:?}"
    );

    // The fork: the log restored from a backup of its first 700 leaves, then written to, and
    // signed with the same key. A log that does not know what the witnesses hold (a fresh
    // `Witnesses`) asks from 0, learns 1500 from the 409, proves from there in its own
    // history — and both witnesses refuse: 422.
    let mut forked_leaves = TestLeaves::first(700);
    forked_leaves.0.extend(
        (0..1300u64).map(|i| <[u8; 32]>::from(Sha256::digest(format!("fork {i}").as_bytes()))),
    );
    let forked = Tlog::new(Arc::new(MemoryTiles::new()), ORIGIN);
    let fork_note = forked.sign(&log_key, &forked_leaves).await.unwrap();
    assert_eq!(size_of(&fork_note), 2000);
    let fresh = Witnesses::new(vec![w1.config(&w1_vkey), w2.config(&w2_vkey)]);
    let (refused, outcomes) = fresh.cosign(&forked, &fork_note).await;
    assert_eq!(
        refused, fork_note,
        "no cosignature is added to a refused checkpoint"
    );
    assert!(cosigners(&refused, &all_keys).is_empty());
    let witness_names: Vec<&str> = outcomes.iter().map(|o| o.witness()).collect();
    assert_eq!(witness_names, ["witness.test/w1", "witness.test/w2"]);
    for outcome in &outcomes {
        assert!(
            matches!(outcome, WitnessOutcome::Refused { status: 422, .. }),
            "{outcomes:?}"
        );
    }
    // The restored log before it outgrew the witnesses: smaller than what they hold, so no
    // proof can be made to it at all, and the 409 stands.
    let short = Tlog::new(Arc::new(MemoryTiles::new()), ORIGIN);
    let short_leaves = TestLeaves(forked_leaves.0[..1200].to_vec());
    let short_note = short.sign(&log_key, &short_leaves).await.unwrap();
    let (_, outcomes) = Witnesses::new(vec![w2.config(&w2_vkey)])
        .cosign(&short, &short_note)
        .await;
    assert!(
        matches!(&outcomes[..], [WitnessOutcome::Refused { status: 409, body, .. }] if body == "1500\n"),
        "{outcomes:?}"
    );
    // The witnesses still hold the honest log's checkpoint, and said why they refused.
    for w in [&w1, &w2] {
        assert_eq!(size_of(&monitored(&w.url(), ORIGIN).await.1), 1500);
        assert!(w.log_text().contains("may have forked"), "{}", w.log_text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_answers_bad_requests_with_the_statuses_of_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let (log_path, log_vkey) = keygen(dir.path(), ORIGIN, false);
    let log_key = signer(&log_path);
    let (w_key, w_vkey) = keygen(dir.path(), "witness.test/w", true);
    let w = WitnessProcess::start(
        &w_key,
        &[&log_vkey],
        &dir.path().join("w.db"),
        "127.0.0.1:0",
    );
    let tlog = Tlog::new(Arc::new(MemoryTiles::new()), ORIGIN);
    tlog.catch_up(&TestLeaves::first(20)).await.unwrap();
    let root = |size| tlog.root(size);
    let signed = |key: &SignerKey, origin: &str, size: u64, root| {
        let text = Checkpoint {
            origin: origin.into(),
            size,
            root,
        }
        .text();
        Note {
            signatures: vec![key.sign(&text)],
            text,
        }
        .to_string()
    };
    let body = |old_size, checkpoint: String| {
        AddCheckpoint {
            old_size,
            proof: vec![],
            checkpoint,
        }
        .to_body()
    };

    // Nothing cosigned yet: the monitor path of a known log is 404 too.
    assert_eq!(monitored(&w.url(), ORIGIN).await.0, 404);
    assert_eq!(monitored(&w.url(), "unknown.test/log").await.0, 404);

    // Unknown origin: 404.
    let stranger = SignerKey::from_seed("other.test/log", KeyKind::Log, [3; 32]).unwrap();
    let r = post(
        &w.url(),
        body(
            0,
            signed(&stranger, "other.test/log", 10, root(10).await.unwrap()),
        ),
    )
    .await;
    assert_eq!(r.0, 404, "{r:?}");
    // A key of the log's name that the witness does not trust: no trusted signature, 403.
    let impostor = SignerKey::from_seed(ORIGIN, KeyKind::Log, [4; 32]).unwrap();
    let r = post(
        &w.url(),
        body(0, signed(&impostor, ORIGIN, 10, root(10).await.unwrap())),
    )
    .await;
    assert_eq!(r.0, 403, "{r:?}");
    // The trusted key's name and id over a signature that does not verify: 403.
    let good = signed(&log_key, ORIGIN, 10, root(10).await.unwrap());
    let tampered = good.replace("\n10\n", "\n11\n");
    let r = post(&w.url(), body(0, tampered)).await;
    assert_eq!(r.0, 403, "{r:?}");
    // Old size above the checkpoint's size: 400.
    let r = post(&w.url(), body(20, good.clone())).await;
    assert_eq!(r.0, 400, "{r:?}");
    // Malformed bodies: 400.
    for bad in [
        "hello".to_owned(),
        format!("old 01\n\n{good}"),
        format!("old 0\nnot-a-hash\n\n{good}"),
        format!("old 0\n\n{}", good.replace("\n\n", "\n")),
    ] {
        let r = post(&w.url(), bad.clone()).await;
        assert_eq!(r.0, 400, "{bad:?}: {r:?}");
    }
    let r = post(&w.url(), vec![0xffu8, 0xfe, b'\n']).await;
    assert_eq!(r.0, 400, "{r:?}");
    // Oversized: 413, before anything is parsed.
    let r = post(
        &w.url(),
        format!("old 0\n\n{good}{}", "x".repeat(64 * 1024)),
    )
    .await;
    assert_eq!(r.0, 413, "{r:?}");
    // An empty tree must have the empty root: 422.
    let r = post(&w.url(), body(0, signed(&log_key, ORIGIN, 0, [7; 32]))).await;
    assert_eq!(r.0, 422, "{r:?}");
    // A proof from size 0 must be empty: 422.
    let with_proof = AddCheckpoint {
        old_size: 0,
        proof: vec![[1; 32]],
        checkpoint: good.clone(),
    };
    let r = post(&w.url(), with_proof.to_body()).await;
    assert_eq!(r.0, 422, "{r:?}");

    // None of these changed the state: the good checkpoint is cosigned from 0, with one
    // cosignature line of the witness's key.
    let (status, _, lines) = post(&w.url(), body(0, good.clone())).await;
    assert_eq!(status, 200, "{lines}");
    assert!(lines.starts_with("\u{2014} witness.test/w ") && lines.ends_with('\n'));
    let mut note = Note::parse(&good).unwrap();
    note.add_signatures(
        lines
            .lines()
            .map(|l| citydb_tlog::note::NoteSignature::parse_line(l).unwrap()),
    );
    assert_eq!(
        cosigners(&note.to_string(), &[&log_vkey, &w_vkey]),
        ["witness.test/w"]
    );
    // The same size with another root: 422; from a stale size: 409 with the size held.
    let r = post(
        &w.url(),
        body(10, signed(&log_key, ORIGIN, 10, root(9).await.unwrap())),
    )
    .await;
    assert_eq!(r.0, 422, "{r:?}");
    let r = post(
        &w.url(),
        body(0, signed(&log_key, ORIGIN, 12, root(12).await.unwrap())),
    )
    .await;
    assert_eq!(
        (r.0, r.1.as_str(), r.2.as_str()),
        (409, "text/x.tlog.size", "10\n")
    );
    // Growing with the right proof: 200.
    let grown = AddCheckpoint {
        old_size: 10,
        proof: tlog
            .answer(Query::Consistency { old: 10, new: 20 })
            .await
            .unwrap(),
        checkpoint: signed(&log_key, ORIGIN, 20, root(20).await.unwrap()),
    };
    assert_eq!(post(&w.url(), grown.to_body()).await.0, 200);
    assert_eq!(size_of(&monitored(&w.url(), ORIGIN).await.1), 20);
}

#[tokio::test]
async fn an_unreachable_witness_is_reported_and_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (log_path, log_vkey) = keygen(dir.path(), ORIGIN, false);
    let log_key = signer(&log_path);
    let (w_key, w_vkey) = keygen(dir.path(), "witness.test/w", true);
    let w = WitnessProcess::start(
        &w_key,
        &[&log_vkey],
        &dir.path().join("w.db"),
        "127.0.0.1:0",
    );
    // A port nobody listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead_key = SignerKey::from_seed("witness.test/dead", KeyKind::Cosigner, [8; 32]).unwrap();
    let dead: WitnessConfig = format!("http://{closed},{}", dead_key.verifier())
        .parse()
        .unwrap();
    let tlog = Tlog::new(Arc::new(MemoryTiles::new()), ORIGIN);
    let note = tlog.sign(&log_key, &TestLeaves::first(5)).await.unwrap();
    let (cosigned, outcomes) = Witnesses::new(vec![dead, w.config(&w_vkey)])
        .cosign(&tlog, &note)
        .await;
    assert!(
        matches!(
            &outcomes[..],
            [
                WitnessOutcome::Unreachable { .. },
                WitnessOutcome::Cosigned { .. }
            ]
        ),
        "{outcomes:?}"
    );
    assert_eq!(
        cosigners(&cosigned, &[&log_vkey, &w_vkey, &dead_key.verifier()]),
        ["witness.test/w"]
    );
}

/// The events a log file holds.
fn events_in(log: &Path) -> u64 {
    let db = rusqlite::Connection::open(log).unwrap();
    db.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

/// `citydb fixtures` of `seed` imported into `data` (files of different seeds may refuse some
/// of each other's keys: exit 3 is fine, the log grows either way).
fn import_seed(dir: &Path, data: &Path, seed: u64, citizens: u64) {
    let file = dir.join(format!("seed-{seed}.ndjson"));
    let out = common::binary::run(&[
        "fixtures",
        "--citizens",
        &citizens.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = common::binary::run(&[
        "import",
        "--data",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
}

/// Waits until the served checkpoint covers `size` entries and returns it.
async fn served_checkpoint(serving: &common::binary::Serving, size: u64) -> String {
    let started = std::time::Instant::now();
    loop {
        let r = serving
            .http
            .get(format!("{}/log/checkpoint", serving.base))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let note = r.text().await.unwrap();
            if size_of(&note) == size {
                return note;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no checkpoint of {size} entries; the server said:\n{}",
            serving.stderr.lock().unwrap().join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits until the served checkpoint carries every witness's cosignature.
async fn cosigned_by_all(
    serving: &common::binary::Serving,
    size: u64,
    keys: &[&VerifierKey],
    witnesses: usize,
) -> String {
    let started = std::time::Instant::now();
    loop {
        let note = served_checkpoint(serving, size).await;
        if cosigners(&note, keys).len() == witnesses {
            return note;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "not cosigned by all: {note}\n{}",
            serving.stderr.lock().unwrap().join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `citydb serve` end to end: it submits each checkpoint to two witnesses and publishes the
/// cosigned note, across restarts (each witness is caught up with a consistency proof); a log
/// restored from an old backup and written to signs a checkpoint the witnesses refuse, so the
/// fork is never published with their cosignatures and they keep the history they vouched for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publishes_cosigned_checkpoints_and_witnesses_refuse_a_restored_fork() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (log_key, log_vkey) = keygen(d, ORIGIN, false);
    // The access log's checkpoints come from the same key under its own name.
    let access_vkey = signer(&log_key)
        .renamed(&format!("{ORIGIN}/access-log"))
        .unwrap()
        .verifier();
    let (w1_key, w1_vkey) = keygen(d, "w1.test/witness", true);
    let (w2_key, w2_vkey) = keygen(d, "w2.test/witness", true);
    let logs = [&log_vkey, &access_vkey];
    let w1 = WitnessProcess::start(&w1_key, &logs, &d.join("w1.db"), "127.0.0.1:0");
    let w2 = WitnessProcess::start(&w2_key, &logs, &d.join("w2.db"), "127.0.0.1:0");
    let data = d.join("data");
    let principals = d.join("principals.toml");
    let out = common::binary::run(&["token", "--id", "auditor", "--role", "auditor"]);
    std::fs::write(&principals, &out.stdout).unwrap();
    let w1_arg = format!("{},{w1_vkey}", w1.url());
    let w2_arg = format!("{},{w2_vkey}", w2.url());
    let serve = || {
        common::binary::Serving::start(&[
            "--data",
            data.to_str().unwrap(),
            "--config",
            principals.to_str().unwrap(),
            "--signing-key",
            log_key.to_str().unwrap(),
            "--witness",
            &w1_arg,
            "--witness",
            &w2_arg,
            "--checkpoint-interval",
            "1",
        ])
    };
    let keys = [&log_vkey, &w1_vkey, &w2_vkey];

    import_seed(d, &data, 1, 8);
    let backup = d.join("backup.db");
    std::fs::copy(data.join("log.db"), &backup).unwrap();
    let first = events_in(&data.join("log.db"));
    let serving = serve();
    cosigned_by_all(&serving, first, &keys, 2).await;
    serving.stop();

    // More history, another start: the witnesses are caught up with a consistency proof.
    import_seed(d, &data, 2, 8);
    let second = events_in(&data.join("log.db"));
    assert!(second > first);
    let serving = serve();
    let vouched = cosigned_by_all(&serving, second, &keys, 2).await;
    serving.stop();

    // The old backup restored and written to: another history at the same positions.
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("log.db{ext}")));
    }
    std::fs::copy(&backup, data.join("log.db")).unwrap();
    import_seed(d, &data, 3, 30);
    let forked = events_in(&data.join("log.db"));
    assert!(
        forked > second,
        "the fork must be larger to be checked by a proof"
    );
    let serving = serve();
    let note = served_checkpoint(&serving, forked).await;
    // Give the witnesses their say, then: no cosignature on the fork, and both still hold
    // (and serve to monitors) the history they vouched for.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let note_now = served_checkpoint(&serving, forked).await;
    assert_eq!(note, note_now);
    assert!(
        cosigners(&note_now, &keys).is_empty(),
        "a fork was cosigned: {note_now}"
    );
    for w in [&w1, &w2] {
        let (status, held) = monitored(&w.url(), ORIGIN).await;
        assert_eq!(status, 200);
        assert_eq!(size_of(&held), second);
        assert_eq!(
            Note::parse(&held).unwrap().text,
            Note::parse(&vouched).unwrap().text
        );
    }
    let log = serving.stop().join("\n");
    assert!(
        log.contains("did not cosign") && log.contains("422"),
        "{log}"
    );
}
