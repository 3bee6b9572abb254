//! Lines of untrusted input (`citydb import` files, exports read by `verify --file`), read
//! with a bound on memory.
//!
//! `BufRead::read_until` keeps a line in memory however long it is: one 10 GB line without a
//! newline would be read whole before anything could refuse it. [`next_line`] keeps at most
//! `max` bytes of a line; the rest of a longer line is read and dropped, and the caller
//! reports the line as too long and goes on with the next one.

use std::io::{self, BufRead};

/// What [`next_line`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line of this many bytes (newline included) is in the buffer.
    Fits(usize),
    /// A line of this many bytes was longer than the bound; the buffer is empty.
    TooLong(usize),
}

/// Reads the next line (up to and including `\n`, or to the end of input) into `buf`,
/// keeping at most `max` bytes of it. `None` at the end of input.
pub fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Line>> {
    buf.clear();
    let mut total = 0usize;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        // `memchr`, not a byte-by-byte `position`: that scan was a sixth of the import's parsing
        // thread (docs/benchmarks.md, 2026-12-04).
        let (take, ends) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
                buf.shrink_to(max.min(1 << 16));
            } else {
                buf.extend_from_slice(&available[..take]);
            }
        }
        reader.consume(take);
        total = total.saturating_add(take);
        if ends {
            break;
        }
    }
    Ok(match (total, too_long) {
        (0, _) => None,
        (n, false) => Some(Line::Fits(n)),
        (n, true) => Some(Line::TooLong(n)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        // A tiny buffer, so that lines span several fills.
        let mut reader = io::BufReader::with_capacity(3, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = next_line(&mut reader, &mut buf, max).unwrap() {
            out.push((line, buf.clone()));
        }
        out
    }

    #[test]
    fn keeps_lines_up_to_the_bound_and_skips_longer_ones_whole() {
        let got = all(b"ab\nabcdefgh\nabcd\nxyz", 4);
        assert_eq!(
            got,
            vec![
                (Line::Fits(3), b"ab\n".to_vec()),
                (Line::TooLong(9), vec![]),
                (Line::TooLong(5), vec![]),
                (Line::Fits(3), b"xyz".to_vec()),
            ]
        );
        assert_eq!(all(b"", 4), vec![]);
        assert_eq!(all(b"\n", 4), vec![(Line::Fits(1), b"\n".to_vec())]);
    }

    #[test]
    fn a_huge_line_never_grows_the_buffer_past_the_bound() {
        let huge = vec![b'x'; 1 << 20];
        let mut reader = io::BufReader::with_capacity(1 << 12, &huge[..]);
        let mut buf = Vec::new();
        let line = next_line(&mut reader, &mut buf, 1 << 10).unwrap();
        assert_eq!(line, Some(Line::TooLong(1 << 20)));
        assert!(buf.capacity() <= 1 << 12, "capacity {}", buf.capacity());
    }
}
