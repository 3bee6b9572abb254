//! Restricted records (issue 15, `restrictRecord`): a service reading any field of one gets
//! `RESTRICTED`; stewards, supervisors and auditors read it as before (they must, to handle the
//! objection or complaint behind the restriction), and so does the citizen the record is
//! (their right of access is not restricted). Checked before the access-log note, so a refused
//! read is not logged as a read.

use async_graphql::Context;

use citydb_domain::RecordId;
use citydb_domain::privacy::Privacy;

use crate::auth::{RequestContext, Role};
use crate::error::{ApiError, ErrorCode};

/// Refuses a service's read of a field of a restricted record.
pub(super) fn unrestricted(
    ctx: &Context<'_>,
    id: RecordId,
    privacy: &Privacy,
) -> Result<(), ApiError> {
    unrestricted_if(ctx, id, privacy.is_restricted())
}

/// [`unrestricted`] for a record known only by whether it is restricted (a citizen read as a
/// summary).
pub(super) fn unrestricted_if(
    ctx: &Context<'_>,
    id: RecordId,
    restricted: bool,
) -> Result<(), ApiError> {
    if restricted && RequestContext::of(ctx)?.principal.role == Role::Service {
        return Err(ApiError::Refused {
            code: ErrorCode::Restricted,
            reason: "RECORD_RESTRICTED".to_owned(),
            message: format!("{id} is restricted: its processing by services is suspended"),
            field: None,
        });
    }
    Ok(())
}
