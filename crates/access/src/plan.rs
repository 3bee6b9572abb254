//! What a group of appends writes: the entries with their chain hashes, the new dictionary
//! rows and the citizen-index rows. Shared by every store so that they encode and hash
//! identically; each store only answers the [`Dictionary`] questions inside its transaction and
//! inserts the [`Plan`].

use std::collections::HashMap;

use uuid::Uuid;

use crate::format::{Body, entry_hash, recorded_at_of};
use crate::{AccessError, Committed, Draft, IndexRow, StoredEntry};

/// Where the next entry chains on: the last entry of the log, or the last v1 event when there
/// is no v2 entry yet (the v2 chain continues the v1 chain), or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    pub next_seq: u64,
    pub prev_hash: [u8; 32],
    pub recorded_at: i64,
}

impl Tip {
    pub const GENESIS: Tip = Tip {
        next_seq: 0,
        prev_hash: [0; 32],
        recorded_at: i64::MIN,
    };

    /// After the stored entry `last`.
    pub fn after(last: &StoredEntry) -> Result<Tip, AccessError> {
        Ok(Tip {
            next_seq: last.seq + 1,
            prev_hash: last.hash,
            recorded_at: recorded_at_of(&last.body).ok_or_else(|| {
                AccessError::Corrupt(format!("entry {} has no timestamp", last.seq))
            })?,
        })
    }
}

/// The dictionaries as stored, asked inside the write transaction.
pub trait Dictionary {
    fn string(&mut self, value: &str) -> Result<Option<u32>, AccessError>;
    fn citizen(&mut self, citizen: Uuid) -> Result<Option<u32>, AccessError>;
    /// The citizen's last ordinal in the index.
    fn last_ordinal(&mut self, citizen: u32) -> Result<Option<u32>, AccessError>;
    /// How many strings and citizens are defined so far (the next numbers).
    fn defined(&mut self) -> Result<(u32, u32), AccessError>;
}

/// What one group writes.
#[derive(Debug, Default)]
pub struct Plan {
    pub entries: Vec<StoredEntry>,
    pub strings: Vec<(u32, String)>,
    pub citizens: Vec<(u32, Uuid)>,
    pub index: Vec<IndexRow>,
    /// One per draft, in order.
    pub committed: Vec<Committed>,
}

/// Plans `drafts` (each already [`Draft::check`]ed) after `tip`, at `now` (µs), clamped so that
/// time never goes backwards along the log.
pub fn plan(
    tip: Tip,
    dict: &mut dyn Dictionary,
    drafts: &[&Draft],
    now: i64,
) -> Result<Plan, AccessError> {
    let (mut next_string, mut next_citizen) = dict.defined()?;
    let mut new_strings: HashMap<String, u32> = HashMap::new();
    // Citizens and their numbers are the register's and the log's own, never a caller's
    // choice: foldhash. Strings come from request headers, so their map keeps std's
    // DoS-resistant hasher.
    let mut new_citizens: foldhash::HashMap<Uuid, u32> = foldhash::HashMap::default();
    let mut ordinals: foldhash::HashMap<u32, u32> = foldhash::HashMap::default();
    let recorded_at = now.max(tip.recorded_at);
    let mut prev = tip.prev_hash;
    let mut plan = Plan::default();
    for (i, draft) in drafts.iter().enumerate() {
        let seq = tip.next_seq + i as u64;
        let mut body = Body {
            recorded_at,
            correlation_id: draft.correlation_id,
            new_strings: Vec::new(),
            new_citizens: Vec::new(),
            principal: 0,
            role: 0,
            end_user: None,
            case: None,
            purpose: None,
            operation: 0,
            reads: Vec::with_capacity(draft.reads.len()),
        };
        let mut intern = |value: &str, body: &mut Body| -> Result<u32, AccessError> {
            if let Some(n) = new_strings.get(value) {
                return Ok(*n);
            }
            if let Some(n) = dict.string(value)? {
                return Ok(n);
            }
            let n = next_string;
            next_string += 1;
            new_strings.insert(value.to_owned(), n);
            body.new_strings.push(value.to_owned());
            plan.strings.push((n, value.to_owned()));
            Ok(n)
        };
        body.principal = intern(&draft.principal, &mut body)?;
        body.role = intern(&draft.role, &mut body)?;
        body.end_user = draft
            .end_user
            .as_deref()
            .map(|s| intern(s, &mut body))
            .transpose()?;
        body.case = draft
            .case
            .as_deref()
            .map(|s| intern(s, &mut body))
            .transpose()?;
        body.purpose = draft
            .purpose
            .as_deref()
            .map(|s| intern(s, &mut body))
            .transpose()?;
        body.operation = intern(&draft.operation, &mut body)?;
        let groups: Vec<u32> = draft
            .reads
            .iter()
            .map(|(_, groups)| intern(groups, &mut body))
            .collect::<Result<_, _>>()?;
        for ((citizen, _), groups) in draft.reads.iter().zip(groups) {
            let number = match new_citizens.get(citizen) {
                Some(n) => *n,
                None => match dict.citizen(*citizen)? {
                    Some(n) => n,
                    None => {
                        let n = next_citizen;
                        next_citizen += 1;
                        new_citizens.insert(*citizen, n);
                        body.new_citizens.push(*citizen);
                        plan.citizens.push((n, *citizen));
                        n
                    }
                },
            };
            let ordinal = match ordinals.get(&number) {
                Some(o) => *o,
                // A number this group defines has no reads in the file: no lookup (one saved
                // per citizen read for the first time, most of a name search page's).
                None if new_citizens.contains_key(citizen) => 0,
                None => dict.last_ordinal(number)?.map_or(0, |o| o + 1),
            };
            ordinals.insert(number, ordinal + 1);
            plan.index.push(IndexRow {
                citizen: number,
                ordinal,
                seq,
            });
            body.reads.push((number, groups));
        }
        let bytes = body.encode();
        let hash = entry_hash(seq, &prev, &bytes);
        prev = hash;
        plan.committed.push(Committed {
            seq,
            hash,
            recorded_at,
        });
        plan.entries.push(StoredEntry {
            seq,
            body: bytes,
            hash,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    //! The test vector of docs/audit-format.md ("Access log, format v2"): two requests planned
    //! by the writer's own code give exactly the documented bytes and hashes.

    use super::*;

    /// An empty log's dictionaries.
    struct Empty;

    impl Dictionary for Empty {
        fn string(&mut self, _: &str) -> Result<Option<u32>, AccessError> {
            Ok(None)
        }
        fn citizen(&mut self, _: Uuid) -> Result<Option<u32>, AccessError> {
            Ok(None)
        }
        fn last_ordinal(&mut self, _: u32) -> Result<Option<u32>, AccessError> {
            Ok(None)
        }
        fn defined(&mut self) -> Result<(u32, u32), AccessError> {
            Ok((0, 0))
        }
    }

    pub(crate) fn vector_drafts() -> [Draft; 2] {
        let citizen = |n: u128| Uuid::from_u128(0x0193e3a4_7c1b_7d2e_8f00_000000000000 + n);
        let request = |corr: u128, operation: &str, reads: Vec<(Uuid, &str)>| Draft {
            principal: "tax-office".into(),
            role: "service".into(),
            end_user: Some("officer-7".into()),
            case: Some("HS-2026-0042".into()),
            purpose: Some("tax-registration".into()),
            operation: operation.into(),
            correlation_id: citizen(corr),
            reads: reads.into_iter().map(|(c, g)| (c, g.to_owned())).collect(),
        };
        [
            request(0xc1, "ByPin", vec![(citizen(1), "identity")]),
            request(
                0xc2,
                "SearchCitizens",
                vec![(citizen(1), "identity,residence"), (citizen(2), "identity")],
            ),
        ]
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_documented_test_vector() {
        let drafts = vector_drafts();
        let refs: Vec<&Draft> = drafts.iter().collect();
        let p = plan(Tip::GENESIS, &mut Empty, &refs, 1_764_201_600_000_000).expect("planned");
        let got: Vec<(String, String)> = p
            .entries
            .iter()
            .map(|e| (hex(&e.body), hex(&e.hash)))
            .collect();
        assert_eq!(
            got,
            [
                (BODY_0.to_owned(), HASH_0.to_owned()),
                (BODY_1.to_owned(), HASH_1.to_owned()),
            ]
        );
        // The second request reuses every string but two and defines one citizen.
        assert_eq!(p.strings.len(), 9);
        assert_eq!(p.citizens.len(), 2);
        assert_eq!(
            p.index,
            [
                IndexRow {
                    citizen: 0,
                    ordinal: 0,
                    seq: 0
                },
                IndexRow {
                    citizen: 0,
                    ordinal: 1,
                    seq: 1
                },
                IndexRow {
                    citizen: 1,
                    ordinal: 0,
                    seq: 1
                },
            ]
        );
        // Chained on from the previous entry (or the v1 head): another anchor, other hashes.
        let after_v1 = Tip {
            next_seq: 3,
            prev_hash: [7; 32],
            recorded_at: 0,
        };
        let q = plan(after_v1, &mut Empty, &refs, 1_764_201_600_000_000).expect("planned");
        assert_eq!(q.entries[0].body, p.entries[0].body);
        assert_ne!(q.entries[0].hash, p.entries[0].hash);
        assert_eq!(q.entries[1].seq, 4);
    }

    /// A log holding citizen 1 (number 0, read 5 times): counts the ordinal lookups.
    struct OneKnown {
        ordinal_lookups: Vec<u32>,
    }

    impl Dictionary for OneKnown {
        fn string(&mut self, _: &str) -> Result<Option<u32>, AccessError> {
            Ok(None)
        }
        fn citizen(&mut self, citizen: Uuid) -> Result<Option<u32>, AccessError> {
            Ok((citizen.as_u128() & 0xff == 1).then_some(0))
        }
        fn last_ordinal(&mut self, citizen: u32) -> Result<Option<u32>, AccessError> {
            self.ordinal_lookups.push(citizen);
            Ok((citizen == 0).then_some(4))
        }
        fn defined(&mut self) -> Result<(u32, u32), AccessError> {
            Ok((0, 1))
        }
    }

    #[test]
    fn only_citizens_numbered_before_the_group_have_their_last_ordinal_looked_up() {
        let drafts = vector_drafts();
        let refs: Vec<&Draft> = drafts.iter().collect();
        let mut dict = OneKnown {
            ordinal_lookups: Vec::new(),
        };
        let p = plan(Tip::GENESIS, &mut dict, &refs, 1_764_201_600_000_000).expect("planned");
        // Citizen 1 is read twice (once a request): looked up once, then counted on; citizen 2
        // is new, numbered 1, and starts at 0 without a lookup.
        assert_eq!(dict.ordinal_lookups, [0]);
        assert_eq!(p.citizens, [(1, refs[1].reads[1].0)]);
        let rows: Vec<(u32, u32)> = p.index.iter().map(|r| (r.citizen, r.ordinal)).collect();
        assert_eq!(rows, [(0, 5), (0, 6), (1, 0)]);
    }

    // docs/audit-format.md, "Test vector" (v2); recomputed there from the spec alone.
    const BODY_0: &str = "020006448831ae20000193e3a47c1b7d2e8f000000000000c1070a7461782d6f66666963650773657276696365096f6666696365722d370c48532d323032362d30303432107461782d726567697374726174696f6e05427950696e086964656e74697479010193e3a47c1b7d2e8f00000000000001000103040505010006";
    const HASH_0: &str = "211f7f85bdb1384acf59dca7650721ebe65c2c461025f0314d18504059d97d72";
    const BODY_1: &str = "020006448831ae20000193e3a47c1b7d2e8f000000000000c2020e536561726368436974697a656e73126964656e746974792c7265736964656e6365010193e3a47c1b7d2e8f000000000000020001030405070200080106";
    const HASH_1: &str = "ea82c923634ecf920a45706edcf08509ea969f8a559609e8d4ade0c0ef75c436";
}
