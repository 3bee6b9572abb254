//! The feed of residence starts by valid time (issue 16, item 4) through the GraphQL API of a
//! real node: "everyone whose residence in commune X began in month M, as known now" — backdated
//! moves, a correction fixing the past and one changing from a date, paged by cursor, refused
//! to callers without the Residence and Identity groups, and every citizen listed in the
//! access log.

mod common;

use serde_json::{Value, json};
use uuid::Uuid;

use common::*;

const X: &str = "11311";
const Y: &str = "10507";

const FEED: &str = r#"query($commune: String!, $month: String!, $kind: ResidenceKind, $first: Int, $after: String) {
  residenceStarts(commune: $commune, month: $month, kind: $kind, first: $first, after: $after) {
    edges { cursor node { citizen { id } kind commune { code } since } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

const CORRECT: &str = r#"mutation($i: CorrectRecordInput!, $from: Date) {
  correctRecord(input: $i, effectiveAt: $from) { position } }"#;

fn record(id: Uuid) -> String {
    format!("citizen-{id}")
}

/// Moves `id`'s permanent residence to `commune` from `since` (a backdated declaration).
async fn move_to(s: &Server, id: Uuid, commune: &str, since: &str) {
    s.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(id, commune, &format!("Số 1 ngõ {since}"), since) }),
    )
    .await;
}

fn lived(commune: &str, address_since: &str, since: &str) -> Value {
    json!({ "commune": commune, "address": format!("Số 1 ngõ {address_since}"), "since": since })
}

/// Corrects `id`'s permanent residence from `old` to `new`: fixing the past without `from`,
/// changing from `from` with it.
async fn correct(s: &Server, id: Uuid, old: Value, new: Value, from: Option<&str>) {
    s.ok(
        "steward-1",
        CORRECT,
        json!({ "i": {
            "record": record(id),
            "changes": [{ "field": "permanent_residence", "old": old, "new": new }],
            "reason": "sai nơi thường trú",
            "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2026-11-02" } },
            "from": from }),
    )
    .await;
}

/// Every page of the feed as `who`, `first` at a time: (citizen id, kind, commune, since) of
/// each row, and the number of pages.
async fn walk(
    s: &Server,
    who: &str,
    commune: &str,
    month: &str,
    first: i32,
) -> (Vec<Value>, usize) {
    let mut rows = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let data = s
            .ok(
                who,
                FEED,
                json!({ "commune": commune, "month": month, "first": first, "after": after }),
            )
            .await;
        pages += 1;
        let conn = &data["residenceStarts"];
        let edges = conn["edges"].as_array().unwrap();
        assert!(edges.len() <= first as usize);
        for e in edges {
            let n = &e["node"];
            rows.push(json!([
                n["citizen"]["id"],
                n["kind"],
                n["commune"]["code"],
                n["since"]
            ]));
        }
        if conn["pageInfo"]["hasNextPage"] != json!(true) {
            return (rows, pages);
        }
        after = conn["pageInfo"]["endCursor"].clone();
        assert_eq!(&after, &edges.last().unwrap()["cursor"]);
    }
}

fn start_row(id: Uuid, commune: &str, since: &str) -> Value {
    json!([record(id), "PERMANENT", commune, since])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_lists_residence_starts_as_known_now() {
    let s = start().await;
    let (a, _) = citizen(&s, 41, "Ngô", "Văn", "An", false, 1980).await;
    let (b, _) = citizen(&s, 42, "Ngô", "Thị", "Bích", true, 1982).await;
    let (c, _) = citizen(&s, 43, "Ngô", "Văn", "Cường", false, 1984).await;
    let (d, _) = citizen(&s, 44, "Ngô", "Thị", "Dung", true, 1986).await;
    let (e, _) = citizen(&s, 45, "Ngô", "Văn", "Em", false, 1988).await;

    // A moved in on 10 March and away in May: still in March's feed.
    move_to(&s, a, X, "2025-03-10").await;
    move_to(&s, a, Y, "2025-05-02").await;
    // B's move into X was recorded wrongly: it was into Y all along (a fix of the past).
    move_to(&s, b, X, "2025-03-05").await;
    correct(
        &s,
        b,
        lived(X, "2025-03-05", "2025-03-05"),
        lived(Y, "2025-03-05", "2025-03-05"),
        None,
    )
    .await;
    // C lived in Y from January, and in X from 20 March on (a change from a date).
    move_to(&s, c, Y, "2025-01-15").await;
    correct(
        &s,
        c,
        lived(Y, "2025-01-15", "2025-01-15"),
        lived(X, "2025-01-15", "2025-03-20"),
        Some("2025-03-20"),
    )
    .await;
    move_to(&s, d, X, "2025-03-01").await;
    move_to(&s, e, X, "2025-03-20").await;

    // By start date, then registration order (C before E on 20 March), two at a time.
    let (march, pages) = walk(&s, "social-insurance", X, "2025-03", 2).await;
    assert_eq!(
        march,
        [
            start_row(d, X, "2025-03-01"),
            start_row(a, X, "2025-03-10"),
            start_row(c, X, "2025-03-20"),
            start_row(e, X, "2025-03-20"),
        ]
    );
    assert_eq!(pages, 2);
    let (y_march, _) = walk(&s, "steward-1", Y, "2025-03", 10).await;
    assert_eq!(
        y_march,
        [start_row(b, Y, "2025-03-05")],
        "the fix of the past"
    );
    let (y_january, _) = walk(&s, "steward-1", Y, "2025-01", 10).await;
    assert_eq!(
        y_january,
        [start_row(c, Y, "2025-01-15")],
        "a change from a date keeps the old start"
    );
    let (y_may, _) = walk(&s, "steward-1", Y, "2025-05", 10).await;
    assert_eq!(y_may, [start_row(a, Y, "2025-05-02")]);
    let (april, _) = walk(&s, "steward-1", X, "2025-04", 10).await;
    assert_eq!(april, Vec::<Value>::new());
    let temporary = s
        .ok(
            "steward-1",
            FEED,
            json!({ "commune": X, "month": "2025-03", "kind": "TEMPORARY" }),
        )
        .await;
    assert_eq!(temporary["residenceStarts"]["edges"], json!([]));

    // Every citizen listed to the service is in the access log, with the Residence group;
    // B, not listed in X, is not.
    let log_of = |id: Uuid| {
        let s = &s;
        async move {
            s.ok(
                "auditor-1",
                "query($c: String!) { accessLog(citizen: $c) { principal fieldGroups operation } }",
                json!({ "c": record(id) }),
            )
            .await["accessLog"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["principal"] == "social-insurance")
                .cloned()
                .collect::<Vec<_>>()
        }
    };
    for id in [a, c, d, e] {
        let reads = log_of(id).await;
        assert!(
            reads.iter().any(|r| r["fieldGroups"]
                .as_array()
                .unwrap()
                .contains(&json!("residence"))),
            "{id}: {reads:?}"
        );
    }
    assert_eq!(log_of(b).await, Vec::<Value>::new());

    // E turns out to be D's duplicate: E's start stays under E's id, which names D.
    s.ok(
        "steward-1",
        "mutation($i: MergeCitizensInput!) { mergeCitizens(input: $i) { position } }",
        json!({ "i": { "survivor": d, "duplicate": e, "reason": "hai hồ sơ một người",
                       "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2026-11-02" } } }),
    )
    .await;
    let (after_merge, _) = walk(&s, "steward-1", X, "2025-03", 10).await;
    assert_eq!(after_merge, march, "a merge moves no start");
    let merged = s
        .ok(
            "steward-1",
            r#"{ residenceStarts(commune: "11311", month: "2025-03") {
                   nodes { since citizen { id mergedInto { id } } } } }"#,
            json!({}),
        )
        .await;
    let nodes = merged["residenceStarts"]["nodes"].as_array().unwrap();
    assert_eq!(
        nodes.last().unwrap()["citizen"],
        json!({ "id": record(e), "mergedInto": { "id": record(d) } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_selecting_no_personal_field_is_still_logged() {
    let s = start().await;
    let (a, _) = citizen(&s, 46, "Lý", "Văn", "Hải", false, 1990).await;
    move_to(&s, a, X, "2025-03-10").await;
    let data = s
        .ok(
            "social-insurance",
            r#"{ residenceStarts(commune: "11311", month: "2025-03") { edges { cursor } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["residenceStarts"]["edges"].as_array().unwrap().len(),
        1
    );
    let log = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal fieldGroups } }",
            json!({ "c": record(a) }),
        )
        .await;
    // The steward's own reads (the move's answer) are there too; the service's is the feed's.
    let by_service: Vec<&Value> = log["accessLog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["principal"] != "steward-1")
        .collect();
    assert_eq!(
        by_service,
        [&json!({ "principal": "social-insurance", "fieldGroups": ["residence"] })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_refuses_callers_without_both_groups_and_bad_input() {
    let s = start().await;
    let (a, _) = citizen(&s, 47, "Lý", "Thị", "Hoa", true, 1991).await;
    move_to(&s, a, X, "2025-03-10").await;
    let ask = |commune: &str, month: &str| json!({ "commune": commune, "month": month });

    // Without the Residence group (tax office), or with Identity only (the portal).
    for who in ["tax-office", "portal"] {
        let body = s.gql(who, FEED, ask(X, "2025-03")).await;
        assert_eq!(code(&body), "FORBIDDEN", "{who}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "residence",
            "{body}"
        );
        assert_eq!(body["data"], Value::Null, "{body}");
    }
    // The admin role runs the system; it does not list citizens.
    let body = s.gql("admin-1", FEED, ask(X, "2025-03")).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // A service must name the officer and the case.
    let (_, body) = s
        .gql_with(
            "social-insurance",
            FEED,
            ask(X, "2025-03"),
            &[("X-Purpose", "social-insurance")],
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // None of the refused reads is in the access log (only the steward's move is).
    let log = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal } }",
            json!({ "c": record(a) }),
        )
        .await;
    assert!(
        log["accessLog"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["principal"] == "steward-1"),
        "{log}"
    );

    // A commune in no list, a month that is not YYYY-MM, a cursor of another query, a page
    // larger than allowed.
    let body = s.gql("steward-1", FEED, ask("99999", "2025-03")).await;
    assert_eq!(code(&body), "UNKNOWN_CODE", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "commune");
    for month in ["2025-13", "2025-3", "March", "2025-03-01"] {
        let body = s.gql("steward-1", FEED, ask(X, month)).await;
        assert_eq!(code(&body), "INVALID_INPUT", "{month}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "month", "{body}");
    }
    let body = s
        .gql(
            "steward-1",
            FEED,
            json!({ "commune": X, "month": "2025-03", "after": "not-a-cursor" }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "after");
    let body = s
        .gql(
            "steward-1",
            FEED,
            json!({ "commune": X, "month": "2025-03", "first": 101 }),
        )
        .await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");
    let body = s
        .gql(
            "steward-1",
            FEED,
            json!({ "commune": X, "month": "2025-03", "first": -1 }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "first");
}
