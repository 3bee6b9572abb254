//! What the fixture holds: the keys of citizens, parcels and businesses whose answers the
//! bench can predict, and a deterministic sample of them.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

// --- what the fixture holds ---------------------------------------------------------------------

pub struct CitizenKey {
    pub id: String,
    pub pin: String,
    pub full: String,
    pub family_middle: String,
}

pub struct ParcelKey {
    pub id: String,
    pub key: String,
    /// (holder record id, share as "n" or "n/d").
    pub holders: Vec<(String, String)>,
}

pub struct BusinessKey {
    pub id: String,
    pub code: String,
    pub reps: Vec<String>,
    /// The Vietnamese name as registered (the name searches start from).
    pub name: String,
}

#[derive(Default)]
pub struct Fixture {
    pub lines: u64,
    pub citizens: Vec<CitizenKey>,
    pub parcels: Vec<ParcelKey>,
    pub businesses: Vec<BusinessKey>,
    /// Records whose key, name or holders a later command changed in ways this bench does not
    /// model (corrections, renames, merges, splits, retirements): not used as expected answers.
    pub excluded: usize,
}

fn collect_uuids(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            // "<uuid>" or "citizen-<uuid>": keep the uuid (the last 36 bytes).
            if let Some(u) = s.len().checked_sub(36).and_then(|i| s.get(i..))
                && u.as_bytes()[8] == b'-'
                && u.as_bytes()[13] == b'-'
            {
                out.insert(u.to_owned());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_uuids(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_uuids(x, out)),
        _ => {}
    }
}

pub fn read_fixture(path: &Path) -> Fixture {
    let file = std::fs::File::open(path).unwrap();
    let mut fx = Fixture::default();
    let mut citizens: Vec<CitizenKey> = Vec::new();
    let mut parcels: HashMap<String, ParcelKey> = HashMap::new();
    let mut parcel_order: Vec<String> = Vec::new();
    let mut businesses: HashMap<String, BusinessKey> = HashMap::new();
    let mut business_order: Vec<String> = Vec::new();
    let mut excluded: HashSet<String> = HashSet::new();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    for line in BufReader::new(file).lines() {
        let line = line.unwrap();
        if line.trim().is_empty() {
            continue;
        }
        fx.lines += 1;
        let v: Value = serde_json::from_str(&line).expect("fixture line is JSON");
        let c = &v["command"];
        match c["type"].as_str().unwrap_or_default() {
            "RegisterCitizen" => {
                let n = &c["name"];
                let parts: Vec<String> = ["family", "middle", "given"]
                    .iter()
                    .map(|k| s(&n[*k]))
                    .filter(|p| !p.is_empty())
                    .collect();
                let family_middle = [s(&n["family"]), s(&n["middle"])]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                citizens.push(CitizenKey {
                    id: s(&c["citizen"]),
                    pin: s(&c["pin"]),
                    full: parts.join(" "),
                    family_middle,
                });
            }
            "RegisterParcel" => {
                let id = s(&c["parcel"]);
                let holders = holdings(&c["holders"]);
                parcel_order.push(id.clone());
                parcels.insert(
                    id.clone(),
                    ParcelKey {
                        id,
                        key: s(&c["key"]),
                        holders,
                    },
                );
            }
            "TransferRights" => {
                if let Some(p) = parcels.get_mut(c["parcel"].as_str().unwrap_or_default()) {
                    p.holders = holdings(&c["holders"]);
                }
            }
            "RegisterBusiness" => {
                let id = s(&c["business"]);
                business_order.push(id.clone());
                businesses.insert(
                    id.clone(),
                    BusinessKey {
                        id,
                        code: s(&c["code"]),
                        reps: strings(&c["legal_representatives"]),
                        name: s(&c["names"]["vietnamese"]),
                    },
                );
            }
            "ChangeLegalRepresentatives" => {
                if let Some(b) = businesses.get_mut(c["business"].as_str().unwrap_or_default()) {
                    b.reps = strings(&c["legal_representatives"]);
                }
            }
            "ProposeCorrection" | "CorrectRecord" | "ApproveCorrection" | "RejectCorrection"
            | "ChangeCitizenName" | "MergeCitizens" | "SplitParcel" | "MergeParcels"
            | "RetireParcel" | "RenameBusiness" => collect_uuids(c, &mut excluded),
            _ => {}
        }
    }
    let before = citizens.len() + parcels.len() + businesses.len();
    fx.citizens = citizens
        .into_iter()
        .filter(|c| !excluded.contains(&c.id))
        .collect();
    fx.parcels = parcel_order
        .iter()
        .filter(|id| !excluded.contains(*id))
        .filter_map(|id| parcels.remove(id))
        .collect();
    fx.businesses = business_order
        .iter()
        .filter(|id| !excluded.contains(*id))
        .filter_map(|id| businesses.remove(id))
        .collect();
    fx.excluded = before - fx.citizens.len() - fx.parcels.len() - fx.businesses.len();
    fx
}

fn holdings(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    (
                        format!(
                            "{}-{}",
                            h["holder"]["kind"].as_str().unwrap_or_default(),
                            h["holder"]["id"].as_str().unwrap_or_default()
                        ),
                        h["share"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A deterministic sample of `n` items (splitmix64), in random order.
pub fn sample<T>(items: &[T], n: usize, seed: u64) -> Vec<&T> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..idx.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx.into_iter().take(n).map(|i| &items[i]).collect()
}
