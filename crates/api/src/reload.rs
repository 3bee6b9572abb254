//! Principals reloaded without a restart: on `SIGHUP`, and when the principals file changes
//! (checked every `poll`), so that a leaked token is revoked at once. A file that does not load
//! (bad TOML, a duplicate id, a missing field) is reported and the principals in force are
//! kept: a typo must not lock every client out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::auth::{AuthConfig, Authenticator};

/// What identifies one version of the file: its modification time and length.
fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
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
/// file's modification time or length changes.
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
        let mut seen = stamp(&path);
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
                    seen = stamp(&path);
                    reload(&authenticator, &path, "SIGHUP");
                }
                _ = tick.tick() => {
                    let now = stamp(&path);
                    if now.is_some() && now != seen {
                        seen = now;
                        reload(&authenticator, &path, "file changed");
                    }
                }
            }
        }
    })
}
