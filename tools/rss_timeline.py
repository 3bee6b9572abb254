#!/usr/bin/env python3
"""A process's resident size over time, and its transients.

`/usr/bin/time -v` gives a run's peak resident size, not when it happened nor whether it was
the steady size or a short spike above it. This runs a command, reads its VmRSS from
/proc/<pid>/status every INTERVAL seconds (no fork per sample: a sampler that forks disturbs
the run it measures), writes "seconds kilobytes" lines to OUT (VmRSS, then RssAnon and RssFile:
the heap and the files mapped, which VmRSS adds up), and prints the peaks, the size every tenth
of the run, and every rise of at least JUMP MB within WINDOW seconds that falls
back by half of it within another WINDOW. Used in docs/benchmarks.md ("Two tries at the whole
city's tail and peak", "The log's index build through a mapping").

    tools/rss_timeline.py --out rss.txt -- citydb import --data d --progress plain city.ndjson
"""

import argparse
import subprocess
import sys
import time


def rss_kb(pid):
    """The process's (VmRSS, RssAnon, RssFile) in KB, or None once it is gone. A file SQLite
    maps counts in VmRSS while its pages are mapped and cached, though the kernel may drop them
    at any time: RssAnon is what the process itself holds."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key = line.split(":")[0]
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    found[key] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    if "VmRSS" not in found:
        return None
    return found["VmRSS"], found.get("RssAnon", 0), found.get("RssFile", 0)


def transients(samples, jump_kb, window):
    """Rises of at least `jump_kb` within `window` seconds that fall back by half of it within
    another `window`: (start, top time, base KB, top KB)."""
    found = []
    i = 0
    while i < len(samples):
        t0, base = samples[i]
        top_i = None
        j = i + 1
        while j < len(samples) and samples[j][0] - t0 <= window:
            if samples[j][1] - base >= jump_kb and (top_i is None or samples[j][1] > samples[top_i][1]):
                top_i = j
            j += 1
        if top_i is None:
            i += 1
            continue
        t_top, top = samples[top_i]
        k = top_i + 1
        fell = False
        while k < len(samples) and samples[k][0] - t_top <= window:
            if top - samples[k][1] >= (top - base) / 2:
                fell = True
                break
            k += 1
        if fell:
            found.append((t0, t_top, base, top))
            i = k
        else:
            i = top_i + 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where the samples go")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--jump", type=float, default=200.0, help="MB that count as a transient")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of a rise or a fall")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    start = time.monotonic()
    child = subprocess.Popen(command)
    samples, anon, mapped = [], [], []
    with open(args.out, "w") as out:
        while child.poll() is None:
            sizes = rss_kb(child.pid)
            if sizes is not None:
                t = time.monotonic() - start
                samples.append((t, sizes[0]))
                anon.append(sizes[1])
                mapped.append(sizes[2])
                out.write(f"{t:.1f} {sizes[0]} {sizes[1]} {sizes[2]}\n")
            time.sleep(args.interval)
    code = child.returncode
    if not samples:
        print("no sample taken (the command ended first)", file=sys.stderr)
        return code or 1

    t_peak, peak = max(samples, key=lambda s: s[1])
    end = samples[-1][0]
    print(
        f"{len(samples)} samples over {end:.0f} s; peak {peak / 1e6:.2f} GB at {t_peak:.0f} s "
        f"(peak RssAnon {max(anon) / 1e6:.2f} GB, peak RssFile {max(mapped) / 1e6:.2f} GB)",
        file=sys.stderr,
    )
    tenths = " ".join(
        f"{t:.0f}s:{kb / 1e6:.2f}"
        for t, kb in (samples[min(len(samples) - 1, round(i * (len(samples) - 1) / 10))] for i in range(11))
    )
    print(f"GB over time: {tenths}", file=sys.stderr)
    for t0, t_top, base, top in transients(samples, args.jump * 1000, args.window):
        print(
            f"transient at {t0:.0f}-{t_top:.0f} s: {base / 1e6:.2f} -> {top / 1e6:.2f} GB",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
