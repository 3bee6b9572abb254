//! C2SP signed notes with Ed25519: signer keys, verifier keys (vkeys), and notes carrying a
//! log's signature and witnesses' timestamped cosignatures (C2SP tlog-cosignature).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::TlogError;

/// The most signatures a note may carry (the spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// The largest note accepted, in bytes: a checkpoint with its signatures is a few hundred.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// What a key signs: a log's checkpoints (signed-note type 0x01) or a witness's timestamped
/// cosignatures (tlog-cosignature type 0x04).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Log,
    Cosigner,
}

impl KeyKind {
    fn byte(self) -> u8 {
        match self {
            KeyKind::Log => 0x01,
            KeyKind::Cosigner => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<KeyKind> {
        match b {
            0x01 => Some(KeyKind::Log),
            0x04 => Some(KeyKind::Cosigner),
            _ => None,
        }
    }
}

fn check_name(name: &str) -> Result<(), TlogError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(TlogError::BadKey(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

fn key_id(name: &str, kind: KeyKind, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.byte()]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A private key with its name: what `citydb keygen` writes and `serve --signing-key` reads,
/// in the text form Go's `golang.org/x/mod/sumdb/note` uses:
/// `PRIVATE+KEY+<name>+<hex key id>+<base64(type ‖ 32-byte seed)>`.
pub struct SignerKey {
    name: String,
    kind: KeyKind,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "SignerKey({}+{:08x})", self.name, self.id)
    }
}

impl SignerKey {
    pub fn from_seed(name: &str, kind: KeyKind, seed: [u8; 32]) -> Result<SignerKey, TlogError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, kind, &key.verifying_key().to_bytes());
        Ok(SignerKey {
            name: name.to_owned(),
            kind,
            key,
            id,
        })
    }

    /// A new key from the operating system's randomness.
    pub fn generate(name: &str, kind: KeyKind) -> Result<SignerKey, TlogError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| TlogError::BadKey(format!("no randomness: {e}")))?;
        SignerKey::from_seed(name, kind, seed)
    }

    pub fn parse(text: &str) -> Result<SignerKey, TlogError> {
        let bad = |why: &str| TlogError::BadKey(format!("not a signer key: {why}"));
        let rest = text
            .trim_end_matches('\n')
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("it must start with PRIVATE+KEY+"))?;
        // The name holds no '+' and the base64 key may: split at the first two.
        let mut parts = rest.splitn(3, '+');
        let (name, id, key) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(i), Some(k)) => (n, i, k),
            _ => return Err(bad("expected PRIVATE+KEY+name+id+key")),
        };
        let bytes = B64.decode(key).map_err(|_| bad("the key is not base64"))?;
        if bytes.len() != 33 {
            return Err(bad("the key must be a type byte and 32 bytes"));
        }
        let kind = KeyKind::from_byte(bytes[0]).ok_or_else(|| bad("unknown key type"))?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[1..]);
        let signer = SignerKey::from_seed(name, kind, seed)?;
        if format!("{:08x}", signer.id) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The file form (a secret: keep it with the permissions of a password file).
    pub fn to_file_text(&self) -> String {
        let mut bytes = vec![self.kind.byte()];
        bytes.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}\n",
            self.name,
            self.id,
            B64.encode(bytes)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same secret under another name (a key id commits to the name, so the two verifier
    /// keys differ): how one node signs its two logs' checkpoints.
    pub fn renamed(&self, name: &str) -> Result<SignerKey, TlogError> {
        SignerKey::from_seed(name, self.kind, self.key.to_bytes())
    }

    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            kind: self.kind,
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The signature line of this key over a note's text (a log's signature, type 0x01).
    pub fn sign(&self, text: &str) -> NoteSignature {
        let mut bytes = self.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        NoteSignature {
            name: self.name.clone(),
            id: self.id,
            bytes,
        }
    }

    /// A witness's timestamped cosignature (tlog-cosignature, type 0x04) over a checkpoint's
    /// note text, at `time` (POSIX seconds).
    pub fn cosign(&self, text: &str, time: u64) -> NoteSignature {
        let message = cosigned_message(text, time);
        let mut bytes = self.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&time.to_be_bytes());
        bytes.extend_from_slice(&self.key.sign(message.as_bytes()).to_bytes());
        NoteSignature {
            name: self.name.clone(),
            id: self.id,
            bytes,
        }
    }
}

fn cosigned_message(text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// A public key that checks signatures: `<name>+<hex id>+<base64(type ‖ key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: KeyKind,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    pub fn parse(vkey: &str) -> Result<VerifierKey, TlogError> {
        let bad = |why: &str| TlogError::BadKey(format!("not a verifier key: {why}"));
        // The name holds no '+' and the base64 key may: split at the first two.
        let mut parts = vkey.trim().splitn(3, '+');
        let (name, id, key) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(i), Some(k)) => (n, i, k),
            _ => return Err(bad("expected name+id+key")),
        };
        check_name(name)?;
        let bytes = B64.decode(key).map_err(|_| bad("the key is not base64"))?;
        if bytes.len() != 33 {
            return Err(bad("the key must be a type byte and 32 bytes"));
        }
        let kind = KeyKind::from_byte(bytes[0]).ok_or_else(|| bad("unknown key type"))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(&bytes[1..]);
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 key"))?;
        let computed = key_id(name, kind, &public);
        if id.len() != 8 || format!("{computed:08x}") != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            kind,
            id: computed,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether a signature line is this key's (same name and key id; the signature itself is
    /// not checked here).
    pub fn names(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.id == self.id
    }

    /// Checks one signature line of this key over a note's `text`; for a cosigner, returns its
    /// time. (A witness's answer is checked this way: it holds cosignature lines only.)
    pub fn check(&self, text: &str, sig: &NoteSignature) -> Result<Option<u64>, TlogError> {
        let failed = || TlogError::BadSignature(self.name.clone());
        let body = sig.bytes.get(4..).ok_or_else(failed)?;
        match self.kind {
            KeyKind::Log => {
                let s = Signature::from_slice(body).map_err(|_| failed())?;
                self.key
                    .verify_strict(text.as_bytes(), &s)
                    .map_err(|_| failed())?;
                Ok(None)
            }
            KeyKind::Cosigner => {
                if body.len() != 72 {
                    return Err(failed());
                }
                let mut t = [0u8; 8];
                t.copy_from_slice(&body[..8]);
                let time = u64::from_be_bytes(t);
                if time > i64::MAX as u64 {
                    return Err(failed());
                }
                let s = Signature::from_slice(&body[8..]).map_err(|_| failed())?;
                self.key
                    .verify_strict(cosigned_message(text, time).as_bytes(), &s)
                    .map_err(|_| failed())?;
                Ok(Some(time))
            }
        }
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = vec![self.kind.byte()];
        bytes.extend_from_slice(&self.key.to_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(bytes))
    }
}

/// One signature line: `— <name> base64(key id ‖ signature)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: u32,
    pub bytes: Vec<u8>,
}

impl std::fmt::Display for NoteSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "\u{2014} {} {}", self.name, B64.encode(&self.bytes))
    }
}

impl NoteSignature {
    /// One line, with or without its final newline.
    pub fn parse_line(line: &str) -> Result<NoteSignature, TlogError> {
        let bad = || TlogError::BadNote(format!("bad signature line {line:?}"));
        let rest = line
            .strip_suffix('\n')
            .unwrap_or(line)
            .strip_prefix("\u{2014} ")
            .ok_or_else(bad)?;
        let (name, sig) = rest.split_once(' ').ok_or_else(bad)?;
        check_name(name).map_err(|_| bad())?;
        let bytes = B64.decode(sig).map_err(|_| bad())?;
        if bytes.len() < 5 {
            return Err(bad());
        }
        let id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        Ok(NoteSignature {
            name: name.to_owned(),
            id,
            bytes,
        })
    }
}

/// A signed note: its text (ending in a newline) and its signature lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// Who signed a note, as checked against the keys a verifier trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Names of the trusted log keys whose signatures verified.
    pub log_keys: Vec<String>,
    /// Names and times of the trusted cosigners whose cosignatures verified.
    pub cosigners: Vec<(String, u64)>,
}

impl Note {
    pub fn parse(note: &str) -> Result<Note, TlogError> {
        let bad = |why: &str| TlogError::BadNote(why.to_owned());
        if note.len() > MAX_NOTE_LEN {
            return Err(bad("the note is too large"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("the note holds a control character"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(bad("the signatures must end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            signatures.push(NoteSignature::parse_line(line)?);
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Checks the signatures of trusted keys (a signature whose name and id match a trusted
    /// key must verify; unknown keys are ignored) and requires one of a trusted log key.
    pub fn verify(&self, trusted: &[VerifierKey]) -> Result<Verified, TlogError> {
        let mut verified = Verified {
            log_keys: Vec::new(),
            cosigners: Vec::new(),
        };
        for sig in &self.signatures {
            let Some(key) = trusted
                .iter()
                .find(|k| k.name == sig.name && k.id == sig.id)
            else {
                continue;
            };
            match key.check(&self.text, sig)? {
                None => verified.log_keys.push(key.name.clone()),
                Some(time) => verified.cosigners.push((key.name.clone(), time)),
            }
        }
        if verified.log_keys.is_empty() {
            return Err(TlogError::NotSigned);
        }
        Ok(verified)
    }

    /// Adds signatures, dropping any earlier one by the same key (a newer cosignature).
    pub fn add_signatures(&mut self, new: impl IntoIterator<Item = NoteSignature>) {
        for sig in new {
            self.signatures
                .retain(|s| !(s.name == sig.name && s.id == sig.id));
            self.signatures.push(sig);
        }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.text)?;
        for s in &self.signatures {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_of_the_signed_note_spec_verifies() {
        let vkey = VerifierKey::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let parsed = Note::parse(note).unwrap();
        assert_eq!(parsed.to_string(), note);
        let verified = parsed.verify(std::slice::from_ref(&vkey)).unwrap();
        assert_eq!(verified.log_keys, vec!["example.com/foo".to_owned()]);
        let mut changed = parsed.clone();
        changed.text = "This is an example message!\n".into();
        assert!(matches!(
            changed.verify(&[vkey]),
            Err(TlogError::BadSignature(_))
        ));
    }

    #[test]
    fn keys_whose_base64_holds_a_plus_round_trip() {
        // About half of all keys have a '+' in their base64: splitting at the last '+'s took
        // part of the key for the name.
        let mut seen = 0;
        for seed in 0..64u8 {
            let signer = SignerKey::from_seed("citydb.test/log", KeyKind::Log, [seed; 32]).unwrap();
            let vkey = signer.verifier().to_string();
            let key = vkey.splitn(3, '+').nth(2).unwrap();
            if key.contains('+') || signer.to_file_text().matches('+').count() > 4 {
                seen += 1;
            }
            assert_eq!(
                VerifierKey::parse(&vkey).unwrap(),
                signer.verifier(),
                "{vkey}"
            );
            assert_eq!(
                SignerKey::parse(&signer.to_file_text()).unwrap().verifier(),
                signer.verifier()
            );
        }
        assert!(seen > 0, "no key with a '+' was tried");
    }

    #[test]
    fn keys_round_trip_and_sign() {
        let signer = SignerKey::from_seed("citydb.test/log", KeyKind::Log, [7; 32]).unwrap();
        let again = SignerKey::parse(&signer.to_file_text()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        let vkey = VerifierKey::parse(&signer.verifier().to_string()).unwrap();
        let mut note = Note {
            text: "hello\n".into(),
            signatures: vec![signer.sign("hello\n")],
        };
        assert!(note.verify(std::slice::from_ref(&vkey)).is_ok());
        let witness = SignerKey::from_seed("w.test/1", KeyKind::Cosigner, [9; 32]).unwrap();
        note.add_signatures([witness.cosign("hello\n", 1_700_000_000)]);
        let reparsed = Note::parse(&note.to_string()).unwrap();
        let v = reparsed
            .verify(&[vkey.clone(), witness.verifier()])
            .unwrap();
        assert_eq!(v.cosigners, vec![("w.test/1".to_owned(), 1_700_000_000)]);
        // A witness key is not a log key: a note only a witness signed is not signed.
        let only_witness = Note {
            text: "hello\n".into(),
            signatures: vec![witness.cosign("hello\n", 5)],
        };
        assert!(matches!(
            only_witness.verify(&[vkey, witness.verifier()]),
            Err(TlogError::NotSigned)
        ));
    }

    /// Base64 uses '+': a key whose encoding holds one must still parse (a vkey and a key
    /// file are split at their first two '+', as Go's note package does).
    #[test]
    fn malformed_notes_and_keys_are_refused() {
        for note in [
            "no blank line\n",
            "text\n\n",
            "text\n\nx\n",
            "t\x01\n\n\u{2014} a AAAAAAA=\n",
        ] {
            assert!(Note::parse(note).is_err(), "{note:?}");
        }
        for vkey in [
            "",
            "a+b",
            "a+00000000+AA==",
            "a b+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        ] {
            assert!(VerifierKey::parse(vkey).is_err(), "{vkey:?}");
        }
        // A signature by a key of the right name and id that does not verify rejects the note.
        let signer = SignerKey::from_seed("n", KeyKind::Log, [1; 32]).unwrap();
        let mut sig = signer.sign("a\n");
        sig.bytes[10] ^= 1;
        let note = Note {
            text: "a\n".into(),
            signatures: vec![signer.sign("a\n"), sig],
        };
        assert!(note.verify(&[signer.verifier()]).is_err());
    }
}
