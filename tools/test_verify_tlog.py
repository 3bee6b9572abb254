#!/usr/bin/env python3
"""Tests of tools/verify_tlog.py against a second, deliberately naive implementation.

The reference below is RFC 6962 §2.1 read literally (recursive MTH, PATH and SUBPROOF over
slices, memoised); the verifier implements RFC 9162's iterative algorithms and a streaming
root. Trees hold e_i = SHA-256(ASCII decimal of i). Run: python3 tools/test_verify_tlog.py
(`python3 tools/test_verify_tlog.py vectors` prints the test vectors of docs/audit-format.md;
with CITYDB_BIN=path/to/citydb, DemoServerTest also checks a real `serve --demo`).
"""

import base64
import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import verify_tlog as v  # noqa: E402

DOC = os.path.join(HERE, "..", "docs", "audit-format.md")
LARGEST = 70000
ENTRIES = [hashlib.sha256(str(i).encode("ascii")).digest() for i in range(LARGEST)]
LOG_SEED = bytes(range(0x01, 0x21))
WITNESS_SEED = bytes(range(0x21, 0x41))
ORIGIN = "citydb.test/log"
WITNESS = "citydb.test/witness"
COSIGNED_AT = 1764201600


# --- The reference: RFC 6962 §2.1 as written --------------------------------------------------


def sha(b):
    return hashlib.sha256(b).digest()


def split(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.lru_cache(maxsize=None)
def mth(lo, hi):
    """MTH(D[lo:hi]) over ENTRIES."""
    n = hi - lo
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + ENTRIES[lo])
    k = split(n)
    return sha(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi))


def path(m, lo, hi):
    """PATH(m, D[lo:hi]) (§2.1.1)."""
    n = hi - lo
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(m, lo, lo + k) + [mth(lo + k, hi)]
    return path(m - k, lo + k, hi) + [mth(lo, lo + k)]


def subproof(m, lo, hi, complete):
    """SUBPROOF(m, D[lo:hi], b) (§2.1.2)."""
    n = hi - lo
    if m == n:
        return [] if complete else [mth(lo, hi)]
    k = split(n)
    if m <= k:
        return subproof(m, lo, lo + k, complete) + [mth(lo + k, hi)]
    return subproof(m - k, lo + k, hi, False) + [mth(lo, lo + k)]


def consistency_proof(m, n):
    """PROOF(m, D[n]); empty for m = 0 or m = n."""
    return [] if m in (0, n) else subproof(m, 0, n, True)


def flips(hash_, every_bit):
    """The hash with one bit flipped: every bit, or a spread of 3 (first, last, one between)."""
    bits = range(256) if every_bit else (0, 255, (hash_[0] * 7) % 256)
    for bit in bits:
        b = bytearray(hash_)
        b[bit // 8] ^= 1 << (bit % 8)
        yield bytes(b)


# --- Signing, written from signed-note and tlog-cosignature -----------------------------------


def private(seed):
    return Ed25519PrivateKey.from_private_bytes(seed)


def public(seed):
    return private(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def kid(name, sig_type, seed):
    return sha(name.encode() + b"\n" + bytes([sig_type]) + public(seed))[:4]


def vkey(name, sig_type, seed):
    raw = base64.b64encode(bytes([sig_type]) + public(seed)).decode()
    return f"{name}+{kid(name, sig_type, seed).hex()}+{raw}"


def signature_line(name, key_id, signature):
    return f"\u2014 {name} {base64.b64encode(key_id + signature).decode()}\n"


def sign(text, name=ORIGIN, seed=LOG_SEED):
    return signature_line(name, kid(name, 0x01, seed), private(seed).sign(text.encode()))


def cosign(text, name=WITNESS, seed=WITNESS_SEED, timestamp=COSIGNED_AT):
    message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
    stamped = timestamp.to_bytes(8, "big") + private(seed).sign(message)
    return signature_line(name, kid(name, 0x04, seed), stamped)


def checkpoint_text(size, origin=ORIGIN):
    return f"{origin}\n{size}\n{base64.b64encode(mth(0, size)).decode()}\n"


def signed_checkpoint(size, witnesses=0):
    text = checkpoint_text(size)
    return text + "\n" + sign(text) + (cosign(text) if witnesses else "")


def receipt(index, size, witnesses=0):
    lines = [base64.b64encode(h).decode() for h in path(index, 0, size)]
    extra = base64.b64encode(ENTRIES[index]).decode()
    head = f"c2sp.org/tlog-proof@v1\nextra {extra}\nindex {index}\n"
    return head + "".join(x + "\n" for x in lines) + "\n" + signed_checkpoint(size, witnesses)


LOG_KEY = v.parse_vkey(vkey(ORIGIN, 0x01, LOG_SEED), v.ED25519)
WITNESS_KEY = v.parse_vkey(vkey(WITNESS, 0x04, WITNESS_SEED), v.COSIGNATURE)


def run_main(*argv):
    """verify_tlog.main in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = v.main(list(argv))
        except SystemExit as e:  # argparse
            status = e.code
    return status, out.getvalue(), err.getvalue()


# --- Tree and proofs --------------------------------------------------------------------------


class TreeTest(unittest.TestCase):
    def test_streaming_root_is_the_recursive_mth(self):
        tree = v.GrowingTree()
        self.assertEqual(tree.root(), sha(b""))
        for n in range(1, 1025):
            tree.append(v.leaf_hash(ENTRIES[n - 1]))
            self.assertEqual(tree.root(), mth(0, n), n)

    def test_every_inclusion_proof_up_to_70_verifies_and_every_tampering_fails(self):
        checked = rejected = 0
        for n in range(1, 71):
            root = mth(0, n)
            for m in range(n):
                proof = path(m, 0, n)
                v.verify_inclusion(ENTRIES[m], m, n, proof, root)
                checked += 1
                every_bit = n <= 20
                for j, hash_ in enumerate(proof):
                    for bad in flips(hash_, every_bit):
                        with self.assertRaises(v.Failed):
                            v.verify_inclusion(ENTRIES[m], m, n, proof[:j] + [bad] + proof[j + 1 :], root)
                        rejected += 1
                for bad in flips(ENTRIES[m], every_bit):
                    with self.assertRaises(v.Failed):
                        v.verify_inclusion(bad, m, n, proof, root)
                for bad in flips(root, every_bit):
                    with self.assertRaises(v.Failed):
                        v.verify_inclusion(ENTRIES[m], m, n, proof, bad)
                for other in range(n + 2):  # every other index, including past the end
                    if other != m:
                        with self.assertRaises(v.Failed):
                            v.verify_inclusion(ENTRIES[m], other, n, proof, root)
                        rejected += 1
                for other in range(1, n + 3):  # every other size, with that size's true root
                    if other != n:
                        with self.assertRaises(v.Failed):
                            v.verify_inclusion(ENTRIES[m], m, other, proof, mth(0, other))
                if proof:
                    with self.assertRaises(v.Failed):  # a hash left off
                        v.verify_inclusion(ENTRIES[m], m, n, proof[:-1], root)
                with self.assertRaises(v.Failed):  # one too many
                    v.verify_inclusion(ENTRIES[m], m, n, proof + [root], root)
        self.assertEqual(checked, 70 * 71 // 2)
        self.assertGreater(rejected, 100000)

    def test_every_consistency_proof_up_to_70_verifies_and_every_tampering_fails(self):
        for n in range(0, 71):
            for m in range(0, n + 1):
                proof, old, new = consistency_proof(m, n), mth(0, m), mth(0, n)
                v.verify_consistency(m, old, n, new, proof)
                every_bit = n <= 20
                for j, hash_ in enumerate(proof):
                    for bad in flips(hash_, every_bit):
                        with self.assertRaises(v.Failed):
                            v.verify_consistency(m, old, n, new, proof[:j] + [bad] + proof[j + 1 :])
                for bad in flips(old, every_bit):
                    with self.assertRaises(v.Failed):
                        v.verify_consistency(m, bad, n, new, proof)
                for bad in flips(new, every_bit) if m > 0 else ():  # size 0 proves nothing of it
                    with self.assertRaises(v.Failed):
                        v.verify_consistency(m, old, n, bad, proof)
                # Every other size on either side, with that size's true root. An empty proof
                # also proves 0 -> any size and n -> n: those claims are true, not tampering.
                for other in range(0, n + 3):
                    if other != m and not (other <= n and consistency_proof(other, n) == proof):
                        with self.assertRaises(v.Failed):
                            v.verify_consistency(other, mth(0, other), n, new, proof)
                    if other != n and not (other >= m and consistency_proof(m, other) == proof):
                        with self.assertRaises(v.Failed):
                            v.verify_consistency(m, old, other, mth(0, other), proof)
                with self.assertRaises(v.Failed):
                    v.verify_consistency(m, old, n, new, proof + [new])
                if proof:
                    with self.assertRaises(v.Failed):
                        v.verify_consistency(m, old, n, new, proof[:-1])

    def test_larger_trees(self):
        for n in (255, 256, 257, 1000, 65536, LARGEST):
            root = mth(0, n)
            for m in sorted({0, 1, n // 3, n // 2, n - 2, n - 1}):
                v.verify_inclusion(ENTRIES[m], m, n, path(m, 0, n), root)
                with self.assertRaises(v.Failed):
                    v.verify_inclusion(ENTRIES[m], m + 1, n, path(m, 0, n), root)
                v.verify_consistency(m, mth(0, m), n, root, consistency_proof(m, n))
                if 0 < m:
                    with self.assertRaises(v.Failed):
                        v.verify_consistency(m, mth(0, m - 1), n, root, consistency_proof(m, n))

    def test_the_certificate_transparency_vectors(self):
        """A known answer from outside: the RFC 6962 test vectors every CT implementation uses
        (eight leaves of 0 to 16 bytes; roots of sizes 1..8, proofs in the tree of 8)."""
        data = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                           "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
        roots = [bytes.fromhex(h) for h in (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
        tree = v.GrowingTree()
        for d, root in zip(data, roots):
            tree.append(v.leaf_hash(d))
            self.assertEqual(tree.root(), root)
        h = {k: bytes.fromhex(x) for k, x in {
            "l1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "23": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "47": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            "l4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "67": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "45": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"}.items()}
        for m, n, proof in ((0, 8, ["l1", "23", "47"]), (5, 8, ["l4", "67", "r4"]),
                            (2, 3, ["r2"]), (1, 5, ["r1", "23", "l4"])):
            proof = [roots[int(x[1]) - 1] if x[0] == "r" else h[x] for x in proof]
            v.verify_inclusion(data[m], m, n, proof, roots[n - 1])
        for m, n, proof in ((1, 8, ["l1", "23", "47"]), (6, 8, ["45", "67", "r4"]), (2, 5, ["23", "l4"])):
            proof = [roots[int(x[1]) - 1] if x[0] == "r" else h[x] for x in proof]
            v.verify_consistency(m, roots[m - 1], n, roots[n - 1], proof)

    def test_inclusion_and_consistency_commands(self):
        n, m = 70, 13
        b64 = lambda h: base64.b64encode(h).decode()  # noqa: E731
        root = b64(mth(0, n))
        ok = run_main("inclusion", "--entry", ENTRIES[m].hex(), "--index", str(m), "--size", str(n),
                      "--root", root, *map(b64, path(m, 0, n)))
        self.assertEqual(ok[0], 0, ok)
        bad = run_main("inclusion", "--entry", ENTRIES[m + 1].hex(), "--index", str(m), "--size", str(n),
                       "--root", root, *map(b64, path(m, 0, n)))
        self.assertEqual(bad[0], 1, bad)
        self.assertIn("inclusion proof for index 13 does not lead to the root of size 70", bad[2])
        ok = run_main("consistency", "--old-size", str(m), "--old-root", b64(mth(0, m)), "--size", str(n),
                      "--root", root, *map(b64, consistency_proof(m, n)))
        self.assertEqual(ok[0], 0, ok)
        bad = run_main("consistency", "--old-size", str(m), "--old-root", b64(mth(0, m + 1)), "--size", str(n),
                       "--root", root, *map(b64, consistency_proof(m, n)))
        self.assertEqual(bad[0], 1, bad)
        unusable = run_main("inclusion", "--entry", "zz", "--index", "0", "--size", "1", "--root", root)
        self.assertEqual(unusable[0], 2, unusable)
        unusable = run_main("consistency", "--old-size", "1", "--old-root", "not base64!", "--size", "2", "--root", root)
        self.assertEqual(unusable[0], 2, unusable)


# --- Signed notes, checkpoints, cosignatures, receipts -----------------------------------------


class NoteTest(unittest.TestCase):
    SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
    SPEC_NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1"
                 "YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")

    def test_the_signed_note_specs_example(self):
        key = v.parse_vkey(self.SPEC_VKEY, v.ED25519)
        self.assertEqual(key.vkey(), self.SPEC_VKEY)
        text, verified = v.open_note(self.SPEC_NOTE.encode(), [key])
        self.assertEqual(text, "This is an example message.\n")
        self.assertEqual(verified, [(key, None)])
        changed = self.SPEC_NOTE.replace("example message", "example massage").encode()
        with self.assertRaisesRegex(v.Failed, "does not verify"):
            v.open_note(changed, [key])

    def test_key_id_and_vkey_of_the_test_key(self):
        self.assertEqual(LOG_KEY.id, kid(ORIGIN, 0x01, LOG_SEED))
        self.assertEqual(LOG_KEY.vkey(), vkey(ORIGIN, 0x01, LOG_SEED))
        self.assertNotEqual(v.key_id(ORIGIN, 0x04, LOG_KEY.public), LOG_KEY.id)  # type is hashed
        wrong_id = vkey(ORIGIN, 0x01, LOG_SEED).replace(LOG_KEY.id.hex(), "00000000")
        for bad in (wrong_id, "citydb.test/log", "a+b+c+d", "+" + LOG_KEY.id.hex() + "+AQ==",
                    "sp ace+" + LOG_KEY.vkey().split("+", 1)[1],
                    LOG_KEY.vkey().upper(), LOG_KEY.vkey()[:-4]):
            with self.assertRaises(v.Unusable, msg=bad):
                v.parse_vkey(bad, v.ED25519)
        with self.assertRaisesRegex(v.Unusable, "signature type"):
            v.parse_vkey(LOG_KEY.vkey(), v.COSIGNATURE)  # a log key is not a witness key
        status, _, err = run_main("checkpoint", "--vkey", wrong_id, "/nonexistent")
        self.assertEqual(status, 2, err)

    def test_unknown_keys_are_ignored_and_known_ones_must_verify(self):
        text = checkpoint_text(7)
        other = bytes(range(0x41, 0x61))
        own = sign(text)
        # Same name, another key (so another ID): unknown, ignored. Another name, same ID bytes:
        # unknown too (name and ID must both match).
        same_name = sign(text, ORIGIN, other)
        same_id = signature_line("other.example/log", LOG_KEY.id, private(LOG_SEED).sign(text.encode()))
        note = text + "\n" + same_name + own + same_id
        cp = v.verify_checkpoint(note.encode(), LOG_KEY)
        self.assertEqual((cp.origin, cp.size, cp.root), (ORIGIN, 7, mth(0, 7)))
        with self.assertRaisesRegex(v.Failed, "no signature by a known key"):
            v.verify_checkpoint((text + "\n" + same_name + same_id).encode(), LOG_KEY)
        # The known key's signature over other text: the whole note is rejected, even though
        # an unknown signature sits beside it.
        forged = signature_line(ORIGIN, LOG_KEY.id, private(LOG_SEED).sign(b"other text\n"))
        with self.assertRaisesRegex(v.Failed, "does not verify"):
            v.verify_checkpoint((text + "\n" + same_name + forged).encode(), LOG_KEY)
        with self.assertRaisesRegex(v.Failed, "two signatures"):
            v.verify_checkpoint((text + "\n" + own + own).encode(), LOG_KEY)
        # A witness named like the log: its type-0x04 key ID differs, so both are told apart.
        twin = v.parse_vkey(vkey(ORIGIN, 0x04, WITNESS_SEED), v.COSIGNATURE)
        cp = v.verify_checkpoint((text + "\n" + own + cosign(text, ORIGIN)).encode(), LOG_KEY, [twin], 1)
        self.assertEqual([(k.vkey(), t) for k, t in cp.cosignatures], [(twin.vkey(), COSIGNED_AT)])
        with self.assertRaises(v.Unusable):
            v.verify_checkpoint(note.encode(), LOG_KEY, [LOG_KEY])
        # Only a signature by the log counts for the checkpoint itself.
        with self.assertRaisesRegex(v.Failed, "no signature by"):
            v.verify_checkpoint((text + "\n" + cosign(text)).encode(), LOG_KEY, [WITNESS_KEY])

    def test_checkpoints_are_parsed_strictly(self):
        root = base64.b64encode(mth(0, 7)).decode()
        for text, why in [
            (f"{ORIGIN}\n07\n{root}\n", "tree size"),
            (f"{ORIGIN}\n+7\n{root}\n", "tree size"),
            (f"{ORIGIN}\n٧\n{root}\n", "tree size"),
            (f"{ORIGIN}\n7\n{root.rstrip('=')}\n", "root"),
            (f"{ORIGIN}\n7\n{base64.b64encode(mth(0, 7)[:31]).decode()}\n", "root"),
            (f"{ORIGIN}\n7\n{root}\nextension\n", "lines"),
            (f"{ORIGIN}\n7\n", "lines"),
            (f"other.example/log\n7\n{root}\n", "origin"),
            (f"{ORIGIN}\n0\n{root}\n", "empty tree"),
            (f"{ORIGIN}\n{1 << 64}\n{root}\n", "tree size"),
        ]:
            note = (text + "\n" + sign(text)).encode()
            with self.assertRaisesRegex(v.Failed, why, msg=text):
                v.verify_checkpoint(note, LOG_KEY)
        good = signed_checkpoint(7)
        for bad, why in [
            (good.replace("\n\n", "\n"), "empty line"),
            (good.replace("\n\u2014", "\n\u2014\u2014"), "malformed signature"),
            (good[:-1], "empty line"),
            (good + "\n", "malformed signature"),
            (good.replace("7\n", "7\r\n", 1), "control character"),
        ]:
            with self.assertRaisesRegex(v.Failed, why, msg=bad):
                v.verify_checkpoint(bad.encode(), LOG_KEY)
        with self.assertRaisesRegex(v.Failed, "UTF-8"):
            v.verify_checkpoint(good.encode() + b"\xff", LOG_KEY)
        self.assertEqual(v.verify_checkpoint(signed_checkpoint(0).encode(), LOG_KEY).root, sha(b""))

    def test_cosignatures(self):
        note = signed_checkpoint(7, witnesses=1)
        cp = v.verify_checkpoint(note.encode(), LOG_KEY, [WITNESS_KEY], 1)
        self.assertEqual([(k.name, t) for k, t in cp.cosignatures], [(WITNESS, COSIGNED_AT)])
        # Without the witness's key its cosignature is an unknown signature: ignored.
        self.assertEqual(v.verify_checkpoint(note.encode(), LOG_KEY).cosignatures, [])
        with self.assertRaisesRegex(v.Failed, "1 witness cosignatures verified, 2 required"):
            v.verify_checkpoint(note.encode(), LOG_KEY, [WITNESS_KEY], 2)
        text = checkpoint_text(7)
        # The timestamp is signed: changing it breaks the cosignature.
        line = cosign(text)
        raw = bytearray(base64.b64decode(line.split(" ")[2]))
        raw[11] ^= 1
        moved = f"\u2014 {WITNESS} {base64.b64encode(bytes(raw)).decode()}\n"
        with self.assertRaisesRegex(v.Failed, "does not verify"):
            v.verify_checkpoint((text + "\n" + sign(text) + moved).encode(), LOG_KEY, [WITNESS_KEY])
        # An Ed25519 note signature (no timestamp) by the witness key is not a cosignature.
        plain = signature_line(WITNESS, WITNESS_KEY.id, private(WITNESS_SEED).sign(text.encode()))
        with self.assertRaisesRegex(v.Failed, "not 8 \\+ 64"):
            v.verify_checkpoint((text + "\n" + sign(text) + plain).encode(), LOG_KEY, [WITNESS_KEY])
        late = cosign(text, timestamp=1 << 63)
        with self.assertRaisesRegex(v.Failed, "exceeds"):
            v.verify_checkpoint((text + "\n" + sign(text) + late).encode(), LOG_KEY, [WITNESS_KEY])

    def test_checkpoint_command(self):
        with tempfile.TemporaryDirectory() as d:
            file = os.path.join(d, "checkpoint")
            with open(file, "w") as f:
                f.write(signed_checkpoint(7, witnesses=1))
            status, out, err = run_main("checkpoint", "--vkey", LOG_KEY.vkey(), "--witness",
                                        WITNESS_KEY.vkey(), "--min-cosignatures", "1", file)
            self.assertEqual(status, 0, err)
            root = base64.b64encode(mth(0, 7)).decode()
            self.assertEqual(out, f"origin {ORIGIN}\nsize 7\nroot {root}\n"
                                  f"cosignature {WITNESS_KEY.vkey()} time {COSIGNED_AT}\n")
            status, _, err = run_main("checkpoint", "--vkey", vkey(ORIGIN, 0x01, WITNESS_SEED), file)
            self.assertEqual((status, "no signature by a known key" in err), (1, True), err)
            status, _, err = run_main("checkpoint", "--vkey", LOG_KEY.vkey(), os.path.join(d, "missing"))
            self.assertEqual(status, 2, err)

    def test_receipts(self):
        for n in (1, 7, 8, 70):
            for m in range(n):
                cp, index, leaf = v.verify_receipt(receipt(m, n).encode(), LOG_KEY, (), ENTRIES[m])
                self.assertEqual((cp.size, index, leaf), (n, m, ENTRIES[m]))
        with self.assertRaisesRegex(v.Failed, "not the given --entry"):
            v.verify_receipt(receipt(2, 7).encode(), LOG_KEY, (), ENTRIES[3])
        good = receipt(2, 7)
        wrong_index = good.replace("index 2\n", "index 3\n")
        with self.assertRaisesRegex(v.Failed, "does not lead to the root"):
            v.verify_receipt(wrong_index.encode(), LOG_KEY)
        for bad, why in [
            (good.replace("tlog-proof@v1", "tlog-proof@v2"), "first line"),
            (good.replace("index 2", "index 02"), "index"),
            (good.replace("\n\n", "\n", 1), "proof hash|lines"),
            (good.replace(good.split("\n")[1], "extra " + base64.b64encode(b"short").decode()), "not a 32-byte"),
            ("\n".join(x for x in good.split("\n") if not x.startswith("extra")), "no extra line"),
        ]:
            with self.assertRaisesRegex(v.Failed, why, msg=bad):
                v.verify_receipt(bad.encode(), LOG_KEY)
        # Without extra, --entry gives the leaf data.
        bare = "\n".join(x for x in good.split("\n") if not x.startswith("extra"))
        v.verify_receipt(bare.encode(), LOG_KEY, (), ENTRIES[2])

    def test_every_single_bit_flip_in_a_receipt_is_rejected(self):
        data = receipt(5, 70).encode()
        for i in range(len(data)):
            for bit in range(8):
                bad = bytearray(data)
                bad[i] ^= 1 << bit
                with self.assertRaises(v.Failed, msg=(i, bit)):
                    v.verify_receipt(bytes(bad), LOG_KEY)

    def test_proof_command(self):
        with tempfile.TemporaryDirectory() as d:
            file = os.path.join(d, "r.tlog-proof")
            with open(file, "w") as f:
                f.write(receipt(2, 7, witnesses=1))
            args = ["proof", "--vkey", LOG_KEY.vkey(), "--witness", WITNESS_KEY.vkey(), "--min-cosignatures", "1"]
            status, out, err = run_main(*args, "--entry", ENTRIES[2].hex(), file)
            self.assertEqual(status, 0, err)
            self.assertIn(f"entry {ENTRIES[2].hex()} is at index 2\norigin {ORIGIN}\nsize 7\n", out)
            status, _, err = run_main(*args, "--entry", ENTRIES[1].hex(), file)
            self.assertEqual((status, "not the given --entry" in err), (1, True), err)
            status, _, err = run_main(*args[:-2], "--min-cosignatures", "2", file)
            self.assertEqual(status, 1, err)
            # The real command line, for its exit status.
            cli = subprocess.run([sys.executable, os.path.join(HERE, "verify_tlog.py"), *args, file],
                                 capture_output=True, text=True)
            self.assertEqual(cli.returncode, 0, cli.stderr)
            cli = subprocess.run([sys.executable, os.path.join(HERE, "verify_tlog.py"), "proof", "--vkey",
                                  "garbage", file], capture_output=True, text=True)
            self.assertEqual(cli.returncode, 2, cli.stderr)


# --- Tiles over HTTP ----------------------------------------------------------------------------


def tile_name(n):
    """tlog-tiles path elements for index n, written independently of the verifier."""
    s = str(n)
    s = "0" * (-len(s) % 3) + s
    parts = [s[i : i + 3] for i in range(0, len(s), 3)]
    return "/".join(["x" + p for p in parts[:-1]] + [parts[-1]])


def tiles_of(size):
    """Every resource a tree of `size` publishes, from tlog-tiles' formula: hash i of tile n at
    level l is MTH(D[(n*256 + i)*256**l : (n*256 + i + 1)*256**l])."""
    resources = {}
    for level in range(0, 8):
        span, count = 256**level, size // 256**level
        if count == 0:
            break
        for n in range((count + 255) // 256):
            width = min(256, count - n * 256)
            suffix = "" if width == 256 else f".p/{width}"
            hashes = [mth((n * 256 + i) * span, (n * 256 + i + 1) * span) for i in range(width)]
            resources[f"/log/tile/{level}/{tile_name(n)}{suffix}"] = b"".join(hashes)
            if level == 0:
                entries = ENTRIES[n * 256 : n * 256 + width]
                resources[f"/log/tile/entries/{tile_name(n)}{suffix}"] = b"".join(b"\x00\x20" + e for e in entries)
    resources["/log/checkpoint"] = signed_checkpoint(size).encode()
    return resources


class TileServer:
    """Serves a dict of path -> bytes over HTTP on localhost, in a thread."""

    def __init__(self):
        resources = self.resources = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = resources.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.prefix = f"http://127.0.0.1:{self.server.server_port}/log"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def export_line(position):
    """An export line (docs/audit-format.md "Export format") whose event hash is e_position."""
    zero = "00" * 32
    return json.dumps({
        "position": position, "stream_id": "citizen-0193e3a4-7c1b-7d2e-8f00-000000000001",
        "stream_version": position, "event_id": "0193e3a4-7c1b-7d2e-8f00-0000000000e1",
        "event_type": "CitizenRegistered", "schema_version": 1, "recorded_at": 1764201600000000,
        "data": None, "metadata": "{}", "data_hash": zero, "prev_stream_hash": zero,
        "prev_log_hash": zero, "hash": ENTRIES[position].hex(),
    }) + "\n"


class TilesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = TileServer()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def tiles(self, resources, *extra):
        self.server.resources.clear()
        self.server.resources.update(resources)
        return run_main("tiles", "--vkey", LOG_KEY.vkey(), self.server.prefix, *extra)

    def test_tile_paths(self):
        for n in (0, 7, 999, 1000, 1234067, 10**9):
            self.assertEqual(v.tile_index(n), tile_name(n))
        self.assertEqual(v.tile_index(1234067), "x001/x234/067")  # tlog-tiles' own example
        layout = sorted(p for p in tiles_of(LARGEST) if ".p/" in p or p.startswith("/log/tile/1/") or p.startswith("/log/tile/2/"))
        # tlog-tiles: size 70,000 has a partial level-0 tile of width 112, one full level-1 tile,
        # a partial level-1 tile of width 17 and a partial level-2 tile of width 1.
        self.assertEqual(layout, ["/log/tile/0/273.p/112", "/log/tile/1/000", "/log/tile/1/001.p/17",
                                  "/log/tile/2/000.p/1", "/log/tile/entries/273.p/112"])

    def test_published_trees_verify(self):
        for size in (0, 1, 255, 256, 257, 600, 65536, LARGEST):
            status, out, err = self.tiles(tiles_of(size))
            self.assertEqual(status, 0, (size, err))
            self.assertIn(f"size {size}\n", out)
            self.assertIn(f"tiles: {size} entries checked", out)

    def test_a_flipped_byte_anywhere_is_caught(self):
        resources = tiles_of(600)  # two full tiles and bundles, partial ones, a level-1 tile
        self.assertEqual(len(resources), 8)
        for name, body in resources.items():
            for offset in sorted({0, len(body) // 2, len(body) - 1}):
                bad = dict(resources)
                changed = bytearray(body)
                changed[offset] ^= 0x10
                bad[name] = bytes(changed)
                status, _, err = self.tiles(bad)
                self.assertEqual(status, 1, (name, offset, err))
                self.assertIn("FAILED", err)
        big = tiles_of(LARGEST)
        for name in ("/log/tile/0/x001/000".replace("x001/", ""), "/log/tile/0/273.p/112",
                     "/log/tile/entries/017", "/log/tile/entries/273.p/112", "/log/tile/1/000",
                     "/log/tile/1/001.p/17", "/log/tile/2/000.p/1"):
            bad = dict(big)
            changed = bytearray(bad[name])
            changed[-1] ^= 1
            bad[name] = bytes(changed)
            status, _, err = self.tiles(bad)
            self.assertEqual(status, 1, (name, err))

    def test_bundles_and_tiles_hold_exactly_their_width(self):
        resources = tiles_of(600)
        for name, more in (("/log/tile/entries/002.p/88", b"\x00\x20" + ENTRIES[600]),
                           ("/log/tile/0/002.p/88", mth(600, 601)),
                           ("/log/tile/entries/000", b"\x00\x20" + ENTRIES[256])):
            for changed in (resources[name] + more, resources[name][: -len(more)]):
                status, _, err = self.tiles({**resources, name: changed})
                self.assertEqual(status, 1, (name, err))
                self.assertIn(name.removeprefix("/log/"), err)

    def test_missing_tiles(self):
        resources = tiles_of(600)
        # A partial tile replaced by its full one (tlog-tiles allows deleting it): the client
        # falls back to the full tile of a larger tree.
        larger = tiles_of(768)
        resources.pop("/log/tile/0/002.p/88")
        resources.pop("/log/tile/entries/002.p/88")
        resources["/log/tile/0/002"] = larger["/log/tile/0/002"]
        resources["/log/tile/entries/002"] = larger["/log/tile/entries/002"]
        status, _, err = self.tiles(resources)
        self.assertEqual(status, 0, err)
        resources.pop("/log/tile/0/001")
        status, _, err = self.tiles(resources)
        self.assertEqual(status, 1, err)
        self.assertIn("/log/tile/0/001 is not served", err)
        status, _, err = self.tiles({})
        self.assertEqual(status, 2, err)  # no checkpoint at all: nothing to check
        status, _, err = run_main("tiles", "--vkey", LOG_KEY.vkey(), "http://127.0.0.1:9/log")
        self.assertEqual(status, 2, err)

    def test_export_hashes_are_the_entries(self):
        with tempfile.TemporaryDirectory() as d:
            export = os.path.join(d, "export.ndjson")
            with open(export, "w") as f:
                f.write(json.dumps({"format": "citydb-export", "hash_format": 1}) + "\n")
                f.writelines(export_line(i) for i in range(610))
            status, out, err = self.tiles(tiles_of(600), "--export", export)
            self.assertEqual(status, 0, err)
            self.assertIn("export: the event hashes at positions 0 to 599 are the entries", out)
            with open(export, "w") as f:
                f.writelines(export_line(i) for i in range(599))
            status, _, err = self.tiles(tiles_of(600), "--export", export)
            self.assertEqual(status, 1, err)
            self.assertIn("no event at position 599", err)
            with open(export, "w") as f:
                f.writelines(export_line(i if i != 300 else 301) for i in range(600))
            status, _, err = self.tiles(tiles_of(600), "--export", export)
            self.assertEqual(status, 1, err)

    def test_consistency_url(self):
        with tempfile.TemporaryDirectory() as d:
            old = os.path.join(d, "old")
            for m in (0, 1, 255, 256, 300, 600):
                with open(old, "w") as f:
                    f.write(signed_checkpoint(m))
                self.server.resources.clear()
                self.server.resources.update(tiles_of(600))
                status, out, err = run_main("consistency-url", "--vkey", LOG_KEY.vkey(), "--old", old, self.server.prefix)
                self.assertEqual(status, 0, (m, err))
            # A saved checkpoint of another history (its root is of other entries).
            text = f"{ORIGIN}\n300\n{base64.b64encode(mth(1, 301)).decode()}\n"
            with open(old, "w") as f:
                f.write(text + "\n" + sign(text))
            status, _, err = run_main("consistency-url", "--vkey", LOG_KEY.vkey(), "--old", old, self.server.prefix)
            self.assertEqual(status, 1, err)
            self.assertIn("do not have the saved checkpoint's root", err)
            with open(old, "w") as f:
                f.write(signed_checkpoint(601))
            status, _, err = run_main("consistency-url", "--vkey", LOG_KEY.vkey(), "--old", old, self.server.prefix)
            self.assertEqual(status, 1, err)


# --- A real citydb, when one is given -----------------------------------------------------------


@unittest.skipUnless(os.environ.get("CITYDB_BIN"), "CITYDB_BIN (a citydb binary) is not set")
class DemoServerTest(unittest.TestCase):
    """A citydb binary checked as docs/audit-format.md says: `serve --demo`'s checkpoints,
    tiles and export, a `citydb prove` receipt, GraphQL proofs, a checkpoint saved earlier
    and one saved before a restart; and `citydb verify --proof` on this suite's receipts."""

    def setUp(self):
        self.bin = os.environ["CITYDB_BIN"]
        self.dir = tempfile.mkdtemp()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url, self.server = f"http://127.0.0.1:{port}", None

    def start(self):
        # Its log goes to a file: a pipe nobody reads would fill up and stall the server.
        self.log = os.path.join(self.dir, f"serve-{time.monotonic_ns()}.log")
        with open(self.log, "wb") as log:
            self.server = subprocess.Popen(
                [self.bin, "serve", "--demo", "--data", self.dir, "--listen",
                 self.url[len("http://") :], "--checkpoint-interval", "1"],
                stdout=subprocess.DEVNULL, stderr=log)

    def stop(self):
        self.server.terminate()
        self.server.wait()

    def tearDown(self):
        if self.server is not None:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def get(self, path, body=None, token=None):
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"} if body else {}
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def settled_checkpoint(self):
        """The checkpoint once the demo data is in (its size unchanged for 3 s)."""
        last, same = None, 0
        for _ in range(600):
            try:
                note = self.get("/log/checkpoint")
            except (OSError, urllib.error.HTTPError):
                note = None
            size = note.split(b"\n")[1] if note else None
            same = same + 1 if size == last and size not in (None, b"0") else 0
            if same >= 6:
                return note
            if self.server.poll() is not None:
                with open(self.log, errors="replace") as log:
                    self.fail(f"citydb serve exited: {log.read()[-2000:]}")
            last = size
            time.sleep(0.5)
        self.fail("the demo's checkpoint never settled")

    def check(self, *argv, status=0):
        out = subprocess.run([sys.executable, os.path.join(HERE, "verify_tlog.py"), *argv],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, status, (argv, out.stdout, out.stderr))
        return out.stdout

    def test_citydb_verify_accepts_the_documented_receipts(self):
        """The Rust verifier against this suite's vectors (docs/audit-format.md): both test
        vkeys hold a '+' in their base64, as about half of all vkeys do."""
        for witnesses, vkeys in ((0, [LOG_KEY]), (1, [LOG_KEY, WITNESS_KEY])):
            file = os.path.join(self.dir, f"receipt-{witnesses}.tlog-proof")
            for text, status in ((receipt(2, 7, witnesses), 0),
                                 (receipt(2, 7, witnesses).replace("index 2", "index 3"), 2)):
                with open(file, "w") as f:
                    f.write(text)
                args = [a for k in vkeys for a in ("--vkey", k.vkey())]
                out = subprocess.run([self.bin, "verify", "--proof", file, *args],
                                     capture_output=True, text=True)
                self.assertEqual(out.returncode, status, (witnesses, out.stdout, out.stderr))

    def test_the_demo(self):
        self.start()
        early = None
        for _ in range(600):  # a checkpoint taken while the demo data is still loading
            try:
                early = self.get("/log/checkpoint")
                break
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.5)
        note = self.settled_checkpoint()
        size = int(note.split(b"\n")[1])
        with open(os.path.join(self.dir, "demo-vkey.txt")) as f:
            vkey_ = f.read().strip()
        with open(os.path.join(self.dir, "demo-access-log-vkey.txt")) as f:
            access_vkey = f.read().strip()
        saved = os.path.join(self.dir, "early-checkpoint")
        with open(saved, "wb") as f:
            f.write(early)
        self.check("checkpoint", "--vkey", vkey_, saved)
        export = os.path.join(self.dir, "export.ndjson")
        subprocess.run([self.bin, "export", "--data", self.dir, "--out", export], check=True,
                       capture_output=True)
        out = self.check("tiles", "--vkey", vkey_, self.url + "/log", "--export", export)
        self.assertIn(f"tiles: {size} entries checked", out)
        self.check("consistency-url", "--vkey", vkey_, "--old", saved, self.url + "/log")
        self.check("tiles", "--vkey", access_vkey, self.url + "/access-log")
        self.check("tiles", "--vkey", access_vkey, self.url + "/log", status=1)  # another origin
        with open(export, "rb") as f:
            hashes = [json.loads(line)["hash"] for line in f if b'"position"' in line]
        position = size // 2
        receipt_ = os.path.join(self.dir, "receipt.tlog-proof")
        with open(receipt_, "wb") as f:
            f.write(subprocess.run([self.bin, "prove", "--data", self.dir, "--position", str(position)],
                                   check=True, capture_output=True).stdout)
        self.check("proof", "--vkey", vkey_, "--entry", hashes[position], receipt_)
        self.check("proof", "--vkey", vkey_, "--entry", hashes[position + 1], receipt_, status=1)
        with open(os.path.join(self.dir, "demo-tokens.json")) as f:
            token = json.load(f)["auditor"]
        query = ("{ inclusionProof(position: %d, treeSize: %d) { position treeSize entry hashes rootHash }"
                 " consistencyProof(from: 1, to: %d) { fromSize toSize fromRoot toRoot hashes } }"
                 % (position, size, size))
        answer = json.loads(self.get("/graphql", json.dumps({"query": query}).encode(), token))["data"]
        i, c = answer["inclusionProof"], answer["consistencyProof"]
        self.assertEqual(i["entry"], hashes[position])
        self.check("inclusion", "--entry", i["entry"], "--index", str(i["position"]), "--size",
                   str(i["treeSize"]), "--root", i["rootHash"], *i["hashes"])
        self.check("consistency", "--old-size", str(c["fromSize"]), "--old-root", c["fromRoot"],
                   "--size", str(c["toSize"]), "--root", c["toRoot"], *c["hashes"])
        self.assertEqual(c["toRoot"], note.split(b"\n")[2].decode())
        # Restarted on the same data directory (and demo key), the node publishes a log that
        # extends the checkpoint it signed before.
        latest = os.path.join(self.dir, "latest-checkpoint")
        with open(latest, "wb") as f:
            f.write(note)
        self.stop()
        self.start()
        restarted = self.settled_checkpoint()
        self.check("consistency-url", "--vkey", vkey_, "--old", latest, self.url + "/log")
        self.assertGreaterEqual(int(restarted.split(b"\n")[1]), size)


# --- docs/audit-format.md's test vectors ------------------------------------------------------


def vectors():
    """The vectors as the doc prints them: computed by the reference above."""

    def lines(rows):
        return "".join(f"{label:<18} {value}\n" for label, value in rows)

    tree = [("entry(0)", ENTRIES[0].hex()), ("leaf_hash(0)", mth(0, 1).hex())]
    tree += [(f"root({n})", mth(0, n).hex()) for n in (0, 1, 2, 3, 7, 8)]
    for m, n in ((5, 8), (2, 7)):
        tree += [(f"inclusion({m}, {n})", h.hex()) for h in path(m, 0, n)]
    for m, n in ((3, 7), (4, 8)):
        tree += [(f"consistency({m}, {n})", h.hex()) for h in consistency_proof(m, n)]
    keys = [
        ("log seed", LOG_SEED.hex()),
        ("log public key", public(LOG_SEED).hex()),
        ("log key ID", kid(ORIGIN, 0x01, LOG_SEED).hex()),
        ("log vkey", vkey(ORIGIN, 0x01, LOG_SEED)),
        ("witness seed", WITNESS_SEED.hex()),
        ("witness public key", public(WITNESS_SEED).hex()),
        ("witness key ID", kid(WITNESS, 0x04, WITNESS_SEED).hex()),
        ("witness vkey", vkey(WITNESS, 0x04, WITNESS_SEED)),
    ]
    return [lines(tree), lines(keys), signed_checkpoint(7), signed_checkpoint(7, 1), receipt(2, 7)]


def documented_vectors():
    """The fenced blocks of the doc's "Test vectors" section of the Merkle tree part, in order."""
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    start = doc.index("### Merkle tree test vectors")
    section = doc[start : doc.index("\n## ", start)]
    return re.findall(r"```text\n(.*?)```", section, re.S)


class DocumentedVectorsTest(unittest.TestCase):
    def test_the_doc_prints_the_computed_vectors(self):
        self.assertEqual(documented_vectors(), vectors())

    def test_the_docs_python_proof_checks_agree_with_the_reference(self):
        """The doc's own inclusion_ok / consistency_ok, run: a reader may copy them."""
        with open(DOC, encoding="utf-8") as f:
            doc = f.read()
        code = re.search(r"```python\n(.*?)```", doc[doc.index("### Proofs") :], re.S).group(1)
        scope = {}
        exec(code, scope)
        inclusion_ok, consistency_ok = scope["inclusion_ok"], scope["consistency_ok"]
        for n in range(0, 40):
            for m in range(0, n + 1):
                if m < n:
                    proof = path(m, 0, n)
                    self.assertTrue(inclusion_ok(ENTRIES[m], m, n, proof, mth(0, n)), (m, n))
                    self.assertFalse(inclusion_ok(ENTRIES[m], m + 1, n, proof, mth(0, n)), (m, n))
                    self.assertFalse(inclusion_ok(ENTRIES[m + 1], m, n, proof, mth(0, n)), (m, n))
                proof = consistency_proof(m, n)
                self.assertTrue(consistency_ok(m, mth(0, m), n, mth(0, n), proof), (m, n))
                if m > 0:
                    self.assertFalse(consistency_ok(m, mth(0, m), n, mth(1, n + 1), proof), (m, n))
                    self.assertFalse(consistency_ok(m, mth(1, m + 1), n, mth(0, n), proof), (m, n))

    def test_the_verifier_accepts_the_documented_vectors(self):
        """The second way: the doc's values, read back and checked by the verifier's own code."""
        tree, keys, checkpoint, cosigned, proof = documented_vectors()
        values = {}
        for line in tree.splitlines():
            label, value = line.rsplit(" ", 1)
            values.setdefault(label.strip(), []).append(bytes.fromhex(value))
        entry = lambda i: hashlib.sha256(str(i).encode()).digest()  # noqa: E731
        grown, roots = v.GrowingTree(), {0: v.EMPTY_ROOT}
        for i in range(8):
            grown.append(v.leaf_hash(entry(i)))
            roots[i + 1] = grown.root()
        for n in (0, 1, 2, 3, 7, 8):
            self.assertEqual(values[f"root({n})"], [roots[n]])
        v.verify_inclusion(entry(5), 5, 8, values["inclusion(5, 8)"], roots[8])
        v.verify_inclusion(entry(2), 2, 7, values["inclusion(2, 7)"], roots[7])
        v.verify_consistency(3, roots[3], 7, roots[7], values["consistency(3, 7)"])
        v.verify_consistency(4, roots[4], 8, roots[8], values["consistency(4, 8)"])
        keyed = dict(line.rsplit(" ", 1) for line in keys.splitlines())
        keyed = {k.strip(): val for k, val in keyed.items()}
        log_key = v.parse_vkey(keyed["log vkey"], v.ED25519)
        witness = v.parse_vkey(keyed["witness vkey"], v.COSIGNATURE)
        self.assertEqual(log_key.id.hex(), keyed["log key ID"])
        self.assertEqual(log_key.public.hex(), keyed["log public key"])
        cp = v.verify_checkpoint(checkpoint.encode(), log_key)
        self.assertEqual((cp.origin, cp.size, [cp.root]), (ORIGIN, 7, values["root(7)"]))
        cp = v.verify_checkpoint(cosigned.encode(), log_key, [witness], 1)
        self.assertEqual(cp.cosignatures[0][1], COSIGNED_AT)
        cp, index, leaf = v.verify_receipt(proof.encode(), log_key, (), entry(2))
        self.assertEqual((cp.size, index), (7, 2))


if __name__ == "__main__":
    if sys.argv[1:] == ["vectors"]:
        for block in vectors():
            print("```text\n" + block + "```\n")
        sys.exit(0)
    unittest.main()
