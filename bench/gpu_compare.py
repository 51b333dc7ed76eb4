#!/usr/bin/env python3
"""ravlt's CUDA backend against PyTorch on the same GPU, in one run: RAVLT-T
and S at 224x224, batch 1 and 256, float32 (TF32 off everywhere), PyTorch
eager and torch.compile (mode given by --compile-mode; max-autotune by
default). Also the parity of our logits with the float64 reference.

    python3 bench/gpu_compare.py --ravlt build-gpu/ravlt [--variants T,S] [--batches 1,256]
        [--compile-mode max-autotune|default|none] [--out DIR]

Run by bench/gpu.sh on the device machine (PyTorch 2.x with CUDA there).
Prints one JSON line per measurement and a table last.
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
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

import torch  # noqa: E402

from ravlt_reference import VARIANTS, Ravlt, randomize  # noqa: E402


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


def rel_l2(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def ravlt(args, *cmd):
    p = subprocess.run([args.ravlt, *cmd], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"ravlt {' '.join(cmd)} failed: {p.stderr}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ravlt", required=True)
    ap.add_argument("--variants", default="T,S")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--compile-mode", default="max-autotune")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--out", default=tempfile.mkdtemp())
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.makedirs(args.out, exist_ok=True)
    print(f"GPU: {torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}", flush=True)
    rows = []
    for variant in args.variants.split(","):
        model = randomize(Ravlt(VARIANTS[variant]), seed=1).eval()
        ckpt = os.path.join(args.out, f"{variant}.pth")
        rvlt = os.path.join(args.out, f"{variant}.rvlt")
        torch.save(model.state_dict(), ckpt)
        ravlt(args, "convert", ckpt, "-o", rvlt)

        # Parity: our CUDA logits and PyTorch's float32 GPU logits, each
        # against the float64 reference on the CPU.
        x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(2))
        x_path, y_path = os.path.join(args.out, "x.npy"), os.path.join(args.out, "y.npy")
        import numpy as np
        np.save(x_path, x.numpy())
        ravlt(args, "run", "-m", rvlt, "-i", x_path, "-o", y_path, "--device", "cuda")
        ours = torch.from_numpy(np.load(y_path))
        with torch.no_grad():
            ref = model.double()(x.double())
            model.float()
            gpu_model = model.cuda()
            theirs = gpu_model(x.cuda()).cpu()
        parity = {"variant": variant, "ours_vs_fp64": rel_l2(ours, ref),
                  "pytorch_fp32_gpu_vs_fp64": rel_l2(theirs, ref),
                  "same_top1": int((ours.argmax(1) == ref.argmax(1)).sum()), "of": len(x)}
        print(json.dumps(parity), flush=True)

        for batch in [int(b) for b in args.batches.split(",")]:
            out = json.loads(ravlt(args, "bench", "-m", rvlt, "--device", "cuda", "--batch",
                                   str(batch), "--iterations", str(args.iterations), "--json"))
            ours_ms = out["median_ms"]
            xb = torch.randn(batch, 3, 224, 224, device="cuda")
            with torch.no_grad():
                eager_ms = cuda_time_ms(lambda: gpu_model(xb), args.iterations)
                compiled_ms = None
                if args.compile_mode != "none":
                    started = time.time()
                    mode = None if args.compile_mode == "default" else args.compile_mode
                    compiled = torch.compile(gpu_model, mode=mode)
                    compiled(xb)  # compiles
                    compile_s = time.time() - started
                    compiled_ms = cuda_time_ms(lambda: compiled(xb), args.iterations)
                    print(json.dumps({"variant": variant, "batch": batch,
                                      "compile_seconds": round(compile_s, 1)}), flush=True)
            row = {"variant": variant, "batch": batch, "ours_ms": ours_ms, "eager_ms": eager_ms,
                   "compiled_ms": compiled_ms}
            print(json.dumps(row), flush=True)
            rows.append(row)
        del gpu_model
        torch.cuda.empty_cache()

    print(f"\nfloat32, TF32 off, 224x224, median of {args.iterations} "
          f"(torch.compile mode: {args.compile_mode})")
    print("| model | batch | ravlt ms | eager ms | compiled ms | eager/ravlt | compiled/ravlt |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        c, ours = r["compiled_ms"], r["ours_ms"]
        compiled = "-" if c is None else "%.3f" % c
        ratio = "-" if c is None else "%.2f" % (c / ours)
        print(f"| RAVLT-{r['variant']} | {r['batch']} | {ours:.3f} | {r['eager_ms']:.3f} | "
              f"{compiled} | {r['eager_ms'] / ours:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
