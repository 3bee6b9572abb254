//! Business records (enterprises and their branches).
//!
//! Invariants kept by `decide`:
//! * the enterprise code is unique (key stream) and, for new registrations,
//!   has a computable check digit; a branch's code is its parent's plus a suffix;
//! * every legal representative is an existing, living, non-merged citizen;
//! * a dissolved business gets no further events except corrections.

pub(crate) mod commands;
pub(crate) mod decide;
pub(crate) mod evolve;
pub(crate) mod fields;
pub(crate) mod state;

pub use crate::origin::RegistrationOrigin;
pub use commands::{
    ChangeBusinessLines, ChangeCharterCapital, ChangeLegalRepresentatives, DissolveBusiness,
    MoveHeadOffice, RegisterBranch, RegisterBusiness, RenameBusiness, ResumeBusiness,
    SuspendBusiness,
};
pub use state::{Address, Business, BusinessNames, BusinessStatus, BusinessStatusKind};
