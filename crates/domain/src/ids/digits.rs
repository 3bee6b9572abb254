//! Identifiers kept as digit values (0..=9), written as text.

use std::fmt;

/// Writes `digits` (each 0..=9) as one string: identifiers are formatted several times a read
/// (response, access log, stored state), and a `write!` per digit cost ~3,000 instructions a
/// twelve-digit PIN.
pub(crate) fn write_digits<const N: usize>(
    f: &mut fmt::Formatter<'_>,
    digits: &[u8; N],
) -> fmt::Result {
    let mut text = [0u8; N];
    for (c, d) in text.iter_mut().zip(digits) {
        // Every constructor keeps each digit in 0..=9; a larger one would not be ASCII.
        *c = b'0'.wrapping_add(*d);
    }
    f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}
