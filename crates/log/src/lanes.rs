//! blake3 of many small inputs at once, eight at a time in the lanes of AVX2 registers.
//!
//! A verifier hashes two inputs per event (its data, then its envelope), each under 1 KiB:
//! one blake3 *chunk*. blake3 of one chunk is a chain of dependent compressions that leaves
//! most of a core idle (about 70 ns per 64-byte block here). Independent inputs can share the
//! work instead: the same compression runs on eight of them in the eight 32-bit lanes of a
//! 256-bit register, which is how blake3 itself hashes the chunks of one long input
//! ("hash_many" in its sources) and what the BLAKE3 paper recommends for many short messages.
//!
//! Invariant: [`hash_small`] returns exactly what the `blake3` crate returns for the same input
//! and key, for every input length up to [`CHUNK_LEN`] — property-tested below against the
//! crate, for every length. Longer inputs, and machines without AVX2, use the crate directly.

/// The most an input can hold to be hashed here: one blake3 chunk.
pub const CHUNK_LEN: usize = 1024;

/// How the inputs are hashed: blake3's plain mode, or its key-derivation mode under the key
/// derived from a context string (`blake3::Hasher::new_derive_key`).
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    Plain,
    DeriveKey {
        context_key: &'a [u8; 32],
        context: &'a str,
    },
}

/// blake3 of each input, written to `out[i]` (`out.len() == inputs.len()`).
pub fn hash_small(mode: Mode<'_>, inputs: &[&[u8]], out: &mut [[u8; 32]]) {
    debug_assert_eq!(inputs.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            let (key, flags) = match mode {
                Mode::Plain => (IV, 0),
                Mode::DeriveKey { context_key, .. } => (words(context_key), DERIVE_KEY_MATERIAL),
            };
            let mut start = 0;
            while start < inputs.len() {
                let end = (start + LANES).min(inputs.len());
                let group = &inputs[start..end];
                if group.iter().all(|i| i.len() <= CHUNK_LEN) {
                    // Safety: AVX2 was detected just above.
                    unsafe { avx2::hash_group(&key, flags, group, &mut out[start..end]) };
                } else {
                    for (input, o) in group.iter().zip(&mut out[start..end]) {
                        *o = one(mode, input);
                    }
                }
                start = end;
            }
            return;
        }
    }
    for (input, o) in inputs.iter().zip(out.iter_mut()) {
        *o = one(mode, input);
    }
}

fn one(mode: Mode<'_>, input: &[u8]) -> [u8; 32] {
    match mode {
        Mode::Plain => *blake3::hash(input).as_bytes(),
        Mode::DeriveKey { context, .. } => blake3::derive_key(context, input),
    }
}

const LANES: usize = 8;

/// blake3's IV (the first words of SHA-256's): the key of plain hashing, and the constants of
/// every compression.
const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];

const CHUNK_START: u32 = 1 << 0;
const CHUNK_END: u32 = 1 << 1;
const ROOT: u32 = 1 << 3;
const DERIVE_KEY_MATERIAL: u32 = 1 << 6;

fn words(bytes: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, c) in bytes.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{CHUNK_END, CHUNK_START, LANES, ROOT};

    const MSG_SCHEDULE: [[usize; 16]; 7] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8],
        [3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1],
        [10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6],
        [12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4],
        [9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7],
        [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13],
    ];

    #[target_feature(enable = "avx2")]
    #[inline]
    fn add(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn xor(a: __m256i, b: __m256i) -> __m256i {
        _mm256_xor_si256(a, b)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot16(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_set_epi8(
                13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9, 8, 11, 10,
                5, 4, 7, 6, 1, 0, 3, 2,
            ),
        )
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot8(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_set_epi8(
                12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1, 12, 15, 14, 13, 8, 11, 10, 9,
                4, 7, 6, 5, 0, 3, 2, 1,
            ),
        )
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot12(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot7(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn g(v: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize, x: __m256i, y: __m256i) {
        v[a] = add(add(v[a], v[b]), x);
        v[d] = rot16(xor(v[d], v[a]));
        v[c] = add(v[c], v[d]);
        v[b] = rot12(xor(v[b], v[c]));
        v[a] = add(add(v[a], v[b]), y);
        v[d] = rot8(xor(v[d], v[a]));
        v[c] = add(v[c], v[d]);
        v[b] = rot7(xor(v[b], v[c]));
    }

    /// One blake3 compression in each lane: `cv` is replaced by the compression's first
    /// eight output words (the chaining value, or the hash for a root block).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn compress(cv: &mut [__m256i; 8], m: &[__m256i; 16], block_len: __m256i, flags: __m256i) {
        let iv = super::IV;
        let mut v = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            _mm256_set1_epi32(iv[0] as i32),
            _mm256_set1_epi32(iv[1] as i32),
            _mm256_set1_epi32(iv[2] as i32),
            _mm256_set1_epi32(iv[3] as i32),
            // Counter (low, high): 0 for the one chunk of a small input.
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            block_len,
            flags,
        ];
        for s in &MSG_SCHEDULE {
            g(&mut v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
            g(&mut v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
            g(&mut v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
            g(&mut v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
            g(&mut v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
            g(&mut v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
            g(&mut v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
            g(&mut v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
        }
        for i in 0..8 {
            cv[i] = xor(v[i], v[i + 8]);
        }
    }

    /// The sixteen message words of eight 64-byte blocks, word `w` of every lane in `m[w]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn transposed(blocks: &[*const u8; LANES]) -> [__m256i; 16] {
        let mut lo = [_mm256_setzero_si256(); LANES];
        let mut hi = [_mm256_setzero_si256(); LANES];
        for lane in 0..LANES {
            unsafe {
                lo[lane] = _mm256_loadu_si256(blocks[lane].cast());
                hi[lane] = _mm256_loadu_si256(blocks[lane].add(32).cast());
            }
        }
        let a = transpose8(lo);
        let b = transpose8(hi);
        [
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1], b[2], b[3], b[4], b[5],
            b[6], b[7],
        ]
    }

    /// Transposes an 8×8 matrix of 32-bit words held as eight rows.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        [
            _mm256_permute2x128_si256(u0, u4, 0x20),
            _mm256_permute2x128_si256(u1, u5, 0x20),
            _mm256_permute2x128_si256(u2, u6, 0x20),
            _mm256_permute2x128_si256(u3, u7, 0x20),
            _mm256_permute2x128_si256(u0, u4, 0x31),
            _mm256_permute2x128_si256(u1, u5, 0x31),
            _mm256_permute2x128_si256(u2, u6, 0x31),
            _mm256_permute2x128_si256(u3, u7, 0x31),
        ]
    }

    /// Hashes up to eight inputs of at most one chunk each, one per lane.
    ///
    /// Block `k` of every lane is compressed together; a lane whose input has fewer blocks
    /// rides along on zeros and its result, taken after its own last block, is not touched
    /// again.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn hash_group(
        key: &[u32; 8],
        mode_flags: u32,
        inputs: &[&[u8]],
        out: &mut [[u8; 32]],
    ) {
        debug_assert!(inputs.len() <= LANES && inputs.len() == out.len());
        // An empty input is one empty block.
        let mut blocks = [0usize; LANES];
        for (b, input) in blocks.iter_mut().zip(inputs) {
            *b = input.len().div_ceil(64).max(1);
        }
        let most = blocks.iter().copied().max().unwrap_or(0);
        let mut cv = [_mm256_setzero_si256(); 8];
        for (w, lane) in cv.iter_mut().enumerate() {
            *lane = _mm256_set1_epi32(key[w] as i32);
        }
        let mut lens = [0u32; LANES];
        let mut flags = [0u32; LANES];
        let mut words = [[0u32; LANES]; 8];
        let mut padded = [[0u8; 64]; LANES];
        for k in 0..most {
            // Each lane's block: in place when whole, else copied behind zeros.
            let mut block_ptr: [*const u8; LANES] = [padded[0].as_ptr(); LANES];
            for (lane, pad) in padded.iter_mut().enumerate() {
                let input = inputs.get(lane).copied().unwrap_or_default();
                let start = (k * 64).min(input.len());
                let end = (start + 64).min(input.len());
                let block = &input[start..end];
                if block.len() == 64 {
                    block_ptr[lane] = block.as_ptr();
                } else {
                    *pad = [0u8; 64];
                    pad[..block.len()].copy_from_slice(block);
                    block_ptr[lane] = pad.as_ptr();
                }
                lens[lane] = block.len() as u32;
                let mut f = mode_flags;
                if k == 0 {
                    f |= CHUNK_START;
                }
                if k + 1 == blocks[lane] {
                    f |= CHUNK_END | ROOT;
                }
                flags[lane] = f;
            }
            // Safety: every pointer is to 64 readable bytes (a whole block of an input, or a
            // padded copy that lives until the end of this iteration).
            let m = unsafe { transposed(&block_ptr) };
            let block_len = unsafe { _mm256_loadu_si256(lens.as_ptr().cast()) };
            let flag_vec = unsafe { _mm256_loadu_si256(flags.as_ptr().cast()) };
            compress(&mut cv, &m, block_len, flag_vec);
            if blocks.iter().any(|&b| b == k + 1) {
                for (w, row) in words.iter_mut().enumerate() {
                    unsafe { _mm256_storeu_si256(row.as_mut_ptr().cast(), cv[w]) };
                }
                for (lane, o) in out.iter_mut().enumerate() {
                    if blocks[lane] == k + 1 {
                        for (w, row) in words.iter().enumerate() {
                            o[4 * w..4 * w + 4].copy_from_slice(&row[lane].to_le_bytes());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CONTEXT: &str = "citydb lanes test context";

    fn check(inputs: &[Vec<u8>]) {
        let slices: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut out = vec![[0u8; 32]; inputs.len()];
        hash_small(Mode::Plain, &slices, &mut out);
        for (input, got) in inputs.iter().zip(&out) {
            assert_eq!(
                got,
                blake3::hash(input).as_bytes(),
                "plain, {} bytes",
                input.len()
            );
        }
        let key = blake3::hazmat::hash_derive_key_context(CONTEXT);
        hash_small(
            Mode::DeriveKey {
                context_key: &key,
                context: CONTEXT,
            },
            &slices,
            &mut out,
        );
        for (input, got) in inputs.iter().zip(&out) {
            assert_eq!(
                got,
                &blake3::derive_key(CONTEXT, input),
                "derive, {} bytes",
                input.len()
            );
        }
    }

    #[test]
    fn every_length_up_to_a_chunk_and_past_it_equals_the_blake3_crate() {
        // Eight lanes of neighbouring lengths, so every lane meets every block count and
        // every partial-block length, including 0 and the exact block and chunk boundaries.
        for first in 0..=(CHUNK_LEN + 70) {
            let inputs: Vec<Vec<u8>> = (0..8)
                .map(|lane| {
                    let len = (first + lane * 9) % (CHUNK_LEN + 80);
                    (0..len)
                        .map(|i| (i * 31 + lane * 7 + first) as u8)
                        .collect()
                })
                .collect();
            check(&inputs);
        }
    }

    proptest! {
        #[test]
        fn any_inputs_equal_the_blake3_crate(
            inputs in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..1100), 0..20)
        ) {
            check(&inputs);
        }
    }
}
