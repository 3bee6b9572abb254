//! Citizen records: state, commands, rules and evolution.
//!
//! Invariants kept by `decide`:
//! * the PIN agrees with the recorded sex and birth year, and is unique (key stream);
//! * a marriage links both records in one decision, and only two living,
//!   unmarried, distinct citizens marry;
//! * a deceased citizen gets no further events except corrections and merge;
//! * a citizen merged into a survivor is read-only.

//!
//! Layers: [`state`](self) and the command structs sit below the event and
//! command enums; the rules (`decide`), the fold (`evolve`) and the
//! correctable fields (`fields`) sit above the snapshot.

pub(crate) mod commands;
pub(crate) mod decide;
pub(crate) mod evolve;
pub(crate) mod fields;
pub(crate) mod state;
pub(crate) mod summary;

pub use crate::origin::RegistrationOrigin;
pub use commands::{
    ChangeCitizenName, ChangeResidence, IssueIdentityCard, MergeCitizens, RecordDeath,
    RegisterCitizen, RegisterDivorce, RegisterMarriage, SetParents,
};
pub use state::{
    Citizen, CitizenStatus, IdentityCard, LifeStatus, Marriage, Residence, ResidenceKind,
};
pub use summary::Summary;
