//! A record's privacy state: its restriction and its redactions ([`crate::redaction`] has the
//! rules). Kept apart from the rules so that record states depend on nothing but values.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stewardship::LegalBasis;

crate::tagged::tag_first! {
    tag = "status";
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum RedactionStatus {
        Pending,
        Approved { by: String },
        Rejected { by: String, reason: String },
    }
}

/// A redaction of one event of the record, by its log position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub position: u64,
    pub event_hash: String,
    pub event_type: String,
    pub reason: String,
    pub legal_basis: LegalBasis,
    pub proposed_by: String,
    /// The target as the redaction leaves it (an [`crate::Event`]'s JSON; kept as JSON so
    /// that record states do not depend on the event module).
    pub replacement: Value,
    pub status: RedactionStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    pub reason: String,
    pub legal_basis: LegalBasis,
    pub by: String,
}

/// A record's privacy state: its restriction and its redactions, by target position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privacy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted: Option<Restriction>,
    /// In proposal order, at most one per target position that is not rejected. A list, not a
    /// map by position: the state is stored as JSON, whose keys are strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redactions: Vec<Redaction>,
}

impl Privacy {
    pub fn is_empty(&self) -> bool {
        self.restricted.is_none() && self.redactions.is_empty()
    }

    pub fn is_restricted(&self) -> bool {
        self.restricted.is_some()
    }

    /// The latest redaction proposed for the event at `position`.
    pub fn redaction(&self, position: u64) -> Option<&Redaction> {
        self.redactions
            .iter()
            .rev()
            .find(|r| r.position == position)
    }

    pub(crate) fn redaction_mut(&mut self, position: u64) -> Option<&mut Redaction> {
        self.redactions
            .iter_mut()
            .rev()
            .find(|r| r.position == position)
    }
}
