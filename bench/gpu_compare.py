#!/usr/bin/env python3
"""ravlt's CUDA backend against PyTorch on the same GPU, in one run.

    python3 bench/gpu_compare.py --ravlt build-gpu/ravlt [--variants S,T] [--batches 1,256]
        [--precisions fp16,bf16,fp32] [--compile-mode max-autotune|default|none]
        [--compile-budget-s S] [--out DIR]

Parity first, for RAVLT-S with the reference's random weights and for the
trained demo model, over 200 inputs: per precision, the relative L2 of our
logits against PyTorch's float32 GPU logits, beside PyTorch's own
fp16/bf16-vs-fp32 gap on the same inputs, and the top-1 agreement where the
float32 margin exceeds 1e-2. Then ravlt's profile (time per node kind at
batch 256 and 1; RALA's achieved bandwidth). Then latency: S and T at 224x224, each
batch and precision, ours (`ravlt bench --device cuda`) against PyTorch eager
and torch.compile in the same precision (TF32 off for float32 on both
sides). ravlt's time is a whole `Session::run` from float32 host memory to
float32 host logits; PyTorch's is given both ways: its input already on the
GPU, and with the same copies (host float32 in, host logits out). Compiles
stop once --compile-budget-s seconds of compiling have passed (the rows
after say so). Run by bench/gpu.sh on the device machine; prints JSON lines
as it goes (and writes them to DIR/gpu_compare.json), the tables last. A
step that fails is recorded with its error and the rest still run.
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

from ravlt_reference import VARIANTS, RoPE, Ravlt, RavltConfig, randomize  # noqa: E402

# demo/train_digits.py's CONFIG (that script imports sklearn, absent here).
DIGITS = RavltConfig([32, 64, 128, 256], [1, 1, 2, 1], [2, 2, 4, 8], projection=256, num_classes=10)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def cuda_time_ms(fn, iterations, warmup=3):
    """Median of `iterations` runs of fn, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iterations):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def copy_bandwidth():
    """Bytes per second of a large device-to-device copy, read plus written."""
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    ms = cuda_time_ms(lambda: y.copy_(x), 20)
    return 2 * x.numel() / (ms / 1e3)


def rala_bytes(cfg, batch, elem):
    """The fewest bytes the RALA nodes of one run can move at 224x224: each
    reads q, k, v, o and lepe once and writes its output once (6 C per token)."""
    total = 0
    for stage, side in ((0, 56), (1, 28), (2, 14), (3, 7)):
        if cfg.attention[stage] == "l":
            total += cfg.depths[stage] * batch * side * side * 6 * cfg.embed_dims[stage] * elem
    return total


def wall_time_ms(fn, iterations, warmup=3):
    """Median of `iterations` runs of fn (which synchronizes), host clock."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def converted(model, dtype):
    """A copy of `model` in `dtype`, as model.to(dtype) makes it, except the
    RoPE angles: kept float32, as the tables are made from them (rounded to
    16 bits, far tokens' angles would be visibly wrong, which is not the
    precision's fault)."""
    half = copy.deepcopy(model).to(dtype)
    for name, module in half.named_modules():
        if isinstance(module, RoPE):
            module.angle = model.get_submodule(name).angle.float().clone()
    return half


def rel_l2(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


class Ours:
    def __init__(self, args):
        self.args = args

    def __call__(self, *cmd):
        p = subprocess.run([self.args.ravlt, *cmd], capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"ravlt {' '.join(cmd)} failed: {p.stderr}")
        return p.stdout

    def logits(self, rvlt, x, precision):
        x_path = os.path.join(self.args.work, "x.npy")
        y_path = os.path.join(self.args.work, "y.npy")
        np.save(x_path, x.numpy())
        self("run", "-m", rvlt, "-i", x_path, "-o", y_path, "--device", "cuda", "--precision",
             precision)
        return torch.from_numpy(np.load(y_path))


def parity(args, ours, name, model, rvlt, size, precisions):
    """Our gap and PyTorch's for each precision, over 200 inputs."""
    x = torch.randn(200, 3, size, size, generator=torch.Generator().manual_seed(3))
    gpu = model.cuda().eval()
    with torch.no_grad():
        fp32 = torch.cat([gpu(c.cuda()).float().cpu() for c in x.split(50)])
    top2 = fp32.topk(2, 1).values
    confident = (top2[:, 0] - top2[:, 1]) > 1e-2
    rows = []
    for p in precisions:
        try:
            mine = ours.logits(rvlt, x, p)
        except SystemExit as e:
            row = {"model": name, "precision": p, "error": str(e)}
            print(json.dumps(row), flush=True)
            rows.append(row)
            continue
        with torch.no_grad():
            half = converted(gpu, DTYPES[p])  # a copy: rounding the original is for good
            theirs = torch.cat([half(c.cuda().to(DTYPES[p])).float().cpu() for c in x.split(50)])
            del half
        row = {"model": name, "precision": p, "ours": rel_l2(mine, fp32),
               "pytorch": rel_l2(theirs, fp32), "confident": int(confident.sum()),
               "top1_agree": int((mine.argmax(1) == fp32.argmax(1))[confident].sum())}
        print(json.dumps(row), flush=True)
        rows.append(row)
    model.cpu()
    return rows


class Results:
    """Rows printed as JSON lines and kept in DIR/gpu_compare.json as they come."""

    def __init__(self, path):
        self.path, self.rows = path, []

    def add(self, row):
        print(json.dumps(row), flush=True)
        self.rows.append(row)
        with open(self.path, "w") as f:
            json.dump(self.rows, f, indent=1)


def latency(args, ours, results, models, precisions):
    """ravlt against PyTorch eager and torch.compile, per variant, precision, batch."""
    rows = []
    compiling_s = 0.0
    for variant, (model, rvlt) in models.items():
        for p in precisions:
            gpu = converted(model, DTYPES[p]).to("cuda").eval()
            for batch in [int(b) for b in args.batches.split(",")]:
                row = {"variant": variant, "precision": p, "batch": batch}
                try:
                    out = json.loads(ours("bench", "-m", rvlt, "--device", "cuda", "--precision",
                                          p, "--batch", str(batch), "--iterations",
                                          str(args.iterations), "--json"))
                    row["ours_ms"] = out["median_ms"]
                    row["ours_first_run_ms"] = out.get("first_run_ms")
                except SystemExit as e:
                    row["error"] = str(e)
                host = torch.randn(batch, 3, 224, 224)
                xb = host.to("cuda", DTYPES[p])
                with torch.no_grad():
                    row["eager_ms"] = cuda_time_ms(lambda: gpu(xb), args.iterations)
                    if args.compile_mode != "none" and compiling_s < args.compile_budget_s:
                        started = time.time()
                        mode = None if args.compile_mode == "default" else args.compile_mode
                        torch._dynamo.reset()
                        compiled = torch.compile(gpu, mode=mode)
                        compiled(xb)
                        row["compile_s"] = round(time.time() - started, 1)
                        compiling_s += time.time() - started
                        row["compiled_ms"] = cuda_time_ms(lambda: compiled(xb), args.iterations)
                        # The same work as ravlt's run: host float32 in, host logits out.
                        row["compiled_with_copies_ms"] = wall_time_ms(
                            lambda: compiled(host.to("cuda", DTYPES[p])).float().cpu(),
                            args.iterations)
                    elif args.compile_mode != "none":
                        row["compiled_ms"] = None
                        row["note"] = "compile budget spent"
                results.add(row)
                rows.append(row)
            del gpu
            torch.cuda.empty_cache()
    return rows


def profiles(args, ours, results, models, precisions):
    """ravlt's time per node kind (a profiled run synchronizes after each
    node) at each of --profile-batches, and RALA's achieved bandwidth against
    the device's copy bandwidth."""
    copy_bw = copy_bandwidth()
    rows = []
    for batch in [int(b) for b in args.profile_batches.split(",")]:
        for variant, (model, rvlt) in models.items():
            for p in precisions:
                row = {"variant": variant, "precision": p, "batch": batch,
                       "copy_bandwidth": copy_bw}
                try:
                    out = json.loads(ours("bench", "-m", rvlt, "--device", "cuda", "--precision",
                                          p, "--batch", str(batch), "--iterations", "10",
                                          "--profile", "--profile-nodes", "12", "--json"))
                    ms = out["profile_ms_per_run"].get("RalaAttention", 0.0)
                except SystemExit as e:
                    row["error"], ms = str(e), 0.0
                moved = rala_bytes(VARIANTS[variant], batch, 4 if p == "fp32" else 2)
                row["profile_ms_per_run"] = {} if "error" in row else out["profile_ms_per_run"]
                row["profile_nodes"] = [] if "error" in row else out.get("profile_nodes", [])
                row["profile_copy_ms"] = {} if "error" in row else out.get("profile_copy_ms", {})
                row.update({"rala_ms": ms, "bytes": moved,
                            "fraction_of_copy": moved / (ms / 1e3) / copy_bw if ms > 0 else 0.0})
                results.add(row)
                rows.append(row)
    return copy_bw, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ravlt", required=True)
    ap.add_argument("--variants", default="S,T")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--precisions", default="fp16,bf16,fp32")
    ap.add_argument("--compile-mode", default="max-autotune")
    ap.add_argument("--compile-budget-s", type=float, default=float("inf"),
                    help="no more torch.compile once this many seconds went to compiling")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--profile-batches", default="256,1")
    ap.add_argument("--out", default=".", help="where gpu_compare.json goes")
    ap.add_argument("--work", default=None, help="scratch files (default: a temporary folder)")
    args = ap.parse_args()
    args.work = args.work or tempfile.mkdtemp()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    ours = Ours(args)
    results = Results(os.path.join(args.out, "gpu_compare.json"))
    precisions = args.precisions.split(",")
    print(f"GPU: {torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}", flush=True)

    models = {}
    for variant in args.variants.split(","):
        model = randomize(Ravlt(VARIANTS[variant]), seed=1).eval()
        ckpt, rvlt = (os.path.join(args.work, f"{variant}.{e}") for e in ("pth", "rvlt"))
        torch.save(model.state_dict(), ckpt)
        ours("convert", ckpt, "-o", rvlt)
        models[variant] = (model, rvlt)

    checks = []
    if "S" in models:
        checks += parity(args, ours, "RAVLT-S", models["S"][0], models["S"][1], 224, precisions)
    digits = Ravlt(DIGITS).eval()
    digits.load_state_dict(torch.load(os.path.join(ROOT, "demo", "ravlt_digits.pth"),
                                      map_location="cpu", weights_only=False)["model"])
    digits_rvlt = os.path.join(args.work, "digits.rvlt")
    ours("convert", os.path.join(ROOT, "demo", "ravlt_digits.pth"), "-o", digits_rvlt,
         "--resize", "64", "--crop", "64")
    checks += parity(args, ours, "digits demo", digits, digits_rvlt, 64, precisions)
    for c in checks:
        results.rows.append(c)

    copy_bw, profiled = profiles(args, ours, results, models, precisions)
    rows = latency(args, ours, results, models, precisions)

    print("\nravlt's time per node kind, 224x224 (profiled: a sync after each node)")
    for b in profiled:
        kinds = sorted(b.get("profile_ms_per_run", {}).items(), key=lambda kv: -kv[1])
        copies = b.get("profile_copy_ms", {})
        digits = 1 if b["batch"] > 1 else 3
        print(f"RAVLT-{b['variant']} {b['precision']} batch {b['batch']}: "
              + ", ".join(f"{k} {v:.{digits}f} ms" for k, v in kinds)
              + (f"; apart from the nodes: input staged in {copies['input']:.{digits}f} ms, "
                 f"outputs out {copies['output']:.{digits}f} ms" if copies else ""))
    print("\nslowest nodes (16-bit: the first precision profiled)")
    for b in profiled:
        if b["precision"] != precisions[0] or not b.get("profile_nodes"):
            continue
        print(f"RAVLT-{b['variant']} {b['precision']} batch {b['batch']}: "
              + ", ".join(f"{n['name']} ({n['op']}) {n['ms']:.3f}" for n in b["profile_nodes"]))
    print(f"\nRALA, 224x224: device copy bandwidth {copy_bw / 1e12:.2f} TB/s")
    print("| model | precision | batch | RALA ms / run | GB moved (least) | achieved TB/s "
          "| of copy |")
    print("|---|---|---|---|---|---|---|")
    for b in profiled:
        achieved = b["bytes"] / (b["rala_ms"] / 1e3) / 1e12 if b["rala_ms"] > 0 else 0.0
        print(f"| RAVLT-{b['variant']} | {b['precision']} | {b['batch']} | {b['rala_ms']:.3f} | "
              f"{b['bytes'] / 1e9:.2f} | {achieved:.2f} | {b['fraction_of_copy']:.2f} |")

    print("\nparity over 200 inputs: rel L2 vs PyTorch's float32 GPU logits")
    print("| model | precision | ravlt | PyTorch | ravlt / PyTorch | top-1 agree (confident) |")
    print("|---|---|---|---|---|---|")
    for c in checks:
        if "error" in c:
            print(f"| {c['model']} | {c['precision']} | failed: {c['error'][:200]} | | | |")
            continue
        ratio = c["ours"] / c["pytorch"] if c["pytorch"] > 0 else float("nan")
        print(f"| {c['model']} | {c['precision']} | {c['ours']:.2e} | {c['pytorch']:.2e} | "
              f"{ratio:.2f} | {c['top1_agree']}/{c['confident']} |")
    print(f"\n224x224, median of {args.iterations}, torch.compile mode {args.compile_mode}; "
          "ravlt: host float32 in, host logits out")
    print("| model | precision | batch | ravlt ms | eager ms | compiled ms | compiled + copies ms "
          "| (compiled + copies) / ravlt |")
    print("|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else "%.3f" % v  # noqa: E731
    for r in rows:
        mine, cc = r.get("ours_ms"), r.get("compiled_with_copies_ms")
        ratio = "-" if mine is None or cc is None else "%.2f" % (cc / mine)
        print(f"| RAVLT-{r['variant']} | {r['precision']} | {r['batch']} | {fmt(mine)} | "
              f"{fmt(r.get('eager_ms'))} | {fmt(r.get('compiled_ms'))} | {fmt(cc)} | {ratio} |"
              + (f" failed: {r['error'][:200]}" if "error" in r else ""))


if __name__ == "__main__":
    main()
