//! The access log: who read which citizen's personal data, on whose behalf, in which case, why.
//!
//! Every request that read personal data is written as ONE compact, hash-chained v2 entry
//! (`citydb_access`: the principal, officer, case, purpose, operation, correlation id and time
//! once, then each citizen read with its field groups), committed with the concurrent requests'
//! entries before the response leaves. A derived index by citizen serves
//! [`AccessLog::for_citizen`] in O(log n + page). The format is specified in
//! docs/audit-format.md ("Access log, format v2").
//!
//! Access logs written before v2 hold one `PersonalDataRead` JSON event per citizen read, one
//! stream `access-<citizen uuid>` per citizen, in an ordinary event log beside the v2 tables.
//! They are still listed and verified: the v2 chain continues the v1 chain (its first entry's
//! position is the v1 log's next one, its predecessor hash the v1 head's), and a citizen's
//! entries are numbered across both (v1 versions first, then the v2 reads).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use citydb_access::{
    AccessError, AccessLogStore, CitizenRead, Draft, EntryStore, Tip, V2Breach, group_set,
    verify_entries,
};
use citydb_log::{
    Breach, Corruption, Direction, EventLog, ExpectedVersion, Hash, LogHead, Metadata, NewEvent,
    RecordedEvent, StreamAppend, StreamId, VerifyReport,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{FieldGroup, RequestContext, Role};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Stream category of the v1 access log.
pub const ACCESS_CATEGORY: &str = "access";
/// Event type of one v1 read.
pub const PERSONAL_DATA_READ: &str = "PersonalDataRead";
/// Schema version of [`PersonalDataRead`].
pub const PERSONAL_DATA_READ_SCHEMA: u32 = 1;
/// Most entries [`AccessLog::for_citizen`] returns at once.
pub const MAX_ACCESS_PAGE: usize = 1000;

/// One read of one citizen: the payload of a v1 `PersonalDataRead` event, and what a v2 entry
/// says about each citizen it read.
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

/// One access-log entry of one citizen, as read back, with its place in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessEntry {
    /// Position in the access log (v1 events and v2 entries share one numbering).
    pub position: u64,
    /// The citizen's entries, 0-based, v1 then v2; the cursor for [`AccessLog::for_citizen`].
    pub version: u64,
    /// Microseconds since the Unix epoch, assigned by the log.
    pub recorded_at: i64,
    /// The v1 event's id; v2 entries have none (their position identifies them).
    pub event_id: Option<Uuid>,
    /// The entry's chain hash, hex.
    pub hash: String,
    pub read: PersonalDataRead,
}

/// Records and lists reads of personal data. Cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    v1: Arc<dyn EventLog>,
    v2: Arc<dyn EntryStore>,
    metrics: Option<Arc<Metrics>>,
}

impl AccessLog {
    pub fn new(store: AccessLogStore) -> Self {
        AccessLog {
            v1: store.v1,
            v2: store.v2,
            metrics: None,
        }
    }

    /// Counts writes on `/metrics` (`citydb_access_log_*`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The v1 event log (old entries).
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.v1
    }

    /// The v2 entries.
    pub fn entries(&self) -> &Arc<dyn EntryStore> {
        &self.v2
    }

    /// Records that `ctx` read the given field groups of the given citizens, as ONE entry,
    /// committed (with the concurrent requests' entries) before this returns. Call it before
    /// returning the data, and return nothing if it fails: a read that cannot be logged must
    /// not happen (fail closed).
    ///
    /// A citizen named more than once is one read with the union of the groups. Nothing is
    /// written for an empty `reads`.
    pub async fn record(
        &self,
        ctx: &RequestContext,
        reads: &[(Uuid, Vec<FieldGroup>)],
        operation: &str,
    ) -> Result<(), ApiError> {
        let by_citizen = union(reads);
        if by_citizen.is_empty() {
            return Ok(());
        }
        let count = by_citizen.len() as u64;
        let draft = Draft {
            principal: ctx.principal.id.clone(),
            role: ctx.principal.role.as_str().to_owned(),
            end_user: ctx.end_user.clone(),
            case: ctx.case.clone(),
            purpose: ctx.purpose.clone(),
            operation: operation.to_owned(),
            correlation_id: ctx.correlation_id,
            reads: by_citizen
                .into_iter()
                .map(|(c, groups)| (c, group_set(groups.iter().map(|g| g.as_str()))))
                .collect(),
        };
        let written = self.v2.append(draft).await;
        if let Some(m) = &self.metrics {
            m.access_log_write(written.is_ok(), count);
        }
        written.map_err(|e| {
            // Whatever the store says, to the client this is our failure to keep the record,
            // not their bad input.
            tracing::error!(error = %e, "cannot record personal data access");
            match e {
                AccessError::Storage(e) => ApiError::our_write_failed(e),
                other => ApiError::internal(other),
            }
        })?;
        Ok(())
    }

    /// Writes the reads as v1 events (one per citizen), as citydb did before format v2. Only
    /// for producing v1 access logs (tests of old logs, fixtures); the server writes v2.
    #[doc(hidden)]
    pub async fn record_v1(
        &self,
        ctx: &RequestContext,
        reads: &[(Uuid, Vec<FieldGroup>)],
        operation: &str,
    ) -> Result<(), ApiError> {
        let metadata = Metadata {
            actor: Some(ctx.principal.id.clone()),
            role: Some(ctx.principal.role.as_str().to_owned()),
            correlation_id: Some(ctx.correlation_id),
            end_user: ctx.end_user.clone(),
            case_id: ctx.case.clone(),
            effective_at: None,
            ..Metadata::default()
        };
        let mut appends = Vec::new();
        for (citizen, groups) in union(reads) {
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
        if appends.is_empty() {
            return Ok(());
        }
        self.v1
            .append(appends)
            .await
            .map_err(ApiError::our_write_failed)?;
        Ok(())
    }

    /// The citizen's access entries, newest first: up to `first` (at most
    /// [`MAX_ACCESS_PAGE`]) entries older than version `after` (all when `None`). v2 entries
    /// come from the citizen index; older v1 entries from the citizen's v1 stream.
    pub async fn for_citizen(
        &self,
        citizen_id: Uuid,
        first: usize,
        after: Option<u64>,
    ) -> Result<Vec<AccessEntry>, ApiError> {
        let first = first.min(MAX_ACCESS_PAGE);
        if first == 0 || after == Some(0) {
            return Ok(Vec::new());
        }
        let stream = access_stream(citizen_id)?;
        // The citizen's v1 entries are versions 0..v1_count; its v2 reads follow them.
        let v1_count = self
            .v1
            .read_stream(&stream, u64::MAX, Direction::Backward, 1)
            .await?
            .first()
            .map_or(0, |e| e.stream_version + 1);
        let mut out = Vec::with_capacity(first);
        if after.is_none_or(|a| a > v1_count) {
            let before = after.map(|a| a - v1_count);
            for read in self
                .v2
                .for_citizen(citizen_id, before, first)
                .await
                .map_err(read_error)?
            {
                out.push(entry_of_v2(read, v1_count)?);
            }
        }
        let left = first - out.len();
        let v1_before = after.map_or(v1_count, |a| a.min(v1_count));
        if left > 0 && v1_before > 0 {
            let events = self
                .v1
                .read_stream(&stream, v1_before - 1, Direction::Backward, left)
                .await?;
            for event in &events {
                out.push(entry_of(event)?);
            }
        }
        Ok(out)
    }

    /// Verifies the whole access log: the v1 chain, then the v2 chain from the v1 tip, then the
    /// tables derived from it. Counts v1 events plus v2 entries.
    pub async fn verify(&self) -> Result<VerifyReport, ApiError> {
        self.verify_against(None).await
    }

    /// [`Self::verify`], and that the log still has `expected_head` (a head written down
    /// earlier): `truncated` when it is now shorter, `head_rewritten` when the hash differs.
    pub async fn verify_against(
        &self,
        expected_head: Option<LogHead>,
    ) -> Result<VerifyReport, ApiError> {
        let v1 = self.v1.verify_log(None).await?;
        if !v1.is_intact() {
            return Ok(v1);
        }
        let anchor = match &v1.head {
            None => Tip::GENESIS,
            Some(head) => Tip {
                next_seq: head.position + 1,
                prev_hash: *head.hash.as_bytes(),
                recorded_at: self
                    .v1
                    .read_all(head.position, 1)
                    .await?
                    .first()
                    .map_or(i64::MIN, |e| e.recorded_at),
            },
        };
        let v2 = verify_entries(&*self.v2, anchor)
            .await
            .map_err(read_error)?;
        let mut report = VerifyReport {
            events: v1.events + v2.entries,
            streams: v1.streams + v2.citizens,
            head: v2
                .head
                .map(|(position, hash)| LogHead {
                    position,
                    hash: Hash(hash),
                })
                .or(v1.head),
            corruption: v2.breach.map(|(position, breach)| Corruption {
                position,
                breach: breach_of(breach),
            }),
            // v2 entries are never redacted; v1 events may be.
            redacted: v1.redacted,
        };
        if let (None, Some(expected)) = (&report.corruption, expected_head) {
            report.corruption = self.check_head(&report, expected, anchor.next_seq).await?;
        }
        Ok(report)
    }

    async fn check_head(
        &self,
        report: &VerifyReport,
        expected: LogHead,
        v2_start: u64,
    ) -> Result<Option<Corruption>, ApiError> {
        let breach = |breach| {
            Some(Corruption {
                position: expected.position,
                breach,
            })
        };
        if report
            .head
            .as_ref()
            .is_none_or(|h| h.position < expected.position)
        {
            return Ok(breach(Breach::Truncated));
        }
        let hash = if expected.position < v2_start {
            self.v1
                .read_all(expected.position, 1)
                .await?
                .first()
                .map(|e| e.hash)
        } else {
            self.v2
                .entries(expected.position, 1)
                .await
                .map_err(read_error)?
                .first()
                .filter(|e| e.seq == expected.position)
                .map(|e| Hash(e.hash))
        };
        Ok(match hash {
            Some(h) if h == expected.hash => None,
            Some(_) => breach(Breach::HeadRewritten),
            None => breach(Breach::Truncated),
        })
    }
}

/// Citizen → the union of the groups read of them.
fn union(reads: &[(Uuid, Vec<FieldGroup>)]) -> BTreeMap<Uuid, BTreeSet<FieldGroup>> {
    let mut by_citizen: BTreeMap<Uuid, BTreeSet<FieldGroup>> = BTreeMap::new();
    for (citizen, groups) in reads {
        by_citizen
            .entry(*citizen)
            .or_default()
            .extend(groups.iter().copied());
    }
    by_citizen
}

/// How a v2 finding reads in the log's closed set of breaches: a body that decodes wrongly or
/// refers to what was never defined was changed as surely as one whose digest differs.
fn breach_of(b: V2Breach) -> Breach {
    match b {
        V2Breach::PositionGap { expected, found } => Breach::PositionGap { expected, found },
        V2Breach::HashMismatch => Breach::HashMismatch,
        V2Breach::TimeWentBackwards => Breach::TimeWentBackwards,
        V2Breach::Undecodable(_) | V2Breach::Undefined(_) | V2Breach::Redefined(_) => {
            Breach::DataChanged
        }
        V2Breach::DerivedMismatch(table) => Breach::DerivedTableMismatch {
            table: table.to_owned(),
        },
    }
}

fn read_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Storage(e) => ApiError::from(e),
        other => ApiError::internal(other),
    }
}

fn access_stream(citizen: Uuid) -> Result<StreamId, ApiError> {
    Ok(StreamId::new(ACCESS_CATEGORY, citizen)?)
}

fn entry_of_v2(read: CitizenRead, v1_count: u64) -> Result<AccessEntry, ApiError> {
    let corrupt = |what: &str| {
        ApiError::internal(format!(
            "access log entry {} holds an unknown {what}",
            read.seq
        ))
    };
    let role = read.role.parse::<Role>().map_err(|_| corrupt("role"))?;
    let mut field_groups = read
        .field_groups
        .split(',')
        .filter(|g| !g.is_empty())
        .map(|g| g.parse::<FieldGroup>().map_err(|_| corrupt("field group")))
        .collect::<Result<Vec<_>, _>>()?;
    // The entry names them sorted by name; readers get them in the groups' own order, as v1
    // entries list them.
    field_groups.sort_unstable();
    Ok(AccessEntry {
        position: read.seq,
        version: v1_count + u64::from(read.ordinal),
        recorded_at: read.recorded_at,
        event_id: None,
        hash: hex(&read.hash),
        read: PersonalDataRead {
            principal: read.principal,
            role,
            end_user: read.end_user,
            case: read.case,
            purpose: read.purpose,
            field_groups,
            operation: read.operation,
            correlation_id: read.correlation_id,
        },
    })
}

fn hex(bytes: &[u8; 32]) -> String {
    Hash(*bytes).to_hex()
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
        event_id: Some(event.event_id),
        hash: event.hash.to_hex(),
        read,
    })
}
