//! The GraphQL operations of the load and the check of every response.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::fixture::{Fixture, sample};

// --- the operations and their checks ------------------------------------------------------------

fn example(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql/examples");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        // The operation, not its recorded answer (`NN-*.expected.json`).
        .find(|p| {
            p.extension().is_some_and(|x| x == "graphql")
                && p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(name))
        })
        .unwrap_or_else(|| panic!("no example {name}* in {}", dir.display()));
    std::fs::read_to_string(path).unwrap()
}

const PARCEL_NO_PERSONAL: &str = r#"query ParcelWithHolders($key: String!) {
  parcel(key: $key) {
    id key commune { name } area landUse status
    holders {
      shareNumerator shareDenominator
      holder { __typename ... on Citizen { id } ... on Business { id code name } }
    }
    certificate { serial entryNumber issueDate issuer }
    mortgages { contractNumber amount creditor { name } }
  }
}"#;

const BUSINESS_NO_PERSONAL: &str = r#"query BusinessWithRepresentatives($code: String!) {
  business(code: $code) {
    id code name englishName status
    headOffice { commune { name } street }
    charterCapital businessLines
    legalRepresentatives { id }
    branches { code name }
  }
}"#;

/// A citizen search with the fields the checks read, and a cursor to resume from.
const CITIZEN_SEARCH: &str = r#"query SearchCitizens($search: String!, $first: Int, $after: String) {
  citizens(search: $search, first: $first, after: $after) {
    edges { cursor node { id name { full } birthDate } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

const BUSINESS_SEARCH: &str = r#"query SearchBusinesses($search: String!, $first: Int, $after: String) {
  businesses(search: $search, first: $first, after: $after) {
    edges { cursor node { id code name abbreviatedName englishName status } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

fn search_expect(field: &'static str, query: String, first: usize) -> Expect {
    Expect::Search {
        field,
        query,
        first,
        not: Vec::new(),
    }
}

pub enum Expect {
    Citizen {
        id: String,
        pin: String,
        full: String,
    },
    /// A page of a name search (`field`: `citizens` or `businesses`): every hit holds every
    /// word of `query` (the last one as a prefix), the hits whose folded name starts with
    /// `query` come before the others, and no id of `not` (the previous page) comes again.
    Search {
        field: &'static str,
        query: String,
        first: usize,
        not: Vec<String>,
    },
    Parcel {
        id: String,
        key: String,
        holders: Vec<(String, String)>,
        names: bool,
    },
    Business {
        id: String,
        code: String,
        reps: Vec<String>,
        names: bool,
    },
    /// The fixed bytes of the HTTP floor: a citizen, whichever.
    AnyCitizen,
}

/// Checks one response; on failure, a short category and a detail.
pub fn check(status: u16, body: &[u8], expect: &Expect) -> Result<(), (String, String)> {
    let fail = |cat: &str, detail: String| Err((cat.to_owned(), detail));
    if status != 200 {
        return fail(
            &format!("HTTP {status}"),
            String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        );
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return fail("not JSON", e.to_string()),
    };
    if let Some(errors) = v.get("errors") {
        let code = errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("NO_CODE");
        return fail(&format!("errors: {code}"), errors.to_string());
    }
    let d = &v["data"];
    match expect {
        Expect::Citizen { id, pin, full } => {
            let c = &d["citizen"];
            if c.is_null() {
                return fail("citizen: null", format!("pin {pin}"));
            }
            if c["pin"] != json!(pin) {
                return fail(
                    "citizen: other pin",
                    format!("asked {pin}, got {}", c["pin"]),
                );
            }
            if c["id"] != json!(format!("citizen-{id}")) {
                return fail("citizen: other id", format!("pin {pin}: {}", c["id"]));
            }
            if c["name"]["full"] != json!(full) {
                return fail(
                    "citizen: other name",
                    format!("pin {pin}: expected {full:?}, got {}", c["name"]["full"]),
                );
            }
        }
        Expect::Search {
            field,
            query,
            first,
            not,
        } => {
            let Some(edges) = d[*field]["edges"].as_array() else {
                return fail("search: no edges", v.to_string());
            };
            if edges.is_empty() {
                return fail("search: no match", query.clone());
            }
            if edges.len() > *first {
                return fail("search: page too long", format!("{}", edges.len()));
            }
            let tokens: Vec<&str> = query.split_whitespace().collect();
            let mut past_prefix = false;
            for e in edges {
                let node = &e["node"];
                let id = node["id"].as_str().unwrap_or_default();
                if not.iter().any(|n| n == id) {
                    return fail("search: hit of the previous page again", id.to_owned());
                }
                let folded = citydb_domain::folded_key(&searched_text(field, node));
                if !holds_words(&folded, &tokens) {
                    return fail(
                        "search: hit does not match",
                        format!("{folded:?} for {query:?}"),
                    );
                }
                // The documented order: the folded-name prefix range first, then the matches
                // of the words anywhere.
                let prefix = folded.starts_with(query.as_str());
                if prefix && past_prefix {
                    return fail(
                        "search: prefix hit after a hit of other words",
                        format!("{folded:?} for {query:?}"),
                    );
                }
                past_prefix |= !prefix;
            }
        }
        Expect::Parcel {
            id,
            key,
            holders,
            names,
        } => {
            let p = &d["parcel"];
            if p.is_null() {
                return fail("parcel: null", key.clone());
            }
            if p["key"] != json!(key) || p["id"] != json!(format!("parcel-{id}")) {
                return fail(
                    "parcel: other record",
                    format!("asked {key}, got {}", p["key"]),
                );
            }
            let mut got: Vec<(String, String)> = Vec::new();
            for h in p["holders"].as_array().into_iter().flatten() {
                let (n, dn) = (
                    h["shareNumerator"].as_str().unwrap_or("?"),
                    h["shareDenominator"].as_str().unwrap_or("?"),
                );
                let share = if dn == "1" {
                    n.to_owned()
                } else {
                    format!("{n}/{dn}")
                };
                let holder = &h["holder"];
                let hid = holder["id"].as_str().unwrap_or("?").to_owned();
                if *names {
                    let named = match holder["__typename"].as_str() {
                        Some("Citizen") => holder["name"]["full"].as_str().is_some(),
                        Some("Business") => holder["code"].as_str().is_some(),
                        _ => false,
                    };
                    if !named {
                        return fail("parcel: holder without name", holder.to_string());
                    }
                }
                got.push((hid, share));
            }
            let mut want = holders.clone();
            want.sort();
            got.sort();
            if got != want {
                return fail(
                    "parcel: other holders",
                    format!("{key}: expected {want:?}, got {got:?}"),
                );
            }
        }
        Expect::Business {
            id,
            code,
            reps,
            names,
        } => {
            let b = &d["business"];
            if b.is_null() {
                return fail("business: null", code.clone());
            }
            if b["code"] != json!(code) || b["id"] != json!(format!("business-{id}")) {
                return fail(
                    "business: other record",
                    format!("asked {code}, got {}", b["code"]),
                );
            }
            let mut got: Vec<String> = Vec::new();
            for r in b["legalRepresentatives"].as_array().into_iter().flatten() {
                if *names && r["name"]["full"].as_str().is_none() {
                    return fail("business: representative without name", r.to_string());
                }
                got.push(r["id"].as_str().unwrap_or("?").to_owned());
            }
            let mut want: Vec<String> = reps.iter().map(|r| format!("citizen-{r}")).collect();
            want.sort();
            got.sort();
            if got != want {
                return fail(
                    "business: other representatives",
                    format!("{code}: expected {want:?}, got {got:?}"),
                );
            }
        }
        Expect::AnyCitizen => {
            if d["citizen"]["pin"].as_str().is_none() {
                return fail("floor: no citizen", v.to_string());
            }
        }
    }
    Ok(())
}

/// The text a search hit was found by, as the projections index it: a citizen's full name;
/// a business's Vietnamese, abbreviated and English names, in that order.
fn searched_text(field: &str, node: &Value) -> String {
    let keys: &[&str] = if field == "citizens" {
        &[]
    } else {
        &["name", "abbreviatedName", "englishName"]
    };
    if keys.is_empty() {
        return node["name"]["full"].as_str().unwrap_or_default().to_owned();
    }
    keys.iter()
        .filter_map(|k| node[*k].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether every word of `tokens` is a word of `folded` (the last one may be a prefix of one).
fn holds_words(folded: &str, tokens: &[&str]) -> bool {
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let last = tokens.len().saturating_sub(1);
    tokens.iter().enumerate().all(|(i, t)| {
        let t = t.trim_matches(|c: char| !c.is_alphanumeric());
        words
            .iter()
            .any(|w| *w == t || (i == last && w.starts_with(t)))
    })
}

pub struct Op {
    pub label: String,
    pub role: &'static str,
    pub url: String,
    pub token: String,
    pub xroad: bool,
    /// Request bodies (leaked: they live for the whole run) and what each must answer.
    pub requests: Vec<(&'static [u8], Expect)>,
}

fn body(query: &str, variables: Value) -> &'static [u8] {
    let bytes = serde_json::to_vec(&json!({ "query": query, "variables": variables })).unwrap();
    Box::leak(bytes.into_boxed_slice())
}

/// Keys drawn per operation (the sample of the fixture's records each operation cycles over).
pub const KEYS: usize = 5_000;

/// The six operations of the load, each with its requests (keys sampled from `fx` with `seed`)
/// and the answer each must get: (a)–(d) as a service that reads names, (c′) and (d′) as a
/// steward asking for ids only.
pub fn operations(
    fx: &Fixture,
    seed: u64,
    url: &str,
    service: &str,
    steward: &str,
) -> Vec<Arc<Op>> {
    let q_citizen = example("01-");
    let q_search = example("02-");
    let q_parcel = example("03-");
    let q_business = example("04-");
    // (a) on the valid axis (issue 16): the same lookup folded from the log on a date after
    // every event, so the answer checks exactly as the current one does.
    let q_citizen_valid_at = q_citizen.replace(
        "citizen(pin: $pin)",
        r#"citizen(pin: $pin, asOf: { validAt: "2099-12-31" })"#,
    );
    assert_ne!(
        q_citizen_valid_at, q_citizen,
        "example 01 asks citizen(pin: $pin)"
    );
    let citizen_requests_on = |query: &str| -> Vec<(&'static [u8], Expect)> {
        sample(&fx.citizens, KEYS, seed)
            .into_iter()
            .map(|c| {
                (
                    body(query, json!({ "pin": c.pin })),
                    Expect::Citizen {
                        id: c.id.clone(),
                        pin: c.pin.clone(),
                        full: c.full.clone(),
                    },
                )
            })
            .collect()
    };
    let search_requests: Vec<(&'static [u8], Expect)> = sample(&fx.citizens, KEYS, seed + 1)
        .into_iter()
        .map(|c| {
            let folded = citydb_domain::folded_key(&c.family_middle);
            (
                body(&q_search, json!({ "search": folded, "first": 10 })),
                search_expect("citizens", folded, 10),
            )
        })
        .collect();
    // "family middle g": the family and middle names and the given name's first letter.
    let prefix_requests: Vec<(&'static [u8], Expect)> = sample(&fx.citizens, KEYS, seed + 4)
        .into_iter()
        .filter_map(|c| {
            let full = citydb_domain::folded_key(&c.full);
            let family_middle = citydb_domain::folded_key(&c.family_middle);
            let given = full.strip_prefix(family_middle.as_str())?.trim_start();
            let initial = given.chars().next()?;
            let query = format!("{family_middle} {initial}");
            (!family_middle.is_empty()).then(|| {
                (
                    body(CITIZEN_SEARCH, json!({ "search": query, "first": 20 })),
                    search_expect("citizens", query, 20),
                )
            })
        })
        .collect();
    // A given name alone: not the start of any name, so found by the words anywhere.
    let given_requests: Vec<(&'static [u8], Expect)> = sample(&fx.citizens, KEYS, seed + 5)
        .into_iter()
        .filter_map(|c| {
            let full = citydb_domain::folded_key(&c.full);
            let given = full.split_whitespace().last()?.to_owned();
            Some((
                body(CITIZEN_SEARCH, json!({ "search": given, "first": 20 })),
                search_expect("citizens", given, 20),
            ))
        })
        .collect();
    // A business's first three words and the first two letters of its fourth.
    let business_search_requests: Vec<(&'static [u8], Expect)> =
        sample(&fx.businesses, KEYS, seed + 6)
            .into_iter()
            .filter_map(|b| {
                let folded = citydb_domain::folded_key(&b.name);
                let words: Vec<&str> = folded.split_whitespace().take(4).collect();
                if words.len() < 4 || words.iter().any(|w| !w.chars().all(char::is_alphanumeric)) {
                    return None;
                }
                let fourth: String = words[3].chars().take(2).collect();
                let query = format!("{} {fourth}", words[..3].join(" "));
                Some((
                    body(BUSINESS_SEARCH, json!({ "search": query, "first": 20 })),
                    search_expect("businesses", query, 20),
                ))
            })
            .collect();
    let parcel_requests = |query: &str, names: bool| -> Vec<(&'static [u8], Expect)> {
        sample(&fx.parcels, KEYS, seed + 2)
            .into_iter()
            .map(|p| {
                (
                    body(query, json!({ "key": p.key })),
                    Expect::Parcel {
                        id: p.id.clone(),
                        key: p.key.clone(),
                        holders: p.holders.clone(),
                        names,
                    },
                )
            })
            .collect()
    };
    let business_requests = |query: &str, names: bool| -> Vec<(&'static [u8], Expect)> {
        sample(&fx.businesses, KEYS, seed + 3)
            .into_iter()
            .map(|b| {
                (
                    body(query, json!({ "code": b.code })),
                    Expect::Business {
                        id: b.id.clone(),
                        code: b.code.clone(),
                        reps: b.reps.clone(),
                        names,
                    },
                )
            })
            .collect()
    };
    let op = |label: &str, role: &'static str, requests: Vec<(&'static [u8], Expect)>| {
        Arc::new(Op {
            label: label.to_owned(),
            role,
            url: url.to_owned(),
            token: if role == "service" {
                service.to_owned()
            } else {
                steward.to_owned()
            },
            xroad: role == "service",
            requests,
        })
    };
    let ops = vec![
        op(
            "(a) citizen by PIN",
            "service",
            citizen_requests_on(&q_citizen),
        ),
        op(
            "(a-v) citizen by PIN, asOf validAt",
            "service",
            citizen_requests_on(&q_citizen_valid_at),
        ),
        op("(b) name search, first 10", "service", search_requests),
        op(
            "(b1) name search family middle g-prefix, first 20",
            "service",
            prefix_requests,
        ),
        op(
            "(b3) name search, a given name alone, first 20",
            "service",
            given_requests,
        ),
        op(
            "(b4) business search by name prefix, first 20",
            "service",
            business_search_requests,
        ),
        op(
            "(c) parcel with holders (names)",
            "service",
            parcel_requests(&q_parcel, true),
        ),
        op(
            "(d) business with representatives (names)",
            "service",
            business_requests(&q_business, true),
        ),
        op(
            "(c′) parcel with holders (ids only)",
            "steward",
            parcel_requests(PARCEL_NO_PERSONAL, false),
        ),
        op(
            "(d′) business with representatives (ids only)",
            "steward",
            business_requests(BUSINESS_NO_PERSONAL, false),
        ),
    ];
    ops
}

/// Most first pages fetched (one at a time, before the load) for the next-page operation.
const NEXT_PAGE_KEYS: usize = 1_000;

/// (b2): the second page of the "family middle g" searches of `first_pages`, each after the
/// cursor its first page ended with. Each first page is fetched once, one at a time, before
/// the load; queries whose first page is their last are left out. A second page must not
/// repeat a hit of the first.
pub async fn next_pages(client: &reqwest::Client, first_pages: &Op) -> Arc<Op> {
    let mut requests = Vec::new();
    for (body_bytes, expect) in first_pages.requests.iter().take(NEXT_PAGE_KEYS) {
        let Expect::Search {
            field,
            query,
            first,
            ..
        } = expect
        else {
            continue;
        };
        let resp = client
            .post(&first_pages.url)
            .header("content-type", "application/json")
            .bearer_auth(&first_pages.token)
            .header("X-Road-UserId", crate::XROAD_USER)
            .header("X-Road-Issue", crate::XROAD_ISSUE)
            .header("X-Purpose", crate::XROAD_PURPOSE)
            .body(*body_bytes)
            .send()
            .await
            .unwrap();
        let page: Value = resp.json().await.unwrap();
        let conn = &page["data"][*field];
        let (Some(true), Some(cursor)) = (
            conn["pageInfo"]["hasNextPage"].as_bool(),
            conn["pageInfo"]["endCursor"].as_str(),
        ) else {
            continue;
        };
        let seen: Vec<String> = conn["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
            .collect();
        let mut request: Value = serde_json::from_slice(body_bytes).unwrap();
        request["variables"]["after"] = json!(cursor);
        let bytes = serde_json::to_vec(&request).unwrap();
        requests.push((
            &*Box::leak(bytes.into_boxed_slice()),
            Expect::Search {
                field,
                query: query.clone(),
                first: *first,
                not: seen,
            },
        ));
    }
    assert!(
        !requests.is_empty(),
        "no first page of {} has a next page",
        first_pages.label
    );
    Arc::new(Op {
        label: "(b2) name search family middle g-prefix, next page by cursor".into(),
        role: first_pages.role,
        url: first_pages.url.clone(),
        token: first_pages.token.clone(),
        xroad: first_pages.xroad,
        requests,
    })
}
