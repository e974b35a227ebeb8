#!/bin/sh
# TFTP 64 MiB at blksize 1468 with atftp: beoserv vs tftpd-hpa (in.tftpd),
# same netns + veth setup, same run, best of N fetches each.
# Usage (root): bench/boot/tftp.sh [BEO_BIN] [N]
set -eu
BEO=${1:-bin/beo}; N=${2:-3}
S=bts$$; C=btc$$; D=$(mktemp -d)
cleanup() { [ -n "${P:-}" ] && kill "$P" 2>/dev/null; wait 2>/dev/null; ip netns del $S 2>/dev/null; ip netns del $C 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
ip netns add $S; ip netns add $C
ip link add bts$$ type veth peer name btc$$
ip link set bts$$ netns $S name vs; ip link set btc$$ netns $C name vc
ip -n $S addr add 10.99.0.1/24 dev vs; ip -n $S link set vs up; ip -n $S link set lo up
ip -n $C addr add 10.99.0.100/24 dev vc; ip -n $C link set vc up; ip -n $C link set lo up
mkdir "$D/root"; head -c 67108864 /dev/urandom > "$D/root/big"
printf 'interface vs\nnodes 1\niprange 10.99.0.100 10.99.0.100\n' > "$D/config"

fetch() { # name: best MiB/s of N fetches
  best=0; i=0
  while [ $i -lt "$N" ]; do
    rm -f "$D/out"
    t0=$(date +%s.%N)
    ip netns exec $C atftp --option "blksize 1468" --option "tsize 0" -g -r big -l "$D/out" 10.99.0.1 69 >/dev/null 2>&1
    t1=$(date +%s.%N)
    cmp -s "$D/out" "$D/root/big" || { echo "$1: transfer corrupt" >&2; exit 1; }
    best=$(echo "$t0 $t1 $best" | awk '{r=64/($2-$1); print (r>$3)?r:$3}')
    i=$((i+1))
  done
  echo "$1 $best MiB/s"
}

ip netns exec $S "$BEO" beoserv -config "$D/config" -bootdir "$D" -tftproot "$D/root" -http -1 -logdir - -unknown "$D/unk" -no-ra 2>"$D/beo.log" & P=$!
sleep 1; fetch beoserv
kill $P; wait $P 2>/dev/null || true; P=
ip netns exec $S in.tftpd -L -s "$D/root" -a 10.99.0.1:69 & P=$!
sleep 1; fetch tftpd-hpa
