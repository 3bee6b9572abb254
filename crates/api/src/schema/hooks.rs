//! The schema's own hooks on every operation, run inside the limits' one extension
//! ([`crate::limits::OperationHooks`]).
//!
//! Why not an extension: upstream async-graphql runs every resolved field through each
//! registered extension's `resolve` hook, a boxed future per extension even when the hook only
//! passes the field on. With these hooks as four extensions, a PIN lookup's ~21 fields cost 84
//! such futures; the chain of six extensions was ~10 % of the request's instructions, and the
//! last extension of the schema's own ~2 % of a search page's (docs/benchmarks.md, "Validation
//! kept, and one extension for the schema's hooks" and "The schema's hooks inside the limits'
//! extension"). The schema has one extension, [`crate::limits::Limits`], and since async-graphql
//! is patched (vendor/README.md) an extension without a `resolve` hook costs nothing per field.
//!
//! Order (that of the four extensions this replaces), on every transport, after the limits'
//! bounds and before their error codes:
//! 1. `prepare_request`: old-shape variables rewritten ([`legacy::upgrade_variables`]), the
//!    operation's access recorder, citizen scope and read batches ([`Batches`]) attached, then
//!    the WebSocket operation rate ([`throttle::admit_operation`]);
//! 2. `parsed`: a citizen principal's root fields checked and scope loaded
//!    ([`CitizenScopeCell::guard`]);
//! 3. `execute` and `subscribe`: the reads flushed to the access log before the response leaves
//!    ([`OperationReads`]).

use std::sync::Arc;

use async_graphql::extensions::{ExtensionContext, NextExecute, NextSubscribe};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerResult};
use futures_util::stream::BoxStream;

use super::access::OperationReads;
use super::citizen::CitizenScopeCell;
use super::inputs::legacy;
use super::loaders::Batches;
use crate::limits::OperationHooks;
use crate::throttle;

/// Given to [`crate::limits::apply_limits_with`] by [`super::build_schema`]: one per operation
/// (per request on every transport), owning that operation's recorder, citizen scope and read
/// batches.
pub(super) struct SchemaHooks {
    reads: OperationReads,
    citizen: Arc<CitizenScopeCell>,
    batches: Arc<Batches>,
}

#[async_graphql::async_trait::async_trait]
impl OperationHooks for SchemaHooks {
    fn for_operation() -> Self {
        SchemaHooks {
            reads: OperationReads::new(),
            citizen: Arc::new(CitizenScopeCell::default()),
            batches: Arc::default(),
        }
    }

    fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
    ) -> ServerResult<Request> {
        let request = legacy::upgrade_variables(ctx, request);
        let request = self
            .reads
            .attach(request)
            .data(self.citizen.clone())
            .data(self.batches.clone());
        throttle::admit_operation(ctx)?;
        Ok(request)
    }

    async fn parsed(
        &self,
        ctx: &ExtensionContext<'_>,
        doc: &ExecutableDocument,
    ) -> ServerResult<()> {
        self.citizen.guard(ctx, doc).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.reads.execute(ctx, operation_name, next).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        self.reads.subscribe(ctx, stream, next)
    }
}
