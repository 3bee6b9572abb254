//! Folding a parcel's events into its state.

use crate::event::{Event, EvolveError};
use crate::parcel::state::{Parcel, ParcelStatus};

impl Parcel {
    pub(crate) fn apply(&mut self, event: &Event) -> Result<(), EvolveError> {
        match event {
            Event::RightsTransferred { holders, .. } => self.holders = holders.clone(),
            Event::LandUseChanged { land_use, .. } => self.land_use = land_use.clone(),
            Event::CertificateIssued { certificate } => {
                self.certificate = Some(certificate.clone())
            }
            Event::CertificateRevoked { .. } => self.certificate = None,
            Event::MortgageRegistered { mortgage } => self.mortgages.push(mortgage.clone()),
            Event::MortgageReleased {
                contract_number, ..
            } => {
                self.mortgages
                    .retain(|m| &m.contract_number != contract_number);
            }
            Event::ParcelSplit { into, date } => {
                self.status = ParcelStatus::Split {
                    on: *date,
                    into: into.clone(),
                }
            }
            Event::ParcelMergedInto { target, date } => {
                self.status = ParcelStatus::MergedInto {
                    on: *date,
                    target: *target,
                };
            }
            Event::ParcelRetired { date, reason } => {
                self.status = ParcelStatus::Retired {
                    on: *date,
                    reason: reason.clone(),
                };
            }
            other => {
                return Err(EvolveError::WrongStream {
                    event_type: other.event_type(),
                    stream: "parcel",
                });
            }
        }
        Ok(())
    }
}

impl Parcel {
    /// The state a `ParcelRegistered` event starts a stream with; `None` for any
    /// other event.
    pub(crate) fn registered(event: &Event) -> Option<Self> {
        let Event::ParcelRegistered {
            parcel,
            key,
            national_parcel_id,
            area,
            land_use,
            address,
            geometry,
            holders,
            origin,
        } = event
        else {
            return None;
        };
        Some(Parcel {
            id: *parcel,
            key: *key,
            national_parcel_id: national_parcel_id.clone(),
            area: *area,
            land_use: land_use.clone(),
            address: address.clone(),
            geometry: geometry.clone(),
            holders: holders.clone(),
            certificate: None,
            mortgages: Vec::new(),
            status: ParcelStatus::Active,
            origin: origin.clone(),
            corrections: Default::default(),
            privacy: Default::default(),
        })
    }
}
