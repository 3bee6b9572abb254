//! The API's typed errors and their GraphQL shape.
//!
//! Every error a client sees carries `extensions.code`, one of a small closed set, so that client
//! systems (tax, land registry, …) can branch on it without parsing messages.
//!
//! Resolvers return `ApiError` with `?`. async-graphql converts any `Display` error into an
//! `async_graphql::Error` through a blanket `From`, which would drop the code; it keeps the
//! original error as the `source`, though, and [`crate::Limits`] (installed by
//! [`crate::apply_limits`]) restores the code and extensions from it. [`ApiError::extend`]
//! (from [`ErrorExtensions`]) does the same conversion explicitly.

use async_graphql::{ErrorExtensionValues, ErrorExtensions};
use axum::http::StatusCode;
use citydb_log::{FaultKind, LogError};
use uuid::Uuid;

/// The error codes the API speaks, as they appear in `extensions.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    InvalidInput,
    LimitExceeded,
    /// A well-formed code in no entry of the reference list it names (commune, province,
    /// country, land use); the message names the list.
    UnknownCode,
    RateLimited,
    /// The store has no space left; nothing was written. Retryable once space is freed.
    StoreFull,
    /// The store refuses writes (read-only file system, standby database); nothing was written.
    StoreReadOnly,
    /// The store cannot be reached or did not answer in time; a write may have committed.
    StoreUnavailable,
    /// The write committed and is durable; only reading it back failed.
    CommittedNotVisible,
    /// The log's Merkle tree disagrees with the log or with a checkpoint already signed (the
    /// log was rewritten or restored under it, or the tree's tables were damaged): the node
    /// answers no proof and signs nothing until an operator has looked.
    TreeInconsistent,
    /// The record is restricted (a restriction of processing under the personal-data law,
    /// `restrictRecord`): a service may not read its data; stewards, supervisors and auditors
    /// still do. Not retryable until a supervisor lifts it.
    Restricted,
    /// A row of the read models (`projections.db`) cannot be read as this build wrote it: the
    /// file was damaged or edited outside citydb. The log, the source of truth, is not
    /// implicated; an operator verifies and rebuilds the projections from it. Not retryable.
    ProjectionDamaged,
    /// An event of the log failed its own checks when read (a column of the wrong type or
    /// length, data that is not JSON): the log was damaged or edited outside citydb. An
    /// operator runs `citydb verify` and restores from a copy. Not retryable.
    LogDamaged,
    /// A bug on our side; the detail is in the server log.
    Internal,
}

impl ErrorCode {
    /// The closed set, every code once.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::InvalidInput,
        ErrorCode::LimitExceeded,
        ErrorCode::UnknownCode,
        ErrorCode::RateLimited,
        ErrorCode::StoreFull,
        ErrorCode::StoreReadOnly,
        ErrorCode::StoreUnavailable,
        ErrorCode::CommittedNotVisible,
        ErrorCode::TreeInconsistent,
        ErrorCode::Restricted,
        ErrorCode::ProjectionDamaged,
        ErrorCode::LogDamaged,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorCode::UnknownCode => "UNKNOWN_CODE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::StoreFull => "STORE_FULL",
            ErrorCode::StoreReadOnly => "STORE_READ_ONLY",
            ErrorCode::StoreUnavailable => "STORE_UNAVAILABLE",
            ErrorCode::CommittedNotVisible => "COMMITTED_NOT_VISIBLE",
            ErrorCode::TreeInconsistent => "TREE_INCONSISTENT",
            ErrorCode::Restricted => "RESTRICTED",
            ErrorCode::ProjectionDamaged => "PROJECTION_DAMAGED",
            ErrorCode::LogDamaged => "LOG_DAMAGED",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error the API reports to a client. Messages are written for the client: they never hold
/// internal detail (storage errors are logged and replaced by a generic message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that do not identify a principal.
    #[error("{message}")]
    Unauthenticated { message: String },
    /// The principal is known but may not do this. `field` names the field group (or input
    /// field) that was refused, when there is one.
    #[error("{message}")]
    Forbidden {
        message: String,
        field: Option<String>,
    },
    #[error("{message}")]
    NotFound {
        message: String,
        stream: Option<String>,
    },
    /// Optimistic concurrency or idempotency conflict. `expected`/`actual` are stream versions
    /// as text (`"no stream"` when the stream has no events).
    #[error("{message}")]
    Conflict {
        message: String,
        stream: Option<String>,
        expected: Option<String>,
        actual: Option<String>,
    },
    #[error("{message}")]
    InvalidInput {
        message: String,
        field: Option<String>,
    },
    /// A size, depth, complexity, page or time limit was hit.
    #[error("{message}")]
    LimitExceeded { message: String },
    /// The principal is over its request rate or has too many requests in flight
    /// ([`crate::throttle`]); retry after `retry_after_secs` (also sent as `Retry-After`).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// Something failed on our side. The message is generic; the detail went to the log.
    #[error("{message}")]
    Internal { message: String },
    /// The store failed in a way the client can act on: `code` is `STORE_FULL`,
    /// `STORE_READ_ONLY` or `STORE_UNAVAILABLE`, the message says what happened to the write in
    /// words, `extensions.retryable` is true. `command_id` (of a mutation) is the key to re-send
    /// it with.
    #[error("{message}")]
    Store {
        code: ErrorCode,
        message: String,
        command_id: Option<Uuid>,
    },
    /// The write committed (it is durable, at `position`), but reading it back failed: the
    /// client must not send it again as a new command.
    #[error("{message}")]
    CommittedNotVisible {
        message: String,
        command_id: Uuid,
        position: u64,
    },
    /// The log's Merkle tree disagrees with the log or a signed checkpoint (see
    /// [`ErrorCode::TreeInconsistent`]).
    #[error("{message}")]
    TreeInconsistent { message: String },
    /// A file of ours holds something this build did not write: `code` is
    /// `PROJECTION_DAMAGED` or `LOG_DAMAGED`; the detail went to the server log.
    #[error("{message}")]
    Damaged { code: ErrorCode, message: String },
    /// A domain rule refused a command. `code` is one of the closed set above (CONFLICT for a
    /// duplicate key, NOT_FOUND for a missing record, FORBIDDEN for four-eyes violations,
    /// INVALID_INPUT otherwise); `reason` is the domain's own code (`DUPLICATE_KEY`,
    /// `PARCEL_MORTGAGED`, `DECEASED_REPRESENTATIVE`, …), sent as `extensions.reason`.
    #[error("{message}")]
    Refused {
        code: ErrorCode,
        reason: String,
        message: String,
        /// The input field the refusal is about, when known (`extensions.field`).
        field: Option<String>,
    },
}

/// What [`ApiError::Internal`] tells the client.
const INTERNAL_MESSAGE: &str = "internal error; it has been logged";

impl ApiError {
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::Unauthenticated {
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            message: message.into(),
            field: None,
        }
    }

    /// A refusal that names the field (group) it is about, in `extensions.field`.
    pub fn forbidden_field(message: impl Into<String>, field: impl Into<String>) -> Self {
        ApiError::Forbidden {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::NotFound {
            message: message.into(),
            stream: None,
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        ApiError::InvalidInput {
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid_field(message: impl Into<String>, field: impl Into<String>) -> Self {
        ApiError::InvalidInput {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        ApiError::LimitExceeded {
            message: message.into(),
        }
    }

    /// An internal failure: `detail` is logged with tracing (at error level) and never sent to
    /// the client, which gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "internal error");
        ApiError::Internal {
            message: INTERNAL_MESSAGE.to_owned(),
        }
    }

    /// A row of the read models that cannot be read (`detail`, logged, names it):
    /// `PROJECTION_DAMAGED`. The client can do nothing but report it; the operator rebuilds
    /// the projections from the log.
    pub fn projection_damaged(detail: impl std::fmt::Display) -> Self {
        tracing::error!(code = "PROJECTION_DAMAGED", detail = %detail, "damaged read models");
        ApiError::Damaged {
            code: ErrorCode::ProjectionDamaged,
            message: "a stored read model of this record is damaged; it has been logged and \
                      the operator can rebuild it from the log"
                .to_owned(),
        }
    }

    /// An event of the log that fails its own checks when read (`detail`, logged):
    /// `LOG_DAMAGED`.
    pub fn log_damaged(detail: impl std::fmt::Display) -> Self {
        tracing::error!(code = "LOG_DAMAGED", detail = %detail, "damaged event log");
        ApiError::Damaged {
            code: ErrorCode::LogDamaged,
            message: "an event of the log is damaged; it has been logged for the operator"
                .to_owned(),
        }
    }

    /// A storage fault of a class the client can act on, in words; the engine's detail is
    /// logged, never sent. `FaultKind::Damaged` is `LOG_DAMAGED` (the projections' damage is
    /// told apart before it gets here); `FaultKind::Other` (and any kind added later) is a bug:
    /// `INTERNAL`.
    pub fn store(kind: FaultKind, detail: impl std::fmt::Display) -> Self {
        let (code, message) = match kind {
            FaultKind::Full => (
                ErrorCode::StoreFull,
                "the store is full: nothing was written; retry once the operator has freed space",
            ),
            FaultKind::ReadOnly => (
                ErrorCode::StoreReadOnly,
                "the store is read-only (a read-only file system or a standby database): \
                 nothing was written; retry once it accepts writes again",
            ),
            FaultKind::Unavailable => (
                ErrorCode::StoreUnavailable,
                "the store is unavailable (unreachable, timed out or failing): retry later; a \
                 write that got this answer may have committed, so re-send it with the same \
                 commandId, never as a new command",
            ),
            // A page of the log's file that SQLite (or PostgreSQL) finds damaged is the same
            // news for the client as an event failing its own checks.
            FaultKind::Damaged => return ApiError::log_damaged(detail),
            _ => return ApiError::internal(detail),
        };
        tracing::error!(code = code.as_str(), detail = %detail, "storage fault");
        ApiError::Store {
            code,
            message: message.to_owned(),
            command_id: None,
        }
    }

    /// A failure of ours to write something the client did not choose (the access log): a
    /// classified storage fault keeps its code, anything else is `INTERNAL` (never the
    /// client's `INVALID_INPUT`).
    pub fn our_write_failed(e: LogError) -> Self {
        match e {
            LogError::Storage(fault) => ApiError::store(fault.kind, fault),
            other => ApiError::internal(other),
        }
    }

    /// A write that committed at `position` but could not be read back (`detail`, logged):
    /// `COMMITTED_NOT_VISIBLE`, which tells the client the write is durable.
    pub fn committed_not_visible(
        command_id: Uuid,
        position: u64,
        detail: impl std::fmt::Display,
    ) -> Self {
        tracing::error!(%command_id, position, detail = %detail, "committed write not visible");
        ApiError::CommittedNotVisible {
            message: format!(
                "the write is durable: command {command_id} committed at log position \
                 {position}; only reading it back failed (this node's projections have not \
                 applied it yet). Do not send it again as a new command: read the records \
                 later, or re-send it with the same commandId"
            ),
            command_id,
            position,
        }
    }

    /// Names the command a storage fault interrupted, so that the client can re-send it with
    /// the same id (idempotent). Other errors are returned as they are.
    pub fn with_command_id(self, id: Uuid) -> Self {
        match self {
            ApiError::Store { code, message, .. } => ApiError::Store {
                code,
                message,
                command_id: Some(id),
            },
            other => other,
        }
    }

    /// Whether sending the same request again, unchanged and later, can succeed and is safe:
    /// `Some` for the codes that carry `extensions.retryable`.
    pub fn retryable(&self) -> Option<bool> {
        match self {
            ApiError::Store { .. } | ApiError::RateLimited { .. } => Some(true),
            // Durable already: a re-send without its commandId would write it twice.
            ApiError::CommittedNotVisible { .. } => Some(false),
            ApiError::Internal { .. } | ApiError::Damaged { .. } => Some(false),
            _ => None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            ApiError::Forbidden { .. } => ErrorCode::Forbidden,
            ApiError::NotFound { .. } => ErrorCode::NotFound,
            ApiError::Conflict { .. } => ErrorCode::Conflict,
            ApiError::InvalidInput { .. } => ErrorCode::InvalidInput,
            ApiError::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Internal { .. } => ErrorCode::Internal,
            ApiError::Store { code, .. } => *code,
            ApiError::CommittedNotVisible { .. } => ErrorCode::CommittedNotVisible,
            ApiError::TreeInconsistent { .. } => ErrorCode::TreeInconsistent,
            ApiError::Damaged { code, .. } => *code,
            ApiError::Refused { code, .. } => *code,
        }
    }

    /// The HTTP status used when the error ends a request before GraphQL execution (auth,
    /// body size, timeout). Errors inside a GraphQL response travel with status 200.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            ApiError::LimitExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Store { code, .. } if *code == ErrorCode::StoreFull => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            ApiError::Store { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::CommittedNotVisible { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TreeInconsistent { .. } | ApiError::Damaged { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// Writes `code` and the variant's extra fields into `ext`.
    pub fn write_extensions(&self, ext: &mut ErrorExtensionValues) {
        ext.set("code", self.code().as_str());
        if let Some(retryable) = self.retryable() {
            ext.set("retryable", retryable);
        }
        let mut opt = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                ext.set(name, v.as_str());
            }
        };
        match self {
            ApiError::Forbidden { field, .. } | ApiError::InvalidInput { field, .. } => {
                opt("field", field)
            }
            ApiError::NotFound { stream, .. } => opt("stream", stream),
            ApiError::Conflict {
                stream,
                expected,
                actual,
                ..
            } => {
                opt("stream", stream);
                opt("expected", expected);
                opt("actual", actual);
            }
            ApiError::Refused { reason, field, .. } => {
                opt("field", field);
                opt("reason", &Some(reason.clone()));
            }
            ApiError::RateLimited {
                retry_after_secs, ..
            } => ext.set("retryAfterSeconds", *retry_after_secs),
            ApiError::Store { command_id, .. } => {
                if let Some(id) = command_id {
                    ext.set("commandId", id.to_string());
                }
            }
            ApiError::CommittedNotVisible {
                command_id,
                position,
                ..
            } => {
                ext.set("commandId", command_id.to_string());
                ext.set("position", i64::try_from(*position).unwrap_or(i64::MAX));
            }
            ApiError::Unauthenticated { .. }
            | ApiError::LimitExceeded { .. }
            | ApiError::TreeInconsistent { .. }
            | ApiError::Damaged { .. }
            | ApiError::Internal { .. } => {}
        }
    }

    /// The `extensions` object as JSON, for responses built outside async-graphql.
    pub fn extensions_json(&self) -> serde_json::Value {
        let mut ext = ErrorExtensionValues::default();
        self.write_extensions(&mut ext);
        serde_json::to_value(&ext)
            .unwrap_or_else(|_| serde_json::json!({ "code": self.code().as_str() }))
    }

    /// A whole GraphQL-shaped response body holding only this error:
    /// `{"errors":[{"message":…,"extensions":{"code":…}}]}`.
    pub fn to_response_body(&self) -> serde_json::Value {
        serde_json::json!({
            "errors": [{ "message": self.to_string(), "extensions": self.extensions_json() }]
        })
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let mut ext = ErrorExtensionValues::default();
        self.write_extensions(&mut ext);
        let mut err = async_graphql::Error::new(self.to_string());
        err.extensions = Some(ext);
        err
    }
}

fn version_text(v: Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "no stream".to_owned(),
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::WrongExpectedVersion {
                ref stream,
                expected,
                actual,
            } => ApiError::Conflict {
                message: e.to_string(),
                stream: Some(stream.to_string()),
                expected: Some(expected.to_string()),
                actual: Some(version_text(actual)),
            },
            LogError::IdempotencyConflict { .. } => ApiError::Conflict {
                message: e.to_string(),
                stream: None,
                expected: None,
                actual: None,
            },
            LogError::EventTooLarge { .. } => ApiError::limit_exceeded(e.to_string()),
            LogError::InvalidStreamId { .. }
            | LogError::InvalidJson { .. }
            | LogError::InvalidEvent { .. }
            | LogError::InvalidAppend { .. } => ApiError::invalid_input(e.to_string()),
            // Faults of a class the client can act on get their own code; their detail, like
            // that of corruption and format errors (which describe our files, not the client's
            // input), is logged and never sent.
            LogError::Storage(fault) => ApiError::store(fault.kind, fault),
            e @ LogError::Corrupted { .. } => ApiError::log_damaged(e),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citydb_log::{ExpectedVersion, StreamId};
    use uuid::Uuid;

    #[test]
    fn log_errors_map_to_codes() {
        let stream = StreamId::new("citizen", Uuid::from_u128(1)).unwrap();
        let e: ApiError = LogError::WrongExpectedVersion {
            stream: stream.clone(),
            expected: ExpectedVersion::Exact(3),
            actual: Some(4),
        }
        .into();
        assert_eq!(e.code(), ErrorCode::Conflict);
        let ext = e.extensions_json();
        assert_eq!(ext["stream"], stream.as_str());
        assert_eq!(ext["expected"], "3");
        assert_eq!(ext["actual"], "4");

        let e: ApiError = LogError::Storage("disk /dev/sda1 on fire".into()).into();
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(!e.to_string().contains("sda1"), "detail leaked: {e}");

        let e: ApiError = LogError::InvalidAppend { reason: "x".into() }.into();
        assert_eq!(e.code(), ErrorCode::InvalidInput);

        let e: ApiError = LogError::Corrupted {
            position: 12,
            reason: "a hash of 31 bytes in /srv".into(),
        }
        .into();
        assert_eq!(e.code(), ErrorCode::LogDamaged);
        assert_eq!(e.extensions_json()["retryable"], false);
        assert_eq!(e.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.to_string().contains("/srv"), "detail leaked: {e}");
        let e: ApiError = LogError::EventTooLarge {
            event_id: Uuid::from_u128(2),
            size: 10,
            limit: 5,
        }
        .into();
        assert_eq!(e.code(), ErrorCode::LimitExceeded);
    }

    #[test]
    fn storage_faults_map_to_their_own_codes() {
        for (kind, code) in [
            (FaultKind::Full, "STORE_FULL"),
            (FaultKind::ReadOnly, "STORE_READ_ONLY"),
            (FaultKind::Unavailable, "STORE_UNAVAILABLE"),
        ] {
            let e: ApiError = LogError::storage(kind, "SQLITE_FULL on /srv/citydb/log.db").into();
            let ext = e.extensions_json();
            assert_eq!(ext["code"], code);
            assert_eq!(ext["retryable"], true, "{code}");
            assert!(!e.to_string().contains("/srv"), "detail leaked: {e}");
            let id = Uuid::from_u128(7);
            let ext = e.with_command_id(id).extensions_json();
            assert_eq!(ext["commandId"], id.to_string(), "{code}");
        }
        // The engine's own finding of damage in the log's file.
        let e: ApiError = LogError::storage(
            FaultKind::Damaged,
            "database disk image is malformed in /srv",
        )
        .into();
        assert_eq!(e.code(), ErrorCode::LogDamaged);
        assert_eq!(e.extensions_json()["retryable"], false);
        assert!(!e.to_string().contains("/srv"), "detail leaked: {e}");
        // Unclassified faults are bugs until shown otherwise.
        let e: ApiError = LogError::storage(FaultKind::Other, "misuse").into();
        assert_eq!(e.extensions_json()["code"], "INTERNAL");
        assert_eq!(e.extensions_json()["retryable"], false);
    }

    #[test]
    fn our_failed_writes_keep_their_fault_class_and_are_never_the_clients_input() {
        let e = ApiError::our_write_failed(LogError::storage(FaultKind::Full, "ENOSPC"));
        assert_eq!(e.code(), ErrorCode::StoreFull);
        let e = ApiError::our_write_failed(LogError::InvalidAppend { reason: "x".into() });
        assert_eq!(e.code(), ErrorCode::Internal);
    }

    #[test]
    fn a_committed_write_that_cannot_be_read_back_says_it_is_durable() {
        let id = Uuid::from_u128(9);
        let e = ApiError::committed_not_visible(id, 41, "timed out at 40");
        let ext = e.extensions_json();
        assert_eq!(ext["code"], "COMMITTED_NOT_VISIBLE");
        assert_eq!(ext["retryable"], false);
        assert_eq!(ext["commandId"], id.to_string());
        assert_eq!(ext["position"], 41);
        let message = e.to_string();
        assert!(
            message.contains("durable") && message.contains("41"),
            "{message}"
        );
        assert!(
            !message.contains("timed out at 40"),
            "detail leaked: {message}"
        );
    }

    #[test]
    fn every_code_is_in_the_closed_set_once() {
        let names: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn extend_carries_code_and_field() {
        let e = ApiError::forbidden_field("no", "land").extend();
        let ext = e.extensions.unwrap();
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("FORBIDDEN"))
        );
        assert_eq!(ext.get("field"), Some(&async_graphql::Value::from("land")));
    }
}
