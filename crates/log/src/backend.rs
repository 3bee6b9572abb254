//! Plumbing shared by backends that funnel every write through one writer task: the request
//! it receives and what it wrote. Both the SQLite and the PostgreSQL writers use these, so
//! appends and verbatim copies are queued, grouped and answered the same way.

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::append::{AppendOutcome, StreamAppend};
use crate::chain::LogHead;
use crate::error::LogError;
use crate::event::RecordedEvent;

/// One request to a writer: an append, or a copy of recorded events
/// ([`EventLog::copy_in`](crate::EventLog::copy_in)). Both go through the same queue, group
/// commit and ordering.
pub enum WriteRequest {
    Append {
        appends: Vec<StreamAppend>,
        reply: oneshot::Sender<Result<AppendOutcome, LogError>>,
    },
    Copy {
        events: Vec<RecordedEvent>,
        reply: oneshot::Sender<Result<LogHead, LogError>>,
    },
}

/// What a request wrote.
pub enum Written {
    Append(AppendOutcome),
    Copy(LogHead),
}

impl Written {
    /// The last position written, if any.
    pub fn last_position(&self) -> Option<u64> {
        match self {
            Written::Append(outcome) => outcome.last_position,
            Written::Copy(head) => Some(head.position),
        }
    }
}

impl WriteRequest {
    /// Sends the result to whoever asked. The caller may have given up waiting; what was
    /// committed stays committed all the same.
    pub fn answer(self, result: Result<Written, LogError>) {
        match self {
            WriteRequest::Append { reply, .. } => {
                let _ = reply.send(result.and_then(|w| match w {
                    Written::Append(outcome) => Ok(outcome),
                    Written::Copy(_) => Err(mismatch()),
                }));
            }
            WriteRequest::Copy { reply, .. } => {
                let _ = reply.send(result.and_then(|w| match w {
                    Written::Copy(head) => Ok(head),
                    Written::Append(_) => Err(mismatch()),
                }));
            }
        }
    }

    /// Events the request writes (at least 1, so an empty version check still counts against
    /// a group's limit).
    pub fn events(&self) -> usize {
        match self {
            WriteRequest::Append { appends, .. } => appends.iter().map(|a| a.events.len()).sum(),
            WriteRequest::Copy { events, .. } => events.len(),
        }
        .max(1)
    }

    /// Payload bytes the request writes.
    pub fn bytes(&self) -> usize {
        match self {
            WriteRequest::Append { appends, .. } => appends
                .iter()
                .flat_map(|a| &a.events)
                .map(|e| e.size())
                .sum(),
            WriteRequest::Copy { events, .. } => events.iter().map(RecordedEvent::size).sum(),
        }
    }

    /// The streams and event ids the request names.
    pub fn names(&self) -> (Vec<&str>, Vec<Uuid>) {
        match self {
            WriteRequest::Append { appends, .. } => (
                appends.iter().map(|a| a.stream.as_str()).collect(),
                appends
                    .iter()
                    .flat_map(|a| &a.events)
                    .map(|e| e.event_id)
                    .collect(),
            ),
            WriteRequest::Copy { events, .. } => (
                events.iter().map(|e| e.stream_id.as_str()).collect(),
                events.iter().map(|e| e.event_id).collect(),
            ),
        }
    }
}

fn mismatch() -> LogError {
    LogError::Storage("the writer answered a request with another kind of result".into())
}
