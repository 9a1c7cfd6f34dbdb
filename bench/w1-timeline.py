#!/usr/bin/env python3
"""The steps of one W = 1 message from a `perf trace` of both relays
(bench/w1-timeline.sh): the medians over the messages traced, in ms.

A commit is a relay's pwrite64 / sync_file_range calls (sled's flush, on its
I/O threads) up to the store writer's fsync. On the sender, the submit
commit is followed by the parcel (a send of more than 1,000 bytes, for 1 KiB
bodies), the receiver's commit by the receipt (280-320 bytes), the
`delivered` commit by the status answer (480-520 bytes). The sizes fit
`kurir-bench -w 1` with 1 KiB bodies; other sizes need other bounds.

usage: w1-timeline.py TRACE SENDER_PID RECEIVER_PID
"""
import re
import sys

LINE = re.compile(
    r"\s*([\d.]+) \(\s*([\d.]*)\s*(?:ms)?\): (\S+)/(\d+) +(\.\.\. \[continued\]: )?(\w+)\((.*)"
)


def events(path, sender, receiver):
    out, pending = [], {}
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if not m or float(m.group(1)) > 1e9:
            continue
        tid, start = int(m.group(4)), float(m.group(1))
        if not m.group(2):
            pending[tid] = True
            continue
        pending.pop(tid, None)
        ret = line.rsplit("=", 1)[-1].strip()
        who = "S" if sender <= tid < receiver else "R"
        size = int(ret) if ret.isdigit() else 0
        out.append((start, start + float(m.group(2)), who, m.group(6), size))
    return sorted(out)


def commits(ev, who):
    out, cur, sfr = [], None, []
    for start, end, w, call, _ in ev:
        if w != who:
            continue
        if call == "pwrite64" and cur is None:
            cur, sfr = start, []
        elif call == "sync_file_range" and cur is not None:
            sfr.append((start, end))
        elif call in ("fsync", "fdatasync") and cur is not None:
            waited, last = 0.0, None
            for a, b in sorted(sfr):  # sled's syncs overlap: count wall time
                if last is None or a > last[1]:
                    if last:
                        waited += last[1] - last[0]
                    last = [a, b]
                else:
                    last[1] = max(last[1], b)
            if last:
                waited += last[1] - last[0]
            out.append(dict(start=cur, end=end, disk=waited + end - start, syncs=len(sfr)))
            cur = None
    return out


def main():
    path, sender, receiver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ev = events(path, sender, receiver)
    sc, rc = commits(ev, "S"), commits(ev, "R")
    sends = {w: [(e[0], e[4]) for e in ev if e[2] == w and e[3] == "sendmsg"] for w in "SR"}

    def after(items, t, ok):
        return next((x for x in items if x[0] > t and ok(x)), None)

    def before(items, t, ok):
        found = None
        for x in items:
            if x[0] >= t:
                break
            if ok(x):
                found = x
        return found

    status = lambda x: 480 <= x[1] <= 520
    rows = []
    for r in rc:
        parcel = before(sends["S"], r["start"], lambda x: x[1] > 1000)
        sub = parcel and before([(c["end"], c) for c in sc], parcel[0], lambda x: True)
        prev = sub and before(sends["S"], sub[1]["start"], status)
        receipt = after(sends["R"], r["end"], lambda x: 280 <= x[1] <= 320)
        dl = receipt and after([(c["start"], c) for c in sc], receipt[0], lambda x: True)
        answer = dl and after(sends["S"], dl[1]["start"], status)
        if not (sub and prev and answer):
            continue
        s, d = sub[1], dl[1]
        row = {
            "status answered -> submit commit starts (load generator, QUIC, sign, writer)": s["start"] - prev[0],
            "sender's submit commit": s["end"] - s["start"],
            "  of which disk (sync_file_range, fsync)": s["disk"],
            "commit done -> parcel sent": parcel[0] - s["end"],
            "parcel sent -> receiver's commit starts (QUIC, verify, writer)": r["start"] - parcel[0],
            "receiver's commit (receipt signed in it)": r["end"] - r["start"],
            "  of which disk ": r["disk"],
            "commit done -> receipt sent": receipt[0] - r["end"],
            "receipt sent -> delivered commit starts (QUIC, verify, writer)": d["start"] - receipt[0],
            "sender's delivered commit": d["end"] - d["start"],
            # (Keys differ by a space: each commit's disk row is its own.)
            "  of which disk  ": d["disk"],
            "delivered commit done -> status answer (negative: before)": answer[0] - d["end"],
            "status answer -> next status answer (one message)": answer[0] - prev[0],
        }
        if row["status answer -> next status answer (one message)"] < 10:
            rows.append(row)
    if not rows:
        sys.exit("no complete message found in the trace")
    print(f"{len(rows)} messages; medians (p10-p90), ms")
    for key in rows[0]:
        v = sorted(r[key] for r in rows)
        n = len(v)
        print(f"{key:66s} {v[n // 2]:6.3f}  ({v[n // 10]:.3f}-{v[9 * n // 10]:.3f})")
    early = sum(1 for r in rows if r["delivered commit done -> status answer (negative: before)"] < 0)
    print(f"status answered before the delivered commit's fsync returned: {early} of {len(rows)}")
    print(f"sync_file_range per commit: sender {sum(c['syncs'] for c in sc) / max(len(sc), 1):.2f}, "
          f"receiver {sum(c['syncs'] for c in rc) / max(len(rc), 1):.2f}")


if __name__ == "__main__":
    main()
