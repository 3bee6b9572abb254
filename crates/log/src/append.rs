//! What an append asks for and what it returns.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::LogError;
use crate::event::{Json, NewEvent};
use crate::stream::StreamId;

/// The optimistic-concurrency condition an append sets on one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No condition.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have this (0-based) version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose current version is `actual` satisfies this condition.
    pub fn accepts(self, actual: Option<u64>) -> bool {
        match (self, actual) {
            (ExpectedVersion::Any, _) => true,
            (ExpectedVersion::NoStream, None) => true,
            (ExpectedVersion::StreamExists, Some(_)) => true,
            (ExpectedVersion::Exact(e), Some(a)) => e == a,
            _ => false,
        }
    }

    /// The condition that a stream currently at `version` satisfies exactly.
    pub fn from_current(version: Option<u64>) -> Self {
        match version {
            Some(v) => ExpectedVersion::Exact(v),
            None => ExpectedVersion::NoStream,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("stream exists"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Events to append to one stream, under one condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAppend {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        StreamAppend {
            stream,
            expected,
            events,
        }
    }
}

/// Where one stream's events landed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamWritten {
    pub stream: StreamId,
    /// Version of the first event written; `None` when no event was given for this stream
    /// (a pure version check).
    pub first_version: Option<u64>,
    /// The stream's version after the append (`None`: still no stream).
    pub current_version: Option<u64>,
}

/// The result of an acknowledged append: once returned, the events are durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Per stream, in the order of the request.
    pub streams: Vec<StreamWritten>,
    /// Global positions of the first and last event written; `None` for an append of no events.
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// True when every event id was already recorded and nothing was written: an idempotent
    /// re-send, answered with the original positions.
    pub already_recorded: bool,
}

/// Everything about an append request that can be checked without the log's state: at least
/// one stream, no stream named twice, no event id twice, and every event valid on its own
/// ([`NewEvent::validate`]). Backends call it before writing anything.
pub fn validate_append(appends: &[StreamAppend], max_event_size: usize) -> Result<(), LogError> {
    check_append(appends, max_event_size, Json::Parse)
}

/// [`validate_append`] for an append whose data and metadata `serde_json` wrote in this process
/// from typed values (the registry's plan of a bulk import): the same checks, but the JSON's
/// grammar and encoding are not read again — `serde_json`'s output always has them (debug
/// builds check anyway). Parsing them again was 13 % of a bulk import's busiest thread
/// (docs/benchmarks.md). Anything else goes through [`validate_append`].
pub fn validate_serialised_append(
    appends: &[StreamAppend],
    max_event_size: usize,
) -> Result<(), LogError> {
    check_append(appends, max_event_size, Json::Serialised)
}

/// The values an append named so far. A command's append names a few streams and events:
/// looked up in a list, without the hashing and allocation of a `HashSet` (five sixths of the
/// instructions of these checks in a bulk import, docs/benchmarks.md); past [`Seen::LIST`]
/// values, in a set, so a large append stays linear.
enum Seen<T> {
    List(Vec<T>),
    Set(std::collections::HashSet<T>),
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen::List(Vec::new())
    }
}

impl<T: Eq + std::hash::Hash> Seen<T> {
    const LIST: usize = 16;

    /// Whether `value` is new (`HashSet::insert`).
    fn insert(&mut self, value: T) -> bool {
        match self {
            Seen::List(list) if list.contains(&value) => false,
            Seen::List(list) if list.len() < Self::LIST => {
                list.push(value);
                true
            }
            Seen::List(list) => {
                let mut set: std::collections::HashSet<T> = list.drain(..).collect();
                set.insert(value);
                *self = Seen::Set(set);
                true
            }
            Seen::Set(set) => set.insert(value),
        }
    }
}

fn check_append(
    appends: &[StreamAppend],
    max_event_size: usize,
    json: Json,
) -> Result<(), LogError> {
    if appends.is_empty() {
        return Err(LogError::InvalidAppend {
            reason: "no stream named".into(),
        });
    }
    let mut streams = Seen::default();
    let mut ids = Seen::default();
    for append in appends {
        if !streams.insert(append.stream.as_str()) {
            return Err(LogError::InvalidAppend {
                reason: format!("stream {} is named twice", append.stream),
            });
        }
        for event in &append.events {
            event.check(max_event_size, json)?;
            if !ids.insert(event.event_id) {
                return Err(LogError::InvalidAppend {
                    reason: format!("event id {} appears twice", event.event_id),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_finds_every_repeat_in_the_list_and_in_the_set() {
        for n in [
            1,
            Seen::<u32>::LIST - 1,
            Seen::<u32>::LIST,
            Seen::<u32>::LIST + 1,
            200,
        ] {
            let mut seen = Seen::default();
            for i in 0..n {
                assert!(seen.insert(i), "{i} of {n} is new");
            }
            for i in 0..n {
                assert!(!seen.insert(i), "{i} of {n} was seen");
            }
            assert!(seen.insert(n), "{n} is new");
        }
    }
}
