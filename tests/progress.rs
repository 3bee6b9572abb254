//! Progress a person can watch and a summary a program can read, through the real binary with
//! standard error on a pipe (as in CI): plain periodic lines and a final line, never an escape
//! byte; `--summary json` counts that match the data imported; exit codes unchanged.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;
use common::binary::run as citydb;

/// A tiny interval: even a short run prints periodic lines.
const FAST: [&str; 4] = ["--progress", "plain", "--progress-interval", "0.001"];

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
fn expect_code(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", text(output));
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn demo_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.ndjson")
}

fn non_blank_lines(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

/// Standard output as the one JSON object `--summary json` prints there.
#[track_caller]
fn json_summary(output: &Output) -> Value {
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(out.lines().count(), 1, "one line of JSON\n{}", text(output));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{}", text(output)))
}

/// Standard error has the final line of `what` (and at least one periodic line when
/// `periodic`: a run that ends within the first interval has none), and no escape byte
/// anywhere.
#[track_caller]
fn expect_plain_lines(output: &Output, what: &str, periodic: bool) {
    assert!(
        !output.stderr.contains(&0x1b) && !output.stdout.contains(&0x1b),
        "an escape code\n{}",
        text(output)
    );
    let err = String::from_utf8_lossy(&output.stderr);
    let prefix = format!("{what}: ");
    let lines = err
        .lines()
        .filter(|l| l.starts_with(&prefix) && !l.starts_with(&format!("{prefix}done")))
        .count();
    assert!(
        !periodic || lines >= 1,
        "no periodic line\n{}",
        text(output)
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with(&format!("{prefix}done, ")))
            .count(),
        1,
        "one final line\n{}",
        text(output)
    );
    assert!(err.contains("/s"), "a rate\n{}", text(output));
}

#[track_caller]
fn expect_plain_progress(output: &Output, what: &str) {
    expect_plain_lines(output, what, true);
}

#[track_caller]
fn expect_outcome(summary: &Value, command: &str, code: u64, outcome: &str) {
    assert_eq!(summary["command"], command, "{summary}");
    assert_eq!(summary["exit_code"], code, "{summary}");
    assert_eq!(summary["outcome"], outcome, "{summary}");
    assert!(summary["elapsed_seconds"].as_f64().is_some(), "{summary}");
}

fn imported(dir: &Path) -> (PathBuf, Value) {
    let data = dir.join("data");
    let fixture = demo_fixture();
    let mut args = vec![
        "import",
        "--data",
        s(&data),
        s(&fixture),
        "--summary",
        "json",
    ];
    args.extend(FAST);
    let out = citydb(&args);
    expect_code(&out, 0);
    expect_plain_progress(&out, "import");
    // Into an empty store the import is bulk: the log's indexes are built after the rows, a
    // stage of its own between the lines and the projections.
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("import: building the log's indexes: done in "),
        "{}",
        text(&out)
    );
    let summary = json_summary(&out);
    expect_outcome(&summary, "import", 0, "success");
    (data, summary)
}

#[test]
fn import_counts_the_fixture_and_a_reimport_adds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, first) = imported(dir.path());
    let fixture = demo_fixture();
    let lines = non_blank_lines(&fixture);
    assert_eq!(first["lines"], lines, "{first}");
    assert_eq!(first["accepted"], lines, "{first}");
    assert_eq!(first["already_imported"], 0, "{first}");
    assert_eq!(first["rejected"], 0, "{first}");
    assert_eq!(
        first["bytes"],
        std::fs::metadata(&fixture).expect("size").len()
    );
    assert!(
        first["events"].as_u64().expect("events") >= lines,
        "{first}"
    );
    assert_eq!(first["rate_unit"], "lines");

    let mut args = vec![
        "import",
        "--data",
        s(&data),
        s(&fixture),
        "--summary",
        "json",
    ];
    args.extend(FAST);
    let again = citydb(&args);
    expect_code(&again, 0);
    let second = json_summary(&again);
    assert_eq!(second["already_imported"], lines, "{second}");
    assert_eq!(second["accepted"], 0, "{second}");
    assert_eq!(second["events"], 0, "{second}");
    // With the JSON on standard output, the human report moved to standard error.
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(&format!(
            "{lines} lines: 0 accepted, {lines} already imported"
        )),
        "{}",
        text(&again)
    );
}

#[test]
fn an_import_with_rejected_lines_still_exits_3_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = dir.path().join("bad.ndjson");
    let first = std::fs::read_to_string(demo_fixture()).expect("read");
    let first = first.lines().next().expect("a line");
    std::fs::write(&file, format!("{first}\nnot json\n")).expect("write");
    let summary_file = dir.path().join("summary.json");
    let out = citydb(&[
        "import",
        "--data",
        s(&data),
        s(&file),
        "--summary-file",
        s(&summary_file),
        "--progress",
        "none",
    ]);
    expect_code(&out, 3);
    // The human report stays on standard output; nothing on standard error.
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("2 lines: 1 accepted, 0 already imported, 1 rejected"),
        "{}",
        text(&out)
    );
    assert!(out.stderr.is_empty(), "{}", text(&out));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).expect("summary file"))
            .expect("JSON");
    expect_outcome(&summary, "import", 3, "rejected");
    assert_eq!(summary["lines"], 2);
    assert_eq!(summary["accepted"], 1);
    assert_eq!(summary["rejected"], 1);
}

#[test]
fn verify_export_migrate_and_rebuild_report_the_imported_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, import) = imported(dir.path());
    let events = import["events"].as_u64().expect("events");

    let run_with = |args: &[&str], what: &str, periodic: bool| -> Value {
        let mut args = args.to_vec();
        args.extend(["--summary", "json"]);
        args.extend(FAST);
        let out = citydb(&args);
        expect_code(&out, 0);
        expect_plain_lines(&out, what, periodic);
        json_summary(&out)
    };
    let run = |args: &[&str], what: &str| run_with(args, what, true);

    let verified = run(&["verify", "--data", s(&data)], "verify");
    expect_outcome(&verified, "verify", 0, "success");
    assert_eq!(verified["events"], events, "{verified}");
    assert_eq!(verified["head"]["position"], events - 1, "{verified}");
    assert_eq!(verified["rate_unit"], "events");

    let export = dir.path().join("export.ndjson");
    let exported = run(
        &["export", "--data", s(&data), "--out", s(&export)],
        "export",
    );
    expect_outcome(&exported, "export", 0, "success");
    assert_eq!(exported["events"], events, "{exported}");
    assert_eq!(
        exported["bytes"],
        std::fs::metadata(&export).expect("size").len()
    );
    assert_eq!(
        non_blank_lines(&export),
        events + 1,
        "the header, then the events"
    );
    assert_eq!(exported["head"], verified["head"]);

    let from_file = run(&["verify", "--file", s(&export)], "verify");
    assert_eq!(from_file["events"], events, "{from_file}");
    assert_eq!(from_file["bytes"], exported["bytes"]);

    let copy = dir.path().join("copy/log.db");
    let migrated = run(
        &[
            "migrate",
            "--from",
            s(&data.join("log.db")),
            "--to",
            s(&copy),
        ],
        "migrate",
    );
    expect_outcome(&migrated, "migrate", 0, "success");
    assert_eq!(migrated["events"], events, "{migrated}");
    assert_eq!(migrated["head"], verified["head"]);

    let rebuilt = run(
        &["rebuild-projections", "--data", s(&data)],
        "rebuild-projections",
    );
    expect_outcome(&rebuilt, "rebuild-projections", 0, "success");
    assert_eq!(rebuilt["events"], events, "{rebuilt}");

    // One stream: a spinner's lines (no total), with the stream's own count.
    let stream = first_stream(&export);
    let one = run_with(
        &["verify", "--data", s(&data), "--stream", &stream.0],
        "verify",
        false,
    );
    assert_eq!(one["events"], stream.1, "{one}");
}

/// The first exported event's stream and how many events the export holds for it.
fn first_stream(export: &Path) -> (String, u64) {
    let content = std::fs::read_to_string(export).expect("read");
    let streams: Vec<String> = content
        .lines()
        .skip(1) // the header
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("an exported event");
            v["stream_id"].as_str().expect("a stream").to_owned()
        })
        .collect();
    let count = streams.iter().filter(|s| **s == streams[0]).count() as u64;
    (streams[0].clone(), count)
}

#[test]
fn a_broken_chain_still_exits_2_and_the_summary_says_broken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, _) = imported(dir.path());
    let export = dir.path().join("export.ndjson");
    expect_code(
        &citydb(&["export", "--data", s(&data), "--out", s(&export)]),
        0,
    );
    // Change one digit of the data of event 3: its hash no longer matches.
    let content = std::fs::read_to_string(&export).expect("read");
    let mut lines: Vec<String> = content.lines().map(str::to_owned).collect();
    let line = &mut lines[4]; // event 3: line 0 is the header
    let start = line.find("\"data\":\"").expect("data") + "\"data\":\"".len();
    let at = start
        + line[start..]
            .find(|c: char| c.is_ascii_digit())
            .expect("a digit in the data");
    let other = if line.as_bytes()[at] == b'1' {
        "2"
    } else {
        "1"
    };
    line.replace_range(at..at + 1, other);
    let tampered = dir.path().join("tampered.ndjson");
    std::fs::write(&tampered, lines.join("\n") + "\n").expect("write");

    let mut args = vec!["verify", "--file", s(&tampered), "--summary", "json"];
    args.extend(FAST);
    let out = citydb(&args);
    expect_code(&out, 2);
    // It stops at the breach at once: maybe before the first interval.
    expect_plain_lines(&out, "verify", false);
    let summary = json_summary(&out);
    expect_outcome(&summary, "verify", 2, "broken");
    assert!(
        summary["reason"]
            .as_str()
            .is_some_and(|r| r.contains("position 3")),
        "{summary}"
    );

    // A rewritten row in the store: verify and migrate both say `broken`, with exit 2.
    let conn = rusqlite::Connection::open(data.join("log.db")).expect("open log.db");
    let changed = conn
        .execute(
            "UPDATE events SET metadata = replace(metadata, 'steward', 'stewart') WHERE position = 11",
            [],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(conn);
    for (args, what) in [
        (vec!["verify", "--data", s(&data)], "verify"),
        (
            vec![
                "migrate",
                "--from",
                s(&data.join("log.db")),
                "--to",
                s(&dir.path().join("copy/log.db")),
            ],
            "migrate",
        ),
    ] {
        let mut args = args;
        args.extend(["--summary", "json", "--progress", "none"]);
        let out = citydb(&args);
        expect_code(&out, 2);
        let summary = json_summary(&out);
        expect_outcome(&summary, what, 2, "broken");
        assert!(
            summary["reason"].as_str().is_some_and(|r| r.contains("11")),
            "{summary}"
        );
    }
}

#[test]
fn errors_exit_1_with_a_summary_and_auto_progress_is_plain_on_a_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No log to verify: an error, exit 1, and the summary says so.
    let missing = dir.path().join("nothing");
    let out = citydb(&["verify", "--data", s(&missing), "--summary", "json"]);
    expect_code(&out, 1);
    let failed = json_summary(&out);
    expect_outcome(&failed, "verify", 1, "error");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no log")),
        "{failed}"
    );

    // The export and the JSON cannot share standard output.
    let (data, _) = imported(dir.path());
    let out = citydb(&["export", "--data", s(&data), "--summary", "json"]);
    expect_code(&out, 1);
    expect_outcome(&json_summary(&out), "export", 1, "error");

    // Without --progress, standard error on a pipe gets the plain final line, no escapes.
    let out = citydb(&["verify", "--data", s(&data)]);
    expect_code(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("verify: done, "), "{}", text(&out));
    assert!(!out.stderr.contains(&0x1b), "{}", text(&out));
    // … and --progress none silences it.
    let out = citydb(&["verify", "--data", s(&data), "--progress", "none"]);
    expect_code(&out, 0);
    assert!(out.stderr.is_empty(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("intact: "),
        "{}",
        text(&out)
    );
}
