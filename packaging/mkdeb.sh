#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# mkdeb.sh VERSION — builds $OUT/switchyard_VERSION_ARCH.deb from what `make all` built in
# $OUT, with dpkg-deb (no debhelper). Called by `make deb`; prints the .deb's path.
#   /usr/sbin/switchyardd, /usr/bin/syctl            stripped; Depends from dpkg-shlibdeps
#   /lib/systemd/system/switchyardd.service
#   /etc/switchyard/switchyard.yaml                  conffile: no migrations
#   /usr/share/man/man8/switchyardd.8.gz, man1/syctl.1.gz   help2man over --help
#   /usr/share/doc/switchyard/{README.md,copyright,docs/*.md}
#   /usr/share/bash-completion/completions/syctl, /usr/share/zsh/vendor-completions/_syctl
#   /usr/share/switchyard/grafana/, kubernetes/, prometheus/   dashboard, DaemonSet manifest, alert rules
# Depends: the linked libraries' packages and libjs-chart.js (the dashboard's charts).
# Maintainer scripts: packaging/debian/{postinst,prerm,postrm}.
set -eu
cd "$(dirname "$0")/.."

VERSION=${1:?usage: mkdeb.sh VERSION}
OUT=${OUT:-build}
ARCH=$(dpkg --print-architecture)
PKG=switchyard
WORK="$OUT/deb"
ROOT="$WORK/debian/$PKG"
DEB="$OUT/${PKG}_${VERSION}_${ARCH}.deb"

for f in "$OUT/switchyardd" "$OUT/syctl"; do
	[ -x "$f" ] || { echo "mkdeb: $f is not built (make OUT=$OUT all)" >&2; exit 1; }
done
# Reproducible: dates in man pages and file times from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

rm -rf "$WORK"
mkdir -p "$ROOT/DEBIAN"
umask 022

install -D -m 0755 "$OUT/switchyardd" "$ROOT/usr/sbin/switchyardd"
install -D -m 0755 "$OUT/syctl" "$ROOT/usr/bin/syctl"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT/usr/sbin/switchyardd" \
	"$ROOT/usr/bin/syctl"
install -D -m 0644 packaging/switchyardd.service "$ROOT/lib/systemd/system/switchyardd.service"
install -D -m 0644 packaging/switchyard.yaml "$ROOT/etc/switchyard/switchyard.yaml"

manpage() { # manpage BINARY SECTION NAME-LINE
	mkdir -p "$ROOT/usr/share/man/man$2"
	help2man --no-info --section "$2" --name "$3" --include "packaging/man/$(basename "$1").h2m" \
		--output "$WORK/$(basename "$1").$2" "$1"
	gzip -9n <"$WORK/$(basename "$1").$2" >"$ROOT/usr/share/man/man$2/$(basename "$1").$2.gz"
}
manpage "$ROOT/usr/sbin/switchyardd" 8 "host agent for zero-downtime Redis migrations (eBPF steering)"
manpage "$ROOT/usr/bin/syctl" 1 "control switchyardd: migrations, cutover, telemetry, verification"

DOC="$ROOT/usr/share/doc/$PKG"
install -D -m 0644 README.md "$DOC/README.md"
# DEP-5 machine-readable licences (Debian policy 12.5).
install -D -m 0644 packaging/debian/copyright "$DOC/copyright"
for f in docs/*.md; do install -D -m 0644 "$f" "$DOC/docs/$(basename "$f")"; done
install -D -m 0644 packaging/grafana/switchyard-dashboard.json \
	"$ROOT/usr/share/$PKG/grafana/switchyard-dashboard.json"
install -D -m 0644 packaging/kubernetes/daemonset.yaml "$ROOT/usr/share/$PKG/kubernetes/daemonset.yaml"
for f in packaging/kubernetes/fleet/*.yaml; do
	install -D -m 0644 "$f" "$ROOT/usr/share/$PKG/kubernetes/fleet/$(basename "$f")"
done
install -D -m 0644 packaging/prometheus/switchyard-rules.yaml "$ROOT/usr/share/$PKG/prometheus/switchyard-rules.yaml"
install -D -m 0644 packaging/completion/syctl.bash "$ROOT/usr/share/bash-completion/completions/syctl"
install -D -m 0644 packaging/completion/_syctl "$ROOT/usr/share/zsh/vendor-completions/_syctl"

for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$ROOT/DEBIAN/$s"; done
echo /etc/switchyard/switchyard.yaml >"$ROOT/DEBIAN/conffiles"

# Depends: the shared libraries the binaries link, as their packages on this system.
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" >"$WORK/debian/control"
DEPENDS=$(cd "$WORK" && dpkg-shlibdeps -O "debian/$PKG/usr/sbin/switchyardd" "debian/$PKG/usr/bin/syctl" |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# And the dashboard's charting library, which switchyardd serves from /usr/share/javascript
# (/vendor/chart.js; docs/dashboard.md): Debian's, so apt keeps it patched.
DEPENDS="$DEPENDS, libjs-chart.js"

(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
	>"$ROOT/DEBIAN/md5sums"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)

cat >"$ROOT/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: switchyard maintainers <maintainers@users.noreply.r-seed-3af8b886.example>
Installed-Size: $SIZE
Depends: $DEPENDS
Section: admin
Priority: optional
Description: zero-downtime Redis migrations with eBPF connection steering
 switchyardd moves a Redis datastore's live traffic from a legacy endpoint to a
 target endpoint: eBPF programs attached to a cgroup v2 steer each client's
 connections at connect() (no proxy), observe both sides, capture writes for
 shadowing; the daemon mirrors writes, verifies parity and runs gated cutovers
 that pause or roll back on drift, errors or latency. syctl is its CLI (gRPC).
 .
 The programs are pinned in bpffs and keep steering while the daemon is stopped
 or upgraded; the next daemon adopts them. Purging the package removes them.
CONTROL

find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
