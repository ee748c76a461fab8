#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/tls.sh — what TLS costs the control plane: one switchyardd serving the same API on
# its unix socket, on clear-text TCP (--insecure-listen) and on mTLS TCP, measured in one
# run by bench/tls_bench.py (grpcio): unary Status calls/s on one kept connection, and
# calls/s when every call opens a new connection (the handshake's cost).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
ID="sy-tlsbench-$$"
WORK=$(mktemp -d "/tmp/$ID.XXXXXX")
mkdir "$CGROOT/$ID" "$CGROOT/$ID-2"
cleanup() {
	set +e
	for p in ${pid:-} ${pid2:-}; do kill "$p" && wait "$p"; done
	"$OUT/switchyardd" --uninstall --bpffs "/sys/fs/bpf/$ID" >/dev/null 2>&1
	"$OUT/switchyardd" --uninstall --bpffs "/sys/fs/bpf/$ID-2" >/dev/null 2>&1
	rmdir "$CGROOT/$ID" "$CGROOT/$ID-2"
	rm -rf "$WORK"
}
trap cleanup EXIT
cert() { # NAME CN [SAN]
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$1.key" \
		-out "$WORK/$1.csr" -subj "/CN=$2" 2>/dev/null
	echo "${3:+subjectAltName=$3}" >"$WORK/$1.ext"
	openssl x509 -req -in "$WORK/$1.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
		-out "$WORK/$1.pem" -days 1 -extfile "$WORK/$1.ext" 2>/dev/null
	chmod 600 "$WORK/$1.key"
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" \
	-out "$WORK/ca.pem" -days 1 -subj "/CN=bench CA" 2>/dev/null
cert server localhost "DNS:localhost,IP:127.0.0.1"
cert client bench
P1=$((20000 + RANDOM % 20000))
P2=$((P1 + 1))
"$OUT/switchyardd" --cgroup "$CGROOT/$ID" --bpffs "/sys/fs/bpf/$ID" --state-dir "$WORK/state" \
	--listen "unix:$WORK/sy.sock" --listen "127.0.0.1:$P1" --log-level warning \
	--tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" --tls-client-ca "$WORK/ca.pem" &
pid=$!
"$OUT/switchyardd" --cgroup "$CGROOT/$ID-2" --bpffs "/sys/fs/bpf/$ID-2" --state-dir "$WORK/state2" \
	--listen "unix:$WORK/sy2.sock" --listen "127.0.0.1:$P2" --insecure-listen --log-level error &
pid2=$!
until [ -S "$WORK/sy.sock" ] && [ -S "$WORK/sy2.sock" ]; do sleep 0.05; done
/usr/bin/python3 bench/tls_bench.py "$WORK" "$P1" "$P2" "${SECONDS_PER_ROUND:-3}"
