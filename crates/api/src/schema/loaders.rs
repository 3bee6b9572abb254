//! Batch loading from the projections, so that resolving relations over a page costs a fixed
//! number of queries. No cache: the loaders live for the whole schema and a write must be
//! visible to the next read (read-your-writes); they only batch.

use std::collections::HashMap;

use std::hash::Hash;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};

use citydb_domain::business::Business;
use citydb_domain::citizen::Citizen;
use citydb_domain::parcel::Parcel as ParcelState;
use citydb_domain::{BusinessId, CitizenId, ParcelId, RecordId};
use citydb_projections::{ProjectionError, Projections, Versioned};

use crate::error::ApiError;

/// Parcels held by a citizen or a business.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeldBy(pub RecordId);

/// Businesses a citizen represents.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RepresentedBy(pub CitizenId);

/// The children of a citizen: those whose current father or mother they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildrenOf(pub CitizenId);

pub struct ProjectionLoader(pub Projections);

fn failed(e: ProjectionError) -> ApiError {
    projection_error(e)
}

/// A failed read of the projections: an outage of their file or of the log gets the store's
/// code (`STORE_FULL`, `STORE_READ_ONLY`, `STORE_UNAVAILABLE`); anything else is a bug or
/// damage (`INTERNAL`, detail logged).
pub(super) fn projection_error(e: ProjectionError) -> ApiError {
    match e {
        ProjectionError::Fault(fault) => ApiError::store(fault.kind, fault.detail),
        ProjectionError::Log(log) => ApiError::from(log),
        other => ApiError::internal(format!("projection read failed: {other}")),
    }
}

impl Loader<CitizenId> for ProjectionLoader {
    type Value = Versioned<Citizen>;
    type Error = ApiError;
    async fn load(&self, keys: &[CitizenId]) -> Result<HashMap<CitizenId, Self::Value>, ApiError> {
        self.0.citizens_by_ids(keys).await.map_err(failed)
    }
}

impl Loader<BusinessId> for ProjectionLoader {
    type Value = Versioned<Business>;
    type Error = ApiError;
    async fn load(
        &self,
        keys: &[BusinessId],
    ) -> Result<HashMap<BusinessId, Self::Value>, ApiError> {
        self.0.businesses_by_ids(keys).await.map_err(failed)
    }
}

impl Loader<ParcelId> for ProjectionLoader {
    type Value = Versioned<ParcelState>;
    type Error = ApiError;
    async fn load(&self, keys: &[ParcelId]) -> Result<HashMap<ParcelId, Self::Value>, ApiError> {
        self.0.parcels_by_ids(keys).await.map_err(failed)
    }
}

impl Loader<HeldBy> for ProjectionLoader {
    type Value = Vec<ParcelId>;
    type Error = ApiError;
    async fn load(&self, keys: &[HeldBy]) -> Result<HashMap<HeldBy, Self::Value>, ApiError> {
        let ids: Vec<RecordId> = keys.iter().map(|k| k.0).collect();
        let found = self.0.parcels_held_by(&ids).await.map_err(failed)?;
        Ok(found.into_iter().map(|(k, v)| (HeldBy(k), v)).collect())
    }
}

impl Loader<RepresentedBy> for ProjectionLoader {
    type Value = Vec<BusinessId>;
    type Error = ApiError;
    async fn load(
        &self,
        keys: &[RepresentedBy],
    ) -> Result<HashMap<RepresentedBy, Self::Value>, ApiError> {
        let ids: Vec<CitizenId> = keys.iter().map(|k| k.0).collect();
        let found = self
            .0
            .businesses_represented_by(&ids)
            .await
            .map_err(failed)?;
        Ok(found
            .into_iter()
            .map(|(k, v)| (RepresentedBy(k), v))
            .collect())
    }
}

impl Loader<ChildrenOf> for ProjectionLoader {
    type Value = Vec<CitizenId>;
    type Error = ApiError;
    async fn load(
        &self,
        keys: &[ChildrenOf],
    ) -> Result<HashMap<ChildrenOf, Self::Value>, ApiError> {
        let ids: Vec<CitizenId> = keys.iter().map(|k| k.0).collect();
        let found = self.0.children_of(&ids).await.map_err(failed)?;
        Ok(found.into_iter().map(|(k, v)| (ChildrenOf(k), v)).collect())
    }
}

/// The schema's loader: one batching loader over one projection handle, for every key type.
pub struct Loaders(pub DataLoader<ProjectionLoader>);

impl Loaders {
    pub fn new(projections: &Projections) -> Self {
        Loaders(DataLoader::new(
            ProjectionLoader(projections.clone()),
            tokio::spawn,
        ))
    }
}

/// Loads `ids` through the schema's loader (batched with every other load of the same tick),
/// keeping their order and skipping ids that have no record.
pub async fn load_in_order<K>(
    ctx: &Context<'_>,
    ids: impl IntoIterator<Item = K>,
) -> Result<Vec<<ProjectionLoader as Loader<K>>::Value>, ApiError>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    ProjectionLoader: Loader<K, Error = ApiError>,
{
    let ids: Vec<K> = ids.into_iter().collect();
    let loaders = ctx
        .data::<Loaders>()
        .map_err(|_| ApiError::internal("loaders missing from the schema data"))?;
    let found = loaders.0.load_many(ids.iter().cloned()).await?;
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use citydb_log::{FaultKind, StorageFault};

    #[test]
    fn projection_faults_get_the_store_codes() {
        let fault = |kind| {
            projection_error(ProjectionError::Fault(StorageFault {
                kind,
                detail: "disk /dev/sda1".into(),
            }))
        };
        assert_eq!(fault(FaultKind::Full).code(), ErrorCode::StoreFull);
        assert_eq!(fault(FaultKind::ReadOnly).code(), ErrorCode::StoreReadOnly);
        assert_eq!(
            fault(FaultKind::Unavailable).code(),
            ErrorCode::StoreUnavailable
        );
        assert!(!fault(FaultKind::Full).to_string().contains("sda1"));
        let damage = projection_error(ProjectionError::Storage("malformed".into()));
        assert_eq!(damage.code(), ErrorCode::Internal);
    }
}
