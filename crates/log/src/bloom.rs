//! A blocked Bloom filter over 128-bit digests: "may this key be in the set?" with no false
//! "no". Its users hash their own keys ([`crate::bulk::StreamFilter`]: stream ids with blake3;
//! the access log's writer: citizen ids with a seeded foldhash) and hand the digest's two
//! halves here.
//!
//! Blocked: a key's 7 bits lie in one block of 512 bits (a cache line), chosen by the digest's
//! first half, the bits by its second: one cache miss a lookup, not seven. At 16 bits a key
//! about 0.1 % of absent keys answer "maybe" (10 bits without blocks gave ~0.8 %). Keys are
//! inserted 64 at a time with their blocks loaded together first, so that the misses of a
//! large fill overlap (listing the whole city's 17.2 M streams 8.0 → 5.4 s,
//! docs/benchmarks.md).

/// A digest of a key, as two independent 64-bit halves.
pub type Digest = [u64; 2];

pub struct BlockedBloom {
    blocks: Vec<[u64; 8]>,
    /// Inserted keys whose bits are not set yet (at most [`Self::PENDING`]).
    pending: Vec<(usize, u64)>,
    expected: u64,
}

impl BlockedBloom {
    const PROBES: u32 = 7;
    pub(crate) const PENDING: usize = 64;

    /// A filter sized for `expected` keys (16 bits each).
    pub fn with_capacity(expected: u64) -> BlockedBloom {
        let blocks = (expected.saturating_mul(16) / 512).max(1) + 1;
        BlockedBloom {
            blocks: vec![[0; 8]; usize::try_from(blocks).unwrap_or(usize::MAX / 64)],
            pending: Vec::with_capacity(Self::PENDING),
            expected,
        }
    }

    pub fn insert(&mut self, digest: Digest) {
        self.pending.push(self.slot(digest));
        if self.pending.len() == Self::PENDING {
            // The blocks loaded in one loop first: independent loads, whose misses overlap;
            // then setting the bits finds them in the cache.
            let touched = self
                .pending
                .iter()
                .fold(0, |acc, &(block, _)| acc ^ self.blocks[block][0]);
            std::hint::black_box(touched);
            for (block, bits) in std::mem::take(&mut self.pending) {
                Self::set(&mut self.blocks[block], bits);
            }
            self.pending.reserve(Self::PENDING);
        }
    }

    /// False only for a key that was never inserted.
    pub fn may_hold(&self, digest: Digest) -> bool {
        let (block, bits) = self.slot(digest);
        self.pending.contains(&(block, bits)) || Self::all_set(&self.blocks[block], bits)
    }

    /// How many keys the filter was sized for: past that its "maybe"s grow more frequent
    /// (never wrong, only slower for its user).
    pub fn capacity(&self) -> u64 {
        self.expected
    }

    /// The block of `digest` and the bits that choose its probes in it.
    fn slot(&self, [first, second]: Digest) -> (usize, u64) {
        // Multiply-shift: the block uniformly from the whole half, without a division.
        let block = (u128::from(first) * self.blocks.len() as u128) >> 64;
        (block as usize, second)
    }

    /// The probes: 9 bits of `bits` each, a bit of the block's 512.
    fn probes(mut bits: u64) -> impl Iterator<Item = (usize, u64)> {
        (0..Self::PROBES).map(move |_| {
            let bit = (bits & 511) as usize;
            bits >>= 9;
            (bit / 64, 1 << (bit % 64))
        })
    }

    fn set(block: &mut [u64; 8], bits: u64) {
        for (word, mask) in Self::probes(bits) {
            block[word] |= mask;
        }
    }

    fn all_set(block: &[u64; 8], bits: u64) -> bool {
        Self::probes(bits).all(|(word, mask)| block[word] & mask != 0)
    }

    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }
}
