//! The read model of citizens' correction requests (`correction_request-<uuid>` streams): one
//! row per request with its status, deadlines, overdue flag and resolution link, kept by the
//! same catch-up (per batch and bulk) as the records and rebuilt with them. The request's state
//! is folded with `citydb_domain::correction_request::evolve`, as the registry folds it.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use citydb_domain::correction_request::{
    Closure, CorrectionRequest, REQUEST_CATEGORY, RequestEvent, RequestStatus, evolve,
};
use citydb_log::RecordedEvent;

use crate::apply::{from_i64, record_error, to_i64};
use crate::error::{ProjectionError, storage};

/// One projected request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    /// Log position of the submission: the listing order and the cursor.
    pub seq: u64,
    pub version: u64,
    pub last_position: u64,
    pub overdue: bool,
    pub request: CorrectionRequest,
}

/// What `correction_requests` lists.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub overdue: Option<bool>,
    /// Only this citizen's (`citizen-<uuid>`): what a citizen principal sees.
    pub citizen: Option<String>,
}

/// Applies one event of a request stream; `Ok(false)` when it could not be applied (recorded in
/// `projection_errors`, like a record's). Other streams are left alone (`Ok(true)`).
pub(crate) fn project(conn: &Connection, event: &RecordedEvent) -> Result<bool, ProjectionError> {
    if event.stream_id.category() != REQUEST_CATEGORY {
        return Ok(true);
    }
    let stream = event.stream_id.as_str();
    let stored: Option<(i64, i64, String)> = conn
        .prepare_cached("SELECT seq, version, state FROM correction_requests WHERE request_id = ?1")
        .and_then(|mut s| {
            s.query_row([stream], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(storage)?;
    let (seq, state) = match stored {
        Some((_, version, _)) if event.stream_version <= from_i64(version) => return Ok(true),
        Some((seq, _, json)) => {
            let state: CorrectionRequest = serde_json::from_str(&json)
                .map_err(|e| ProjectionError::Corrupt(format!("{stream}: stored state: {e}")))?;
            (seq, Some(state))
        }
        None => (to_i64(event.position), None),
    };
    let next = serde_json::from_slice::<serde_json::Value>(&event.data)
        .map_err(|e| e.to_string())
        .and_then(|json| {
            RequestEvent::decode(&event.event_type, event.schema_version, &json)
                .map_err(|e| e.to_string())
        })
        .and_then(|decoded| evolve(state, &decoded).map_err(|e| e.to_string()));
    let request = match next {
        Ok(request) => request,
        Err(reason) => {
            record_error(conn, event, &reason)?;
            return Ok(false);
        }
    };
    let correction = match &request.closure {
        Some(Closure::Resolved { correction, .. }) => Some(correction.to_string()),
        _ => None,
    };
    let json = serde_json::to_string(&request)
        .map_err(|e| ProjectionError::Corrupt(format!("{stream}: {e}")))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO correction_requests(seq, request_id, citizen_id, field, status,
             submitted, acknowledge_by, due_by, overdue, correction_id, version, last_position, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            stream,
            format!("citizen-{}", request.citizen),
            request.field,
            request.status.as_str(),
            request.submitted.to_string(),
            request.acknowledge_by.to_string(),
            request.due_by.to_string(),
            request.is_overdue(),
            correction,
            to_i64(event.stream_version),
            to_i64(event.position),
            json,
        ])
    })
    .map_err(storage)?;
    Ok(true)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, i64, bool, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(raw: (i64, i64, i64, bool, String)) -> Result<RequestRow, ProjectionError> {
    let (seq, version, last_position, overdue, json) = raw;
    let request = serde_json::from_str(&json)
        .map_err(|e| ProjectionError::Corrupt(format!("correction request state: {e}")))?;
    Ok(RequestRow {
        seq: from_i64(seq),
        version: from_i64(version),
        last_position: from_i64(last_position),
        overdue,
        request,
    })
}

const COLUMNS: &str = "seq, version, last_position, overdue, state";

/// A page of requests after `after` (a `seq`), in filing order.
pub(crate) fn list(
    conn: &Connection,
    filter: &RequestFilter,
    after: Option<u64>,
    first: usize,
) -> Result<Vec<RequestRow>, ProjectionError> {
    let mut sql = format!("SELECT {COLUMNS} FROM correction_requests WHERE seq > ?");
    let mut values = vec![SqlValue::Integer(after.map_or(-1, to_i64))];
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        values.push(SqlValue::Text(status.as_str().to_owned()));
    }
    if let Some(overdue) = filter.overdue {
        sql.push_str(" AND overdue = ?");
        values.push(SqlValue::Integer(i64::from(overdue)));
    }
    if let Some(citizen) = &filter.citizen {
        sql.push_str(" AND citizen_id = ?");
        values.push(SqlValue::Text(citizen.clone()));
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    values.push(SqlValue::Integer(to_i64(first as u64)));
    let mut stmt = conn.prepare(&sql).map_err(storage)?;
    let rows = stmt
        .query_map(params_from_iter(values), row)
        .map_err(storage)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(storage)?;
    rows.into_iter().map(decode).collect()
}

/// One request by its stream id.
pub(crate) fn one(conn: &Connection, stream: &str) -> Result<Option<RequestRow>, ProjectionError> {
    let raw = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM correction_requests WHERE request_id = ?1"),
            [stream],
            row,
        )
        .optional()
        .map_err(storage)?;
    raw.map(decode).transpose()
}

/// Open requests with a deadline before `today` (`YYYY-MM-DD`): the periodic task's candidates
/// (it checks each against the stream before recording anything).
pub(crate) fn past_deadline(
    conn: &Connection,
    today: &str,
    first: usize,
) -> Result<Vec<RequestRow>, ProjectionError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM correction_requests
         WHERE (status = 'submitted' AND acknowledge_by < ?1)
            OR (status IN ('submitted', 'acknowledged') AND due_by < ?1)
         ORDER BY seq LIMIT ?2"
    );
    let mut stmt = conn.prepare(&sql).map_err(storage)?;
    let rows = stmt
        .query_map(params![today, to_i64(first as u64)], row)
        .map_err(storage)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(storage)?;
    rows.into_iter().map(decode).collect()
}

/// Open requests with a recorded overdue deadline that still binds.
pub(crate) fn overdue_count(conn: &Connection) -> Result<u64, ProjectionError> {
    conn.query_row(
        "SELECT COUNT(*) FROM correction_requests WHERE overdue = 1",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(from_i64)
    .map_err(storage)
}
