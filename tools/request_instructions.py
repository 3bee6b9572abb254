#!/usr/bin/env python3
"""Instructions the server executes per GraphQL request, counted by valgrind's callgrind.

HTTP throughput on a shared VM moves by tens of percent within minutes; an instruction count
moves far less. Runs of one binary agreed within ~0.5 % until 2026-12-07; since the access
log's writer and its checkpoint thread do work that depends on timing (a group's merge chunk,
a checkpoint's pages), four runs of one binary spread 3.7 % in their totals. Compare a change
by the inclusive cost of the functions it touches (`--keep DIR`, then `callgrind_annotate
--inclusive=yes`), not by the totals alone. The server runs under callgrind with
instrumentation off until it is ready and its background integrity check is done, takes a
warm-up, then counts N requests sent one after another on one keep-alive connection. User-space
instructions only: the kernel's share (sockets, fdatasync) is not counted, and valgrind's CPU
hides SHA-NI and AVX-512. Used in docs/benchmarks.md ("Validation kept, and one extension for
the schema's hooks").

    tools/request_instructions.py --citydb target/release/citydb --data DIR \
        --fixture DIR/fixture.ndjson --op a --requests 500

DIR is a store imported from the fixture (`citydb fixtures`, `citydb import`). The tool makes
its own service principal (`citydb token`) in a temporary config. Each run appends to DIR's
access log, which changes what the next run's appends cost (a citizen read before is already
in the log's dictionary): the tool copies `access-log.db` aside before the server starts and
puts it back after it stops, so that runs in any order start from the same log.
"""

import argparse
import glob
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "graphql", "examples")
NAMES = ["nguyen van h", "tran thi m", "le van t", "pham thi h", "hoang van n", "vu thi l"]


def principal(citydb, work):
    out = subprocess.run(
        [citydb, "token", "--id", "instructions", "--role", "service"],
        capture_output=True, text=True, check=True,
    ).stdout
    token = re.search(r"^# (cdb_\S+)", out, re.M).group(1)
    entry = "\n".join(l for l in out.splitlines() if not l.startswith("#"))
    config = os.path.join(work, "principals.toml")
    with open(config, "w") as f:
        f.write(entry.strip() + "\n")
        f.write('field_groups = ["identity", "residence", "family", "business", "land"]\n')
        f.write('purposes = ["one-stop-shop"]\n')
    return token, config


def pins(fixture, n=300):
    found = []
    with open(fixture) as f:
        for line in f:
            m = re.search(r'"pin":"(\d+)"', line)
            if m:
                found.append(m.group(1))
                if len(found) >= n:
                    break
    return found


def keys_of(fixture, command, field, n=300):
    """The `field` of the first n `command` lines of the fixture (parcel keys, enterprise codes)."""
    found = []
    pattern = re.compile(r'"%s":"([^"]+)"' % field)
    with open(fixture) as f:
        for line in f:
            if f'"{command}"' not in line:
                continue
            m = pattern.search(line)
            if m:
                found.append(m.group(1))
                if len(found) >= n:
                    break
    return found


def fold(text):
    """citydb_domain::folded_key for Vietnamese names: diacritics dropped, `đ` to d, lowercase."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(text.lower().split())


def drawn_names(fixture, n=300, seed=2025):
    """"family middle g" of n citizens of the fixture drawn at random, as the scale bench's (b1)
    draws its queries: about one in five at 1/10 of the city has a prefix range too small to
    fill a page, so the page goes on to the names holding the words anywhere."""
    queries = []
    with open(fixture) as f:
        for line in f:
            if '"RegisterCitizen"' not in line:
                continue
            name = json.loads(line)["command"]["name"]
            family_middle = fold(" ".join(w for w in (name["family"], name.get("middle")) if w))
            given = fold(name["given"])
            if family_middle and given:
                queries.append(f"{family_middle} {given[0]}")
    return random.Random(seed).sample(queries, min(n, len(queries)))


def bench_query(name):
    """A query the scale bench sends, read from its source so that the two cannot drift apart:
    (c′) and (d′), a parcel's holders' and a business's representatives' ids only."""
    source = open(os.path.join(ROOT, "benches", "scale", "ops.rs")).read()
    found = re.search(r'const ' + name + r': &str = r#"(.*?)"#;', source, re.S)
    if found is None:
        sys.exit(f"benches/scale/ops.rs has no {name}")
    return found.group(1)


def drive(port, token, op, count, keys):
    by_pin = open(os.path.join(EXAMPLES, "01-service-citizen-by-pin.graphql")).read()
    search = open(os.path.join(EXAMPLES, "13-service-search-name-prefix.graphql")).read()
    parcel_ids = bench_query("PARCEL_NO_PERSONAL")
    business_ids = bench_query("BUSINESS_NO_PERSONAL")
    parcel = open(os.path.join(EXAMPLES, "03-service-parcel-with-holders.graphql")).read()
    business = open(os.path.join(EXAMPLES, "04-service-business-with-representatives.graphql")).read()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {
        "Authorization": "Bearer " + token,
        "X-Road-UserId": "officer-7",
        "X-Road-Issue": "HS-2026-0042",
        "X-Purpose": "one-stop-shop",
        "Content-Type": "application/json",
    }
    for i in range(count):
        if op == "a":
            body = {"query": by_pin, "variables": {"pin": keys[i % len(keys)]}}
        elif op == "c":
            body = {"query": parcel, "variables": {"key": keys[i % len(keys)]}}
        elif op == "c-ids":
            body = {"query": parcel_ids, "variables": {"key": keys[i % len(keys)]}}
        elif op == "d-ids":
            body = {"query": business_ids, "variables": {"code": keys[i % len(keys)]}}
        elif op == "d":
            body = {"query": business, "variables": {"code": keys[i % len(keys)]}}
        elif op == "b1":
            body = {"query": search, "variables": {"search": NAMES[i % len(NAMES)], "first": 20}}
        else:  # b1-drawn
            body = {"query": search, "variables": {"search": keys[i % len(keys)], "first": 20}}
        conn.request("POST", "/graphql", json.dumps(body), headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        if response.status != 200 or answer.get("errors") or not answer.get("data"):
            sys.exit(f"request {i} failed: {answer}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--citydb", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--fixture", required=True)
    p.add_argument("--op", choices=["a", "b1", "b1-drawn", "c", "d", "c-ids", "d-ids"], default="a",
                   help="a: citizen by PIN (example 01); c: parcel with holders (example 03, the "
                        "fixture's first parcel keys); d: business with representatives (example 04, "
                        "its first enterprise codes); b1: name prefix search, first 20 (example 13), "
                        "six common names; b1-drawn: the same with the queries drawn from the fixture "
                        "as the scale bench's (b1) draws them")
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--keys", type=int, default=300,
                   help="a, c, d: how many distinct keys the requests cycle through (the first 30 are "
                        "read before counting starts, so --keys 30 counts only repeated reads)")
    p.add_argument("--keep", metavar="DIR",
                   help="copy the callgrind files here, for callgrind_annotate --inclusive=yes")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        token, config = principal(args.citydb, work)
        access_log = os.path.join(args.data, "access-log.db")
        kept_log = os.path.join(work, "access-log.db")
        if os.path.exists(access_log + "-wal") and os.path.getsize(access_log + "-wal") > 0:
            sys.exit(f"{access_log}-wal is not empty: stop the server that holds it first")
        # A store fresh from `citydb import` has no access log yet: the run's is removed after.
        had_log = os.path.exists(access_log)
        if had_log:
            shutil.copyfile(access_log, kept_log)
        port = free_port()
        log = open(os.path.join(work, "serve.log"), "w+")
        out = os.path.join(work, "callgrind.out.%p")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             args.citydb, "serve", "--data", args.data, "--listen", f"127.0.0.1:{port}",
             "--config", config, "--log", "info,citydb_api::node=debug"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.time() + 900
            while "b-trees are sound" not in open(log.name).read():
                if time.time() > deadline or server.poll() is not None:
                    sys.exit("the server did not finish its integrity check")
                time.sleep(1)
            if args.op == "b1-drawn":
                keys = drawn_names(args.fixture, args.keys)
            elif args.op in ("c", "c-ids"):
                keys = keys_of(args.fixture, "RegisterParcel", "key", args.keys)
            elif args.op in ("d", "d-ids"):
                keys = keys_of(args.fixture, "RegisterBusiness", "code", args.keys)
            else:
                keys = pins(args.fixture, args.keys)
            drive(port, token, args.op, 30, keys)
            subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], capture_output=True, check=True)
            drive(port, token, args.op, args.requests, keys)
            subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], capture_output=True, check=True)
            subprocess.run(["callgrind_control", "-d", str(server.pid)], capture_output=True, check=True)
        finally:
            server.terminate()
            server.wait(timeout=120)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(access_log + suffix):
                    os.remove(access_log + suffix)
            if had_log:
                shutil.copyfile(kept_log, access_log)
            elif os.path.exists(access_log):
                os.remove(access_log)
        total = 0
        for path in glob.glob(os.path.join(work, "callgrind.out.*")):
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                shutil.copy(path, args.keep)
            for line in open(path):
                if line.startswith("totals:"):
                    total += int(line.split()[1])
        print(f"{args.op}: {total} instructions for {args.requests} requests, "
              f"{total // args.requests} a request")


if __name__ == "__main__":
    main()
