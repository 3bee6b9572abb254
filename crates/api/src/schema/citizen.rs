//! The citizen's own view (issue 15): what a [`Role::Citizen`] principal may reach, and the
//! exchange of a portal's credential for a citizen token.
//!
//! Deny by default. A citizen token may select only the root fields in [`QUERY_FIELDS`] and
//! [`MUTATION_FIELDS`] (checked on the parsed document before anything runs, through inline
//! fragments and spreads), and every root field that takes a record checks that it is the
//! citizen's own ([`own_record`]). Personal fields go through [`super::access::personal`] like
//! everyone's, which asks [`may_read`] for a citizen: their own record, and of the people their
//! own record names (father, mother, spouse) the name only. Business and land data is reachable
//! only through their own record's `parcels` and `represents`: root lookups are not allowed.
//! Every read is logged in the access log like any other principal's.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Context, Object, ServerError, ServerResult, SimpleObject};
use uuid::Uuid;

use citydb_domain::{CitizenId, RecordId, RecordKind};

use super::NodeHandles;
use super::access::personal;
use crate::auth::{FieldGroup, RequestContext, Role};
use crate::citizen_token::{
    CitizenTokens, EXCHANGE_DEFAULT_LIFETIME, EXCHANGE_MAX_LIFETIME, unix_now,
};
use crate::error::ApiError;

/// Root query fields a citizen token may select (introspection included).
pub const QUERY_FIELDS: &[&str] = &[
    "__typename",
    "__schema",
    "__type",
    "me",
    "citizen",
    "history",
    "accessLog",
    "checkpoint",
    "logHead",
    "correctionRequests",
    "correctionRequest",
];

/// Root mutation fields a citizen token may select.
pub const MUTATION_FIELDS: &[&str] = &[
    "__typename",
    "revokeCitizenToken",
    "requestCorrection",
    "withdrawCorrectionRequest",
];

/// What the citizen's own record says, loaded once per operation: who they are, their PIN (so
/// `citizen(pin:)` with another number is refused without a lookup, which would tell them
/// whether the number exists), and their relatives: the people it names and their children.
#[derive(Debug, Default)]
pub struct CitizenScope {
    pub own: Uuid,
    pub pin: Option<String>,
    pub relatives: BTreeSet<Uuid>,
}

/// Filled by [`CitizenScopeCell::guard`] for citizen principals; empty for everyone else.
#[derive(Default)]
pub struct CitizenScopeCell(OnceLock<CitizenScope>);

impl CitizenScopeCell {
    pub fn get(&self) -> Option<&CitizenScope> {
        self.0.get()
    }
}

/// The caller's scope if they are a citizen (`Ok(None)` for other roles). A citizen without a
/// loaded scope is refused: fail closed.
pub fn scope<'a>(ctx: &'a Context<'_>) -> Result<Option<&'a CitizenScope>, ApiError> {
    let rc = RequestContext::of(ctx)?;
    if rc.principal.role != Role::Citizen {
        return Ok(None);
    }
    ctx.data_opt::<Arc<CitizenScopeCell>>()
        .and_then(|c| c.get())
        .map(Some)
        .ok_or_else(|| ApiError::forbidden("the citizen's own record could not be established"))
}

/// Whether a citizen may read `field` of `citizen`: every field of their own record; the name
/// of a relative (a person their record names, or a child naming them). Called by
/// [`personal`] for citizen principals.
pub fn may_read(scope: &CitizenScope, citizen: Uuid, field: &str) -> Result<(), ApiError> {
    if citizen == scope.own || (field == "name" && scope.relatives.contains(&citizen)) {
        return Ok(());
    }
    Err(ApiError::forbidden_field(
        if scope.relatives.contains(&citizen) {
            format!("a citizen sees only the name of a relative, not `{field}`")
        } else {
            "a citizen may read only their own record".to_owned()
        },
        field,
    ))
}

/// Refuses a citizen asking for a record that is not their own (other roles pass).
pub fn own_record(ctx: &Context<'_>, record: &RecordId, field: &str) -> Result<(), ApiError> {
    match scope(ctx)? {
        Some(s) if *record != RecordId::Citizen(CitizenId(s.own)) => Err(
            ApiError::forbidden_field("a citizen may read only their own record", field),
        ),
        _ => Ok(()),
    }
}

/// Refuses a citizen's lookup by a PIN other than their own, before looking.
pub fn own_pin(ctx: &Context<'_>, pin: &str) -> Result<(), ApiError> {
    match scope(ctx)? {
        Some(s) if s.pin.as_deref() != Some(pin) => Err(ApiError::forbidden_field(
            "a citizen may read only their own record",
            "pin",
        )),
        _ => Ok(()),
    }
}

/// For citizen principals, refuses root fields outside the allow-lists and loads the scope into
/// the operation's [`CitizenScopeCell`], before validation and execution: the citizen part of
/// [`super::hooks::SchemaHooks`], which gives every operation its cell.
impl CitizenScopeCell {
    /// Called with the parsed document (`parse_query`): the request and connection data are
    /// attached by now (both transports).
    pub(super) async fn guard(
        &self,
        ctx: &ExtensionContext<'_>,
        doc: &ExecutableDocument,
    ) -> ServerResult<()> {
        let Some(rc) = ctx.data_opt::<RequestContext>() else {
            return Ok(());
        };
        let Some(own) = rc
            .principal
            .citizen
            .filter(|_| rc.principal.role == Role::Citizen)
        else {
            return Ok(());
        };
        check_root_fields(doc).map_err(server_error)?;
        let handles = ctx
            .data_opt::<NodeHandles>()
            .ok_or_else(|| server_error(ApiError::internal("node handles missing")))?;
        let record = handles
            .projections
            .citizen(CitizenId(own))
            .await
            .map_err(|e| server_error(super::loaders::projection_error(e)))?;
        let mut scope = CitizenScope {
            own,
            ..CitizenScope::default()
        };
        if let Some(r) = record {
            let s = r.state;
            scope.pin = Some(s.pin.to_string());
            scope.relatives.extend(
                [s.father, s.mother, s.marriage.as_ref().map(|m| m.spouse)]
                    .into_iter()
                    .flatten()
                    .map(|c| c.uuid()),
            );
            // Their children (the citizens naming them as father or mother), as many as
            // `Citizen.children` lists.
            let children = handles
                .projections
                .children_of(&[s.id])
                .await
                .map_err(|e| server_error(super::loaders::projection_error(e)))?;
            scope
                .relatives
                .extend(children.into_values().flatten().map(|c| c.uuid()));
        }
        // A second parse of the same operation (never happens today) keeps the first scope.
        let _ = self.0.set(scope);
        Ok(())
    }
}

fn server_error(e: ApiError) -> ServerError {
    use async_graphql::ErrorExtensions;
    e.extend().into_server_error(async_graphql::Pos::default())
}

/// Refuses a document whose operations select a root field a citizen may not use. Walks each
/// operation's root selection set only (through inline fragments and spreads, each fragment
/// at most once), so the work is bounded by the document's size.
fn check_root_fields(doc: &ExecutableDocument) -> Result<(), ApiError> {
    for (_, op) in doc.operations.iter() {
        let allowed = match op.node.ty {
            OperationType::Query => QUERY_FIELDS,
            OperationType::Mutation => MUTATION_FIELDS,
            OperationType::Subscription => &[][..],
        };
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&SelectionSet> = vec![&op.node.selection_set.node];
        while let Some(set) = stack.pop() {
            for item in &set.items {
                match &item.node {
                    Selection::Field(f) => {
                        let name = f.node.name.node.as_str();
                        if !allowed.contains(&name) {
                            return Err(ApiError::forbidden_field(
                                format!("a citizen token may not use `{name}`"),
                                name,
                            ));
                        }
                    }
                    Selection::InlineFragment(i) => stack.push(&i.node.selection_set.node),
                    Selection::FragmentSpread(s) => {
                        let name = &s.node.fragment_name.node;
                        if seen.insert(name.clone())
                            && let Some(frag) = doc.fragments.get(name)
                        {
                            stack.push(&frag.node.selection_set.node);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A citizen token as issued to a portal.
#[derive(SimpleObject)]
pub struct IssuedCitizenToken {
    /// The bearer token; give it to the person's browser session only.
    pub token: String,
    /// Its id, to revoke it with `revokeCitizenToken`.
    pub token_id: String,
    /// The record the token is bound to, `citizen-<uuid>`.
    pub citizen: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Issuing and revoking citizen tokens.
#[derive(Default)]
pub struct CitizenTokenMutation;

fn tokens(ctx: &Context<'_>) -> Result<Arc<CitizenTokens>, ApiError> {
    ctx.data_opt::<Option<Arc<CitizenTokens>>>()
        .and_then(|t| t.clone())
        .ok_or_else(|| {
            ApiError::forbidden(
                "this node issues no citizen tokens (start it with --citizen-token-key)",
            )
        })
}

#[Object]
impl CitizenTokenMutation {
    /// Exchanges a trusted portal's credential and a person it has authenticated (national
    /// e-ID) for a short-lived citizen token bound to the person's record (docs/privacy.md).
    /// Only principals configured with `issue_citizen_tokens = true`; the lookup is logged in
    /// the access log as the portal's read of the person's identity.
    async fn issue_citizen_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person's PIN (12 digits).")] pin: Option<String>,
        #[graphql(desc = "Or their record id, `citizen-<uuid>`.")] citizen: Option<String>,
        #[graphql(desc = "Lifetime in seconds: 1 to 3600, default 900.")] ttl_seconds: Option<i32>,
    ) -> Result<IssuedCitizenToken, ApiError> {
        let rc = RequestContext::of(ctx)?;
        if !rc.principal.issues_citizen_tokens {
            return Err(ApiError::forbidden(format!(
                "principal {:?} may not issue citizen tokens (issue_citizen_tokens = true)",
                rc.principal.id
            )));
        }
        let tokens = tokens(ctx)?;
        let lifetime = i64::from(ttl_seconds.unwrap_or(EXCHANGE_DEFAULT_LIFETIME as i32));
        if !(1..=EXCHANGE_MAX_LIFETIME).contains(&lifetime) {
            return Err(ApiError::invalid_field(
                format!("ttlSeconds must be 1 to {EXCHANGE_MAX_LIFETIME}"),
                "ttlSeconds",
            ));
        }
        let p = &ctx
            .data::<NodeHandles>()
            .map_err(|_| ApiError::internal("node handles missing"))?
            .projections;
        let found = match (pin, citizen) {
            (Some(pin), None) => {
                let pin = pin.parse().map_err(|_| {
                    ApiError::invalid_field("not a personal identification number", "pin")
                })?;
                p.citizen_by_pin(&pin).await
            }
            (None, Some(id)) => match id.parse::<RecordId>() {
                Ok(RecordId::Citizen(c)) => p.citizen(c).await,
                _ => {
                    return Err(ApiError::invalid_field(
                        format!(
                            "not a citizen record id; expected {}-<uuid>",
                            RecordKind::Citizen
                        ),
                        "citizen",
                    ));
                }
            },
            _ => {
                return Err(ApiError::invalid_input(
                    "give exactly one of pin and citizen",
                ));
            }
        }
        .map_err(super::loaders::projection_error)?;
        let record =
            found.ok_or_else(|| ApiError::not_found("no citizen with that number or record id"))?;
        let id = record.state.id.uuid();
        personal(ctx, id, FieldGroup::Identity, "issueCitizenToken")?;
        let (token, claims) = tokens
            .issue(id, &rc.principal.id, lifetime, unix_now())
            .map_err(ApiError::internal)?;
        Ok(IssuedCitizenToken {
            token,
            token_id: claims.token_id.to_string(),
            citizen: RecordId::Citizen(record.state.id).to_string(),
            expires_at: claims.expires_at,
        })
    }

    /// Revokes citizen tokens: a citizen their own current token (log out), or every token of
    /// a citizen (`citizen:`, by a portal or an admin), effective on the next request and
    /// durable across restarts.
    async fn revoke_citizen_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Every token of this record, `citizen-<uuid>` (portals and admins).")]
        citizen: Option<String>,
    ) -> Result<bool, ApiError> {
        let rc = RequestContext::of(ctx)?;
        let tokens = tokens(ctx)?;
        let now = unix_now();
        let target = match (&citizen, rc.principal.role) {
            (None, Role::Citizen) => rc.principal.citizen,
            (Some(id), _)
                if rc.principal.issues_citizen_tokens || rc.principal.role == Role::Admin =>
            {
                match id.parse::<RecordId>() {
                    Ok(RecordId::Citizen(c)) => Some(c.uuid()),
                    _ => {
                        return Err(ApiError::invalid_field(
                            "not a citizen record id",
                            "citizen",
                        ));
                    }
                }
            }
            (Some(_), Role::Citizen) | (None, _) | (Some(_), _) => {
                return Err(ApiError::forbidden(
                    "a citizen revokes their own tokens (no argument); portals and admins name the citizen",
                ));
            }
        };
        let Some(target) = target else {
            return Err(ApiError::forbidden("no citizen to revoke tokens of"));
        };
        tokens
            .revoke_citizen(target, now)
            .map_err(ApiError::internal)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn check(q: &str) -> Result<(), ApiError> {
        check_root_fields(&parse_query(q).unwrap())
    }

    #[test]
    fn root_fields_outside_the_lists_are_refused_through_fragments() {
        assert!(check("{ me { principal } citizen(pin: \"1\") { id } }").is_ok());
        assert!(check("{ citizens { totalCount } }").is_err());
        assert!(check("{ ... on Query { parcels { totalCount } } }").is_err());
        assert!(check("query { ...F } fragment F on Query { ...G } fragment G on Query { business(code: \"1\") { id } }").is_err());
        assert!(check("query { ...F ...F } fragment F on Query { me { role } }").is_ok());
        assert!(check("mutation { registerCitizen(input: {}) { commandId } }").is_err());
        assert!(check("mutation { revokeCitizenToken }").is_ok());
        assert!(check("subscription { changes { position } }").is_err());
    }

    #[test]
    fn a_citizen_reads_their_record_and_a_relative_s_name_only() {
        let own = Uuid::now_v7();
        let father = Uuid::now_v7();
        let scope = CitizenScope {
            own,
            pin: Some("030174835130".into()),
            relatives: [father].into(),
        };
        assert!(may_read(&scope, own, "birthDate").is_ok());
        assert!(may_read(&scope, father, "name").is_ok());
        assert!(may_read(&scope, father, "pin").is_err());
        assert!(may_read(&scope, Uuid::now_v7(), "name").is_err());
    }
}
