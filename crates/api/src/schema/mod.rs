//! The GraphQL schema over the registers: [`Query`](query::Query) for reads within scopes and
//! for auditors, [`Mutation`](mutation::Mutation) with one field per domain command, and the
//! change-feed [`Subscription`](changes::Subscription).
//!
//! Resolvers reach the node's handles through [`NodeHandles`] in the schema data; every personal
//! field goes through [`access`], which enforces field scopes and feeds the access log.

pub mod access;
mod audit;
mod changes;
mod loaders;
pub mod mutation;
pub mod proofs;
mod query;
mod records;
mod requests;
pub mod time;
mod verification;

use std::sync::Arc;

use async_graphql::{MergedObject, Schema};

use citydb_log::EventLog;
use citydb_projections::Projections;
use citydb_registry::{Registry, RegistryError};

use crate::access_log::AccessLog;
use crate::error::{ApiError, ErrorCode};
use crate::limits::{QueryLimits, apply_limits};

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

/// The query root: the registers' reads and the correction requests (issue 15).
#[derive(MergedObject)]
pub struct QueryRoot(Query, requests::CorrectionRequestQuery);

/// The mutation root: one field per domain command, and the correction requests.
#[derive(MergedObject)]
pub struct MutationRoot(Mutation, requests::CorrectionRequestMutation);

fn roots() -> (QueryRoot, MutationRoot) {
    (
        QueryRoot(Query, requests::CorrectionRequestQuery),
        MutationRoot(Mutation, requests::CorrectionRequestMutation),
    )
}

pub type CitySchema = Schema<QueryRoot, MutationRoot, Subscription>;

/// Builds the schema with its limits, loaders, access-log flush and error codes.
pub fn build_schema(
    handles: NodeHandles,
    access_log: AccessLog,
    published: crate::published::Published,
    limits: &QueryLimits,
) -> CitySchema {
    let loaders = loaders::Loaders::new(&handles.projections);
    let (query, mutation) = roots();
    apply_limits(Schema::build(query, mutation, Subscription), limits)
        .extension(access::AccessLogFlush)
        .extension(crate::throttle::OperationRate)
        .data(handles)
        .data(access_log)
        .data(published)
        .data(loaders)
        .data(verification::VerificationGates::default())
        .finish()
}

/// The schema's SDL, as committed in `graphql/schema.graphql`.
pub fn sdl() -> String {
    let (query, mutation) = roots();
    Schema::build(query, mutation, Subscription).finish().sdl()
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
                | "CERTIFICATE_EXISTS" => ErrorCode::Conflict,
                "RECORD_NOT_FOUND"
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
            }
        }
        RegistryError::StaleVersion { .. }
        | RegistryError::Conflict { .. }
        | RegistryError::CommandIdReused { .. } => ApiError::Refused {
            code: ErrorCode::Conflict,
            reason,
            message,
        },
        RegistryError::Log(log) => log.into(),
        other => ApiError::internal(other),
    }
}
