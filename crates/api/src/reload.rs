//! Principals reloaded without a restart: on `SIGHUP`, and when the principals file changes
//! (checked every `poll`), so that a leaked token is revoked at once. A file that does not load
//! (bad TOML, a duplicate id, a missing field) is reported and the principals in force are
//! kept: a typo must not lock every client out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::auth::{AuthConfig, Authenticator};

/// What identifies one version of the file: its modification time and length.
type Stamp = (SystemTime, u64);

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// When a changed file is due for a reload: once its stamp has held for one whole poll. Writers
/// (editors, `std::fs::write`) truncate the file before they write it, and an empty file is a
/// valid configuration with no principals: a poll that fell between the two loaded it and
/// locked every client out until the next change (seen in CI as a flaky
/// `tests/throttle.rs::principals_reload_when_their_file_changes`).
#[derive(Default)]
struct Settle {
    /// The stamp of the version in force.
    loaded: Option<Stamp>,
    /// A changed stamp seen at the last poll, not loaded yet.
    pending: Option<Stamp>,
}

impl Settle {
    /// True when the file is to be loaded now, given its stamp at this poll.
    fn due(&mut self, now: Option<Stamp>) -> bool {
        if now.is_none() || now == self.loaded {
            self.pending = None;
            return false;
        }
        if now == self.pending {
            self.loaded = now;
            self.pending = None;
            return true;
        }
        self.pending = now;
        false
    }
}

/// Loads `path` into `authenticator`, and re-reads the citizen-token revocations (another node
/// may have added to a shared file); `why` says what triggered it (for the log).
pub fn reload(authenticator: &Authenticator, path: &PathBuf, why: &str) -> bool {
    if let Some(tokens) = authenticator.citizen_tokens()
        && let Err(e) = tokens.reload()
    {
        tracing::error!(error = %e, trigger = why,
            "citizen-token revocations not reloaded; the ones in force stay");
    }
    match AuthConfig::load(path) {
        Ok(config) => {
            let n = config.principals.len();
            authenticator.replace(config);
            tracing::info!(path = %path.display(), principals = n, trigger = why, "principals reloaded");
            true
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, trigger = why,
                "principals not reloaded; the previous ones stay in force");
            false
        }
    }
}

/// Watches `path` until the task is dropped or aborted: reloads on `SIGHUP` and whenever the
/// file's modification time or length changes and then holds for one poll ([`Settle`]).
pub fn spawn_reload(
    authenticator: Arc<Authenticator>,
    path: PathBuf,
    poll: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; principals reload on file change only");
                None
            }
        };
        let mut seen = Settle {
            loaded: stamp(&path),
            pending: None,
        };
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let signalled = async {
                match hangup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<()>();
            tokio::select! {
                () = signalled => {
                    seen = Settle {
                        loaded: stamp(&path),
                        pending: None,
                    };
                    reload(&authenticator, &path, "SIGHUP");
                }
                _ = tick.tick() => {
                    if seen.due(stamp(&path)) {
                        reload(&authenticator, &path, "file changed");
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_loaded_once_it_holds_for_a_poll_and_a_passing_truncation_never() {
        let t = |s: u64| Some((SystemTime::UNIX_EPOCH + Duration::from_secs(s), 100));
        let empty = Some((SystemTime::UNIX_EPOCH + Duration::from_secs(2), 0));
        let mut settle = Settle {
            loaded: t(1),
            pending: None,
        };
        assert!(!settle.due(t(1)), "unchanged");
        // `std::fs::write` caught between its truncation and its write.
        assert!(!settle.due(empty), "the truncated file is not loaded");
        assert!(
            !settle.due(t(2)),
            "the written file has not held for a poll yet"
        );
        assert!(settle.due(t(2)), "it held: loaded");
        assert!(!settle.due(t(2)), "loaded once");
        // A file that vanishes for a poll changes nothing.
        assert!(!settle.due(None));
        assert!(!settle.due(t(2)));
    }
}
