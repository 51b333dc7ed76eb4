#!/usr/bin/python3
"""Times ravlt against ONNX Runtime, OpenVINO and PyTorch eager on the same
machine, in one run, alternating, and reports each against this machine's
GEMM floor.

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

ONNX Runtime (all graph optimizations, same thread count) and OpenVINO
(CPU plugin, latency hint, same thread count, float32 inference precision:
on CPUs with bfloat16 units it would otherwise compute in bfloat16) run the
reference exported to ONNX; they are installed from PyPI into a virtual
environment under bench/.cache (Debian's Python refuses pip installs into
the system).

Before timing, every peer's logits are compared with PyTorch's (relative L2;
a case stops if any differs by more than 1e-4), and PyTorch's own logits at
1 and at 2 threads are compared with each other: the table of gaps printed
last puts ravlt's numerical agreement beside the peers'.
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


OPENVINO_TIMER = r"""
import sys, time, json, numpy as np, openvino as ov
model, threads, iters, x_path, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
x = np.load(x_path)
core = ov.Core()
m = core.read_model(model)
m.reshape({"x": list(x.shape)})
c = core.compile_model(m, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                  "INFERENCE_PRECISION_HINT": "f32"})
r = c.create_infer_request()
y = r.infer({"x": x})[0].copy()
for _ in range(3):
    r.infer({"x": x})
times = []
for _ in range(iters):
    t = time.perf_counter(); r.infer({"x": x}); times.append(time.perf_counter() - t)
np.save(out_path, y)
print(json.dumps(times))
"""


def peer_python():
    """A virtual environment with ONNX Runtime and OpenVINO (made on first use)."""
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run(["/usr/bin/python3", "-m", "venv", VENV], check=True)
    for module, package in (("onnxruntime", "onnxruntime"), ("openvino", "openvino")):
        if subprocess.run([python, "-c", "import " + module], capture_output=True).returncode != 0:
            subprocess.run([python, "-m", "pip", "install", "-q", package], check=True)
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


def rel_l2(a, b):
    import numpy as np
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


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
    py = peer_python()
    print(run([py, "-c", "import onnxruntime, openvino; print('ONNX Runtime', onnxruntime.__version__, "
                         "'| OpenVINO', openvino.__version__)"]).strip())
    engines = ("ravlt", "ONNX Runtime", "OpenVINO", "PyTorch eager")
    rows, gaps = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in a.variants.split(","):
            ckpt = os.path.join(tmp, variant + ".pth")
            model = os.path.join(tmp, variant + ".rvlt")
            run(["/usr/bin/python3", os.path.join(ROOT, "tests/reference/make_checkpoint.py"),
                 "--variant", variant, "-o", ckpt])
            run([a.ravlt, "convert", ckpt, "-o", model, "-q"])
            onnx = os.path.join(tmp, variant + ".onnx")
            run(["/usr/bin/python3", "-c", EXPORT, os.path.join(ROOT, "tests/reference"), variant, ckpt, onnx])
            torch_logits = {}  # (batch, threads) -> PyTorch's logits
            for threads in [int(t) for t in a.threads.split(",")]:
                for batch in [int(b) for b in a.batches.split(",")]:
                    x = np.random.RandomState(0).randn(batch, 3, 224, 224).astype(np.float32)
                    xin = os.path.join(tmp, "x.npy")
                    out = {e: os.path.join(tmp, f"out{i}.npy") for i, e in enumerate(engines)}
                    np.save(xin, x)
                    run([a.ravlt, "run", "-m", model, "-i", xin, "-o", out["ravlt"], "--threads", str(threads)])
                    times = {e: [] for e in engines}
                    floor = None
                    for _ in range(a.rounds):  # alternate the engines
                        r = json.loads(run([a.ravlt, "bench", "-m", model, "--batch", str(batch),
                                            "--threads", str(threads), "--iterations", str(a.iterations),
                                            "--macs", str(MACS[variant]), "--json"]))
                        times["ravlt"].append(r["median_ms"])
                        floor = r["floor_ms"]
                        t = json.loads(run(["/usr/bin/python3", "-c", TORCH_TIMER,
                                            os.path.join(ROOT, "tests/reference"), variant, ckpt,
                                            str(batch), str(threads), str(a.iterations), xin,
                                            out["PyTorch eager"]], env=torch_env))
                        times["PyTorch eager"].append(1000 * statistics.median(t))
                        for engine, timer in (("ONNX Runtime", ORT_TIMER), ("OpenVINO", OPENVINO_TIMER)):
                            t = json.loads(run([py, "-c", timer, onnx, str(threads), str(a.iterations),
                                                xin, out[engine]]))
                            times[engine].append(1000 * statistics.median(t))
                    y = {e: np.load(out[e]) for e in engines}
                    ref = y["PyTorch eager"]
                    agree = {e: rel_l2(y[e], ref) for e in engines if e != "PyTorch eager"}
                    bad = {e: g for e, g in agree.items() if g > 1e-4}
                    if bad:
                        sys.exit(f"logits disagree with PyTorch's for RAVLT-{variant} batch {batch}: {bad}")
                    torch_logits[(batch, threads)] = ref
                    gaps.append((variant, batch, threads, agree))
                    med = {e: statistics.median(times[e]) for e in engines}
                    rows.append((variant, batch, threads, med, floor))
                    o = med["ravlt"]
                    print(f"RAVLT-{variant} batch {batch} threads {threads}: ravlt {o:.1f} ms, " +
                          ", ".join(f"{e} {med[e]:.1f} ms ({med[e] / o:.2f}x ours)" for e in engines[1:]) +
                          f", floor {floor:.1f} ms (ravlt at {o / floor:.2f}x)")
            for batch in [int(b) for b in a.batches.split(",")]:
                runs = sorted(t for (b, t) in torch_logits if b == batch)
                if len(runs) > 1:
                    g = rel_l2(torch_logits[(batch, runs[-1])], torch_logits[(batch, runs[0])])
                    gaps.append((variant, batch, f"{runs[0]} vs {runs[-1]}", {"PyTorch vs itself": g}))
    print("\n| model | batch | threads | " + " | ".join(f"{e} ms" for e in engines) +
          " | ORT / ravlt | OpenVINO / ravlt | PyTorch / ravlt | ravlt / floor |")
    print("|---" * (3 + len(engines) + 4) + "|")
    for v, b, t, med, f in rows:
        o = med["ravlt"]
        print(f"| RAVLT-{v} | {b} | {t} | " + " | ".join(f"{med[e]:.1f}" for e in engines) + " | " +
              " | ".join(f"{med[e] / o:.2f}" for e in engines[1:]) + f" | {o / f:.2f} |")
    print("\nRelative L2 gap of logits to PyTorch eager's (same threads), and PyTorch's across thread counts:")
    print("| model | batch | threads | ravlt | ONNX Runtime | OpenVINO | PyTorch vs itself |")
    print("|---|---|---|---|---|---|---|")
    for v, b, t, g in gaps:
        cell = lambda k: f"{g[k]:.1e}" if k in g else ""
        print(f"| RAVLT-{v} | {b} | {t} | {cell('ravlt')} | {cell('ONNX Runtime')} | {cell('OpenVINO')} "
              f"| {cell('PyTorch vs itself')} |")


if __name__ == "__main__":
    main()
