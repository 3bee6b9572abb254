//! blake3 of many small inputs at once, sixteen or eight at a time in the lanes of SIMD
//! registers.
//!
//! A verifier hashes two inputs per event (its data, then its envelope), each under 1 KiB:
//! one blake3 *chunk*. blake3 of one chunk is a chain of dependent compressions that leaves
//! most of a core idle (about 70 ns per 64-byte block here). Independent inputs can share the
//! work instead: the same compression runs on sixteen of them in the sixteen 32-bit lanes of a
//! 512-bit register (AVX-512), or on eight in a 256-bit one (AVX2), which is how blake3 itself
//! hashes the chunks of one long input ("hash_many" in its sources) and what the BLAKE3 paper
//! recommends for many short messages. AVX-512 also rotates a lane in one instruction where
//! AVX2 needs three, which is most of its lead (docs/benchmarks.md, "Verification").
//!
//! The per-lane bookkeeping (which block of which input, its padding, flags and length, whose
//! hash is ready) is the same for every register width and lives in [`Group`]; a kernel only
//! loads, transposes and compresses.
//!
//! Invariant: [`hash_small`] returns exactly what the `blake3` crate returns for the same input
//! and key, for every input length up to [`CHUNK_LEN`], on every kernel the machine has —
//! property-tested below against the crate, kernel by kernel, for every length. Longer
//! inputs, and machines with neither instruction set, use the crate directly.

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

/// The code that hashes a group of inputs together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Sixteen lanes of `__m512i` (AVX-512 Foundation).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// Eight lanes of `__m256i`.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// One input at a time, through the `blake3` crate.
    Portable,
}

impl Kernel {
    /// The widest kernel this machine runs (std caches the detection: a load per call).
    fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Inputs hashed together.
    fn lanes(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => 16,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => 8,
            Kernel::Portable => 1,
        }
    }
}

/// blake3 of each input, written to `out[i]` (`out.len() == inputs.len()`).
pub fn hash_small(mode: Mode<'_>, inputs: &[&[u8]], out: &mut [[u8; 32]]) {
    hash_small_on(Kernel::best(), mode, inputs, out);
}

/// [`hash_small`] on `kernel`, which the machine must have ([`Kernel::best`] or narrower).
fn hash_small_on(kernel: Kernel, mode: Mode<'_>, inputs: &[&[u8]], out: &mut [[u8; 32]]) {
    debug_assert_eq!(inputs.len(), out.len());
    let (key, flags) = match mode {
        Mode::Plain => (IV, 0),
        Mode::DeriveKey { context_key, .. } => (words(context_key), DERIVE_KEY_MATERIAL),
    };
    let lanes = kernel.lanes();
    if lanes == 1 {
        for (input, o) in inputs.iter().zip(out.iter_mut()) {
            *o = one(mode, input);
        }
        return;
    }
    // A group takes as many steps as its longest input has blocks, and a shorter input's lane
    // idles for the rest: inputs of like lengths are grouped together (the order of the
    // inputs by blocks), so that few lanes idle. Payloads vary: at 1/10 of the city, 44 % of
    // them are 2–3 blocks long and 39 % are 8–13.
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_unstable_by_key(|&i| inputs[i].len().div_ceil(64));
    let mut group: Vec<&[u8]> = Vec::with_capacity(lanes);
    let mut hashes = vec![[0u8; 32]; lanes];
    for indices in order.chunks(lanes) {
        group.clear();
        group.extend(indices.iter().map(|&i| inputs[i]));
        let hashes = &mut hashes[..indices.len()];
        if group.iter().any(|i| i.len() > CHUNK_LEN) {
            for (input, o) in group.iter().zip(hashes.iter_mut()) {
                *o = one(mode, input);
            }
        } else {
            match kernel {
                // Safety: the caller's kernel is one the machine has.
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => unsafe { avx512::hash_group(&key, flags, &group, hashes) },
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => unsafe { avx2::hash_group(&key, flags, &group, hashes) },
                Kernel::Portable => {}
            }
        }
        for (&i, hash) in indices.iter().zip(hashes.iter()) {
            out[i] = *hash;
        }
    }
}

fn one(mode: Mode<'_>, input: &[u8]) -> [u8; 32] {
    match mode {
        Mode::Plain => *blake3::hash(input).as_bytes(),
        Mode::DeriveKey { context, .. } => blake3::derive_key(context, input),
    }
}

/// blake3's IV (the first words of SHA-256's): the key of plain hashing, and the constants of
/// every compression.
const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];

const CHUNK_START: u32 = 1 << 0;
const CHUNK_END: u32 = 1 << 1;
const ROOT: u32 = 1 << 3;
const DERIVE_KEY_MATERIAL: u32 = 1 << 6;

/// The order of the message words in each of blake3's seven rounds.
#[cfg(target_arch = "x86_64")]
const MSG_SCHEDULE: [[usize; 16]; 7] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8],
    [3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1],
    [10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6],
    [12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4],
    [9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7],
    [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13],
];

/// blake3's seven rounds over the state `v` of every lane, `g` being the kernel's quarter-round
/// on state words `[a, b, c, d]` with message words `x` and `y`: the one schedule both kernels
/// run. Inlined into each kernel's `compress`, where `g` is a closure over its intrinsics.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rounds<V: Copy>(v: &mut [V; 16], m: &[V; 16], g: impl Fn(&mut [V; 16], [usize; 4], V, V)) {
    for s in &MSG_SCHEDULE {
        g(v, [0, 4, 8, 12], m[s[0]], m[s[1]]);
        g(v, [1, 5, 9, 13], m[s[2]], m[s[3]]);
        g(v, [2, 6, 10, 14], m[s[4]], m[s[5]]);
        g(v, [3, 7, 11, 15], m[s[6]], m[s[7]]);
        g(v, [0, 5, 10, 15], m[s[8]], m[s[9]]);
        g(v, [1, 6, 11, 12], m[s[10]], m[s[11]]);
        g(v, [2, 7, 8, 13], m[s[12]], m[s[13]]);
        g(v, [3, 4, 9, 14], m[s[14]], m[s[15]]);
    }
}

fn words(bytes: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, c) in bytes.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

/// Up to `N` inputs of at most one chunk each, hashed one per lane: what every lane
/// compresses at each step, whatever the registers.
///
/// Block `k` of every lane is compressed together; a lane whose input has fewer blocks rides
/// along on zeros and its result, taken after its own last block, is not touched again.
#[cfg(target_arch = "x86_64")]
struct Group<'a, const N: usize> {
    inputs: &'a [&'a [u8]],
    /// Blocks of each lane's input (an empty input is one empty block; an unused lane has 0).
    blocks: [usize; N],
    /// The last, partial block of a lane, behind zeros.
    padded: [[u8; 64]; N],
    mode_flags: u32,
}

#[cfg(target_arch = "x86_64")]
impl<'a, const N: usize> Group<'a, N> {
    fn new(inputs: &'a [&'a [u8]], mode_flags: u32) -> Self {
        debug_assert!(inputs.len() <= N);
        let mut blocks = [0usize; N];
        for (b, input) in blocks.iter_mut().zip(inputs) {
            *b = input.len().div_ceil(64).max(1);
        }
        Group {
            inputs,
            blocks,
            padded: [[0u8; 64]; N],
            mode_flags,
        }
    }

    /// Blocks of the longest input: the steps of the group.
    fn steps(&self) -> usize {
        self.blocks.iter().copied().max().unwrap_or(0)
    }

    /// Block `k` of every lane: a pointer to its 64 bytes (in place when whole, else a padded
    /// copy in `self`, valid until the next call), its length and its flags. Inlined into
    /// each kernel: as a call returning three arrays a step, it measured a quarter of the
    /// time of the compressions themselves.
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    fn block(&mut self, k: usize) -> ([*const u8; N], [u32; N], [u32; N]) {
        /// The block of a lane past its input's end (or of an empty input, or an unused lane).
        static ZEROS: [u8; 64] = [0; 64];
        let mut ptrs = [ZEROS.as_ptr(); N];
        let mut lens = [0u32; N];
        let mut flags = [0u32; N];
        for lane in 0..N {
            let input = self.inputs.get(lane).copied().unwrap_or_default();
            let start = (k * 64).min(input.len());
            let block = &input[start..(start + 64).min(input.len())];
            if block.len() == 64 {
                ptrs[lane] = block.as_ptr();
            } else if !block.is_empty() {
                let pad = &mut self.padded[lane];
                *pad = [0u8; 64];
                pad[..block.len()].copy_from_slice(block);
                ptrs[lane] = pad.as_ptr();
            }
            lens[lane] = block.len() as u32;
            let mut f = self.mode_flags;
            if k == 0 {
                f |= CHUNK_START;
            }
            if k + 1 == self.blocks[lane] {
                f |= CHUNK_END | ROOT;
            }
            flags[lane] = f;
        }
        (ptrs, lens, flags)
    }

    /// Whether some lane's input ends with block `k`.
    #[inline(always)]
    fn ends_at(&self, k: usize) -> bool {
        self.blocks.iter().any(|&b| b == k + 1)
    }

    /// The hash of every lane whose input ended with block `k`, from the compression's output
    /// stored word by word (`words[w][lane]`).
    #[inline(always)]
    fn write_ended(&self, k: usize, words: &[[u32; N]; 8], out: &mut [[u8; 32]]) {
        for (lane, o) in out.iter_mut().enumerate() {
            if self.blocks[lane] == k + 1 {
                for (w, row) in words.iter().enumerate() {
                    o[4 * w..4 * w + 4].copy_from_slice(&row[lane].to_le_bytes());
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Group, IV};

    const LANES: usize = 8;

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
        let iv = IV;
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
        // The closure inherits this function's target features, so `g` inlines into it.
        super::rounds(&mut v, m, |v, [a, b, c, d], x, y| g(v, a, b, c, d, x, y));
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

    /// Hashes up to eight inputs of at most one chunk each, one per lane (see [`Group`]).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn hash_group(
        key: &[u32; 8],
        mode_flags: u32,
        inputs: &[&[u8]],
        out: &mut [[u8; 32]],
    ) {
        debug_assert!(inputs.len() <= LANES && inputs.len() == out.len());
        let mut group = Group::<LANES>::new(inputs, mode_flags);
        let mut cv = [_mm256_setzero_si256(); 8];
        for (w, lane) in cv.iter_mut().enumerate() {
            *lane = _mm256_set1_epi32(key[w] as i32);
        }
        let mut words = [[0u32; LANES]; 8];
        for k in 0..group.steps() {
            let (blocks, lens, flags) = group.block(k);
            // Safety: every pointer is to 64 readable bytes (a whole block of an input, or a
            // padded copy in `group`, untouched until the next step).
            let m = unsafe { transposed(&blocks) };
            let block_len = unsafe { _mm256_loadu_si256(lens.as_ptr().cast()) };
            let flag_vec = unsafe { _mm256_loadu_si256(flags.as_ptr().cast()) };
            compress(&mut cv, &m, block_len, flag_vec);
            if group.ends_at(k) {
                for (w, row) in words.iter_mut().enumerate() {
                    unsafe { _mm256_storeu_si256(row.as_mut_ptr().cast(), cv[w]) };
                }
                group.write_ended(k, &words, out);
            }
        }
    }
}

/// The AVX-512 kernel: [`avx2`]'s, sixteen lanes wide, with native rotations; the transpose
/// is blake3's own (`transpose_vecs_512` in its C sources).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Group, IV};

    const LANES: usize = 16;

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn add(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn xor(a: __m512i, b: __m512i) -> __m512i {
        _mm512_xor_si512(a, b)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn g(v: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize, x: __m512i, y: __m512i) {
        v[a] = add(add(v[a], v[b]), x);
        v[d] = _mm512_ror_epi32::<16>(xor(v[d], v[a]));
        v[c] = add(v[c], v[d]);
        v[b] = _mm512_ror_epi32::<12>(xor(v[b], v[c]));
        v[a] = add(add(v[a], v[b]), y);
        v[d] = _mm512_ror_epi32::<8>(xor(v[d], v[a]));
        v[c] = add(v[c], v[d]);
        v[b] = _mm512_ror_epi32::<7>(xor(v[b], v[c]));
    }

    /// One blake3 compression in each lane (see `avx2::compress`).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn compress(cv: &mut [__m512i; 8], m: &[__m512i; 16], block_len: __m512i, flags: __m512i) {
        let iv = IV;
        let mut v = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            _mm512_set1_epi32(iv[0] as i32),
            _mm512_set1_epi32(iv[1] as i32),
            _mm512_set1_epi32(iv[2] as i32),
            _mm512_set1_epi32(iv[3] as i32),
            // Counter (low, high): 0 for the one chunk of a small input.
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            block_len,
            flags,
        ];
        // The closure inherits this function's target features, so `g` inlines into it.
        super::rounds(&mut v, m, |v, [a, b, c, d], x, y| g(v, a, b, c, d, x, y));
        for i in 0..8 {
            cv[i] = xor(v[i], v[i + 8]);
        }
    }

    /// The sixteen message words of sixteen 64-byte blocks (one register each), word `w` of
    /// every lane in `m[w]`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn transposed(blocks: &[*const u8; LANES]) -> [__m512i; 16] {
        let mut r = [_mm512_setzero_si512(); LANES];
        for (row, block) in r.iter_mut().zip(blocks) {
            *row = unsafe { _mm512_loadu_si512(block.cast()) };
        }
        transpose16(r)
    }

    /// Transposes a 16×16 matrix of 32-bit words held as sixteen rows: 32-bit, then 64-bit,
    /// then twice 128-bit interleaves.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
        // Lanes a0/a2 and b0/b2 of each 128-bit half, and lanes a1/a3 and b1/b3.
        const LO_128: i32 = 0b1000_1000;
        const HI_128: i32 = 0b1101_1101;
        let mut p = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            p[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            p[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        // q[4j + t]: rows 4j..4j+4, word t of each 128-bit quarter.
        let mut q = [_mm512_setzero_si512(); 16];
        for j in 0..4 {
            let (a0, a2, b0, b2) = (p[4 * j], p[4 * j + 1], p[4 * j + 2], p[4 * j + 3]);
            q[4 * j] = _mm512_unpacklo_epi64(a0, b0);
            q[4 * j + 1] = _mm512_unpackhi_epi64(a0, b0);
            q[4 * j + 2] = _mm512_unpacklo_epi64(a2, b2);
            q[4 * j + 3] = _mm512_unpackhi_epi64(a2, b2);
        }
        // h[8j + t] (j = 0: rows 0..8, j = 1: rows 8..16): word t (0..4) of quarters 0 and 2,
        // word t - 4 of quarters 1 and 3 (t = 4..8).
        let mut h = [_mm512_setzero_si512(); 16];
        for j in 0..2 {
            for t in 0..4 {
                let (a, b) = (q[8 * j + t], q[8 * j + 4 + t]);
                h[8 * j + t] = _mm512_shuffle_i32x4::<LO_128>(a, b);
                h[8 * j + 4 + t] = _mm512_shuffle_i32x4::<HI_128>(a, b);
            }
        }
        let mut out = [_mm512_setzero_si512(); 16];
        for t in 0..8 {
            out[t] = _mm512_shuffle_i32x4::<LO_128>(h[t], h[8 + t]);
            out[8 + t] = _mm512_shuffle_i32x4::<HI_128>(h[t], h[8 + t]);
        }
        out
    }

    /// Hashes up to sixteen inputs of at most one chunk each, one per lane (see [`Group`]).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn hash_group(
        key: &[u32; 8],
        mode_flags: u32,
        inputs: &[&[u8]],
        out: &mut [[u8; 32]],
    ) {
        debug_assert!(inputs.len() <= LANES && inputs.len() == out.len());
        let mut group = Group::<LANES>::new(inputs, mode_flags);
        let mut cv = [_mm512_setzero_si512(); 8];
        for (w, lane) in cv.iter_mut().enumerate() {
            *lane = _mm512_set1_epi32(key[w] as i32);
        }
        let mut words = [[0u32; LANES]; 8];
        for k in 0..group.steps() {
            let (blocks, lens, flags) = group.block(k);
            // Safety: every pointer is to 64 readable bytes (a whole block of an input, or a
            // padded copy in `group`, untouched until the next step).
            let m = unsafe { transposed(&blocks) };
            let block_len = unsafe { _mm512_loadu_si512(lens.as_ptr().cast()) };
            let flag_vec = unsafe { _mm512_loadu_si512(flags.as_ptr().cast()) };
            compress(&mut cv, &m, block_len, flag_vec);
            if group.ends_at(k) {
                for (w, row) in words.iter_mut().enumerate() {
                    unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), cv[w]) };
                }
                group.write_ended(k, &words, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CONTEXT: &str = "citydb lanes test context";

    /// Every kernel this machine runs, the widest first.
    fn kernels() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(Kernel::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                kernels.push(Kernel::Avx2);
            }
        }
        kernels.push(Kernel::Portable);
        kernels
    }

    fn check(inputs: &[Vec<u8>]) {
        for kernel in kernels() {
            check_on(kernel, inputs);
        }
    }

    fn check_on(kernel: Kernel, inputs: &[Vec<u8>]) {
        let slices: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut out = vec![[0u8; 32]; inputs.len()];
        hash_small_on(kernel, Mode::Plain, &slices, &mut out);
        for (input, got) in inputs.iter().zip(&out) {
            assert_eq!(
                got,
                blake3::hash(input).as_bytes(),
                "{kernel:?}, plain, {} bytes",
                input.len()
            );
        }
        let key = blake3::hazmat::hash_derive_key_context(CONTEXT);
        hash_small_on(
            kernel,
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
                "{kernel:?}, derive, {} bytes",
                input.len()
            );
        }
    }

    #[test]
    fn the_best_kernel_is_the_widest_the_machine_has() {
        assert_eq!(Some(&Kernel::best()), kernels().first());
    }

    #[test]
    fn every_length_up_to_a_chunk_and_past_it_equals_the_blake3_crate() {
        // Sixteen lanes of neighbouring lengths, so every lane of either width meets every
        // block count and every partial-block length, including 0 and the exact block and
        // chunk boundaries.
        for first in 0..=(CHUNK_LEN + 70) {
            let inputs: Vec<Vec<u8>> = (0..16)
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
                proptest::collection::vec(any::<u8>(), 0..1100), 0..40)
        ) {
            check(&inputs);
        }
    }
}
