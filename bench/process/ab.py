#!/usr/bin/env python3
"""ab.py W NAME RUNS [--prepare CMD] CMD...: time CMD against the BASE build
and this tree alternately (base, after, after, base, ...), so a change in the
machine's load hits both sides alike; writes W/base_NAME.json and
W/after_NAME.json in hyperfine's shape (median, mean, stddev in seconds).
In CMD and the prepare command, @SIM@ is the side's simulation directory.
One warm-up round first."""
import json, os, shlex, statistics, subprocess, sys, time

W, name, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
rest = sys.argv[4:]
prepare = None
if rest and rest[0] == "--prepare":
    prepare, rest = rest[1], rest[2:]
cmd = " ".join(rest)
sides = {
    "base": (f"{W}/basesim", f"{W}/base/bin:" + os.environ["PATH"]),
    "after": (f"{W}/aftersim", os.environ["PATH"]),
}
times = {k: [] for k in sides}
failed = set()
for i in range(runs + 1):
    order = ("base", "after") if i % 2 == 0 else ("after", "base")
    for side in order:
        sim, path = sides[side]
        env = dict(os.environ, BEO_SOCKET=f"{sim}/bpmaster.sock", PATH=path)
        if prepare:
            subprocess.run(shlex.split(prepare.replace("@SIM@", sim)), env=env, check=False)
        t = time.perf_counter()
        r = subprocess.run(shlex.split(cmd.replace("@SIM@", sim)), env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        d = time.perf_counter() - t
        if r.returncode != 0:
            failed.add(side)
            sys.stderr.write(f"{side} {name}: exit {r.returncode}: {r.stderr[-300:].decode(errors='replace')}\n")
        if i > 0:
            times[side].append(d)
for side, v in times.items():
    res = {"median": "nan", "mean": "nan", "stddev": "nan"} if side in failed else {
        "median": statistics.median(v), "mean": statistics.mean(v),
        "stddev": statistics.stdev(v) if len(v) > 1 else 0.0}
    with open(f"{W}/{side}_{name}.json", "w") as f:
        json.dump({"results": [dict(res, command=cmd, times=v)]}, f)
