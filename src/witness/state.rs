//! What a witness remembers, durably: per log origin the latest checkpoint it cosigned (size,
//! root, and the note as monitors fetch it), and the requests it refused as inconsistent (the
//! evidence of a fork), in one SQLite file.
//!
//! Invariants (C2SP tlog-witness, "add-checkpoint"):
//! - the check of the old size against the held checkpoint and the update are one
//!   `BEGIN IMMEDIATE` transaction, so two concurrent requests (from this process or from
//!   another one on the same file) can never roll the held size back;
//! - the new checkpoint is committed (`synchronous=FULL`: on disk) before the cosignature
//!   leaves the process, so a witness that answered never forgets what it signed.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use citydb_tlog::checkpoint::Checkpoint;
use citydb_tlog::note::{Note, NoteSignature};
use citydb_tlog::witness::{AddCheckpoint, Refusal, Witnessed, add_checkpoint};
use citydb_tlog::{SignerKey, VerifierKey};

/// How long a request waits for another process's transaction on the same file.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct WitnessState {
    conn: Mutex<Connection>,
}

impl WitnessState {
    pub fn open(path: &Path) -> anyhow::Result<WitnessState> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the witness state {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS witnessed (
                 origin TEXT PRIMARY KEY,
                 size   INTEGER NOT NULL,
                 root   BLOB NOT NULL,
                 note   TEXT NOT NULL
             ) STRICT;
             CREATE TABLE IF NOT EXISTS inconsistent (
                 id          INTEGER PRIMARY KEY,
                 origin      TEXT NOT NULL,
                 received_at INTEGER NOT NULL,
                 reason      TEXT NOT NULL,
                 request     TEXT NOT NULL
             ) STRICT;",
        )
        .with_context(|| format!("cannot set up the witness state {}", path.display()))?;
        Ok(WitnessState {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Every write is inside a transaction that a panic rolls back: a poisoned lock
        // guards nothing half-written.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides an `add-checkpoint` request against the held state and, when it is accepted,
    /// stores the new state before returning the cosignature. A refusal for inconsistency
    /// (422) is stored with the whole request: it is signed evidence that the log forked.
    pub fn add(
        &self,
        request: &str,
        logs: &[VerifierKey],
        key: &SignerKey,
        now: u64,
    ) -> anyhow::Result<Result<NoteSignature, Refusal>> {
        // The origin decides which row is read; a request too malformed to name one gets
        // its 400 from `add_checkpoint` itself.
        let submitted = AddCheckpoint::parse(request)
            .ok()
            .and_then(|r| Note::parse(&r.checkpoint).ok())
            .and_then(|n| Checkpoint::parse_text(&n.text).ok().map(|c| (n, c)));
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held = match &submitted {
            Some((_, c)) => held(&tx, &c.origin)?,
            None => None,
        };
        let answer = match (
            add_checkpoint(request, logs, held.as_ref(), key, now),
            submitted,
        ) {
            (Ok((checkpoint, state, cosignature)), Some((note, _))) => {
                let note = monitored_note(note, &checkpoint.origin, logs, cosignature.clone());
                tx.execute(
                    "INSERT INTO witnessed (origin, size, root, note) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (origin) DO UPDATE SET size = ?2, root = ?3, note = ?4",
                    params![
                        checkpoint.origin,
                        i64::try_from(state.size).context("a tree size beyond 2^63")?,
                        state.root.as_slice(),
                        note
                    ],
                )?;
                Ok(cosignature)
            }
            (Ok(_), None) => anyhow::bail!("a request accepted that could not be parsed"),
            (Err(refusal), submitted) => {
                if let (Refusal::Inconsistent(reason), Some((_, c))) = (&refusal, submitted) {
                    tx.execute(
                        "INSERT INTO inconsistent (origin, received_at, reason, request)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![c.origin, now as i64, reason, request],
                    )?;
                }
                Err(refusal)
            }
        };
        tx.commit()
            .context("cannot commit the witness state: nothing was cosigned")?;
        Ok(answer)
    }

    /// The latest cosigned checkpoint of `origin` with the log's signature and this witness's
    /// cosignature, as C2SP tlog-witness's monitor retrieval serves it.
    pub fn latest(&self, origin: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT note FROM witnessed WHERE origin = ?1",
                [origin],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// How many inconsistent checkpoints of `origin` were refused and kept as evidence.
    pub fn inconsistent_count(&self, origin: &str) -> anyhow::Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM inconsistent WHERE origin = ?1",
            [origin],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

fn held(tx: &rusqlite::Transaction<'_>, origin: &str) -> anyhow::Result<Option<Witnessed>> {
    let row: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT size, root FROM witnessed WHERE origin = ?1",
            [origin],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(size, root)| {
        Ok(Witnessed {
            size: u64::try_from(size).context("a negative size in the witness state")?,
            root: root
                .try_into()
                .map_err(|_| anyhow::anyhow!("a root of the wrong length in the witness state"))?,
        })
    })
    .transpose()
}

/// The note monitors get: the checkpoint with the log signatures this witness verified and
/// its own cosignature — not the other signatures the request carried (other witnesses'
/// cosignatures, unknown keys), which this witness does not vouch for.
fn monitored_note(
    mut note: Note,
    origin: &str,
    logs: &[VerifierKey],
    cosignature: NoteSignature,
) -> String {
    let keys: Vec<VerifierKey> = logs
        .iter()
        .filter(|k| k.name() == origin)
        .cloned()
        .collect();
    let text = note.text.clone();
    note.signatures.retain(|sig| {
        Note {
            text: text.clone(),
            signatures: vec![sig.clone()],
        }
        .verify(&keys)
        .is_ok()
    });
    note.add_signatures([cosignature]);
    note.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use citydb_tlog::grow::extend;
    use citydb_tlog::note::KeyKind;
    use citydb_tlog::{Query, TileSet, TreeHash};

    fn tree(entries: &[[u8; 32]]) -> TileSet {
        let mut tiles = TileSet::new();
        for (k, v) in extend(0, &TileSet::new(), entries).unwrap() {
            tiles.insert(k, v);
        }
        tiles
    }

    fn entries(n: u8) -> Vec<[u8; 32]> {
        (0..n).map(|i| [i; 32]).collect()
    }

    fn root(tiles: &TileSet, size: u64) -> TreeHash {
        Query::Root { size }.answer(tiles).unwrap()[0]
    }

    struct Fixture {
        log: SignerKey,
        witness: SignerKey,
        tiles: TileSet,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                log: SignerKey::from_seed("log.test", KeyKind::Log, [1; 32]).unwrap(),
                witness: SignerKey::from_seed("w.test", KeyKind::Cosigner, [2; 32]).unwrap(),
                tiles: tree(&entries(100)),
            }
        }

        /// An add-checkpoint body from `old` to `size` over `tiles`, with extra signatures.
        fn request(&self, tiles: &TileSet, old: u64, size: u64, extra: &[NoteSignature]) -> String {
            let text = Checkpoint {
                origin: "log.test".into(),
                size,
                root: root(tiles, size),
            }
            .text();
            let mut signatures = vec![self.log.sign(&text)];
            signatures.extend_from_slice(extra);
            AddCheckpoint {
                old_size: old,
                proof: Query::Consistency { old, new: size }.answer(tiles).unwrap(),
                checkpoint: Note { text, signatures }.to_string(),
            }
            .to_body()
        }

        fn add(&self, state: &WitnessState, body: &str) -> Result<NoteSignature, Refusal> {
            state
                .add(body, &[self.log.verifier()], &self.witness, 1_700_000_000)
                .unwrap()
        }
    }

    #[test]
    fn the_held_checkpoint_survives_a_reopen_and_monitors_get_only_vouched_signatures() {
        let f = Fixture::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.db");
        let stranger = SignerKey::from_seed("other.test", KeyKind::Cosigner, [3; 32]).unwrap();
        {
            let state = WitnessState::open(&path).unwrap();
            let text = Checkpoint {
                origin: "log.test".into(),
                size: 40,
                root: root(&f.tiles, 40),
            }
            .text();
            let foreign = stranger.cosign(&text, 5);
            f.add(&state, &f.request(&f.tiles, 0, 40, &[foreign]))
                .unwrap();
        }
        let state = WitnessState::open(&path).unwrap();
        assert_eq!(
            f.add(&state, &f.request(&f.tiles, 0, 60, &[])),
            Err(Refusal::Conflict { latest: 40 }),
            "the size held before the reopen"
        );
        let note = Note::parse(&state.latest("log.test").unwrap().unwrap()).unwrap();
        assert_eq!(
            note.signatures.len(),
            2,
            "the log's and this witness's, not the stranger's"
        );
        let verified = note
            .verify(&[f.log.verifier(), f.witness.verifier(), stranger.verifier()])
            .unwrap();
        assert_eq!(
            verified.cosigners,
            vec![("w.test".to_owned(), 1_700_000_000)]
        );
        f.add(&state, &f.request(&f.tiles, 40, 60, &[])).unwrap();
        assert!(
            state
                .latest("log.test")
                .unwrap()
                .unwrap()
                .contains("\n60\n")
        );
        assert_eq!(state.latest("unknown.test").unwrap(), None);
    }

    #[test]
    fn an_inconsistent_checkpoint_is_refused_and_kept_as_evidence() {
        let f = Fixture::new();
        let dir = tempfile::tempdir().unwrap();
        let state = WitnessState::open(&dir.path().join("witness.db")).unwrap();
        f.add(&state, &f.request(&f.tiles, 0, 50, &[])).unwrap();
        // A history rewritten before the held size: no proof leads from the held root.
        let mut other = entries(100);
        other[10] = [0xff; 32];
        let other = tree(&other);
        let rewritten = f.request(&other, 50, 90, &[]);
        // The same size with another root.
        let same_size = f.request(&other, 50, 50, &[]);
        for body in [rewritten.as_str(), same_size.as_str()] {
            match f.add(&state, body) {
                Err(Refusal::Inconsistent(_)) => {}
                other => panic!("expected 422, got {other:?}"),
            }
        }
        assert_eq!(state.inconsistent_count("log.test").unwrap(), 2);
        assert!(
            state
                .latest("log.test")
                .unwrap()
                .unwrap()
                .contains("\n50\n")
        );
    }

    /// tlog-witness's race: requests decided on the same held size must not both be
    /// accepted, or the later write rolls the held size back. Two connections (as two
    /// processes on one state file) and several threads each submit from size 0.
    #[test]
    fn concurrent_requests_from_one_old_size_are_accepted_once() {
        let f = std::sync::Arc::new(Fixture::new());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.db");
        let states = std::sync::Arc::new([
            WitnessState::open(&path).unwrap(),
            WitnessState::open(&path).unwrap(),
        ]);
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let (f, states) = (f.clone(), states.clone());
                std::thread::spawn(move || {
                    let body = f.request(&f.tiles, 0, 10 + i * 10, &[]);
                    states[(i % 2) as usize]
                        .add(&body, &[f.log.verifier()], &f.witness, 1_700_000_000)
                        .map(|answer| answer.map(|_| 10 + i * 10))
                })
            })
            .collect();
        let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let accepted: Vec<u64> = answers
            .iter()
            .filter_map(|a| a.as_ref().ok()?.as_ref().ok().copied())
            .collect();
        assert_eq!(accepted.len(), 1, "{answers:?}");
        for a in &answers {
            match a {
                Ok(Ok(_)) => {}
                Ok(Err(Refusal::Conflict { latest })) => assert_eq!(*latest, accepted[0]),
                other => panic!("expected a 409 with the accepted size: {other:?}"),
            }
        }
        let held = states[0].latest("log.test").unwrap().unwrap();
        assert!(held.contains(&format!("\n{}\n", accepted[0])));
    }
}
