#!/usr/bin/python3
"""Times the detection / segmentation backbone (four feature maps) in ravlt
against ONNX Runtime, OpenVINO (float32, and bfloat16 where the CPU has it)
and PyTorch eager, at a detection size, in one run.

    bench/compare_dense.py [--variant T] [--size 800x1216] [--batch 1] [--threads 2] [--rounds 5]

It writes an mmdetection-layout checkpoint with the reference's random
weights (tests/reference/make_checkpoint.py --layout mmdet), converts it,
exports the reference backbone (RavltBackbone, checked against the authors'
golden run by the tests) to ONNX for the peers, checks every engine's four
maps against PyTorch's, then runs rounds: each round starts every engine in
a fresh process (ravlt: `ravlt bench`), in an order shuffled per round, and
times a few runs after one warm-up (median per engine per round). Reported: per engine the median over rounds,
and the median over rounds of the per-round ratio to ravlt (the host's
speed drifts within a minute; a ratio within one round is what holds).

The floor is 2 * MACs / GEMM rate: MACs as the engine counts them from the
graph (every convolution, and the attention matmuls: 2 L^2 d per head for
softmax attention, 2 L d^2 for RALA; tests/reference/test_cli.py checks that
count against the reference's), the GEMM rate measured by `ravlt bench
--floor` with oneDNN on the same threads, right after each run; softmax
attention's GFLOP/s come from `ravlt bench --profile`. The peers come from bench/compare.py's
virtual environment (PyPI) and PyTorch uses OpenBLAS as there.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = os.path.join(ROOT, "tests", "reference")
sys.path.insert(0, HERE)
from compare import OPENBLAS, cpu_flags, fetch_openblas, peer_python, rel_l2, run  # noqa: E402

NAMES = ["stage1", "stage2", "stage3", "stage4"]

EXPORT = r"""
import sys, torch
sys.path.insert(0, sys.argv[1])
import ravlt_reference as R
cfg = R.VARIANTS[sys.argv[2]]
m = R.RavltBackbone(cfg).eval()
sd = torch.load(sys.argv[3])["state_dict"]
m.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")})
h, w, n = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
class Maps(torch.nn.Module):
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, x): return tuple(self.m(x).values())
x = torch.randn(n, 3, h, w)
torch.onnx.export(Maps(m), x, sys.argv[4], opset_version=17, input_names=["x"],
                  output_names=["stage1", "stage2", "stage3", "stage4"])
"""

ORT = r"""
import sys, time, json, numpy as np, onnxruntime as ort
model, threads, iters, x_path, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
x = np.load(x_path)
y = s.run(None, {"x": x})
times = []
for _ in range(iters):
    t = time.perf_counter(); s.run(None, {"x": x}); times.append(time.perf_counter() - t)
np.savez(out_path, **{f"stage{i + 1}": v for i, v in enumerate(y)})
print(json.dumps(times))
"""

OPENVINO = r"""
import sys, time, json, numpy as np, openvino as ov
model, threads, iters, x_path, out_path, precision = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
x = np.load(x_path)
core = ov.Core()
c = core.compile_model(core.read_model(model), "CPU", {"PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision})
r = c.create_infer_request()
y = [v.copy() for v in r.infer({"x": x}).values()]
times = []
for _ in range(iters):
    t = time.perf_counter(); r.infer({"x": x}); times.append(time.perf_counter() - t)
np.savez(out_path, **{f"stage{i + 1}": v for i, v in enumerate(y)})
print(json.dumps(times))
"""

TORCH = r"""
import sys, time, json, torch, numpy as np
sys.path.insert(0, sys.argv[1])
import ravlt_reference as R
torch.set_num_threads(int(sys.argv[4]))
m = R.RavltBackbone(R.VARIANTS[sys.argv[2]]).eval()
sd = torch.load(sys.argv[3])["state_dict"]
m.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")})
x = torch.from_numpy(np.load(sys.argv[6]))
times = []
with torch.no_grad():
    y = m(x)
    for _ in range(int(sys.argv[5])):
        t = time.perf_counter(); m(x); times.append(time.perf_counter() - t)
np.savez(sys.argv[7], **{k: v.numpy() for k, v in y.items()})
print(json.dumps(times))
"""

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravlt", default=os.path.join(ROOT, "build", "ravlt"))
    ap.add_argument("--variant", default="T")
    ap.add_argument("--size", default="800x1216")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=3, help="timed runs per engine per round")
    a = ap.parse_args()
    import numpy as np

    h, w = (int(v) for v in a.size.split("x"))
    model_name, flags = cpu_flags()
    print(f"CPU: {model_name}; flags: {flags}")
    torch_env = dict(os.environ)
    if fetch_openblas():
        torch_env["LD_LIBRARY_PATH"] = OPENBLAS + ":" + torch_env.get("LD_LIBRARY_PATH", "")
    py = peer_python()
    print(run([py, "-c", "import onnxruntime, openvino; print('ONNX Runtime', onnxruntime.__version__, "
                         "'| OpenVINO', openvino.__version__)"]).strip())
    bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    engines = ["ravlt", "ONNX Runtime", "OpenVINO f32"] + (["ravlt bf16", "OpenVINO bf16"] if bf16 else []) + \
              ["PyTorch eager"]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "det.pth")
        model = os.path.join(tmp, "det.rvlt")
        onnx = os.path.join(tmp, "det.onnx")
        run(["/usr/bin/python3", os.path.join(REFERENCE, "make_checkpoint.py"), "--variant", a.variant,
             "--layout", "mmdet", "-o", ckpt])
        run([a.ravlt, "convert", ckpt, "-o", model, "-q"])
        run(["/usr/bin/python3", "-c", EXPORT, REFERENCE, a.variant, ckpt, onnx, str(h), str(w),
             str(a.batch)])
        x = np.random.RandomState(0).randn(a.batch, 3, h, w).astype(np.float32)
        xin = os.path.join(tmp, "x.npy")
        np.save(xin, x)
        out = {e: os.path.join(tmp, f"out{i}.npz") for i, e in enumerate(engines)}
        bench_cmd = [a.ravlt, "bench", "-m", model, "--size", a.size, "--batch", str(a.batch),
                     "--threads", str(a.threads), "--iterations", str(a.iterations), "--warmup", "1",
                     "--floor", "--json"]
        commands = {
            "ravlt": bench_cmd,
            "ravlt bf16": bench_cmd + ["--precision", "bf16"],
            "ONNX Runtime": [py, "-c", ORT, onnx, str(a.threads), str(a.iterations), xin,
                             out["ONNX Runtime"]],
            "OpenVINO f32": [py, "-c", OPENVINO, onnx, str(a.threads), str(a.iterations), xin,
                             out["OpenVINO f32"], "f32"],
            "OpenVINO bf16": [py, "-c", OPENVINO, onnx, str(a.threads), str(a.iterations), xin,
                              out.get("OpenVINO bf16", ""), "bf16"],
            "PyTorch eager": ["/usr/bin/python3", "-c", TORCH, REFERENCE, a.variant, ckpt,
                              str(a.threads), str(a.iterations), xin, out["PyTorch eager"]],
        }
        rounds = []
        floor_ratios = []  # ravlt float32's, each round's median of per-run ratios
        rng = random.Random(1)
        for r in range(a.rounds):
            order = list(engines)
            rng.shuffle(order)
            med = {}
            for e in order:
                t = json.loads(run(commands[e], env=torch_env if e == "PyTorch eager" else None))
                med[e] = t["median_ms"] if e.startswith("ravlt") else 1000 * statistics.median(t)
                if e == "ravlt":
                    floor_ratios.append(t["floor_ratio"])
            rounds.append(med)
            print(f"round {r + 1} ({', '.join(order)}): " +
                  ", ".join(f"{e} {med[e]:.0f} ms" for e in engines))
        profiles = {}
        for e, precision in (("ravlt", "fp32"), ("ravlt bf16", "bf16")):
            if e not in engines:
                continue
            run([a.ravlt, "run", "-m", model, "-i", xin, "-o", out[e], "--threads", str(a.threads),
                 "--precision", precision])
            profiles[e] = json.loads(run([a.ravlt, "bench", "-m", model, "--size", a.size, "--batch",
                                          str(a.batch), "--threads", str(a.threads), "--iterations", "3",
                                          "--warmup", "1", "--floor", "--json", "--profile",
                                          "--precision", precision]))
        bench = profiles["ravlt"]
        ys = {e: np.load(out[e]) for e in engines}
        ref = ys["PyTorch eager"]
        print(f"\nRAVLT-{a.variant} backbone, {a.batch}x3x{h}x{w}, {a.threads} threads: "
              f"{bench['macs_per_image'] / 1e9:.1f} GMAC per image; GEMM rate {bench['gemm_gflops']:.0f} GFLOP/s, "
              f"floor {bench['floor_ms']:.0f} ms")
        print("| engine | median ms | per-round ratio to ravlt (median) | max rel. L2 of the 4 maps vs PyTorch |")
        print("|---|---|---|---|")
        for e in engines:
            times = [r[e] for r in rounds]
            ratio = statistics.median(r[e] / r["ravlt"] for r in rounds)
            gap = max(rel_l2(ys[e][n], ref[n]) for n in NAMES) if e != "PyTorch eager" else 0.0
            print(f"| {e} | {statistics.median(times):.0f} | {ratio:.2f} | {gap:.1e} |")
        print(f"\nravlt float32 / floor, each run against the GEMM rate measured right after it: "
              f"median over rounds {statistics.median(floor_ratios):.2f}x (rounds: "
              + ", ".join(f"{f:.2f}" for f in floor_ratios) + ")")
        print(f"ravlt bench --profile: median {bench['median_ms']:.0f} ms = "
              f"{bench['floor_ratio']:.2f}x the floor (median of per-run ratios); arena "
              f"{bench['arena_bytes'] / 1e6:.1f} MB for a lower bound of "
              f"{bench['lower_bound_bytes'] / 1e6:.1f} MB")
        for e, p in profiles.items():
            total = sum(p["profile_ms_per_run"].values())
            print(f"{e} profile: " + ", ".join(f"{k} {v:.0f} ms ({100 * v / total:.0f} %)"
                                              for k, v in p["profile_ms_per_run"].items()))
            attention_ms = p["profile_ms_per_run"].get("SoftmaxAttention", 0.0)
            if attention_ms > 0:
                rate = p["profile_gflops"]["SoftmaxAttention"]
                print(f"{e}: SoftmaxAttention {rate * attention_ms / 1e3:.1f} GFLOP in "
                      f"{attention_ms:.0f} ms = {rate:.0f} GFLOP/s, {100 * rate / bench['gemm_gflops']:.0f} % "
                      f"of the float32 GEMM rate")
        if "ravlt bf16" in engines:
            ratio = statistics.median(r["OpenVINO bf16"] / r["ravlt bf16"] for r in rounds)
            speedup = statistics.median(r["ravlt"] / r["ravlt bf16"] for r in rounds)
            print(f"OpenVINO bf16 / ravlt bf16 (median of per-round ratios): {ratio:.2f}; "
                  f"ravlt fp32 / ravlt bf16: {speedup:.2f}")
        for e in engines:
            if e not in ("PyTorch eager", "OpenVINO bf16", "ravlt bf16"):
                worst = max(rel_l2(ys[e][n], ref[n]) for n in NAMES)
                if worst > 1e-4:
                    sys.exit(f"{e}'s maps disagree with PyTorch's: {worst:.1e}")


if __name__ == "__main__":
    main()
