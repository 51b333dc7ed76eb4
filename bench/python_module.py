#!/usr/bin/env python3
"""The Python module's costs, measured: its overhead over the engine, threads
sharing a Model, and Ray Data's throughput per actor layout.

    .venv/bin/python bench/python_module.py --model T.rvlt [--rounds 7] [--threads 2]
        [--ray-model digits.rvlt --ray-images demo/digits]

overhead: Session.run (RAVLT-T, batch 1, 224x224) against `ravlt bench` on
  the same file, each round starting both in a fresh process in a shuffled
  order; the median over rounds of the per-round ratio of their median times.
threads: 4 Python threads, each with its own Session (threads=1) of one
  Model, running R runs each; their wall time against one such Session
  running R runs alone (2 cores: 2.0 is ideal, 4.0 is no parallelism).
ray: the images through ravlt.ray.classify on a local Ray instance (4
  logical CPUs), 1 actor x 2 threads against 2 actors x 1 thread, images/s
  (the job's wall time; Ray's start-up excluded).
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

from ab import cpu_model  # bench/ab.py: the CPU the figures come from

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.environ.get("RAVLT_CLI", os.path.join(HERE, "..", "build", "ravlt"))

SESSION_TIMING = r"""
import sys, time, json, numpy as np, ravlt
path, threads, iterations, warmup, batch, h, w = sys.argv[1:8]
s = ravlt.Session(ravlt.Model.load(path), threads=int(threads))
x = np.random.default_rng(0).standard_normal((int(batch), 3, int(h), int(w)), dtype=np.float32)
for _ in range(int(warmup)):
    s.run(x)
times = []
for _ in range(int(iterations)):
    t = time.perf_counter(); s.run(x); times.append(time.perf_counter() - t)
print(json.dumps({"median_ms": 1000 * sorted(times)[len(times) // 2]}))
"""

THREADS_TIMING = r"""
import sys, time, json, threading, numpy as np, ravlt
path, runs = sys.argv[1], int(sys.argv[2])
model = ravlt.Model.load(path)
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
def work(session):
    for _ in range(runs):
        session.run(x)
sessions = [ravlt.Session(model, threads=1) for _ in range(4)]
for s in sessions:
    s.run(x)  # planned outside the timing
t = time.perf_counter(); work(sessions[0]); lone = time.perf_counter() - t
threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
t = time.perf_counter()
for th in threads: th.start()
for th in threads: th.join()
four = time.perf_counter() - t
print(json.dumps({"lone_s": lone, "four_s": four}))
"""


def run_json(cmd):
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                      .strip().splitlines()[-1])


def overhead(args, rng):
    ratios, ours, cli = [], [], []
    for _ in range(args.rounds):
        order = ["python", "cli"]
        rng.shuffle(order)
        got = {}
        for which in order:
            if which == "cli":
                got[which] = run_json([CLI, "bench", "-m", args.model, "--batch", "1", "--threads",
                                       str(args.threads), "--iterations", "30", "--warmup", "5",
                                       "--json"])["median_ms"]
            else:
                got[which] = run_json([sys.executable, "-c", SESSION_TIMING, args.model,
                                       str(args.threads), "30", "5", "1", "224", "224"])["median_ms"]
        ratios.append(got["python"] / got["cli"])
        ours.append(got["python"])
        cli.append(got["cli"])
    print(f"overhead: Session.run {statistics.median(ours):.2f} ms, ravlt bench "
          f"{statistics.median(cli):.2f} ms (medians over rounds); Session.run / ravlt bench: "
          f"median of per-round ratios {statistics.median(ratios):.3f} "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")


def threads(args):
    ratios = []
    for _ in range(max(3, args.rounds // 2)):
        t = run_json([sys.executable, "-c", THREADS_TIMING, args.model, "8"])
        ratios.append(t["four_s"] / t["lone_s"])
    print(f"threads: 4 threads x Session(threads=1) / 1 Session alone, same runs each: median "
          f"{statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"2.0 = both cores busy, 4.0 = serialised)")


def ray_batch(args, rng):
    import ray
    import ravlt.ray
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    layouts = {"1 actor x 2 threads": (1, 2), "2 actors x 1 thread": (2, 1)}
    rates = {k: [] for k in layouts}
    n = None
    for _ in range(max(3, args.rounds // 2)):
        names = list(layouts)
        rng.shuffle(names)
        for name in names:
            actors, per = layouts[name]
            start = time.perf_counter()
            rows = ravlt.ray.classify(args.ray_images, args.ray_model, concurrency=actors,
                                      threads_per_actor=per, batch_size=64).take_all()
            rates[name].append(len(rows) / (time.perf_counter() - start))
            n = len(rows)
    ray.shutdown()
    for name, r in rates.items():
        print(f"ray: {n} images, {name}: {statistics.median(r):.0f} images/s "
              f"(rounds: {', '.join(f'{v:.0f}' for v in r)})")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a RAVLT-T .rvlt (overhead and threads)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ray-model", help="a classifier for the Ray figures (e.g. the digits demo)")
    p.add_argument("--ray-images", help="its images (a folder)")
    p.add_argument("--only", choices=["overhead", "threads", "ray"])
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    if args.only in (None, "overhead"):
        overhead(args, rng)
    if args.only in (None, "threads"):
        threads(args)
    if args.only in (None, "ray") and args.ray_model:
        ray_batch(args, rng)


if __name__ == "__main__":
    main()
