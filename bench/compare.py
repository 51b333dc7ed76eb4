#!/usr/bin/python3
"""Times ravlt against ONNX Runtime and PyTorch eager on the same machine,
in one run, alternating, and reports each against this machine's GEMM floor.

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

ONNX Runtime (all graph optimizations, same thread count) runs the
reference exported to ONNX; it is installed from PyPI into a virtual
environment under bench/.cache (Debian's Python refuses pip installs into
the system). Not yet compared: OpenVINO.
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

VENV = os.path.join(CACHE, "venv")

ORT_TIMER = r"""
import sys, time, json, numpy as np, onnxruntime as ort
model, threads, iters, x_path, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
x = np.load(x_path)
y = s.run(None, {"x": x})[0]
for _ in range(3):
    s.run(None, {"x": x})
times = []
for _ in range(iters):
    t = time.perf_counter(); s.run(None, {"x": x}); times.append(time.perf_counter() - t)
np.save(out_path, y)
print(json.dumps(times))
"""

EXPORT = r"""
import sys, torch
sys.path.insert(0, sys.argv[1])
from ravlt_reference import VARIANTS, Ravlt
m = Ravlt(VARIANTS[sys.argv[2]]).eval()
m.load_state_dict(torch.load(sys.argv[3]))
torch.onnx.export(m, torch.randn(1, 3, 224, 224), sys.argv[4], opset_version=17, input_names=["x"],
                  output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
"""


def ort_python():
    """A virtual environment with ONNX Runtime (made on first use)."""
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run(["/usr/bin/python3", "-m", "venv", VENV], check=True)
    if subprocess.run([python, "-c", "import onnxruntime"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "onnxruntime"], check=True)
    return python


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
    ort_py = ort_python()
    print("ONNX Runtime " + run([ort_py, "-c", "import onnxruntime; print(onnxruntime.__version__)"]).strip())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in a.variants.split(","):
            ckpt = os.path.join(tmp, variant + ".pth")
            model = os.path.join(tmp, variant + ".rvlt")
            run(["/usr/bin/python3", os.path.join(ROOT, "tests/reference/make_checkpoint.py"),
                 "--variant", variant, "-o", ckpt])
            run([a.ravlt, "convert", ckpt, "-o", model, "-q"])
            onnx = os.path.join(tmp, variant + ".onnx")
            run(["/usr/bin/python3", "-c", EXPORT, os.path.join(ROOT, "tests/reference"), variant, ckpt, onnx])
            for threads in [int(t) for t in a.threads.split(",")]:
                for batch in [int(b) for b in a.batches.split(",")]:
                    x = np.random.RandomState(0).randn(batch, 3, 224, 224).astype(np.float32)
                    xin, ours_out, torch_out, ort_out = (os.path.join(tmp, n) for n in ("x.npy", "o.npy", "t.npy", "r.npy"))
                    np.save(xin, x)
                    run([a.ravlt, "run", "-m", model, "-i", xin, "-o", ours_out, "--threads", str(threads)])
                    ours_t, torch_t, ort_t, floor = [], [], [], None
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
                        t = json.loads(run([ort_py, "-c", ORT_TIMER, onnx, str(threads), str(a.iterations),
                                            xin, ort_out]))
                        ort_t.append(1000 * statistics.median(t))
                    ours_y, torch_y, ort_y = np.load(ours_out), np.load(torch_out), np.load(ort_out)
                    agree = float(np.linalg.norm(ours_y - torch_y) / np.linalg.norm(torch_y))
                    agree_ort = float(np.linalg.norm(ort_y - torch_y) / np.linalg.norm(torch_y))
                    if agree > 1e-4 or agree_ort > 1e-4:
                        sys.exit(f"logits disagree (ravlt {agree:.1e}, ONNX Runtime {agree_ort:.1e}) "
                                 f"for {variant} batch {batch}")
                    o, p, r = statistics.median(ours_t), statistics.median(torch_t), statistics.median(ort_t)
                    rows.append((variant, batch, threads, o, r, p, floor))
                    print(f"RAVLT-{variant} batch {batch} threads {threads}: ravlt {o:.1f} ms, "
                          f"ONNX Runtime {r:.1f} ms ({r / o:.2f}x ours), PyTorch eager {p:.1f} ms "
                          f"({p / o:.2f}x ours), floor {floor:.1f} ms (ravlt at {o / floor:.2f}x); "
                          f"logits vs PyTorch: ravlt {agree:.1e}, ONNX Runtime {agree_ort:.1e}")
    print("\n| model | batch | threads | ravlt ms | ONNX Runtime ms | PyTorch eager ms "
          "| ORT / ravlt | PyTorch / ravlt | ravlt / floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v, b, t, o, r, p, f in rows:
        print(f"| RAVLT-{v} | {b} | {t} | {o:.1f} | {r:.1f} | {p:.1f} | {r / o:.2f} | {p / o:.2f} | {o / f:.2f} |")


if __name__ == "__main__":
    main()
