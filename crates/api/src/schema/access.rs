//! Field scopes and the access log, enforced where personal data is resolved.
//!
//! Every resolver of a citizen's personal field calls [`personal`]: it refuses a field outside
//! the principal's scopes (naming the field), and notes the read in the operation's
//! [`AccessRecorder`]. When the operation's response is ready, [`OperationReads`] (in the
//! schema's [`super::hooks::SchemaHooks`], in the limits' extension)
//! writes every noted read as ONE access-log entry (one per operation, listing each citizen
//! read and its field groups), durable and group-committed with the concurrent operations'
//! entries; if that fails the response is replaced by an error, so personal data is never
//! returned without its trace (fail closed).
//!
//! Invariant: no personal read without its trace, on every transport, by construction. The
//! extension gives every operation its recorder (`prepare_request`, which every
//! transport runs: HTTP POST and GET, each operation of a batch, both WebSocket protocols), so
//! no transport can forget one; [`personal`] refuses when there is none; the response of a
//! query or mutation is flushed in `execute`, and every event of a subscription in `subscribe`,
//! before it leaves; and a schema without an [`AccessLog`] withholds the data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{ExtensionContext, NextExecute, NextSubscribe};
use async_graphql::{Context, Request, Response, ServerError};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::access_log::AccessLog;
use crate::auth::{FieldGroup, RequestContext, Role};
use crate::error::ApiError;

/// Reads of personal data noted during one request: citizen → field groups.
#[derive(Default)]
pub struct AccessRecorder {
    reads: Mutex<BTreeMap<Uuid, BTreeSet<FieldGroup>>>,
    operation: Mutex<Option<String>>,
}

impl AccessRecorder {
    fn note(&self, citizen: Uuid, group: FieldGroup) {
        if let Ok(mut reads) = self.reads.lock() {
            reads.entry(citizen).or_default().insert(group);
        }
    }

    fn take(&self) -> Vec<(Uuid, Vec<FieldGroup>)> {
        self.reads
            .lock()
            .map(|mut r| {
                std::mem::take(&mut *r)
                    .into_iter()
                    .map(|(id, groups)| (id, groups.into_iter().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Checks that the caller may read `field` (in `group`) of citizen `citizen`, and notes the read.
pub fn personal(
    ctx: &Context<'_>,
    citizen: Uuid,
    group: FieldGroup,
    field: &str,
) -> Result<(), ApiError> {
    may_read_personal(ctx, group, field)?;
    if let Some(scope) = super::citizen::scope(ctx)? {
        // A citizen: their own record, and a relative's name (docs/privacy.md).
        super::citizen::may_read(scope, citizen, field)?;
    }
    // Fail closed: a read that nothing would log does not happen.
    let recorder = ctx.data::<Arc<AccessRecorder>>().map_err(|_| {
        ApiError::internal("personal data read outside an operation with an access recorder")
    })?;
    recorder.note(citizen, group);
    Ok(())
}

/// Whether the caller may read `field` (in `group`) of citizens at all: what [`personal`]
/// checks before it knows which citizen. A lookup by a personal key (a PIN) asks this before
/// looking, then [`personal`] for the citizen found.
pub fn may_read_personal(
    ctx: &Context<'_>,
    group: FieldGroup,
    field: &str,
) -> Result<(), ApiError> {
    let rc = RequestContext::of(ctx)?;
    if rc.principal.role == Role::Admin {
        // Operators run the system; they do not read citizens' data (separation of duties).
        return Err(ApiError::forbidden_field(
            format!("the admin role may not read personal data (field `{field}`)"),
            field,
        ));
    }
    rc.require_personal_data_access(&[group])
        .map_err(|e| match e {
            ApiError::Forbidden {
                message,
                field: Some(g),
            } if g == group.as_str() => ApiError::forbidden_field(
                format!("{message}: field `{field}` is in group `{g}`"),
                field,
            ),
            other => other,
        })
}

/// Checks a non-personal field group (business or land data) for services.
pub fn scoped(ctx: &Context<'_>, group: FieldGroup, field: &str) -> Result<(), ApiError> {
    let rc = RequestContext::of(ctx)?;
    if rc.principal.role == Role::Service && !rc.principal.field_groups.contains(&group) {
        return Err(ApiError::forbidden_field(
            format!(
                "principal {:?} may not read field `{field}` (group `{group}`)",
                rc.principal.id
            ),
            field,
        ));
    }
    Ok(())
}

/// Refuses unless the caller has one of `roles`.
pub fn require(ctx: &Context<'_>, roles: &[Role]) -> Result<(), ApiError> {
    RequestContext::of(ctx)?.require_role(roles)
}

/// One operation's reads and their flush to the access log before the response leaves: the
/// access part of [`super::hooks::SchemaHooks`], created with each operation.
pub(super) struct OperationReads {
    recorder: Arc<AccessRecorder>,
}

/// What a flush needs, taken from the operation's context.
#[derive(Clone)]
struct Flush {
    recorder: Arc<AccessRecorder>,
    context: Option<RequestContext>,
    log: Option<AccessLog>,
}

impl Flush {
    /// The request context comes from the request's data (HTTP) or the connection's
    /// (WebSocket); a flush without one withholds the data.
    fn new(recorder: &Arc<AccessRecorder>, ctx: &ExtensionContext<'_>) -> Self {
        Flush {
            recorder: recorder.clone(),
            context: ctx.data_opt::<RequestContext>().cloned(),
            log: ctx.data_opt::<AccessLog>().cloned(),
        }
    }

    /// Writes the reads noted since the last flush, or replaces `response` by an error.
    async fn flush(&self, response: Response) -> Response {
        let reads = self.recorder.take();
        if reads.is_empty() {
            return response;
        }
        let operation = self
            .recorder
            .operation
            .lock()
            .ok()
            .and_then(|op| op.clone())
            .unwrap_or_else(|| "anonymous".to_owned());
        let written = match (&self.context, &self.log) {
            (Some(rc), Some(log)) => log.record(rc, &reads, &operation).await,
            _ => Err(ApiError::internal(
                "personal data was read in a schema without an access log",
            )),
        };
        match written {
            Ok(()) => response,
            Err(e) => {
                // Fail closed: the data goes nowhere without its trace.
                let mut err = ServerError::new(
                    "the access log could not be written; personal data is withheld",
                    None,
                );
                e.write_extensions(err.extensions.get_or_insert_with(Default::default));
                Response::from_errors(vec![err])
            }
        }
    }
}

impl OperationReads {
    pub(super) fn new() -> Self {
        OperationReads {
            recorder: Arc::new(AccessRecorder::default()),
        }
    }

    /// Every operation, on every transport, gets its own recorder here (`prepare_request`).
    pub(super) fn attach(&self, request: Request) -> Request {
        request.data(self.recorder.clone())
    }

    /// Runs the operation (`execute`) and flushes what it read.
    pub(super) async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Ok(mut op) = self.recorder.operation.lock() {
            *op = operation_name.map(str::to_owned);
        }
        let response = next.run(ctx, operation_name).await;
        Flush::new(&self.recorder, ctx).flush(response).await
    }

    /// Subscriptions: each event is flushed before it is sent. (A query or mutation sent over
    /// WebSocket was already flushed in `execute`; its recorder is empty here.)
    pub(super) fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let flush = Flush::new(&self.recorder, ctx);
        next.run(ctx, stream)
            .then(move |response| {
                let f = flush.clone();
                async move { f.flush(response).await }
            })
            .boxed()
    }
}
