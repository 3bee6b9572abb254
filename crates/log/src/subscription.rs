//! Catch-up subscriptions over any [`EventLog`].

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::LogError;
use crate::event::RecordedEvent;
use crate::log::{EventLog, READ_BATCH};

/// Delivers the log from a position: catch-up reads, then live events.
///
/// Why there is no gap and no duplicate: the subscription never takes events from the
/// notification; it only reads the log by position, starting at `next`, and advances `next` past
/// what it delivered. The head notification is marked seen *before* each read, so an append that
/// becomes visible after the read still wakes it. Backends publish a position only once every
/// lower position is visible, so reading by position cannot skip an event committed late.
pub struct Subscription {
    log: Arc<dyn EventLog>,
    next: u64,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<Option<u64>>,
}

impl Subscription {
    pub(crate) fn new(log: Arc<dyn EventLog>, from: u64) -> Self {
        let head = log.watch_head();
        Subscription {
            log,
            next: from,
            buffer: VecDeque::new(),
            head,
        }
    }

    /// The position of the next event this subscription will deliver.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next event, waiting for one to be appended if the subscription has caught up.
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<RecordedEvent, LogError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.next = event.position + 1;
                return Ok(event);
            }
            if self.fill(READ_BATCH).await? {
                continue;
            }
            if self.head.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }

    /// Up to `max` events that are already available, without waiting (an empty vector when
    /// caught up). For consumers that work in batches, like projections.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        if self.buffer.is_empty() {
            self.fill(max.max(1)).await?;
        }
        let n = self.buffer.len().min(max);
        // The whole buffer (a batch read for this call, or read ahead) is handed over without
        // a copy: a catch-up's batches are a quarter of a million events.
        let out: Vec<_> = if n == self.buffer.len() {
            Vec::from(std::mem::take(&mut self.buffer))
        } else {
            self.buffer.drain(..n).collect()
        };
        if let Some(last) = out.last() {
            self.next = last.position + 1;
        }
        Ok(out)
    }

    /// Reads up to `max` of the next events into the buffer, if it is empty and the head says
    /// there are any, for a later [`next_batch`](Self::next_batch): a consumer that works in
    /// large batches reads the next one while it processes the last. Cancel-safe.
    pub async fn read_ahead(&mut self, max: usize) -> Result<(), LogError> {
        if self.buffer.is_empty() {
            self.fill(max.max(1)).await?;
        }
        Ok(())
    }

    /// Reads the next events into the buffer if the head says there are any; true if it got some.
    async fn fill(&mut self, max: usize) -> Result<bool, LogError> {
        // Mark the head seen before reading, so an append that lands after the read still wakes
        // the next `changed()`.
        let visible = *self.head.borrow_and_update();
        if visible.is_none_or(|head| head < self.next) {
            return Ok(false);
        }
        let batch = self.log.read_all(self.next, max).await?;
        if let Some(first) = batch.first()
            && first.position != self.next
        {
            return Err(LogError::Corrupted {
                position: self.next,
                reason: format!("the log skips from {} to {}", self.next, first.position),
            });
        }
        let got = !batch.is_empty();
        if self.buffer.is_empty() {
            // Without a copy.
            self.buffer = VecDeque::from(batch);
        } else {
            self.buffer.extend(batch);
        }
        Ok(got)
    }

    /// Waits until events past the delivered ones may be available.
    pub async fn wait(&mut self) -> Result<(), LogError> {
        if !self.buffer.is_empty() {
            return Ok(());
        }
        loop {
            if self
                .head
                .borrow_and_update()
                .is_some_and(|h| h >= self.next)
            {
                return Ok(());
            }
            if self.head.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }
}
