#!/usr/bin/env bash
# bench/compare.sh: the same durable 1 KiB workload through kurir, PostgreSQL
# and Redis on loopback, with TLS and client certificates everywhere, in one
# go so that the ratios are comparable. Also measures the disk's fsync
# latency in the same run. See docs/PERFORMANCE.md.
#
#   bench/compare.sh              # W = 1 and 128, 3,000 and 30,000 writes per run
#   M=10000 W="1 16 128" bench/compare.sh   # the same count for every W
#   BEFORE=/tmp/kurir-bench-old ROUNDS=3 bench/compare.sh
#
# M, when set, is the number of writes of every run. Unset, a run at W = 1
# makes 3,000 and one at a larger W 30,000: every run then lasts several
# seconds. Runs of 3,000 at W = 128 last under a second, and they favour
# kurir by a factor of about 1.6 against PostgreSQL: kurir's benchmark warms
# up before it times, and such a run ends before the relays' periodic work
# (checkpoints, inclusion proofs, the store's full flushes) comes round,
# while pgbench and redis-benchmark likely lose a larger share of a short
# run to their clients' start (docs/PERFORMANCE.md, "Runs long enough to
# compare").
#
# BEFORE names a kurir-bench binary of an earlier build: each round then runs
# it right before this tree's build, so "before" and "after" are measured in
# the same minutes as the databases. ROUNDS (default 1) repeats every row;
# the table gives each figure's median over the rounds. KURIR_BENCH names the
# "after" binary instead of building this tree.
#
# Needs root (it installs redis-server, postgresql and openssl from Debian's
# packages when they are missing, and runs PostgreSQL as the postgres user).
# Every server listens on 127.0.0.1 only, on a port picked here, with its
# data in a temporary directory that is removed at the end. Every run is
# bounded by a message count. CI does not run this.
set -euo pipefail

M=${M:-}
# The writes of one run at concurrency $1.
writes_at() {
    if [ -n "$M" ]; then echo "$M"; elif [ "$1" -le 1 ]; then echo 3000; else echo 30000; fi
}
W=${W:-"1 128"}
ROUNDS=${ROUNDS:-1}
BEFORE=${BEFORE:-}
if [ -n "$BEFORE" ] && [ ! -x "$BEFORE" ]; then
    echo "compare.sh: BEFORE=$BEFORE is not an executable kurir-bench binary" >&2
    exit 2
fi
SIZE=1024
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kurir-compare-XXXXXX")
chmod 755 "$WORK"
PIDS=()

say() { printf '%s\n' "$*" >&2; }

cleanup() {
    set +e
    if [ -n "${PGBIN:-}" ] && [ -d "$WORK/pg" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1
    fi
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- 1. Tools -----------------------------------------------------------------
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]} from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

# --- 2. Certificates: one CA, server certificates, client certificates -------
(
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=compare CA" -keyout ca.key -out ca.crt 2>/dev/null
    issue() { # name CN [server]
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$1.ext"
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
            -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    issue server localhost
    issue client bench
)

# --- 3. fsync latency of this disk, now ----------------------------------------
say "measuring fsync latency in $WORK"
FSYNC=$(python3 - "$WORK" <<'EOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
block = b"x" * 1024
times = []
for i in range(500):
    os.pwrite(fd, block, (i % 64) * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    times.append((time.perf_counter() - t) * 1000)
os.close(fd)
os.unlink(path)
times.sort()
print(f"{times[len(times)//2]:.3f} {times[int(len(times)*0.99)]:.3f} {sum(times)/len(times):.3f}")
EOF
)
read -r FSYNC_P50 FSYNC_P99 FSYNC_MEAN <<<"$FSYNC"

# --- 4. PostgreSQL: TLS with client certificates, fsync and synchronous commit --
say "starting PostgreSQL ($PGBIN)"
install -d -o postgres -m 700 "$WORK/pg" "$WORK/pgssl"
cp "$WORK/server.crt" "$WORK/server.key" "$WORK/ca.crt" "$WORK/pgssl/"
chown postgres "$WORK/pgssl/"*
chmod 600 "$WORK/pgssl/server.key"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth-local=trust >/dev/null
PGPORT=$(free_port)
cat >>"$WORK/pg/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$WORK/pg'
max_connections = 300
ssl = on
ssl_cert_file = '$WORK/pgssl/server.crt'
ssl_key_file = '$WORK/pgssl/server.key'
ssl_ca_file = '$WORK/pgssl/ca.crt'
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
cat >"$WORK/pg/pg_hba.conf" <<EOF
local   all all                 trust
hostssl all all 127.0.0.1/32    cert
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w start >/dev/null
runuser -u postgres -- "$PGBIN/psql" -qX -h "$WORK/pg" -p "$PGPORT" -d postgres \
    -c "CREATE USER bench" -c "CREATE DATABASE bench OWNER bench" >/dev/null
export PGPORT PGHOST=127.0.0.1 PGUSER=bench PGDATABASE=bench PGSSLMODE=verify-full \
    PGSSLCERT="$WORK/client.crt" PGSSLKEY="$WORK/client.key" PGSSLROOTCERT="$WORK/ca.crt"
chmod 600 "$WORK/client.key"
"$PGBIN/psql" -qX -c "CREATE TABLE msgs (id bigserial PRIMARY KEY, body text NOT NULL)" >/dev/null
BODY=$(head -c $((SIZE * 3)) /dev/urandom | base64 -w0 | head -c "$SIZE")
printf "INSERT INTO msgs (body) VALUES ('%s');\n" "$BODY" >"$WORK/insert.sql"

# --- 5. Redis: TLS with client certificates, appendfsync always ---------------
say "starting Redis"
RPORT=$(free_port)
mkdir -p "$WORK/redis"
redis-server --port 0 --bind 127.0.0.1 --tls-port "$RPORT" \
    --tls-cert-file "$WORK/server.crt" --tls-key-file "$WORK/server.key" \
    --tls-ca-cert-file "$WORK/ca.crt" --tls-auth-clients yes \
    --appendonly yes --appendfsync always --save "" --dir "$WORK/redis" \
    --maxclients 1000 --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 50); do
    redis-cli --tls --cert "$WORK/client.crt" --key "$WORK/client.key" --cacert "$WORK/ca.crt" \
        -p "$RPORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

# --- 6. The runs ---------------------------------------------------------------
if [ -n "${KURIR_BENCH:-}" ]; then
    BIN=$KURIR_BENCH
else
    say "building kurir-bench"
    (cd "$ROOT" && cargo build -q --release -p kurir-bench)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/kurir-bench
fi

cat >"$WORK/kurir_row.py" <<'EOF'
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["type"] == "run":
        d = r["data"]
        lat = d["latency_ms"]
        print("%s\t%d\t%.0f\t%.2f\t%.2f" % (sys.argv[1], d["window"], d["msgs_per_sec"], lat["p50"], lat["p99"]))
EOF
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
for w in $W; do
    m=$(writes_at "$w")
    if [ -n "$BEFORE" ]; then
        say "round $round, W=$w: kurir before ($m messages)"
        "$BEFORE" --mode small -m "$m" -w "$w" --json | python3 "$WORK/kurir_row.py" kurir-before >>"$RESULTS"
    fi
    say "round $round, W=$w: kurir ($m messages)"
    "$BIN" --mode small -m "$m" -w "$w" --json | python3 "$WORK/kurir_row.py" kurir >>"$RESULTS"

    say "W=$w: PostgreSQL ($m inserts)"
    threads=$((w < 2 ? 1 : 2))
    per_client=$(((m + w - 1) / w))
    out=$("$PGBIN/pgbench" -n -r -c "$w" -j "$threads" -t "$per_client" -f "$WORK/insert.sql" \
        --log --log-prefix="$WORK/pgbench" 2>&1)
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
    lat=$(cat "$WORK"/pgbench.* | python3 -c 'import sys
v = sorted(int(l.split()[2]) / 1000 for l in sys.stdin)
print(f"{v[len(v)//2]:.2f}\t{v[int(len(v)*0.99)]:.2f}")')
    rm -f "$WORK"/pgbench.*
    printf 'postgresql\t%s\t%.0f\t%s\n' "$w" "$tps" "$lat" >>"$RESULTS"

    say "W=$w: Redis ($m XADDs)"
    out=$(redis-benchmark --tls --cert "$WORK/client.crt" --key "$WORK/client.key" \
        --cacert "$WORK/ca.crt" -h 127.0.0.1 -p "$RPORT" -c "$w" -n "$m" -q \
        XADD kurir '*' body "$BODY" 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1)
    rps=$(sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' <<<"$out")
    p50=$(sed -n 's/.*p50=\([0-9.]*\) msec.*/\1/p' <<<"$out")
    printf 'redis\t%s\t%.0f\t%s\t-\n' "$w" "$rps" "${p50:--}" >>"$RESULTS"
done
done

# --- 7. The table --------------------------------------------------------------
COUNTS=""
for w in $W; do COUNTS="${COUNTS:+$COUNTS, }$(writes_at "$w") at W = $w"; done
python3 - "$RESULTS" "$FSYNC_P50" "$FSYNC_P99" "$FSYNC_MEAN" "$COUNTS" <<'EOF'
import sys, datetime, platform, os
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
fp50, fp99, fmean, m = sys.argv[2:6]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {cpu}, {platform.release()}")
print(f"# fsync of a 1 KiB write on this disk, same run: p50 {fp50} ms, p99 {fp99} ms, mean {fmean} ms")
print(f"# durable 1 KiB writes per run: {m}; loopback, TLS with client certificates")
print()
print("| system | W | runs | writes/s (median) | p50 ms | p99 ms | kurir ÷ system |")
print("|---|---:|---:|---:|---:|---:|---:|")
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
def num(x):
    return None if x == "-" else float(x)
groups = {}
for name, w, rate, p50, p99 in rows:
    groups.setdefault((name, w), []).append((float(rate), num(p50), num(p99)))
med = {}
for key, runs in groups.items():
    cols = []
    for i in range(3):
        vals = [r[i] for r in runs if r[i] is not None]
        cols.append(median(vals) if vals else None)
    med[key] = (len(runs), *cols)
order = {"kurir-before": 0, "kurir": 1, "postgresql": 2, "redis": 3}
for (name, w) in sorted(med, key=lambda k: (int(k[1]), order.get(k[0], 9))):
    n, rate, p50, p99 = med[(name, w)]
    k = med.get(("kurir", w))
    ratio = "" if name == "kurir" or not k or rate == 0 else f"{k[1] / rate:.2f}"
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    print(f"| {name} | {w} | {n} | {rate:,.0f} | {fmt(p50)} | {fmt(p99)} | {ratio} |")
print()
print("Every run, in order:")
for name, w, rate, p50, p99 in rows:
    print(f"#   {name} W={w}: {float(rate):,.0f}/s p50 {p50} p99 {p99}")
EOF
