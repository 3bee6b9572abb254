//! The verifiers: they recompute every event's hashes and check the links and counters the
//! parent module's invariants list, over a whole log (or a segment of one) or a single stream.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use uuid::Uuid;

use super::partitions::Partitions;
use super::{
    Breach, Corruption, EVENT_HASH_CONTEXT, Envelope, EventView, Hash, LogHead, Redactions,
    VerifyReport, data_hash, encode, encoded_len, event_hash,
};
use crate::error::LogError;
use crate::lanes;

/// The most streams a verifier of a whole log holds in memory at once (about 100 bytes each):
/// [`LogVerifier::bounded`] sets the stream links of a larger log aside in partitions of at
/// most this many events each. One pass per segment below it; about 13 MB of table per
/// checking thread above it, however many streams the log has. (2^20 measured the same speed
/// at 1/10 of the city with 170 MB of heap instead of 46 MB.)
pub const STREAMS_IN_MEMORY: u64 = 1 << 17;

/// Bytes of set-aside stream links a partition holds before writing them out (about 500
/// links): large enough for sequential writes, small enough that a segment's buffers stay
/// about 10 MB for the 167 partitions a whole city needs.
pub const LINK_BLOCK_BYTES: usize = 64 << 10;

/// An event's own hashes as recomputed from its bytes: blake3 of its data (`None` for a
/// redacted payload) and its event hash over the *stored* data hash.
#[derive(Clone, Copy)]
struct Recomputed {
    data_hash: Option<Hash>,
    hash: Hash,
}

impl Recomputed {
    fn of(ev: &EventView<'_>) -> Recomputed {
        Recomputed {
            data_hash: ev.data.map(data_hash),
            hash: event_hash(
                &ev.envelope,
                &ev.data_hash,
                &ev.prev_stream_hash,
                &ev.prev_log_hash,
            ),
        }
    }

    /// The same for many events, hashed many at a time (see `lanes`): what a verifier of a
    /// whole log spends most of its time on.
    fn of_many(events: &[EventView<'_>]) -> Vec<Recomputed> {
        let mut encoded = Vec::with_capacity(events.iter().map(|e| encoded_len(&e.envelope)).sum());
        let mut ends = Vec::with_capacity(events.len());
        for e in events {
            encode(
                &mut encoded,
                &e.envelope,
                &e.data_hash,
                &e.prev_stream_hash,
                &e.prev_log_hash,
            );
            ends.push(encoded.len());
        }
        let mut start = 0;
        let inputs: Vec<&[u8]> = ends
            .iter()
            .map(|&end| {
                let input = &encoded[start..end];
                start = end;
                input
            })
            .collect();
        Self::of_encoded(events, &inputs)
    }

    /// [`Recomputed::of_many`] with each event's encoding already made: `encoded[i]` is what
    /// `events[i]`'s hash covers (see `encode`).
    fn of_encoded(events: &[EventView<'_>], encoded: &[&[u8]]) -> Vec<Recomputed> {
        static CONTEXT_KEY: std::sync::LazyLock<[u8; 32]> = std::sync::LazyLock::new(|| {
            blake3::hazmat::hash_derive_key_context(EVENT_HASH_CONTEXT)
        });
        let datas: Vec<&[u8]> = events.iter().filter_map(|e| e.data).collect();
        let mut data_hashes = vec![[0u8; 32]; datas.len()];
        lanes::hash_small(lanes::Mode::Plain, &datas, &mut data_hashes);
        let mut hashes = vec![[0u8; 32]; events.len()];
        lanes::hash_small(
            lanes::Mode::DeriveKey {
                context_key: &CONTEXT_KEY,
                context: EVENT_HASH_CONTEXT,
            },
            encoded,
            &mut hashes,
        );
        let mut data_hashes = data_hashes.into_iter();
        events
            .iter()
            .zip(hashes)
            .map(|(e, hash)| Recomputed {
                data_hash: e.data.and_then(|_| data_hashes.next()).map(Hash),
                hash: Hash(hash),
            })
            .collect()
    }

    fn check(&self, ev: &EventView<'_>) -> Result<(), Breach> {
        if self.data_hash.is_some_and(|h| h != ev.data_hash) {
            return Err(Breach::DataChanged);
        }
        if self.hash != ev.hash {
            return Err(Breach::HashMismatch);
        }
        Ok(())
    }
}

fn check_own_hashes(ev: &EventView<'_>) -> Result<(), Breach> {
    Recomputed::of(ev).check(ev)
}

/// What a segment saw of one stream: enough to check, when segments are joined, that the
/// stream's versions and links continue across the seam. (The `prev_stream_hash` of the
/// stream's first event here is in [`StreamTable::continued`] when it is not zero.)
#[derive(Clone, Copy)]
pub(super) struct StreamSpan {
    pub(super) first_position: u64,
    pub(super) first_version: u64,
    pub(super) next_version: u64,
    pub(super) last_hash: Hash,
}

/// FNV-1a over stream ids. The verifier looks one up per event; stream ids come from the log
/// being verified, not from an adversary choosing keys for collisions against a running
/// service, so SipHash's flooding resistance buys nothing here and costs a third of the time.
#[derive(Clone, Copy, Default)]
pub(super) struct StreamIdHasher;

impl std::hash::BuildHasher for StreamIdHasher {
    type Hasher = Fnv1a;
    fn build_hasher(&self) -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

pub(super) struct Fnv1a(u64);

impl std::hash::Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    /// A split key's random half (see `StreamKey`'s `Hash`): one multiplication by an odd
    /// constant carries its bits up to the high ones the table's tags are taken from, where
    /// FNV would spend eight.
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A stream id as the verifier keys it. Stream ids end in a lowercase hyphenated UUID, so one
/// is held as its category's index in [`StreamTable::categories`] and the UUID's 16 bytes: no
/// allocation per stream, a fixed-size key, and the exact id can be spelled back for a report.
/// Any other text (only a tampered or foreign log has it) is kept as it is.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum StreamKey {
    Split { category: u32, uuid: [u8; 16] },
    Other(Box<str>),
}

impl std::hash::Hash for StreamKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            // The UUID's second half is random in every version citydb writes (v4, v7).
            StreamKey::Split { category, uuid } => {
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&uuid[8..]);
                state.write_u64(u64::from_le_bytes(tail) ^ u64::from(*category));
            }
            StreamKey::Other(text) => state.write(text.as_bytes()),
        }
    }
}

/// Splits `category-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lowercase hex) into its category and
/// UUID bytes; `None` for anything else.
///
/// Once per event on the verifying path, so without a branch per digit: a UUID's digits and
/// letters come at random, and a branch on which is which mispredicted often enough to make
/// this a twelfth of a verification's time (docs/benchmarks.md, "Verification").
fn split_stream_id(id: &str) -> Option<(&str, [u8; 16])> {
    /// Where the 32 digits are in `-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    const DIGITS: [usize; 32] = [
        1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18, 20, 21, 22, 23, 25, 26, 27, 28, 29,
        30, 31, 32, 33, 34, 35, 36,
    ];
    let bytes = id.as_bytes();
    let cut = bytes.len().checked_sub(37)?;
    let tail = &bytes[cut..];
    if cut == 0 || [0, 9, 14, 19, 24].iter().any(|&i| tail[i] != b'-') {
        return None;
    }
    let mut uuid = [0u8; 16];
    // `HEX_DIGIT` marks anything but a lowercase hex digit with a high nibble; one test at the
    // end finds any of them.
    let mut marks = 0u8;
    for (i, byte) in uuid.iter_mut().enumerate() {
        let high = HEX_DIGIT[usize::from(tail[DIGITS[2 * i]])];
        let low = HEX_DIGIT[usize::from(tail[DIGITS[2 * i + 1]])];
        marks |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    // `cut` is the byte of an ASCII hyphen: a character boundary.
    (marks & 0xf0 == 0).then(|| (&id[..cut], uuid))
}

/// The value of each lowercase hex digit; 0xff for every other byte.
static HEX_DIGIT: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// The verifier's memory: one entry per stream, about a hundred bytes (a city holds some
/// sixteen million streams).
#[derive(Default)]
pub(super) struct StreamTable {
    categories: Vec<Box<str>>,
    category_index: HashMap<Box<str>, u32, StreamIdHasher>,
    /// The category looked up last: events come in runs of one category (a register's
    /// records are registered together), so most lookups end at one comparison.
    last_category: u32,
    pub(super) spans: HashMap<StreamKey, StreamSpan, StreamIdHasher>,
    /// The `prev_stream_hash` of a stream's first event in this segment, where it is not zero:
    /// only a stream continuing from an earlier segment (or a broken one) has such an entry.
    continued: HashMap<StreamKey, Hash, StreamIdHasher>,
}

impl StreamTable {
    pub(super) fn key(&mut self, id: &str) -> StreamKey {
        match split_stream_id(id) {
            Some((category, uuid)) => StreamKey::Split {
                category: self.category(category),
                uuid,
            },
            None => StreamKey::Other(id.into()),
        }
    }

    fn category(&mut self, category: &str) -> u32 {
        let last = self.last_category;
        if self
            .categories
            .get(last as usize)
            .is_some_and(|c| **c == *category)
        {
            return last;
        }
        if let Some(&index) = self.category_index.get(category) {
            self.last_category = index;
            return index;
        }
        let index = u32::try_from(self.categories.len()).unwrap_or(u32::MAX);
        self.categories.push(category.into());
        self.category_index.insert(category.into(), index);
        index
    }

    /// `key` of `other`'s table as a key of this one.
    fn adopt(&mut self, other: &StreamTable, key: &StreamKey) -> StreamKey {
        match key {
            StreamKey::Split { category, uuid } => StreamKey::Split {
                category: self.category(other.category_name(*category)),
                uuid: *uuid,
            },
            StreamKey::Other(text) => StreamKey::Other(text.clone()),
        }
    }

    fn category_name(&self, index: u32) -> &str {
        self.categories.get(index as usize).map_or("", |c| c)
    }

    /// The stream id, spelled exactly as it was read.
    fn name(&self, key: &StreamKey) -> String {
        match key {
            StreamKey::Split { category, uuid } => format!(
                "{}-{}",
                self.category_name(*category),
                Uuid::from_bytes(*uuid).hyphenated()
            ),
            StreamKey::Other(text) => text.to_string(),
        }
    }

    fn first_prev_hash(&self, key: &StreamKey) -> Hash {
        self.continued.get(key).copied().unwrap_or(Hash::ZERO)
    }
}

/// Verifies a log fed to it in position order, one event at a time.
///
/// A verifier covers a *segment* of positions `start..`. The whole log is one segment from 0;
/// a large log can instead be cut into consecutive segments verified in parallel and then
/// [`joined`](LogVerifier::join) in order, which checks the links across each seam. The result
/// is the same as one sequential pass (a property test holds the two to that).
///
/// Memory: one entry per stream (a private `StreamTable`: about 100 bytes per stream), unless
/// made with [`LogVerifier::bounded`] for a log of more events than that allows: it
/// then sets each event's stream link aside, partitioned by stream (spilling to unnamed
/// temporary files), and checks the partitions one at a time when it is finished
/// ([`LogVerifier::try_finish`]) — the same findings, with memory that does not grow with the
/// number of streams.
pub struct LogVerifier {
    start: u64,
    next_position: u64,
    /// `prev_log_hash` and time of the segment's first event, checked at the seam.
    first: Option<(Hash, i64)>,
    prev: Option<(Hash, i64)>,
    streams: StreamTable,
    /// Every stream that already has events before `start` is in `streams`: any other stream
    /// must start at version 0 (set by [`LogVerifier::continuing`]).
    streams_known: bool,
    /// Stream links set aside instead of checked against `streams` (see [`Partitions`]).
    links: Option<Partitions>,
    /// Segments of unlike kinds (one with links set aside, one without) were joined: a
    /// caller's bug, reported by `try_finish`.
    misjoined: bool,
    /// A row at this position could not be decoded, and why: the run stopped there
    /// ([`LogVerifier::unreadable_at`]).
    unreadable: Option<(u64, String)>,
    expected_head: Option<LogHead>,
    corruption: Option<Corruption>,
    /// The redacted events that passed every check, in position order.
    redacted: Redactions,
}

impl LogVerifier {
    /// A verifier for the whole log. `expected_head` is a head recorded earlier (by an auditor,
    /// or the previous run): the log must still hold that event with that hash, which is how a
    /// truncated tail or a history rewritten from some point on is caught.
    pub fn new(expected_head: Option<LogHead>) -> Self {
        Self::segment(0, expected_head)
    }

    /// A verifier for the segment of the log that starts at position `start`.
    pub fn segment(start: u64, expected_head: Option<LogHead>) -> Self {
        LogVerifier {
            start,
            next_position: start,
            first: None,
            prev: None,
            streams: StreamTable::default(),
            streams_known: false,
            links: None,
            misjoined: false,
            unreadable: None,
            expected_head,
            corruption: None,
            redacted: Redactions::default(),
        }
    }

    /// A verifier for the segment from `start` of a log of `log_events` events (every segment
    /// of one log must be given the same counts, so that they partition alike): like
    /// [`LogVerifier::segment`] while the log has at most `streams_in_memory` events (a log
    /// has no more streams than events; the stores' default is [`STREAMS_IN_MEMORY`]), else
    /// one that sets the stream links aside in enough partitions that each holds at most that
    /// many, and checks them at the end. Finish it with [`LogVerifier::try_finish`]: reading
    /// the links back can fail.
    pub fn bounded(
        start: u64,
        expected_head: Option<LogHead>,
        log_events: u64,
        streams_in_memory: u64,
    ) -> Self {
        if log_events <= streams_in_memory {
            return Self::segment(start, expected_head);
        }
        // A multiple of the cores, so that no core checks its last partition alone.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let partitions = log_events
            .div_ceil(streams_in_memory.max(1))
            .next_multiple_of(cores);
        Self::partitioned(
            start,
            expected_head,
            usize::try_from(partitions).unwrap_or(usize::MAX),
            LINK_BLOCK_BYTES,
        )
    }

    /// [`LogVerifier::bounded`] with the partitions chosen: `partitions` of them, each written
    /// out to a temporary file in blocks of `block_bytes`. Tests use it to set links aside in
    /// small logs.
    pub fn partitioned(
        start: u64,
        expected_head: Option<LogHead>,
        partitions: usize,
        block_bytes: usize,
    ) -> Self {
        LogVerifier {
            links: Some(Partitions::new(partitions, block_bytes)),
            ..Self::segment(start, expected_head)
        }
    }

    /// A verifier for events that continue a log already held: `tip` is that log's last event
    /// and its `recorded_at` (`None`: the log is empty), and `streams` gives, for streams that
    /// already have events there, the last version and hash. Every stream not listed must start
    /// at version 0. The first event checked must be at `tip.position + 1`, link to `tip.hash`
    /// and not be older than it; each stream must continue where it ended.
    ///
    /// This is how a batch of recorded events is checked before it is copied into a log
    /// ([`crate::EventLog::copy_in`]). Such a verifier cannot be [`join`](LogVerifier::join)ed.
    pub fn continuing(
        tip: Option<(LogHead, i64)>,
        streams: impl IntoIterator<Item = (String, u64, Hash)>,
    ) -> Self {
        let start = tip.map_or(0, |(head, _)| head.position.saturating_add(1));
        let mut verifier = Self::segment(start, None);
        verifier.prev = tip.map(|(head, recorded_at)| (head.hash, recorded_at));
        verifier.streams_known = true;
        for (stream, last_version, last_hash) in streams {
            let key = verifier.streams.key(&stream);
            let span = StreamSpan {
                first_position: 0,
                first_version: 0,
                next_version: last_version.saturating_add(1),
                last_hash,
            };
            verifier.streams.spans.insert(key, span);
        }
        verifier
    }

    /// The first position of the segment this verifier covers.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Whether the run stopped already: at a breach, or at a row that could not be decoded
    /// (the stream links set aside are not checked yet).
    pub fn has_failed(&self) -> bool {
        self.corruption.is_some() || self.unreadable.is_some()
    }

    /// Stops the run at `position`, whose row could not even be decoded (`reason`), unless it
    /// stopped before. [`LogVerifier::try_finish`] then reports [`LogError::Corrupted`] there,
    /// unless a breach lies before it — one pass would have stopped at that breach first,
    /// which for a stream link set aside is only known at the end.
    pub fn unreadable_at(&mut self, position: u64, reason: String) {
        if !self.has_failed() {
            self.unreadable = Some((position, reason));
        }
    }

    /// Positions checked so far.
    pub fn events_checked(&self) -> u64 {
        self.next_position - self.start
    }

    /// Checks the next event. After the first failure every later call returns it again.
    pub fn check(&mut self, ev: &EventView<'_>) -> Result<(), Corruption> {
        self.check_recomputed(ev, || Recomputed::of(ev))
    }

    /// Checks the next events, in order, with their hashes computed together (several times
    /// faster than one by one on a machine with AVX2). Same result as [`check`](Self::check)
    /// on each in turn.
    pub fn check_batch(&mut self, batch: &EventBatch) -> Result<(), Corruption> {
        let views = batch.views();
        let encoded: Vec<&[u8]> = batch
            .events
            .iter()
            .map(|e| &batch.encoded[e.encoded.clone()])
            .collect();
        let recomputed = Recomputed::of_encoded(&views, &encoded);
        for (ev, own) in views.iter().zip(recomputed) {
            self.check_recomputed(ev, || own)?;
        }
        Ok(())
    }

    /// [`check_batch`](Self::check_batch) for events already borrowed from somewhere.
    pub fn check_views(&mut self, views: &[EventView<'_>]) -> Result<(), Corruption> {
        let recomputed = Recomputed::of_many(views);
        for (ev, own) in views.iter().zip(recomputed) {
            self.check_recomputed(ev, || own)?;
        }
        Ok(())
    }

    fn check_recomputed(
        &mut self,
        ev: &EventView<'_>,
        own: impl FnOnce() -> Recomputed,
    ) -> Result<(), Corruption> {
        if let Some(c) = &self.corruption {
            return Err(c.clone());
        }
        let position = ev.envelope.position;
        let result = self.check_inner(ev, own);
        result.map_err(|breach| {
            let c = Corruption { position, breach };
            self.corruption = Some(c.clone());
            c
        })
    }

    fn check_inner(
        &mut self,
        ev: &EventView<'_>,
        own: impl FnOnce() -> Recomputed,
    ) -> Result<(), Breach> {
        let env = &ev.envelope;
        if env.position != self.next_position {
            return Err(Breach::PositionGap {
                expected: self.next_position,
                found: env.position,
            });
        }
        own().check(ev)?;
        match self.prev {
            Some((prev_hash, prev_time)) => {
                if ev.prev_log_hash != prev_hash {
                    return Err(Breach::LogLinkBroken);
                }
                if env.recorded_at < prev_time {
                    return Err(Breach::TimeWentBackwards);
                }
            }
            // The log's first event links to nothing; a later segment's first event links to
            // the previous segment, checked by `join`.
            None if self.start == 0 && ev.prev_log_hash != Hash::ZERO => {
                return Err(Breach::LogLinkBroken);
            }
            None => self.first = Some((ev.prev_log_hash, env.recorded_at)),
        }
        match &mut self.links {
            Some(links) => links.push(
                env.stream_id,
                env.stream_version,
                env.position,
                &ev.prev_stream_hash,
                &ev.hash,
            ),
            None => self.check_stream(ev)?,
        }
        if let Some(expected) = self.expected_head
            && expected.position == env.position
            && expected.hash != ev.hash
        {
            return Err(Breach::HeadRewritten);
        }
        if ev.data.is_none() {
            self.redacted.record(env.position);
        }
        self.prev = Some((ev.hash, env.recorded_at));
        self.next_position += 1;
        Ok(())
    }

    /// The per-stream checks of one pass: versions and links continue the stream's last event.
    fn check_stream(&mut self, ev: &EventView<'_>) -> Result<(), Breach> {
        let env = &ev.envelope;
        let key = self.streams.key(env.stream_id);
        // One probe whether the stream is new or not (most are new: a city has 1.4 events per
        // stream).
        match self.streams.spans.entry(key) {
            Entry::Occupied(mut span) => {
                let span = span.get_mut();
                if env.stream_version != span.next_version {
                    return Err(Breach::StreamVersionGap {
                        stream: env.stream_id.to_owned(),
                        expected: span.next_version,
                        found: env.stream_version,
                    });
                }
                if ev.prev_stream_hash != span.last_hash {
                    return Err(Breach::StreamLinkBroken);
                }
                span.next_version += 1;
                span.last_hash = ev.hash;
            }
            Entry::Vacant(vacant) => {
                // From position 0, a stream seen for the first time must start at version 0;
                // in a later segment it may continue a stream of an earlier one (see `join`).
                if self.start == 0 || self.streams_known {
                    check_stream_start(env.stream_id, env.stream_version, ev.prev_stream_hash)?;
                } else if ev.prev_stream_hash != Hash::ZERO {
                    self.streams
                        .continued
                        .insert(vacant.key().clone(), ev.prev_stream_hash);
                }
                vacant.insert(StreamSpan {
                    first_position: env.position,
                    first_version: env.stream_version,
                    next_version: env.stream_version + 1,
                    last_hash: ev.hash,
                });
            }
        }
        Ok(())
    }

    /// Joins the segment that follows this one. Both must have been fed every event of their
    /// range; `next` must start where this one ended.
    pub fn join(mut self, mut next: LogVerifier) -> LogVerifier {
        if self.has_failed() {
            return self;
        }
        let next_links = next.links.take();
        self.misjoined |= next.misjoined;
        // Each finding with its rank among the checks one pass makes on one event: what `next`
        // found on its own first event by itself (position, own hashes) comes before the seam's
        // checks (log link, time, then streams), and those before the rest (the head).
        let mut findings: Vec<(Corruption, u8)> = next
            .corruption
            .iter()
            .map(|c| {
                let rank = match c.breach {
                    Breach::PositionGap { .. } | Breach::DataChanged | Breach::HashMismatch => 0,
                    _ => 2,
                };
                (c.clone(), rank)
            })
            .collect();
        let from_next = findings.len();
        let mut breach_at = |position, breach| findings.push((Corruption { position, breach }, 1));
        if next.start != self.next_position {
            // Named at the position found, as one pass names it (`check_inner`): the segment's
            // first event sits at `next.start` (any other position is its own breach there).
            breach_at(
                next.start,
                Breach::PositionGap {
                    expected: self.next_position,
                    found: next.start,
                },
            );
        }
        if let Some((first_prev, first_time)) = next.first {
            let (prev_hash, prev_time) = self.prev.unwrap_or((Hash::ZERO, i64::MIN));
            if first_prev != prev_hash {
                breach_at(next.start, Breach::LogLinkBroken);
            } else if first_time < prev_time {
                breach_at(next.start, Breach::TimeWentBackwards);
            }
        }
        // Keys of `next` spelled in this table (categories are numbered per table).
        let adopted: Vec<(StreamKey, &StreamKey, &StreamSpan)> = next
            .streams
            .spans
            .iter()
            .map(|(key, span)| (self.streams.adopt(&next.streams, key), key, span))
            .collect();
        for (key, next_key, span) in &adopted {
            let first_prev_hash = next.streams.first_prev_hash(next_key);
            let continued = match self.streams.spans.get(key) {
                Some(before) => {
                    if span.first_version != before.next_version {
                        Err(Breach::StreamVersionGap {
                            stream: self.streams.name(key),
                            expected: before.next_version,
                            found: span.first_version,
                        })
                    } else if first_prev_hash != before.last_hash {
                        Err(Breach::StreamLinkBroken)
                    } else {
                        Ok(())
                    }
                }
                None if self.start == 0 => {
                    check_stream_start(&self.streams.name(key), span.first_version, first_prev_hash)
                }
                None => Ok(()),
            };
            if let Err(breach) = continued {
                breach_at(span.first_position, breach);
            }
        }
        // The links of `next` follow this segment's in every partition — unless the seam broke:
        // one pass stops there, before any event of `next`. (With links set aside, the only
        // seam findings are those of positions, log links and times.)
        match (&mut self.links, next_links) {
            (Some(links), Some(more)) if findings.len() == from_next => links.append(more),
            (Some(_), Some(_)) | (None, None) => {}
            _ => self.misjoined = true,
        }
        if let Some((first, _)) = findings
            .into_iter()
            .min_by_key(|(c, rank)| (c.position, *rank))
        {
            self.corruption = Some(first);
            return self;
        }
        if next.unreadable.is_some() {
            self.unreadable = next.unreadable;
            return self;
        }
        for (key, next_key, span) in adopted {
            match self.streams.spans.get_mut(&key) {
                Some(before) => {
                    before.next_version = span.next_version;
                    before.last_hash = span.last_hash;
                }
                None => {
                    // A stream this segment did not see: it keeps its opening link for a
                    // join with a segment further back.
                    let first_prev_hash = next.streams.first_prev_hash(next_key);
                    if first_prev_hash != Hash::ZERO {
                        self.streams.continued.insert(key.clone(), first_prev_hash);
                    }
                    self.streams.spans.insert(key, *span);
                }
            }
        }
        if self.first.is_none() {
            self.first = next.first;
        }
        if next.prev.is_some() {
            self.prev = next.prev;
        }
        self.redacted.extend(&next.redacted);
        self.next_position = next.next_position;
        self
    }

    /// Ends the run, checking the stream links set aside if there are any
    /// ([`LogVerifier::bounded`]): `Err` when they cannot be read back (a temporary file), never
    /// for a finding about the log.
    ///
    /// A stream breach found among the links is one pass's first breach: links are set aside
    /// exactly for the events one pass makes its stream checks on — those that passed the
    /// checks before them (position, own hashes, log link, time), in the order one pass meets
    /// them, up to where the position pass stopped (at a head check that failed, after the
    /// link was set aside, as one pass checks the head after the streams). So every link
    /// comes before the position pass's own breach, in increasing positions. The report is
    /// then one pass's: events up to the breach, the head just before it, the streams seen
    /// below it.
    pub fn try_finish(mut self) -> Result<VerifyReport, LogError> {
        if self.misjoined {
            return Err(LogError::Storage(
                "segments verified with and without stream links set aside were joined".into(),
            ));
        }
        let unreadable = self.unreadable.take();
        let Some(links) = self.links.take() else {
            return match unreadable {
                Some((position, reason)) => Err(LogError::Corrupted { position, reason }),
                None => Ok(self.finish()),
            };
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let unread = |e: std::io::Error| {
            LogError::Storage(format!("cannot read back the stream links set aside: {e}").into())
        };
        let start = self.start;
        let found = links.check(start, u64::MAX, threads).map_err(unread)?;
        let mut positions = self.finish();
        let Some(breach) = found.breach else {
            if let Some((position, reason)) = unreadable {
                return Err(LogError::Corrupted { position, reason });
            }
            return Ok(VerifyReport {
                streams: found.streams,
                ..positions
            });
        };
        // What one pass had seen when it stopped there: a second look below the breach.
        let below = links
            .check(start, breach.position, threads)
            .map_err(unread)?;
        let head = breach
            .position
            .checked_sub(1)
            .filter(|&p| p >= start)
            .and_then(|position| {
                below
                    .hash_before_limit
                    .map(|hash| LogHead { position, hash })
            });
        positions.redacted.truncate_at(breach.position);
        Ok(VerifyReport {
            events: breach.position - start,
            streams: below.streams,
            head,
            corruption: Some(breach),
            redacted: positions.redacted,
        })
    }

    /// Ends the run. For a verifier that may have set stream links aside
    /// ([`LogVerifier::bounded`]) use [`LogVerifier::try_finish`]: here they are not checked.
    pub fn finish(self) -> VerifyReport {
        let expected_head = self.expected_head;
        let head = self.prev.map(|(hash, _)| LogHead {
            position: self.next_position - 1,
            hash,
        });
        let corruption = self.corruption.or_else(|| {
            let expected = expected_head?;
            match head {
                Some(h) if h.position >= expected.position => None,
                _ => Some(Corruption {
                    position: expected.position,
                    breach: Breach::Truncated,
                }),
            }
        });
        VerifyReport {
            events: self.next_position - self.start,
            streams: self.streams.spans.len() as u64,
            head,
            corruption,
            redacted: self.redacted,
        }
    }
}

/// Events a store's verifying thread hashes together ([`LogVerifier::check_batch`],
/// [`LogVerifier::check_views`]): a multiple of the sixteen AVX-512 and eight AVX2 lanes,
/// small enough to stay in the L1 and L2 caches.
pub const VERIFY_BATCH: usize = 64;

/// Owned copies of events as the verifier reads them, so that rows borrowed one at a time from
/// a database cursor can be hashed together ([`LogVerifier::check_batch`]). Each envelope is
/// kept as the bytes its hash covers (`encode`): copied once, and hashed from there.
#[derive(Default)]
pub struct EventBatch {
    /// The envelopes, encoded; an event's metadata is read back from its encoding.
    encoded: Vec<u8>,
    data: Vec<u8>,
    /// The text fields, kept as text so that reading them back checks no UTF-8 again.
    text: String,
    events: Vec<BatchedEvent>,
}

struct BatchedEvent {
    position: u64,
    stream_id: std::ops::Range<usize>,
    stream_version: u64,
    event_id: Uuid,
    event_type: std::ops::Range<usize>,
    schema_version: u32,
    recorded_at: i64,
    encoded: std::ops::Range<usize>,
    metadata: std::ops::Range<usize>,
    data: Option<std::ops::Range<usize>>,
    data_hash: Hash,
    prev_stream_hash: Hash,
    prev_log_hash: Hash,
    hash: Hash,
}

impl EventBatch {
    pub fn push(&mut self, ev: &EventView<'_>) {
        let text = &mut self.text;
        let mut keep_text = |t: &str| {
            let start = text.len();
            text.push_str(t);
            start..text.len()
        };
        let env = &ev.envelope;
        let (stream_id, event_type) = (keep_text(env.stream_id), keep_text(env.event_type));
        let start = self.encoded.len();
        encode(
            &mut self.encoded,
            env,
            &ev.data_hash,
            &ev.prev_stream_hash,
            &ev.prev_log_hash,
        );
        let end = self.encoded.len();
        // The encoding ends with the metadata and then three hashes.
        let metadata_end = end - 3 * 32;
        let metadata = metadata_end - env.metadata.len()..metadata_end;
        let data = ev.data.map(|bytes| {
            let start = self.data.len();
            self.data.extend_from_slice(bytes);
            start..self.data.len()
        });
        self.events.push(BatchedEvent {
            position: env.position,
            stream_id,
            stream_version: env.stream_version,
            event_id: env.event_id,
            event_type,
            schema_version: env.schema_version,
            recorded_at: env.recorded_at,
            encoded: start..end,
            metadata,
            data,
            data_hash: ev.data_hash,
            prev_stream_hash: ev.prev_stream_hash,
            prev_log_hash: ev.prev_log_hash,
            hash: ev.hash,
        });
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn clear(&mut self) {
        self.encoded.clear();
        self.data.clear();
        self.text.clear();
        self.events.clear();
    }

    fn views(&self) -> Vec<EventView<'_>> {
        // The ranges were cut from `text` by `push`, at the ends of whole `&str`s.
        let text = |r: &std::ops::Range<usize>| self.text.get(r.clone()).unwrap_or("");
        self.events
            .iter()
            .map(|e| EventView {
                envelope: Envelope {
                    position: e.position,
                    stream_id: text(&e.stream_id),
                    stream_version: e.stream_version,
                    event_id: e.event_id,
                    event_type: text(&e.event_type),
                    schema_version: e.schema_version,
                    recorded_at: e.recorded_at,
                    metadata: &self.encoded[e.metadata.clone()],
                },
                data: e.data.clone().map(|r| &self.data[r]),
                data_hash: e.data_hash,
                prev_stream_hash: e.prev_stream_hash,
                prev_log_hash: e.prev_log_hash,
                hash: e.hash,
            })
            .collect()
    }
}

pub(super) fn check_stream_start(
    stream: &str,
    version: u64,
    prev_stream_hash: Hash,
) -> Result<(), Breach> {
    if version != 0 {
        return Err(Breach::StreamVersionGap {
            stream: stream.to_owned(),
            expected: 0,
            found: version,
        });
    }
    if prev_stream_hash != Hash::ZERO {
        return Err(Breach::StreamLinkBroken);
    }
    Ok(())
}

/// Verifies one stream fed in version order. It checks each event's own hashes and the stream's
/// links; the log links need the whole log ([`LogVerifier`]).
pub struct StreamVerifier {
    next_version: u64,
    last: Hash,
    last_position: Option<u64>,
    corruption: Option<Corruption>,
    redacted: Redactions,
}

impl Default for StreamVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamVerifier {
    pub fn new() -> Self {
        StreamVerifier {
            next_version: 0,
            last: Hash::ZERO,
            last_position: None,
            corruption: None,
            redacted: Redactions::default(),
        }
    }

    pub fn check(&mut self, ev: &EventView<'_>) -> Result<(), Corruption> {
        if let Some(c) = &self.corruption {
            return Err(c.clone());
        }
        let env = &ev.envelope;
        let result = (|| {
            if env.stream_version != self.next_version {
                return Err(Breach::StreamVersionGap {
                    stream: env.stream_id.to_owned(),
                    expected: self.next_version,
                    found: env.stream_version,
                });
            }
            if self.last_position.is_some_and(|p| env.position <= p) {
                return Err(Breach::LogLinkBroken);
            }
            check_own_hashes(ev)?;
            if ev.prev_stream_hash != self.last {
                return Err(Breach::StreamLinkBroken);
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                if ev.data.is_none() {
                    self.redacted.record(env.position);
                }
                self.next_version += 1;
                self.last = ev.hash;
                self.last_position = Some(env.position);
                Ok(())
            }
            Err(breach) => {
                let c = Corruption {
                    position: env.position,
                    breach,
                };
                self.corruption = Some(c.clone());
                Err(c)
            }
        }
    }

    pub fn finish(self) -> VerifyReport {
        VerifyReport {
            events: self.next_version,
            streams: u64::from(self.next_version > 0),
            head: self.last_position.map(|position| LogHead {
                position,
                hash: self.last,
            }),
            corruption: self.corruption,
            redacted: self.redacted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainLink, REDACTIONS_LISTED};
    use crate::{RecordedEvent, StreamId};

    /// `n` events over three streams, chained; those at `redacted` have their data blanked as
    /// a redaction does (the digest stays).
    fn history(n: u64, redacted: &[u64]) -> Vec<RecordedEvent> {
        let mut streams: HashMap<u64, (u64, Hash)> = HashMap::new();
        let mut prev_log = Hash::ZERO;
        let mut out = Vec::new();
        for position in 0..n {
            let s = position % 3;
            let stream_id = StreamId::new("citizen", Uuid::from_u128(u128::from(s) + 1)).unwrap();
            let (version, prev_stream) = streams.get(&s).copied().unwrap_or((0, Hash::ZERO));
            let data = format!("{{\"i\":{position}}}").into_bytes();
            let metadata = b"{}".to_vec();
            let env = Envelope {
                position,
                stream_id: stream_id.as_str(),
                stream_version: version,
                event_id: Uuid::from_u128(1000 + u128::from(position)),
                event_type: "Test",
                schema_version: 1,
                recorded_at: 1_700_000_000_000_000 + position as i64,
                metadata: &metadata,
            };
            let link = ChainLink::compute(&env, &data, prev_stream, prev_log);
            out.push(RecordedEvent {
                position,
                stream_id: stream_id.clone(),
                stream_version: version,
                event_id: env.event_id,
                event_type: "Test".into(),
                schema_version: 1,
                recorded_at: env.recorded_at,
                data: if redacted.contains(&position) {
                    Vec::new()
                } else {
                    data
                },
                metadata,
                data_hash: link.data_hash,
                prev_stream_hash: link.prev_stream_hash,
                prev_log_hash: link.prev_log_hash,
                hash: link.hash,
            });
            streams.insert(s, (version + 1, link.hash));
            prev_log = link.hash;
        }
        out
    }

    fn one_pass(events: &[RecordedEvent]) -> VerifyReport {
        let mut v = LogVerifier::new(None);
        for e in events {
            if v.check(&EventView::from(e)).is_err() {
                break;
            }
        }
        v.finish()
    }

    /// As the stores cut a log: consecutive *position* ranges `[from, to)`, each verifier
    /// starting at `from` and fed the rows whose positions fall in its range.
    fn by_position_ranges(events: &[RecordedEvent], cuts: &[u64]) -> VerifyReport {
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(u64::MAX);
        let mut joined: Option<LogVerifier> = None;
        for w in bounds.windows(2) {
            let mut segment = LogVerifier::segment(w[0], None);
            for e in events.iter().filter(|e| (w[0]..w[1]).contains(&e.position)) {
                if segment.check(&EventView::from(e)).is_err() {
                    break;
                }
            }
            joined = Some(match joined {
                None => segment,
                Some(before) => before.join(segment),
            });
        }
        joined.expect("one segment at least").finish()
    }

    /// A deleted event is named where one pass names it (the position found), wherever the
    /// stores' ranges cut the log — also when the deleted event was the last of a range, which
    /// only the seam between two ranges sees. (Before, the seam named the position expected.)
    #[test]
    fn a_gap_at_a_seam_names_the_position_found_as_one_pass_does() {
        // (Deleting the last event is a truncation, which only a recorded head shows.)
        for deleted in 0..9u64 {
            let mut events = history(10, &[]);
            events.retain(|e| e.position != deleted);
            let expected = one_pass(&events).corruption;
            assert_eq!(
                expected,
                Some(Corruption {
                    position: deleted + 1,
                    breach: Breach::PositionGap {
                        expected: deleted,
                        found: deleted + 1
                    }
                }),
                "one pass, event {deleted} deleted"
            );
            for cut in 1..10u64 {
                let report = by_position_ranges(&events, &[cut]);
                assert_eq!(
                    report.corruption, expected,
                    "cut at {cut}, {deleted} deleted"
                );
            }
        }
    }

    /// Redacted events pass (the digest is chained, not the data) and are reported, the same
    /// by one pass, by segments joined, with the stream links set aside, and per stream.
    #[test]
    fn redacted_events_are_reported_by_every_verifier() {
        let redacted = [1, 4, 5, 9];
        let events = history(12, &redacted);
        let report = one_pass(&events);
        assert!(report.is_intact(), "{report:?}");
        let want = Redactions {
            count: 4,
            positions: redacted.to_vec(),
        };
        assert_eq!(report.redacted, want);
        for cut in 1..12 {
            assert_eq!(by_position_ranges(&events, &[cut]), report, "cut at {cut}");
        }
        let mut aside = LogVerifier::partitioned(0, None, 2, 64);
        for e in &events {
            aside.check(&EventView::from(e)).unwrap();
        }
        assert_eq!(aside.try_finish().unwrap(), report);
        // Stream 1 (positions 1, 4, 7, 10) has two of them.
        let mut stream = StreamVerifier::new();
        for e in events.iter().filter(|e| e.position % 3 == 1) {
            stream.check(&EventView::from(e)).unwrap();
        }
        assert_eq!(stream.finish().redacted.positions, vec![1, 4]);
        // A run that stops at a breach reports those before it only.
        let mut broken = events.clone();
        broken[5].metadata = b"{\"x\":1}".to_vec();
        let report = one_pass(&broken);
        assert_eq!(report.corruption.map(|c| c.position), Some(5));
        assert_eq!(report.redacted.positions, vec![1, 4]);
        assert_eq!(report.redacted.count, 2);
    }

    #[test]
    fn the_redactions_listed_are_bounded_and_the_count_exact() {
        let mut r = Redactions::default();
        let n = REDACTIONS_LISTED as u64 + 500;
        for p in 0..n {
            r.record(2 * p);
        }
        assert_eq!(r.count, n);
        assert_eq!(r.positions.len(), REDACTIONS_LISTED);
        assert_eq!(
            r.positions.last(),
            Some(&(2 * (REDACTIONS_LISTED as u64 - 1)))
        );
        let mut joined = Redactions::default();
        joined.record(0);
        joined.extend(&r);
        assert_eq!(joined.count, n + 1);
        assert_eq!(joined.positions.len(), REDACTIONS_LISTED);
        // Below a position inside the list: exact.
        let mut cut = r.clone();
        cut.truncate_at(10);
        assert_eq!((cut.count, cut.positions), (5, vec![0, 2, 4, 6, 8]));
    }

    /// Every breach's code is its serde tag: the JSON of a report and `code()` never differ.
    #[test]
    fn breach_codes_are_the_serde_tags() {
        for breach in [
            Breach::PositionGap {
                expected: 1,
                found: 2,
            },
            Breach::DataChanged,
            Breach::HashMismatch,
            Breach::LogLinkBroken,
            Breach::StreamLinkBroken,
            Breach::StreamVersionGap {
                stream: "s".into(),
                expected: 0,
                found: 1,
            },
            Breach::TimeWentBackwards,
            Breach::Truncated,
            Breach::HeadRewritten,
            Breach::DerivedTableMismatch { table: "t".into() },
        ] {
            let json = serde_json::to_value(&breach).unwrap();
            assert_eq!(json["kind"], breach.code(), "{breach:?}");
        }
    }

    #[test]
    fn stream_keys_spell_back_exactly_what_was_read() {
        let mut table = StreamTable::default();
        for id in [
            "citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            "key-citizen-pin-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            // Not the canonical spelling: kept as text, still spelled back.
            "citizen-0193E3A4-7C1B-7D2E-8F00-123456789ABC",
            "citizen-0193e3a47c1b7d2e8f00123456789abc",
            "-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            "citizen-0193e3a4-7c1b-7d2e-8f00_123456789abc",
            "citizen",
            "",
        ] {
            let key = table.key(id);
            assert_eq!(table.name(&key), id);
            assert!(table.key(id) == key, "{id} keyed twice differently");
        }
        let a = table.key("citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc");
        let b = table.key("business-0193e3a4-7c1b-7d2e-8f00-123456789abc");
        let c = table.key("citizen-0193e3a4-7c1b-7d2e-8f00-123456789abd");
        assert!(a != b && a != c && b != c);
        assert!(matches!(a, StreamKey::Split { .. }));
        assert!(matches!(
            table.key("citizen-0193E3A4-7C1B-7D2E-8F00-123456789ABC"),
            StreamKey::Other(_)
        ));
    }

    /// What `split_stream_id` must answer: the id ends in `-` and a UUID spelled exactly as
    /// `Uuid::hyphenated` spells it (lowercase), after a non-empty category.
    fn split_by_the_uuid_crate(id: &str) -> Option<(&str, [u8; 16])> {
        let cut = id.len().checked_sub(37).filter(|&c| c > 0)?;
        let (category, tail) = (id.get(..cut)?, id.get(cut..)?);
        let uuid = Uuid::try_parse(tail.strip_prefix('-')?).ok()?;
        (uuid.hyphenated().to_string() == tail[1..]).then(|| (category, *uuid.as_bytes()))
    }

    proptest::proptest! {
        #[test]
        fn splitting_a_stream_id_agrees_with_the_uuid_crate(
            category in "[a-z-]{0,12}",
            uuid in proptest::array::uniform16(proptest::prelude::any::<u8>()),
            // Where to damage the id, and with which byte (`None`: leave it whole).
            damage in proptest::option::of((
                0usize..50,
                proptest::prop_oneof![
                    proptest::sample::select(b"09afgAF-_/:`@".to_vec()),
                    proptest::prelude::any::<u8>(),
                ],
            )),
        ) {
            let mut id = format!("{category}-{}", Uuid::from_bytes(uuid).hyphenated()).into_bytes();
            if let Some((at, byte)) = damage {
                let at = at % id.len();
                id[at] = byte;
            }
            // Damage can leave bytes that are not text; those ids cannot reach the verifier.
            if let Ok(id) = std::str::from_utf8(&id) {
                proptest::prop_assert_eq!(split_stream_id(id), split_by_the_uuid_crate(id));
            }
        }
    }
}
