//! The bytes of one v2 access-log entry and its chain hash (normative: docs/audit-format.md,
//! "Access log, format v2").
//!
//! An entry is one request (one GraphQL operation) that read personal data: who asked, for
//! whom, in which case and why, stored once, then every citizen it read with the field groups
//! read. Repeated strings (principals, officers, cases, purposes, operations, field-group sets)
//! and citizens are *interned*: the entry that first uses one defines it, in its own body, and
//! later entries refer to it by number. Definitions are inside the hashed bytes, so the chain
//! alone determines every number; the dictionary tables of a store are derived from it.

use uuid::Uuid;

/// First byte of every v2 body; a future body format gets the next value.
pub const BODY_FORMAT: u8 = 0x02;

/// blake3 key-derivation context of the v2 entry hash. Changes with the format.
pub const ENTRY_HASH_CONTEXT: &str = "citydb 2026-11 access log v2 entry hash";

/// Longest string a body may define, in bytes (a principal id, a case number, a purpose).
pub const MAX_STRING: usize = 1024;

/// One entry as encoded: the numbers refer to the log's string and citizen dictionaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// Microseconds since the Unix epoch, assigned by the writer; never decreases.
    pub recorded_at: i64,
    pub correlation_id: Uuid,
    /// Strings this entry defines, numbered on from the strings defined before it.
    pub new_strings: Vec<String>,
    /// Citizens this entry defines, numbered on from the citizens defined before it.
    pub new_citizens: Vec<Uuid>,
    pub principal: u32,
    pub role: u32,
    pub end_user: Option<u32>,
    pub case: Option<u32>,
    pub purpose: Option<u32>,
    pub operation: u32,
    /// (citizen number, field-group set string number), no citizen twice, at least one.
    pub reads: Vec<(u32, u32)>,
}

/// Why bytes are not a v2 body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a v2 access-log entry: {0}")]
pub struct Undecodable(pub String);

impl Body {
    /// Every string number the entry refers to (its fields, then each read's field groups).
    pub fn string_refs(&self) -> impl Iterator<Item = u32> + '_ {
        [
            Some(self.principal),
            Some(self.role),
            self.end_user,
            self.case,
            self.purpose,
            Some(self.operation),
        ]
        .into_iter()
        .flatten()
        .chain(self.reads.iter().map(|(_, g)| *g))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + 20 * self.new_citizens.len() + 4 * self.reads.len());
        out.push(BODY_FORMAT);
        out.extend_from_slice(&self.recorded_at.to_be_bytes());
        out.extend_from_slice(self.correlation_id.as_bytes());
        put_varint(&mut out, self.new_strings.len() as u64);
        for s in &self.new_strings {
            put_varint(&mut out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        put_varint(&mut out, self.new_citizens.len() as u64);
        for c in &self.new_citizens {
            out.extend_from_slice(c.as_bytes());
        }
        put_varint(&mut out, self.principal.into());
        put_varint(&mut out, self.role.into());
        for optional in [self.end_user, self.case, self.purpose] {
            put_varint(&mut out, optional.map_or(0, |n| u64::from(n) + 1));
        }
        put_varint(&mut out, self.operation.into());
        put_varint(&mut out, self.reads.len() as u64);
        for (citizen, groups) in &self.reads {
            put_varint(&mut out, (*citizen).into());
            put_varint(&mut out, (*groups).into());
        }
        out
    }

    /// Decodes a body. Checks the shape only; whether the numbers are defined is the
    /// verifier's business (it knows the dictionaries).
    pub fn decode(bytes: &[u8]) -> Result<Body, Undecodable> {
        let mut r = Reader { bytes, at: 0 };
        let format = r.take(1)?[0];
        if format != BODY_FORMAT {
            return Err(Undecodable(format!("unknown body format {format:#04x}")));
        }
        let recorded_at = i64::from_be_bytes(r.fixed::<8>()?);
        let correlation_id = Uuid::from_bytes(r.fixed::<16>()?);
        let n = r.count(1)?;
        let mut new_strings = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.varint()? as usize;
            if len > MAX_STRING {
                return Err(Undecodable(format!("a string of {len} bytes")));
            }
            let s = std::str::from_utf8(r.take(len)?)
                .map_err(|_| Undecodable("a string is not UTF-8".into()))?;
            new_strings.push(s.to_owned());
        }
        let n = r.count(16)?;
        let mut new_citizens = Vec::with_capacity(n);
        for _ in 0..n {
            new_citizens.push(Uuid::from_bytes(r.fixed::<16>()?));
        }
        let principal = r.number()?;
        let role = r.number()?;
        let end_user = r.optional()?;
        let case = r.optional()?;
        let purpose = r.optional()?;
        let operation = r.number()?;
        let n = r.count(2)?;
        if n == 0 {
            return Err(Undecodable("an entry without reads".into()));
        }
        let mut reads = Vec::with_capacity(n);
        for _ in 0..n {
            reads.push((r.number()?, r.number()?));
        }
        if r.at != bytes.len() {
            return Err(Undecodable(format!(
                "{} bytes after the end",
                bytes.len() - r.at
            )));
        }
        let mut seen: Vec<u32> = reads.iter().map(|(c, _)| *c).collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(Undecodable("a citizen read twice in one entry".into()));
        }
        Ok(Body {
            recorded_at,
            correlation_id,
            new_strings,
            new_citizens,
            principal,
            role,
            end_user,
            case,
            purpose,
            operation,
            reads,
        })
    }
}

/// The chain hash of the entry at `seq` with `body`, after the entry (or v1 event) whose hash
/// is `prev`.
pub fn entry_hash(seq: u64, prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(ENTRY_HASH_CONTEXT);
    h.update(&[BODY_FORMAT]);
    h.update(&seq.to_be_bytes());
    h.update(prev);
    h.update(&(body.len() as u32).to_be_bytes());
    h.update(body);
    *h.finalize().as_bytes()
}

/// The `recorded_at` of a stored body without decoding the rest (the writer's clock clamp).
pub fn recorded_at_of(body: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = body.get(1..9)?.try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

/// Unsigned LEB128: 7 bits a byte, least significant first, high bit set on all but the last.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], Undecodable> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| Undecodable(format!("truncated at byte {}", self.at)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Undecodable> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, Undecodable> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Undecodable("a varint longer than 10 bytes".into()))
    }

    fn number(&mut self) -> Result<u32, Undecodable> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| Undecodable(format!("number {v} out of range")))
    }

    fn optional(&mut self) -> Result<Option<u32>, Undecodable> {
        match self.number()? {
            0 => Ok(None),
            n => Ok(Some(n - 1)),
        }
    }

    /// A count of items of at least `min_size` bytes each, bounded by what is left, so that a
    /// corrupt count cannot make the decoder allocate without limit.
    fn count(&mut self, min_size: usize) -> Result<usize, Undecodable> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err(Undecodable(format!("a count of {n} past the end")));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Body {
        Body {
            recorded_at: 1_764_201_600_000_000,
            correlation_id: Uuid::from_u128(0x0193e3a4_7c1b_7d2e_8f00_0000000000c1),
            new_strings: vec!["tax-office".into(), "identity".into()],
            new_citizens: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
            principal: 0,
            role: 0,
            end_user: None,
            case: Some(300),
            purpose: None,
            operation: 1,
            reads: vec![(0, 1), (1, 1)],
        }
    }

    #[test]
    fn a_body_decodes_to_what_was_encoded() {
        let body = sample();
        let bytes = body.encode();
        assert_eq!(Body::decode(&bytes), Ok(body.clone()));
        assert_eq!(recorded_at_of(&bytes), Some(body.recorded_at));
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Body::decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Body::decode(&longer).is_err());
    }

    #[test]
    fn a_citizen_twice_and_an_empty_entry_are_refused() {
        let mut twice = sample();
        twice.reads = vec![(0, 1), (0, 1)];
        assert!(Body::decode(&twice.encode()).is_err());
        let mut empty = sample();
        empty.reads.clear();
        assert!(Body::decode(&empty.encode()).is_err());
    }

    #[test]
    fn varints_are_leb128() {
        for (v, bytes) in [
            (0u64, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            (u64::from(u32::MAX), vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes, "{v}");
        }
    }
}
