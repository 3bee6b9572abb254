#!/usr/bin/env python3
"""Verify a citydb export file independently of citydb.

Implements docs/audit-format.md ("Verifying a log" and "Export format") with nothing but the
Python standard library and the `blake3` package (pip install blake3). Reads both export
flavours (`ndjson` and `cloudevents`), one event per line, in position order.

Usage:
    python3 tools/verify_export.py EXPORT [--expected-head POSITION:HASH]

Exit status: 0 intact, 2 broken (prints the first bad position and the breach), 1 could not
run (unreadable file, missing blake3).
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
ZERO = bytes(32)


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


def verify(lines, expected_head=None):
    """Returns (events, streams, head) or raises Broken at the first breach."""
    expected_position = 0
    prev_hash, prev_time = ZERO, None
    streams = {}  # stream_id -> (next version, last hash)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ev = parse(line)
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
            raise Broken(f"line {number}", f"cannot be decoded: {e}")
        pos = ev["position"]
        if pos != expected_position:
            raise Broken(f"position {expected_position}", f"position_gap (found {pos})")
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
    try:
        with open(args.export, "rb") as f:
            events, streams, head = verify(f, expected)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Broken as b:
        print(f"BROKEN at {b.where}: {b.breach}")
        return 2
    print(f"intact: {events} events in {streams} streams")
    if head:
        print(f"head: position {head[0]} hash {head[1].hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
