//! Field scopes and the access log, enforced where personal data is resolved.
//!
//! Every resolver of a citizen's personal field calls [`personal`]: it refuses a field outside
//! the principal's scopes (naming the field), and notes the read in the request's
//! [`AccessRecorder`]. When the whole response is ready, the [`AccessLogFlush`] extension writes
//! every noted read in ONE atomic append to the access log; if that fails the response is
//! replaced by an error, so personal data is never returned without its trace (fail closed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{Context, Response, ServerError};
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
        })?;
    if let Ok(recorder) = ctx.data::<Arc<AccessRecorder>>() {
        recorder.note(citizen, group);
    }
    Ok(())
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

/// Writes the request's noted reads to the access log before the response leaves.
pub struct AccessLogFlush;

impl ExtensionFactory for AccessLogFlush {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AccessLogFlushExtension)
    }
}

struct AccessLogFlushExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for AccessLogFlushExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let recorder = ctx.data_opt::<Arc<AccessRecorder>>().cloned();
        if let Some(r) = &recorder
            && let Ok(mut op) = r.operation.lock()
        {
            *op = operation_name.map(str::to_owned);
        }
        let response = next.run(ctx, operation_name).await;
        let (Some(recorder), Some(rc), Some(log)) = (
            recorder,
            ctx.data_opt::<RequestContext>(),
            ctx.data_opt::<AccessLog>(),
        ) else {
            return response;
        };
        let reads = recorder.take();
        if reads.is_empty() {
            return response;
        }
        let operation = operation_name.unwrap_or("anonymous");
        match log.record(rc, &reads, operation).await {
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
