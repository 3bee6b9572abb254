//! The schema's own hooks on every operation, as ONE async-graphql extension.
//!
//! Why one: async-graphql runs every resolved field through each registered extension's
//! `resolve` hook, a boxed future per extension even when the hook only passes the field on.
//! With the four hooks below as four extensions, a PIN lookup's ~21 fields cost 84 such futures;
//! the chain of six extensions was ~10 % of the request's instructions (docs/benchmarks.md,
//! "Validation kept, and one extension for the schema's hooks"). The limits' two extensions
//! ([`crate::limits`]) are the only others.
//!
//! Order (that of the four extensions this replaces), on every transport:
//! 1. `prepare_request`: old-shape variables rewritten ([`legacy::upgrade_variables`]), the
//!    operation's access recorder and citizen scope attached, then the WebSocket operation rate
//!    ([`throttle::admit_operation`]);
//! 2. `parse_query`: a citizen principal's root fields checked and scope loaded
//!    ([`CitizenScopeCell::guard`]);
//! 3. `execute` and `subscribe`: the reads flushed to the access log before the response leaves
//!    ([`OperationReads`]).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextSubscribe,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerResult, Variables};
use futures_util::stream::BoxStream;

use super::access::OperationReads;
use super::citizen::CitizenScopeCell;
use super::inputs::legacy;
use crate::throttle;

/// Installed by [`super::build_schema`].
pub struct OperationHooks;

impl ExtensionFactory for OperationHooks {
    /// Called once per operation (per request on every transport): the extension owns that
    /// operation's recorder and citizen scope.
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationHooksExtension {
            reads: OperationReads::new(),
            citizen: Arc::new(CitizenScopeCell::default()),
        })
    }
}

struct OperationHooksExtension {
    reads: OperationReads,
    citizen: Arc<CitizenScopeCell>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationHooksExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = legacy::upgrade_variables(ctx, request);
        let request = self.reads.attach(request).data(self.citizen.clone());
        throttle::admit_operation(ctx)?;
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
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
