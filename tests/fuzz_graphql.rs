//! Structure-aware fuzzing of what the server parses from untrusted callers: GraphQL documents
//! (operations, fragments with spreads that may cycle, aliases, directives, arguments with
//! nested values and lists) and variables, generated from the grammar and then, for some
//! cases, corrupted byte by byte. Every answer must be JSON with a code from the closed set;
//! `INTERNAL` (a bug) never; the server keeps answering.
//!
//! CI runs a few hundred cases; a longer run: `PROPTEST_CASES=20000 cargo test --test
//! fuzz_graphql -- --nocapture`.

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use common::*;

const CODES: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "INVALID_INPUT",
    "UNKNOWN_CODE",
    "LIMIT_EXCEEDED",
    "RATE_LIMITED",
];

const FIELDS: &[&str] = &[
    "me",
    "id",
    "role",
    "citizen",
    "citizens",
    "business",
    "parcel",
    "changes",
    "logHead",
    "verifyLog",
    "history",
    "edges",
    "node",
    "name",
    "full",
    "__typename",
    "nope",
];
const ARGS: &[&str] = &[
    "pin",
    "id",
    "first",
    "after",
    "search",
    "eventTypes",
    "asOf",
    "x",
];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(FIELDS).prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        "[\\PC]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("$v".to_owned()),
        prop::sample::select(&["ALIVE", "ACTIVE", "x"][..]).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(80, 400, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((prop::sample::select(ARGS), inner), 0..4).prop_map(|kv| {
                let fields: Vec<String> =
                    kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

fn selection_set(fragments: usize) -> impl Strategy<Value = String> {
    let field = (
        prop::option::of("[a-z]{1,3}"),
        name(),
        prop::collection::vec((prop::sample::select(ARGS), value()), 0..3),
        prop::option::of(Just("@skip(if: false)")),
    )
        .prop_map(|(alias, name, args, directive)| {
            let mut f = String::new();
            if let Some(a) = alias {
                f.push_str(&format!("{a}: "));
            }
            f.push_str(&name);
            if !args.is_empty() {
                let args: Vec<String> =
                    args.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                f.push_str(&format!("({})", args.join(", ")));
            }
            if let Some(d) = directive {
                f.push(' ');
                f.push_str(d);
            }
            f
        });
    let spread = (0..fragments.max(1)).prop_map(|i| format!("...F{i}"));
    let leaf = prop_oneof![4 => field, 1 => spread];
    leaf.prop_recursive(40, 200, 5, |inner| {
        prop_oneof![
            (name(), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(n, items)| format!("{n} {{ {} }}", items.join(" "))),
            prop::collection::vec(inner, 1..4)
                .prop_map(|items| format!("... on Query {{ {} }}", items.join(" "))),
        ]
    })
    .prop_map(|s| format!("{{ {s} }}"))
}

fn document() -> impl Strategy<Value = String> {
    (1usize..5).prop_flat_map(|n_fragments| {
        (
            prop::collection::vec(
                (
                    prop::sample::select(&["query", "mutation", "subscription", ""][..]),
                    prop::option::of("[A-Z][a-z]{0,3}"),
                    selection_set(n_fragments),
                ),
                1..3,
            ),
            prop::collection::vec(selection_set(n_fragments), n_fragments),
        )
            .prop_map(|(ops, fragments)| {
                let mut doc = String::new();
                for (kind, op_name, set) in ops {
                    let head = match (kind, op_name) {
                        ("", _) => String::new(),
                        (k, Some(n)) => format!("{k} {n}($v: Int) "),
                        (k, None) => format!("{k} "),
                    };
                    doc.push_str(&format!("{head}{set}\n"));
                }
                for (i, set) in fragments.into_iter().enumerate() {
                    doc.push_str(&format!("fragment F{i} on Query {set}\n"));
                }
                doc
            })
    })
}

/// A document, sometimes corrupted: a byte range cut out, or junk inserted.
fn input() -> impl Strategy<Value = String> {
    (
        document(),
        prop::option::weighted(
            0.3,
            (
                any::<prop::sample::Index>(),
                "[{}\\[\\]()\"#$@!.:\\\\\\PC]{0,8}",
            ),
        ),
    )
        .prop_map(|(doc, corruption)| match corruption {
            None => doc,
            Some((at, junk)) => {
                let mut cut = at.index(doc.len() + 1);
                while !doc.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}{junk}{}", &doc[..cut], &doc[cut..])
            }
        })
}

fn variables() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        "[\\PC]{0,8}".prop_map(|s| json!(s)),
        Just(Value::Null),
    ];
    leaf.prop_recursive(80, 300, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .prop_map(|v| json!({ "v": v }))
}

fn check(body: &Value) -> Result<(), TestCaseError> {
    let Some(errors) = body.get("errors") else {
        prop_assert!(
            body.get("data").is_some(),
            "neither data nor errors: {body}"
        );
        return Ok(());
    };
    for e in errors.as_array().into_iter().flatten() {
        let code = e["extensions"]["code"].as_str().unwrap_or("NO_CODE");
        prop_assert!(CODES.contains(&code), "code {code}: {body}");
    }
    Ok(())
}

#[test]
fn generated_documents_always_get_a_typed_answer() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(start());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&(input(), variables()), |(query, vars)| {
        let body = rt.block_on(s.gql("auditor-1", &query, vars));
        check(&body)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let health = rt
        .block_on(s.http.get(format!("http://{}/healthz", s.addr)).send())
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
