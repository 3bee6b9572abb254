//! Stream links set aside: how a position pass over a log with more streams than fit in memory
//! checks them anyway, reading the log once.
//!
//! The per-stream checks of one pass ([`super::LogVerifier`]) need, for every stream, its last
//! version and hash — about a hundred bytes a stream, 1.6 GB for a city's sixteen million. A
//! verifier made with [`super::LogVerifier::bounded`] keeps none of that: each event's link
//! (stream id, version, position, both stream hashes) is appended to one of `n` partitions,
//! chosen by a hash of the stream id, so that every event of a stream lands in the same
//! partition, **in position order** (a segment appends in position order; joined segments
//! append theirs after the earlier ones'). A partition is held in memory up to a block and
//! written out to an unnamed temporary file past that. At the end, each partition is read back
//! on its own and checked exactly as one pass checks streams, with a table of that partition's
//! streams only: memory is the log's streams / `n`, per checking thread.
//!
//! Why the findings are those of one pass: one pass checks an event's stream links against
//! the earlier events of the same stream only, in position order — which is what a partition
//! holds — and it stops at the first breach of any kind. So the first stream breach over all
//! partitions, compared with the position pass's own first breach, is one pass's first breach
//! (the caller, `LogVerifier::try_finish`, compares them).

use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::hash::{BuildHasher, Hasher};

use super::verify::{StreamIdHasher, StreamSpan, StreamTable, check_stream_start};
use super::{Breach, Corruption, Hash};

/// Bytes of a link before its stream id: position, version, `prev_stream_hash`, `hash`, and
/// the stream id's length.
const FIXED: usize = 8 + 8 + 32 + 32 + 4;

/// Links of one partition written out together.
enum Block {
    /// In `files[file]` at `offset`.
    Written {
        file: usize,
        offset: u64,
        len: usize,
    },
    /// Still in memory (what a segment held when it was joined).
    Held(Vec<u8>),
}

/// Every link of a log (or of a run of joined segments), partitioned by stream.
pub(super) struct Partitions {
    /// Per partition, its blocks in position order; `pending` follows the last.
    blocks: Vec<Vec<Block>>,
    pending: Vec<Vec<u8>>,
    /// Links per partition: the size its table is made with (no rehashing while checking).
    counts: Vec<u64>,
    block_bytes: usize,
    /// Unnamed temporary files: the first this run writes to, then those of joined segments.
    files: Vec<Mutex<File>>,
    /// The file this run writes to, and its length.
    own: Option<(usize, u64)>,
    /// The first failure to write out (or a join of unlike partitions): the check reports it.
    error: Option<io::Error>,
}

/// What the check of the links found.
pub(super) struct LinkFindings {
    /// The stream breach at the lowest position below the limit, if any.
    pub breach: Option<Corruption>,
    /// Distinct streams with an event below the limit.
    pub streams: u64,
    /// The hash of the event at `limit - 1`, if it was among the links.
    pub hash_before_limit: Option<Hash>,
}

impl Partitions {
    pub(super) fn new(partitions: usize, block_bytes: usize) -> Self {
        let partitions = partitions.max(1);
        Partitions {
            blocks: (0..partitions).map(|_| Vec::new()).collect(),
            pending: (0..partitions).map(|_| Vec::new()).collect(),
            counts: vec![0; partitions],
            block_bytes: block_bytes.max(1),
            files: Vec::new(),
            own: None,
            error: None,
        }
    }

    /// Sets aside the link of the next event (in position order).
    pub(super) fn push(
        &mut self,
        stream_id: &str,
        stream_version: u64,
        position: u64,
        prev_stream_hash: &Hash,
        hash: &Hash,
    ) {
        let k = partition_of(stream_id, self.pending.len());
        self.counts[k] += 1;
        let buf = &mut self.pending[k];
        buf.extend_from_slice(&position.to_le_bytes());
        buf.extend_from_slice(&stream_version.to_le_bytes());
        buf.extend_from_slice(&prev_stream_hash.0);
        buf.extend_from_slice(&hash.0);
        // A stream id longer than 4 GiB cannot be stored: `u32` is the encoding's own limit.
        buf.extend_from_slice(&(stream_id.len() as u32).to_le_bytes());
        buf.extend_from_slice(stream_id.as_bytes());
        if buf.len() >= self.block_bytes {
            self.write_out(k);
        }
    }

    fn write_out(&mut self, k: usize) {
        if self.error.is_some() {
            self.pending[k].clear();
            return;
        }
        let (file, offset) = match self.own {
            Some(own) => own,
            None => match crate::scratch::unnamed_file("verify") {
                Ok(f) => {
                    self.files.push(Mutex::new(f));
                    (self.files.len() - 1, 0)
                }
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            },
        };
        let buf = std::mem::take(&mut self.pending[k]);
        let written = match self.files[file].get_mut() {
            Ok(f) => f.write_all(&buf),
            Err(_) => Err(io::Error::other("a verification thread panicked")),
        };
        if let Err(e) = written {
            self.error = Some(e);
            return;
        }
        self.blocks[k].push(Block::Written {
            file,
            offset,
            len: buf.len(),
        });
        self.own = Some((file, offset + buf.len() as u64));
        // The buffer is reused for the partition's next block.
        self.pending[k] = buf;
        self.pending[k].clear();
    }

    /// Appends the links of the segment that follows (made with the same number of partitions).
    pub(super) fn append(&mut self, mut next: Partitions) {
        if self.error.is_none() {
            self.error = next.error.take();
        }
        if next.blocks.len() != self.blocks.len() {
            self.error = Some(io::Error::other(
                "segments partitioned their stream links differently",
            ));
            return;
        }
        let base = self.files.len();
        self.files.append(&mut next.files);
        for (count, more) in self.counts.iter_mut().zip(&next.counts) {
            *count += more;
        }
        for (k, blocks) in next.blocks.into_iter().enumerate() {
            let held = std::mem::take(&mut self.pending[k]);
            if !held.is_empty() {
                self.blocks[k].push(Block::Held(held));
            }
            self.blocks[k].extend(blocks.into_iter().map(|b| match b {
                Block::Written { file, offset, len } => Block::Written {
                    file: file + base,
                    offset,
                    len,
                },
                held => held,
            }));
        }
        for (k, held) in next.pending.into_iter().enumerate() {
            if !held.is_empty() {
                self.blocks[k].push(Block::Held(held));
            }
        }
        // Later pushes start a file of their own: the joined ones' are not this run's to grow.
        self.own = None;
    }

    /// Checks every partition's stream links, as one pass would, up to position `limit`
    /// (exclusive). `start` is the first position of the run: from 0, a stream's first event
    /// must open it (version 0, zero link); from later, it may continue an earlier one. The
    /// partitions are checked on up to `threads` threads, one partition each at a time.
    pub(super) fn check(
        &self,
        start: u64,
        limit: u64,
        threads: usize,
    ) -> Result<LinkFindings, io::Error> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        let next = AtomicUsize::new(0);
        let partitions = self.blocks.len();
        let results: Vec<Result<LinkFindings, io::Error>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.clamp(1, partitions))
                .map(|_| {
                    scope.spawn(|| {
                        let mut found = LinkFindings {
                            breach: None,
                            streams: 0,
                            hash_before_limit: None,
                        };
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= partitions {
                                return Ok(found);
                            }
                            let one = self.check_partition(k, start, limit)?;
                            found = merge(found, one);
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(io::Error::other("a checking thread panicked")))
                })
                .collect()
        });
        let mut found = LinkFindings {
            breach: None,
            streams: 0,
            hash_before_limit: None,
        };
        for one in results {
            found = merge(found, one?);
        }
        Ok(found)
    }

    fn check_partition(&self, k: usize, start: u64, limit: u64) -> Result<LinkFindings, io::Error> {
        let mut table = StreamTable::default();
        // At most one stream per link (fewer: a city has 1.4 events per stream).
        table
            .spans
            .reserve(usize::try_from(self.counts[k]).unwrap_or(0));
        let mut scan = PartitionScan {
            table,
            start,
            limit,
            hash_before_limit: None,
            breach: None,
            done: false,
        };
        let mut bytes = Vec::new();
        for block in &self.blocks[k] {
            match block {
                Block::Held(held) => scan.links(held)?,
                Block::Written { file, offset, len } => {
                    bytes.resize(*len, 0);
                    let mut f = self.files[*file]
                        .lock()
                        .map_err(|_| io::Error::other("a checking thread panicked"))?;
                    f.seek(SeekFrom::Start(*offset))?;
                    f.read_exact(&mut bytes)?;
                    drop(f);
                    scan.links(&bytes)?;
                }
            }
            if scan.done {
                break;
            }
        }
        scan.links(&self.pending[k])?;
        Ok(LinkFindings {
            breach: scan.breach,
            streams: scan.table.spans.len() as u64,
            hash_before_limit: scan.hash_before_limit,
        })
    }
}

/// The check of one partition's links, fed block by block.
struct PartitionScan {
    table: StreamTable,
    start: u64,
    limit: u64,
    hash_before_limit: Option<Hash>,
    breach: Option<Corruption>,
    /// At the limit or at a breach: later links do not count.
    done: bool,
}

impl PartitionScan {
    fn links(&mut self, mut rest: &[u8]) -> Result<(), io::Error> {
        while !rest.is_empty() && !self.done {
            let (link, after) = Link::decode(rest)?;
            rest = after;
            if link.position >= self.limit {
                self.done = true;
                break;
            }
            if link.position.checked_add(1) == Some(self.limit) {
                self.hash_before_limit = Some(link.hash);
            }
            if let Err(breach) = check_link(&mut self.table, self.start, &link) {
                self.breach = Some(Corruption {
                    position: link.position,
                    breach,
                });
                self.done = true;
            }
        }
        Ok(())
    }
}

/// One pass's per-stream checks of one event, against its stream's earlier events.
fn check_link(table: &mut StreamTable, start: u64, link: &Link<'_>) -> Result<(), Breach> {
    let key = table.key(link.stream_id);
    match table.spans.entry(key) {
        Entry::Occupied(mut span) => {
            let span = span.get_mut();
            if link.stream_version != span.next_version {
                return Err(Breach::StreamVersionGap {
                    stream: link.stream_id.to_owned(),
                    expected: span.next_version,
                    found: link.stream_version,
                });
            }
            if link.prev_stream_hash != span.last_hash {
                return Err(Breach::StreamLinkBroken);
            }
            span.next_version += 1;
            span.last_hash = link.hash;
        }
        Entry::Vacant(vacant) => {
            if start == 0 {
                check_stream_start(link.stream_id, link.stream_version, link.prev_stream_hash)?;
            }
            vacant.insert(StreamSpan {
                first_position: link.position,
                first_version: link.stream_version,
                next_version: link.stream_version + 1,
                last_hash: link.hash,
            });
        }
    }
    Ok(())
}

/// The findings of two sets of partitions: the lower breach, streams added up.
fn merge(a: LinkFindings, b: LinkFindings) -> LinkFindings {
    let breach = match (a.breach, b.breach) {
        (Some(x), Some(y)) => Some(if y.position < x.position { y } else { x }),
        (x, y) => x.or(y),
    };
    LinkFindings {
        breach,
        streams: a.streams + b.streams,
        hash_before_limit: a.hash_before_limit.or(b.hash_before_limit),
    }
}

/// A link as set aside by [`Partitions::push`].
struct Link<'a> {
    position: u64,
    stream_version: u64,
    prev_stream_hash: Hash,
    hash: Hash,
    stream_id: &'a str,
}

impl<'a> Link<'a> {
    fn decode(bytes: &'a [u8]) -> Result<(Link<'a>, &'a [u8]), io::Error> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "a set-aside link is cut short");
        let fixed = bytes.get(..FIXED).ok_or_else(bad)?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let hash_at = |i: usize| {
            let mut h = [0u8; 32];
            h.copy_from_slice(&fixed[i..i + 32]);
            Hash(h)
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&fixed[80..84]);
        let end = FIXED + u32::from_le_bytes(len) as usize;
        let id = bytes.get(FIXED..end).ok_or_else(bad)?;
        // Written from a `&str` by `push`.
        let stream_id = simdutf8::basic::from_utf8(id).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "a set-aside id is not UTF-8")
        })?;
        Ok((
            Link {
                position: u64_at(0),
                stream_version: u64_at(8),
                prev_stream_hash: hash_at(16),
                hash: hash_at(48),
                stream_id,
            },
            &bytes[end..],
        ))
    }
}

/// The partition of a stream, from its id alone, so that every event of it goes to one place.
/// A stream id ends in a UUID whose last twelve digits are random (v4 and v7 alike): its last
/// sixteen bytes, mixed by one multiplication, spread streams evenly for a fraction of what
/// hashing the whole id costs. Shorter ids (only a foreign or tampered log has them) are
/// hashed whole.
fn partition_of(stream_id: &str, partitions: usize) -> usize {
    let bytes = stream_id.as_bytes();
    let mixed = match bytes.len().checked_sub(16) {
        Some(at) => {
            let mut tail = [0u8; 16];
            tail.copy_from_slice(&bytes[at..]);
            let tail = u128::from_le_bytes(tail);
            let folded = (tail as u64) ^ ((tail >> 64) as u64).rotate_left(29);
            // The high half of a 64×64-bit product depends on every bit of `folded`.
            ((u128::from(folded) * 0x9e37_79b9_7f4a_7c15) >> 64) as u64
        }
        None => {
            let mut h = StreamIdHasher.build_hasher();
            h.write(bytes);
            h.finish()
        }
    };
    (mixed % partitions as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_read_back_in_position_order_across_blocks_files_and_joins() {
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        // Blocks of one link: every push but the last of a partition is written out.
        let mut first = Partitions::new(3, 1);
        first.push("s-1", 0, 0, &Hash::ZERO, &a);
        first.push("s-1", 1, 1, &a, &b);
        let mut second = Partitions::new(3, 1 << 20);
        second.push("s-1", 2, 2, &b, &a);
        // Version 4 where 3 is due, at position 3.
        second.push("s-1", 4, 3, &a, &b);
        first.append(second);
        let found = first.check(0, u64::MAX, 2).unwrap();
        assert_eq!(
            found.breach,
            Some(Corruption {
                position: 3,
                breach: Breach::StreamVersionGap {
                    stream: "s-1".into(),
                    expected: 3,
                    found: 4
                }
            })
        );
        // Below the breach: intact, and the hash of the event before the limit is known.
        let below = first.check(0, 3, 1).unwrap();
        assert_eq!(below.breach, None);
        assert_eq!(below.streams, 1);
        assert_eq!(below.hash_before_limit, Some(a));
    }

    #[test]
    fn unlike_partitions_are_an_error_not_a_finding() {
        let mut first = Partitions::new(2, 64);
        first.append(Partitions::new(3, 64));
        assert!(first.check(0, u64::MAX, 1).is_err());
    }
}
