#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian package that building, testing and the demo need.
# Idempotent: when everything is present it only runs dpkg-query (well under a second).
set -eu

PKGS="
build-essential make pkg-config clang llvm clang-format
libbpf-dev bpftool libelf-dev zlib1g-dev
libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
libnghttp2-dev libyaml-dev libcmocka-dev libhiredis-dev libsystemd-dev
redis-server redis-tools
python3-pytest python3-redis python3-grpcio python3-protobuf python3-h2
libmicrohttpd-dev prometheus
libjson-c-dev liblua5.4-dev
libssl-dev openssl
chromium nodejs
iproute2 util-linux procps
dpkg-dev help2man systemd init-system-helpers python3-yaml
zsh
libjs-chart.js
etcd-server etcd-client
nftables
"

missing=""
for p in $PKGS; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

# The browser tests' one npm package (playwright-core: it drives Debian's chromium and
# downloads no browser), pinned by tests/browser/package-lock.json.
browser_deps() {
	dir="$(dirname "$0")/../tests/browser"
	if [ ! -d "$dir/node_modules/playwright-core" ]; then
		command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
}

if [ -z "$missing" ]; then
	browser_deps
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi

echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
# redis-server's package starts a system instance on 6379; tests use their own ports.
browser_deps
