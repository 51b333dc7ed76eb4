#!/usr/bin/env python3
"""Two builds of the `ravlt` tool, alternated: the median of per-round ratios.

    bench/ab.py --old OLD/ravlt --new build/ravlt --models T=t.rvlt,S=s.rvlt \
        [--batches 1,8] [--threads 2] [--rounds 7] [--metric run|ready] [--pause 4] \
        [--old-args "..."] [--new-args "..."]

Each round runs every (model, batch) once on each binary, in a shuffled
order, and takes the ratio new / old of their median run times (`ravlt
bench --json`), or with `--metric ready` of their time to the first
answer (open + checksum + plan + first run, each process starting cold). The host's speed drifts within a minute; a ratio taken
within one round, medianed over rounds, is what survives that. Prints one
line per (model, batch) and the CPU it ran on.

`--pause S` sleeps S seconds before each process: on a virtual machine
that hands freed memory back to its host (free page reporting, after about
2 s), a process started right after another reuses what that one freed,
and one started after a pause gets memory the host must fault in again, as
a program started on a quiet machine does. Ready times differ a lot between
the two; measure both.

`--old-args` / `--new-args` add options to one side's `ravlt bench` (the
same binary on both sides compares options: `--new-args "--cache-dir D"`).
"""
import argparse
import json
import random
import shlex
import statistics
import subprocess
import time


def bench(binary, extra, model, batch, threads, iterations, metric):
    out = json.loads(subprocess.run(
        [binary, "bench", "-m", model, "--batch", str(batch), "--threads", str(threads),
         "--iterations", str(iterations), "--warmup", "3", "--json"] + shlex.split(extra),
        check=True, capture_output=True, text=True).stdout)
    if metric == "ready":
        return out["open_ms"] + out["plan_ms"] + out["first_run_ms"]
    return out["median_ms"]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="the baseline ravlt binary")
    p.add_argument("--new", required=True, help="the ravlt binary measured against it")
    p.add_argument("--models", required=True, help="NAME=FILE.rvlt,... ")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--metric", choices=["run", "ready"], default="run",
                   help="run: median run time; ready: open + checksum + plan + first run")
    p.add_argument("--old-args", default="", help="more options for the old side's bench")
    p.add_argument("--new-args", default="", help="more options for the new side's bench")
    p.add_argument("--pause", type=float, default=0.0,
                   help="seconds to sleep before each process (memory handed back to the host)")
    a = p.parse_args()
    models = dict(item.split("=", 1) for item in a.models.split(","))
    batches = [int(b) for b in a.batches.split(",")]
    rng = random.Random(a.seed)
    ratios = {(m, b): [] for m in models for b in batches}
    times = {(m, b, which): [] for m in models for b in batches for which in ("old", "new")}
    for r in range(a.rounds):
        cases = list(ratios)
        rng.shuffle(cases)
        for m, b in cases:
            iterations = (20 if b == 1 else 6) if a.metric == "run" else 1
            order = ["old", "new"]
            rng.shuffle(order)
            got = {}
            for which in order:
                time.sleep(a.pause)
                got[which] = bench(getattr(a, which), getattr(a, which + "_args"), models[m], b,
                                   a.threads, iterations, a.metric)
                times[(m, b, which)].append(got[which])
            ratios[(m, b)].append(got["new"] / got["old"])
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    print(f"CPU: {cpu_model()}, {a.threads} threads, {a.rounds} rounds")
    print(f"metric: {a.metric}" + (f", {a.pause:g} s pause before each process" if a.pause else ""))
    print("model batch  old median ms  new median ms  median(new/old)  min..max")
    for (m, b), rs in ratios.items():
        print(f"{m:5} {b:5}  {statistics.median(times[(m, b, 'old')]):13.2f}  "
              f"{statistics.median(times[(m, b, 'new')]):13.2f}  {statistics.median(rs):15.3f}  "
              f"{min(rs):.3f}..{max(rs):.3f}")


if __name__ == "__main__":
    main()
