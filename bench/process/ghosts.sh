#!/usr/bin/env bash
# bench/process/ghosts.sh — what issue 14 (ghosts, one cgroup per job, no
# orphans) costs the job start path and the master host, in one run;
# prints the markdown tables kept in bench/process/README.md:
#
#   sudo bench/process/ghosts.sh                      # RUNS=40 NODES=64 USERID=65534
#   sudo env BASE=4dcb9d7 bench/process/ghosts.sh     # also the tree before, in the same turns
#
# The floor, bpsh and (with BASE) the tree before's bpsh are timed in
# turns, run after run (bench/process/interleave), so that the machine's
# load, which drifts within seconds here, weighs on all of them alike.
#
# Needs root (the simulated nodes run as root, so that a non-root user's
# job takes the path a real node's would: another uid, its own cgroup),
# go, setpriv, python3. The timed commands run as USERID: interleave
# itself is started as that user, so no wrapper is timed.
# Everything it starts is killed by pid at exit, its temp dir removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-40}
NODES=${NODES:-64}
USERID=${USERID:-65534}
if [ "$(id -u)" != 0 ]; then echo "bench/process/ghosts.sh: skipped: needs root"; exit 0; fi
for t in go setpriv python3; do
  command -v "$t" >/dev/null || { echo "bench/process/ghosts.sh: skipped: $t missing"; exit 0; }
done
W=$(mktemp -d /tmp/beo-bench-ghosts.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
log() { echo "== $*" >&2; }
AS="setpriv --reuid=$USERID --regid=$USERID --clear-groups"

log "build"
mkdir -p "$W/bin" "$W/out"
chmod 777 "$W/out"
CGO_ENABLED=0 go build -trimpath -o "$W/bin/beo" .
CGO_ENABLED=0 go build -o "$W/bin/fanout" ./bench/process/fanout
CGO_ENABLED=0 go build -o "$W/bin/ghosts" ./bench/process/ghosts
CGO_ENABLED=0 go build -o "$W/bin/interleave" ./bench/process/interleave
ln -s beo "$W/bin/bpsh"
chmod -R a+rX "$W/bin"
if [ -n "${BASE:-}" ]; then
  log "build BASE=$BASE"
  mkdir -p "$W/base/src" "$W/base/bin"
  git archive "$BASE" | tar -x -C "$W/base/src"
  (cd "$W/base/src" && CGO_ENABLED=0 go build -trimpath -o "$W/base/bin/beo" .)
  ln -s beo "$W/base/bin/bpsh"
  chmod -R a+rX "$W/base"
fi
export PATH=$W/bin:$PATH

FANPORT=$((20000 + RANDOM % 20000))
"$W/bin/fanout" serve -n 1 -port "$FANPORT" &
PIDS+=($!)
sim() { # BIN DIR: a NODES-node simulation
  "$1" sim -n "$NODES" -dir "$2" -stats=false -ping 30 -wait 5m >"$2.out" 2>&1 &
  PIDS+=($!)
}
sim "$W/bin/beo" "$W/aftersim"
[ -n "${BASE:-}" ] && sim "$W/base/bin/beo" "$W/basesim"
until grep -q "simulated nodes up" "$W/aftersim.out" && { [ -z "${BASE:-}" ] || grep -q "simulated nodes up" "$W/basesim.out"; }; do sleep 0.5; done
chmod 755 "$W/aftersim" "$W"/basesim 2>/dev/null || true
for s in "$W"/*sim; do BEO_SOCKET=$s/bpmaster.sock bpsh -a true; done # warm every node's cache
cg=$(grep -o 'group=[^ ]*' "$W/aftersim/nodes/0.log" | head -1 || true)

T() { # as: the floor, bpsh and (BASE) the tree before's bpsh, in turns,
  # as root or as USERID, into W/out/{floor,bpsh,base}_AS.json
  local as=$1
  local pre=""
  [ "$as" = user ] && pre=$AS
  local cmds=("floor_$as=fanout -n 1 -port $FANPORT" "bpsh_$as=bpsh 0 true")
  [ -n "${BASE:-}" ] && cmds+=("base_$as=BEO_SOCKET=$W/basesim/bpmaster.sock $W/base/bin/bpsh 0 true")
  $pre "$W/bin/interleave" -r "$RUNS" -w 3 -out "$W/out" "${cmds[@]}" 2>"$W/out/$as.err" \
    || { echo "interleave ($as) failed:" >&2; cat "$W/out/$as.err" >&2; }
}
export BEO_SOCKET=$W/aftersim/bpmaster.sock
for as in user root; do
  log "bpsh 0 true as $as"
  T "$as"
done

log "ghosts of 1, 100 and 1000 remote processes (as uid $USERID)"
for n in 1 100 1000; do
  $AS env BEO_SOCKET="$BEO_SOCKET" "$W/bin/ghosts" -n "$n" -nodes "$NODES" >"$W/out/ghosts_$n" 2>&1 || cat "$W/out/ghosts_$n" >&2
done
log "pkg/ghost BenchmarkGhosts"
go test ./pkg/ghost -run '^$' -bench BenchmarkGhosts -benchtime 5x -count 3 2>/dev/null | grep '^BenchmarkGhosts' >"$W/out/spawner" || true

python3 - "$W/out" "$NODES" "$USERID" "${BASE:-}" "$cg" "$RUNS" <<'PY'
import json, os, re, statistics, sys
W, nodes, uid, base, cg, runs = sys.argv[1:]
def m(name):
    try:
        r = json.load(open(f"{W}/{name}.json"))["results"][0]
        return float(r.get("median", r["mean"])) * 1000, float(r["stddev"]) * 1000
    except Exception:
        return float("nan"), float("nan")
def fmt(name):
    med, sd = m(name)
    return f"{med:.1f} ± {sd:.1f} ms"
print(f"Simulated nodes: {nodes}; jobs' cgroups: {cg or 'none'}.")
print()
print(f"Medians of {runs} runs each, the commands of a row timed in turns (bench/process/interleave).")
print()
print("| operation | beo | Go connect+fork+exec floor (same user, same turns) | ratio | goal |")
print("|---|---|---|---|---|")
for who, label in (("user", f"as uid {uid}"), ("root", "as root")):
    print(f"| `bpsh 0 true` {label} | {fmt('bpsh_'+who)} | {fmt('floor_'+who)} | {m('bpsh_'+who)[0]/m('floor_'+who)[0]:.2f}× | {'≤ 2.5×' if who == 'user' else ''} |")
if base:
    print()
    print(f"Before/after in the same turns: BASE={base} against this tree, each on a {nodes}-node simulation of its own.")
    print()
    print("| operation | before | after | after/before | before ÷ floor | after ÷ floor |")
    print("|---|---|---|---|---|---|")
    for who, label in (("user", f"as uid {uid}"), ("root", "as root")):
        b, a, f = m('base_'+who)[0], m('bpsh_'+who)[0], m('floor_'+who)[0]
        print(f"| `bpsh 0 true` {label} | {fmt('base_'+who)} | {fmt('bpsh_'+who)} | {a/b:.2f} | {b/f:.2f}× | {a/f:.2f}× |")
print()
print("| remote processes | all started | every one with its ghost | ghosts after the last start | ghost PSS each | ghost RSS each | client RSS |")
print("|---|---|---|---|---|---|---|")
for n in (1, 100, 1000):
    try:
        kv = dict(x.split("=", 1) for x in open(f"{W}/ghosts_{n}").read().split())
        print(f"| {n} | {float(kv['started_ms']):.0f} ms | {float(kv['ghosts_ms']):.0f} ms | {float(kv['after_last_ms']):.0f} ms | {kv['pss_kib_each']} KiB | {kv['rss_kib_each']} KiB | {int(kv['client_rss_kib'])/1024:.1f} MiB |")
    except Exception as e:
        print(f"| {n} | failed: {e} | | | | | |")
sp = open(f"{W}/spawner").read()
rows = {}
for line in sp.splitlines():
    mm = re.match(r"BenchmarkGhosts/(\d+)-\d+\s+\d+\s+(.*)", line)
    if mm:
        vals = dict((u, float(v)) for v, u in re.findall(r"([\d.]+) (\S+)", mm.group(2)))
        rows.setdefault(int(mm.group(1)), []).append(vals)
if rows:
    print()
    print("pkg/ghost alone (BenchmarkGhosts, medians of 3): N ghosts started by one process, one after another.")
    print()
    print("| ghosts | start, per ghost | PSS per ghost |")
    print("|---|---|---|")
    for n, vs in sorted(rows.items()):
        print(f"| {n} | {statistics.median(v.get('µs/ghost', 0) for v in vs):.0f} µs | {statistics.median(v.get('PSS-KiB/ghost', 0) for v in vs):.1f} KiB |")
PY
