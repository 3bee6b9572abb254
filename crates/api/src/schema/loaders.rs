//! Batch loading from the projections, so that resolving relations over a page costs a fixed
//! number of reads. No cache: a write must be visible to the next read (read-your-writes);
//! the loaders only batch.
//!
//! A batch lives in one operation's own task ([`Batches`], attached to each operation by
//! the schema's hooks). The first load of a key type opens the batch and yields once: every
//! sibling resolver that the same pass of the executor's joins polls adds its keys to it.
//! Then the opener reads the batch on its own thread and hands every waiter the result.
//! async-graphql's `DataLoader` (used until 2026-12-06) instead spawned a task for each batch
//! that slept 1 ms on async-io's timer thread before reading. That added a millisecond to
//! every read with a relation, two thread hops, and batches shared between concurrent
//! operations (docs/benchmarks.md, "Relations batched in the operation's own task").
//!
//! Invariants:
//! - A batch is read once, by the load that opened it, after yielding once.
//! - A batch never outlives its opener: an opener dropped before it reads closes the batch
//!   (its waiters get an error, never a wait without end), and the next load opens a new one.
//! - Batches of different operations never mix, so a cancelled operation fails nobody else.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::Context;
use citydb_log::FaultKind;
use tokio::sync::oneshot;

use citydb_domain::business::Business;
use citydb_domain::citizen::{Citizen, Summary as CitizenSummary};
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

/// A citizen's current summary (id, name, birth date, restricted), for a relation whose
/// citizens are asked nothing else (`records::asks_only`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SummaryOf(pub CitizenId);

/// The children of a citizen: those whose current father or mother they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildrenOf(pub CitizenId);

/// Reads values of one key type, many keys at once. A key without a value is left out of the
/// map.
pub trait Load<K>: Send + Sync {
    type Value: Send + Sync + 'static;
    fn load(
        &self,
        keys: &[K],
    ) -> impl Future<Output = Result<HashMap<K, Self::Value>, ApiError>> + Send;
}

/// The projections, as the schema's one source of batched reads.
pub struct ProjectionLoader(pub Projections);

fn failed(e: ProjectionError) -> ApiError {
    projection_error(e)
}

/// A failed read of the projections: an outage of their file or of the log gets the store's
/// code (`STORE_FULL`, `STORE_READ_ONLY`, `STORE_UNAVAILABLE`), a damaged row
/// `PROJECTION_DAMAGED` (a damaged event, through the log, `LOG_DAMAGED`); anything else is a
/// bug (`INTERNAL`). The detail is logged, never sent.
pub(super) fn projection_error(e: ProjectionError) -> ApiError {
    match e {
        ProjectionError::Fault(fault) if fault.kind == FaultKind::Damaged => {
            ApiError::projection_damaged(fault.detail)
        }
        ProjectionError::Fault(fault) => ApiError::store(fault.kind, fault.detail),
        ProjectionError::Log(log) => ApiError::from(log),
        e @ ProjectionError::Corrupt(_) => ApiError::projection_damaged(e),
        other => ApiError::internal(format!("projection read failed: {other}")),
    }
}

impl Load<CitizenId> for ProjectionLoader {
    type Value = Versioned<Citizen>;
    async fn load(&self, keys: &[CitizenId]) -> Result<HashMap<CitizenId, Self::Value>, ApiError> {
        self.0.citizens_by_ids(keys).await.map_err(failed)
    }
}

impl Load<SummaryOf> for ProjectionLoader {
    type Value = Versioned<CitizenSummary>;
    async fn load(&self, keys: &[SummaryOf]) -> Result<HashMap<SummaryOf, Self::Value>, ApiError> {
        let ids: Vec<CitizenId> = keys.iter().map(|k| k.0).collect();
        let found = self
            .0
            .citizen_summaries_by_ids(&ids)
            .await
            .map_err(failed)?;
        Ok(found
            .into_iter()
            .map(|(id, v)| (SummaryOf(id), v))
            .collect())
    }
}

impl Load<BusinessId> for ProjectionLoader {
    type Value = Versioned<Business>;
    async fn load(
        &self,
        keys: &[BusinessId],
    ) -> Result<HashMap<BusinessId, Self::Value>, ApiError> {
        self.0.businesses_by_ids(keys).await.map_err(failed)
    }
}

impl Load<ParcelId> for ProjectionLoader {
    type Value = Versioned<ParcelState>;
    async fn load(&self, keys: &[ParcelId]) -> Result<HashMap<ParcelId, Self::Value>, ApiError> {
        self.0.parcels_by_ids(keys).await.map_err(failed)
    }
}

impl Load<HeldBy> for ProjectionLoader {
    type Value = Vec<ParcelId>;
    async fn load(&self, keys: &[HeldBy]) -> Result<HashMap<HeldBy, Self::Value>, ApiError> {
        let ids: Vec<RecordId> = keys.iter().map(|k| k.0).collect();
        let found = self.0.parcels_held_by(&ids).await.map_err(failed)?;
        Ok(found.into_iter().map(|(k, v)| (HeldBy(k), v)).collect())
    }
}

impl Load<RepresentedBy> for ProjectionLoader {
    type Value = Vec<BusinessId>;
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

impl Load<ChildrenOf> for ProjectionLoader {
    type Value = Vec<CitizenId>;
    async fn load(
        &self,
        keys: &[ChildrenOf],
    ) -> Result<HashMap<ChildrenOf, Self::Value>, ApiError> {
        let ids: Vec<CitizenId> = keys.iter().map(|k| k.0).collect();
        let found = self.0.children_of(&ids).await.map_err(failed)?;
        Ok(found.into_iter().map(|(k, v)| (ChildrenOf(k), v)).collect())
    }
}

/// The schema's source of batched reads, shared by every operation.
pub struct Loaders(pub ProjectionLoader);

impl Loaders {
    pub fn new(projections: &Projections) -> Self {
        Loaders(ProjectionLoader(projections.clone()))
    }
}

/// What a batch's waiters receive: every value the batch read.
type Found<K, V> = Result<Arc<HashMap<K, V>>, ApiError>;

/// An open batch of one key type: its keys and who waits for them.
struct Open<K, V> {
    keys: HashSet<K>,
    waiters: Vec<oneshot::Sender<Found<K, V>>>,
}

/// One operation's open batches, one per key type (attached to the operation's data by the
/// schema's hooks).
#[derive(Default)]
pub struct Batches {
    open: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
}

impl Batches {
    /// Reads `keys` through `source`, batched with every load of the same key type that this
    /// operation's resolvers start in the same pass.
    pub async fn load_many<S, K>(
        &self,
        source: &S,
        keys: impl IntoIterator<Item = K>,
    ) -> Found<K, S::Value>
    where
        S: Load<K>,
        K: Hash + Eq + Clone + Send + Sync + 'static,
    {
        let mut keys = keys.into_iter().peekable();
        if keys.peek().is_none() {
            return Ok(Arc::default());
        }
        let (tx, rx) = oneshot::channel();
        let opens = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = open
                .entry(TypeId::of::<K>())
                .or_insert_with(|| Box::new(None::<Open<K, S::Value>>));
            let Some(batch) = slot.downcast_mut::<Option<Open<K, S::Value>>>() else {
                return Err(ApiError::internal("a batch slot of another key type"));
            };
            let opens = batch.is_none();
            let batch = batch.get_or_insert_with(|| Open {
                keys: HashSet::new(),
                waiters: Vec::new(),
            });
            batch.keys.extend(keys);
            batch.waiters.push(tx);
            opens
        };
        if opens {
            let closer = Closer::<K, S::Value> {
                batches: self,
                _batch: PhantomData,
            };
            // The siblings polled after this one in the same pass add their keys meanwhile.
            tokio::task::yield_now().await;
            if let Some(batch) = closer.take() {
                let keys: Vec<K> = batch.keys.into_iter().collect();
                // Boxed: the read's future (~800 bytes, the projections' blocking hop and the
                // states it returns) would otherwise sit inside this one and in every future
                // that awaits it — a relation field's, and so every field future of its
                // object, each allocated and copied whole (docs/benchmarks.md, "Futures
                // sized for the fields most requests ask for").
                let found = Box::pin(source.load(&keys)).await.map(Arc::new);
                for waiter in batch.waiters {
                    // A waiter that is gone no longer needs its values.
                    let _ = waiter.send(found.clone());
                }
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(ApiError::internal(
                "a batched read was dropped before it was read",
            ))
        })
    }

    fn take<K: 'static, V: 'static>(&self) -> Option<Open<K, V>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get_mut(&TypeId::of::<K>())?
            .downcast_mut::<Option<Open<K, V>>>()?
            .take()
    }
}

/// Closes the batch its opener opened if the opener is dropped before reading it, so that
/// the next load opens a new batch instead of joining one nobody reads.
struct Closer<'b, K: 'static, V: 'static> {
    batches: &'b Batches,
    _batch: PhantomData<fn() -> (K, V)>,
}

impl<K: 'static, V: 'static> Closer<'_, K, V> {
    fn take(self) -> Option<Open<K, V>> {
        let batch = self.batches.take::<K, V>();
        std::mem::forget(self);
        batch
    }
}

impl<K: 'static, V: 'static> Drop for Closer<'_, K, V> {
    fn drop(&mut self) {
        // Its waiters' senders drop with it: they get an error, not a wait without end.
        drop(self.batches.take::<K, V>());
    }
}

/// Loads `ids` through the operation's batches, keeping their order and skipping ids that
/// have no record.
pub async fn load_in_order<K>(
    ctx: &Context<'_>,
    ids: impl IntoIterator<Item = K>,
) -> Result<Vec<<ProjectionLoader as Load<K>>::Value>, ApiError>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    ProjectionLoader: Load<K, Value: Clone>,
{
    let ids: Vec<K> = ids.into_iter().collect();
    let found = load_many(ctx, ids.iter().cloned()).await?;
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// Loads `keys` through the operation's batches.
pub async fn load_many<K>(
    ctx: &Context<'_>,
    keys: impl IntoIterator<Item = K>,
) -> Found<K, <ProjectionLoader as Load<K>>::Value>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    ProjectionLoader: Load<K>,
{
    let loaders = ctx
        .data::<Loaders>()
        .map_err(|_| ApiError::internal("loaders missing from the schema data"))?;
    let batches = ctx
        .data::<Arc<Batches>>()
        .map_err(|_| ApiError::internal("batches missing from the operation's data"))?;
    batches.load_many(&loaders.0, keys).await
}

/// The value of one key, if it has one.
pub async fn load_one<K>(
    ctx: &Context<'_>,
    key: K,
) -> Result<Option<<ProjectionLoader as Load<K>>::Value>, ApiError>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    ProjectionLoader: Load<K, Value: Clone>,
{
    let found = load_many(ctx, [key.clone()]).await?;
    Ok(found.get(&key).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use citydb_log::{FaultKind, LogError, StorageFault};
    use futures_util::future::join_all;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source that doubles its keys and remembers every batch it was asked for.
    #[derive(Default)]
    struct Doubling {
        batches: Mutex<Vec<Vec<u32>>>,
        reads: AtomicUsize,
    }

    impl Load<u32> for Doubling {
        type Value = u32;
        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, ApiError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let mut sorted = keys.to_vec();
            sorted.sort_unstable();
            self.batches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sorted);
            // Key 0 has no value, as an id without a record.
            Ok(keys
                .iter()
                .filter(|&&k| k != 0)
                .map(|&k| (k, 2 * k))
                .collect())
        }
    }

    impl Load<&'static str> for Doubling {
        type Value = usize;
        async fn load(
            &self,
            keys: &[&'static str],
        ) -> Result<HashMap<&'static str, usize>, ApiError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(keys.iter().map(|k| (*k, k.len())).collect())
        }
    }

    /// Sibling loads polled in one pass are read as one batch, each waiter gets its values, a
    /// key without a value is absent, and the next pass (a relation of the first results)
    /// opens a new batch. Fails with a batch read per load (no yield before reading) or with
    /// a batch read twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sibling_loads_are_read_as_one_batch_per_pass() {
        let source = Doubling::default();
        let batches = Batches::default();
        let pages = join_all((0..40u32).map(|i| {
            let (source, batches) = (&source, &batches);
            async move {
                let first = batches.load_many(source, [i, i + 100]).await?;
                let firsts = (first.get(&i).copied(), first.get(&(i + 100)).copied());
                // A relation of what the first pass read: a second batch, of the next pass.
                let second = batches.load_many(source, [1000 + i]).await?;
                Ok::<_, ApiError>((firsts, second.get(&(1000 + i)).copied()))
            }
        }))
        .await;
        for (i, page) in (0..40u32).zip(pages) {
            let ((a, b), c) = page.expect("the fake source does not fail");
            assert_eq!(a, (i != 0).then_some(2 * i), "key {i}");
            assert_eq!(b, Some(2 * (i + 100)));
            assert_eq!(c, Some(2 * (1000 + i)));
        }
        let seen = source
            .batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let first: Vec<u32> = (0..40).chain(100..140).collect();
        let second: Vec<u32> = (1000..1040).collect();
        assert_eq!(*seen, vec![first, second]);
    }

    /// A source whose read holds 4 KiB across an await, as a projections read holds a state.
    struct Bulky;

    impl Load<u64> for Bulky {
        type Value = u64;
        async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, u64>, ApiError> {
            let held = [7u8; 4096];
            tokio::task::yield_now().await;
            Ok(keys
                .iter()
                .map(|&k| (k, k + u64::from(held[4095])))
                .collect())
        }
    }

    /// The source's read is boxed: a load's future does not grow with it, so neither do the
    /// futures of the fields that load (every field future of their object is as large as its
    /// largest field's). Fails if `source.load` is awaited inline (the future would pass 4 KiB).
    #[tokio::test]
    async fn a_loads_future_does_not_hold_the_sources_read() {
        let batches = Batches::default();
        let load = batches.load_many(&Bulky, [1u64, 2]);
        let size = std::mem::size_of_val(&load);
        assert!(size < 1024, "a load's future is {size} bytes");
        let found = load.await.expect("the fake source does not fail");
        assert_eq!((found.get(&1), found.get(&2)), (Some(&8), Some(&9)));
    }

    /// Key types batch apart, in the same pass; no keys read nothing.
    #[tokio::test]
    async fn each_key_type_has_its_own_batch() {
        let source = Doubling::default();
        let batches = Batches::default();
        let (n, s, none) = tokio::join!(
            batches.load_many(&source, [3u32]),
            batches.load_many(&source, ["four"]),
            batches.load_many(&source, Vec::<u32>::new()),
        );
        assert_eq!(n.expect("read").get(&3), Some(&6));
        assert_eq!(s.expect("read").get("four"), Some(&4));
        assert!(none.expect("nothing to read").is_empty());
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
    }

    /// An opener dropped before its batch is read closes the batch: its waiters get an error
    /// instead of waiting for ever, and a later load opens and reads a batch of its own. Fails
    /// (times out) without the closer.
    #[tokio::test]
    async fn a_dropped_opener_fails_its_waiters_and_leaves_no_batch_open() {
        let source = Doubling::default();
        let batches = Batches::default();
        let mut opener = Box::pin(batches.load_many(&source, [1u32]));
        let mut waiter = Box::pin(batches.load_many(&source, [2u32]));
        // One poll each: the opener yields, the waiter joins its batch.
        assert!(futures_util::poll!(opener.as_mut()).is_pending());
        assert!(futures_util::poll!(waiter.as_mut()).is_pending());
        drop(opener);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter of a dropped opener is not left waiting");
        assert_eq!(waited.err().map(|e| e.code()), Some(ErrorCode::Internal));
        let later = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            batches.load_many(&source, [5u32]),
        )
        .await
        .expect("a later load opens its own batch")
        .expect("read");
        assert_eq!(later.get(&5), Some(&10));
        assert_eq!(source.reads.load(Ordering::SeqCst), 1);
    }

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
        let bug = projection_error(ProjectionError::Storage("misuse".into()));
        assert_eq!(bug.code(), ErrorCode::Internal);
        let damage = projection_error(ProjectionError::Corrupt("state of citizen-1".into()));
        assert_eq!(damage.code(), ErrorCode::ProjectionDamaged);
        assert_eq!(damage.extensions_json()["retryable"], false);
        assert!(!damage.to_string().contains("citizen-1"), "detail leaked");
        let event = projection_error(ProjectionError::Log(LogError::Corrupted {
            position: 7,
            reason: "data is not JSON".into(),
        }));
        assert_eq!(event.code(), ErrorCode::LogDamaged);
        // A fault the engine classified as damage is the projections' when it comes from them.
        assert_eq!(
            fault(FaultKind::Damaged).code(),
            ErrorCode::ProjectionDamaged
        );
        let page = projection_error(ProjectionError::Log(LogError::storage(
            FaultKind::Damaged,
            "database disk image is malformed",
        )));
        assert_eq!(page.code(), ErrorCode::LogDamaged);
    }
}
