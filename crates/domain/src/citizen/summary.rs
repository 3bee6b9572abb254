//! What a list of citizens shows of each one — a name search's page: the record id, the name,
//! the birth date, and whether the record is restricted (which decides whether a service may
//! see the rest). The projections keep these beside each citizen's state, so a page that shows
//! nothing else reads them without decoding the state (`citydb_projections`'
//! `search_citizen_summaries`).

use crate::date::PartialDate;
use crate::ids::CitizenId;
use crate::name::PersonName;

use super::state::Citizen;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: CitizenId,
    pub name: PersonName,
    pub birth_date: PartialDate,
    /// [`crate::privacy::Privacy::is_restricted`] of the state.
    pub restricted: bool,
}

impl From<&Citizen> for Summary {
    fn from(c: &Citizen) -> Self {
        Summary {
            id: c.id,
            name: c.name.clone(),
            birth_date: c.birth_date,
            restricted: c.privacy.is_restricted(),
        }
    }
}
