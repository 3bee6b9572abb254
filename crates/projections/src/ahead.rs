//! Pure work done in order on a second thread, ahead of the thread that consumes it: a large
//! batch's upcasts and encodings are computed beside the SQLite writes that need them, so a
//! catch-up keeps the node's second core busy while its writer thread does the B-tree work
//! (docs/benchmarks.md, "A catch-up's reads, upcasts and encodings beside its writes").

use std::sync::mpsc;
use std::thread::Scope;

use crate::error::ProjectionError;

/// Items from which the work goes to a second thread: below it, a thread and its channel cost
/// more than they save (a serving node's batches are a few events).
pub(crate) const AHEAD_FROM: usize = 4096;

/// Results travel in chunks of this many, so the channel's synchronisation is per chunk, not
/// per item.
const CHUNK: usize = 512;

/// Chunks computed ahead of the consumer at most: bounds the memory held for it.
const CHUNKS_AHEAD: usize = 8;

/// `f` of each of `items`, in order: on a thread of `scope` when there are at least
/// [`AHEAD_FROM`] items, in line when fewer. The thread stops early when the returned iterator
/// is dropped, so a consumer may stop at its first error.
pub(crate) fn in_order<'scope, T, U>(
    scope: &'scope Scope<'scope, '_>,
    items: impl ExactSizeIterator<Item = T> + Send + 'scope,
    f: impl Fn(T) -> U + Send + 'scope,
) -> Result<Box<dyn Iterator<Item = U> + 'scope>, ProjectionError>
where
    T: 'scope,
    U: Send + 'scope,
{
    if items.len() < AHEAD_FROM {
        return Ok(Box::new(items.map(f)));
    }
    let (chunks, received) = mpsc::sync_channel::<Vec<U>>(CHUNKS_AHEAD);
    std::thread::Builder::new()
        .name("citydb-projections-ahead".into())
        .spawn_scoped(scope, move || {
            let mut items = items;
            loop {
                let chunk: Vec<U> = items.by_ref().take(CHUNK).map(&f).collect();
                // An error: the consumer is gone.
                if chunk.is_empty() || chunks.send(chunk).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| ProjectionError::Storage(format!("cannot start a thread: {e}")))?;
    Ok(Box::new(received.into_iter().flatten()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_from_either_side_of_the_threshold() {
        for n in [0, 1, AHEAD_FROM - 1, AHEAD_FROM, AHEAD_FROM * 3 + 17] {
            let out: Vec<usize> = std::thread::scope(|scope| {
                in_order(scope, 0..n, |i| {
                    // Tells the helper thread from the consumer: in line below the threshold.
                    let helper = std::thread::current().name() == Some("citydb-projections-ahead");
                    assert_eq!(helper, n >= AHEAD_FROM, "{n} items");
                    i * 2
                })
                .unwrap()
                .collect()
            });
            assert_eq!(out, (0..n).map(|i| i * 2).collect::<Vec<_>>(), "{n} items");
        }
    }

    #[test]
    fn a_consumer_that_stops_early_does_not_wait_for_the_rest() {
        let computed = std::sync::atomic::AtomicUsize::new(0);
        let first: Vec<usize> = std::thread::scope(|scope| {
            let out = in_order(scope, 0..1_000_000, |i| {
                computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i
            })
            .unwrap();
            out.take(3).collect()
        });
        assert_eq!(first, [0, 1, 2]);
        // The helper stopped once its channel was closed: a few chunks ahead, not the million.
        let computed = computed.into_inner();
        assert!(
            computed <= CHUNK * (CHUNKS_AHEAD + 3),
            "{computed} computed"
        );
    }
}
