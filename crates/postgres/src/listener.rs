//! The live head across processes: LISTEN/NOTIFY plus a periodic poll.
//!
//! A dedicated connection (not pooled: LISTEN is session state) listens on
//! [`NOTIFY_CHANNEL`]. Every append NOTIFYs its last position inside its own transaction, so the
//! notification is delivered only once that transaction has committed, and positions become
//! visible in order, so any notified position is safe to publish. Notifications can still be
//! missed (the connection drops; rows are written without one, as by a bulk copy), so the head
//! is also re-read every poll interval and at every (re)connection. The published head only
//! ever rises.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::schema::NOTIFY_CHANNEL;
use citydb_log::backend::publish_head;

/// `application_name` of the listener connection (visible in `pg_stat_activity`).
pub(crate) const APPLICATION_NAME: &str = "citydb-listener";

/// Longest wait before reconnecting after the connection was lost.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Runs until aborted (when the log is dropped), reconnecting after any failure.
/// `ready` is answered after the first attempt to listen, successful or not.
pub(crate) async fn run(
    pg: tokio_postgres::Config,
    head: Arc<watch::Sender<Option<u64>>>,
    poll: Duration,
    ready: oneshot::Sender<()>,
) {
    let poll = poll.max(Duration::from_millis(10));
    let mut ready = Some(ready);
    loop {
        // Returns only when the connection is lost or cannot be made.
        let _ = session(&pg, &head, poll, &mut ready).await;
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        tokio::time::sleep(poll.min(MAX_RECONNECT_DELAY)).await;
    }
}

/// Aborts the connection's driver task when the session ends, however it ends.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn session(
    pg: &tokio_postgres::Config,
    head: &watch::Sender<Option<u64>>,
    poll: Duration,
    ready: &mut Option<oneshot::Sender<()>>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = pg.connect(NoTls).await?;
    let (notes_tx, mut notes) = mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        // Drives the connection (query responses included) and forwards notifications; ends,
        // closing `notes`, when the connection does.
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message
                && notes_tx.send(n.payload().to_owned()).is_err()
            {
                break;
            }
        }
    });
    let _driver = AbortOnDrop(driver.abort_handle());
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await?;
    let poll_head = client.prepare("SELECT max(position) FROM events").await?;
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    // The first tick fires at once: whatever was appended while not listening is caught now.
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            note = notes.recv() => match note {
                Some(payload) => {
                    if let Ok(position) = payload.parse::<u64>() {
                        publish_head(head, position);
                    }
                }
                None => return Ok(()),
            },
            _ = tick.tick() => {
                let row = client.query_one(&poll_head, &[]).await?;
                if let Some(position) = row.try_get::<_, Option<i64>>(0)?
                    && let Ok(position) = u64::try_from(position)
                {
                    publish_head(head, position);
                }
            }
        }
    }
}
