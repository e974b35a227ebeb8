#!/bin/sh
# DHCP DORA/s: perfdhcp (Debian kea-admin) against beoserv, and against
# Kea's kea-dhcp4 when installed, in the same netns + veth setup, same run.
# Usage (root): bench/boot/dhcp.sh [BEO_BIN] [SECONDS] [RATE]
# Prints one line per server: name, DORA/s (perfdhcp's completed exchanges/s).
set -eu
BEO=${1:-bin/beo}; SECS=${2:-10}; RATE=${3:-30000}
CLIENTS=1000
S=bbs$$; C=bbc$$; D=$(mktemp -d)
cleanup() { [ -n "${P:-}" ] && kill "$P" 2>/dev/null; wait 2>/dev/null; ip netns del $S 2>/dev/null; ip netns del $C 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
ip netns add $S; ip netns add $C
ip link add bbs$$ type veth peer name bbc$$
ip link set bbs$$ netns $S name vs; ip link set bbc$$ netns $C name vc
ip -n $S addr add 10.99.0.1/16 dev vs; ip -n $S link set vs up; ip -n $S link set lo up
ip -n $C addr add 10.99.255.254/16 dev vc; ip -n $C link set vc up; ip -n $C link set lo up

# perfdhcp's clients: base MAC 00:0c:01:02:00:00 plus 0..CLIENTS-1.
{ echo "interface vs"; echo "nodes $CLIENTS"; echo "iprange 10.99.1.0 10.99.5.255"; echo "nodeassign off"
  i=0; while [ $i -lt $CLIENTS ]; do printf 'node %d 00:0c:01:02:%02x:%02x\n' $i $((i/256)) $((i%256)); i=$((i+1)); done
} > "$D/config"

perf() { # name
  out=$(ip netns exec $C perfdhcp -4 -l vc -r "$RATE" -R $CLIENTS -b mac=00:0c:01:02:00:00 -p "$SECS" 2>&1 || true)
  echo "$1 $(echo "$out" | sed -n 's/^Rate: \([0-9.]*\) 4-way.*/\1/p') DORA/s, DISCOVER drops $(echo "$out" | sed -n 's/^drops ratio: //p' | head -1)"
}

ip netns exec $S "$BEO" beoserv -config "$D/config" -bootdir "$D" -tftp-port -1 -http -1 -logdir - -unknown "$D/unk" -no-ra 2>"$D/beo.log" & P=$!
sleep 1
perf beoserv
kill $P; wait $P 2>/dev/null || true; P=

if command -v kea-dhcp4 >/dev/null; then
  cat > "$D/kea.json" <<EOK
{"Dhcp4": {"interfaces-config": {"interfaces": ["vs"], "dhcp-socket-type": "raw"},
 "lease-database": {"type": "memfile", "persist": false},
 "valid-lifetime": 604800,
 "subnet4": [{"id": 1, "subnet": "10.99.0.0/16", "pools": [{"pool": "10.99.1.0 - 10.99.5.255"}]}],
 "loggers": [{"name": "kea-dhcp4", "severity": "ERROR", "output_options": [{"output": "stderr"}]}]}}
EOK
  KEA_PIDFILE_DIR=$D KEA_LOCKFILE_DIR=$D ip netns exec $S kea-dhcp4 -c "$D/kea.json" 2>"$D/kea.log" & P=$!
  sleep 2
  perf kea-dhcp4
fi
