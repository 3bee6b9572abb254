//! The API's typed errors and their GraphQL shape.
//!
//! Every error a client sees carries `extensions.code`, one of a small closed set, so that client
//! systems (tax, land registry, …) can branch on it without parsing messages.
//!
//! Resolvers return `ApiError` with `?`. async-graphql converts any `Display` error into an
//! `async_graphql::Error` through a blanket `From`, which would drop the code; it keeps the
//! original error as the `source`, though, and [`crate::ErrorCodes`] (installed by
//! [`crate::apply_limits`]) restores the code and extensions from it. [`ApiError::extend`]
//! (from [`ErrorExtensions`]) does the same conversion explicitly.

use async_graphql::{ErrorExtensionValues, ErrorExtensions};
use axum::http::StatusCode;
use citydb_log::LogError;

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
    Internal,
}

impl ErrorCode {
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
    /// A domain rule refused a command. `code` is one of the closed set above (CONFLICT for a
    /// duplicate key, NOT_FOUND for a missing record, FORBIDDEN for four-eyes violations,
    /// INVALID_INPUT otherwise); `reason` is the domain's own code (`DUPLICATE_KEY`,
    /// `PARCEL_MORTGAGED`, `DECEASED_REPRESENTATIVE`, …), sent as `extensions.reason`.
    #[error("{message}")]
    Refused {
        code: ErrorCode,
        reason: String,
        message: String,
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
            ApiError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// Writes `code` and the variant's extra fields into `ext`.
    pub fn write_extensions(&self, ext: &mut ErrorExtensionValues) {
        ext.set("code", self.code().as_str());
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
            ApiError::Refused { reason, .. } => ext.set("reason", reason.as_str()),
            ApiError::RateLimited {
                retry_after_secs, ..
            } => ext.set("retryAfterSeconds", *retry_after_secs),
            ApiError::Unauthenticated { .. }
            | ApiError::LimitExceeded { .. }
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
            // Corruption, storage and format errors describe our files, not the client's input:
            // log them, tell the client nothing about them.
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
        let e: ApiError = LogError::EventTooLarge {
            event_id: Uuid::from_u128(2),
            size: 10,
            limit: 5,
        }
        .into();
        assert_eq!(e.code(), ErrorCode::LimitExceeded);
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
