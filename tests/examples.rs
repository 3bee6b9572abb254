//! `serve --demo` as a newcomer runs it, and every operation in `graphql/examples/` against
//! it, in order, as the role its header names, each answer compared with the answer recorded
//! next to it (`NN-name.expected.json`): a wrong answer fails, not only an error.
//!
//! Along the way: the port is open (and `/readyz` says why it is not ready) while the demo
//! data loads, readiness changes are logged once each, and a restart on the same data
//! directory keeps the demo tokens and the data.
//!
//! Values that differ on every run are masked before comparing: times (`recordedAt`), hashes
//! (they cover the time), and the command ids the server generates. Positions, versions,
//! counts and every record field are compared exactly; the demo import is one line at a time,
//! so they are the same on every start. After changing an example, `CITYDB_BLESS=1 cargo test
//! --test examples` rewrites the recorded answers; review the diff before committing it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use common::binary::Serving;

/// Keys whose values change from run to run.
const VOLATILE: &[&str] = &["recordedAt", "hash", "prevStreamHash", "commandId"];

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {name}:")))
        .map(str::trim)
}

/// `value` with every volatile field that is set replaced by a placeholder.
fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if VOLATILE.contains(&k.as_str()) && !v.is_null() {
                        json!("<varies>")
                    } else {
                        masked(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

fn tokens(data: &Path) -> BTreeMap<String, String> {
    serde_json::from_slice(&std::fs::read(data.join("demo-tokens.json")).expect("demo tokens"))
        .expect("demo tokens are JSON")
}

/// Lines of the server's log (JSON) from `target`.
fn logged(lines: &[String], target: &str) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == target)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_answers_as_recorded_against_serve_demo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--demo",
        "--data",
        data.to_str().unwrap(),
        "--log-format",
        "json",
    ];

    // First start: the port is open while the node opens and the demo data loads, and
    // /readyz says why it is not ready yet.
    let first = Serving::start(&args);
    let (status, body) = first.readyz().await;
    assert_eq!(status, 503, "ready before the demo data was loaded: {body}");
    let unready = first.wait_ready().await;
    for (_, body) in std::iter::once(&(status, body.clone())).chain(&unready) {
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(
            [
                "opening the data directory",
                "loading the demo data",
                "catching up"
            ]
            .iter()
            .any(|r| reason.contains(r)),
            "{body}"
        );
    }
    let tokens_then = tokens(&data);
    let head = |body: Value| body["data"]["logHead"]["position"].clone();
    let loaded = head(
        first
            .gql(
                &tokens_then["admin"],
                "{ logHead { position } }",
                json!({}),
                &[],
            )
            .await,
    );
    assert!(loaded.as_u64().is_some(), "{loaded}");
    let log = first.stop();
    // Many probes answered 503; readiness logged each change once, and no probe was a WARN.
    let readiness = logged(&log, "citydb::readiness");
    let seeding = readiness
        .iter()
        .filter(|v| {
            v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("demo data"))
        })
        .count();
    assert_eq!(seeding, 1, "{readiness:#?}");
    assert!(
        readiness.iter().any(|v| v["message"] == "ready"),
        "{readiness:#?}"
    );
    assert!(readiness.len() <= 4, "{readiness:#?}");
    let warned_probes = logged(&log, "citydb::http")
        .into_iter()
        .filter(|v| v["path"] == "/readyz" && v["level"] == "WARN")
        .count();
    assert_eq!(warned_probes, 0, "{log:#?}");

    // Second start on the same directory: same tokens, same data, nothing imported again.
    let server = Serving::start(&args);
    server.wait_ready().await;
    let tokens = tokens(&data);
    assert_eq!(tokens, tokens_then, "the demo tokens changed on restart");
    let me = server
        .gql(
            &tokens["admin"],
            "{ me { id } logHead { position } }",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(me["data"]["me"]["id"], "demo-admin", "{me}");
    assert_eq!(head(me), loaded, "the restart imported something again");

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql/examples");
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "graphql") {
            files.insert(
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            );
        }
    }
    assert!(files.len() >= 10, "examples went missing");
    let bless = std::env::var_os("CITYDB_BLESS").is_some();
    let mut roles = std::collections::BTreeSet::new();
    let mut mismatches = Vec::new();
    for (name, text) in &files {
        let role = header(text, "As")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("{name}: no `# As:` header"));
        roles.insert(role.to_owned());
        let variables: Value = serde_json::from_str(header(text, "Variables").unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("{name}: bad variables: {e}"));
        let xroad: &[(&str, &str)] = if role == "service" {
            &[
                ("X-Road-UserId", "officer-7"),
                ("X-Road-Issue", "HS-2026-0042"),
                ("X-Purpose", "demo"),
            ]
        } else {
            &[]
        };
        let token = tokens
            .get(role)
            .unwrap_or_else(|| panic!("{name}: no demo token for {role:?}"));
        let answer = masked(&server.gql(token, text, variables, xroad).await);
        assert!(answer.get("errors").is_none(), "{name} failed: {answer:#}");
        let expected_path = dir.join(format!("{name}.expected.json"));
        if bless {
            let text = serde_json::to_string_pretty(&answer).unwrap() + "\n";
            std::fs::write(&expected_path, text).unwrap();
            continue;
        }
        let expected: Value = serde_json::from_slice(
            &std::fs::read(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if answer != expected {
            mismatches.push(format!("{name}: expected\n{expected:#}\ngot\n{answer:#}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    assert_eq!(
        roles.len(),
        6,
        "every kind of user has an example: {roles:?}"
    );
}
