//! Verification of the v2 chain and of the tables derived from it.
//!
//! The chain: entries in `seq` order, gapless from the anchor (the v1 log's next position),
//! each hash recomputed from the previous one and the stored body, every body decodable, time
//! never going backwards, every number defined before use and nothing defined twice.
//!
//! The derived tables (dictionaries and citizen index) are checked as multisets: the verifier
//! adds a 128-bit digest of every row the chain implies, the store adds the same digest of
//! every row it holds (one scan of each table, in any order), and the sums and counts must
//! match. Memory stays at one counter per citizen, whatever the log's length.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::format::{Body, entry_hash};
use crate::plan::Tip;
use crate::{AccessError, EntryStore, IndexRow};

/// Entries read per page while verifying.
const PAGE: usize = 4096;

/// blake3 key-derivation context of a derived row's digest.
const ROW_CONTEXT: &str = "citydb 2026-11 access log v2 derived row";

/// Count and wrapping sum of row digests: equal multisets give equal values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Multiset {
    pub count: u64,
    pub sum: u128,
}

impl Multiset {
    fn add(&mut self, row: &[u8]) {
        let digest = blake3::Hasher::new_derive_key(ROW_CONTEXT)
            .update(row)
            .finalize();
        let mut low = [0u8; 16];
        low.copy_from_slice(&digest.as_bytes()[..16]);
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(low));
    }
}

/// The three derived tables, each as a [`Multiset`] of its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DerivedDigest {
    pub strings: Multiset,
    pub citizens: Multiset,
    pub index: Multiset,
}

impl DerivedDigest {
    pub fn add_string(&mut self, number: u32, value: &str) {
        let mut row = vec![b's'];
        row.extend_from_slice(&number.to_be_bytes());
        row.extend_from_slice(value.as_bytes());
        self.strings.add(&row);
    }

    pub fn add_citizen(&mut self, number: u32, citizen: Uuid) {
        self.add_citizen_bytes(number, citizen.as_bytes());
    }

    /// A stored row as its bytes are: an id of the wrong length (damage) is a row no entry
    /// derives, so the sums differ, as for any other changed row.
    pub fn add_citizen_bytes(&mut self, number: u32, citizen: &[u8]) {
        let mut row = vec![b'c'];
        row.extend_from_slice(&number.to_be_bytes());
        row.extend_from_slice(citizen);
        self.citizens.add(&row);
    }

    pub fn add_index(&mut self, r: IndexRow) {
        let mut row = vec![b'i'];
        row.extend_from_slice(&r.citizen.to_be_bytes());
        row.extend_from_slice(&r.ordinal.to_be_bytes());
        row.extend_from_slice(&r.seq.to_be_bytes());
        self.index.add(&row);
    }
}

/// Why the v2 part of the access log does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum V2Breach {
    #[error("expected entry {expected}, found {found} (an entry is missing or was inserted)")]
    PositionGap { expected: u64, found: u64 },
    #[error("the entry hash does not match its body and predecessor (the entry was changed)")]
    HashMismatch,
    #[error("the entry does not decode: {0}")]
    Undecodable(String),
    #[error("the timestamp goes backwards")]
    TimeWentBackwards,
    #[error("the entry refers to {0}, which no earlier entry defines")]
    Undefined(String),
    #[error("the entry defines {0} again")]
    Redefined(String),
    #[error("table {0} does not match the chain (it is derived: rebuild it from the entries)")]
    DerivedMismatch(&'static str),
}

/// What a verification of the v2 entries found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V2Report {
    /// Entries checked before stopping.
    pub entries: u64,
    /// Citizen reads in those entries.
    pub reads: u64,
    /// Distinct citizens read.
    pub citizens: u64,
    /// The last verified entry: (seq, hash).
    pub head: Option<(u64, [u8; 32])>,
    /// The first failure: (seq, why).
    pub breach: Option<(u64, V2Breach)>,
}

/// Verifies the v2 entries of `store`, which must continue the chain at `anchor` (the tip of
/// the v1 log: its next position, last hash and time), then the derived tables.
pub async fn verify_entries(store: &dyn EntryStore, anchor: Tip) -> Result<V2Report, AccessError> {
    let mut report = V2Report::default();
    let Some(first) = store.first_seq().await? else {
        let stored = store.derived_digest().await?;
        if stored != DerivedDigest::default() {
            report.breach = Some((
                anchor.next_seq,
                mismatch(&stored, &DerivedDigest::default()),
            ));
        }
        return Ok(report);
    };
    let mut state = Chain {
        next: anchor.next_seq,
        prev: anchor.prev_hash,
        time: anchor.recorded_at,
        strings: HashSet::new(),
        citizens: HashSet::new(),
        ordinals: HashMap::new(),
        expected: DerivedDigest::default(),
    };
    if first != anchor.next_seq {
        report.breach = Some((
            first,
            V2Breach::PositionGap {
                expected: anchor.next_seq,
                found: first,
            },
        ));
        return Ok(report);
    }
    let mut from = first;
    loop {
        let page = store.entries(from, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        for entry in &page {
            if let Err(breach) = state.check(entry.seq, &entry.body, &entry.hash, &mut report) {
                report.breach = Some((entry.seq, breach));
                return Ok(report);
            }
            report.entries += 1;
            report.head = Some((entry.seq, entry.hash));
        }
        if page.len() < PAGE {
            break;
        }
    }
    report.citizens = state.citizens.len() as u64;
    let stored = store.derived_digest().await?;
    if stored != state.expected {
        let at = report.head.map_or(anchor.next_seq, |(seq, _)| seq);
        report.breach = Some((at, mismatch(&stored, &state.expected)));
    }
    Ok(report)
}

fn mismatch(stored: &DerivedDigest, expected: &DerivedDigest) -> V2Breach {
    V2Breach::DerivedMismatch(if stored.strings != expected.strings {
        "access_strings"
    } else if stored.citizens != expected.citizens {
        "access_citizens"
    } else {
        "access_by_citizen"
    })
}

/// What the verifier carries from one entry to the next.
struct Chain {
    next: u64,
    prev: [u8; 32],
    time: i64,
    /// Digests of the strings defined so far (16 bytes each, not the strings).
    strings: HashSet<[u8; 16]>,
    citizens: HashSet<Uuid>,
    /// Citizen number → reads so far (the next ordinal).
    ordinals: HashMap<u32, u32>,
    expected: DerivedDigest,
}

impl Chain {
    fn check(
        &mut self,
        seq: u64,
        bytes: &[u8],
        hash: &[u8; 32],
        report: &mut V2Report,
    ) -> Result<(), V2Breach> {
        if seq != self.next {
            return Err(V2Breach::PositionGap {
                expected: self.next,
                found: seq,
            });
        }
        if &entry_hash(seq, &self.prev, bytes) != hash {
            return Err(V2Breach::HashMismatch);
        }
        let body = Body::decode(bytes).map_err(|e| V2Breach::Undecodable(e.0))?;
        if body.recorded_at < self.time {
            return Err(V2Breach::TimeWentBackwards);
        }
        for s in &body.new_strings {
            let mut key = [0u8; 16];
            key.copy_from_slice(&blake3::hash(s.as_bytes()).as_bytes()[..16]);
            if !self.strings.insert(key) {
                return Err(V2Breach::Redefined(format!("string {s:?}")));
            }
            self.expected.add_string(self.strings.len() as u32 - 1, s);
        }
        for c in &body.new_citizens {
            if !self.citizens.insert(*c) {
                return Err(V2Breach::Redefined(format!("citizen {c}")));
            }
            self.expected
                .add_citizen(self.citizens.len() as u32 - 1, *c);
        }
        let strings = self.strings.len() as u64;
        let citizens = self.citizens.len() as u64;
        for n in body.string_refs() {
            if u64::from(n) >= strings {
                return Err(V2Breach::Undefined(format!("string {n}")));
            }
        }
        for (citizen, _) in &body.reads {
            if u64::from(*citizen) >= citizens {
                return Err(V2Breach::Undefined(format!("citizen {citizen}")));
            }
            let ordinal = self.ordinals.entry(*citizen).or_insert(0);
            self.expected.add_index(IndexRow {
                citizen: *citizen,
                ordinal: *ordinal,
                seq,
            });
            *ordinal += 1;
            report.reads += 1;
        }
        self.next = seq + 1;
        self.prev = *hash;
        self.time = body.recorded_at;
        Ok(())
    }
}
