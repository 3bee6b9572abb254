#!/usr/bin/env python3
"""Verifies a citydb access log file (access-log.db) offline: its v1 events, its v2 entries
(which continue the v1 chain) and the tables derived from them. Written from
docs/audit-format.md only; Python standard library + blake3 (pip install blake3).

    tools/verify_access_log.py citydb-data/access-log.db [--expected-head POSITION:HASH]

Prints `intact: N entries; head POSITION HASH` (and the redacted v1 events) and exits 0, or
`BROKEN at position N: CODE (…)` and exits 2, with the breach codes of docs/audit-format.md:
a breach names the position of the event or entry whose check failed (for position_gap, the
position found).
"""
import sqlite3
import struct
import sys

from blake3 import blake3

V1_CONTEXT = "citydb 2026-11 event log v1 event hash"
V2_CONTEXT = "citydb 2026-11 access log v2 entry hash"
MAX_STRING = 1024
ZERO = b"\0" * 32


class Broken(Exception):
    def __init__(self, position, why):
        super().__init__(f"BROKEN at position {position}: {why}")


def lp(b):
    return struct.pack(">I", len(b)) + b


def varint(body, i):
    value, shift = 0, 0
    while shift < 64:
        if i >= len(body):
            raise ValueError("truncated")
        byte = body[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7
    raise ValueError("a varint longer than 10 bytes")


def take(body, i, n):
    if i + n > len(body):
        raise ValueError("truncated")
    return body[i:i + n], i + n


def decode(body):
    """A v2 body: (recorded_at, new strings, new citizens, string numbers used, reads)."""
    fmt, i = take(body, 0, 1)
    if fmt != b"\x02":
        raise ValueError(f"unknown body format {fmt.hex()}")
    ts, i = take(body, i, 8)
    _correlation_id, i = take(body, i, 16)
    n, i = varint(body, i)
    strings = []
    for _ in range(n):
        length, i = varint(body, i)
        if length > MAX_STRING:
            raise ValueError("a string too long")
        s, i = take(body, i, length)
        strings.append(s.decode("utf-8"))
    n, i = varint(body, i)
    citizens = []
    for _ in range(n):
        c, i = take(body, i, 16)
        citizens.append(c)
    used = []
    for optional in (False, False, True, True, True, False):  # principal role end_user case purpose operation
        v, i = varint(body, i)
        if optional:
            if v:
                used.append(v - 1)
        else:
            used.append(v)
    n, i = varint(body, i)
    if n == 0:
        raise ValueError("an entry without reads")
    reads = []
    for _ in range(n):
        c, i = varint(body, i)
        g, i = varint(body, i)
        reads.append((c, g))
    if i != len(body):
        raise ValueError("bytes after the end")
    if len({c for c, _ in reads}) != len(reads):
        raise ValueError("a citizen read twice")
    return struct.unpack(">q", ts)[0], strings, citizens, used, reads


def verify(path, expected_head=None, redacted=None):
    """(entries, (head position, head hash)), or raises Broken. Appends the positions of
    redacted v1 events (data NULL: intact, yet the data is gone) to `redacted`."""
    redacted = [] if redacted is None else redacted
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    hashes = {}  # position -> hash, kept only for the expected head
    prev, last_ts, next_pos, streams = ZERO, None, 0, {}
    # v1: one event per citizen read (the event log format).
    for (pos, sid, ver, eid, etype, schema, ts, data, meta, dh, pst, plg, h) in db.execute(
            "SELECT position, stream_id, stream_version, event_id, event_type, schema_version,"
            " recorded_at, data, metadata, data_hash, prev_stream_hash, prev_log_hash, hash"
            " FROM events ORDER BY position"):
        if pos != next_pos:
            raise Broken(pos, f"position_gap (expected {next_pos})")
        if data is not None and blake3(data.encode()).digest() != dh:
            raise Broken(pos, "data_changed")
        enc = (b"\x01" + struct.pack(">Q", pos) + lp(sid.encode()) + struct.pack(">Q", ver)
               + eid + lp(etype.encode()) + struct.pack(">Iq", schema, ts) + lp(meta.encode())
               + dh + pst + plg)
        if blake3(enc, derive_key_context=V1_CONTEXT).digest() != h:
            raise Broken(pos, "hash_mismatch")
        if plg != prev:
            raise Broken(pos, "log_link_broken")
        if last_ts is not None and ts < last_ts:
            raise Broken(pos, "time_went_backwards")
        nv, last = streams.get(sid, (0, ZERO))
        if ver != nv:
            raise Broken(pos, f"stream_version_gap (stream {sid} expected version {nv})")
        if pst != last:
            raise Broken(pos, "stream_link_broken")
        if data is None:
            redacted.append(pos)
        streams[sid] = (nv + 1, h)
        prev, last_ts, next_pos = h, ts, pos + 1
        if expected_head is not None and pos == expected_head[0]:
            hashes[pos] = h
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    entries = next_pos
    if "access_entries" in tables:
        strings, citizens, ordinals = set(), set(), {}
        want_strings, want_citizens, want_index = set(), set(), set()
        # v2: one entry per request, chained on from the v1 head.
        for (seq, body, h) in db.execute(
                "SELECT seq, body, hash FROM access_entries ORDER BY seq"):
            if seq != next_pos:
                raise Broken(seq, f"position_gap (expected {next_pos})")
            enc = b"\x02" + struct.pack(">Q", seq) + prev + lp(body)
            if blake3(enc, derive_key_context=V2_CONTEXT).digest() != h:
                raise Broken(seq, "hash_mismatch")
            try:
                ts, new_strings, new_citizens, used, reads = decode(body)
            except (ValueError, UnicodeDecodeError) as e:
                raise Broken(seq, f"data_changed ({e})")
            if last_ts is not None and ts < last_ts:
                raise Broken(seq, "time_went_backwards")
            for s in new_strings:
                if s in strings:
                    raise Broken(seq, f"data_changed (string {s!r} defined again)")
                want_strings.add((len(strings), s))
                strings.add(s)
            for c in new_citizens:
                if c in citizens:
                    raise Broken(seq, "data_changed (a citizen defined again)")
                want_citizens.add((len(citizens), c))
                citizens.add(c)
            if any(n >= len(strings) for n in used + [g for _, g in reads]):
                raise Broken(seq, "data_changed (an undefined string)")
            for c, _ in reads:
                if c >= len(citizens):
                    raise Broken(seq, "data_changed (an undefined citizen)")
                ordinal = ordinals.get(c, 0)
                want_index.add((c, ordinal, seq))
                ordinals[c] = ordinal + 1
            prev, last_ts, next_pos = h, ts, seq + 1
            if expected_head is not None and seq == expected_head[0]:
                hashes[seq] = h
        entries = next_pos
        # The index by citizen holds the rows that `access_index_state` says it holds (the
        # others, the tail, are kept in memory by the writer and merged later); a file from
        # before that table holds them all.
        state = db.execute("SELECT below, round_below, round_citizen FROM access_index_state"
                           ).fetchone() if "access_index_state" in tables else None
        below, round_below, round_citizen = state or (next_pos, next_pos, 0)
        want_index = {(c, k, seq) for (c, k, seq) in want_index
                      if seq < below or (seq < round_below and c < round_citizen)}
        # The derived tables must hold exactly what the chain defines.
        for table, query, want in (
                ("access_strings", "SELECT number, value FROM access_strings", want_strings),
                ("access_citizens", "SELECT number, citizen FROM access_citizens", want_citizens),
                ("access_by_citizen", "SELECT citizen, ordinal, seq FROM access_by_citizen",
                 want_index)):
            rows = [tuple(r) for r in db.execute(query)]
            if len(rows) != len(want) or set(rows) != want:
                raise Broken(next_pos - 1, f"derived_table_mismatch ({table})")
    if expected_head is not None:
        position, wanted = expected_head
        if position >= next_pos:
            raise Broken(position, "truncated")
        if hashes.get(position) != wanted:
            raise Broken(position, "head_rewritten")
    return entries, (next_pos - 1, prev)


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--expected-head"):
        print(__doc__, file=sys.stderr)
        return 64
    expected = None
    if len(argv) == 4:
        position, hash_hex = argv[3].split(":")
        expected = (int(position), bytes.fromhex(hash_hex))
    redacted = []
    try:
        entries, (position, head) = verify(argv[1], expected, redacted)
    except Broken as e:
        print(e)
        return 2
    except sqlite3.Error as e:
        print(f"error: cannot read {argv[1]}: {e}", file=sys.stderr)
        return 1
    if entries == 0:
        print("intact: 0 entries (empty)")
    else:
        print(f"intact: {entries} entries; head {position} {head.hex()}")
    if redacted:
        listed = ", ".join(str(p) for p in redacted[:20])
        more = f" and {len(redacted) - 20} more" if len(redacted) > 20 else ""
        print(f"redacted: {len(redacted)} events, at positions {listed}{more} "
              "(their data is gone; their digests are still chained)")
    else:
        print("redacted: none")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
