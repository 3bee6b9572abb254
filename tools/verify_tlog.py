#!/usr/bin/env python3
"""Verify citydb's Merkle tree, signed checkpoints and proofs independently of citydb.

Implements docs/audit-format.md ("The Merkle tree, checkpoints and proofs") with the Python
standard library and the `cryptography` package for Ed25519 (pip install cryptography); the
formats are C2SP signed-note, tlog-checkpoint, tlog-cosignature, tlog-proof and tlog-tiles,
the proofs RFC 6962 / RFC 9162 with SHA-256.

Usage:
    verify_tlog.py checkpoint --vkey VKEY [--witness WVKEY ...] [--min-cosignatures K] FILE
    verify_tlog.py inclusion --entry HEX --index I --size N --root B64 [PROOF_B64 ...]
    verify_tlog.py consistency --old-size M --old-root B64 --size N --root B64 [PROOF_B64 ...]
    verify_tlog.py proof --vkey VKEY [--witness WVKEY ...] [--entry HEX] FILE
    verify_tlog.py tiles --vkey VKEY [--witness WVKEY ...] PREFIX_URL [--export FILE]
    verify_tlog.py consistency-url --vkey VKEY --old FILE PREFIX_URL

PREFIX_URL is e.g. http://HOST:PORT/log (the event log) or http://HOST:PORT/access-log.

Exit status: 0 everything checks; 1 a check failed (stderr says which and where; a file or a
served resource that is not in the documented format is a failed check); 2 the input could not
be used (unreadable file, unreachable URL, malformed key or command-line value).
"""

import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - reported to the user
    print("error: the cryptography package is missing (pip install cryptography)", file=sys.stderr)
    sys.exit(2)


class Failed(Exception):
    """A check failed: exit status 1."""


class Unusable(Exception):
    """The input could not be used: exit status 2."""


# --- RFC 6962 §2.1: the Merkle tree hash, SHA-256 (tlog-tiles "APIs") -------------------------

EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def perfect_root(hashes):
    """MTH of a power-of-two number of subtree hashes (a full tile: 256 of them)."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


class GrowingTree:
    """The root of a tree fed leaf hashes in order, in O(log n) memory.

    RFC 6962 §2.1 splits n leaves at the largest power of two below n, so the root is the
    right fold of the perfect subtrees that n's binary digits give, largest (leftmost) first.
    The stack holds those subtrees as (leaf count, hash)."""

    def __init__(self):
        self.size = 0
        self.stack = []

    def append(self, hash_):
        count = 1
        while self.stack and self.stack[-1][0] == count:
            _, left = self.stack.pop()
            hash_, count = node_hash(left, hash_), count * 2
        self.stack.append((count, hash_))
        self.size += 1

    def root(self):
        if not self.stack:
            return EMPTY_ROOT
        root = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            root = node_hash(left, root)
        return root


def verify_inclusion(entry, index, size, proof, root):
    """RFC 9162 §2.1.3.2, for leaf data `entry` at `index` in the tree of `size` leaves."""
    if index >= size:
        raise Failed(f"index {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, leaf_hash(entry)
    for p in proof:
        if sn == 0:
            raise Failed(f"inclusion proof for index {index} in size {size} is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failed(f"inclusion proof for index {index} in size {size} is too short")
    if r != root:
        raise Failed(f"inclusion proof for index {index} does not lead to the root of size {size}")


def verify_consistency(old_size, old_root, size, root, proof):
    """RFC 9162 §2.1.4.2, from the tree of `old_size` leaves to the tree of `size` leaves."""
    if old_size > size:
        raise Failed(f"old size {old_size} is larger than the new size {size}")
    if old_size == size or old_size == 0:
        # Equal sizes need equal roots, and the empty tree is a prefix of every tree: the
        # proof is empty in both cases (RFC 9162 §2.1.4.1; tlog-witness "add-checkpoint").
        if proof:
            raise Failed(f"consistency proof from size {old_size} to {size} must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise Failed("the old root of size 0 is not the empty tree's root")
        if old_size == size and old_root != root:
            raise Failed(f"two different roots for size {size}")
        return
    if not proof:
        raise Failed(f"consistency proof from size {old_size} to {size} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of 2: the old root is a node of the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed(f"consistency proof from size {old_size} to {size} is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failed(f"consistency proof from size {old_size} to {size} is too short")
    if fr != old_root:
        raise Failed(f"consistency proof does not lead to the old root of size {old_size}")
    if sr != root:
        raise Failed(f"consistency proof does not lead to the new root of size {size}")


# --- Encodings ----------------------------------------------------------------------------------

DECIMAL = re.compile(r"0|[1-9][0-9]*")  # ASCII decimal, no leading zeroes (tlog-checkpoint)
U64 = 1 << 64


def b64(text, what, length=None, error=Failed):
    """Standard base64 (RFC 4648 §4) in its one canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise error(f"{what} is not base64")
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not canonical base64")
    if length is not None and len(raw) != length:
        raise error(f"{what} is {len(raw)} bytes, not {length}")
    return raw


def decimal(text, what, error=Failed):
    if not DECIMAL.fullmatch(text) or int(text) >= U64:
        raise error(f"{what} {text!r} is not a decimal u64 without leading zeroes")
    return int(text)


# --- signed-note: keys, signatures, verification ------------------------------------------------

ED25519 = 0x01  # signed-note "Signature types": Ed25519 (the log's checkpoint signature)
COSIGNATURE = 0x04  # timestamped Ed25519 cosignature (tlog-cosignature), from witnesses
MAX_SIGNATURES = 100  # signed-note: verifiers SHOULD cap, MUST accept at least 16


def valid_name(name):
    # signed-note "Format": non-empty, no Unicode spaces, no plus.
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_id(name, sig_type, public):
    # signed-note "Signatures": SHA-256(key name || 0x0A || signature type || public key)[:4]
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public).digest()[:4]


class Key:
    def __init__(self, name, sig_type, public):
        self.name, self.sig_type, self.public = name, sig_type, public
        self.id = key_id(name, sig_type, public)
        self.verifier = Ed25519PublicKey.from_public_bytes(public)

    def vkey(self):
        payload = base64.b64encode(bytes([self.sig_type]) + self.public).decode("ascii")
        return f"{self.name}+{self.id.hex()}+{payload}"


def parse_vkey(text, sig_type):
    """signed-note "Verifier keys": <name>+<hex key ID>+base64(type || public key)."""
    parts = text.strip().split("+", 2)  # the base64 part may itself hold "+"
    if len(parts) != 3 or not valid_name(parts[0]):
        raise Unusable(f"verifier key {text!r} is not NAME+KEYID+KEY")
    name, hex_id, payload = parts
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise Unusable(f"verifier key {text!r}: the key ID is not 8 lowercase hex digits")
    raw = b64(payload, f"verifier key {text!r}", 33, Unusable)
    if raw[0] != sig_type:
        raise Unusable(f"verifier key {text!r} has signature type {raw[0]:#04x}, "
                       f"not {sig_type:#04x}")
    key = Key(name, sig_type, raw[1:])
    if key.id.hex() != hex_id:
        # For Ed25519 keys (types 0x01 and 0x04) the ID is not free: it is the hash above.
        raise Unusable(f"verifier key {text!r}: the key ID should be {key.id.hex()}")
    return key


def sign_message(key, text, signature):
    """The message `key` signed and the Ed25519 signature; the cosignature timestamp or None."""
    if key.sig_type == ED25519:
        return text, signature, None
    # tlog-cosignature "Format": timestamped_signature = u64 big-endian timestamp || 64 bytes,
    # over "cosignature/v1\ntime <T>\n" || the note text ("Ed25519 signed message").
    if len(signature) != 72:
        raise Failed(f"cosignature by {key.name} is {len(signature)} bytes, not 8 + 64")
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp >= 1 << 63:
        raise Failed(f"cosignature by {key.name}: timestamp {timestamp} exceeds 2^63 - 1")
    header = f"cosignature/v1\ntime {timestamp}\n".encode("ascii")
    return header + text, signature[8:], timestamp


def open_note(data, keys):
    """signed-note: (note text, [(key, cosignature timestamp or None)] that verified).

    Signatures by unknown keys (name and ID not both matching) are ignored; a known key's
    signature that fails to verify, or a second one by the same key, rejects the note."""
    try:
        note = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Failed("the note is not UTF-8")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise Failed("the note contains a control character other than newline")
    split = note.rfind("\n\n")  # the text ends at the last empty line
    if split < 0 or not note.endswith("\n"):
        raise Failed("the note has no empty line before its signature lines")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise Failed(f"the note has more than {MAX_SIGNATURES} signatures")
    known = {(k.name, k.id): k for k in keys}
    verified, seen = [], set()
    for line in lines:
        words = line.split(" ")
        if len(words) != 3 or words[0] != "\u2014" or not valid_name(words[1]):
            raise Failed(f"malformed signature line {line!r}")
        raw = b64(words[2], f"signature of {words[1]}")
        if len(raw) < 5:
            raise Failed(f"signature of {words[1]} is too short")
        key = known.get((words[1], raw[:4]))
        if key is None:
            continue
        if key in seen:
            raise Failed(f"two signatures by {key.vkey()}")
        seen.add(key)
        message, signature, timestamp = sign_message(key, text.encode("utf-8"), raw[4:])
        try:
            key.verifier.verify(signature, message)
        except InvalidSignature:
            raise Failed(f"the signature by {key.vkey()} does not verify")
        verified.append((key, timestamp))
    if not verified:
        raise Failed("no signature by a known key")
    return text, verified


# --- tlog-checkpoint ----------------------------------------------------------------------------


class Checkpoint:
    def __init__(self, origin, size, root, cosignatures):
        self.origin, self.size, self.root = origin, size, root
        self.cosignatures = cosignatures  # [(witness key, timestamp)]


def verify_checkpoint(data, log_key, witnesses=(), min_cosignatures=0):
    """The log's signature, then the note text as a checkpoint, then witness cosignatures."""
    keys = [log_key, *witnesses]
    if len({(k.name, k.id) for k in keys}) != len(keys):
        raise Unusable("two of the given keys have the same name and key ID")
    text, verified = open_note(data, keys)
    if log_key not in [k for k, _ in verified]:
        raise Failed(f"the checkpoint carries no signature by {log_key.vkey()}")
    # tlog-checkpoint "Note text": origin, size, base64 root; citydb writes no extension lines.
    lines = text[:-1].split("\n")
    if len(lines) != 3:
        raise Failed(f"the checkpoint has {len(lines)} lines, not origin, size and root")
    origin, size, root = lines
    if origin != log_key.name:
        raise Failed(f"the checkpoint's origin {origin!r} is not the log key's name "
                     f"{log_key.name!r}")
    size = decimal(size, "the checkpoint's tree size")
    root = b64(root, "the checkpoint's root hash", 32)
    if size == 0 and root != EMPTY_ROOT:
        raise Failed("a checkpoint of size 0 must have the empty tree's root")
    cosignatures = [(k, t) for k, t in verified if k is not log_key]
    if len(cosignatures) < min_cosignatures:
        raise Failed(f"{len(cosignatures)} witness cosignatures verified, "
                     f"{min_cosignatures} required")
    return Checkpoint(origin, size, root, cosignatures)


# --- tlog-proof@v1 receipts ---------------------------------------------------------------------


def verify_receipt(data, log_key, witnesses=(), entry=None, min_cosignatures=0):
    """tlog-proof "Format" and "Verifying a tlog proof"; citydb's `extra` is the leaf data."""
    pos, lines = 0, []

    def line():
        nonlocal pos
        end = data.find(b"\n", pos)
        if end < 0:
            raise Failed("the proof ends before its checkpoint")
        try:
            text = data[pos:end].decode("ascii")
        except UnicodeDecodeError:
            raise Failed("a proof line is not ASCII")
        pos = end + 1
        return text

    if line() != "c2sp.org/tlog-proof@v1":
        raise Failed("the first line is not c2sp.org/tlog-proof@v1")
    current, extra = line(), None
    if current.startswith("extra "):
        extra = b64(current[len("extra ") :], "the extra line")
        current = line()
    if not current.startswith("index "):
        raise Failed("no index line")
    index = decimal(current[len("index ") :], "the index")
    while (current := line()) != "":
        lines.append(b64(current, f"inclusion proof hash {len(lines) + 1}", 32))
        if len(lines) > 63:
            raise Failed("more than 63 inclusion proof hashes")
    # Steps 2 and 3: the log's signature and the witnesses' cosignatures.
    checkpoint = verify_checkpoint(data[pos:], log_key, witnesses, min_cosignatures)
    # Step 1: the leaf. citydb's extra is the leaf data, the 32-byte event hash.
    if extra is None and entry is None:
        raise Failed("the proof has no extra line (citydb's event hash) and no --entry was given")
    if extra is not None and len(extra) != 32:
        raise Failed(f"the extra line is {len(extra)} bytes, not a 32-byte event hash")
    if extra is not None and entry is not None and extra != entry:
        raise Failed("the extra line is not the given --entry")
    leaf = entry if entry is not None else extra
    # Step 4: the inclusion proof binds the leaf to the signed root.
    verify_inclusion(leaf, index, checkpoint.size, lines, checkpoint.root)
    return checkpoint, index, leaf


# --- tlog-tiles ---------------------------------------------------------------------------------

TILE_WIDTH = 256
HASH = 32


def tile_index(n):
    """tlog-tiles "Merkle Tree": 1234067 -> x001/x234/067."""
    groups = [n % 1000]
    while n >= 1000:
        n //= 1000
        groups.append(n % 1000)
    groups.reverse()
    return "/".join([f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"])


def tile_path(level, n, width):
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{tile_index(n)}{suffix}"


class Fetcher:
    def __init__(self, prefix):
        self.prefix = prefix.rstrip("/")

    def get(self, path):
        """The resource's bytes, or None on 404; Unusable when the server cannot be used."""
        url = f"{self.prefix}/{path}"
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, identity"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read()
                if response.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                return body
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise Unusable(f"GET {url}: HTTP {e.code}")
        except (urllib.error.URLError, OSError) as e:
            raise Unusable(f"GET {url}: {e}")

    def tile(self, level, n, width):
        """A tile or entry bundle the checkpoint needs; a partial one may have been replaced by
        its full tile (tlog-tiles "Partial Tiles": clients MAY fall back to the full tile)."""
        path = tile_path(level, n, width)
        body = self.get(path)
        if body is None and width < TILE_WIDTH:
            path, width = tile_path(level, n, TILE_WIDTH), TILE_WIDTH
            body = self.get(path)
        if body is None:
            raise Failed(f"{self.prefix}/{path} is not served, and the checkpoint needs it")
        return path, body, width


def bundle_entries(path, body, width):
    """tlog-tiles "Log entries": big-endian u16 length-prefixed entries; citydb's are 32 bytes."""
    entries, pos = [], 0
    while pos < len(body):
        length = int.from_bytes(body[pos : pos + 2], "big")
        if length != HASH or pos + 2 + HASH > len(body):
            raise Failed(f"{path}: entry {len(entries)} is not a 32-byte event hash")
        entries.append(body[pos + 2 : pos + 2 + HASH])
        pos += 2 + HASH
    if len(entries) != width:
        raise Failed(f"{path}: {len(entries)} entries, not {width}")
    return entries


def tile_hashes(path, body, width):
    if len(body) != width * HASH:
        raise Failed(f"{path}: {len(body)} bytes is not {width} hashes")
    return [body[i * HASH : (i + 1) * HASH] for i in range(width)]


def verify_tiles(fetcher, checkpoint, export=None, old_size=None):
    """Every tile and entry bundle a tree of the checkpoint's size needs (tlog-tiles), checked
    against each other and against the signed root; returns the root of the first `old_size`
    leaves when asked (for consistency-url). `export` yields (position, event hash)."""
    size, tree, old_root = checkpoint.size, GrowingTree(), None
    if old_size == 0:
        old_root = EMPTY_ROOT
    # Level 0 and the entry bundles: entry i hashes (RFC 6962 leaf hash) to hash i of its tile.
    above = []  # the MTH of each full tile of the level being read: the next level's hashes
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        # A partial tile or bundle that is no longer served is read from its full one.
        bundle_path, bundle, served = fetcher.tile("entries", n, width)
        entries = bundle_entries(bundle_path, bundle, served)[:width]
        tile_path_, tile, served = fetcher.tile(0, n, width)
        hashes = tile_hashes(tile_path_, tile, served)[:width]
        for i, entry in enumerate(entries):
            index = n * TILE_WIDTH + i
            if export is not None:
                position, event_hash = next(export, (None, None))
                if position != index:
                    raise Failed(f"the export has no event at position {index}, "
                                 "which the checkpoint covers")
                if event_hash != entry:
                    raise Failed(f"{bundle_path}: entry {index} is not the export's event hash "
                                 f"at position {index}")
            if leaf_hash(entry) != hashes[i]:
                raise Failed(f"{bundle_path}: entry {index} does not hash to hash {i} "
                             f"of {tile_path_}")
            tree.append(hashes[i])
            if tree.size == old_size:
                old_root = tree.root()
        if width == TILE_WIDTH:
            above.append(perfect_root(hashes))
    # Level l ≥ 1: hash i of tile n is the MTH of full tile n·256 + i of level l - 1.
    level = 1
    while size >> (8 * level):
        count = size >> (8 * level)
        below, above = above, []
        for n in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, count - n * TILE_WIDTH)
            path, tile, served = fetcher.tile(level, n, width)
            hashes = tile_hashes(path, tile, served)[:width]
            for i, hash_ in enumerate(hashes):
                if hash_ != below[n * TILE_WIDTH + i]:
                    below_path = f"tile/{level - 1}/{tile_index(n * TILE_WIDTH + i)}"
                    raise Failed(f"{path}: hash {i} is not the tree hash of {below_path}")
            if width == TILE_WIDTH:
                above.append(perfect_root(hashes))
        level += 1
    if tree.root() != checkpoint.root:
        raise Failed(f"the tiles' tree of size {size} does not have the checkpoint's root")
    return old_root


def export_hashes(path):
    """(position, event hash) of each event of a citydb export, read by tools/verify_export.py's
    parser (docs/audit-format.md "Export format"). That tool checks the chain itself."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import verify_export
    except SystemExit:  # it exits when the blake3 package is missing
        raise Unusable("--export needs tools/verify_export.py and the blake3 package")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise Unusable(f"{path}: {e}")

    def events():
        with f:
            seen = False
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    event = verify_export.parse(line)
                except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
                    if not seen and header_line(line):
                        continue  # the export's format header (issue 14 item 7), not an event
                    raise Failed(f"{path} line {number} cannot be decoded: {e}")
                seen = True
                yield event["position"], event["hash"]

    return events()


def header_line(line):
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and "position" not in obj and "citydbposition" not in obj


# --- Command line -------------------------------------------------------------------------------


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Unusable(f"{path}: {e}")


def entry_arg(text):
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise Unusable(f"--entry {text!r} is not hex")
    if len(raw) != HASH:
        raise Unusable(f"--entry is {len(raw)} bytes, not a 32-byte event hash")
    return raw


def print_checkpoint(checkpoint):
    print(f"origin {checkpoint.origin}")
    print(f"size {checkpoint.size}")
    print(f"root {base64.b64encode(checkpoint.root).decode('ascii')}")
    for key, timestamp in checkpoint.cosignatures:
        print(f"cosignature {key.vkey()} time {timestamp}")


def run(args):
    log_key = parse_vkey(args.vkey, ED25519) if getattr(args, "vkey", None) else None
    witnesses = [parse_vkey(w, COSIGNATURE) for w in getattr(args, "witness", None) or []]
    cosignatures = getattr(args, "min_cosignatures", 0) or 0
    if args.command == "checkpoint":
        checkpoint = verify_checkpoint(read_file(args.file), log_key, witnesses, cosignatures)
        print_checkpoint(checkpoint)
    elif args.command == "inclusion":
        proof = [b64(p, "a proof hash", 32, Unusable) for p in args.proof]
        root = b64(args.root, "--root", 32, Unusable)
        verify_inclusion(entry_arg(args.entry), args.index, args.size, proof, root)
        print(f"entry {args.index} is in the tree of size {args.size}")
    elif args.command == "consistency":
        proof = [b64(p, "a proof hash", 32, Unusable) for p in args.proof]
        old_root = b64(args.old_root, "--old-root", 32, Unusable)
        root = b64(args.root, "--root", 32, Unusable)
        verify_consistency(args.old_size, old_root, args.size, root, proof)
        print(f"the tree of size {args.old_size} is a prefix of the tree of size {args.size}")
    elif args.command == "proof":
        entry = entry_arg(args.entry) if args.entry else None
        receipt = read_file(args.file)
        checkpoint, index, leaf = verify_receipt(receipt, log_key, witnesses, entry, cosignatures)
        print(f"entry {leaf.hex()} is at index {index}")
        print_checkpoint(checkpoint)
    elif args.command == "tiles":
        fetcher = Fetcher(args.prefix)
        export = export_hashes(args.export) if args.export else None
        checkpoint = verify_checkpoint(checkpoint_body(fetcher), log_key, witnesses, cosignatures)
        verify_tiles(fetcher, checkpoint, export)
        print_checkpoint(checkpoint)
        print(f"tiles: {checkpoint.size} entries checked against the root")
        if export is not None:
            last = checkpoint.size - 1
            print(f"export: the event hashes at positions 0 to {last} are the entries")
    elif args.command == "consistency-url":
        old = verify_checkpoint(read_file(args.old), log_key, witnesses)
        fetcher = Fetcher(args.prefix)
        new = verify_checkpoint(checkpoint_body(fetcher), log_key, witnesses, cosignatures)
        if old.size > new.size:
            raise Failed(f"the log's checkpoint (size {new.size}) is older than the saved one "
                         f"(size {old.size})")
        if verify_tiles(fetcher, new, old_size=old.size) != old.root:
            raise Failed(f"the log's first {old.size} entries do not have the saved "
                         "checkpoint's root")
        print(f"the saved checkpoint (size {old.size}) is a prefix of the log's (size {new.size})")
        print_checkpoint(new)
    return 0


def checkpoint_body(fetcher):
    body = fetcher.get("checkpoint")
    if body is None:
        raise Unusable(f"{fetcher.prefix}/checkpoint: HTTP 404")
    return body


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def keys(s, witnesses=True):
        s.add_argument("--vkey", required=True, help="the log's verifier key (signed-note vkey)")
        if witnesses:
            s.add_argument("--witness", action="append", metavar="WVKEY",
                           help="a witness's vkey (type 0x04)")
            s.add_argument("--min-cosignatures", type=int, default=0, metavar="K")

    keys(c := sub.add_parser("checkpoint", help="a signed checkpoint file"))
    c.add_argument("file")
    i = sub.add_parser("inclusion", help="an RFC 9162 inclusion proof")
    i.add_argument("--entry", required=True, help="the leaf data: the 32-byte event hash, hex")
    i.add_argument("--index", required=True, type=int)
    i.add_argument("--size", required=True, type=int)
    i.add_argument("--root", required=True, help="base64")
    i.add_argument("proof", nargs="*", metavar="PROOF_B64")
    k = sub.add_parser("consistency", help="an RFC 9162 consistency proof")
    k.add_argument("--old-size", required=True, type=int)
    k.add_argument("--old-root", required=True, help="base64")
    k.add_argument("--size", required=True, type=int)
    k.add_argument("--root", required=True, help="base64")
    k.add_argument("proof", nargs="*", metavar="PROOF_B64")
    keys(r := sub.add_parser("proof", help="a tlog-proof@v1 receipt"))
    r.add_argument("--entry", help="the event hash the receipt must prove, hex")
    r.add_argument("file")
    keys(t := sub.add_parser("tiles", help="the published checkpoint and tiles"))
    t.add_argument("prefix", metavar="PREFIX_URL")
    t.add_argument("--export", help="a citydb export whose event hashes must be the entries")
    u = sub.add_parser("consistency-url", help="a saved checkpoint against the published log")
    keys(u)
    u.add_argument("--old", required=True, help="the saved checkpoint file")
    u.add_argument("prefix", metavar="PREFIX_URL")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    for name in ("index", "size", "old_size", "min_cosignatures"):
        if (getattr(args, name, None) or 0) < 0:
            print(f"error: --{name.replace('_', '-')} is negative", file=sys.stderr)
            return 2
    try:
        return run(args)
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except Unusable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
