#!/usr/bin/env python3
"""Verify a citydb export file independently of citydb.

Implements docs/audit-format.md ("Verifying a log" and "Export format") with nothing but the
Python standard library and the `blake3` package (pip install blake3). Reads both export
flavours (`ndjson` and `cloudevents`), one event per line, in position order, after the
header line that states the hash format (an export without one is format 1).

Usage:
    python3 tools/verify_export.py EXPORT [--expected-head POSITION:HASH]

Prints `intact: …`, the head and the redacted events, or `BROKEN at position N: CODE (…)`
with the breach codes of docs/audit-format.md (a breach names the position of the event whose
check failed: for position_gap, the position found). Exit status: 0 intact, 2 broken, 1 could
not run (unreadable file, missing blake3, a hash format it does not know).
"""

import argparse
import base64
import json
import struct
import sys
import uuid

try:
    from blake3 import blake3
except ImportError:  # pragma: no cover - reported to the user
    print("error: the blake3 package is missing (pip install blake3)", file=sys.stderr)
    sys.exit(1)

CONTEXT = "citydb 2026-11 event log v1 event hash"
FORMAT_VERSION = 1
HEADER_MARK = "citydb-export"
ZERO = bytes(32)
# Redacted positions printed (all are counted).
REDACTIONS_PRINTED = 20


class UnknownFormat(Exception):
    """The export states a hash format this verifier does not know: refuse, do not guess."""


class Broken(Exception):
    def __init__(self, where, breach):
        super().__init__(f"{where}: {breach}")
        self.where = where
        self.breach = breach


def prefixed(b):
    return struct.pack(">I", len(b)) + b


def event_hash(ev):
    encoding = (
        bytes([FORMAT_VERSION])
        + struct.pack(">Q", ev["position"])
        + prefixed(ev["stream_id"].encode("utf-8"))
        + struct.pack(">Q", ev["stream_version"])
        + uuid.UUID(ev["event_id"]).bytes
        + prefixed(ev["event_type"].encode("utf-8"))
        + struct.pack(">I", ev["schema_version"])
        + struct.pack(">q", ev["recorded_at"])
        + prefixed(ev["metadata"])
        + ev["data_hash"]
        + ev["prev_stream_hash"]
        + ev["prev_log_hash"]
    )
    return blake3(encoding, derive_key_context=CONTEXT).digest()


def hexhash(value, name):
    b = bytes.fromhex(value)
    if len(b) != 32:
        raise ValueError(f"{name} is not 32 bytes")
    return b


def raw_json_value(line, key):
    """The exact bytes of the top-level value of `key` in a JSON object line.

    json.loads would re-serialise the payload; the chain covers the stored bytes, so the
    value's text is cut out of the line itself (the line was parsed once to find it)."""
    decoder = json.JSONDecoder()
    text = line.decode("utf-8")
    i = text.index("{") + 1
    while True:
        while text[i] in " \t\r\n,":
            i += 1
        name, i = decoder.raw_decode(text, i)
        while text[i] in " \t\r\n:":
            i += 1
        start = i
        _, i = decoder.raw_decode(text, i)
        if name == key:
            return text[start:i].encode("utf-8")


def parse(line):
    obj = json.loads(line)
    if "specversion" in obj:
        if obj["specversion"] != "1.0":
            raise ValueError("specversion is not 1.0")
        if obj.get("citydbredacted"):
            data = None
        elif "data_base64" in obj:
            data = base64.b64decode(obj["data_base64"], validate=True)
        else:
            data = raw_json_value(line, "data")
        return {
            "position": int(obj["citydbposition"]),
            "stream_id": obj["subject"],
            "stream_version": int(obj["citydbstreamversion"]),
            "event_id": obj["id"],
            "event_type": obj["type"],
            "schema_version": int(obj["citydbschemaversion"]),
            "recorded_at": int(obj["citydbrecordedat"]),
            "data": data,
            "metadata": obj["citydbmetadata"].encode("utf-8"),
            "data_hash": hexhash(obj["citydbdatahash"], "citydbdatahash"),
            "prev_stream_hash": hexhash(obj["citydbprevstreamhash"], "citydbprevstreamhash"),
            "prev_log_hash": hexhash(obj["citydbprevloghash"], "citydbprevloghash"),
            "hash": hexhash(obj["citydbhash"], "citydbhash"),
        }
    data = obj["data"]
    return {
        "position": obj["position"],
        "stream_id": obj["stream_id"],
        "stream_version": obj["stream_version"],
        "event_id": obj["event_id"],
        "event_type": obj["event_type"],
        "schema_version": obj["schema_version"],
        "recorded_at": obj["recorded_at"],
        # The stored bytes are the string's UTF-8 encoding.
        "data": None if data is None else data.encode("utf-8"),
        "metadata": obj["metadata"].encode("utf-8"),
        "data_hash": hexhash(obj["data_hash"], "data_hash"),
        "prev_stream_hash": hexhash(obj["prev_stream_hash"], "prev_stream_hash"),
        "prev_log_hash": hexhash(obj["prev_log_hash"], "prev_log_hash"),
        "hash": hexhash(obj["hash"], "hash"),
    }


def header_format(line):
    """The hash format a header line states, or None when the line is no header (an event)."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or "header" not in obj:
        return None
    if obj["header"] != HEADER_MARK:
        raise ValueError(f"the header is not {HEADER_MARK!r}")
    version = obj.get("hash_format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError("the header states no hash_format (a whole number)")
    return version


def verify(lines, expected_head=None, redacted=None, fmt=None):
    """Returns (events, streams, head) or raises Broken at the first breach. Appends the
    positions of redacted events (data null: intact, yet the data is gone) to `redacted`, and
    sets fmt["hash_format"], fmt["stated"] from the header."""
    redacted = [] if redacted is None else redacted
    fmt = {} if fmt is None else fmt
    fmt.update(hash_format=FORMAT_VERSION, stated=False)
    expected_position = 0
    prev_hash, prev_time = ZERO, None
    streams = {}  # stream_id -> (next version, last hash)
    first = True
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if first:
            first = False
            try:
                version = header_format(line)
            except ValueError as e:
                raise Broken(f"line {number}", f"undecodable: {e}")
            if version is not None:
                if version != FORMAT_VERSION:
                    raise UnknownFormat(
                        f"the export states hash format {version}; this verifier knows "
                        f"format {FORMAT_VERSION} only")
                fmt.update(hash_format=version, stated=True)
                continue
        try:
            ev = parse(line)
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
            raise Broken(f"line {number}", f"undecodable: {e}")
        pos = ev["position"]
        if pos != expected_position:
            # Named at the position found, as every breach names the event that failed.
            raise Broken(f"position {pos}", f"position_gap (expected {expected_position})")
        if ev["data"] is not None and blake3(ev["data"]).digest() != ev["data_hash"]:
            raise Broken(f"position {pos}", "data_changed")
        if event_hash(ev) != ev["hash"]:
            raise Broken(f"position {pos}", "hash_mismatch")
        if ev["prev_log_hash"] != prev_hash:
            raise Broken(f"position {pos}", "log_link_broken")
        if prev_time is not None and ev["recorded_at"] < prev_time:
            raise Broken(f"position {pos}", "time_went_backwards")
        next_version, last = streams.get(ev["stream_id"], (0, ZERO))
        if ev["stream_version"] != next_version:
            raise Broken(f"position {pos}", "stream_version_gap")
        if ev["prev_stream_hash"] != last:
            raise Broken(f"position {pos}", "stream_link_broken")
        if expected_head and expected_head[0] == pos and expected_head[1] != ev["hash"]:
            raise Broken(f"position {pos}", "head_rewritten")
        if ev["data"] is None:
            redacted.append(pos)
        streams[ev["stream_id"]] = (next_version + 1, ev["hash"])
        prev_hash, prev_time = ev["hash"], ev["recorded_at"]
        expected_position += 1
    if expected_head and expected_position <= expected_head[0]:
        raise Broken(f"position {expected_head[0]}", "truncated")
    head = (expected_position - 1, prev_hash) if expected_position else None
    return expected_position, len(streams), head


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="the export file (ndjson or cloudevents)")
    parser.add_argument("--expected-head", metavar="POSITION:HASH")
    args = parser.parse_args()
    expected = None
    if args.expected_head:
        position, _, digest = args.expected_head.partition(":")
        expected = (int(position), hexhash(digest, "expected head hash"))
    redacted, fmt = [], {}
    try:
        with open(args.export, "rb") as f:
            events, streams, head = verify(f, expected, redacted, fmt)
    except (OSError, UnknownFormat) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Broken as b:
        print(f"BROKEN at {b.where}: {b.breach}")
        print_redacted(redacted, " before the breach")
        return 2
    print(f"intact: {events} events in {streams} streams")
    if head:
        print(f"head: position {head[0]} hash {head[1].hex()}")
    print_redacted(redacted, "")
    stated = "stated in the export's header" if fmt["stated"] else \
        "no header (an export written before citydb stated it)"
    print(f"hash format {fmt['hash_format']}: {stated}")
    return 0


def print_redacted(redacted, before):
    """Redacted events are intact by the chain (their digest stays), and listed all the same."""
    if not redacted:
        print(f"redacted: none{before}")
        return
    listed = ", ".join(str(p) for p in redacted[:REDACTIONS_PRINTED])
    more = len(redacted) - min(len(redacted), REDACTIONS_PRINTED)
    more = f" and {more} more" if more else ""
    print(f"redacted: {len(redacted)} events{before}, at positions {listed}{more} "
          "(their data is gone; their digests are still chained)")


if __name__ == "__main__":
    sys.exit(main())
