//! TEMPORARY placeholder for the witness client being written on branch `witness`; replaced
//! by that branch's file at merge. Submits nothing.

use citydb_tlog::{Tlog, VerifierKey};

#[derive(Clone, Debug)]
pub struct WitnessConfig {
    pub url: String,
    pub key: VerifierKey,
}

impl std::str::FromStr for WitnessConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (url, key) = s.split_once(',').ok_or("expected URL,VKEY")?;
        Ok(WitnessConfig {
            url: url.to_owned(),
            key: VerifierKey::parse(key).map_err(|e| e.to_string())?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct WitnessOutcome;

impl WitnessOutcome {
    pub fn cosigned(&self) -> bool {
        false
    }
}

impl std::fmt::Display for WitnessOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not submitted")
    }
}

pub struct Witnesses;

impl Witnesses {
    pub fn new(_list: Vec<WitnessConfig>) -> Witnesses {
        Witnesses
    }

    pub async fn cosign(&self, _tlog: &Tlog, note: &str) -> (String, Vec<WitnessOutcome>) {
        (note.to_owned(), Vec::new())
    }
}
