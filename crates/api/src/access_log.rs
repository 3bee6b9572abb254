//! The access log: who read which citizen's personal data, on whose behalf, in which case.
//!
//! It lives in its own event log (the server opens `DIR/access-log.db` with `SqliteLog`), so it
//! is append-only and hash-chained exactly like the registers and verified by the same code, and
//! so that reads never contend with register writes for the same file. One stream per citizen,
//! `access-<citizen uuid>`, lets a citizen (or an auditor) list who looked at their data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use citydb_log::{
    Direction, EventLog, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamAppend,
    StreamId, VerifyReport,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{FieldGroup, RequestContext, Role};
use crate::error::ApiError;

/// Stream category of the access log.
pub const ACCESS_CATEGORY: &str = "access";
/// Event type of one read.
pub const PERSONAL_DATA_READ: &str = "PersonalDataRead";
/// Schema version of [`PersonalDataRead`].
pub const PERSONAL_DATA_READ_SCHEMA: u32 = 1;
/// Most entries [`AccessLog::for_citizen`] returns at once.
pub const MAX_ACCESS_PAGE: usize = 1000;

/// The payload of one `PersonalDataRead` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDataRead {
    pub principal: String,
    pub role: Role,
    pub end_user: Option<String>,
    pub case: Option<String>,
    pub purpose: Option<String>,
    pub field_groups: Vec<FieldGroup>,
    /// The GraphQL field or operation that read the data.
    pub operation: String,
    pub correlation_id: Uuid,
}

/// One access-log entry as read back, with its place in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessEntry {
    /// Global position in the access log.
    pub position: u64,
    /// Version within the citizen's access stream; the cursor for [`AccessLog::for_citizen`].
    pub version: u64,
    /// Microseconds since the Unix epoch, assigned by the log.
    pub recorded_at: i64,
    pub event_id: Uuid,
    /// The event's chain hash, hex.
    pub hash: String,
    pub read: PersonalDataRead,
}

/// Records and lists reads of personal data. Cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    log: Arc<dyn EventLog>,
}

impl AccessLog {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        AccessLog { log }
    }

    /// The underlying log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Records that `ctx` read the given field groups of the given citizens, in ONE atomic
    /// append across all their access streams. Call it before returning the data, and return
    /// nothing if it fails: a read that cannot be logged must not happen (fail closed).
    ///
    /// A citizen named more than once gets one entry with the union of the groups. Nothing is
    /// written for an empty `reads`.
    pub async fn record(
        &self,
        ctx: &RequestContext,
        reads: &[(Uuid, Vec<FieldGroup>)],
        operation: &str,
    ) -> Result<(), ApiError> {
        let mut by_citizen: BTreeMap<Uuid, BTreeSet<FieldGroup>> = BTreeMap::new();
        for (citizen, groups) in reads {
            by_citizen
                .entry(*citizen)
                .or_default()
                .extend(groups.iter().copied());
        }
        if by_citizen.is_empty() {
            return Ok(());
        }
        let metadata = Metadata {
            actor: Some(ctx.principal.id.clone()),
            role: Some(ctx.principal.role.as_str().to_owned()),
            correlation_id: Some(ctx.correlation_id),
            end_user: ctx.end_user.clone(),
            case_id: ctx.case.clone(),
            ..Metadata::default()
        };
        let mut appends = Vec::with_capacity(by_citizen.len());
        for (citizen, groups) in by_citizen {
            let data = PersonalDataRead {
                principal: ctx.principal.id.clone(),
                role: ctx.principal.role,
                end_user: ctx.end_user.clone(),
                case: ctx.case.clone(),
                purpose: ctx.purpose.clone(),
                field_groups: groups.into_iter().collect(),
                operation: operation.to_owned(),
                correlation_id: ctx.correlation_id,
            };
            let event = NewEvent::new(
                PERSONAL_DATA_READ,
                PERSONAL_DATA_READ_SCHEMA,
                &data,
                &metadata,
            )?;
            appends.push(StreamAppend::new(
                access_stream(citizen)?,
                ExpectedVersion::Any,
                vec![event],
            ));
        }
        self.log.append(appends).await.map_err(|e| {
            // Whatever the log says, to the client this is our failure to keep the record, not
            // their bad input.
            tracing::error!(error = %e, "cannot record personal data access");
            ApiError::our_write_failed(e)
        })?;
        Ok(())
    }

    /// The citizen's access entries, newest first: up to `first` (at most
    /// [`MAX_ACCESS_PAGE`]) entries older than version `after` (all when `None`).
    pub async fn for_citizen(
        &self,
        citizen_id: Uuid,
        first: usize,
        after: Option<u64>,
    ) -> Result<Vec<AccessEntry>, ApiError> {
        let first = first.min(MAX_ACCESS_PAGE);
        let from = match after {
            None => u64::MAX,
            Some(0) => return Ok(Vec::new()),
            Some(v) => v - 1,
        };
        if first == 0 {
            return Ok(Vec::new());
        }
        let stream = access_stream(citizen_id)?;
        let events = self
            .log
            .read_stream(&stream, from, Direction::Backward, first)
            .await?;
        events.iter().map(entry_of).collect()
    }

    /// Verifies the whole access log's hash chain.
    pub async fn verify(&self) -> Result<VerifyReport, ApiError> {
        Ok(self.log.verify_log(None).await?)
    }
}

fn access_stream(citizen: Uuid) -> Result<StreamId, ApiError> {
    Ok(StreamId::new(ACCESS_CATEGORY, citizen)?)
}

fn entry_of(event: &RecordedEvent) -> Result<AccessEntry, ApiError> {
    let read = event.data_as::<PersonalDataRead>().map_err(|e| {
        ApiError::internal(format!(
            "access log event at position {} does not decode: {e}",
            event.position
        ))
    })?;
    Ok(AccessEntry {
        position: event.position,
        version: event.stream_version,
        recorded_at: event.recorded_at,
        event_id: event.event_id,
        hash: event.hash.to_hex(),
        read,
    })
}
