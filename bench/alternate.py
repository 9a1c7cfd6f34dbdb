#!/usr/bin/env python3
"""Runs two kurir-bench binaries in turn (A B A B ...) with the same arguments
and compares them: per run msgs/s, p50 latency and the relays' CPU seconds per
1,000 messages (sender + receiver); then each figure's median for both and the
median, min and max of the pairwise ratios B/A. Pairing the runs keeps a
comparison fair when the machine's speed drifts.

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
    out = subprocess.run([binary, *args, "--json"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        record = json.loads(line)
        if record.get("type") == "run":
            d = record["data"]
            cpu = sum(r["cpu_secs_per_1000"] for r in d["relays"])
            return d["msgs_per_sec"], d["latency_ms"]["p50"], cpu
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
            print(f"{i + 1:3} {which}  {r[0]:7.0f} msgs/s  p50 {r[1]:6.2f} ms  cpu {r[2]:.3f} s/1k", flush=True)
    for k, name in ((0, "msgs/s"), (1, "p50 ms"), (2, "CPU s/1k")):
        a = [x[k] for x in rows["a"]]
        b = [x[k] for x in rows["b"]]
        ratios = [y / x for x, y in zip(a, b)]
        print(f"{name:9} A median {statistics.median(a):9.3f}  B median {statistics.median(b):9.3f}  "
              f"B/A median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
