# Sourced by bench/w1-timeline.sh and bench/profile.sh: finds the two relays
# a kurir-bench run started (its child processes, RS.MUP sending and BA.SPS
# receiving) and sets `sender` and `receiver` to their process ids. Waits up
# to 20 s; on failure prints what happened (see LOG), stops the run (PID)
# and exits.
#
#   find_relays SCRIPT PID LOG
find_relays() {
  local script=$1 bench=$2 log=$3
  sender="" receiver=""
  for _ in $(seq 400); do
    sender=$(pgrep -f -n 'relay --config .*/RS\.MUP/' || true)
    receiver=$(pgrep -f -n 'relay --config .*/BA\.SPS/' || true)
    [ -n "$sender" ] && [ -n "$receiver" ] && return 0
    sleep 0.05
  done
  echo "$script: the relays did not start (see $log)" >&2
  kill "$bench" 2>/dev/null || true
  exit 1
}
