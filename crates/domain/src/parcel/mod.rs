//! Land parcel records.
//!
//! Invariants kept by `decide`:
//! * the parcel key is unique (key stream) and its administrative unit is a current
//!   Hải Phòng unit;
//! * rights holders are distinct, eligible (living, non-merged citizens;
//!   non-dissolved businesses) and their shares sum to exactly 1;
//! * a retired parcel (retired, split or merged away) gets no further events
//!   except certificate revocation and corrections;
//! * rights are not transferred, split, merged or retired while a mortgage
//!   is registered, unless the transfer releases it in the same decision;
//! * split and merge conserve area exactly.

pub(crate) mod commands;
pub(crate) mod decide;
pub(crate) mod evolve;
pub(crate) mod fields;
pub(crate) mod state;

pub use commands::{
    ChangeLandUse, IssueCertificate, MergeParcels, NewParcel, RegisterMortgage, RegisterParcel,
    ReleaseMortgage, RetireParcel, RevokeCertificate, SplitParcel, TransferRights,
};
pub use state::{
    Certificate, Holder, Holding, Mortgage, Parcel, ParcelOrigin, ParcelStatus, ParcelStatusKind,
    TransferKind,
};
