//! Redaction of one event's payload ([`EventLog::redact`](crate::EventLog::redact)): the one
//! change a log ever makes to a recorded event.
//!
//! A court or legal order can require that a person's data be erased. The chain covers the
//! *digest* of the data (`data_hash`), never the data itself, so the stored payload can be
//! blanked (NULL, read back as empty data) while every hash, link and proof stays valid; the
//! event itself, its type, metadata and place in the chain stay, and `verify` lists the redacted
//! position. Every backend checks the same way, here, what its own storage holds at the
//! position before blanking it.

use crate::chain::Hash;
use crate::error::LogError;

/// What [`EventLog::redact`](crate::EventLog::redact) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redacted {
    /// The redacted event's position.
    pub position: u64,
    /// Its event hash, unchanged.
    pub hash: Hash,
    /// The payload was already blanked before this call: nothing was written (a redaction
    /// re-run after a crash, or by a second node, is not an error).
    pub already_redacted: bool,
}

/// Checks a redaction of `position` against what the store holds there — `found` is the stored
/// event hash and whether its data is already absent, `None` when no event is there — before a
/// backend blanks it: a missing position is [`LogError::NoSuchPosition`], another hash than the
/// one the caller means is [`LogError::RedactionRefused`] (the caller named the wrong event, or
/// the log is not the one it read), and nothing is written in either case.
pub fn check_redaction(
    position: u64,
    expected_event_hash: Hash,
    found: Option<(Hash, bool)>,
) -> Result<Redacted, LogError> {
    let Some((hash, already_redacted)) = found else {
        return Err(LogError::NoSuchPosition { position });
    };
    if hash != expected_event_hash {
        return Err(LogError::RedactionRefused {
            position,
            expected: expected_event_hash,
            found: hash,
        });
    }
    Ok(Redacted {
        position,
        hash,
        already_redacted,
    })
}
