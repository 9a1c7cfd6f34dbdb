#!/usr/bin/env bash
# The scheduler's view of a kurir-bench run (docs/PERFORMANCE.md, "Where the
# rest goes"): starts `kurir-bench -w W -m M`, waits DELAY seconds so the
# warm-up is over, records the scheduler's events of the whole machine with
# `perf sched record` for SECONDS, then prints for the sender, the receiver
# and the load generator (kurir-bench itself), per kind of thread: how often
# a thread was switched in per message, how long from its wake-up to running
# (the scheduler's delay) and how long it ran each time, and how busy the
# CPUs were. Per message uses the run's own messages/s over its whole
# length, so keep the window inside the run.
#
#   bench/sched.sh [OUT]
#   KURIR_BENCH=/tmp/kurir-bench-old W=1 M=6000 bench/sched.sh /tmp/sched-w1
#
# Needs perf and root. The run's own figures in OUT/bench.txt are taken
# while recorded; take the unperturbed ones from a run without it.
set -euo pipefail
OUT=${1:-/tmp/kurir-sched}
BENCH=${KURIR_BENCH:-target/release/kurir-bench}
W=${W:-128}
M=${M:-60000}
DELAY=${DELAY:-5}
SECS=${SECONDS_:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v perf >/dev/null || { echo "sched.sh: perf is not installed" >&2; exit 2; }
[ -x "$BENCH" ] || { echo "sched.sh: $BENCH is not an executable kurir-bench" >&2; exit 2; }
mkdir -p "$OUT"
"$BENCH" -w "$W" -m "$M" >"$OUT/bench.txt" 2>&1 &
bench=$!
# shellcheck source=bench/relays.sh
. "$HERE/relays.sh"
find_relays sched.sh "$bench" "$OUT/bench.txt"
sleep "$DELAY"
perf sched record -o "$OUT/sched.data" -- sleep "$SECS" >/dev/null 2>&1
wait "$bench"
tail -n 1 "$OUT/bench.txt"
perf sched timehist -i "$OUT/sched.data" >"$OUT/timehist.txt" 2>/dev/null
python3 "$HERE/sched.py" "$OUT/timehist.txt" "$OUT/bench.txt" "$SECS" \
  "$bench" "$sender" "$receiver"
