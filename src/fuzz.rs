//! Structure-aware fuzzing of the CLI's untrusted input, on stable Rust with proptest: NDJSON
//! import lines (`citydb import`) and export lines (`citydb verify --file`).
//!
//! The generators start from real lines — the demo fixture's command requests, a real export
//! in both flavours — and damage them the way broken or hostile input differs from them: a
//! value replaced by one of another type, odd or huge strings, extreme numbers, deep nesting
//! (thousands of levels), a dropped or unknown key, a line cut short, raw bytes and invalid
//! UTF-8 spliced in. Properties:
//! - nothing panics, and every call returns (a generous timeout is only a safety net);
//! - import: every non-blank line is counted once, as accepted, already imported or rejected;
//! - verify: a damaged export whose events are not a prefix of the original chain (up to
//!   redaction, which the chain allows) is never reported intact;
//! - memory: a line longer than the bound is refused without being held (`lines.rs`, and the
//!   over-long line tests below).
//!
//! 64 cases per property in a normal run; a longer run outside CI sets the case count, e.g.
//! `PROPTEST_CASES=20000 cargo test --release --bin citydb fuzz`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use citydb_log::EventLog;
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};

use crate::demo::DEMO_FIXTURE;
use crate::export::{ExportedEvent, Format, parse_line};
use crate::import::{ImportOptions, import_lines};
use crate::verify::{Outcome, verify_file};

/// Cases per property: `PROPTEST_CASES` when set, else 64.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// One way a line is damaged. Positions are taken modulo what the line has.
#[derive(Clone, Debug)]
enum Damage {
    /// Replace the value at the n-th JSON pointer.
    Set(usize, Value),
    /// Remove the value at the n-th pointer (a key from its object, an item from its list).
    Remove(usize),
    /// Add a key nobody expects to the n-th value if it is an object.
    Unknown(usize, String, Value),
    /// Replace the n-th value by lists (or objects) nested this deep.
    Deep(usize, usize, bool),
    /// Cut the line's text at this byte.
    Cut(usize),
    /// Splice raw bytes (any, invalid UTF-8 included) into the text at this byte.
    Splice(usize, Vec<u8>),
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[0-9a-f-]{0,40}".prop_map(Value::from),
        (0usize..300_000).prop_map(|n| Value::from("x".repeat(n))),
        prop::collection::vec(any::<i32>().prop_map(Value::from), 0..50).prop_map(Value::from),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), leaf()).prop_map(|(n, v)| Damage::Set(n, v)),
        2 => any::<usize>().prop_map(Damage::Remove),
        1 => (any::<usize>(), "[a-z_]{1,12}", leaf()).prop_map(|(n, k, v)| Damage::Unknown(n, k, v)),
        1 => (any::<usize>(), 1usize..20_000, any::<bool>()).prop_map(|(n, d, o)| Damage::Deep(n, d, o)),
        1 => any::<usize>().prop_map(Damage::Cut),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(n, b)| Damage::Splice(n, b)),
    ]
}

/// Every JSON pointer of `v`, the root first.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(child, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

const DEEP_MARK: &str = "\u{1}deep\u{1}";

/// `line` (one JSON object) with `damages` applied, as bytes.
fn damaged(line: &str, damages: &[Damage]) -> Vec<u8> {
    let mut value: Value = serde_json::from_str(line).expect("a well-formed seed line");
    let mut deep = None;
    let mut text_damage = Vec::new();
    for d in damages {
        let mut all = Vec::new();
        pointers(&value, "", &mut all);
        let at = |n: &usize| all[n % all.len()].clone();
        match d {
            Damage::Set(n, v) => {
                if let Some(slot) = value.pointer_mut(&at(n)) {
                    *slot = v.clone();
                }
            }
            Damage::Remove(n) => {
                let ptr = at(n);
                if let Some((parent, last)) = ptr.rsplit_once('/')
                    && let Some(parent) = value.pointer_mut(parent)
                {
                    let key = last.replace("~1", "/").replace("~0", "~");
                    match parent {
                        Value::Object(map) => {
                            map.remove(&key);
                        }
                        Value::Array(items) => {
                            if let Ok(i) = key.parse::<usize>()
                                && i < items.len()
                            {
                                items.remove(i);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Damage::Unknown(n, key, v) => {
                if let Some(Value::Object(map)) = value.pointer_mut(&at(n)) {
                    map.insert(key.clone(), v.clone());
                }
            }
            Damage::Deep(n, depth, objects) => {
                if deep.is_none()
                    && let Some(slot) = value.pointer_mut(&at(n))
                {
                    *slot = Value::from(DEEP_MARK);
                    deep = Some((*depth, *objects));
                }
            }
            other => text_damage.push(other.clone()),
        }
    }
    let mut text = serde_json::to_string(&value).expect("serialises");
    if let Some((depth, objects)) = deep {
        let (open, close) = if objects {
            ("{\"a\":", "}")
        } else {
            ("[", "]")
        };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        text = text.replacen(
            &serde_json::to_string(DEEP_MARK).expect("string"),
            &nested,
            1,
        );
    }
    let mut bytes = text.into_bytes();
    for d in text_damage {
        match d {
            Damage::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
            Damage::Splice(at, raw) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, raw);
            }
            _ => {}
        }
    }
    bytes
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn scratch_log(dir: &std::path::Path) -> Arc<dyn EventLog> {
    let config = SqliteConfig {
        durability: Durability::Normal,
        ..SqliteConfig::default()
    };
    Arc::new(SqliteLog::open(dir.join("log.db"), config).expect("open a scratch log"))
}

#[test]
fn import_accounts_for_every_damaged_line() {
    let seeds: Vec<&str> = DEMO_FIXTURE.lines().collect();
    let rt = runtime();
    let case = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(damage(), 0..4),
        ),
        1..6,
    );
    let mut runner = TestRunner::new(config());
    runner
        .run(&case, |lines| {
            let mut input = Vec::new();
            for (seed, damages) in &lines {
                let seed = seeds[seed.index(seeds.len())];
                input.extend(damaged(seed, damages));
                input.push(b'\n');
            }
            let non_blank = input
                .split(|&b| b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count() as u64;
            let dir = tempfile::tempdir().expect("tempdir");
            let summary = rt
                .block_on(async {
                    tokio::time::timeout(
                        Duration::from_secs(120),
                        import_lines(
                            scratch_log(dir.path()),
                            &input[..],
                            &ImportOptions { jobs: 4 },
                            &crate::progress::Progress::hidden(),
                        ),
                    )
                    .await
                })
                .expect("the import returned (safety net)")
                .expect("an import of bad lines rejects them; it does not fail");
            prop_assert_eq!(summary.lines, non_blank);
            prop_assert_eq!(
                summary.accepted + summary.already_imported + summary.rejected,
                summary.lines
            );
            for r in &summary.rejections {
                prop_assert!(!r.code.is_empty() && !r.message.is_empty(), "{:?}", r);
                // What a summary keeps per line is bounded, whatever the line held.
                prop_assert!(r.message.len() <= 600, "{} bytes kept", r.message.len());
            }
            Ok(())
        })
        .unwrap();
}

/// A real export of the demo fixture's first lines, in both flavours.
fn exports() -> &'static [(Format, Vec<String>); 2] {
    static EXPORTS: OnceLock<[(Format, Vec<String>); 2]> = OnceLock::new();
    EXPORTS.get_or_init(|| {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        rt.block_on(async {
            let log = scratch_log(dir.path());
            let head: String = DEMO_FIXTURE
                .lines()
                .take(12)
                .map(|l| format!("{l}\n"))
                .collect();
            import_lines(
                log.clone(),
                head.as_bytes(),
                &ImportOptions { jobs: 1 },
                &crate::progress::Progress::hidden(),
            )
            .await
            .expect("import");
            let mut out = Vec::new();
            for format in [Format::Ndjson, Format::Cloudevents] {
                let mut bytes = Vec::new();
                crate::export::export(
                    log.clone(),
                    &mut bytes,
                    format,
                    &indicatif::ProgressBar::hidden(),
                )
                .await
                .expect("export");
                let text = String::from_utf8(bytes).expect("UTF-8");
                out.push((format, text.lines().map(str::to_owned).collect()));
            }
            let [a, b]: [(Format, Vec<String>); 2] = out.try_into().expect("two flavours");
            [a, b]
        })
    })
}

/// The events as the chain sees them; a redacted copy (data `None`) equals the original.
fn same_up_to_redaction(original: &ExportedEvent, seen: &ExportedEvent) -> bool {
    let mut original = original.clone();
    if seen.data.is_none() {
        original.data = None;
    }
    &original == seen
}

#[test]
fn verify_file_never_calls_a_damaged_export_intact() {
    let case = (
        0usize..2,
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::collection::vec(damage(), 1..4),
            ),
            1..4,
        ),
    );
    let mut runner = TestRunner::new(config());
    runner
        .run(&case, |(flavour, damages)| {
            let (_, lines) = &exports()[flavour];
            let original: Vec<ExportedEvent> = lines
                .iter()
                .map(|l| parse_line(l.as_bytes()).expect("a real export parses"))
                .collect();
            let mut text: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
            for (which, d) in &damages {
                let i = which.index(text.len());
                let current = String::from_utf8(text[i].clone());
                // A line already cut or spliced is no JSON object any more: damage its bytes.
                text[i] = match current
                    .ok()
                    .filter(|t| serde_json::from_str::<Value>(t).is_ok())
                {
                    Some(t) => damaged(&t, d),
                    None => {
                        let mut bytes = text[i].clone();
                        bytes.truncate(bytes.len() / 2);
                        bytes
                    }
                };
            }
            let input: Vec<u8> = text.join(&b'\n');
            let outcome = verify_file(&input[..], None, &indicatif::ProgressBar::hidden())
                .expect("verify reads any bytes")
                .outcome;
            // What a reader of the damaged file would take for the log.
            let mut seen = Vec::new();
            let mut decodable = true;
            for line in input.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match parse_line(line) {
                    Ok(e) => seen.push(e),
                    Err(_) => decodable = false,
                }
            }
            let a_prefix = decodable
                && seen.len() <= original.len()
                && seen
                    .iter()
                    .zip(&original)
                    .all(|(s, o)| same_up_to_redaction(o, s));
            let intact = matches!(&outcome, Outcome::Report(r) if r.corruption.is_none());
            if !a_prefix {
                prop_assert!(!intact, "a damaged export was reported intact");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn over_long_lines_are_refused_without_holding_them() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = DEMO_FIXTURE.lines().next().expect("a demo line");
    let mut input = vec![b'{'; crate::import::MAX_LINE + 10];
    input.push(b'\n');
    input.extend_from_slice(good.as_bytes());
    input.push(b'\n');
    let summary = rt
        .block_on(import_lines(
            scratch_log(dir.path()),
            &input[..],
            &ImportOptions { jobs: 1 },
            &crate::progress::Progress::hidden(),
        ))
        .expect("import");
    assert_eq!(
        (summary.lines, summary.accepted, summary.rejected),
        (2, 1, 1)
    );
    assert_eq!(summary.rejections[0].line, 1);
    assert_eq!(summary.rejections[0].code, "INVALID_INPUT");

    let (_, lines) = &exports()[0];
    let mut export: Vec<u8> = lines.join("\n").into_bytes();
    export.push(b'\n');
    export.extend(vec![b' '; crate::verify::MAX_EXPORT_LINE]);
    export.extend_from_slice(b"x\n");
    let verified = verify_file(&export[..], None, &indicatif::ProgressBar::hidden());
    match verified.expect("verify").outcome {
        Outcome::Undecodable { at, reason } => {
            assert_eq!(at, crate::verify::Place::Line(lines.len() as u64 + 1));
            assert!(reason.contains("bytes long"), "{reason}");
        }
        Outcome::Report(r) => panic!("an over-long line passed: {r:?}"),
    }
}
