//! The GraphQL schema over the registers: [`Query`](query::Query) for reads within scopes and
//! for auditors, [`Mutation`](mutation::Mutation) with one field per domain command, and the
//! change-feed [`Subscription`](changes::Subscription).
//!
//! Resolvers reach the node's handles through [`NodeHandles`] in the schema data; every personal
//! field goes through [`access`], which enforces field scopes and feeds the access log.

pub mod access;
mod audit;
mod basis;
mod changes;
pub mod citizen;
pub(crate) mod hooks;
mod inputs;
mod loaders;
pub mod mutation;
mod privacy;
pub mod proofs;
mod query;
mod queue;
mod records;
mod requests;
mod residence_starts;
mod restriction;
pub mod time;
mod timeline;
mod units;
mod verification;

use std::sync::Arc;

use async_graphql::Schema;

use citydb_log::EventLog;
use citydb_projections::Projections;
use citydb_registry::{Registry, RegistryError};

use crate::access_log::AccessLog;
use crate::error::{ApiError, ErrorCode};
use crate::limits::{QueryLimits, apply_limits_with};

pub use changes::Subscription;
pub use mutation::Mutation;
pub use query::Query;

/// Everything a resolver needs from the node.
#[derive(Clone)]
pub struct NodeHandles {
    pub log: Arc<dyn EventLog>,
    pub registry: Registry,
    pub projections: Projections,
    /// Today's date for correction-request deadlines (injectable: [`crate::deadlines::Clock`]).
    pub clock: crate::deadlines::Clock,
}

/// Every mutation: the domain commands, the citizen-token exchange and the correction requests.
#[derive(async_graphql::MergedObject)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    Mutation,
    citizen::CitizenTokenMutation,
    requests::CorrectionRequestMutation,
);

/// Every query: the registers', the stewardship lists that span records, the correction
/// requests (issue 15) and the feed of residence starts (issue 16).
#[derive(async_graphql::MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    Query,
    queue::QueueQuery,
    requests::CorrectionRequestQuery,
    residence_starts::ResidenceStartsQuery,
);

pub type CitySchema = Schema<QueryRoot, MutationRoot, Subscription>;

fn query_root() -> QueryRoot {
    QueryRoot(
        Query,
        queue::QueueQuery,
        requests::CorrectionRequestQuery,
        residence_starts::ResidenceStartsQuery,
    )
}

fn mutation_root() -> MutationRoot {
    MutationRoot(
        Mutation,
        citizen::CitizenTokenMutation,
        requests::CorrectionRequestMutation,
    )
}

/// Builds the schema with its limits, loaders, access-log flush and error codes.
pub fn build_schema(
    handles: NodeHandles,
    access_log: AccessLog,
    published: crate::published::Published,
    citizen_tokens: Option<Arc<crate::citizen_token::CitizenTokens>>,
    limits: &QueryLimits,
) -> CitySchema {
    let loaders = loaders::Loaders::new(&handles.projections);
    apply_limits_with::<_, _, _, hooks::SchemaHooks>(
        Schema::build(query_root(), mutation_root(), Subscription),
        limits,
    )
    .data(handles)
    .data(access_log)
    .data(published)
    .data(citizen_tokens)
    .data(loaders)
    .data(verification::VerificationGates::default())
    .finish()
}

/// The schema's SDL, as committed in `graphql/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(query_root(), mutation_root(), Subscription)
        .finish()
        .sdl()
}

/// Maps a registry error to the API's closed set of codes, keeping the domain's own code as
/// `extensions.reason`.
pub fn registry_error(e: RegistryError) -> ApiError {
    let reason = e.code().to_owned();
    let message = e.to_string();
    match e {
        RegistryError::Domain(d) => {
            let code = match d.code() {
                "DUPLICATE_KEY"
                | "RECORD_EXISTS"
                | "CORRECTION_EXISTS"
                | "CORRECTION_CONFLICT"
                | "DUPLICATE_ENTRY"
                | "DUPLICATE_MORTGAGE"
                | "CERTIFICATE_EXISTS"
                | "REDACTION_EXISTS"
                | "ALREADY_REDACTED"
                | "ALREADY_RESTRICTED" => ErrorCode::Conflict,
                "RECORD_NOT_FOUND"
                | "REDACTION_TARGET_NOT_FOUND"
                | "REDACTION_NOT_FOUND"
                | "CORRECTION_NOT_FOUND"
                | "CERTIFICATE_NOT_FOUND"
                | "MORTGAGE_NOT_FOUND" => ErrorCode::NotFound,
                "NOT_SUPERVISOR" | "SELF_REVIEW" | "NOT_PROPOSER" => ErrorCode::Forbidden,
                "UNKNOWN_CODE" => ErrorCode::UnknownCode,
                _ => ErrorCode::InvalidInput,
            };
            ApiError::Refused {
                code,
                reason,
                message,
                field: None,
            }
        }
        RegistryError::StaleVersion { .. }
        | RegistryError::Conflict { .. }
        | RegistryError::CommandIdReused { .. } => ApiError::Refused {
            code: ErrorCode::Conflict,
            reason,
            message,
            field: None,
        },
        RegistryError::Log(log) => log.into(),
        other => ApiError::internal(other),
    }
}
