#!/bin/sh
# Boot timeline: how long each phase of a PXE boot takes, from QEMU's start
# to the node being up, for 1 node and for NODES (default 3) at once.
# Needs root and qemu-system-x86_64; runs `beo lab -timeline` (see
# pkg/lab: Cluster.Timeline). Usage: bench/boot-timeline/run.sh [BEO_BIN] [NODES]
set -eu
BEO=${1:-bin/beo}
NODES=${2:-3}
[ "$(id -u)" = 0 ] || { echo "boot-timeline: needs root (network namespace, taps)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "boot-timeline: needs qemu-system-x86_64" >&2; exit 2; }
for n in 1 "$NODES"; do
	echo "== $n node(s)"
	"$BEO" lab -n "$n" -timeline true 2>&1 | grep -v '^lab: state'
done
