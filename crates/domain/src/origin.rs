//! How a record entered its register (shared by the registers that load
//! existing data: citizens and businesses).

use serde::{Deserialize, Serialize};

/// How a record entered the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum RegistrationOrigin {
    /// A registration made in citydb (birth registration, new enterprise).
    Registration,
    /// Loaded from an existing register; `source` names it.
    InitialLoad { source: String },
}
