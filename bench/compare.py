#!/usr/bin/python3
"""Times ravlt against ONNX Runtime, OpenVINO and PyTorch eager on the same
machine, in float32 and, where the CPU has bfloat16 instructions
(AVX512_BF16 or AMX), in bfloat16, and reports each against ravlt in the
same precision and against this machine's GEMM floor.

    bench/compare.py [--variants T,S] [--batches 1,8] [--threads 2] [--rounds 5]

For each case it writes a RAVLT checkpoint with the reference's random
weights (tests/reference/), converts it and exports the reference to ONNX.
Then rounds: each round starts every engine in a fresh process, in an order
shuffled per round, and times --iterations runs after warm-up (the median
per engine per round). Reported: per engine the median over rounds, and
the median over rounds of the per-round ratio to ravlt in the same
precision (the host's speed drifts by tens of percent within a minute, and
some peers are bimodal between processes: a ratio within one round is what
holds). The floor is 2 * MACs / GEMM rate, with MACs counting convolutions
and attention matmuls, as the engine counts them from the graph (per image at
224x224: T 2.61 G, S 4.88 G, B 10.58 G, L 17.21 G) and the GEMM rate
measured with oneDNN on the same thread count, right after each of ravlt's
runs (`ravlt bench --floor`): ravlt / floor is the median over rounds of
each round's median per-run ratio, float32 against a float32 matmul, and
ravlt bf16 / bf16 floor against a bfloat16 one (packed weights, float32
accumulation: what the bfloat16 units reach).

Ready (open to first result) is also taken for ravlt with its packing
deferred to after the first run (`ravlt bench --defer-packing`, one run,
a process of its own in each round's shuffled order): the "ravlt
deferred" column of the ready table.

Engines: ravlt (`ravlt bench`, --precision fp32 and bf16); ONNX Runtime
(all graph optimizations); OpenVINO (CPU plugin, latency hint,
INFERENCE_PRECISION_HINT f32, and bf16: OpenVINO's default on CPUs with
bfloat16 units); PyTorch eager in float32 and under CPU autocast to
bfloat16. Every engine uses the same thread count. ONNX Runtime and
OpenVINO come from PyPI into a virtual environment under bench/.cache
(Debian's Python refuses pip installs into the system). PyTorch's attention
matmuls go through the system BLAS: this script fetches Debian's
libopenblas0-openmp into bench/.cache (apt-get download, unpacked with
dpkg -x; nothing is installed) and points PyTorch at it.

Agreement, checked before the table: relative L2 distance of the logits to
PyTorch's float32 ones. A float32 engine must be within 1e-4; a bfloat16
engine is measured against PyTorch's own bfloat16 gap (ravlt's bf16 must be
within 1.5x of it, a peer's is reported).
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
x = np.load(x_path)
start = time.perf_counter()
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
y = s.run(None, {"x": x})[0]
ready = time.perf_counter() - start
for _ in range(3):
    s.run(None, {"x": x})
times = []
for _ in range(iters):
    t = time.perf_counter(); s.run(None, {"x": x}); times.append(time.perf_counter() - t)
np.save(out_path, y)
import resource
print(json.dumps({"times": times, "ready_ms": 1000 * ready,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
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
model, threads, iters, x_path, out_path, precision = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
x = np.load(x_path)
start = time.perf_counter()
core = ov.Core()
m = core.read_model(model)
m.reshape({"x": list(x.shape)})
c = core.compile_model(m, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                  "INFERENCE_PRECISION_HINT": precision})
r = c.create_infer_request()
y = r.infer({"x": x})[0].copy()
ready = time.perf_counter() - start
for _ in range(3):
    r.infer({"x": x})
times = []
for _ in range(iters):
    t = time.perf_counter(); r.infer({"x": x}); times.append(time.perf_counter() - t)
np.save(out_path, y)
import resource
print(json.dumps({"times": times, "ready_ms": 1000 * ready,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
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
import contextlib, sys, time, json, torch, numpy as np
sys.path.insert(0, sys.argv[1])
from ravlt_reference import VARIANTS, Ravlt
variant, ckpt, batch, threads, iters = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
bf16 = sys.argv[9] == "bf16"
torch.set_num_threads(threads)
m = Ravlt(VARIANTS[variant]).eval()
m.load_state_dict(torch.load(ckpt))
x = torch.from_numpy(np.load(sys.argv[7]))
if bf16:
    # Autocast's float32 policy for layer_norm (newer PyTorch lists it; 1.13
    # rejects a bfloat16 input with float32 weights instead).
    layer_norm = torch.nn.functional.layer_norm
    torch.nn.functional.layer_norm = lambda t, *a, **k: layer_norm(t.float(), *a, **k)
mode = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
times = []
with torch.no_grad(), mode():
    y = m(x).float()
    for _ in range(3):
        m(x)
    for _ in range(iters):
        t = time.perf_counter(); m(x); times.append(time.perf_counter() - t)
np.save(sys.argv[8], y.numpy())
print(json.dumps({"times": times}))
"""


def cpu_flags():
    """The CPU's model name and its vector flags (avx*, amx*, fma) from /proc/cpuinfo."""
    model, flags = "", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    wanted = [f for f in flags if f.startswith(("avx", "amx", "fma"))]
    return model, " ".join(wanted)


def run(cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def rel_l2(a, b):
    import numpy as np
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


FP32 = ("ravlt", "ONNX Runtime", "OpenVINO f32", "PyTorch")
BF16 = ("ravlt bf16", "OpenVINO bf16", "PyTorch bf16")
DEFERRED = "ravlt deferred"  # ready only: float32, packing after the first run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravlt", default=os.path.join(ROOT, "build", "ravlt"))
    ap.add_argument("--variants", default="T,S")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=10, help="timed runs per engine per round")
    ap.add_argument("--no-bf16", action="store_true", help="float32 engines only")
    a = ap.parse_args()
    import numpy as np

    model_name, flags = cpu_flags()
    print(f"CPU: {model_name}; flags: {flags}")
    torch_env = dict(os.environ)
    blas = "reference BLAS"
    if fetch_openblas():
        torch_env["LD_LIBRARY_PATH"] = OPENBLAS + ":" + torch_env.get("LD_LIBRARY_PATH", "")
        blas = "OpenBLAS (OpenMP)"
    print(f"PyTorch eager uses {blas}")
    py = peer_python()
    print(run([py, "-c", "import onnxruntime, openvino; print('ONNX Runtime', onnxruntime.__version__, "
                         "'| OpenVINO', openvino.__version__)"]).strip())
    bf16 = not a.no_bf16 and ("avx512_bf16" in flags or "amx_bf16" in flags)
    if not bf16 and not a.no_bf16:
        print("this CPU has neither AVX512_BF16 nor AMX-BF16: float32 engines only")
    engines = FP32 + (BF16 if bf16 else ())
    rows = []
    rng = random.Random(1)
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
                    xin = os.path.join(tmp, "x.npy")
                    np.save(xin, x)
                    out = {e: os.path.join(tmp, f"out{i}.npy") for i, e in enumerate(engines)}
                    t_, n_ = str(threads), str(a.iterations)
                    bench = [a.ravlt, "bench", "-m", model, "--batch", str(batch), "--threads", t_,
                             "--iterations", n_, "--floor", "--json"]
                    torch_cmd = ["/usr/bin/python3", "-c", TORCH_TIMER, os.path.join(ROOT, "tests/reference"),
                                 variant, ckpt, str(batch), t_, n_, xin]
                    commands = {
                        "ravlt": bench + ["--precision", "fp32"],
                        "ravlt bf16": bench + ["--precision", "bf16"],
                        "ONNX Runtime": [py, "-c", ORT_TIMER, onnx, t_, n_, xin, out["ONNX Runtime"]],
                        "OpenVINO f32": [py, "-c", OPENVINO_TIMER, onnx, t_, n_, xin, out["OpenVINO f32"], "f32"],
                        "OpenVINO bf16": [py, "-c", OPENVINO_TIMER, onnx, t_, n_, xin, out.get("OpenVINO bf16", ""),
                                          "bf16"],
                        "PyTorch": torch_cmd + [out["PyTorch"], "fp32"],
                        "PyTorch bf16": torch_cmd + [out.get("PyTorch bf16", ""), "bf16"],
                    }
                    # Ready alone: one run, the packing after it (float32).
                    commands[DEFERRED] = [a.ravlt, "bench", "-m", model, "--batch", str(batch), "--threads", t_,
                                          "--iterations", "1", "--warmup", "0", "--defer-packing", "--json"]
                    rounds, floor, ready, rss = [], {}, {}, {}
                    for r in range(a.rounds):
                        order = list(engines) + [DEFERRED]
                        rng.shuffle(order)
                        med = {}
                        for e in order:
                            t = json.loads(run(commands[e], env=torch_env if e.startswith("PyTorch") else None))
                            if e == DEFERRED:
                                ready.setdefault(e, []).append(t["open_ms"] + t["plan_ms"] + t["first_run_ms"])
                                rss.setdefault(e, []).append(t["peak_rss_mb"])
                            elif e.startswith("ravlt"):
                                med[e] = t["median_ms"]
                                floor.setdefault(e, []).append(t["floor_ratio"])
                                ready.setdefault(e, []).append(t["open_ms"] + t["plan_ms"] + t["first_run_ms"])
                                rss.setdefault(e, []).append(t["peak_rss_mb"])
                            else:
                                med[e] = 1000 * statistics.median(t["times"])
                                if "ready_ms" in t:
                                    ready.setdefault(e, []).append(t["ready_ms"])
                                    rss.setdefault(e, []).append(t["peak_rss_mb"])
                        rounds.append(med)
                        print(f"  RAVLT-{variant} batch {batch} threads {threads} round {r + 1} "
                              f"({', '.join(order)}): " + ", ".join(f"{e} {med[e]:.1f}" for e in engines))
                    for precision, e in (("fp32", "ravlt"), ("bf16", "ravlt bf16")):
                        if e in engines:
                            run([a.ravlt, "run", "-m", model, "-i", xin, "-o", out[e], "--threads", t_,
                                 "--precision", precision])
                    y = {e: np.load(out[e]).astype(np.float64) for e in engines}
                    ref = y["PyTorch"]
                    gap = {e: rel_l2(y[e], ref) for e in engines if e != "PyTorch"}
                    for e in FP32[:-1]:
                        if gap[e] > 1e-4:
                            sys.exit(f"{e}'s logits disagree with PyTorch's for RAVLT-{variant} batch {batch}: "
                                     f"{gap[e]:.1e}")
                    if bf16 and gap["ravlt bf16"] > 1.5 * gap["PyTorch bf16"]:
                        sys.exit(f"ravlt bf16 is {gap['ravlt bf16']:.1e} from PyTorch's float32 logits, more than "
                                 f"1.5x PyTorch bf16's {gap['PyTorch bf16']:.1e}")
                    profile = {"file_mb": os.path.getsize(model) / 1e6}
                    if bf16:
                        p = json.loads(run(bench + ["--precision", "bf16", "--profile"]))
                        total = sum(p["profile_ms_per_run"].values())
                        gemm = sum(v for k, v in p["profile_ms_per_run"].items() if k in ("Linear", "Conv2d"))
                        profile.update(gemm_share=gemm / total, arena=p["arena_bytes"])
                    profile["ready"] = {e: statistics.median(v) for e, v in ready.items()}
                    profile["rss"] = {e: statistics.median(v) for e, v in rss.items()}
                    rows.append((variant, batch, threads, rounds, floor, gap, profile))
    print_tables(engines, rows, bf16)


def print_tables(engines, rows, bf16):
    def ratio(rounds, e, base):
        return statistics.median(r[e] / r[base] for r in rounds)

    print("\nMedian ms over rounds; ratios: the median over rounds of the per-round ratio")
    print("| model | batch | threads | " + " | ".join(f"{e} ms" for e in engines) +
          " | ORT / ravlt | OV f32 / ravlt | PyTorch / ravlt | ravlt / floor |" +
          (" OV bf16 / ravlt bf16 | PyTorch bf16 / ravlt bf16 | ravlt fp32 / ravlt bf16 | ravlt bf16 / bf16 floor |"
           " bf16 GEMM share |" if bf16 else ""))
    print("|---" * (3 + len(engines) + 4 + (5 if bf16 else 0)) + "|")
    for v, b, t, rounds, floor, gap, profile in rows:
        cells = [f"{statistics.median(r[e] for r in rounds):.1f}" for e in engines]
        cells += [f"{ratio(rounds, e, 'ravlt'):.2f}" for e in ("ONNX Runtime", "OpenVINO f32", "PyTorch")]
        cells.append(f"{statistics.median(floor['ravlt']):.2f}")
        if bf16:
            cells += [f"{ratio(rounds, e, 'ravlt bf16'):.2f}" for e in ("OpenVINO bf16", "PyTorch bf16", "ravlt")]
            cells.append(f"{statistics.median(floor['ravlt bf16']):.2f}")
            cells.append(f"{100 * profile['gemm_share']:.0f} %")
        print(f"| RAVLT-{v} | {b} | {t} | " + " | ".join(cells) + " |")
    print("\nReady (ravlt: open + verify + plan + first run, 'deferred' with --defer-packing; ONNX Runtime: "
          "session creation + first run; OpenVINO: read + compile + first run), ms, and peak RSS, MB "
          "(median over rounds):")
    timed = [e for e in engines if not e.startswith("PyTorch")]
    timed.insert(1, DEFERRED)
    print("| model | batch | file MB | " + " | ".join(f"{e} ready" for e in timed) + " | " +
          " | ".join(f"{e} RSS" for e in timed) + " |")
    print("|---" * (3 + 2 * len(timed)) + "|")
    for v, b, t, rounds, floor, gap, profile in rows:
        print(f"| RAVLT-{v} | {b} | {profile['file_mb']:.0f} | " +
              " | ".join(f"{profile['ready'].get(e, float('nan')):.0f}" for e in timed) + " | " +
              " | ".join(f"{profile['rss'].get(e, float('nan')):.0f}" for e in timed) + " |")
    print("\nRelative L2 distance of the logits to PyTorch's float32 ones (same threads):")
    others = [e for e in engines if e != "PyTorch"]
    print("| model | batch | " + " | ".join(others) + " |")
    print("|---" * (2 + len(others)) + "|")
    for v, b, t, rounds, floor, gap, profile in rows:
        print(f"| RAVLT-{v} | {b} | " + " | ".join(f"{gap[e]:.1e}" for e in others) + " |")


if __name__ == "__main__":
    main()
