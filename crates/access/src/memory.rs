//! v2 entries in memory, for tests. Starts its chain at genesis (it has no v1 log beside it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use uuid::Uuid;

use crate::format::Body;
use crate::plan::{Dictionary, Tip, plan};
use crate::verify::DerivedDigest;
use crate::{AccessError, CitizenRead, Committed, Draft, EntryStore, StoredEntry, resolve};

#[derive(Default)]
struct Tables {
    entries: Vec<StoredEntry>,
    strings: Vec<String>,
    string_numbers: HashMap<String, u32>,
    citizens: HashMap<Uuid, u32>,
    by_citizen: BTreeMap<(u32, u32), u64>,
}

/// The tables of a store, in memory.
#[derive(Default)]
pub struct MemoryEntries {
    tables: Mutex<Tables>,
}

impl MemoryEntries {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Dictionary for Tables {
    fn string(&mut self, value: &str) -> Result<Option<u32>, AccessError> {
        Ok(self.string_numbers.get(value).copied())
    }
    fn citizen(&mut self, citizen: Uuid) -> Result<Option<u32>, AccessError> {
        Ok(self.citizens.get(&citizen).copied())
    }
    fn last_ordinal(&mut self, citizen: u32) -> Result<Option<u32>, AccessError> {
        Ok(self
            .by_citizen
            .range((citizen, 0)..=(citizen, u32::MAX))
            .next_back()
            .map(|((_, o), _)| *o))
    }
    fn defined(&mut self) -> Result<(u32, u32), AccessError> {
        Ok((self.strings.len() as u32, self.citizens.len() as u32))
    }
}

#[async_trait::async_trait]
impl EntryStore for MemoryEntries {
    async fn append(&self, draft: Draft) -> Result<Committed, AccessError> {
        draft.check()?;
        let mut t = self.lock();
        let tip = match t.entries.last() {
            Some(last) => Tip::after(last)?,
            None => Tip::GENESIS,
        };
        let p = plan(tip, &mut *t, &[&draft], crate::now_micros())?;
        for (n, s) in p.strings {
            debug_assert_eq!(n as usize, t.strings.len());
            t.string_numbers.insert(s.clone(), n);
            t.strings.push(s);
        }
        for (n, c) in p.citizens {
            t.citizens.insert(c, n);
        }
        for r in p.index {
            t.by_citizen.insert((r.citizen, r.ordinal), r.seq);
        }
        t.entries.extend(p.entries);
        p.committed
            .first()
            .copied()
            .ok_or_else(|| AccessError::Corrupt("nothing planned".into()))
    }

    async fn for_citizen(
        &self,
        citizen: Uuid,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<CitizenRead>, AccessError> {
        let t = self.lock();
        let Some(&number) = t.citizens.get(&citizen) else {
            return Ok(Vec::new());
        };
        let below = before.map_or(u32::MAX as u64 + 1, |b| b.min(u32::MAX as u64 + 1));
        let start = t.entries.first().map_or(0, |e| e.seq);
        let mut out = Vec::new();
        for ((_, ordinal), seq) in t
            .by_citizen
            .range((number, 0)..=(number, u32::MAX))
            .rev()
            .filter(|((_, o), _)| u64::from(*o) < below)
            .take(first)
        {
            let entry = t
                .entries
                .get((seq - start) as usize)
                .ok_or_else(|| AccessError::Corrupt(format!("no entry {seq}")))?;
            let body = Body::decode(&entry.body).map_err(|e| AccessError::Corrupt(e.0))?;
            out.push(resolve(&body, entry, number, *ordinal, &mut |n| {
                t.strings
                    .get(n as usize)
                    .cloned()
                    .ok_or_else(|| AccessError::Corrupt(format!("no string {n}")))
            })?);
        }
        Ok(out)
    }

    async fn entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, AccessError> {
        let t = self.lock();
        Ok(t.entries
            .iter()
            .filter(|e| e.seq >= from)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn first_seq(&self) -> Result<Option<u64>, AccessError> {
        Ok(self.lock().entries.first().map(|e| e.seq))
    }

    async fn last_seq(&self) -> Result<Option<u64>, AccessError> {
        Ok(self.lock().entries.last().map(|e| e.seq))
    }

    async fn derived_digest(&self) -> Result<DerivedDigest, AccessError> {
        let t = self.lock();
        let mut d = DerivedDigest::default();
        for (n, s) in t.strings.iter().enumerate() {
            d.add_string(n as u32, s);
        }
        for (c, n) in &t.citizens {
            d.add_citizen(*n, *c);
        }
        for ((citizen, ordinal), seq) in &t.by_citizen {
            d.add_index(crate::IndexRow {
                citizen: *citizen,
                ordinal: *ordinal,
                seq: *seq,
            });
        }
        Ok(d)
    }
}
