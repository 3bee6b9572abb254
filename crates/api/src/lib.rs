//! citydb's GraphQL API infrastructure, shared by whatever schema serves the registers:
//!
//! - [`auth`]: principals, roles and field-group scopes from a TOML file, bearer tokens stored
//!   only as hashes, and the per-request [`RequestContext`] (end user, case, purpose,
//!   correlation id, as in Estonia's X-Road) with the access checks resolvers call.
//! - [`citizen_token`]: short-lived citizen tokens signed by citydb, bound to a person's record
//!   id, and their revocations (issue 15; docs/privacy.md).
//! - [`error`]: [`ApiError`] and its closed set of `extensions.code` values.
//! - [`access_log`]: the hash-chained log of every read of personal data, written before the
//!   data is returned.
//! - [`limits`]: depth, complexity and page-size limits, and the extension that gives every
//!   GraphQL error a code.
//! - [`schema`]: the GraphQL schema over the registers (queries, one mutation per domain
//!   command, the change-feed subscription).
//! - [`node`]: one node over the logs its store opened (`citydb-store`; no backend is known
//!   here), and its router.
//! - [`server`]: the axum router (`/graphql` over POST, GET and WebSocket, probes, GraphiQL,
//!   `/metrics`), the request log, and graceful serving.
//! - [`metrics`]: Prometheus counters, histograms and gauges, written by hand, and the
//!   [`MeteredLog`] wrapper that counts appends.
//!
//! The Query, Mutation and Subscription types live elsewhere; everything here is generic over
//! the schema. A resolver reads the context with [`RequestContext::of`] (or
//! `ctx.data::<RequestContext>()`), checks it, records the read with [`AccessLog::record`]
//! (schema data), and returns [`ApiError`]s with `?`.

pub mod access_log;
pub mod auth;
pub mod bounds;
pub mod citizen_token;
mod console;
pub mod deadlines;
pub mod documents;
pub mod error;
mod graphiql;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod published;
pub mod readiness;
mod redactions;
pub mod reload;
pub mod schema;
pub mod server;
pub mod startup;
pub mod throttle;
mod validated;
pub mod witnesses;

pub use access_log::{AccessEntry, AccessLog, PersonalDataRead};
pub use auth::{
    AuthConfig, AuthConfigError, AuthError, Authenticator, FieldGroup, Principal, RequestContext,
    Role, Token, hash_token,
};
pub use citizen_token::{CitizenClaims, CitizenTokenKey, CitizenTokens};
pub use deadlines::{Clock, DeadlineKeeper};
pub use error::{ApiError, ErrorCode};
pub use graphiql::ASSETS as GRAPHIQL_ASSETS;
pub use limits::{Limits, QueryLimits, apply_limits};
pub use metrics::{LogKind, MeteredLog, Metrics};
pub use node::{Node, NodeError, NodeOptions};
pub use server::{
    Readiness, ServerLimits, ServerState, metrics_router, router, serve, shutdown_signal,
};
pub use throttle::PrincipalLimits;
pub use witnesses::{WitnessConfig, WitnessOutcome, Witnesses};
