#!/usr/bin/env bash
# Builds the Debian package of kurir from a staging tree with dpkg-deb:
#
#   packaging/deb/build.sh            # -> target/deb/kurir_VERSION_ARCH.deb
#
# Needs cargo, strip (binutils), dpkg-deb and dpkg-shlibdeps (apt-get install
# dpkg-dev).
# Prints the path of the .deb on its last line. See packaging/deb/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=packaging/deb

for tool in cargo dpkg-deb dpkg-shlibdeps gzip strip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build.sh: $tool is missing (apt-get install dpkg-dev binutils)" >&2
    exit 2
  fi
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
revision=${KURIR_DEB_REVISION:-1}
arch=$(dpkg --print-architecture)
target=${CARGO_TARGET_DIR:-target}
out="$target/deb"
root="$out/root"

echo "== cargo build --release --locked (kurir-relay, kurir, kurir-certs, kurir-docgen)"
cargo build --release --locked -p kurir-relay -p kurir-client -p kurir-certs -p kurir-docgen
bin="$target/release"

rm -rf "$root" "$out/docgen"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" \
  "$root/usr/lib/systemd/system" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" \
  "$root/etc/kurir" "$root/usr/share/doc/kurir" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"

# Without the line tables of the release profile (150 MB installed with
# them, 25 MB without); symbol names stay, so a backtrace names functions.
for b in kurir-relay kurir kurir-certs; do
  install -m 0755 "$bin/$b" "$root/usr/bin/$b"
  strip --strip-debug "$root/usr/bin/$b"
done

echo "== man pages and completions from the clap definitions"
"$bin/kurir-docgen" --out "$out/docgen"
for page in "$out"/docgen/man/*.1; do
  gzip -9n -c "$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
done
chmod 0644 "$root"/usr/share/man/man1/*
install -m 0644 "$out"/docgen/bash/* "$root/usr/share/bash-completion/completions/"
install -m 0644 "$out"/docgen/zsh/* "$root/usr/share/zsh/vendor-completions/"
install -m 0644 "$out"/docgen/fish/* "$root/usr/share/fish/vendor_completions.d/"

install -m 0644 "$here/kurir-relay.service" "$root/usr/lib/systemd/system/kurir-relay.service"
install -m 0644 "$here/kurir.sysusers" "$root/usr/lib/sysusers.d/kurir.conf"
install -m 0644 "$here/kurir.tmpfiles" "$root/usr/lib/tmpfiles.d/kurir.conf"

# The example configuration with the package's paths, a conffile.
sed -e 's|^authority_dir = .*|authority_dir = "/etc/kurir/authority"|' \
  -e 's|^\(path\) = .*roster.*|\1 = "/etc/kurir/roster.cbor"|' \
  -e 's|^data_dir = .*|data_dir = "/var/lib/kurir"|' \
  -e 's|docs/CONFIG\.md|/usr/share/doc/kurir/docs/CONFIG.md.gz|g' \
  -e 's|docs/OPERATIONS\.md|/usr/share/doc/kurir/docs/OPERATIONS.md.gz|g' \
  -e '1s|^# kurir-relay configuration\.|# kurir-relay configuration, as installed by the Debian package: edit the\n# authority, listen address, agreements and holidays before starting the relay\n# (systemctl enable --now kurir-relay).|' \
  relay/relay.example.toml >"$root/etc/kurir/relay.toml"
chmod 0644 "$root/etc/kurir/relay.toml"
for want in 'authority_dir = "/etc/kurir/authority"' 'path = "/etc/kurir/roster.cbor"' \
  'data_dir = "/var/lib/kurir"'; do
  grep -qxF "$want" "$root/etc/kurir/relay.toml" ||
    { echo "build.sh: relay.toml lacks: $want" >&2; exit 1; }
done
printf '/etc/kurir/relay.toml\n' >"$root/DEBIAN/conffiles"

install -m 0644 "$here/README.md" "$root/usr/share/doc/kurir/README.md"
install -m 0644 relay/relay.example.toml "$root/usr/share/doc/kurir/relay.example.toml"
install -m 0644 "$here/copyright" "$root/usr/share/doc/kurir/copyright"
# The guides the configuration and the man pages point to (docs/CONFIG.md …).
install -d -m 0755 "$root/usr/share/doc/kurir/docs"
for d in CONFIG OPERATIONS PKI CLI AUDIT PROTOCOL SECURITY THREAT-MODEL ARCHITECTURE; do
  gzip -9n <"docs/$d.md" >"$root/usr/share/doc/kurir/docs/$d.md.gz"
  chmod 0644 "$root/usr/share/doc/kurir/docs/$d.md.gz"
done

for s in postinst prerm postrm; do
  install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done

# Shared-library dependencies of the binaries, as dpkg-shlibdeps finds them
# (it wants a debian/control; a minimal one in a scratch directory).
scratch="$out/shlibs"
rm -rf "$scratch" && mkdir -p "$scratch/debian"
printf 'Source: kurir\n\nPackage: kurir\nArchitecture: any\n' >"$scratch/debian/control"
abs_root=$(cd "$root" && pwd)
shlibs=$(cd "$scratch" && dpkg-shlibdeps -O "$abs_root"/usr/bin/* 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version-$revision|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
  -e "s|@SHLIBS@|$shlibs|" "$here/control.in" >"$root/DEBIAN/control"

deb="$out/kurir_${version}-${revision}_${arch}.deb"
dpkg-deb --build --root-owner-group -Zxz "$root" "$deb" >/dev/null
echo "== built"
echo "$deb"
