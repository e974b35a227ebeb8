#!/usr/bin/env bash
# bench/process/ghosts.sh — what issue 14 (ghosts, one cgroup per job, no
# orphans) costs the job start path and the master host, in one run;
# prints the markdown tables kept in bench/process/README.md:
#
#   sudo bench/process/ghosts.sh                      # RUNS=40 ROUNDS=8 NODES=64 USERID=65534
#   sudo env BASE=4dcb9d7 bench/process/ghosts.sh     # also the tree before, alternately
#
# Needs root (the simulated nodes run as root, so that a non-root user's
# job takes the path a real node's would: another uid, its own cgroup),
# go, hyperfine, setpriv, python3. The timed commands run as USERID:
# hyperfine itself is started as that user, so no wrapper is timed.
# Everything it starts is killed by pid at exit, its temp dir removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-40}
ROUNDS=${ROUNDS:-8} # the floor and bpsh alternate, RUNS/ROUNDS runs at a time
NODES=${NODES:-64}
USERID=${USERID:-65534}
if [ "$(id -u)" != 0 ]; then echo "bench/process/ghosts.sh: skipped: needs root"; exit 0; fi
for t in go hyperfine setpriv python3; do
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
# A python3 the user may run (root's pyenv shims are not).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

log "build"
mkdir -p "$W/bin" "$W/out"
chmod 777 "$W/out"
CGO_ENABLED=0 go build -trimpath -o "$W/bin/beo" .
CGO_ENABLED=0 go build -o "$W/bin/fanout" ./bench/process/fanout
CGO_ENABLED=0 go build -o "$W/bin/ghosts" ./bench/process/ghosts
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

P() { # as NAME_A CMD_A NAME_B CMD_B: the two commands in ROUNDS rounds of
  # RUNS/ROUNDS runs each, A then B, into W/out/NAME_A.json and NAME_B.json
  # (every run of every round): on a shared machine whose load drifts
  # within a minute, a ratio of two commands timed a minute apart says
  # more about the drift than about them.
  local as=$1 na=$2 ca=$3 nb=$4 cb=$5 r
  local pre=""
  [ "$as" = user ] && pre=$AS
  for r in $(seq "$ROUNDS"); do
    $pre hyperfine -N --warmup 1 -r $((RUNS / ROUNDS)) --export-json "$W/out/pair_${na}_$r.json" "$ca" "$cb" >/dev/null 2>"$W/out/$na.err" \
      || { echo "hyperfine $na/$nb failed:" >&2; cat "$W/out/$na.err" >&2; }
  done
  python3 - "$W/out" "$na" "$nb" "$ROUNDS" <<'PY'
import json, statistics, sys
W, na, nb, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
times = {na: [], nb: []}
for r in range(1, rounds + 1):
    try:
        res = json.load(open(f"{W}/pair_{na}_{r}.json"))["results"]
    except Exception:
        continue
    for name, x in zip((na, nb), res):
        times[name] += x["times"]
for name, v in times.items():
    out = {"median": statistics.median(v), "mean": statistics.mean(v), "stddev": statistics.stdev(v), "times": v} if len(v) > 1 \
        else {"median": "nan", "mean": "nan", "stddev": "nan"}
    json.dump({"results": [out]}, open(f"{W}/{name}.json", "w"))
PY
}
B() { # as NAME cmd...: the BASE build and this tree alternately (ab.py)
  [ -n "${BASE:-}" ] || return 0
  local as=$1 name=$2; shift 2
  local pre=""
  [ "$as" = user ] && pre=$AS
  $pre "$PY" bench/process/ab.py "$W/out" "$name" "$RUNS" "$@"
}
ln -s ../aftersim "$W/out/aftersim"
[ -n "${BASE:-}" ] && ln -s ../basesim "$W/out/basesim" && ln -s ../base "$W/out/base"
export BEO_SOCKET=$W/aftersim/bpmaster.sock
for as in user root; do
  log "bpsh 0 true as $as"
  P "$as" "floor_$as" "fanout -n 1 -port $FANPORT" "bpsh_$as" "bpsh 0 true"
  B "$as" "ab_$as" "bpsh 0 true"
done

log "ghosts of 1, 100 and 1000 remote processes (as uid $USERID)"
for n in 1 100 1000; do
  $AS env BEO_SOCKET="$BEO_SOCKET" "$W/bin/ghosts" -n "$n" -nodes "$NODES" >"$W/out/ghosts_$n" 2>&1 || cat "$W/out/ghosts_$n" >&2
done
log "pkg/ghost BenchmarkGhosts"
go test ./pkg/ghost -run '^$' -bench BenchmarkGhosts -benchtime 5x -count 3 2>/dev/null | grep '^BenchmarkGhosts' >"$W/out/spawner" || true

python3 - "$W/out" "$NODES" "$USERID" "${BASE:-}" "$cg" "$ROUNDS" <<'PY'
import json, os, re, statistics, sys
W, nodes, uid, base, cg, rounds = sys.argv[1:]
def m(name):
    r = json.load(open(f"{W}/{name}.json"))["results"][0]
    return float(r.get("median", r["mean"])) * 1000, float(r["stddev"]) * 1000
def fmt(name):
    med, sd = m(name)
    return f"{med:.1f} ± {sd:.1f} ms"
print(f"Simulated nodes: {nodes}; jobs' cgroups: {cg or 'none'}.")
print()
print(f"| operation | beo | Go connect+fork+exec floor (same user, same run; {rounds} rounds alternating) | ratio | goal |")
print("|---|---|---|---|---|")
for who, label in (("user", f"as uid {uid}"), ("root", "as root")):
    print(f"| `bpsh 0 true` {label} | {fmt('bpsh_'+who)} | {fmt('floor_'+who)} | {m('bpsh_'+who)[0]/m('floor_'+who)[0]:.2f}× | {'≤ 2.5×' if who == 'user' else ''} |")
if base:
    print()
    print(f"Before/after, alternating (ab.py): BASE={base} against this tree, each on a {nodes}-node simulation of its own.")
    print()
    print("| operation | before | after | after/before |")
    print("|---|---|---|---|")
    for who, label in (("user", f"as uid {uid}"), ("root", "as root")):
        if os.path.exists(f"{W}/base_ab_{who}.json"):
            print(f"| `bpsh 0 true` {label} | {fmt('base_ab_'+who)} | {fmt('after_ab_'+who)} | {m('after_ab_'+who)[0]/m('base_ab_'+who)[0]:.2f} |")
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
