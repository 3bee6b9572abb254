//! What `/readyz` answers for a node: ready only when the node can do its work.
//!
//! A node is ready when all of these hold, checked in this order (the first that fails is the
//! reason given in `/readyz`'s JSON body):
//! 1. it is not starting up (`serve --demo` holds readiness while it loads the demo data);
//! 2. the event log accepts writes and the access log can be written — a node that answers
//!    reads but fails every write, or cannot log a personal read (and so must withhold it), is
//!    not fit for traffic. The store's [`WriteProbe`] (given by whoever opened the store,
//!    `citydb-store`, which says how each backend is asked) finds out by asking the store,
//!    every `probe_interval`, not by looking at permission bits (root ignores those). Logs
//!    given without a probe ([`crate::Node::with_logs`]) are taken as writable.
//! 3. the projections file is not damaged: a check of the whole file runs once the node
//!    serves (`Projections::check_integrity`); damage it finds keeps the node unready until a
//!    restart, which rebuilds the read models from the log;
//! 4. the projections have caught up with the log's head.
//!
//! Changes of readiness are logged once each, with the reason (WARN when the store refuses
//! writes, INFO otherwise), by the probe loop and by `/readyz`, never once per probe.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use citydb_log::backend::WriteProbe;

/// Why a node is not ready.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NotReady {
    /// What kind of reason: a change of kind is logged, a change of wording (the projection
    /// count while catching up) is not.
    kind: &'static str,
    reason: String,
}

/// A node's readiness, shared by its router and its probe loop.
pub struct NodeReadiness {
    starting: watch::Sender<Option<String>>,
    store: watch::Sender<Result<(), String>>,
    /// Damage the check after open found in the projections file.
    damaged: watch::Sender<Option<String>>,
    projected: watch::Receiver<u64>,
    head: watch::Receiver<Option<u64>>,
    /// The last verdict logged (`None`: ready); `Some(None)` before the first.
    logged: Mutex<Option<Option<NotReady>>>,
}

impl NodeReadiness {
    /// Probes `probe` once, then every `interval` for as long as the returned value lives;
    /// without a probe the store is taken as writable.
    pub async fn start(
        probe: Option<Arc<dyn WriteProbe>>,
        interval: Duration,
        projected: watch::Receiver<u64>,
        head: watch::Receiver<Option<u64>>,
    ) -> Arc<NodeReadiness> {
        let first = match &probe {
            Some(probe) => probe.check().await,
            None => Ok(()),
        };
        let state = Arc::new(NodeReadiness {
            starting: watch::channel(None).0,
            store: watch::channel(first).0,
            damaged: watch::channel(None).0,
            projected,
            head,
            logged: Mutex::new(None),
        });
        state.check().ok();
        if let Some(probe) = probe {
            tokio::spawn(probe_loop(Arc::downgrade(&state), probe, interval));
        }
        state
    }

    /// `Ok` when ready, else the reason; logs a change of verdict.
    pub fn check(&self) -> Result<(), String> {
        let verdict = self.verdict();
        self.log_change(verdict.as_ref().err());
        verdict.map_err(|n| n.reason)
    }

    fn verdict(&self) -> Result<(), NotReady> {
        if let Some(why) = self.starting.borrow().as_ref() {
            return Err(NotReady {
                kind: "starting",
                reason: why.clone(),
            });
        }
        if let Err(why) = self.store.borrow().as_ref() {
            return Err(NotReady {
                kind: "store",
                reason: why.clone(),
            });
        }
        if let Some(why) = self.damaged.borrow().as_ref() {
            return Err(NotReady {
                kind: "damaged",
                reason: format!(
                    "the projections file is damaged ({why}); restart the node to rebuild the read models from the log"
                ),
            });
        }
        let next = *self.projected.borrow();
        match *self.head.borrow() {
            Some(head) if next <= head => Err(NotReady {
                kind: "projections",
                reason: format!(
                    "the projections are catching up with the log: {next} of {} events projected",
                    head + 1
                ),
            }),
            _ => Ok(()),
        }
    }

    fn log_change(&self, now: Option<&NotReady>) {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        let same = match (&*logged, now) {
            (Some(None), None) => true,
            (Some(Some(before)), Some(now)) => {
                before.kind == now.kind
                    && (now.kind == "projections" || before.reason == now.reason)
            }
            _ => false,
        };
        if same {
            return;
        }
        match now {
            None => tracing::info!(target: "citydb::readiness", "ready"),
            // A store that refuses writes needs an operator; starting up and catching up
            // end by themselves.
            Some(n) if n.kind == "store" || n.kind == "damaged" => {
                tracing::warn!(target: "citydb::readiness", reason = %n.reason, "not ready")
            }
            Some(n) => tracing::info!(target: "citydb::readiness", reason = %n.reason, "not ready"),
        }
        *logged = Some(now.cloned());
    }

    /// Not ready from now on: the projections file is damaged (`reason`, as the check found
    /// it). Only a restart, which rebuilds the file, clears it.
    pub fn projections_damaged(&self, reason: String) {
        self.damaged.send_replace(Some(reason));
        self.check().ok();
    }

    /// Not ready, for `reason`, until the returned guard is dropped (start-up work after the
    /// port is open, e.g. loading the demo data).
    pub fn hold(self: &Arc<Self>, reason: impl Into<String>) -> StartupHold {
        self.starting.send_replace(Some(reason.into()));
        self.check().ok();
        StartupHold(self.clone())
    }
}

async fn probe_loop(state: Weak<NodeReadiness>, probe: Arc<dyn WriteProbe>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let verdict = probe.check().await;
        // The node is gone: stop probing.
        let Some(state) = state.upgrade() else { return };
        state.store.send_if_modified(|v| {
            let changed = *v != verdict;
            *v = verdict;
            changed
        });
        state.check().ok();
    }
}

/// Holds a node unready while it lives; see [`NodeReadiness::hold`].
pub struct StartupHold(Arc<NodeReadiness>);

impl Drop for StartupHold {
    fn drop(&mut self) {
        self.0.starting.send_replace(None);
        self.0.check().ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn not_ready_while_starting_then_while_catching_up() {
        let (_position, projected) = watch::channel(3u64);
        let (head_tx, head) = watch::channel(Some(2u64));
        let state = NodeReadiness::start(None, Duration::from_secs(60), projected, head).await;
        assert_eq!(state.check(), Ok(()));
        let hold = state.hold("loading the demo data");
        assert_eq!(state.check(), Err("loading the demo data".to_owned()));
        drop(hold);
        head_tx.send_replace(Some(5));
        let reason = state.check().expect_err("behind the head");
        assert!(reason.contains("3 of 6 events projected"), "{reason}");
    }

    #[tokio::test]
    async fn damaged_projections_keep_the_node_unready() {
        let (_position, projected) = watch::channel(3u64);
        let (_head_tx, head) = watch::channel(Some(2u64));
        let state = NodeReadiness::start(None, Duration::from_secs(60), projected, head).await;
        assert_eq!(state.check(), Ok(()));
        state.projections_damaged("*** in database main *** Page 7: btreeInitPage() error".into());
        let reason = state.check().expect_err("damaged");
        assert!(
            reason.contains("damaged") && reason.contains("Page 7") && reason.contains("restart"),
            "{reason}"
        );
    }
}
