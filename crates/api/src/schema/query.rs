//! The Query root: records for everyone within their scopes; history, as-of state,
//! verification and the access log for auditors.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, SimpleObject};

use citydb_domain::{
    AdminUnitCode, AdminUnitTable, BusinessId, CitizenId, EnterpriseCode, LandUseCode,
    LandUseCodeError, ParcelId, ParcelKey, PersonalIdNumber, RecordId, RecordKind,
};
use citydb_log::{Hash, LogHead as Head, StreamId};
use citydb_projections::{BusinessFilter, CitizenFilter, Cursor, ParcelFilter, Versioned};

use super::NodeHandles;
use super::access::{may_read_personal, personal, require, scoped};
use super::audit::{AccessRecord, LogEvent, LogHead, Verification};
use super::basis::{AsOf, Basis, Kind, records_at, resolve};
use super::changes::{Change, ChangePage, known_event_types, position_in_log, wanted};
use super::citizen;
use super::mutation::unknown_code;
use super::proofs::{self, ConsistencyProof, InclusionProof, PublishedLogName, SignedCheckpoint};
use super::records::{
    Business, BusinessStatusKind, Citizen, CitizenBody, CitizenStatus, Parcel, ParcelStatusKind,
    SUMMARY_FIELDS,
};
use super::verification::VerificationGates;
use crate::access_log::AccessLog;
use crate::auth::{FieldGroup, RequestContext, Role};
use crate::error::ApiError;
use crate::limits::QueryLimits;
use crate::published::Published;

/// The order `history` lists a record's events in.
#[derive(async_graphql::Enum, Copy, Clone, PartialEq, Eq)]
pub enum HistoryOrder {
    /// As recorded: the log's order.
    Recorded,
    /// By valid time: when each fact holds in the world.
    Valid,
}

/// Who the caller is, as the server sees it.
#[derive(SimpleObject)]
pub struct Me {
    pub id: String,
    pub role: String,
    pub field_groups: Vec<String>,
    pub purposes: Vec<String>,
    pub end_user: Option<String>,
    pub case: Option<String>,
    pub correlation_id: String,
}

/// Roles that may look into the past and at raw events.
/// A citizen reads only their own record's history (checked by `citizen::own_record`).
pub(super) const HISTORY_ROLES: [Role; 4] = [
    Role::Steward,
    Role::Supervisor,
    Role::Auditor,
    Role::Citizen,
];
/// A citizen reads only their own access log (checked by `citizen::own_record`).
const ACCESS_LOG_ROLES: [Role; 3] = [Role::Auditor, Role::Admin, Role::Citizen];
const AUDIT_ROLES: [Role; 2] = [Role::Auditor, Role::Admin];

pub(super) fn published<'a>(ctx: &'a Context<'_>) -> Result<&'a Published, ApiError> {
    ctx.data::<Published>()
        .map_err(|_| ApiError::internal("published logs missing"))
}

pub(super) fn handles<'a>(ctx: &'a Context<'_>) -> Result<&'a NodeHandles, ApiError> {
    ctx.data::<NodeHandles>()
        .map_err(|_| ApiError::internal("node handles missing"))
}

/// The complexity of a whole-log verification: it reads every event. Under the default limit
/// (2,000) an auditor verifies the register log and the access log and reads a page of the
/// access log in one request (graphql/examples/11-*); four verifications in one request, or
/// 200 aliased ones, are refused before any runs.
pub const WHOLE_LOG_COST: usize = 500;
/// The complexity of verifying one record's stream (a record's history is short).
pub const STREAM_COST: usize = 10;

/// The complexity of a paged field: its page size times what each item selects. An absent
/// `first` costs a default page ([`QueryLimits::default`]); a bad one costs one page of one, and
/// the resolver refuses it. Complexity functions read only non-string arguments: validations
/// are kept by the class of string variables, not their text (`crate::validated`).
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let page = match first {
        None => QueryLimits::default().max_page_size,
        Some(n) => usize::try_from(n).unwrap_or(1).max(1),
    };
    page.saturating_mul(child_complexity.max(1))
}

pub(super) fn page_size(ctx: &Context<'_>, first: Option<i32>) -> Result<usize, ApiError> {
    ctx.data::<QueryLimits>()
        .map(|l| l.page_size(first))
        .unwrap_or_else(|_| QueryLimits::default().page_size(first))
}

/// Longest name search, in characters: longer than any name the registers hold.
pub const MAX_SEARCH_CHARS: usize = 200;

/// A name search must hold something to search for: text made only of punctuation (`*`, `"`,
/// `%`) has no word to match, and answering it with every record would hide the mistake.
fn search_text(search: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(text) = search else { return Ok(None) };
    if text.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::invalid_field(
            format!("search is longer than {MAX_SEARCH_CHARS} characters"),
            "search",
        ));
    }
    if !text.chars().any(char::is_alphanumeric) {
        return Err(ApiError::invalid_field(
            "search holds no letter or digit to search for",
            "search",
        ));
    }
    Ok(Some(text))
}

fn cursor(after: Option<String>) -> Result<Option<Cursor>, ApiError> {
    after
        .map(|a| {
            a.parse::<Cursor>()
                .map_err(|_| ApiError::invalid_field("not a cursor issued by this query", "after"))
        })
        .transpose()
}

fn parse<T: std::str::FromStr>(value: &str, field: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse::<T>()
        .map_err(|e| ApiError::invalid_field(format!("{field}: {e}"), field))
}

/// An administrative unit a filter names: a Hải Phòng unit, current or predecessor (stored
/// historical facts may carry one). A code in no list is refused with `UNKNOWN_CODE`, as on
/// commands, rather than answered with an empty page.
fn admin_unit_filter(value: &str, field: &str) -> Result<AdminUnitCode, ApiError> {
    let code: AdminUnitCode = parse(value, field)?;
    AdminUnitTable::hai_phong_2025()
        .knows(code)
        .map_err(|u| unknown_code(&u, field))?;
    Ok(code)
}

fn land_use_filter(value: &str, field: &str) -> Result<LandUseCode, ApiError> {
    value.parse::<LandUseCode>().map_err(|e| match e {
        LandUseCodeError::Unknown(u) => unknown_code(&u, field),
    })
}

/// A PIN argument: digits 1-3 must name a province or a country of the lists, so a number in
/// no list gets `UNKNOWN_CODE` wherever in the code space it falls (`097…` and `999…` alike).
fn pin_arg(value: &str, field: &str) -> Result<PersonalIdNumber, ApiError> {
    value
        .parse::<PersonalIdNumber>()
        .map_err(|e| match e.unknown_code() {
            Some(u) => unknown_code(u, field),
            None => ApiError::invalid_field(format!("{field}: {e}"), field),
        })
}

/// A parcel key argument: both of its administrative units must be known.
fn parcel_key_arg(value: &str, field: &str) -> Result<ParcelKey, ApiError> {
    let key: ParcelKey = parse(value, field)?;
    let table = AdminUnitTable::hai_phong_2025();
    for code in [key.unit(), key.predecessor_unit()] {
        table.knows(code).map_err(|u| unknown_code(&u, field))?;
    }
    Ok(key)
}

/// A record id given as `kind-<uuid>` or as a bare UUID of the expected kind.
fn record_id(value: &str, kind: RecordKind, field: &str) -> Result<RecordId, ApiError> {
    let kind = kind.as_str();
    let text = if value.contains('-') && value.starts_with(kind) {
        value.to_owned()
    } else {
        format!("{kind}-{value}")
    };
    let id: RecordId = parse(&text, field)?;
    if id.kind().as_str() != kind {
        return Err(ApiError::invalid_field(
            format!("{field} is not a {kind} id"),
            field,
        ));
    }
    Ok(id)
}

fn exactly_one<'a>(
    a: (&str, Option<&'a str>),
    b: (&str, Option<&'a str>),
) -> Result<(bool, &'a str), ApiError> {
    match (a.1, b.1) {
        (Some(v), None) => Ok((true, v)),
        (None, Some(v)) => Ok((false, v)),
        _ => Err(ApiError::invalid_input(format!(
            "give exactly one of `{}` and `{}`",
            a.0, b.0
        ))),
    }
}

/// The answer to a single-record lookup: the current state, or (with `asOf`) the state at that
/// point, with the basis it was read at. `asked` is the record asked for by id, if it was asked
/// by id: a record that exists now was found either way, but one that was asked by id may have
/// existed only in the past.
async fn at<K: Kind>(
    ctx: &Context<'_>,
    current: Option<Versioned<K::State>>,
    asked: Option<RecordId>,
    as_of: Option<AsOf>,
    id_of: impl Fn(&K::State) -> RecordId,
) -> Result<Option<(Versioned<K::State>, Basis)>, ApiError> {
    let Some(as_of) = as_of else {
        return Ok(current.map(|c| (c, None)));
    };
    // Boxed: the past read's futures would otherwise make this future, and every lookup
    // that awaits it, as large as the rare `asOf` path needs.
    Box::pin(at_past::<K>(ctx, current, asked, as_of, id_of)).await
}

/// [`at`] with an `asOf`.
async fn at_past<K: Kind>(
    ctx: &Context<'_>,
    current: Option<Versioned<K::State>>,
    asked: Option<RecordId>,
    as_of: AsOf,
    id_of: impl Fn(&K::State) -> RecordId,
) -> Result<Option<(Versioned<K::State>, Basis)>, ApiError> {
    let Some(past) = resolve(ctx, &as_of).await? else {
        return Ok(None);
    };
    let id = match (&current, asked) {
        (Some(c), _) => id_of(&c.state),
        (None, Some(id)) => id,
        (None, None) => return Ok(None),
    };
    Ok(records_at(ctx, past, [id], K::state)
        .await?
        .pop()
        .map(|v| (v, Some(past))))
}

/// A projections page as a Relay connection of `wrap`ped nodes.
fn connection<T, N: async_graphql::OutputType>(
    page: citydb_projections::Page<T>,
    wrap: impl Fn(T) -> N,
) -> Connection<String, N, EmptyFields, EmptyFields> {
    let mut conn = Connection::new(false, page.has_next_page);
    conn.edges.extend(
        page.edges
            .into_iter()
            .map(|e| Edge::new(e.cursor.to_string(), wrap(e.node))),
    );
    conn
}

/// Whether every field this connection field's selection asks of its nodes (through `edges {
/// node }` and `nodes`, aliases and fragments included) is in `fields`. A field under a
/// `@skip`/`@include` counts as asked, whatever the condition: the answer may only err towards
/// reading whole states.
fn nodes_ask_only(ctx: &Context<'_>, fields: &[&str]) -> bool {
    let look = ctx.look_ahead();
    let nodes = look.field("edges").field("node").selection_fields();
    let listed = look.field("nodes").selection_fields();
    nodes
        .iter()
        .chain(&listed)
        .all(|node| node.selection_set().all(|f| fields.contains(&f.name())))
}

fn wrong_kind() -> ApiError {
    ApiError::internal("a record of another kind was stored under this id")
}

pub struct Query;

#[Object(name = "RegistersQuery")]
impl Query {
    /// The caller's principal and request context.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me, ApiError> {
        let rc = RequestContext::of(ctx)?;
        Ok(Me {
            id: rc.principal.id.clone(),
            role: rc.principal.role.as_str().to_owned(),
            field_groups: rc
                .principal
                .field_groups
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            purposes: rc.principal.purposes.iter().cloned().collect(),
            end_user: rc.end_user.clone(),
            case: rc.case.clone(),
            correlation_id: rc.correlation_id.to_string(),
        })
    }

    /// A citizen by record id or by personal identification number. `asOf` reads the state
    /// at another point (see `AsOf`): as known at a past position or time (auditors, stewards,
    /// supervisors), as it held on a date (`validAt`, within the caller's field groups), or
    /// both; `basis` says which. Relations (parents, spouse) are read at the same point.
    async fn citizen(
        &self,
        ctx: &Context<'_>,
        id: Option<String>,
        pin: Option<String>,
        as_of: Option<AsOf>,
    ) -> Result<Option<Citizen>, ApiError> {
        let p = &handles(ctx)?.projections;
        let (by_id, value) = exactly_one(("id", id.as_deref()), ("pin", pin.as_deref()))?;
        let asked = by_id
            .then(|| record_id(value, RecordKind::Citizen, "id"))
            .transpose()?;
        let current = if let Some(id) = asked {
            let RecordId::Citizen(cid) = id else {
                return Err(wrong_kind());
            };
            citizen::own_record(ctx, &id, "id")?;
            p.citizen(cid).await.map_err(query_error)?
        } else {
            let pin = pin_arg(value, "pin")?;
            citizen::own_pin(ctx, &pin.to_string())?;
            // Looking a person up by their number is itself a read of their identity data:
            // refused where a field of the group would be, and logged for the citizen found
            // (even if only `id` is selected: it ties the number to the record).
            may_read_personal(ctx, FieldGroup::Identity, "citizen(pin)")?;
            let found = p.citizen_by_pin(&pin).await.map_err(query_error)?;
            if let Some(c) = &found {
                personal(ctx, c.state.id.uuid(), FieldGroup::Identity, "citizen(pin)")?;
            }
            found
        };
        let found =
            at::<CitizenId>(ctx, current, asked, as_of, |r| RecordId::Citizen(r.id)).await?;
        Ok(found.map(|(v, basis)| Citizen(v.into(), basis)))
    }

    /// Citizens by name, commune, status or birth years, as a Relay connection. A `search` is
    /// diacritic-insensitive (`đ` = `d`) and is read as the start of the full name, family name
    /// first, the last word a prefix (`nguyen van h`). Its order: names starting with its exact
    /// words (diacritics as typed), by exact name; then names whose folded form starts with
    /// it, by folded name; then names holding its words elsewhere (a given name alone), exact
    /// words first, each by registration. Equal names, and a list without `search`, are in
    /// registration order. Pages after an `endCursor` never repeat or skip a record whose name
    /// did not change in between. Listings read the current state only (no `asOf`): read a
    /// record found here with `citizen(id:, asOf:)` for another point in time.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn citizens(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        commune: Option<String>,
        status: Option<CitizenStatus>,
        born_from: Option<i32>,
        born_to: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Citizen, EmptyFields, EmptyFields>, ApiError> {
        let first = page_size(ctx, first)?;
        let rc = RequestContext::of(ctx)?;
        if rc.principal.role == Role::Admin {
            return Err(ApiError::forbidden_field(
                "the admin role may not search citizens",
                "citizens",
            ));
        }
        // Searching people by name or place is a use of their identity (and residence) data.
        rc.require_personal_data_access(&[FieldGroup::Identity])?;
        if commune.is_some() {
            rc.require_personal_data_access(&[FieldGroup::Residence])?;
        }
        let year = |y: Option<i32>, f: &str| {
            y.map(|y| u16::try_from(y).map_err(|_| ApiError::invalid_field("not a year", f)))
                .transpose()
        };
        let filter = CitizenFilter {
            name: search_text(search)?,
            admin_unit: commune
                .as_deref()
                .map(|c| admin_unit_filter(c, "commune"))
                .transpose()?,
            status: status.map(Into::into),
            birth_year_from: year(born_from, "bornFrom")?,
            birth_year_to: year(born_to, "bornTo")?,
        };
        let projections = &handles(ctx)?.projections;
        if nodes_ask_only(ctx, SUMMARY_FIELDS) {
            let page = projections
                .search_citizen_summaries(&filter, first, cursor(after)?)
                .await
                .map_err(query_error)?;
            return Ok(connection(page, |v| Citizen(CitizenBody::Summary(v), None)));
        }
        let page = projections
            .search_citizens(&filter, first, cursor(after)?)
            .await
            .map_err(query_error)?;
        Ok(connection(page, |v| Citizen(v.into(), None)))
    }

    /// A business by record id or enterprise code; `asOf` as for `citizen`.
    async fn business(
        &self,
        ctx: &Context<'_>,
        id: Option<String>,
        code: Option<String>,
        as_of: Option<AsOf>,
    ) -> Result<Option<Business>, ApiError> {
        scoped(ctx, FieldGroup::Business, "business")?;
        let p = &handles(ctx)?.projections;
        let (by_id, value) = exactly_one(("id", id.as_deref()), ("code", code.as_deref()))?;
        let asked = by_id
            .then(|| record_id(value, RecordKind::Business, "id"))
            .transpose()?;
        let current = if let Some(id) = asked {
            let RecordId::Business(bid) = id else {
                return Err(wrong_kind());
            };
            p.business(bid).await.map_err(query_error)?
        } else {
            let code: EnterpriseCode = parse(value, "code")?;
            p.business_by_code(&code).await.map_err(query_error)?
        };
        let found =
            at::<BusinessId>(ctx, current, asked, as_of, |r| RecordId::Business(r.id)).await?;
        Ok(found.map(|(v, basis)| Business::new(v, basis)))
    }

    /// Businesses by name, head-office commune or status. A `search` matches the Vietnamese
    /// name followed by the abbreviated and English names, in the order `citizens` documents:
    /// exact words at the start, then the folded start (last word a prefix), by name; then
    /// the words elsewhere, by registration. The current state only (see `citizens`).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn businesses(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        commune: Option<String>,
        status: Option<BusinessStatusKind>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Business, EmptyFields, EmptyFields>, ApiError> {
        scoped(ctx, FieldGroup::Business, "businesses")?;
        let first = page_size(ctx, first)?;
        let filter = BusinessFilter {
            name: search_text(search)?,
            admin_unit: commune
                .as_deref()
                .map(|c| admin_unit_filter(c, "commune"))
                .transpose()?,
            status: status.map(Into::into),
        };
        let page = handles(ctx)?
            .projections
            .search_businesses(&filter, first, cursor(after)?)
            .await
            .map_err(query_error)?;
        Ok(connection(page, |v| Business::new(v, None)))
    }

    /// A parcel by record id or parcel key (`commune/predecessor:sheet/parcel`); `asOf` as
    /// for `citizen` (who held the parcel on the date of a contract: `validAt`).
    async fn parcel(
        &self,
        ctx: &Context<'_>,
        id: Option<String>,
        key: Option<String>,
        as_of: Option<AsOf>,
    ) -> Result<Option<Parcel>, ApiError> {
        scoped(ctx, FieldGroup::Land, "parcel")?;
        let p = &handles(ctx)?.projections;
        let (by_id, value) = exactly_one(("id", id.as_deref()), ("key", key.as_deref()))?;
        let asked = by_id
            .then(|| record_id(value, RecordKind::Parcel, "id"))
            .transpose()?;
        let current = if let Some(id) = asked {
            let RecordId::Parcel(pid) = id else {
                return Err(wrong_kind());
            };
            p.parcel(pid).await.map_err(query_error)?
        } else {
            let key = parcel_key_arg(value, "key")?;
            p.parcel_by_key(&key).await.map_err(query_error)?
        };
        let found = at::<ParcelId>(ctx, current, asked, as_of, |r| RecordId::Parcel(r.id)).await?;
        Ok(found.map(|(v, basis)| Parcel::new(v, basis)))
    }

    /// Parcels by commune, land use, status or rights holder (`citizen-…` or `business-…`).
    /// The current state only (see `citizens`): who held a parcel on a date is
    /// `parcel(key:, asOf: { validAt })`.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn parcels(
        &self,
        ctx: &Context<'_>,
        commune: Option<String>,
        land_use: Option<String>,
        status: Option<ParcelStatusKind>,
        holder: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Parcel, EmptyFields, EmptyFields>, ApiError> {
        scoped(ctx, FieldGroup::Land, "parcels")?;
        let first = page_size(ctx, first)?;
        let holder = holder
            .as_deref()
            .map(|h| parse::<RecordId>(h, "holder"))
            .transpose()?;
        if let Some(RecordId::Citizen(c)) = holder {
            // Which parcels a person holds is their personal (land) data.
            personal(ctx, c.uuid(), FieldGroup::Land, "parcels(holder)")?;
        }
        let filter = ParcelFilter {
            admin_unit: commune
                .as_deref()
                .map(|c| admin_unit_filter(c, "commune"))
                .transpose()?,
            land_use: land_use
                .as_deref()
                .map(|c| land_use_filter(c, "landUse"))
                .transpose()?,
            status: status.map(Into::into),
            holder,
        };
        let page = handles(ctx)?
            .projections
            .search_parcels(&filter, first, cursor(after)?)
            .await
            .map_err(query_error)?;
        Ok(connection(page, |v| Parcel::new(v, None)))
    }

    /// Every event of one record, oldest first (or by valid time: `order`), with actor, reason,
    /// legal basis, hashes and valid time.
    /// Auditors, stewards and supervisors; a citizen for their own record. Reading a
    /// citizen's history is logged.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        ctx: &Context<'_>,
        record: String,
        first: Option<i32>,
        after_version: Option<i64>,
        #[graphql(
            desc = "`RECORDED` (default): the log's order. `VALID`: the facts by the date they hold from (ties in recorded order; a correction that fixes the past right after the event it corrects), then the events that hold on the recorded axis only (proposals, redactions, restrictions), in recorded order."
        )]
        order: Option<HistoryOrder>,
        #[graphql(
            desc = "The events known at `position`/`time`; with `validAt`, only the facts that held by that date (and the record-keeping events known)."
        )]
        as_of: Option<AsOf>,
    ) -> Result<Vec<LogEvent>, ApiError> {
        require(ctx, &HISTORY_ROLES)?;
        let first = page_size(ctx, first)?;
        let id: RecordId = parse(&record, "record")?;
        citizen::own_record(ctx, &id, "record")?;
        if let RecordId::Citizen(c) = id {
            for group in [
                FieldGroup::Identity,
                FieldGroup::Residence,
                FieldGroup::Family,
            ] {
                personal(ctx, c.uuid(), group, "history")?;
            }
        }
        let not_found = || ApiError::NotFound {
            message: format!("no record {id}"),
            stream: Some(id.to_string()),
        };
        let order = order.unwrap_or(HistoryOrder::Recorded);
        if order == HistoryOrder::Recorded && as_of.is_none() {
            let stream: StreamId = parse(&id.to_string(), "record")?;
            let from = after_version.map_or(0, |v| (v + 1).max(0) as u64);
            let events = handles(ctx)?
                .log
                .read_stream(&stream, from, citydb_log::Direction::Forward, first)
                .await?;
            if events.is_empty() && from == 0 {
                return Err(not_found());
            }
            return Ok(events.iter().map(LogEvent::from).collect());
        }
        let past = match &as_of {
            Some(a) => match resolve(ctx, a).await? {
                Some(past) => Some(past),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let mut placed = handles(ctx)?
            .registry
            .record_history(id, past.map(|p| p.known_at))
            .await
            .map_err(super::registry_error)?;
        if placed.is_empty() && past.is_none() {
            return Err(not_found());
        }
        if let Some(valid_at) = past.and_then(|p| p.valid_at) {
            placed.retain(|(_, place)| place.is_none_or(|k| k.date <= valid_at));
        }
        if order == HistoryOrder::Valid {
            // Facts by their place on the valid axis, then record-keeping in recorded order.
            placed.sort_by_key(|(_, place)| (place.is_none(), *place));
        }
        let start = match after_version {
            Some(v) => placed
                .iter()
                .position(|(e, _)| e.stream_version as i64 == v)
                .map_or(placed.len(), |i| i + 1),
            None => 0,
        };
        Ok(placed
            .iter()
            .skip(start)
            .take(first)
            .map(|(e, _)| LogEvent::from(e))
            .collect())
    }

    /// Recomputes the hashes and links of one record's stream.
    #[graphql(complexity = "STREAM_COST + child_complexity")]
    async fn verify_stream(
        &self,
        ctx: &Context<'_>,
        record: String,
    ) -> Result<Verification, ApiError> {
        require(ctx, &AUDIT_ROLES)?;
        let stream: StreamId = parse(&record, "record")?;
        Ok(handles(ctx)?.log.verify_stream(&stream).await?.into())
    }

    /// Recomputes every hash and link of the whole log. Pass a head recorded earlier to also
    /// detect a truncated or rewritten tail.
    #[graphql(complexity = "WHOLE_LOG_COST + child_complexity")]
    async fn verify_log(
        &self,
        ctx: &Context<'_>,
        expected_head_position: Option<i64>,
        expected_head_hash: Option<String>,
    ) -> Result<Verification, ApiError> {
        require(ctx, &AUDIT_ROLES)?;
        let expected = match (expected_head_position, expected_head_hash) {
            (Some(p), Some(h)) => Some(Head {
                position: u64::try_from(p).map_err(|_| {
                    ApiError::invalid_field("negative position", "expectedHeadPosition")
                })?,
                hash: Hash::from_hex(&h).ok_or_else(|| {
                    ApiError::invalid_field("not 64 hex digits", "expectedHeadHash")
                })?,
            }),
            (None, None) => None,
            _ => {
                return Err(ApiError::invalid_input(
                    "give both expectedHeadPosition and expectedHeadHash, or neither",
                ));
            }
        };
        let log = handles(ctx)?.log.clone();
        let report = verifications(ctx)?
            .events
            .run(async move { log.verify_log(expected).await })
            .await??;
        Ok(report.into())
    }

    /// The latest checkpoint the node signed over a log's Merkle tree (C2SP tlog-checkpoint,
    /// with witness cosignatures), the same as `GET /log/checkpoint`; `fresh: true` signs one
    /// now if the log grew since. `null` when the node signs none (no `--signing-key`).
    async fn checkpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] log: PublishedLogName,
        #[graphql(default)] fresh: bool,
    ) -> Result<Option<SignedCheckpoint>, ApiError> {
        RequestContext::of(ctx)?;
        proofs::checkpoint(log.of(published(ctx)?), fresh).await
    }

    /// The RFC 6962 inclusion proof of the entry at `position` in the tree of `treeSize`
    /// entries (default: the latest checkpoint if it covers the position, else one signed
    /// now). Auditors and admins.
    async fn inclusion_proof(
        &self,
        ctx: &Context<'_>,
        position: i64,
        tree_size: Option<i64>,
        #[graphql(default)] log: PublishedLogName,
    ) -> Result<InclusionProof, ApiError> {
        require(ctx, &AUDIT_ROLES)?;
        proofs::inclusion(log.of(published(ctx)?), position, tree_size).await
    }

    /// The RFC 6962 consistency proof that the tree of `from` entries is a prefix of the tree
    /// of `to` (default: the latest checkpoint's size). Auditors and admins.
    async fn consistency_proof(
        &self,
        ctx: &Context<'_>,
        from: i64,
        to: Option<i64>,
        #[graphql(default)] log: PublishedLogName,
    ) -> Result<ConsistencyProof, ApiError> {
        require(ctx, &AUDIT_ROLES)?;
        proofs::consistency(log.of(published(ctx)?), from, to).await
    }

    /// The last event of the log.
    async fn log_head(&self, ctx: &Context<'_>) -> Result<Option<LogHead>, ApiError> {
        RequestContext::of(ctx)?;
        Ok(handles(ctx)?.log.head().await?.map(|h| LogHead {
            position: h.position as i64,
            hash: h.hash.to_hex(),
        }))
    }

    /// Changes to records after a position, oldest first, without payloads (the change feed).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        after: Option<i64>,
        #[graphql(default)] categories: Vec<String>,
        #[graphql(default)] event_types: Vec<String>,
        first: Option<i32>,
    ) -> Result<ChangePage, ApiError> {
        RequestContext::of(ctx)?;
        let first = page_size(ctx, first)?;
        let categories = wanted(&categories)?;
        let event_types = known_event_types(event_types)?;
        let r = handles(ctx)?;
        let after = match after {
            Some(a) => position_in_log(r.log.as_ref(), a, "after", true).await?,
            None => None,
        };
        let positions = r
            .projections
            .changes(after, &categories, &event_types, first + 1)
            .await
            .map_err(query_error)?;
        let has_more = positions.len() > first;
        let mut changes = Vec::with_capacity(first);
        for p in positions.into_iter().take(first) {
            if let Some(e) = r.log.read_all(p, 1).await?.first() {
                changes.push(Change::from(e));
            }
        }
        let end_position = changes
            .last()
            .map(|c| c.position)
            .or(after.map(|a| a as i64));
        Ok(ChangePage {
            changes,
            end_position,
            has_more,
        })
    }

    /// Who read a citizen's personal data, when, on whose behalf and why (newest first).
    /// Auditors and admins; a citizen for their own record.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn access_log(
        &self,
        ctx: &Context<'_>,
        citizen: String,
        first: Option<i32>,
        before_version: Option<i64>,
    ) -> Result<Vec<AccessRecord>, ApiError> {
        require(ctx, &ACCESS_LOG_ROLES)?;
        let first = page_size(ctx, first)?;
        let asked = record_id(&citizen, RecordKind::Citizen, "citizen")?;
        citizen::own_record(ctx, &asked, "citizen")?;
        let RecordId::Citizen(c) = asked else {
            return Err(wrong_kind());
        };
        let log = ctx
            .data::<AccessLog>()
            .map_err(|_| ApiError::internal("access log missing"))?;
        let before = before_version.map(|v| u64::try_from(v).unwrap_or(0));
        Ok(log
            .for_citizen(c.uuid(), first, before)
            .await?
            .into_iter()
            .map(AccessRecord::from)
            .collect())
    }

    /// Recomputes the access log's own hash chain.
    #[graphql(complexity = "WHOLE_LOG_COST + child_complexity")]
    async fn verify_access_log(&self, ctx: &Context<'_>) -> Result<Verification, ApiError> {
        require(ctx, &AUDIT_ROLES)?;
        let log = ctx
            .data::<AccessLog>()
            .map_err(|_| ApiError::internal("access log missing"))?
            .clone();
        let report = verifications(ctx)?
            .access
            .run(async move { log.verify().await })
            .await??;
        Ok(report.into())
    }
}

fn verifications<'a>(ctx: &'a Context<'_>) -> Result<&'a VerificationGates, ApiError> {
    ctx.data::<VerificationGates>()
        .map_err(|_| ApiError::internal("verifications missing from the schema data"))
}

fn query_error(e: citydb_projections::ProjectionError) -> ApiError {
    match e {
        citydb_projections::ProjectionError::InvalidCursor => {
            ApiError::invalid_field("not a cursor issued by this query", "after")
        }
        citydb_projections::ProjectionError::InvalidQuery(m) => ApiError::invalid_input(m),
        other => super::loaders::projection_error(other),
    }
}
