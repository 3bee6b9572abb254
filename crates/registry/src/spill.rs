//! Record states a bulk import sets aside on disk, so that its heap stops growing with the city.
//!
//! A [`BulkRegistry`](crate::BulkRegistry) decides on what it holds in memory: every stream it
//! wrote stays known, because the store cannot be asked (its stream index is built after the
//! load). The whole city's 3.3 million record states take about 3 GB of heap that way. Past a
//! budget, the least recently used states are written to an unnamed temporary file — the page
//! cache holds it, not the process's heap — and read back when a command needs them again.
//!
//! Invariants:
//! - **Exact.** A state read back equals the one written (the domain types round-trip through
//!   their JSON; `tests/bulk.rs` runs the whole equivalence with a budget of a few records).
//! - **Written once while unchanged.** A state read back keeps its [`Slot`] until an event
//!   changes it, so setting aside again a record that was only read (a parcel's holder, a
//!   business's representative) writes nothing.
//! - **Append only.** A changed state goes to the end of the file; the old bytes are left (the
//!   file dies with the import).

use std::fs::File;
use std::os::unix::fs::FileExt;

use citydb_domain::Record;
use citydb_domain::business::Business;
use citydb_domain::citizen::Citizen;
use citydb_domain::parcel::Parcel;
use citydb_log::{FaultKind, LogError};

use crate::error::RegistryError;

/// Where one record's state sits in the spill file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    offset: u64,
    len: u32,
}

/// The spill file (created at the first state set aside).
#[derive(Default)]
pub(crate) struct Spill {
    file: Option<File>,
    end: u64,
    buf: Vec<u8>,
}

/// The first byte of a state: which record kind the JSON after it holds (the inner struct is
/// written without the `kind` tag, whose internally tagged decoding buffers the whole value).
const CITIZEN: u8 = b'c';
const BUSINESS: u8 = b'b';
const PARCEL: u8 = b'p';

impl Spill {
    /// Writes `record` at the end of the file.
    pub(crate) fn write(&mut self, record: &Record) -> Result<Slot, RegistryError> {
        self.buf.clear();
        let encoded = match record {
            Record::Citizen(c) => {
                self.buf.push(CITIZEN);
                serde_json::to_writer(&mut self.buf, c)
            }
            Record::Business(b) => {
                self.buf.push(BUSINESS);
                serde_json::to_writer(&mut self.buf, b)
            }
            Record::Parcel(p) => {
                self.buf.push(PARCEL);
                serde_json::to_writer(&mut self.buf, p)
            }
        };
        encoded.map_err(|e| RegistryError::corrupt(record.id(), e))?;
        let len = u32::try_from(self.buf.len())
            .map_err(|_| RegistryError::corrupt(record.id(), "a state over 4 GiB"))?;
        let file = match &mut self.file {
            Some(file) => file,
            None => self
                .file
                .insert(citydb_log::scratch::unnamed_file("import-states").map_err(io_fault)?),
        };
        file.write_all_at(&self.buf, self.end).map_err(io_fault)?;
        let slot = Slot {
            offset: self.end,
            len,
        };
        self.end += u64::from(len);
        Ok(slot)
    }

    /// The state written at `slot`.
    pub(crate) fn read(&mut self, slot: Slot) -> Result<Record, RegistryError> {
        let file = self.file.as_ref().ok_or_else(|| {
            fault(
                FaultKind::Other,
                "a state was read back before any was set aside",
            )
        })?;
        self.buf.resize(slot.len as usize, 0);
        file.read_exact_at(&mut self.buf, slot.offset)
            .map_err(io_fault)?;
        let unreadable = |e: serde_json::Error| {
            RegistryError::corrupt(format!("a state set aside at byte {}", slot.offset), e)
        };
        let json = self.buf.get(1..).unwrap_or_default();
        Ok(match self.buf.first() {
            Some(&CITIZEN) => {
                Record::Citizen(serde_json::from_slice::<Citizen>(json).map_err(unreadable)?)
            }
            Some(&BUSINESS) => {
                Record::Business(serde_json::from_slice::<Business>(json).map_err(unreadable)?)
            }
            Some(&PARCEL) => {
                Record::Parcel(serde_json::from_slice::<Parcel>(json).map_err(unreadable)?)
            }
            _ => {
                return Err(RegistryError::corrupt(
                    format!("a state set aside at byte {}", slot.offset),
                    "no record kind",
                ));
            }
        })
    }

    /// Bytes written so far (what the file takes on disk).
    pub(crate) fn bytes(&self) -> u64 {
        self.end
    }
}

/// The temporary directory failed (full, removed, read-only): a storage fault of this machine.
fn io_fault(e: std::io::Error) -> RegistryError {
    let kind = match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => FaultKind::Full,
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
            FaultKind::ReadOnly
        }
        _ => FaultKind::Unavailable,
    };
    fault(kind, e)
}

fn fault(kind: FaultKind, e: impl std::fmt::Display) -> RegistryError {
    LogError::storage(
        kind,
        format!("the import's file of record states set aside (in TMPDIR) failed: {e}"),
    )
    .into()
}
