#!/usr/bin/python3
"""Times ravlt against PyTorch eager on the same machine, in one run,
alternating, and reports each against this machine's GEMM floor.

    bench/compare.py [--variants T,S] [--batches 1,8] [--threads 1,2] [--rounds 3]

For each case it writes a RAVLT checkpoint with the reference's random
weights (tests/reference/), converts it, checks that PyTorch's logits agree
with ours, then alternates timed rounds of each engine. The floor is
2 * MACs / GEMM rate, with MACs counting convolutions and attention matmuls
(per image at 224x224: T 2.61 G, S 4.88 G, B 10.58 G, L 17.21 G) and the GEMM
rate measured with oneDNN on the same thread count.

PyTorch's attention matmuls go through the system BLAS: with Debian's
reference BLAS it looks about twice as slow as it is. This script fetches
Debian's libopenblas0-openmp into bench/.cache (apt-get download, unpacked
with dpkg -x; nothing is installed) and points PyTorch at it.

Not yet compared: ONNX Runtime and OpenVINO.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACS = {"T": 2.61e9, "S": 4.88e9, "B": 10.58e9, "L": 17.21e9}
CACHE = os.path.join(ROOT, "bench", ".cache")
OPENBLAS = os.path.join(CACHE, "openblas", "usr/lib/x86_64-linux-gnu/openblas-openmp")


def fetch_openblas():
    """OpenBLAS's OpenMP build unpacked under bench/.cache, if it can be had."""
    if os.path.exists(os.path.join(OPENBLAS, "libblas.so.3")):
        return True
    os.makedirs(CACHE, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "libopenblas0-openmp"], cwd=CACHE, check=True,
                       capture_output=True)
        deb = next(f for f in os.listdir(CACHE) if f.startswith("libopenblas0-openmp") and f.endswith(".deb"))
        subprocess.run(["dpkg", "-x", deb, "openblas"], cwd=CACHE, check=True, capture_output=True)
    except (subprocess.CalledProcessError, StopIteration, FileNotFoundError) as e:
        print(f"could not fetch OpenBLAS ({e}); PyTorch keeps the system BLAS")
        return False
    return os.path.exists(os.path.join(OPENBLAS, "libblas.so.3"))

TORCH_TIMER = r"""
import sys, time, json, torch, numpy as np
sys.path.insert(0, sys.argv[1])
from ravlt_reference import VARIANTS, Ravlt
variant, ckpt, batch, threads, iters = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
m = Ravlt(VARIANTS[variant]).eval()
m.load_state_dict(torch.load(ckpt))
x = torch.from_numpy(np.load(sys.argv[7]))
times = []
with torch.no_grad():
    y = m(x)
    for _ in range(3):
        m(x)
    for _ in range(iters):
        t = time.perf_counter(); m(x); times.append(time.perf_counter() - t)
np.save(sys.argv[8], y.numpy())
print(json.dumps(times))
"""


def run(cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravlt", default=os.path.join(ROOT, "build", "ravlt"))
    ap.add_argument("--variants", default="T,S")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    a = ap.parse_args()
    import numpy as np

    torch_env = dict(os.environ)
    blas = "reference BLAS"
    if fetch_openblas():
        torch_env["LD_LIBRARY_PATH"] = OPENBLAS + ":" + torch_env.get("LD_LIBRARY_PATH", "")
        blas = "OpenBLAS (OpenMP)"
    print(f"PyTorch eager uses {blas}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in a.variants.split(","):
            ckpt = os.path.join(tmp, variant + ".pth")
            model = os.path.join(tmp, variant + ".rvlt")
            run(["/usr/bin/python3", os.path.join(ROOT, "tests/reference/make_checkpoint.py"),
                 "--variant", variant, "-o", ckpt])
            run([a.ravlt, "convert", ckpt, "-o", model, "-q"])
            for threads in [int(t) for t in a.threads.split(",")]:
                for batch in [int(b) for b in a.batches.split(",")]:
                    x = np.random.RandomState(0).randn(batch, 3, 224, 224).astype(np.float32)
                    xin, ours_out, torch_out = (os.path.join(tmp, n) for n in ("x.npy", "o.npy", "t.npy"))
                    np.save(xin, x)
                    run([a.ravlt, "run", "-m", model, "-i", xin, "-o", ours_out, "--threads", str(threads)])
                    ours_t, torch_t, floor = [], [], None
                    for _ in range(a.rounds):  # alternate the engines
                        r = json.loads(run([a.ravlt, "bench", "-m", model, "--batch", str(batch),
                                            "--threads", str(threads), "--iterations", str(a.iterations),
                                            "--macs", str(MACS[variant]), "--json"]))
                        ours_t.append(r["median_ms"])
                        floor = r["floor_ms"]
                        t = json.loads(run(["/usr/bin/python3", "-c", TORCH_TIMER,
                                            os.path.join(ROOT, "tests/reference"), variant, ckpt,
                                            str(batch), str(threads), str(a.iterations), xin, torch_out],
                                           env=torch_env))
                        torch_t.append(1000 * statistics.median(t))
                    ours_y, torch_y = np.load(ours_out), np.load(torch_out)
                    agree = float(np.linalg.norm(ours_y - torch_y) / np.linalg.norm(torch_y))
                    if agree > 1e-4:
                        sys.exit(f"logits disagree ({agree:.1e}) for {variant} batch {batch}")
                    o, p = statistics.median(ours_t), statistics.median(torch_t)
                    rows.append((variant, batch, threads, o, p, floor, agree))
                    print(f"RAVLT-{variant} batch {batch} threads {threads}: ravlt {o:.1f} ms, "
                          f"PyTorch eager {p:.1f} ms ({p / o:.2f}x ours), floor {floor:.1f} ms "
                          f"(ravlt at {o / floor:.2f}x the floor); logits agree to {agree:.1e}")
    print("\n| model | batch | threads | ravlt ms | PyTorch eager ms | PyTorch / ravlt | ravlt / floor |")
    print("|---|---|---|---|---|---|---|")
    for v, b, t, o, p, f, _ in rows:
        print(f"| RAVLT-{v} | {b} | {t} | {o:.1f} | {p:.1f} | {p / o:.2f} | {o / f:.2f} |")


if __name__ == "__main__":
    main()
