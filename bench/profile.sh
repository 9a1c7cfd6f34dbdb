#!/usr/bin/env bash
# CPU profiles of both relays during a kurir-bench run (docs/PERFORMANCE.md,
# "Reproduce"): starts `kurir-bench -w W -m M`, waits DELAY seconds so the
# warm-up is over, records each relay (child processes of kurir-bench) with
# `perf record --call-graph dwarf` for SECONDS, then prints for each relay
# the share of its samples by thread and the functions of kurir, sled and
# the crypto with the most time under them. The run is long enough that the
# window ends before the last message (the listing kurir-bench asks for at
# the end would show up otherwise).
#
#   bench/profile.sh [OUT]
#   KURIR_BENCH=/tmp/kurir-bench-old W=128 M=120000 DELAY=7 SECONDS_=5 bench/profile.sh /tmp/prof
#
# Needs perf (and root, or kernel.perf_event_paranoid <= 1). The run's own
# figures in OUT/bench.txt are taken while profiled: take the unperturbed
# ones from a run without it. The perf.data files stay in OUT for
# `perf report -i OUT/sender.data`.
set -euo pipefail
OUT=${1:-/tmp/kurir-profile}
BENCH=${KURIR_BENCH:-target/release/kurir-bench}
W=${W:-128}
M=${M:-120000}
DELAY=${DELAY:-7}
SECS=${SECONDS_:-5}
FREQ=${FREQ:-499}
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 2; }
[ -x "$BENCH" ] || { echo "profile.sh: $BENCH is not an executable kurir-bench" >&2; exit 2; }
mkdir -p "$OUT"
"$BENCH" -w "$W" -m "$M" >"$OUT/bench.txt" 2>&1 &
bench=$!
# shellcheck source=bench/relays.sh
. "$(cd "$(dirname "$0")" && pwd)/relays.sh"
find_relays profile.sh "$bench" "$OUT/bench.txt"
sleep "$DELAY"
perf record -F "$FREQ" --call-graph dwarf,16384 -o "$OUT/sender.data" -p "$sender" \
  -- sleep "$SECS" >/dev/null 2>&1 &
perf record -F "$FREQ" --call-graph dwarf,16384 -o "$OUT/receiver.data" -p "$receiver" \
  -- sleep "$SECS" >/dev/null 2>&1
wait %2 2>/dev/null || true
wait "$bench"
cat "$OUT/bench.txt"
for who in sender receiver; do
  echo
  echo "== $who: share of samples by thread"
  perf report -i "$OUT/$who.data" --sort comm --stdio -g none 2>/dev/null |
    awk '!/^#/ && NF { v = $1; sub("%", "", v); t = $3
      if (t ~ /^sled-io/) t = "sled-io-*"
      s[t] += v } END { for (t in s) printf "%6.1f %%  %s\n", s[t], t }' | sort -rn
  echo "== $who: functions with the most time under them (kurir, sled, Ed25519, QUIC)"
  perf report -i "$OUT/$who.data" --children --sort sym --stdio -g none 2>/dev/null |
    grep -E '\] (kurir_|sled::tree|ed25519_dalek::|<quinn::connection::ConnectionDriver)' |
    grep -vE 'closure_env|poll<|poll_inner|poll_future|with_mut|call_once|catch_unwind|do_call' |
    head -25 | cut -c1-150
done
