//! Carrying out approved redactions in the log (`citydb_domain::redaction` has the rules).
//!
//! Once a `RedactionApproved` event is durably appended, [`Registry::blank`] blanks, with
//! [`EventLog::redact`] (every hash stays):
//! - the payload of the event it names, after checking that the event is still the one the
//!   proposal read (same stream, same event hash);
//! - the payload of the marker of the command that produced that event (`command-<id>`, found
//!   through the event's `causation_id`): it holds the command as sent, personal data included.
//!
//! The projections need nothing from here: every fold applies the approval's replacement in
//! place of the event it names, whether or not the payload is blanked yet, and the projector
//! re-folds a record when it meets an approval (`citydb-projections`).
//!
//! Crash safety: the approval is appended first and the blanking follows, so a crash between
//! the two leaves an approval whose target still holds its payload. Blanking is idempotent
//! (`redact` of a blanked event is `Ok`), so it is simply run again: by every execution of a
//! redaction command on the record (a re-sent approval included) and by
//! [`Registry::complete_redactions`], which the server runs at start for every approval the
//! projections have seen, and `rebuild-projections` after a rebuild.

use citydb_domain::redaction::LoggedEvent;
use citydb_domain::{Command, Event, RecordId};
use citydb_log::{Direction, Hash, Metadata};

use crate::error::RegistryError;
use crate::fold::{decode, record_stream};
use crate::registry::{Loaded, Registry, command_stream};

/// What blanking one approved redaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Blanked {
    /// Payloads blanked by this call (the event, its command's marker).
    pub blanked: u32,
    /// Payloads found already blanked (a re-run).
    pub already: u32,
}

impl Blanked {
    fn add(&mut self, redacted: citydb_log::Redacted) {
        if redacted.already_redacted {
            self.already += 1;
        } else {
            self.blanked += 1;
        }
    }
}

impl Registry {
    /// Reads the event a `ProposeRedaction` names into the snapshot (the domain checks that it
    /// is on the record's stream and not blanked yet); nothing when the log has no event there.
    pub(crate) async fn load_redaction_target(
        &self,
        loaded: &mut Loaded,
        command: &Command,
    ) -> Result<(), RegistryError> {
        let Command::ProposeRedaction(c) = command else {
            return Ok(());
        };
        let Some(target) = self
            .log()
            .read_all(c.position, 1)
            .await?
            .into_iter()
            .find(|e| e.position == c.position)
        else {
            return Ok(());
        };
        let event = (!target.is_redacted())
            .then(|| decode(&target))
            .transpose()?;
        loaded.snapshot.insert_logged(
            c.position,
            LoggedEvent {
                stream: target.stream_id.as_str().to_owned(),
                event_hash: target.hash.to_hex(),
                event,
            },
        );
        Ok(())
    }

    /// Blanks every redaction approved on `record` (idempotent; see the module).
    pub async fn complete_redactions(&self, record: RecordId) -> Result<Blanked, RegistryError> {
        let stream = record_stream(record)?;
        let mut total = Blanked::default();
        let mut from = 0;
        loop {
            let batch = self
                .log()
                .read_stream(&stream, from, Direction::Forward, citydb_log::READ_BATCH)
                .await?;
            let Some(last) = batch.last() else { break };
            from = last.stream_version + 1;
            for recorded in batch.iter().filter(|e| e.event_type == "RedactionApproved") {
                if let Event::RedactionApproved {
                    position,
                    event_hash,
                    ..
                } = decode(recorded)?
                {
                    let done = self.blank(record, position, &event_hash).await?;
                    total.blanked += done.blanked;
                    total.already += done.already;
                }
            }
        }
        Ok(total)
    }

    /// Blanks the event at `position` of `record`'s stream, whose event hash is `event_hash`
    /// (hex), and its command's marker.
    pub async fn blank(
        &self,
        record: RecordId,
        position: u64,
        event_hash: &str,
    ) -> Result<Blanked, RegistryError> {
        let stream = record_stream(record)?;
        let corrupt = |reason: String| RegistryError::corrupt(&stream, reason);
        let hash = Hash::from_hex(event_hash)
            .ok_or_else(|| corrupt(format!("approved redaction names a bad hash {event_hash}")))?;
        let target = self
            .log()
            .read_all(position, 1)
            .await?
            .into_iter()
            .find(|e| e.position == position)
            .ok_or_else(|| corrupt(format!("approved redaction names no event at {position}")))?;
        if target.stream_id != stream {
            return Err(corrupt(format!(
                "approved redaction names position {position} of another stream"
            )));
        }
        let mut done = Blanked::default();
        done.add(self.log().redact(position, hash).await?);
        // The marker of the command that produced the event, when the event names it (events
        // appended by a command always do; a copied-in legacy event may not).
        let command_id = serde_json::from_slice::<Metadata>(&target.metadata)
            .ok()
            .and_then(|m| m.causation_id);
        if let Some(command_id) = command_id {
            let marker = command_stream(command_id)?;
            let first = self
                .log()
                .read_stream(&marker, 0, Direction::Forward, 1)
                .await?;
            if let Some(marker_event) = first.first() {
                done.add(
                    self.log()
                        .redact(marker_event.position, marker_event.hash)
                        .await?,
                );
            }
        }
        Ok(done)
    }
}
