#!/usr/bin/env python3
"""Summarises `perf sched timehist` for a kurir-bench run (bench/sched.sh):
per process (load generator, sender, receiver) and kind of thread (the name
without its number), how often a thread was switched in per message, the
mean delay from its wake-up to running, the mean time it ran each time and
its running time per second; then how busy the CPUs were.

    bench/sched.py TIMEHIST BENCH_TXT SECONDS BENCH_PID SENDER_PID RECEIVER_PID
"""
import collections
import re
import sys

LINE = re.compile(
    r"^\s*([\d.]+)\s+\[(\d+)\]\s+(.+?)\[(\d+)/(\d+)\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$"
)
IDLE = re.compile(r"^\s*([\d.]+)\s+\[(\d+)\]\s+<idle>\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def msgs_per_sec(bench_txt):
    """The run's messages/s: the fifth column of kurir-bench's last line."""
    with open(bench_txt) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith(("#", "mode"))]
    if not rows or len(rows[-1]) < 5:
        sys.exit(f"sched.py: no result line in {bench_txt}")
    return float(rows[-1][4])


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    path, bench_txt, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    roles = {sys.argv[4]: "load generator", sys.argv[5]: "sender", sys.argv[6]: "receiver"}
    rate = msgs_per_sec(bench_txt)
    groups = collections.defaultdict(lambda: [0, 0.0, 0.0])
    idle_ms, cpus = 0.0, set()
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                cpus.add(m.group(2))
                role = roles.get(m.group(5))
                if role is None:
                    continue
                name = re.sub(r"[-_]?\d+$", "", m.group(3).strip())
                g = groups[(role, name)]
                g[0] += 1
                g[1] += float(m.group(7))
                g[2] += float(m.group(8))
                continue
            m = IDLE.match(line)
            if m:
                cpus.add(m.group(2))
                idle_ms += float(m.group(5))
    if not groups:
        sys.exit(f"sched.py: no switch of the run's processes in {path}")
    messages = rate * secs
    print(f"{messages:.0f} messages in {secs:g} s ({rate:.0f}/s over the whole run)")
    print(f"{'threads':<34} {'in/msg':>7} {'delay µs':>9} {'run µs':>7} {'run ms/s':>9}")
    order = {"sender": 0, "receiver": 1, "load generator": 2}
    for (role, name), (n, delay, run) in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], -kv[1][2])):
        print(
            f"{role + ', ' + name:<34} {n / messages:7.2f} {1000 * delay / n:9.1f}"
            f" {1000 * run / n:7.1f} {run / secs:9.1f}"
        )
    total_ms = 1000 * secs * max(len(cpus), 1)
    print(f"CPUs: {len(cpus)}, idle {idle_ms:.0f} ms of {total_ms:.0f} ({100 * idle_ms / total_ms:.0f} %)")


if __name__ == "__main__":
    main()
