#!/bin/sh
# Boot timeline: how long each phase of a PXE boot takes, from QEMU's start
# to the node being up, for 1 node and for NODES (default 3) at once.
# Needs root and qemu-system-x86_64; runs `beo lab -timeline` (see
# pkg/lab: Cluster.Timeline) ROUNDS times (default 5) per cluster size and
# prints, per machine and moment, the median time after qemu started and
# the median phase that ends there. The machine is shared and emulated:
# single runs scatter by seconds, medians much less.
#
# Usage: [ROUNDS=5] [ACCEL=tcg] bench/boot-timeline/run.sh [BEO_BIN] [NODES]
set -eu
BEO=${1:-bin/beo}
NODES=${2:-3}
ROUNDS=${ROUNDS:-5}
ACCEL=${ACCEL:-tcg}
[ "$(id -u)" = 0 ] || { echo "boot-timeline: needs root (network namespace, taps)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "boot-timeline: needs qemu-system-x86_64" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for n in 1 "$NODES"; do
	r=1
	while [ "$r" -le "$ROUNDS" ]; do
		"$BEO" lab -n "$n" -accel "$ACCEL" -timeline true >"$out/$n.$r" 2>&1 || {
			echo "boot-timeline: beo lab -n $n failed (round $r):" >&2
			tail -20 "$out/$n.$r" >&2
			exit 1
		}
		r=$((r + 1))
	done
	echo "== $n node(s), median of $ROUNDS boots (s after qemu started, phase ending there)"
	# FormatTimeline lines: "  NAME(26 wide) T.TTs +D.DDs  (source)".
	cat "$out/$n".* | awk '
		/^lab: vm[0-9]+ .* boot timeline:/ { vm = $2; next }
		/^  / && vm != "" {
			name = substr($0, 3, 26); sub(/ +$/, "", name)
			rest = substr($0, 29); split(rest, f, " ")
			if (f[1] == "-") next
			k = vm SUBSEP name
			if (!(k in n)) { order[++cnt] = k }
			n[k]++; t[k, n[k]] = f[1] + 0; d[k, n[k]] = f[2] + 0
		}
		function median(a, k, m,    i, j, x, v) {
			for (i = 1; i <= m; i++) v[i] = a[k, i]
			for (i = 2; i <= m; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
			return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
		}
		END {
			for (i = 1; i <= cnt; i++) {
				split(order[i], p, SUBSEP)
				printf "  %-5s %-26s %7.2fs %+7.2fs  (%d runs)\n", p[1], p[2], median(t, order[i], n[order[i]]), median(d, order[i], n[order[i]]), n[order[i]]
			}
		}'
done
