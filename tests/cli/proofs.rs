//! Receipts and checkpoints from the command line (issue 14): every command that writes a log
//! leaves its Merkle tree caught up (import, migrate); `citydb prove` prints a receipt that
//! `citydb verify --proof` checks offline; `citydb verify --checkpoint` catches a log restored
//! from an old backup and written to.

use std::path::{Path, PathBuf};

use super::{citydb, expect_code, s, stdout, text};

fn key_file(dir: &Path) -> (PathBuf, PathBuf) {
    let key =
        citydb_tlog::SignerKey::from_seed("citydb.test/log", citydb_tlog::KeyKind::Log, [3; 32])
            .unwrap();
    let (k, v) = (dir.join("key"), dir.join("vkey"));
    std::fs::write(&k, key.to_file_text()).unwrap();
    std::fs::write(&v, format!("{}\n", key.verifier())).unwrap();
    (k, v)
}

fn import_seed(dir: &Path, data: &Path, seed: u64, citizens: u64) {
    let file = dir.join(format!("seed-{seed}.ndjson"));
    let out = citydb(&[
        "fixtures",
        "--citizens",
        &citizens.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        s(&file),
    ]);
    expect_code(&out, 0);
    // Files of different seeds may refuse each other's keys (exit 3): what matters here is
    // that each import adds history.
    let before = std::fs::metadata(data.join("log.db"))
        .is_ok()
        .then(|| events(&data.join("log.db")));
    let out = citydb(&["import", "--data", s(data), s(&file)]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", text(&out));
    assert!(events(&data.join("log.db")) > before.unwrap_or(0));
}

/// (size, every tile row) of a log file's stored tree.
fn tree(log: &Path) -> (i64, Vec<(i64, i64, Vec<u8>)>) {
    let db = rusqlite::Connection::open(log).unwrap();
    let size = db
        .query_row("SELECT size FROM tlog_size", [], |r| r.get(0))
        .unwrap();
    let mut stmt = db
        .prepare("SELECT level, idx, hashes FROM tlog_tiles ORDER BY level, idx")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (size, rows)
}

fn events(log: &Path) -> i64 {
    let db = rusqlite::Connection::open(log).unwrap();
    db.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

/// The signed checkpoint at the end of a receipt.
fn checkpoint_of(receipt: &str) -> String {
    receipt.split_once("\n\n").unwrap().1.to_owned()
}

#[test]
fn an_import_keeps_the_tree_and_prove_gives_a_receipt_anyone_checks_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import_seed(dir.path(), &data, 1, 20);
    let log = data.join("log.db");
    let (size, _) = tree(&log);
    assert_eq!(
        size,
        events(&log),
        "the import left the tree behind the log"
    );

    let (key, vkey) = key_file(dir.path());
    // Nothing signed yet: prove says so instead of printing an unsigned receipt.
    let out = citydb(&["prove", "--data", s(&data), "--position", "5"]);
    expect_code(&out, 1);
    assert!(text(&out).contains("--signing-key"), "{}", text(&out));
    let out = citydb(&[
        "prove",
        "--data",
        s(&data),
        "--position",
        "5",
        "--signing-key",
        s(&key),
    ]);
    expect_code(&out, 0);
    let receipt = stdout(&out);
    assert!(
        receipt.starts_with("c2sp.org/tlog-proof@v1\nextra "),
        "{receipt}"
    );
    let file = dir.path().join("r.tlog-proof");
    std::fs::write(&file, &receipt).unwrap();
    let out = citydb(&["verify", "--proof", s(&file), "--vkey", s(&vkey)]);
    expect_code(&out, 0);

    // The receipt names the event hash at that position.
    let db = rusqlite::Connection::open(&log).unwrap();
    let hash: Vec<u8> = db
        .query_row("SELECT hash FROM events WHERE position = 5", [], |r| {
            r.get(0)
        })
        .unwrap();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let out = citydb(&[
        "verify",
        "--proof",
        s(&file),
        "--vkey",
        s(&vkey),
        "--event-hash",
        &hex,
    ]);
    expect_code(&out, 0);
    let other = "00".repeat(32);
    let out = citydb(&[
        "verify",
        "--proof",
        s(&file),
        "--vkey",
        s(&vkey),
        "--event-hash",
        &other,
    ]);
    expect_code(&out, 2);

    // Any change to the receipt, or another key, fails it.
    for (from, to) in [("index 5\n", "index 6\n"), ("\n\n", "\n\n")] {
        let mut changed = receipt.replacen(from, to, 1);
        if from == to {
            // Flip one character of the first proof hash.
            let line = changed.lines().nth(3).unwrap().to_owned();
            let flipped = if line.starts_with('A') {
                line.replacen('A', "B", 1)
            } else {
                format!("A{}", &line[1..])
            };
            changed = changed.replacen(&line, &flipped, 1);
        }
        std::fs::write(&file, &changed).unwrap();
        let out = citydb(&["verify", "--proof", s(&file), "--vkey", s(&vkey)]);
        expect_code(&out, 2);
    }
    let stranger =
        citydb_tlog::SignerKey::from_seed("citydb.test/log", citydb_tlog::KeyKind::Log, [4; 32])
            .unwrap()
            .verifier()
            .to_string();
    std::fs::write(&file, &receipt).unwrap();
    let out = citydb(&["verify", "--proof", s(&file), "--vkey", &stranger]);
    expect_code(&out, 2);
    let out = citydb(&["verify", "--proof", s(&file), "--vkey", "not a key"]);
    expect_code(&out, 1);
}

#[test]
fn verify_checkpoint_catches_a_log_restored_from_a_backup_and_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (key, vkey) = key_file(dir.path());
    import_seed(dir.path(), &data, 1, 10);
    let backup = dir.path().join("backup.db");
    std::fs::copy(data.join("log.db"), &backup).unwrap();
    assert!(
        !data.join("log.db-wal").exists()
            || std::fs::metadata(data.join("log.db-wal")).unwrap().len() == 0
    );

    import_seed(dir.path(), &data, 2, 10);
    let out = citydb(&[
        "prove",
        "--data",
        s(&data),
        "--position",
        "0",
        "--signing-key",
        s(&key),
    ]);
    expect_code(&out, 0);
    let saved = dir.path().join("checkpoint");
    std::fs::write(&saved, checkpoint_of(&stdout(&out))).unwrap();
    let verify_saved = || {
        citydb(&[
            "verify",
            "--data",
            s(&data),
            "--checkpoint",
            s(&saved),
            "--vkey",
            s(&vkey),
        ])
    };
    let out = verify_saved();
    expect_code(&out, 0);

    // More history on top still extends it.
    import_seed(dir.path(), &data, 3, 5);
    let out = verify_saved();
    expect_code(&out, 0);

    // The old backup restored, then written to: another history under the same positions.
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("log.db{ext}")));
    }
    std::fs::copy(&backup, data.join("log.db")).unwrap();
    import_seed(dir.path(), &data, 4, 25);
    let out = verify_saved();
    expect_code(&out, 2);
    assert!(text(&out).contains("rewritten"), "{}", text(&out));
}

#[test]
fn migrate_carries_the_tree_hash_for_hash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import_seed(dir.path(), &data, 1, 15);
    let target = dir.path().join("copy").join("log.db");
    let out = citydb(&[
        "migrate",
        "--from",
        s(&data.join("log.db")),
        "--to",
        s(&target),
    ]);
    expect_code(&out, 0);
    let (size, tiles) = tree(&target);
    assert_eq!(size, events(&target));
    assert_eq!((size, tiles), tree(&data.join("log.db")));
}
