//! The feed of residence starts by valid time (issue 16, item 4): "everyone whose residence in
//! commune X began in month M, as known now", read from the projections' `residence_starts`
//! table (`citydb_projections::ResidenceStart`).
//!
//! Personal data: the caller holds the Residence and Identity field groups (a service names
//! its officer, case and purpose, as for every personal read); the admin role is refused, as
//! for `citizens`. Every citizen of a page is noted in the access log (group Residence) as the
//! page is served, whatever the caller selects of it: even a cursor carries the start date.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object};

use citydb_domain::citizen::{Citizen as CitizenState, ResidenceKind as DomainKind};
use citydb_domain::{AdminUnitCode, AdminUnitTable, Date as DomainDate, RecordId};
use citydb_projections::{Cursor, ProjectionError, ResidenceStartFilter, Versioned};

use super::access::personal;
use super::inputs::{Date, ResidenceKind};
use super::mutation::unknown_code;
use super::query::{handles, page_cost, page_size};
use super::records::{AdminUnit, Citizen};
use super::restriction::unrestricted;
use crate::auth::{FieldGroup, RequestContext, Role};
use crate::error::ApiError;

/// The `residenceStarts` root field, merged into `Query`.
#[derive(Default)]
pub struct ResidenceStartsQuery;

#[Object]
impl ResidenceStartsQuery {
    /// Everyone whose residence (permanent or temporary, or only `kind`) in `commune` began in
    /// `month` (`YYYY-MM`), **as known now**: each residence period a citizen's record now holds
    /// to have begun, corrections included — one that fixed the past moved or removed the start
    /// it corrected; one that changed from a date added a start on that date and kept the old
    /// one. A feed of starts, not of current residents: a person who moved in and away again
    /// is still listed. A merged-away duplicate keeps its starts (see its `mergedInto`).
    /// Listed from the projections (current only on the recorded axis: no `asOf`), ordered by
    /// start date, then the citizen's registration order, then kind (permanent first), with a
    /// keyset cursor. Needs the Residence and Identity field groups; every citizen listed is
    /// logged in the access log.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn residence_starts(
        &self,
        ctx: &Context<'_>,
        commune: String,
        month: String,
        kind: Option<ResidenceKind>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ResidenceStart, EmptyFields, EmptyFields>, ApiError> {
        let first = page_size(ctx, first)?;
        let rc = RequestContext::of(ctx)?;
        if rc.principal.role == Role::Admin {
            return Err(ApiError::forbidden_field(
                "the admin role may not list citizens' residences",
                "residenceStarts",
            ));
        }
        rc.require_personal_data_access(&[FieldGroup::Residence, FieldGroup::Identity])?;
        let (from, until) = month_range(&month)?;
        let filter = ResidenceStartFilter {
            commune: commune_arg(&commune)?,
            from,
            until,
            kind: kind.map(|k| match k {
                ResidenceKind::Permanent => DomainKind::Permanent,
                ResidenceKind::Temporary => DomainKind::Temporary,
            }),
        };
        let after = after
            .map(|a| a.parse::<Cursor>().map_err(|_| bad_cursor()))
            .transpose()?;
        let page = handles(ctx)?
            .projections
            .residence_starts(&filter, first, after)
            .await
            .map_err(|e| match e {
                ProjectionError::InvalidCursor => bad_cursor(),
                other => super::loaders::projection_error(other),
            })?;
        let mut conn = Connection::new(false, page.has_next_page);
        for edge in page.edges {
            let start = edge.node;
            // Noted before anything of the row leaves (fail closed: no recorder, no page).
            personal(
                ctx,
                start.citizen.state.id.uuid(),
                FieldGroup::Residence,
                "residenceStarts",
            )?;
            conn.edges.push(Edge::new(
                edge.cursor.to_string(),
                ResidenceStart {
                    citizen: start.citizen,
                    kind: match start.kind {
                        DomainKind::Permanent => ResidenceKind::Permanent,
                        DomainKind::Temporary => ResidenceKind::Temporary,
                    },
                    commune: start.commune,
                    since: start.since,
                },
            ));
        }
        Ok(conn)
    }
}

fn bad_cursor() -> ApiError {
    ApiError::invalid_field("not a cursor issued by this query", "after")
}

/// A commune argument: a Hải Phòng unit, current or predecessor (stored starts may name one);
/// a code in no list is `UNKNOWN_CODE`, as on commands and the `citizens` filter.
fn commune_arg(value: &str) -> Result<AdminUnitCode, ApiError> {
    let code: AdminUnitCode = value
        .parse()
        .map_err(|e| ApiError::invalid_field(format!("commune: {e}"), "commune"))?;
    AdminUnitTable::hai_phong_2025()
        .knows(code)
        .map_err(|u| unknown_code(&u, "commune"))?;
    Ok(code)
}

/// `YYYY-MM` as the start dates it covers: its first day, and the first day after it.
fn month_range(month: &str) -> Result<(DomainDate, DomainDate), ApiError> {
    let invalid = || ApiError::invalid_field(format!("month: {month:?} is not YYYY-MM"), "month");
    let (year, number) = month.split_once('-').ok_or_else(invalid)?;
    if year.len() != 4 || number.len() != 2 {
        return Err(invalid());
    }
    let digits = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (year, number) = digits(year).zip(digits(number)).ok_or_else(invalid)?;
    let from = DomainDate::new(year, number, 1).map_err(|_| invalid())?;
    let (next_year, next) = if number == 12 {
        (year + 1, 1)
    } else {
        (year, number + 1)
    };
    // The last month of the last year a date can hold has no first day after it: refused.
    let until = DomainDate::new(next_year, next, 1).map_err(|_| invalid())?;
    Ok((from, until))
}

/// One residence start: who, which residence, where and from when.
pub struct ResidenceStart {
    citizen: Versioned<CitizenState>,
    kind: ResidenceKind,
    commune: AdminUnitCode,
    since: DomainDate,
}

impl ResidenceStart {
    /// A restricted record's rows are refused to services, as its fields are.
    fn guard(&self, ctx: &Context<'_>) -> Result<(), ApiError> {
        let state = &self.citizen.state;
        unrestricted(ctx, RecordId::Citizen(state.id), &state.privacy)
    }
}

/// One residence start of the feed: who began which residence, where and from when, as known
/// now.
#[Object]
impl ResidenceStart {
    /// The citizen, as now projected (each field checked and logged as any citizen's).
    async fn citizen(&self) -> Citizen {
        Citizen(self.citizen.clone().into(), None)
    }

    /// Permanent (thường trú) or temporary (tạm trú).
    async fn kind(&self, ctx: &Context<'_>) -> Result<ResidenceKind, ApiError> {
        self.guard(ctx)?;
        Ok(self.kind)
    }

    /// The commune the residence is in (the one asked for).
    async fn commune(&self, ctx: &Context<'_>) -> Result<AdminUnit, ApiError> {
        self.guard(ctx)?;
        Ok(AdminUnit::new(self.commune.to_string()))
    }

    /// The day the residence began, as known now.
    async fn since(&self, ctx: &Context<'_>) -> Result<Date, ApiError> {
        self.guard(ctx)?;
        Ok(Date(self.since.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_its_days() {
        let (from, until) = month_range("2025-03").expect("month");
        assert_eq!(
            (from.to_string(), until.to_string()),
            ("2025-03-01".into(), "2025-04-01".into())
        );
        let (from, until) = month_range("2025-12").expect("month");
        assert_eq!(
            (from.to_string(), until.to_string()),
            ("2025-12-01".into(), "2026-01-01".into())
        );
        for bad in [
            "2025-3",
            "2025-13",
            "2025-00",
            "25-03",
            "2025-03-01",
            "２０２５-03",
            "+025-03",
            "",
        ] {
            assert!(
                matches!(month_range(bad), Err(ApiError::InvalidInput { field: Some(ref f), .. }) if f == "month"),
                "{bad}"
            );
        }
    }
}
