//! A record's state as stored in the `records` table: the domain `Record` as JSON.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use citydb_domain::Record;

pub(crate) fn from_json(json: &str) -> Result<Record, serde_json::Error> {
    serde_json::from_str(json)
}

/// The JSON stored for a record state. Deterministic: structs serialise in field order and
/// corrections are a `BTreeMap`, which `digest()` relies on.
pub(crate) fn to_json(record: &Record) -> Result<String, serde_json::Error> {
    serde_json::to_string(record)
}

/// [`from_json`] for the read path, remembering what it decoded by the exact stored text.
///
/// Decoding a state is the largest single cost of a read: ~19,000 instructions for a citizen,
/// a fifth of a name-search page's (docs/benchmarks.md, "Decoded states kept by their text").
/// Services read the same records over and over (every service of a one-stop-shop dossier
/// reads its citizen; every clerk's `nguyen van h` gets the same first page), so the decoded
/// record is kept and cloned on the next read of the same text.
///
/// Invariant: the key is the whole stored text, compared byte for byte on a hit, and decoding
/// is a pure function of it — so a kept record is exactly what decoding would return, whatever
/// changed since (a new event, a redaction's refold, another record's merge): a changed state
/// is a different text, hence a miss. No invalidation exists to forget. Bounded: at most
/// [`KEPT_STATES`] states and [`KEPT_BYTES`] of text, none longer than [`KEPT_TEXT_BYTES`];
/// emptied when full (as the parsed-documents cache is), so a scan of the whole city costs a
/// re-decode of the hot states, never memory. The projector does not use it: rebuilding would only churn it.
pub(crate) fn from_json_for_read(json: &[u8]) -> Result<Record, serde_json::Error> {
    if json.len() > KEPT_TEXT_BYTES {
        return decode(json);
    }
    let kept = KEPT
        .lock()
        .ok()
        .and_then(|kept| kept.states.get(json).cloned());
    if let Some(record) = kept {
        return Ok(Record::clone(&record));
    }
    let record: Record = decode(json)?;
    if let Ok(mut kept) = KEPT.lock() {
        if kept.states.len() >= KEPT_STATES || kept.text_bytes + json.len() > KEPT_BYTES {
            *kept = Kept::default();
        }
        if kept
            .states
            .insert(json.into(), Arc::new(record.clone()))
            .is_none()
        {
            kept.text_bytes += json.len();
        }
    }
    Ok(record)
}

/// Decodes stored bytes with one UTF-8 check of the whole text (SIMD: a stored state is mostly
/// Vietnamese text, where std's check goes a byte at a time), then [`from_json`], whose
/// reader trusts it: `serde_json::from_slice` checks every string by itself (~36 calls for a
/// citizen, 3.7 % of a name search page's instructions). Bytes that are not UTF-8 go through
/// `from_slice`, for its error.
fn decode(json: &[u8]) -> Result<Record, serde_json::Error> {
    match simdutf8::basic::from_utf8(json) {
        Ok(text) => from_json(text),
        Err(_) => serde_json::from_slice(json),
    }
}

/// Drops every kept state. The projector calls it after a redaction's refold committed: the
/// refolded record is another text (a miss) either way, but the unredacted state should not
/// stay decoded in memory. (A read that began before the commit may still keep the old text
/// once more, unreachable, until the cache is next emptied.)
pub(crate) fn forget_read_states() {
    if let Ok(mut kept) = KEPT.lock() {
        *kept = Kept::default();
    }
}

/// Most decoded states kept.
const KEPT_STATES: usize = 16_384;

/// Most bytes of state text kept (a decoded record takes about twice its text's size): 16 MiB,
/// ~24,000 citizens' worth, so the whole cache stays under ~50 MB of heap whatever the records.
const KEPT_BYTES: usize = 16 << 20;

/// Longest state text kept; longer ones (a parcel with hundreds of holders) are decoded each
/// time.
const KEPT_TEXT_BYTES: usize = 8 << 10;

/// Keyed by the stored bytes, hashed with foldhash: a citizen's text is ~1 KB, and SipHash
/// took ~1,950 instructions a read to hash it, foldhash a fraction of that (docs/benchmarks.md,
/// "A search page's states read in one statement"). The bytes are not checked as UTF-8 first:
/// a hit is the same bytes a successful decode (which checks every string) once accepted.
/// foldhash's random per-process seed makes colliding texts hard to choose in advance (it
/// claims only minimal resistance to such attacks, unlike SipHash); the cache's bounds cap what
/// a collision could cost either way: at most [`KEPT_STATES`] entries.
#[derive(Default)]
struct Kept {
    states: HashMap<Box<[u8]>, Arc<Record>, foldhash::fast::RandomState>,
    /// The kept texts' total length.
    text_bytes: usize,
}

static KEPT: LazyLock<Mutex<Kept>> = LazyLock::new(Mutex::default);

/// How many decoded states are kept (for tests).
#[cfg(test)]
fn kept() -> usize {
    KEPT.lock().map_or(0, |k| k.states.len())
}

/// The kept texts' total length (for tests).
#[cfg(test)]
fn kept_bytes() -> usize {
    KEPT.lock().map_or(0, |k| k.text_bytes)
}

/// Whether `json`'s decoding is kept (for tests).
#[cfg(test)]
fn is_kept(json: &str) -> bool {
    KEPT.lock()
        .is_ok_and(|k| k.states.contains_key(json.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CITIZEN: &str = r#"{"kind":"citizen","id":"22ed2420-9431-8001-baf7-6af2e76794d0","pin":"030150269696","name":{"family":"Phạm","middle":"Mai","given":"Phương"},"sex":"female","birth_date":"1950-08-29","birth_place":"10930","father":null,"mother":null,"permanent_residence":{"commune":"10930","address":"Thôn Bàng La","since":"2020-05-31"},"temporary_residence":null,"marriage":null,"identity_card":null,"life":{"status":"alive"},"merged_into":null,"absorbed":[],"origin":{"kind":"initial_load","source":"CSDLQG về dân cư"},"corrections":{}}"#;

    /// The kept path answers what decoding answers, for the same text and for a changed one,
    /// and refuses what decoding refuses without keeping it. (One test: the cache is shared by
    /// the process, and tests run in parallel.)
    #[test]
    fn a_kept_state_is_what_decoding_returns() {
        let decoded = from_json(CITIZEN).unwrap();
        assert_eq!(from_json_for_read(CITIZEN.as_bytes()).unwrap(), decoded);
        assert!(is_kept(CITIZEN), "the state is kept");
        assert_eq!(
            from_json_for_read(CITIZEN.as_bytes()).unwrap(),
            decoded,
            "a hit"
        );
        // The same record after a change (a redaction's blanked address): another text,
        // another answer — never the kept one.
        let changed = CITIZEN.replace("Thôn Bàng La", "");
        let after = from_json_for_read(changed.as_bytes()).unwrap();
        assert_eq!(after, from_json(&changed).unwrap());
        assert_ne!(after, decoded);
        // Damaged text is an error each time, and not kept.
        let damaged = &CITIZEN[..CITIZEN.len() - 1];
        assert!(from_json_for_read(damaged.as_bytes()).is_err());
        assert!(from_json_for_read(damaged.as_bytes()).is_err());
        assert!(!is_kept(damaged), "an error is not kept");
        // Bytes that are not UTF-8 (read as bytes, they are not checked before decoding):
        // refused by the decode, and not kept.
        let mut not_utf8 = CITIZEN.as_bytes().to_vec();
        let at = CITIZEN.find("Bàng").unwrap() + 1;
        not_utf8[at] = 0xff;
        assert!(from_json_for_read(&not_utf8).is_err());
        assert!(
            KEPT.lock()
                .is_ok_and(|k| !k.states.contains_key(not_utf8.as_slice())),
            "an error is not kept"
        );
        // Bounded: filling it past its size empties it instead of growing.
        for i in 0..KEPT_STATES + 10 {
            let text = CITIZEN.replace("Thôn Bàng La", &format!("Thôn {i}"));
            assert!(from_json_for_read(text.as_bytes()).is_ok());
            assert!(kept() <= KEPT_STATES);
        }
        // And past its bytes: long texts empty it before their total passes the bound.
        let padding = "x".repeat(KEPT_TEXT_BYTES - CITIZEN.len() - 16);
        for i in 0..KEPT_BYTES / KEPT_TEXT_BYTES + 10 {
            let text = CITIZEN.replace("Thôn Bàng La", &format!("{padding}{i}"));
            assert_eq!(
                from_json_for_read(text.as_bytes()).unwrap(),
                from_json(&text).unwrap()
            );
            assert!(kept_bytes() <= KEPT_BYTES);
        }
        // Forgetting drops what was kept (after a redaction), and reads still answer.
        assert!(from_json_for_read(CITIZEN.as_bytes()).is_ok());
        forget_read_states();
        assert!(!is_kept(CITIZEN));
        assert_eq!(from_json_for_read(CITIZEN.as_bytes()).unwrap(), decoded);
        // Text beyond the kept size still decodes.
        let long = CITIZEN.replace("Thôn Bàng La", &"x".repeat(KEPT_TEXT_BYTES));
        assert_eq!(
            from_json_for_read(long.as_bytes()).unwrap(),
            from_json(&long).unwrap()
        );
    }
}
