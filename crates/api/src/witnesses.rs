//! The log's side of C2SP tlog-witness: submitting each new signed checkpoint to the
//! configured witnesses with a consistency proof from the size each one holds, and collecting
//! their cosignatures into the note the log publishes.
//!
//! Invariants:
//! - a cosignature is added only if it verifies against that witness's configured key and
//!   carries a non-zero timestamp (tlog-cosignature); lines from other keys are ignored;
//! - a witness that is slow, down or refusing never stalls or fails the log: every request has
//!   a timeout, witnesses are asked concurrently, and each one's outcome is reported apart.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use citydb_tlog::checkpoint::Checkpoint;
use citydb_tlog::note::{KeyKind, Note, NoteSignature, VerifierKey};
use citydb_tlog::witness::AddCheckpoint;
use citydb_tlog::{Query, Tlog};

/// The longest a witness may take to answer one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read from a witness (a few cosignature lines are a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

/// One witness: its submission prefix (`http://host:port`, `add-checkpoint` is appended) and
/// its cosigning key (a vkey of type 0x04).
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    pub url: String,
    pub key: VerifierKey,
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessConfigError {
    #[error("a witness is given as URL,VKEY: {0:?} has no comma")]
    NoComma(String),
    #[error(
        "the witness URL {0:?} must start with http:// (this build speaks no TLS: put a TLS proxy in front of a remote witness)"
    )]
    Url(String),
    #[error("the witness key {vkey:?}: {reason}")]
    Key { vkey: String, reason: String },
}

impl FromStr for WitnessConfig {
    type Err = WitnessConfigError;

    /// `URL,VKEY`, as `citydb serve --witness` takes it (a vkey holds no comma).
    fn from_str(s: &str) -> Result<WitnessConfig, WitnessConfigError> {
        let (url, vkey) = s
            .rsplit_once(',')
            .ok_or_else(|| WitnessConfigError::NoComma(s.to_owned()))?;
        let url = url.trim().trim_end_matches('/');
        if !url.starts_with("http://") || url.len() == "http://".len() {
            return Err(WitnessConfigError::Url(url.to_owned()));
        }
        let bad = |reason: String| WitnessConfigError::Key {
            vkey: vkey.to_owned(),
            reason,
        };
        let key = VerifierKey::parse(vkey).map_err(|e| bad(e.to_string()))?;
        if key.kind() != KeyKind::Cosigner {
            return Err(bad(
                "a log's key, not a witness's cosigning key (`citydb keygen --cosigner`)".into(),
            ));
        }
        Ok(WitnessConfig {
            url: url.to_owned(),
            key,
        })
    }
}

/// What became of one checkpoint at one witness (`witness` is its key name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessOutcome {
    /// It cosigned, at `time` (POSIX seconds); the cosignature verified.
    Cosigned { witness: String, time: u64 },
    /// It refused with this status and body (after a retry for a 409). A 422 means the
    /// checkpoint is not consistent with one it cosigned before: a fork, or a log restored
    /// from an old backup.
    Refused {
        witness: String,
        status: u16,
        body: String,
    },
    /// It could not be reached, or did not answer in time.
    Unreachable { witness: String, error: String },
    /// Nothing usable came back: no proof could be made for it, or its answer held no valid
    /// cosignature from its key.
    Failed { witness: String, error: String },
}

impl WitnessOutcome {
    /// Whether this witness cosigned.
    pub fn cosigned(&self) -> bool {
        matches!(self, WitnessOutcome::Cosigned { .. })
    }

    pub fn witness(&self) -> &str {
        match self {
            WitnessOutcome::Cosigned { witness, .. }
            | WitnessOutcome::Refused { witness, .. }
            | WitnessOutcome::Unreachable { witness, .. }
            | WitnessOutcome::Failed { witness, .. } => witness,
        }
    }
}

impl std::fmt::Display for WitnessOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WitnessOutcome::Cosigned { witness, time } => {
                write!(f, "{witness} cosigned at {time}")
            }
            WitnessOutcome::Refused {
                witness,
                status,
                body,
            } => write!(f, "{witness} refused with {status}: {}", body.trim_end()),
            WitnessOutcome::Unreachable { witness, error } => {
                write!(f, "{witness} is unreachable: {error}")
            }
            WitnessOutcome::Failed { witness, error } => write!(f, "{witness}: {error}"),
        }
    }
}

struct Tracked {
    config: WitnessConfig,
    /// The size this witness is believed to hold: from its last 200 or 409.
    held: AtomicU64,
}

/// The witnesses a log submits its checkpoints to.
pub struct Witnesses {
    client: reqwest::Client,
    witnesses: Vec<Tracked>,
}

impl Witnesses {
    pub fn new(list: Vec<WitnessConfig>) -> Witnesses {
        Witnesses {
            client: reqwest::Client::new(),
            witnesses: list
                .into_iter()
                .map(|config| Tracked {
                    config,
                    held: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.witnesses.is_empty()
    }

    /// Submits a signed checkpoint (a note from `Tlog::sign` over `tlog`) to every witness
    /// concurrently, each with the consistency proof from the size it holds (on a 409, learns
    /// that size from the body and retries once). Returns the note with every valid
    /// cosignature added, and one outcome per witness, in the configured order.
    pub async fn cosign(&self, tlog: &Tlog, note: &str) -> (String, Vec<WitnessOutcome>) {
        let parsed =
            Note::parse(note).and_then(|n| Checkpoint::parse_text(&n.text).map(|c| (n, c)));
        let (mut signed, checkpoint) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let outcomes = self
                    .witnesses
                    .iter()
                    .map(|w| WitnessOutcome::Failed {
                        witness: w.config.key.name().to_owned(),
                        error: format!("not a signed checkpoint: {e}"),
                    })
                    .collect();
                return (note.to_owned(), outcomes);
            }
        };
        let answers = futures_util::future::join_all(
            self.witnesses
                .iter()
                .map(|w| self.submit(w, tlog, note, &signed.text, checkpoint.size)),
        )
        .await;
        let mut outcomes = Vec::with_capacity(answers.len());
        let mut cosignatures = Vec::new();
        for (outcome, cosignature) in answers {
            outcomes.push(outcome);
            cosignatures.extend(cosignature);
        }
        if cosignatures.is_empty() {
            return (note.to_owned(), outcomes);
        }
        signed.add_signatures(cosignatures);
        (signed.to_string(), outcomes)
    }

    async fn submit(
        &self,
        w: &Tracked,
        tlog: &Tlog,
        note: &str,
        text: &str,
        size: u64,
    ) -> (WitnessOutcome, Option<NoteSignature>) {
        let witness = w.config.key.name().to_owned();
        // A believed size above this checkpoint's cannot be proven from: ask with 0 and let
        // the witness's 409 say what it holds.
        let mut old = w.held.load(Ordering::Relaxed);
        if old > size {
            old = 0;
        }
        let mut retried = false;
        loop {
            let proof = match tlog.answer(Query::Consistency { old, new: size }).await {
                Ok(p) => p,
                Err(e) => {
                    let error = format!("no consistency proof from size {old} to {size}: {e}");
                    return (WitnessOutcome::Failed { witness, error }, None);
                }
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: note.to_owned(),
            }
            .to_body();
            let (status, is_size, answer) = match self.post(&w.config.url, body).await {
                Ok(a) => a,
                Err(error) => return (WitnessOutcome::Unreachable { witness, error }, None),
            };
            match status {
                200 => {
                    w.held.store(size, Ordering::Relaxed);
                    return match cosignature(&w.config.key, text, &answer) {
                        Ok((sig, time)) => (WitnessOutcome::Cosigned { witness, time }, Some(sig)),
                        Err(error) => (WitnessOutcome::Failed { witness, error }, None),
                    };
                }
                409 => {
                    let held = is_size.then(|| parse_size(&answer)).flatten();
                    if let Some(held) = held {
                        w.held.store(held, Ordering::Relaxed);
                        if !retried && held <= size {
                            old = held;
                            retried = true;
                            continue;
                        }
                    }
                }
                _ => {}
            }
            let refused = WitnessOutcome::Refused {
                witness,
                status,
                body: answer,
            };
            return (refused, None);
        }
    }

    /// POSTs an add-checkpoint body; returns the status, whether the body is a
    /// `text/x.tlog.size`, and the body (bounded).
    async fn post(&self, url: &str, body: String) -> Result<(u16, bool, String), String> {
        let mut response = self
            .client
            .post(format!("{url}/add-checkpoint"))
            .timeout(REQUEST_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let is_size = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().starts_with("text/x.tlog.size"));
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(format!("{url}: an answer larger than {MAX_ANSWER} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((
            status,
            is_size,
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }
}

/// `<size>\n`, the body of a 409.
fn parse_size(body: &str) -> Option<u64> {
    let digits = body.strip_suffix('\n')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// The cosignature of `key` among the signature lines of a 200 answer, checked over the
/// checkpoint's `text`, and its time. Lines of other keys are ignored (tlog-witness); a line
/// of this key that does not verify, or no line of it, or a zero timestamp, is an error.
fn cosignature(
    key: &VerifierKey,
    text: &str,
    answer: &str,
) -> Result<(NoteSignature, u64), String> {
    let mut found = None;
    for line in answer.lines() {
        let sig = NoteSignature::parse_line(line)
            .map_err(|e| format!("not a signature line in the answer: {e}"))?;
        if !key.names(&sig) {
            continue;
        }
        match key.check(text, &sig) {
            Ok(Some(0)) => return Err("a cosignature with a zero timestamp".into()),
            Ok(Some(time)) => found = Some((sig, time)),
            Ok(None) => return Err("not a cosignature".into()),
            Err(e) => return Err(format!("the cosignature does not verify: {e}")),
        }
    }
    found.ok_or_else(|| format!("no cosignature from {} in the answer", key.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use citydb_tlog::note::SignerKey;

    fn witness_key() -> SignerKey {
        SignerKey::from_seed("w.test/1", KeyKind::Cosigner, [5; 32]).unwrap()
    }

    #[test]
    fn a_witness_is_given_as_url_comma_vkey() {
        let vkey = witness_key().verifier().to_string();
        let config: WitnessConfig = format!("http://127.0.0.1:7001/,{vkey}").parse().unwrap();
        assert_eq!(config.url, "http://127.0.0.1:7001");
        assert_eq!(config.key, witness_key().verifier());
        let log = SignerKey::from_seed("log.test", KeyKind::Log, [6; 32]).unwrap();
        for (bad, why) in [
            (vkey.clone(), "no comma"),
            (format!("https://w.example,{vkey}"), "TLS"),
            (format!("ftp://w.example,{vkey}"), "not http"),
            (format!("http://,{vkey}"), "no host"),
            ("http://w.example,w+00000000+AA==".to_owned(), "bad vkey"),
            (format!("http://w.example,{}", log.verifier()), "a log key"),
        ] {
            assert!(bad.parse::<WitnessConfig>().is_err(), "{why}: {bad}");
        }
    }

    #[test]
    fn only_a_valid_cosignature_of_the_configured_key_is_taken() {
        let key = witness_key();
        let text = "log.test\n3\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n";
        let good = key.cosign(text, 1_700_000_000);
        let other = SignerKey::from_seed("w.test/2", KeyKind::Cosigner, [7; 32]).unwrap();
        let answer = format!("{}{}", other.cosign(text, 5), good);
        let (sig, time) = cosignature(&key.verifier(), text, &answer).unwrap();
        assert_eq!((sig, time), (good.clone(), 1_700_000_000));
        // Another key's line alone: nothing from this witness.
        assert!(cosignature(&key.verifier(), text, &other.cosign(text, 5).to_string()).is_err());
        // Over another text, with a zero time, or not a signature line at all: refused.
        let wrong = key.cosign(
            "log.test\n4\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
            9,
        );
        assert!(cosignature(&key.verifier(), text, &wrong.to_string()).is_err());
        assert!(cosignature(&key.verifier(), text, &key.cosign(text, 0).to_string()).is_err());
        assert!(cosignature(&key.verifier(), text, "hello\n").is_err());
        assert!(cosignature(&key.verifier(), text, "").is_err());
    }

    #[test]
    fn a_409_body_is_a_size_and_a_newline() {
        assert_eq!(parse_size("42\n"), Some(42));
        assert_eq!(parse_size("0\n"), Some(0));
        for bad in [
            "42",
            "042\n",
            "\n",
            "-1\n",
            "4 2\n",
            "99999999999999999999\n",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
