#!/usr/bin/env bash
# Builds the .deb and checks it as an administrator's machine would see it:
# installs it with dpkg -i, checks files, owners and modes, verifies the unit
# (systemd-analyze verify, where the tool exists), runs the installed
# binaries and man pages, upgrades over itself, removes and purges it, and
# checks that the data directory is kept throughout.
#
#   packaging/deb/check.sh        # as root, on a Debian machine (.ci/run calls it)
#
# It does not start the service: CI machines do not run systemd as PID 1.
# It changes the machine (installs and then purges the package; the kurir
# user and /var/lib/kurir stay, as they would for an administrator).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
  echo "check.sh: run as root (it installs the package)" >&2
  exit 2
fi

fail() {
  echo "check.sh: FAILED: $*" >&2
  exit 1
}

# What a fresh Debian machine may lack: dpkg-shlibdeps (build), man, and
# systemd (systemd-sysusers, systemd-tmpfiles, systemd-analyze).
need=()
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
command -v strip >/dev/null 2>&1 || need+=(binutils)
command -v man >/dev/null 2>&1 || need+=(man-db)
command -v systemd-sysusers >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if dpkg -s kurir >/dev/null 2>&1; then
  # Left by an earlier run that failed half-way. Outside CI it may be a real
  # installation: never purge that.
  [ "${CI:-}" = true ] || fail "a kurir package is installed already; remove it first (dpkg --purge kurir)"
  echo "== purging the kurir package an earlier run left"
  dpkg --purge kurir
fi

deb=$(packaging/deb/build.sh | tail -1)
[ -f "$deb" ] || fail "build.sh did not produce a .deb ($deb)"
echo "== $deb"
dpkg-deb --info "$deb"

echo "== dpkg -i"
dpkg -i "$deb"

echo "== files (dpkg -L)"
dpkg -L kurir >/tmp/kurir-files.$$
cat /tmp/kurir-files.$$
for f in /usr/bin/kurir-relay /usr/bin/kurir /usr/bin/kurir-certs \
  /usr/lib/systemd/system/kurir-relay.service /usr/lib/sysusers.d/kurir.conf \
  /usr/lib/tmpfiles.d/kurir.conf /etc/kurir/relay.toml \
  /usr/share/man/man1/kurir-relay.1.gz /usr/share/man/man1/kurir-relay-run.1.gz \
  /usr/share/man/man1/kurir.1.gz /usr/share/man/man1/kurir-certs.1.gz \
  /usr/share/bash-completion/completions/kurir /usr/share/zsh/vendor-completions/_kurir-certs \
  /usr/share/fish/vendor_completions.d/kurir-relay.fish /usr/share/doc/kurir/copyright \
  /usr/share/doc/kurir/docs/CONFIG.md.gz /usr/share/doc/kurir/docs/PKI.md.gz \
  /usr/share/doc/kurir/docs/OPERATIONS.md.gz; do
  grep -qxF "$f" /tmp/kurir-files.$$ || fail "$f is not in the package"
  [ -e "$f" ] || fail "$f is not installed"
done
rm -f /tmp/kurir-files.$$
grep -qxF /etc/kurir/relay.toml /var/lib/dpkg/info/kurir.conffiles || fail "relay.toml is not a conffile"

echo "== owners and modes (stat)"
expect() { # path owner:group mode
  local got
  got=$(stat -c '%U:%G %a' "$1")
  echo "$1 $got"
  [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
}
for b in kurir-relay kurir kurir-certs; do expect "/usr/bin/$b" root:root 755; done
expect /usr/lib/systemd/system/kurir-relay.service root:root 644
expect /etc/kurir root:root 755
expect /etc/kurir/relay.toml root:root 644
expect /usr/share/man/man1/kurir-relay.1.gz root:root 644
getent passwd kurir >/dev/null || fail "no kurir user (systemd-sysusers)"
getent passwd kurir | grep -q ':/var/lib/kurir:/usr/sbin/nologin$' || fail "kurir user: $(getent passwd kurir)"
expect /var/lib/kurir kurir:kurir 700

echo "== the installed binaries"
/usr/bin/kurir-relay --version
# jemalloc, with the configuration .cargo/config.toml compiles in (without
# oversize_threshold:0, 8 MiB attachments run at half the rate).
/usr/bin/kurir-relay --version | grep -qF '(allocator: jemalloc)' ||
  fail "kurir-relay is not built with jemalloc, which the unit's comment describes"
conf=$(_RJEM_MALLOC_CONF=confirm_conf:true /usr/bin/kurir-relay --version 2>&1 >/dev/null)
grep -qF 'Set conf value: oversize_threshold:0' <<<"$conf" ||
  fail "kurir-relay's jemalloc was built without oversize_threshold:0 (.cargo/config.toml)"
/usr/bin/kurir --version
/usr/bin/kurir-certs --version
/usr/bin/kurir --help >/dev/null
/usr/bin/kurir-relay --help | grep -q 'audit-export' || fail "kurir-relay --help"
# The packaged config parses and names the package's paths: run as the kurir
# user, on a scratch data dir (the relay opens its store first: the real
# /var/lib/kurir stays untouched), it gets as far as the authority directory,
# which the administrator has not made yet.
scratch=$(mktemp -d)
chown kurir:kurir "$scratch"
chmod 0700 "$scratch"
sed "s|^data_dir = .*|data_dir = \"$scratch/data\"|" /etc/kurir/relay.toml >"$scratch/relay.toml"
chmod 0644 "$scratch/relay.toml"
set +e
cfg_out=$(setpriv --reuid kurir --regid kurir --clear-groups \
  /usr/bin/kurir-relay run --config "$scratch/relay.toml" 2>&1)
cfg_rc=$?
set -e
rm -rf "$scratch"
echo "kurir-relay run (no authority dir yet) exit $cfg_rc: $(echo "$cfg_out" | tail -1)"
[ "$cfg_rc" = 3 ] || fail "the packaged relay.toml: expected exit 3 (cannot start), got $cfg_rc: $cfg_out"
echo "$cfg_out" | grep -q /etc/kurir/authority || fail "the start error does not name /etc/kurir/authority"

echo "== man pages"
for page in kurir-relay kurir-relay-run kurir kurir-certs-authority-init; do
  MANWIDTH=80 man -l "/usr/share/man/man1/$page.1.gz" 2>&1 | sed 's/.\x08//g' >/tmp/kurir-man.$$ || true
  grep -q "$page" /tmp/kurir-man.$$ || fail "man -l $page shows: $(head -5 /tmp/kurir-man.$$)"
  echo "$page: $(grep -c '' /tmp/kurir-man.$$) lines"
done
rm -f /tmp/kurir-man.$$
bash -c 'source /usr/share/bash-completion/completions/kurir-relay && complete -p kurir-relay' ||
  fail "the bash completion of kurir-relay does not load"

echo "== systemd-analyze verify"
if command -v systemd-analyze >/dev/null 2>&1; then
  # Prints warnings about the machine (no systemd as PID 1) but fails only on
  # errors in the unit itself.
  systemd-analyze verify /usr/lib/systemd/system/kurir-relay.service
  echo "verified"
else
  echo "systemd-analyze is not installed: skipped"
fi
if [ -d /run/systemd/system ]; then
  echo "(systemd runs here; the service is still not started: it has no authority directory)"
else
  echo "(systemd is not PID 1 here: the service is not started)"
fi

# A relay's data, which every later step must keep.
echo "kept" >/var/lib/kurir/check-marker
chown kurir:kurir /var/lib/kurir/check-marker
chmod 0600 /var/lib/kurir/check-marker

echo "== upgrade (the same package over itself: prerm upgrade, postinst configure OLD)"
dpkg -i "$deb"
[ -f /var/lib/kurir/check-marker ] || fail "upgrading lost /var/lib/kurir"
expect /var/lib/kurir kurir:kurir 700

echo "== dpkg -r"
dpkg -r kurir
[ ! -e /usr/bin/kurir-relay ] || fail "/usr/bin/kurir-relay is still there after dpkg -r"
[ ! -e /usr/lib/systemd/system/kurir-relay.service ] || fail "the unit is still there after dpkg -r"
[ -f /var/lib/kurir/check-marker ] || fail "dpkg -r removed the data in /var/lib/kurir"
expect /var/lib/kurir kurir:kurir 700
[ -f /etc/kurir/relay.toml ] || fail "dpkg -r removed the conffile (only purge may)"
echo "data and config kept"

echo "== dpkg --purge"
dpkg --purge kurir
[ ! -e /etc/kurir/relay.toml ] || fail "purge left /etc/kurir/relay.toml"
[ -f /var/lib/kurir/check-marker ] || fail "purge removed the data in /var/lib/kurir"
[ ! -L /etc/systemd/system/kurir-relay.service ] || fail "purge left the unit masked"
dpkg -s kurir >/dev/null 2>&1 && fail "kurir is still known to dpkg after purge"
rm -f /var/lib/kurir/check-marker
echo "data kept after purge; package gone"
echo "== the Debian package checks passed"
