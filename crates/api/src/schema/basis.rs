//! The point a record is read at (issue 16, docs/domain.md "Two kinds of time"): the recorded
//! axis — "as known at" a log position or time — and the valid axis — "as it held on" a date.
//!
//! Invariants:
//! - Without `asOf` a read is the current state, from the projections ([`Basis`] `None`).
//! - With `asOf` every record reached from the answer (its forward relations: parents, spouse,
//!   holders, representatives, …) is read at the same [`Past`], folded from the log. Lists
//!   kept only in the projections (children, a citizen's parcels, branches, search) stay
//!   current; their schema descriptions say so.
//! - `validAt` alone is pinned to the log's head when asked, so every record of one answer is
//!   read as known at one position, and the answer's [`ReadBasis`] repeats it exactly.
//! - The recorded axis (`position`, `time`) is for stewards, supervisors and auditors (and a
//!   citizen on their own record); `validAt` is for anyone who may read the record, within
//!   their field groups, and every personal field read on it is logged as any other.

use async_graphql::{Context, InputObject, SimpleObject};

use std::hash::Hash;

use citydb_domain::business::Business;
use citydb_domain::citizen::Citizen;
use citydb_domain::parcel::Parcel;
use citydb_domain::{BusinessId, CitizenId, Date, ParcelId, Record, RecordId};
use citydb_projections::Versioned;

use super::access::require;
use super::changes::position_in_log;
use super::inputs::Date as DateInput;
use super::loaders::{Load, ProjectionLoader, load_in_order};
use super::query::{HISTORY_ROLES, handles};
use super::registry_error;
use super::time::parse_rfc3339;
use crate::error::ApiError;

/// A point to read a record at. The recorded axis ("as known at"): a log `position` or a
/// `time` (RFC 3339), at most one — stewards, supervisors and auditors, and a citizen on their
/// own record. The valid axis: `validAt`, the date the state held on (as known now, or as
/// known at `position`/`time`) — anyone who may read the record, within their field groups.
/// Give at least one.
#[derive(InputObject, Clone, Default)]
pub struct AsOf {
    pub position: Option<i64>,
    pub time: Option<String>,
    /// The date (`YYYY-MM-DD`) the record's state held on: events count from the date they hold
    /// from (a move from its `since`, a death from its date), not from when they were recorded.
    pub valid_at: Option<DateInput>,
}

/// A resolved point in the past: read the log up to `known_at`, on `valid_at`'s date (or the
/// state as known then, whatever the date, with `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Past {
    pub known_at: u64,
    pub valid_at: Option<Date>,
}

/// What a record object was read at: `None` for the current state from the projections.
pub type Basis = Option<Past>;

/// What an answer was read at, so that it can be asked again and give the same state.
#[derive(SimpleObject)]
pub struct ReadBasis {
    /// The log position the state reflects: pass it as `asOf.position` to read it again.
    pub known_at: i64,
    /// The date the state held on (`asOf.validAt`); `null`: the state as known, on no
    /// particular date (the current state, or an as-of state on the recorded axis only).
    pub valid_at: Option<String>,
    /// True when read from the projections (the current state), false when folded from the log.
    pub current: bool,
}

impl ReadBasis {
    pub(super) fn of(ctx: &Context<'_>, basis: &Basis) -> Result<Self, ApiError> {
        Ok(match basis {
            Some(past) => ReadBasis {
                known_at: past.known_at as i64,
                valid_at: past.valid_at.map(|d| d.to_string()),
                current: false,
            },
            None => ReadBasis {
                known_at: handles(ctx)?.projections.position() as i64,
                valid_at: None,
                current: true,
            },
        })
    }
}

/// Resolves `asOf` to a [`Past`]; `None` when nothing was known then (a time before the first
/// event). Refuses the recorded axis to roles that may not look into the log's past.
pub(super) async fn resolve(ctx: &Context<'_>, as_of: &AsOf) -> Result<Option<Past>, ApiError> {
    let valid_at = as_of
        .valid_at
        .as_ref()
        .map(|d| {
            d.0.parse::<Date>()
                .map_err(|e| ApiError::invalid_field(format!("asOf.validAt: {e}"), "asOf.validAt"))
        })
        .transpose()?;
    let log = &handles(ctx)?.log;
    let known_at = match (as_of.position, &as_of.time) {
        (None, None) => {
            if valid_at.is_none() {
                return Err(ApiError::invalid_input(
                    "asOf takes `position` or `time` (the recorded axis), `validAt` (the valid axis), or both",
                ));
            }
            // The last visible position, kept in memory by every store: published after its
            // commit and before the append is acknowledged, so it covers every append this
            // node acknowledged, and reads at it see exactly the log up to it.
            *log.watch_head().borrow()
        }
        (position, time) => {
            require(ctx, &HISTORY_ROLES)?;
            match (position, time) {
                (Some(p), None) => position_in_log(log.as_ref(), p, "asOf.position", false).await?,
                (None, Some(t)) => {
                    let micros = parse_rfc3339(t).ok_or_else(|| {
                        ApiError::invalid_field("asOf.time is not an RFC 3339 time", "asOf.time")
                    })?;
                    log.position_at(micros).await?
                }
                _ => {
                    return Err(ApiError::invalid_input(
                        "asOf takes at most one of `position` and `time`",
                    ));
                }
            }
        }
    };
    Ok(known_at.map(|known_at| Past { known_at, valid_at }))
}

/// `id`'s state at `past`, folded from the log; `None` if it was not known then or did not
/// exist on `valid_at`.
pub(super) async fn record_at(
    ctx: &Context<'_>,
    id: RecordId,
    past: Past,
) -> Result<Option<Versioned<Record>>, ApiError> {
    let registry = &handles(ctx)?.registry;
    let loaded = match past.valid_at {
        Some(date) => {
            registry
                .load_record_valid_at(id, Some(past.known_at), date)
                .await
        }
        None => registry.load_record_as_of(id, past.known_at).await,
    }
    .map_err(registry_error)?;
    Ok(loaded.map(|l| Versioned {
        state: l.record,
        version: l.version,
        last_position: l.last_position,
    }))
}

/// Records of one kind at `past`, in the order of `ids`, skipping those not known then or not
/// existing on `valid_at` (as the projections' loaders skip unknown ids). One log read per
/// record: a past state is folded from its stream.
pub(super) async fn records_at<T>(
    ctx: &Context<'_>,
    past: Past,
    ids: impl IntoIterator<Item = RecordId>,
    pick: impl Fn(Record) -> Option<T>,
) -> Result<Vec<Versioned<T>>, ApiError> {
    let mut found = Vec::new();
    for id in ids {
        if let Some(v) = record_at(ctx, id, past).await?
            && let Some(state) = pick(v.state)
        {
            found.push(Versioned {
                state,
                version: v.version,
                last_position: v.last_position,
            });
        }
    }
    Ok(found)
}

/// A record kind, by its id type: what [`states_at`] reads.
pub(super) trait Kind: Copy + Send + Sync + Hash + Eq + Into<RecordId> + 'static {
    type State: Clone;
    /// The state of this kind in `record`, `None` for another kind.
    fn state(record: Record) -> Option<Self::State>;
}

impl Kind for CitizenId {
    type State = Citizen;
    fn state(record: Record) -> Option<Citizen> {
        match record {
            Record::Citizen(c) => Some(c),
            _ => None,
        }
    }
}

impl Kind for BusinessId {
    type State = Business;
    fn state(record: Record) -> Option<Business> {
        match record {
            Record::Business(b) => Some(b),
            _ => None,
        }
    }
}

impl Kind for ParcelId {
    type State = Parcel;
    fn state(record: Record) -> Option<Parcel> {
        match record {
            Record::Parcel(p) => Some(p),
            _ => None,
        }
    }
}

/// Records of one kind by id at `basis`, in the order of `ids`: current states from the
/// projections (one batched load), or each folded from the log at a past point.
pub(super) async fn states_at<K: Kind>(
    ctx: &Context<'_>,
    basis: Basis,
    ids: impl IntoIterator<Item = K>,
) -> Result<Vec<Versioned<K::State>>, ApiError>
where
    ProjectionLoader: Load<K, Value = Versioned<K::State>>,
{
    match basis {
        None => load_in_order(ctx, ids).await,
        // Boxed, as `Batches::load_many`'s read: a past state's read is the rare path.
        Some(past) => {
            Box::pin(records_at(
                ctx,
                past,
                ids.into_iter().map(Into::into),
                K::state,
            ))
            .await
        }
    }
}
