#!/usr/bin/env python3
"""A short `ravlt classify` job, from start to exit: the default against
`--packing`, alternated; the median of per-round ratios.

    bench/short_jobs.py --ravlt build/ravlt --models T=t.rvlt,S=s.rvlt \
        [--images demo/digits] [--counts 1,4,8] [--rounds 7] [--threads 2]

For a job of at most 4 images `classify` reads the float32 weights where
the model file stores them (README, "Weights read in place"); from 5 up it
packs them, and the two sides run the same (their ratio is the noise).
Each round runs every (model, image count) once each way, in a shuffled
order, each process starting afresh, and takes the ratio default /
`--packing` of their wall times. The first N images of the folder (in
path order) are linked into a folder of their own. Prints one line per
(model, count) and the CPU it ran on.
"""
import argparse
import os
import random
import statistics
import subprocess
import tempfile
import time

from ab import cpu_model  # this folder is the script's: sys.path[0]


def classify(ravlt, model, folder, threads, extra):
    start = time.perf_counter()
    subprocess.run([ravlt, "classify", "-m", model, folder, "--threads", str(threads)] + extra,
                   check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ravlt", default="build/ravlt", help="the ravlt binary")
    p.add_argument("--models", required=True, help="NAME=FILE.rvlt,... (classifiers)")
    p.add_argument("--images", default=os.path.join(os.path.dirname(__file__), "..", "demo",
                                                    "digits"))
    p.add_argument("--counts", default="1,4,8", help="images per job")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    models = dict(m.split("=", 1) for m in a.models.split(","))
    counts = [int(c) for c in a.counts.split(",")]
    files = sorted(f for f in os.listdir(a.images)
                   if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")))
    if len(files) < max(counts):
        p.error(f"{a.images} holds {len(files)} images; --counts asks for {max(counts)}")
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for n in counts:
            folders[n] = os.path.join(tmp, str(n))
            os.makedirs(folders[n])
            for f in files[:n]:
                os.symlink(os.path.abspath(os.path.join(a.images, f)), os.path.join(folders[n], f))
        times = {(m, n, side): [] for m in models for n in counts for side in ("default", "packed")}
        for r in range(a.rounds):
            jobs = [(m, n, side) for m in models for n in counts for side in ("default", "packed")]
            rng.shuffle(jobs)
            for m, n, side in jobs:
                extra = ["--packing"] if side == "packed" else []
                times[(m, n, side)].append(classify(a.ravlt, models[m], folders[n], a.threads,
                                                    extra))
            print(f"round {r + 1} of {a.rounds}", flush=True)
    print(f"CPU: {cpu_model()}, {a.threads} threads, {a.rounds} rounds")
    for m in models:
        for n in counts:
            d, k = times[(m, n, "default")], times[(m, n, "packed")]
            ratio = statistics.median(x / y for x, y in zip(d, k))
            images = f"{n} image" + ("" if n == 1 else "s")
            print(f"{m} {images:>10}: --packing {statistics.median(k):8.1f} ms, default "
                  f"{statistics.median(d):8.1f} ms, default / --packing {ratio:.3f}")


if __name__ == "__main__":
    main()
