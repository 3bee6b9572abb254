//! How a record entered its register (shared by the registers that load
//! existing data: citizens and businesses).

use serde::Serialize;

crate::tagged::tag_first! {
    tag = "kind", deny_unknown_fields;
    /// How a record entered the register.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum RegistrationOrigin {
        /// A registration made in citydb (birth registration, new enterprise).
        Registration,
        /// Loaded from an existing register; `source` names it.
        InitialLoad { source: String },
    }
}
