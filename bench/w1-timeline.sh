#!/usr/bin/env bash
# The W = 1 timeline of a message (docs/PERFORMANCE.md, "Where the time goes
# at 5a4bce7"): runs `kurir-bench -w 1`, attaches `perf trace` to both relays
# (child processes of kurir-bench) for a few seconds mid-run, tracing only the
# disk calls and the sends (little overhead), then prints each step of one
# message with its median over the messages traced (bench/w1-timeline.py).
#
#   bench/w1-timeline.sh [OUT] [SECONDS]
#   KURIR_BENCH=/tmp/kurir-bench-5a4bce7 bench/w1-timeline.sh /tmp/w1 2
#   STRACE=1 bench/w1-timeline.sh /tmp/w1s 2   # strace -f -T -tt -yy instead, with
#                                             # futex: every hand-off, peer addresses;
#                                             # slows the relays three to four times
#
# Needs root (perf trace, strace -p). The run's own figures in OUT/bench.txt
# are taken while traced; take the unperturbed ones from a run without it.
set -euo pipefail
OUT=${1:-/tmp/kurir-w1-timeline}
SECS=${2:-2}
BENCH=${KURIR_BENCH:-target/release/kurir-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
"$BENCH" -w 1 -m "${MESSAGES:-4000}" >"$OUT/bench.txt" 2>&1 &
bench=$!
# shellcheck source=bench/relays.sh
. "$HERE/relays.sh"
find_relays w1-timeline.sh "$bench" "$OUT/bench.txt"
sleep "${SETTLE:-2}"   # past the warm-up of 200 messages
echo "$sender $receiver" >"$OUT/pids"
if [ -n "${STRACE:-}" ]; then
  calls=fsync,fdatasync,sync_file_range,pwrite64,write,sendmsg,recvmsg,recvmmsg,futex
  for p in "$sender" "$receiver"; do
    timeout "$SECS" strace -f -T -tt -yy -e trace="$calls" -p "$p" -o "$OUT/$p.strace" 2>/dev/null &
  done
  wait %2 %3 || true
else
  timeout "$SECS" perf trace -p "$sender,$receiver" \
    -e fsync,fdatasync,sync_file_range,pwrite64,sendmsg -o "$OUT/trace.txt" 2>"$OUT/perf.err" || true
fi
wait "$bench" || true
tail -n 1 "$OUT/bench.txt"
if [ -z "${STRACE:-}" ]; then
  python3 "$HERE/w1-timeline.py" "$OUT/trace.txt" "$sender" "$receiver"
fi
