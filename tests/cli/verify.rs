//! `citydb verify` as an auditor reads it: `--format json` with the breach codes and
//! positions, one convention for the position a gap names (the position found) in every
//! verifier — the whole log on SQLite and PostgreSQL, one stream, an export, the access log,
//! and both Python tools —, the export's header line (and exports without one), redacted
//! events listed, and a closed standard output that changes nothing but the output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{BIN, citydb, expect_code, fixtures, python_has_blake3, s, stdout, text};

/// The JSON report on standard output (the human report went to standard error).
fn json(out: &Output) -> Value {
    serde_json::from_str(stdout(out).trim())
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{}", text(out)))
}

/// `citydb verify ARGS --format json --progress none`: the report and the exit code checked.
fn verify_json(args: &[&str], code: i32) -> Value {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.extend(["--format", "json", "--progress", "none"]);
    let out = citydb(&all);
    expect_code(&out, code);
    json(&out)
}

/// A tool of `tools/` on `args`: its exit code and its output, or `None` (a loud skip; a
/// failure under CITYDB_REQUIRE_ALL=1) without Python's blake3.
fn python(tool: &str, args: &[&str]) -> Option<(Option<i32>, String)> {
    if !python_has_blake3() {
        citydb_postgres::testkit::skip(
            &format!("tools/{tool} in tests/cli/verify.rs"),
            "`python3 -c 'import blake3'` fails",
            "python3 -m pip install blake3",
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tools")
        .join(tool);
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    Some((out.status.code(), text(&out)))
}

/// A data directory with the fixture of `citizens` imported.
fn imported(dir: &Path, citizens: u64) -> PathBuf {
    let data = dir.join("data");
    let file = fixtures(dir, citizens);
    expect_code(&citydb(&["import", "--data", s(&data), s(&file)]), 0);
    data
}

fn sql(data: &Path, file: &str, statement: &str) -> usize {
    let conn = rusqlite::Connection::open(data.join(file)).unwrap();
    conn.execute(statement, []).unwrap()
}

/// The export's lines with those of `positions` dropped (and the header, if `header` is
/// false), written to `name` beside it.
fn rewritten(export: &Path, name: &str, header: bool, drop: &[u64]) -> PathBuf {
    let kept: Vec<String> = std::fs::read_to_string(export)
        .unwrap()
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            match v.get("position") {
                Some(p) => !drop.contains(&p.as_u64().unwrap()),
                None => header,
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let path = export.with_file_name(name);
    std::fs::write(&path, kept.concat()).unwrap();
    path
}

#[track_caller]
fn expect_gap(report: &Value, found: u64) {
    assert_eq!(report["outcome"], "broken", "{report}");
    let breach = &report["breach"];
    assert_eq!(breach["code"], "position_gap", "{report}");
    assert_eq!(breach["position"], found, "the position found: {report}");
    assert_eq!(breach["found"], found, "{report}");
    assert_eq!(breach["expected"], found - 1, "{report}");
    // Events before the gap verified.
    assert_eq!(report["events"], found - 1, "{report}");
}

#[test]
fn verify_json_names_each_breach_by_its_code_and_a_gap_by_the_position_found() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 10);
    let intact = verify_json(&["--data", s(&data)], 0);
    assert_eq!(intact["command"], "verify");
    assert_eq!(intact["outcome"], "success");
    assert_eq!(intact["verified"], "log");
    assert!(intact.get("breach").is_none(), "{intact}");
    assert_eq!(intact["redacted"]["count"], 0, "{intact}");
    let head = &intact["head"];
    let events = intact["events"].as_u64().unwrap();
    assert_eq!(head["position"], events - 1);
    // `--summary json` is the same report.
    let out = citydb(&["verify", "--data", s(&data), "--summary", "json"]);
    expect_code(&out, 0);
    assert_eq!(json(&out)["redacted"], intact["redacted"]);

    let export = dir.path().join("export.ndjson");
    expect_code(
        &citydb(&["export", "--data", s(&data), "--out", s(&export)]),
        0,
    );

    // Event 20 deleted: the gap is named at 21, the event found, by every verifier.
    let gapped = rewritten(&export, "gap.ndjson", true, &[20]);
    expect_gap(&verify_json(&["--file", s(&gapped)], 2), 21);
    let out = citydb(&["verify", "--file", s(&gapped)]);
    expect_code(&out, 2);
    assert!(
        stdout(&out).starts_with("BROKEN at position 21: position_gap: "),
        "{}",
        text(&out)
    );
    if let Some((code, out)) = python("verify_export.py", &[s(&gapped)]) {
        assert_eq!(code, Some(2), "{out}");
        assert!(
            out.contains("BROKEN at position 21: position_gap (expected 20)"),
            "{out}"
        );
    }
    assert_eq!(
        sql(&data, "log.db", "DELETE FROM events WHERE position = 20"),
        1
    );
    expect_gap(&verify_json(&["--data", s(&data)], 2), 21);

    // A changed payload: data_changed at its position, in the log, in one stream, in an export.
    let victim: Value = serde_json::from_str(
        std::fs::read_to_string(&export)
            .unwrap()
            .lines()
            .nth(1 + 7)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(victim["position"], 7);
    let stream = victim["stream_id"].as_str().unwrap();
    let changed = sql(
        &data,
        "log.db",
        "UPDATE events SET data = replace(data, '\"', '\"x') WHERE position = 7",
    );
    assert_eq!(changed, 1);
    for (args, verified) in [
        (vec!["--data", s(&data)], "log"),
        (vec!["--data", s(&data), "--stream", stream], "stream"),
    ] {
        let report = verify_json(&args, 2);
        assert_eq!(report["verified"], verified, "{report}");
        assert_eq!(report["breach"]["code"], "data_changed", "{report}");
        assert_eq!(report["breach"]["position"], 7, "{report}");
        assert!(
            report["breach"]["message"]
                .as_str()
                .unwrap()
                .contains("payload"),
            "{report}"
        );
    }
    // An export line that does not decode: `undecodable`, by its line.
    let mut lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines[4] = "{\"position\": 3".to_owned();
    let cut = dir.path().join("cut.ndjson");
    std::fs::write(&cut, lines.join("\n") + "\n").unwrap();
    let report = verify_json(&["--file", s(&cut)], 2);
    assert_eq!(report["breach"]["code"], "undecodable", "{report}");
    assert_eq!(report["breach"]["line"], 5, "{report}");
    if let Some((code, out)) = python("verify_export.py", &[s(&cut)]) {
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains("BROKEN at line 5: undecodable"), "{out}");
    }
    // A head that is no longer there: truncated, named at the head's position.
    let beyond = format!("{}:{}", events + 5, head["hash"].as_str().unwrap());
    let report = verify_json(&["--file", s(&export), "--expected-head", &beyond], 2);
    assert_eq!(report["breach"]["code"], "truncated", "{report}");
    assert_eq!(report["breach"]["position"], events + 5, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_json_on_postgres_names_a_gap_by_the_position_found() {
    use citydb_postgres::testkit::{TestCluster, connect};
    let test = "verify_json_on_postgres_names_a_gap_by_the_position_found";
    let Some(cluster) = TestCluster::shared_or_skip(test) else {
        return;
    };
    let url = cluster.create_database().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures(dir.path(), 10);
    let data = dir.path().join("data");
    let args = ["--data", s(&data), "--store", &url];
    let mut import = vec!["import", s(&file)];
    import.extend(args);
    expect_code(&citydb(&import), 0);
    let intact = verify_json(&args, 0);
    assert_eq!(intact["verified"], "log");
    assert!(
        !intact["source"].as_str().unwrap().contains("postgres://"),
        "the URL (and its password) stays out of the report: {intact}"
    );
    let client = connect(&url).await.unwrap();
    let deleted = client
        .execute("DELETE FROM events WHERE position = 30", &[])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    expect_gap(&verify_json(&args, 2), 31);
}

#[test]
fn the_export_states_its_hash_format_and_an_export_without_it_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 5);
    for flavour in ["ndjson", "cloudevents"] {
        let export = dir.path().join(format!("{flavour}.ndjson"));
        let out = citydb(&[
            "export",
            "--data",
            s(&data),
            "--format",
            flavour,
            "--out",
            s(&export),
        ]);
        expect_code(&out, 0);
        let content = std::fs::read_to_string(&export).unwrap();
        let header: Value = serde_json::from_str(content.lines().next().unwrap()).unwrap();
        assert_eq!(header["header"], "citydb-export", "{header}");
        assert_eq!(header["hash_format"], 1, "{header}");
        assert_eq!(header["flavour"], flavour, "{header}");

        let stated = verify_json(&["--file", s(&export)], 0);
        assert_eq!(stated["verified"], "export");
        assert_eq!(stated["hash_format"], 1);
        assert_eq!(stated["hash_format_stated"], true);

        // An export written before the header existed: format 1, the same verdict and head.
        let old = export.with_extension("old.ndjson");
        let body: Vec<&str> = content.lines().skip(1).collect();
        std::fs::write(&old, body.join("\n") + "\n").unwrap();
        let unstated = verify_json(&["--file", s(&old)], 0);
        assert_eq!(unstated["hash_format"], 1);
        assert_eq!(unstated["hash_format_stated"], false);
        assert_eq!(unstated["head"], stated["head"]);
        assert_eq!(unstated["events"], stated["events"]);
        let head = format!(
            "head: position {} hash {}",
            stated["head"]["position"],
            stated["head"]["hash"].as_str().unwrap()
        );
        for file in [&export, &old] {
            if let Some((code, out)) = python("verify_export.py", &[s(file)]) {
                assert_eq!(code, Some(0), "{out}");
                assert!(out.contains(&head), "{out}");
                let said = if *file == export {
                    "hash format 1: stated in the export's header"
                } else {
                    "hash format 1: no header"
                };
                assert!(out.contains(said), "{out}");
            }
        }

        // A format this verifier does not know is refused (exit 1), not guessed at.
        let newer = export.with_extension("v2.ndjson");
        std::fs::write(
            &newer,
            content.replacen("\"hash_format\":1", "\"hash_format\":2", 1),
        )
        .unwrap();
        let out = citydb(&["verify", "--file", s(&newer)]);
        expect_code(&out, 1);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("hash format 2"),
            "{}",
            text(&out)
        );
        if let Some((code, out)) = python("verify_export.py", &[s(&newer)]) {
            assert_eq!(code, Some(1), "{out}");
            assert!(out.contains("hash format 2"), "{out}");
        }
        // A header anywhere but first is no event: undecodable.
        let moved = export.with_extension("moved.ndjson");
        let mut lines: Vec<&str> = content.lines().collect();
        lines.swap(0, 1);
        std::fs::write(&moved, lines.join("\n") + "\n").unwrap();
        let report = verify_json(&["--file", s(&moved)], 2);
        assert_eq!(report["breach"]["code"], "undecodable", "{report}");
        assert_eq!(report["breach"]["line"], 2, "{report}");
    }
}

#[test]
fn redacted_events_are_listed_not_silently_counted_as_intact() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 120);
    let events = verify_json(&["--data", s(&data)], 0)["events"]
        .as_u64()
        .unwrap();
    let listed = 1000u64;
    assert!(
        events > listed + 50,
        "{events} events: too few to pass the bound"
    );
    // A court-ordered redaction blanks the data; the digest stays.
    sql(
        &data,
        "log.db",
        "UPDATE events SET data = NULL WHERE position IN (2, 9)",
    );
    let report = verify_json(&["--data", s(&data)], 0);
    assert_eq!(report["outcome"], "success", "still intact by the chain");
    assert_eq!(report["redacted"]["count"], 2, "{report}");
    assert_eq!(report["redacted"]["positions"], serde_json::json!([2, 9]));
    assert_eq!(report["redacted"]["all_listed"], true);
    let out = citydb(&["verify", "--data", s(&data)]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("redacted: 2 events, at positions 2, 9 "),
        "{}",
        text(&out)
    );
    // The stream of event 9 reports its own (and event 2, if it is of the same stream).
    let conn = rusqlite::Connection::open(data.join("log.db")).unwrap();
    let stream_of = |position: u64| -> String {
        conn.query_row(
            "SELECT stream_id FROM events WHERE position = ?1",
            [position],
            |r| r.get(0),
        )
        .unwrap()
    };
    let stream = stream_of(9);
    let mine: Vec<u64> = [2, 9]
        .into_iter()
        .filter(|&p| stream_of(p) == stream)
        .collect();
    let one = verify_json(&["--data", s(&data), "--stream", &stream], 0);
    assert_eq!(one["verified"], "stream");
    assert_eq!(
        one["redacted"]["positions"],
        serde_json::json!(mine),
        "{one}"
    );

    // The same in an export, by both verifiers.
    let export = dir.path().join("export.ndjson");
    expect_code(
        &citydb(&["export", "--data", s(&data), "--out", s(&export)]),
        0,
    );
    let from_file = verify_json(&["--file", s(&export)], 0);
    assert_eq!(from_file["redacted"], report["redacted"]);
    if let Some((code, out)) = python("verify_export.py", &[s(&export)]) {
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains("redacted: 2 events, at positions 2, 9 "),
            "{out}"
        );
    }

    // Past the bound: the count stays exact, the list holds the lowest 1,000 and says so.
    let all = listed + 20;
    sql(
        &data,
        "log.db",
        &format!("UPDATE events SET data = NULL WHERE position < {all}"),
    );
    let report = verify_json(&["--data", s(&data)], 0);
    let positions = report["redacted"]["positions"].as_array().unwrap();
    assert_eq!(
        report["redacted"]["count"], all,
        "{}",
        report["redacted"]["count"]
    );
    assert_eq!(positions.len() as u64, listed);
    assert_eq!(positions.last().unwrap(), listed - 1);
    assert_eq!(report["redacted"]["all_listed"], false);
    let out = citydb(&["verify", "--data", s(&data)]);
    assert!(
        stdout(&out).contains(&format!("redacted: {all} events, at positions 0, 1, 2,")),
        "{}",
        text(&out)
    );
}

/// A request context of a service reading personal data (the access log's writer needs one).
fn context(case: &str) -> citydb_api::RequestContext {
    use citydb_api::{FieldGroup, Principal, Role};
    citydb_api::RequestContext {
        principal: Principal {
            id: "tax-office".to_owned(),
            role: Role::Service,
            field_groups: FieldGroup::ALL.into_iter().collect(),
            purposes: ["eligibility".to_owned()].into_iter().collect(),
            citizen: None,
            issues_citizen_tokens: false,
        }
        .into(),
        end_user: Some("officer-7".to_owned()),
        case: Some(case.to_owned()),
        purpose: Some("eligibility".to_owned()),
        correlation_id: uuid::Uuid::now_v7(),
    }
}

/// An access log of 3 v1 events (positions 0–2) and 4 v2 entries (3–6) in `data`, written
/// as an old node then a new one would: v1 first, v2 after a restart.
async fn access_log(data: &Path) {
    use citydb_api::{AccessLog, FieldGroup};
    use citydb_store::{Store, StoreConfig};
    let citizen = uuid::Uuid::now_v7();
    let open = || async {
        let opened = citydb_store::open(&Store::Embedded, data, &StoreConfig::default())
            .await
            .unwrap();
        AccessLog::new(opened.access)
    };
    let old = open().await;
    for case in ["HS-1", "HS-2", "HS-3"] {
        old.record_v1(
            &context(case),
            &[(citizen, vec![FieldGroup::Identity])],
            "ByPin",
        )
        .await
        .unwrap();
    }
    drop(old);
    let log = open().await;
    for case in ["HS-4", "HS-5", "HS-6", "HS-7"] {
        log.record(
            &context(case),
            &[(citizen, vec![FieldGroup::Land])],
            "Holders",
        )
        .await
        .unwrap();
    }
    assert_eq!(log.verify().await.unwrap().events, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_names_a_gap_by_the_position_found_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    for (name, statement, found) in [
        ("v1", "DELETE FROM events WHERE position = 1", 2),
        ("v2", "DELETE FROM access_entries WHERE seq = 4", 5),
    ] {
        let data = dir.path().join(name);
        access_log(&data).await;
        let args = ["--data", s(&data), "--access-log"];
        let intact = verify_json(&args, 0);
        assert_eq!(intact["verified"], "access_log");
        assert_eq!(intact["events"], 7);
        assert_eq!(sql(&data, "access-log.db", statement), 1);
        let report = verify_json(&args, 2);
        assert_eq!(report["breach"]["code"], "position_gap", "{name}: {report}");
        assert_eq!(report["breach"]["position"], found, "{name}: {report}");
        assert_eq!(report["breach"]["expected"], found - 1, "{name}: {report}");
        let file = data.join("access-log.db");
        if let Some((code, out)) = python("verify_access_log.py", &[s(&file)]) {
            assert_eq!(code, Some(2), "{out}");
            let said = format!(
                "BROKEN at position {found}: position_gap (expected {})",
                found - 1
            );
            assert!(out.contains(&said), "{name}: {out}");
        }
    }
    // A redacted v1 event: listed by both, the log intact.
    let data = dir.path().join("redacted");
    access_log(&data).await;
    sql(
        &data,
        "access-log.db",
        "UPDATE events SET data = NULL WHERE position = 1",
    );
    let report = verify_json(&["--data", s(&data), "--access-log"], 0);
    assert_eq!(
        report["redacted"]["positions"],
        serde_json::json!([1]),
        "{report}"
    );
    let file = data.join("access-log.db");
    if let Some((code, out)) = python("verify_access_log.py", &[s(&file)]) {
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("redacted: 1 events, at positions 1 "), "{out}");
    }
}

/// Output that says nothing of a panic or of the pipe's errno.
#[track_caller]
fn quiet(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["panicked", "Broken pipe", "os error 32"] {
        assert!(
            !err.contains(needle),
            "{needle:?} on stderr:\n{}",
            text(out)
        );
    }
}

/// `citydb ARGS | head -1`: citydb's standard output is a pipe its reader closes after the
/// first line. Returns citydb's own output (stderr) and status, and the line read.
fn into_head_1(args: &[&str]) -> (Output, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run citydb");
    let mut first = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    reader.read_line(&mut first).expect("read a line");
    drop(reader);
    let out = child.wait_with_output().expect("wait for citydb");
    (out, first)
}

#[test]
fn a_closed_pipe_ends_verify_quietly_with_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 10);
    let export = dir.path().join("export.ndjson");
    expect_code(
        &citydb(&["export", "--data", s(&data), "--out", s(&export)]),
        0,
    );
    let broken = rewritten(&export, "broken.ndjson", true, &[5]);
    for (file, code, first) in [
        (&export, 0, "intact: "),
        (&broken, 2, "BROKEN at position 6: "),
    ] {
        for format in ["text", "json"] {
            let args = [
                "verify",
                "--file",
                s(file),
                "--format",
                format,
                "--progress",
                "none",
            ];
            // A reader that goes away after one line…
            let (out, line) = into_head_1(&args);
            quiet(&out);
            expect_code(&out, code);
            if format == "text" {
                assert!(line.starts_with(first), "{line:?}");
            } else {
                let report: Value = serde_json::from_str(&line).unwrap();
                assert_eq!(report["exit_code"], code);
            }
            // …and one gone before citydb wrote anything, so that every write fails.
            let out = super::citydb_into_closed_pipe(&args);
            quiet(&out);
            expect_code(&out, code);
        }
    }
    // A shell pipeline, as an operator types it: the status is verify's.
    let script = format!(
        "set -o pipefail; '{BIN}' verify --file '{}' --progress none | head -1",
        s(&broken)
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    quiet(&out);
    expect_code(&out, 2);
    assert!(stdout(&out).starts_with("BROKEN at position 6: position_gap"));

    // An export to standard output cut short: exit 1 and one line saying so, no errno.
    let out = super::citydb_into_closed_pipe(&["export", "--data", s(&data)]);
    quiet(&out);
    expect_code(&out, 1);
    let (out, header) = into_head_1(&["export", "--data", s(&data)]);
    quiet(&out);
    expect_code(&out, 1);
    assert!(header.contains("\"hash_format\":1"), "{header}");
}

#[test]
fn a_mistyped_flag_is_an_error_not_a_broken_chain() {
    let out = citydb(&["verify", "--no-such-flag"]);
    expect_code(&out, 1);
    let out = citydb(&["verify", "--format", "json", "--summary", "text"]);
    expect_code(&out, 1);
    expect_code(&citydb(&["verify", "--help"]), 0);
}

/// Every breach code (and `undecodable`) has its row in docs/operations.md and its name in
/// docs/audit-format.md. The match below has no wildcard: a new breach does not compile here
/// until it is listed, and then it must be documented.
#[test]
fn every_breach_code_is_documented() {
    use citydb_log::Breach;
    let all = [
        Breach::PositionGap {
            expected: 0,
            found: 1,
        },
        Breach::DataChanged,
        Breach::HashMismatch,
        Breach::LogLinkBroken,
        Breach::StreamLinkBroken,
        Breach::StreamVersionGap {
            stream: String::new(),
            expected: 0,
            found: 1,
        },
        Breach::TimeWentBackwards,
        Breach::Truncated,
        Breach::HeadRewritten,
        Breach::DerivedTableMismatch {
            table: String::new(),
        },
    ];
    for breach in &all {
        match breach {
            Breach::PositionGap { .. }
            | Breach::DataChanged
            | Breach::HashMismatch
            | Breach::LogLinkBroken
            | Breach::StreamLinkBroken
            | Breach::StreamVersionGap { .. }
            | Breach::TimeWentBackwards
            | Breach::Truncated
            | Breach::HeadRewritten
            | Breach::DerivedTableMismatch { .. } => {}
        }
    }
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let operations = std::fs::read_to_string(docs.join("operations.md")).unwrap();
    let format = std::fs::read_to_string(docs.join("audit-format.md")).unwrap();
    let codes = all.iter().map(Breach::code).chain(["undecodable"]);
    for code in codes {
        assert!(
            operations.contains(&format!("| `{code}` |")),
            "{code} has no row in docs/operations.md"
        );
        if code != "undecodable" {
            assert!(
                format.contains(&format!("`{code}`")),
                "{code} is not in docs/audit-format.md"
            );
        }
    }
}
