#!/usr/bin/env python3
"""Runs two kurir-bench binaries in turn (A B A B ...) with the same arguments
and compares them: per run msgs/s, p50 latency, the relays' CPU seconds per
1,000 messages (sender + receiver) and their peak RSS (sender + receiver);
with `--mode queue`, the sender's RSS with the queue full, its restart time
and its peak RSS while the queue drains. Then each figure's median for both
and the median, min and max of the pairwise ratios B/A. Pairing the runs
keeps a comparison fair when the machine's speed drifts.

    bench/alternate.py A B [--pairs N] [-- KURIR-BENCH-ARGS...]
    bench/alternate.py /tmp/kurir-bench-a1e20af target/release/kurir-bench \\
        --pairs 20 -- -w 128 -m 10000

Default kurir-bench arguments: -w 128 -m 10000. Needs Python 3 only.
"""
import argparse
import json
import statistics
import subprocess
import sys


def run(binary, args):
    """The figures of one run: (name, value) pairs, in print order."""
    out = subprocess.run([binary, *args, "--json"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        record = json.loads(line)
        d = record.get("data")
        if record.get("type") == "run":
            cpu = sum(r["cpu_secs_per_1000"] for r in d["relays"])
            rss = sum(r["memory"]["peak_rss_mib"] for r in d["relays"])
            return [("msgs/s", d["msgs_per_sec"]), ("p50 ms", d["latency_ms"]["p50"]),
                    ("CPU s/1k", cpu), ("peak MiB", rss)]
        if record.get("type") == "queue":
            return [("queued MiB", d["memory_queued"]["rss_mib"]),
                    ("restart s", d["restart_ready_secs"]),
                    ("drain/s", d["drain_msgs_per_sec"]),
                    ("drain peak MiB", d["memory_after_drain"]["peak_rss_mib"])]
    sys.exit(f"{binary} printed no run")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="the first kurir-bench binary (e.g. before a change)")
    p.add_argument("b", help="the second kurir-bench binary (e.g. after it)")
    p.add_argument("--pairs", type=int, default=10)
    argv = sys.argv[1:]
    bench_args = ["-w", "128", "-m", "10000"]
    if "--" in argv:
        cut = argv.index("--")
        argv, bench_args = argv[:cut], argv[cut + 1:]
    o = p.parse_args(argv)
    o.bench_args = bench_args
    rows = {"a": [], "b": []}
    for i in range(o.pairs):
        for which in ("a", "b"):
            r = run(getattr(o, which), o.bench_args)
            rows[which].append(r)
            figures = "  ".join(f"{name} {value:.3f}" for name, value in r)
            print(f"{i + 1:3} {which}  {figures}", flush=True)
    for k, (name, _) in enumerate(rows["a"][0]):
        a = [x[k][1] for x in rows["a"]]
        b = [x[k][1] for x in rows["b"]]
        ratios = [y / x for x, y in zip(a, b)]
        print(f"{name:14} A median {statistics.median(a):9.3f}  B median {statistics.median(b):9.3f}  "
              f"B/A median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
