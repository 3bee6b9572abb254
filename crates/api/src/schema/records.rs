//! GraphQL objects over the domain's records. Every personal field of a citizen goes through
//! [`access::personal`] (scope check + access-log note); business and land fields through
//! [`access::scoped`]. Relations are resolved through the operation's batches (`loaders`), so a page of parcels with
//! their holders costs a fixed number of queries, not one per row.

use std::collections::BTreeSet;

use async_graphql::parser::types::{Selection, SelectionSet};
use async_graphql::{Context, Enum, Json, Object, SimpleObject, Union};
use serde_json::Value;

use citydb_domain::business::{Business as BusinessState, BusinessStatus};
use citydb_domain::citizen::{
    Citizen as CitizenState, LifeStatus, Residence as ResidenceState, Summary as CitizenSummary,
};
use citydb_domain::parcel::{Holder as HolderRef, Parcel as ParcelState, ParcelStatus};
use citydb_domain::stewardship::{CorrectionStatus, Corrections};
use citydb_domain::{AdminUnitTable, BusinessId, CitizenId, ParcelId, RecordId, RecordKind};
use citydb_projections::Versioned;

use super::access::{personal, scoped};
use super::basis::{Basis, ReadBasis, states_at};
use super::loaders::{ChildrenOf, HeldBy, RepresentedBy, SummaryOf, load_in_order, load_one};
use super::privacy::{Redaction, may_list, redactions};
use super::restriction::{unrestricted, unrestricted_if};
use super::timeline::{Period, citizen_group, known_field, periods};
use crate::auth::FieldGroup;
use crate::error::ApiError;

/// A record's place in its stream and in the log.
fn version_of<T>(v: &Versioned<T>) -> i64 {
    v.version as i64
}

fn unit_name(code: &str) -> Option<String> {
    code.parse()
        .ok()
        .and_then(|c| AdminUnitTable::hai_phong_2025().by_code(c))
        .map(|u| u.name.to_owned())
}

#[derive(SimpleObject, Clone)]
pub struct PersonName {
    pub family: String,
    pub middle: String,
    pub given: String,
    /// "Family Middle Given", for display only.
    pub full: String,
}

// A commune-level administrative unit (commune, ward or special zone); the GraphQL type
// keeps its published name.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Commune", complex)]
pub struct AdminUnit {
    /// The 5-digit commune-level unit code.
    pub code: String,
    /// Official name (NFC), when the code is a current Hải Phòng unit.
    pub name: Option<String>,
}

impl AdminUnit {
    pub fn new(code: String) -> Self {
        let name = unit_name(&code);
        AdminUnit { code, name }
    }
}

#[derive(SimpleObject, Clone)]
pub struct Residence {
    pub commune: AdminUnit,
    pub address: String,
    pub since: String,
}

impl From<&ResidenceState> for Residence {
    fn from(r: &ResidenceState) -> Self {
        Residence {
            commune: AdminUnit::new(r.commune.to_string()),
            address: r.address.clone(),
            since: r.since.to_string(),
        }
    }
}

#[derive(Enum, Copy, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

// The domain's CitizenStatus; the GraphQL type keeps its published name (a doc comment here
// would change the SDL).
#[derive(Enum, Copy, Clone, PartialEq, Eq)]
#[graphql(name = "LifeState", remote = "citydb_domain::citizen::CitizenStatus")]
pub enum CitizenStatus {
    Alive,
    Deceased,
    /// A duplicate record merged into its survivor.
    Merged,
}

#[derive(SimpleObject, Clone)]
pub struct IdentityCard {
    pub number: String,
    pub issue_date: String,
    pub place: String,
}

/// A correction of a record's fields, proposed and (for protected fields) reviewed by a
/// different supervisor.
#[derive(SimpleObject, Clone)]
pub struct Correction {
    pub id: String,
    /// `[{field, old, new}]`.
    pub changes: Json<Value>,
    pub reason: String,
    pub legal_basis_document: String,
    pub legal_basis_date: String,
    pub proposed_by: String,
    /// PENDING, APPROVED, REJECTED or WITHDRAWN.
    pub status: String,
    pub reviewed_by: Option<String>,
}

pub fn corrections(c: &Corrections) -> Vec<Correction> {
    c.values()
        .map(|c| {
            let (status, reviewed_by) = match &c.status {
                CorrectionStatus::Pending => ("PENDING", None),
                CorrectionStatus::Approved { by } => ("APPROVED", Some(by.clone())),
                CorrectionStatus::Rejected { by, .. } => ("REJECTED", Some(by.clone())),
                CorrectionStatus::Withdrawn => ("WITHDRAWN", None),
            };
            Correction {
                id: c.id.to_string(),
                changes: Json(serde_json::to_value(&c.changes).unwrap_or(Value::Null)),
                reason: c.reason.clone(),
                legal_basis_document: c.legal_basis.document_number.clone(),
                legal_basis_date: c.legal_basis.document_date.to_string(),
                proposed_by: c.proposed_by.clone(),
                status: status.to_owned(),
                reviewed_by,
            }
        })
        .collect()
}

/// A citizen as the register knows them now, or at the point `basis` names (`asOf`).
pub struct Citizen(pub CitizenBody, pub Basis);

/// What a [`Citizen`] was read as.
pub enum CitizenBody {
    /// Boxed: a state is ~500 bytes, and a `Citizen` value sits in the futures of the fields
    /// that return one (a parent, a spouse, the lookup at the root), which are as large as
    /// their largest field's and allocated and copied whole for every field an object
    /// resolves. One allocation a whole read costs less than those copies
    /// (docs/benchmarks.md, "Futures sized for the fields most requests ask for").
    State(Box<Versioned<CitizenState>>),
    /// Only what [`SUMMARY_FIELDS`] resolve from: a search page whose selection of its citizens
    /// asks nothing else reads them so (`query::citizens`), without decoding the rest of each
    /// state. Invariant: a `Citizen` holding a summary is resolved only for those fields; any
    /// other field is an internal error, never a guess.
    Summary(Versioned<CitizenSummary>),
    /// Only the id: a parcel's holders or a business's representatives whose selection asks
    /// nothing of each citizen but [`ID_FIELDS`] are not read at all — the ids are the linking
    /// record's own, and every id a parcel or business links names a registered citizen (the
    /// domain checks it, and records are never deleted). Same invariant as a summary.
    Id(CitizenId),
}

impl From<Versioned<CitizenState>> for CitizenBody {
    fn from(v: Versioned<CitizenState>) -> Self {
        CitizenBody::State(Box::new(v))
    }
}

/// The `Citizen` fields that resolve from a [`CitizenSummary`] alone (`name`'s subfields are all
/// in the summary). A field added to `Citizen` is not here until its resolver reads only the
/// summary's accessors below; the test `every_summary_field_resolves_from_a_summary` runs a
/// search selecting all of them on both paths.
pub const SUMMARY_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "version",
    "restricted",
    "basis",
    "name",
    "birthDate",
];

/// The `Citizen` fields that resolve from the id alone ([`CitizenBody::Id`]).
pub const ID_FIELDS: &[&str] = &["__typename", "id"];

impl Citizen {
    fn citizen_id(&self) -> CitizenId {
        match &self.0 {
            CitizenBody::State(v) => v.state.id,
            CitizenBody::Summary(v) => v.state.id,
            CitizenBody::Id(id) => *id,
        }
    }
    fn uuid(&self) -> uuid::Uuid {
        self.citizen_id().uuid()
    }
    fn stream_version(&self) -> Result<u64, ApiError> {
        match &self.0 {
            CitizenBody::State(v) => Ok(v.version),
            CitizenBody::Summary(v) => Ok(v.version),
            CitizenBody::Id(_) => Err(self.unread("version")),
        }
    }
    fn is_restricted(&self) -> Result<bool, ApiError> {
        match &self.0 {
            CitizenBody::State(v) => Ok(v.state.privacy.is_restricted()),
            CitizenBody::Summary(v) => Ok(v.state.restricted),
            CitizenBody::Id(_) => Err(self.unread("restricted")),
        }
    }
    /// The whole state; a citizen read as a summary or by id has none (see [`CitizenBody`]).
    fn state(&self) -> Result<&Versioned<CitizenState>, ApiError> {
        match &self.0 {
            CitizenBody::State(v) => Ok(v),
            CitizenBody::Summary(_) | CitizenBody::Id(_) => Err(self.unread("a whole state")),
        }
    }
    /// A field resolved on a body that does not hold it: a bug of the path that chose the body
    /// (`SUMMARY_FIELDS`, `ID_FIELDS`), reported, never guessed.
    fn unread(&self, what: &str) -> ApiError {
        let read_as = match &self.0 {
            CitizenBody::State(_) => "whole",
            CitizenBody::Summary(_) => "as a summary",
            CitizenBody::Id(_) => "by id only",
        };
        ApiError::internal(format!(
            "{what} was asked of citizen-{} read {read_as}",
            self.uuid()
        ))
    }
    /// Refuses a restricted record to a service, then checks and notes a personal read of
    /// `field` (group `group`).
    fn check(&self, ctx: &Context<'_>, group: FieldGroup, field: &str) -> Result<(), ApiError> {
        unrestricted_if(
            ctx,
            RecordId::Citizen(self.citizen_id()),
            self.is_restricted()?,
        )?;
        personal(ctx, self.uuid(), group, field)
    }
    fn guard(
        &self,
        ctx: &Context<'_>,
        group: FieldGroup,
        field: &str,
    ) -> Result<&CitizenState, ApiError> {
        self.check(ctx, group, field)?;
        Ok(&self.state()?.state)
    }
}

/// Citizens by id at `basis`: current states from the projections, or folded from the log at
/// a past point (`basis::records_at`).
pub(super) async fn load_citizens(
    ctx: &Context<'_>,
    basis: Basis,
    ids: impl IntoIterator<Item = CitizenId>,
) -> Result<Vec<Citizen>, ApiError> {
    let states = states_at(ctx, basis, ids).await?;
    Ok(states
        .into_iter()
        .map(|v| Citizen(v.into(), basis))
        .collect())
}

/// Citizens reached through another record's relation (a parcel's holders, a business's
/// representatives): that a citizen holds this parcel or represents this business is that
/// citizen's `group` data, so each link is a personal read, refused or noted like a field.
///
/// Citizens asked for nothing beyond [`ID_FIELDS`] are not read; current ones asked for nothing
/// beyond [`SUMMARY_FIELDS`] are read as summaries.
async fn load_linked_citizens(
    ctx: &Context<'_>,
    basis: Basis,
    ids: Vec<CitizenId>,
    group: FieldGroup,
    field: &str,
) -> Result<Vec<Citizen>, ApiError> {
    for id in &ids {
        personal(ctx, id.uuid(), group, field)?;
    }
    if asks_only(ctx, ID_FIELDS) {
        return Ok(ids
            .into_iter()
            .map(|id| Citizen(CitizenBody::Id(id), basis))
            .collect());
    }
    if basis.is_none() && asks_only(ctx, SUMMARY_FIELDS) {
        let found = load_in_order(ctx, ids.into_iter().map(SummaryOf)).await?;
        return Ok(found
            .into_iter()
            .map(|v| Citizen(CitizenBody::Summary(v), None))
            .collect());
    }
    load_citizens(ctx, basis, ids).await
}

/// Whether the field being resolved asks of the citizens it returns — itself a list of
/// `Citizen`, or a union with `Citizen` among its members — only `fields`, through
/// inline fragments and spreads (each fragment once). A fragment on `Business` (the other
/// member of `Holder`) does not apply to a citizen and is not counted; a fragment on any other
/// type is, so the answer can only err towards reading whole states.
fn asks_only(ctx: &Context<'_>, fields: &[&str]) -> bool {
    let applies = |on: Option<&str>| on != Some("Business");
    let fragments = ctx.query_env.document.fragments();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&SelectionSet> = vec![&ctx.item.node.selection_set.node];
    while let Some(set) = stack.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    if !fields.contains(&f.node.name.node.as_str()) {
                        return false;
                    }
                }
                Selection::InlineFragment(i) => {
                    let on = i
                        .node
                        .type_condition
                        .as_ref()
                        .map(|t| t.node.on.node.as_str());
                    if applies(on) {
                        stack.push(&i.node.selection_set.node);
                    }
                }
                Selection::FragmentSpread(s) => {
                    let name = &s.node.fragment_name.node;
                    if seen.insert(name.clone())
                        && let Some(frag) = fragments.get(name)
                        && applies(Some(frag.node.type_condition.node.on.node.as_str()))
                    {
                        stack.push(&frag.node.selection_set.node);
                    }
                }
            }
        }
    }
    true
}

async fn load_citizen(
    ctx: &Context<'_>,
    basis: Basis,
    id: Option<CitizenId>,
) -> Result<Option<Citizen>, ApiError> {
    Ok(match id {
        Some(id) => load_citizens(ctx, basis, [id]).await?.pop(),
        None => None,
    })
}

#[Object]
impl Citizen {
    /// The record id, `citizen-<uuid>`. Not personal data by itself.
    async fn id(&self) -> String {
        RecordId::Citizen(self.citizen_id()).to_string()
    }
    /// The stream version: pass it as `expectedVersion` to a mutation.
    async fn version(&self) -> Result<i64, ApiError> {
        Ok(self.stream_version()? as i64)
    }
    /// Restricted by a steward (`restrictRecord`): services get `RESTRICTED` on every other
    /// field. Not personal data by itself.
    async fn restricted(&self) -> Result<bool, ApiError> {
        self.is_restricted()
    }
    /// The point this state was read at: pass `knownAt` (and `validAt`) as `asOf` to read
    /// the same state again.
    async fn basis(&self, ctx: &Context<'_>) -> Result<ReadBasis, ApiError> {
        ReadBasis::of(ctx, &self.1)
    }
    /// Every value `field` held through valid time, with from–until dates: `field` is the
    /// domain's name, as corrections spell it (`permanent_residence`, `name.given`, `birth_date`,
    /// `identity_card`, …) or one of `father`, `mother`, `marriage`, `life`, `merged_into`. As
    /// known at this state's `basis` (as known now; as known then with `asOf.position` or
    /// `time`; `validAt` does not narrow it). The field's group.
    #[graphql(complexity = "super::query::STREAM_COST")]
    async fn timeline(&self, ctx: &Context<'_>, field: String) -> Result<Vec<Period>, ApiError> {
        known_field(RecordKind::Citizen, &field)?;
        self.guard(ctx, citizen_group(&field), "timeline")?;
        let id = RecordId::Citizen(self.citizen_id());
        periods(ctx, id, &self.1, &field, FieldGroup::Identity).await
    }
    /// Personal identification number (12 digits). Group `identity`.
    async fn pin(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        Ok(self
            .guard(ctx, FieldGroup::Identity, "pin")?
            .pin
            .to_string())
    }
    /// Group `identity`.
    async fn name(&self, ctx: &Context<'_>) -> Result<PersonName, ApiError> {
        self.check(ctx, FieldGroup::Identity, "name")?;
        let n = match &self.0 {
            CitizenBody::State(v) => &v.state.name,
            CitizenBody::Summary(v) => &v.state.name,
            CitizenBody::Id(_) => return Err(self.unread("name")),
        };
        Ok(PersonName {
            family: n.family().to_owned(),
            middle: n.middle().to_owned(),
            given: n.given().to_owned(),
            full: n.full(),
        })
    }
    /// Group `identity`.
    async fn sex(&self, ctx: &Context<'_>) -> Result<Sex, ApiError> {
        Ok(match self.guard(ctx, FieldGroup::Identity, "sex")?.sex {
            citydb_domain::Sex::Male => Sex::Male,
            citydb_domain::Sex::Female => Sex::Female,
        })
    }
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`: old civil records are often partial. Group `identity`.
    async fn birth_date(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        self.check(ctx, FieldGroup::Identity, "birthDate")?;
        Ok(match &self.0 {
            CitizenBody::State(v) => v.state.birth_date.to_string(),
            CitizenBody::Summary(v) => v.state.birth_date.to_string(),
            CitizenBody::Id(_) => return Err(self.unread("birthDate")),
        })
    }
    /// Group `identity`.
    async fn birth_place(&self, ctx: &Context<'_>) -> Result<AdminUnit, ApiError> {
        Ok(AdminUnit::new(
            self.guard(ctx, FieldGroup::Identity, "birthPlace")?
                .birth_place
                .to_string(),
        ))
    }
    /// Group `identity`.
    async fn status(&self, ctx: &Context<'_>) -> Result<CitizenStatus, ApiError> {
        Ok(self
            .guard(ctx, FieldGroup::Identity, "status")?
            .status()
            .into())
    }
    /// Group `identity`.
    async fn death_date(&self, ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
        Ok(
            match &self.guard(ctx, FieldGroup::Identity, "deathDate")?.life {
                LifeStatus::Deceased { date } => Some(date.to_string()),
                LifeStatus::Alive => None,
            },
        )
    }
    /// Group `identity`.
    async fn identity_card(&self, ctx: &Context<'_>) -> Result<Option<IdentityCard>, ApiError> {
        Ok(self
            .guard(ctx, FieldGroup::Identity, "identityCard")?
            .identity_card
            .as_ref()
            .map(|c| IdentityCard {
                number: c.number.to_string(),
                issue_date: c.issue_date.to_string(),
                place: c.place.clone(),
            }))
    }
    /// Group `residence`.
    async fn permanent_residence(&self, ctx: &Context<'_>) -> Result<Option<Residence>, ApiError> {
        Ok(self
            .guard(ctx, FieldGroup::Residence, "permanentResidence")?
            .permanent_residence
            .as_ref()
            .map(Into::into))
    }
    /// Group `residence`.
    async fn temporary_residence(&self, ctx: &Context<'_>) -> Result<Option<Residence>, ApiError> {
        Ok(self
            .guard(ctx, FieldGroup::Residence, "temporaryResidence")?
            .temporary_residence
            .as_ref()
            .map(Into::into))
    }
    /// Group `family`.
    async fn father(&self, ctx: &Context<'_>) -> Result<Option<Citizen>, ApiError> {
        let id = self.guard(ctx, FieldGroup::Family, "father")?.father;
        load_citizen(ctx, self.1, id).await
    }
    /// Group `family`.
    async fn mother(&self, ctx: &Context<'_>) -> Result<Option<Citizen>, ApiError> {
        let id = self.guard(ctx, FieldGroup::Family, "mother")?.mother;
        load_citizen(ctx, self.1, id).await
    }
    /// The citizens whose current father or mother this is, by birth date as recorded (a
    /// year alone before the full dates of that year) then record id; at most 100. Read
    /// from the projections, so current even on a past state (`asOf`). Group `family`.
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Citizen>, ApiError> {
        let id = self.guard(ctx, FieldGroup::Family, "children")?.id;
        let ids = load_one(ctx, ChildrenOf(id)).await?.unwrap_or_default();
        load_citizens(ctx, None, ids).await
    }
    /// The spouse (at the record's `basis`). Group `family`.
    async fn spouse(&self, ctx: &Context<'_>) -> Result<Option<Citizen>, ApiError> {
        let id = self
            .guard(ctx, FieldGroup::Family, "spouse")?
            .marriage
            .as_ref()
            .map(|m| m.spouse);
        load_citizen(ctx, self.1, id).await
    }
    /// Date of the marriage (at the record's `basis`). Group `family`.
    async fn married_since(&self, ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
        Ok(self
            .guard(ctx, FieldGroup::Family, "marriedSince")?
            .marriage
            .as_ref()
            .map(|m| m.since.to_string()))
    }
    /// Parcels on which this citizen holds rights now: read from the projections, so current
    /// even on a past state (`asOf`; ask the parcel with `asOf` for who held it then). Group
    /// `land`.
    async fn parcels(&self, ctx: &Context<'_>) -> Result<Vec<Parcel>, ApiError> {
        personal(ctx, self.uuid(), FieldGroup::Land, "parcels")?;
        let ids = load_one(ctx, HeldBy(RecordId::Citizen(self.citizen_id())))
            .await?
            .unwrap_or_default();
        load_parcels(ctx, None, ids).await
    }
    /// Businesses this citizen legally represents now: current even on a past state
    /// (`asOf`). Group `business`.
    async fn represents(&self, ctx: &Context<'_>) -> Result<Vec<Business>, ApiError> {
        personal(ctx, self.uuid(), FieldGroup::Business, "represents")?;
        let ids = load_one(ctx, RepresentedBy(self.citizen_id()))
            .await?
            .unwrap_or_default();
        load_businesses(ctx, None, ids).await
    }
    /// For a duplicate merged away: the surviving record. Group `identity`.
    async fn merged_into(&self, ctx: &Context<'_>) -> Result<Option<Citizen>, ApiError> {
        let id = self
            .guard(ctx, FieldGroup::Identity, "mergedInto")?
            .merged_into;
        load_citizen(ctx, self.1, id).await
    }
    /// Follows merge redirects to the record that survives (itself if not merged). Group
    /// `identity`.
    async fn survivor(&self, ctx: &Context<'_>) -> Result<Citizen, ApiError> {
        let mut merged_into = self
            .guard(ctx, FieldGroup::Identity, "survivor")?
            .merged_into;
        let mut current = Citizen(self.state()?.clone().into(), self.1);
        for _ in 0..16 {
            let Some(next) = merged_into else {
                return Ok(current);
            };
            match load_citizen(ctx, self.1, Some(next)).await? {
                Some(c) => {
                    merged_into = c.state()?.state.merged_into;
                    current = c;
                }
                None => return Ok(current),
            }
        }
        Ok(current)
    }
    /// Proposed, approved, rejected and withdrawn corrections. Group `identity`.
    async fn corrections(&self, ctx: &Context<'_>) -> Result<Vec<Correction>, ApiError> {
        Ok(corrections(
            &self
                .guard(ctx, FieldGroup::Identity, "corrections")?
                .corrections,
        ))
    }
    /// Redactions proposed on this record, in proposal order. Stewards, supervisors and
    /// auditors only; a read of the citizen's identity data, logged.
    async fn redactions(&self, ctx: &Context<'_>) -> Result<Vec<Redaction>, ApiError> {
        may_list(ctx)?;
        let state = self.guard(ctx, FieldGroup::Identity, "redactions")?;
        redactions(ctx, state.id.into(), self.stream_version()?, &state.privacy).await
    }
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
#[graphql(remote = "citydb_domain::business::BusinessStatusKind")]
pub enum BusinessStatusKind {
    Active,
    Suspended,
    Dissolved,
}

#[derive(SimpleObject, Clone)]
pub struct Address {
    pub commune: AdminUnit,
    pub street: String,
}

/// A business registered with an enterprise code (or a branch of one). Its state boxed, as
/// [`CitizenBody::State`].
pub struct Business(pub Box<Versioned<BusinessState>>, pub Basis);

/// Businesses by id at `basis` (see [`load_citizens`]).
pub(super) async fn load_businesses(
    ctx: &Context<'_>,
    basis: Basis,
    ids: impl IntoIterator<Item = BusinessId>,
) -> Result<Vec<Business>, ApiError> {
    let states = states_at(ctx, basis, ids).await?;
    Ok(states
        .into_iter()
        .map(|v| Business::new(v, basis))
        .collect())
}

impl Business {
    pub fn new(state: Versioned<BusinessState>, basis: Basis) -> Self {
        Business(Box::new(state), basis)
    }

    fn guard(&self, ctx: &Context<'_>, field: &str) -> Result<&BusinessState, ApiError> {
        let state = &self.0.state;
        unrestricted(ctx, RecordId::Business(state.id), &state.privacy)?;
        scoped(ctx, FieldGroup::Business, field)?;
        Ok(&self.0.state)
    }
}

#[Object]
impl Business {
    /// `business-<uuid>`.
    async fn id(&self) -> String {
        RecordId::Business(self.0.state.id).to_string()
    }
    async fn version(&self) -> i64 {
        version_of(&self.0)
    }
    /// Restricted by a steward (`restrictRecord`): services get `RESTRICTED` on every other field.
    async fn restricted(&self) -> bool {
        self.0.state.privacy.is_restricted()
    }
    /// The point this state was read at: pass `knownAt` (and `validAt`) as `asOf` to read
    /// the same state again.
    async fn basis(&self, ctx: &Context<'_>) -> Result<ReadBasis, ApiError> {
        ReadBasis::of(ctx, &self.1)
    }
    /// Every value `field` held through valid time, with from–until dates: `field` is the
    /// domain's name, as corrections spell it (`head_office`, `names.vietnamese`,
    /// `business_lines`, …) or one of `legal_representatives`, `status`, `parent`, `branches`.
    /// As known at this state's `basis` (see `Citizen.timeline`).
    #[graphql(complexity = "super::query::STREAM_COST")]
    async fn timeline(&self, ctx: &Context<'_>, field: String) -> Result<Vec<Period>, ApiError> {
        known_field(RecordKind::Business, &field)?;
        self.guard(ctx, "timeline")?;
        let id = RecordId::Business(self.0.state.id);
        periods(ctx, id, &self.1, &field, FieldGroup::Business).await
    }
    /// Enterprise code = tax code (10 digits, or 13 with a branch suffix).
    async fn code(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        Ok(self.guard(ctx, "code")?.code.to_string())
    }
    async fn name(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        Ok(self.guard(ctx, "name")?.names.vietnamese.clone())
    }
    async fn english_name(&self, ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
        Ok(self.guard(ctx, "englishName")?.names.english.clone())
    }
    async fn abbreviated_name(&self, ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
        Ok(self
            .guard(ctx, "abbreviatedName")?
            .names
            .abbreviated
            .clone())
    }
    async fn head_office(&self, ctx: &Context<'_>) -> Result<Address, ApiError> {
        let a = &self.guard(ctx, "headOffice")?.head_office;
        Ok(Address {
            commune: AdminUnit::new(a.commune.to_string()),
            street: a.street.clone(),
        })
    }
    /// Charter capital in VND; none for branches.
    async fn charter_capital(&self, ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
        Ok(self
            .guard(ctx, "charterCapital")?
            .charter_capital
            .map(|v| v.0.to_string()))
    }
    /// VSIC codes.
    async fn business_lines(&self, ctx: &Context<'_>) -> Result<Vec<String>, ApiError> {
        Ok(self
            .guard(ctx, "businessLines")?
            .business_lines
            .iter()
            .map(|l| l.to_string())
            .collect())
    }
    async fn registration_date(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        Ok(self
            .guard(ctx, "registrationDate")?
            .registration_date
            .to_string())
    }
    async fn status(&self, ctx: &Context<'_>) -> Result<BusinessStatusKind, ApiError> {
        Ok(self.guard(ctx, "status")?.status.kind().into())
    }
    /// Date of dissolution, if dissolved.
    async fn dissolved_on(&self, ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
        Ok(match &self.guard(ctx, "dissolvedOn")?.status {
            BusinessStatus::Dissolved { on } => Some(on.to_string()),
            _ => None,
        })
    }
    /// Legal representatives: citizens, whose personal fields follow the citizen scopes.
    async fn legal_representatives(&self, ctx: &Context<'_>) -> Result<Vec<Citizen>, ApiError> {
        let ids = self
            .guard(ctx, "legalRepresentatives")?
            .legal_representatives
            .clone();
        load_linked_citizens(
            ctx,
            self.1,
            ids,
            FieldGroup::Business,
            "legalRepresentatives",
        )
        .await
    }
    /// The parent enterprise of a branch.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Business>, ApiError> {
        let parent = self.guard(ctx, "parent")?.parent;
        Ok(match parent {
            Some(id) => load_businesses(ctx, self.1, [id]).await?.pop(),
            None => None,
        })
    }
    /// Branches (at the record's `basis`).
    async fn branches(&self, ctx: &Context<'_>) -> Result<Vec<Business>, ApiError> {
        let ids = self.guard(ctx, "branches")?.branches.clone();
        load_businesses(ctx, self.1, ids).await
    }
    /// Parcels on which this business holds rights now: current even on a past state
    /// (`asOf`). Needs group `land` too.
    async fn parcels(&self, ctx: &Context<'_>) -> Result<Vec<Parcel>, ApiError> {
        self.guard(ctx, "parcels")?;
        scoped(ctx, FieldGroup::Land, "parcels")?;
        let ids = load_one(ctx, HeldBy(RecordId::Business(self.0.state.id)))
            .await?
            .unwrap_or_default();
        load_parcels(ctx, None, ids).await
    }
    async fn corrections(&self, ctx: &Context<'_>) -> Result<Vec<Correction>, ApiError> {
        Ok(corrections(&self.guard(ctx, "corrections")?.corrections))
    }
    /// Redactions proposed on this record, in proposal order. Stewards, supervisors and
    /// auditors only.
    async fn redactions(&self, ctx: &Context<'_>) -> Result<Vec<Redaction>, ApiError> {
        may_list(ctx)?;
        let state = self.guard(ctx, "redactions")?;
        redactions(ctx, state.id.into(), self.0.version, &state.privacy).await
    }
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
#[graphql(remote = "citydb_domain::parcel::ParcelStatusKind")]
pub enum ParcelStatusKind {
    Active,
    Retired,
    Split,
    Merged,
}

/// A rights holder: a citizen or a business.
#[derive(Union)]
pub enum Holder {
    Citizen(Citizen),
    Business(Business),
}

/// A holder with its share of the rights, as an exact fraction.
pub struct Holding {
    holder: HolderRef,
    basis: Basis,
    numerator: String,
    denominator: String,
}

#[Object]
impl Holding {
    async fn holder(&self, ctx: &Context<'_>) -> Result<Option<Holder>, ApiError> {
        Ok(match self.holder {
            HolderRef::Citizen(id) => {
                load_linked_citizens(ctx, self.basis, vec![id], FieldGroup::Land, "holder")
                    .await?
                    .pop()
                    .map(Holder::Citizen)
            }
            HolderRef::Business(id) => load_businesses(ctx, self.basis, [id])
                .await?
                .pop()
                .map(Holder::Business),
        })
    }
    /// The share's numerator (shares are exact fractions; they sum to exactly 1).
    async fn share_numerator(&self) -> &str {
        &self.numerator
    }
    async fn share_denominator(&self) -> &str {
        &self.denominator
    }
}

#[derive(SimpleObject, Clone)]
pub struct Certificate {
    pub serial: String,
    pub entry_number: String,
    pub issue_date: String,
    pub issuer: String,
}

pub struct Mortgage {
    basis: Basis,
    contract_number: String,
    creditor: BusinessId,
    amount: String,
    registered_on: String,
}

#[Object]
impl Mortgage {
    async fn contract_number(&self) -> &str {
        &self.contract_number
    }
    async fn creditor(&self, ctx: &Context<'_>) -> Result<Option<Business>, ApiError> {
        Ok(load_businesses(ctx, self.basis, [self.creditor])
            .await?
            .pop())
    }
    /// Amount in VND.
    async fn amount(&self) -> &str {
        &self.amount
    }
    async fn registered_on(&self) -> &str {
        &self.registered_on
    }
}

/// A land parcel. Its state boxed, as [`CitizenBody::State`].
pub struct Parcel(pub Box<Versioned<ParcelState>>, pub Basis);

/// Parcels by id at `basis` (see [`load_citizens`]).
pub(super) async fn load_parcels(
    ctx: &Context<'_>,
    basis: Basis,
    ids: impl IntoIterator<Item = ParcelId>,
) -> Result<Vec<Parcel>, ApiError> {
    let states = states_at(ctx, basis, ids).await?;
    Ok(states.into_iter().map(|v| Parcel::new(v, basis)).collect())
}

impl Parcel {
    pub fn new(state: Versioned<ParcelState>, basis: Basis) -> Self {
        Parcel(Box::new(state), basis)
    }

    fn guard(&self, ctx: &Context<'_>, field: &str) -> Result<&ParcelState, ApiError> {
        let state = &self.0.state;
        unrestricted(ctx, RecordId::Parcel(state.id), &state.privacy)?;
        scoped(ctx, FieldGroup::Land, field)?;
        Ok(&self.0.state)
    }
}

#[Object]
impl Parcel {
    /// `parcel-<uuid>`.
    async fn id(&self) -> String {
        RecordId::Parcel(self.0.state.id).to_string()
    }
    async fn version(&self) -> i64 {
        version_of(&self.0)
    }
    /// Restricted by a steward (`restrictRecord`): services get `RESTRICTED` on every other field.
    async fn restricted(&self) -> bool {
        self.0.state.privacy.is_restricted()
    }
    /// The point this state was read at: pass `knownAt` (and `validAt`) as `asOf` to read
    /// the same state again.
    async fn basis(&self, ctx: &Context<'_>) -> Result<ReadBasis, ApiError> {
        ReadBasis::of(ctx, &self.1)
    }
    /// Every value `field` held through valid time, with from–until dates: `field` is the
    /// domain's name, as corrections spell it (`holders`, `area`, `land_use`, …) or one of
    /// `certificate`, `mortgages`, `status`. Citizens among the holders are logged as read
    /// (group `land`). As known at this state's `basis` (see `Citizen.timeline`).
    #[graphql(complexity = "super::query::STREAM_COST")]
    async fn timeline(&self, ctx: &Context<'_>, field: String) -> Result<Vec<Period>, ApiError> {
        known_field(RecordKind::Parcel, &field)?;
        self.guard(ctx, "timeline")?;
        let id = RecordId::Parcel(self.0.state.id);
        periods(ctx, id, &self.1, &field, FieldGroup::Land).await
    }
    /// `commune/predecessor:sheet/parcel`, unique even after the 2025 commune mergers.
    async fn key(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        Ok(self.guard(ctx, "key")?.key.to_string())
    }
    async fn commune(&self, ctx: &Context<'_>) -> Result<AdminUnit, ApiError> {
        Ok(AdminUnit::new(
            self.guard(ctx, "commune")?.key.unit().to_string(),
        ))
    }
    /// The unit the parcel's map sheet was drawn in (the key's predecessor part): before the
    /// 2025 reorganisation, the commune old certificates and contracts name (`nameOn` a date
    /// before 2025-07-01 gives its name then).
    async fn former_commune(&self, ctx: &Context<'_>) -> Result<AdminUnit, ApiError> {
        Ok(AdminUnit::new(
            self.guard(ctx, "formerCommune")?
                .key
                .predecessor_unit()
                .to_string(),
        ))
    }
    async fn map_sheet(&self, ctx: &Context<'_>) -> Result<i64, ApiError> {
        Ok(i64::from(self.guard(ctx, "mapSheet")?.key.map_sheet()))
    }
    async fn parcel_number(&self, ctx: &Context<'_>) -> Result<i64, ApiError> {
        Ok(i64::from(
            self.guard(ctx, "parcelNumber")?.key.parcel_number(),
        ))
    }
    /// The national parcel identifier, opaque text, when known.
    async fn national_parcel_id(&self, ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
        Ok(self
            .guard(ctx, "nationalParcelId")?
            .national_parcel_id
            .clone())
    }
    /// Area in m², exact (two decimals).
    async fn area(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        Ok(self.guard(ctx, "area")?.area.to_string())
    }
    /// Land-use codes (Circular 08/2024/TT-BTNMT).
    async fn land_use(&self, ctx: &Context<'_>) -> Result<Vec<String>, ApiError> {
        Ok(self
            .guard(ctx, "landUse")?
            .land_use
            .iter()
            .map(|c| c.to_string())
            .collect())
    }
    async fn address(&self, ctx: &Context<'_>) -> Result<String, ApiError> {
        Ok(self.guard(ctx, "address")?.address.clone())
    }
    /// GeoJSON Polygon or MultiPolygon.
    async fn geometry(&self, ctx: &Context<'_>) -> Result<Option<Json<Value>>, ApiError> {
        Ok(self
            .guard(ctx, "geometry")?
            .geometry
            .as_ref()
            .map(|g| Json(g.as_json().clone())))
    }
    async fn holders(&self, ctx: &Context<'_>) -> Result<Vec<Holding>, ApiError> {
        Ok(self
            .guard(ctx, "holders")?
            .holders
            .iter()
            .map(|h| Holding {
                holder: h.holder,
                basis: self.1,
                numerator: h.share.numerator().to_string(),
                denominator: h.share.denominator().to_string(),
            })
            .collect())
    }
    async fn certificate(&self, ctx: &Context<'_>) -> Result<Option<Certificate>, ApiError> {
        Ok(self
            .guard(ctx, "certificate")?
            .certificate
            .as_ref()
            .map(|c| Certificate {
                serial: c.serial.to_string(),
                entry_number: c.entry_number.clone(),
                issue_date: c.issue_date.to_string(),
                issuer: c.issuer.clone(),
            }))
    }
    async fn mortgages(&self, ctx: &Context<'_>) -> Result<Vec<Mortgage>, ApiError> {
        Ok(self
            .guard(ctx, "mortgages")?
            .mortgages
            .iter()
            .map(|m| Mortgage {
                basis: self.1,
                contract_number: m.contract_number.clone(),
                creditor: m.creditor,
                amount: m.amount.0.to_string(),
                registered_on: m.registered_on.to_string(),
            })
            .collect())
    }
    async fn status(&self, ctx: &Context<'_>) -> Result<ParcelStatusKind, ApiError> {
        Ok(self.guard(ctx, "status")?.status.kind().into())
    }
    /// For a split parcel: the parcels it was split into.
    async fn split_into(&self, ctx: &Context<'_>) -> Result<Vec<Parcel>, ApiError> {
        let ids = match &self.guard(ctx, "splitInto")?.status {
            ParcelStatus::Split { into, .. } => into.clone(),
            _ => Vec::new(),
        };
        load_parcels(ctx, self.1, ids).await
    }
    async fn corrections(&self, ctx: &Context<'_>) -> Result<Vec<Correction>, ApiError> {
        Ok(corrections(&self.guard(ctx, "corrections")?.corrections))
    }
    /// Redactions proposed on this record, in proposal order. Stewards, supervisors and
    /// auditors only.
    async fn redactions(&self, ctx: &Context<'_>) -> Result<Vec<Redaction>, ApiError> {
        may_list(ctx)?;
        let state = self.guard(ctx, "redactions")?;
        redactions(ctx, state.id.into(), self.0.version, &state.privacy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record object sits in the futures of the fields that return one, which every field
    /// future of their object is as large as: its state is boxed (see [`CitizenBody::State`]).
    /// Fails if a state (~450–500 bytes) is held inline again.
    #[test]
    fn record_objects_hold_their_states_boxed() {
        for (object, size) in [
            ("Citizen", std::mem::size_of::<Citizen>()),
            ("Business", std::mem::size_of::<Business>()),
            ("Parcel", std::mem::size_of::<Parcel>()),
        ] {
            assert!(size <= 200, "{object} is {size} bytes");
        }
    }
}
