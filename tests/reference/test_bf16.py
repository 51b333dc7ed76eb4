#!/usr/bin/python3
"""bfloat16 on the CPU (`--precision bf16`) against the PyTorch reference.

Accuracy: for every case, the relative L2 distance of our bf16 logits to
the float64 reference is at most 1.5x that of PyTorch's own CPU bfloat16
(autocast) on the same inputs and weights, and the top-1 class is the
reference's wherever the reference's top two logits are apart by more than
twice our error. The digits demo's held-out accuracy in bf16 equals its
float32 accuracy. Refusal: on a CPU without bfloat16 instructions (stood in
for by DNNL_MAX_CPU_ISA=AVX2, which limits what oneDNN may use), every
command that takes --precision bf16 exits 1 with one line naming what the
CPU lacks. On a machine without AVX512_BF16 or AMX the accuracy cases are
skipped (the refusal is what that machine can test)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

import harness
from ravlt_reference import VARIANTS, Ravlt, RavltBackbone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "demo")

CASES = {
    "custom": [(97, 75), (33, 47)],
    "T": [(224, 224), (225, 161)],
    "S": [(224, 224), (192, 320)],
}
CHECKPOINT = {"custom": "custom_bare", "T": "T_bare", "S": "S_bare"}
NO_BF16 = "neither AVX512_BF16 nor AMX-BF16"


def bf16_available():
    """Whether this CPU runs bf16: the tool's answer on a one-pixel model
    run is the authority (it asks oneDNN)."""
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "m.rvlt")
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", model, "-q")
        x = os.path.join(tmp, "x.npy")
        np.save(x, np.zeros((1, 3, 32, 32), np.float32))
        p = harness.ravlt("run", "-m", model, "-i", x, "-o", os.path.join(tmp, "y.npy"),
                          "--precision", "bf16", check=False)
        if p.returncode != 0 and NO_BF16 not in p.stderr:
            raise AssertionError(f"bf16 probe failed unexpectedly: {p.stderr}")
        return p.returncode == 0


def layer_norm_in_float32(inp, *args, **kwargs):
    """F.layer_norm under autocast's float32 policy (newer PyTorch's CPU
    autocast lists layer_norm there; the 1.13 of Debian rejects a bf16
    input with float32 weights instead)."""
    return ORIGINAL_LAYER_NORM(inp.float(), *args, **kwargs)


ORIGINAL_LAYER_NORM = torch.nn.functional.layer_norm


def autocast_bf16(model, x):
    """PyTorch's own CPU bfloat16: autocast over the float32 model."""
    torch.nn.functional.layer_norm = layer_norm_in_float32
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
    finally:
        torch.nn.functional.layer_norm = ORIGINAL_LAYER_NORM
    if isinstance(y, dict):
        return {k: t.double() for k, t in y.items()}
    return y.double()


class Bf16Accuracy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.available = bf16_available()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        if not self.available:
            self.skipTest("this CPU has no bfloat16 instructions (AVX512_BF16 or AMX)")

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def run_variant(self, variant):
        ckpt = harness.data(CHECKPOINT[variant] + ".pth")
        if not os.path.exists(ckpt):
            self.skipTest(f"{ckpt} not generated (quick test run)")
        model_path = self.path(variant + ".rvlt")
        harness.ravlt("convert", ckpt, "-o", model_path, "-q")
        ref, ref64 = harness.reference_pair(Ravlt, VARIANTS[variant], torch.load(ckpt))
        g = torch.Generator().manual_seed(5)
        for h, w in CASES[variant]:
            for batch in (1, 3):
                x = torch.randn(batch, 3, h, w, generator=g)
                np.save(self.path("x.npy"), x.numpy())
                harness.ravlt("run", "-m", model_path, "-i", self.path("x.npy"), "-o",
                              self.path("y.npz"), "--precision", "bf16", "--threads", "2")
                ours = torch.from_numpy(np.load(self.path("y.npz"))["logits"]).double()
                with torch.no_grad():
                    y64 = ref64(x.double())
                theirs = autocast_bf16(ref, x)
                err, torch_err = harness.rel_l2(ours, y64), harness.rel_l2(theirs, y64)
                top2 = torch.topk(y64, 2, dim=1).values
                clear = (top2[:, 0] - top2[:, 1]) > 2 * err * torch.linalg.norm(y64, dim=1) / y64.shape[1] ** 0.5
                agree = (ours.argmax(1) == y64.argmax(1))
                torch_agree = (theirs.argmax(1) == y64.argmax(1))
                print(f"  {variant} batch {batch} {h}x{w}: ours bf16 {err:.2e}, PyTorch bf16 {torch_err:.2e} "
                      f"(ratio {err / torch_err:.2f}); top-1 = reference: ours {int(agree.sum())}/{batch}, "
                      f"PyTorch {int(torch_agree.sum())}/{batch}")
                self.assertEqual(tuple(ours.shape), tuple(y64.shape))
                self.assertLessEqual(err, 1.5 * torch_err)
                self.assertTrue(bool(agree[clear].all()), "top-1 differs where the reference is clear")

    def test_custom(self):
        self.run_variant("custom")

    def test_ravlt_t(self):
        self.run_variant("T")

    def test_ravlt_s(self):
        self.run_variant("S")

    def test_embedding_and_backbone(self):
        """The pooled features (float32 output of a bf16 run) and a detection
        backbone's four stages, each within 1.5x PyTorch's bf16 gap; the
        backbone on an image large enough that its stem's convolutions run
        by bands of rows (conv2d.cpp: above 8 MB of float32 output an image)."""
        ckpt = harness.data("T_bare.pth")
        harness.ravlt("convert", ckpt, "-o", self.path("Te.rvlt"), "-q")
        ref, ref64 = harness.reference_pair(Ravlt, VARIANTS["T"], torch.load(ckpt))
        x = torch.randn(2, 3, 161, 225, generator=torch.Generator().manual_seed(8))
        np.save(self.path("xe.npy"), x.numpy())
        harness.ravlt("run", "-m", self.path("Te.rvlt"), "-i", self.path("xe.npy"), "-o", self.path("e.npz"),
                      "--select", "embedding", "--precision", "bf16")
        ours = torch.from_numpy(np.load(self.path("e.npz"))["embedding"]).double()
        with torch.no_grad():
            want = ref64.forward_features(x.double()).flatten(1)
        theirs = autocast_bf16(lambda t: ref.forward_features(t).flatten(1), x)
        err, torch_err = harness.rel_l2(ours, want), harness.rel_l2(theirs, want)
        print(f"  T embedding 2x161x225: ours bf16 {err:.2e}, PyTorch bf16 {torch_err:.2e}")
        self.assertLessEqual(err, 1.5 * torch_err)

        ckpt = harness.data("T_mmdet.pth")
        harness.ravlt("convert", ckpt, "-o", self.path("Td.rvlt"), "-q")
        state = {k[len("backbone."):]: v for k, v in torch.load(ckpt)["state_dict"].items()
                 if k.startswith("backbone.")}
        bb, bb64 = harness.reference_pair(RavltBackbone, VARIANTS["T"], state)
        x = torch.randn(1, 3, 520, 601, generator=torch.Generator().manual_seed(9))
        np.save(self.path("xd.npy"), x.numpy())
        harness.ravlt("run", "-m", self.path("Td.rvlt"), "-i", self.path("xd.npy"), "-o", self.path("d.npz"),
                      "--precision", "bf16")
        got = np.load(self.path("d.npz"))
        with torch.no_grad():
            want = bb64(x.double())
        theirs = autocast_bf16(bb, x)
        for name in ("stage1", "stage2", "stage3", "stage4"):
            self.assertEqual(got[name].dtype, np.float32)
            ours = torch.from_numpy(got[name]).double()
            err, torch_err = harness.rel_l2(ours, want[name]), harness.rel_l2(theirs[name], want[name])
            print(f"  T backbone 520x601 {name}: ours bf16 {err:.2e}, PyTorch bf16 {torch_err:.2e}")
            self.assertLessEqual(err, 1.5 * torch_err)

    def test_digits_accuracy_equals_float32(self):
        sys.path.insert(0, DEMO)
        from train_digits import SIZE
        model = self.path("digits.rvlt")
        harness.ravlt("convert", os.path.join(DEMO, "ravlt_digits.pth"), "-o", model, "-q", "--resize",
                      str(SIZE), "--crop", str(SIZE), "--labels", os.path.join(DEMO, "digit_labels.txt"))
        accuracy = {}
        for precision in ("fp32", "bf16"):
            out = json.loads(harness.ravlt("classify", "-m", model, os.path.join(DEMO, "digits"), "--json",
                                           "--batch", "32", "--precision", precision).stdout)
            results = out["results"]
            self.assertEqual(len(results), 360)
            truth = [int(os.path.basename(r["path"]).split("_")[1][0]) for r in results]
            accuracy[precision] = float(np.mean([int(r["labels"][0]) == t for r, t in zip(results, truth)]))
        print(f"  digits held-out accuracy: fp32 {100 * accuracy['fp32']:.2f}%, bf16 {100 * accuracy['bf16']:.2f}%")
        self.assertEqual(accuracy["bf16"], accuracy["fp32"])

    def test_bench_floor_in_the_run_precision(self):
        """`ravlt bench --floor` sets a bf16 run against a bfloat16 GEMM and a
        float32 run against a float32 one, and says which."""
        model = self.path("floor.rvlt")
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", model, "-q")
        for precision, name in (("bf16", "bfloat16"), ("fp32", "float32")):
            args = ("bench", "-m", model, "--size", "32x32", "--iterations", "2", "--warmup", "0",
                    "--floor", "--precision", precision)
            report = json.loads(harness.ravlt(*args, "--json").stdout)
            self.assertEqual(report["gemm_precision"], precision)
            self.assertGreater(report["gemm_gflops"], 0)
            self.assertGreater(report["floor_ratio"], 0)
            self.assertIn(f"this machine's {name} GEMM rate", harness.ravlt(*args).stdout)


class Bf16Refusal(unittest.TestCase):
    """What a CPU without bfloat16 instructions answers (any machine)."""

    def test_every_command_names_what_the_cpu_lacks(self):
        env = dict(os.environ, DNNL_MAX_CPU_ISA="AVX2")
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "m.rvlt")
            harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", model, "-q")
            x = os.path.join(tmp, "x.npy")
            np.save(x, np.zeros((1, 3, 32, 32), np.float32))
            image = os.path.join(DEMO, "digits", "0021_1.png")
            for args in (["run", "-m", model, "-i", x, "-o", os.path.join(tmp, "y.npy")],
                         ["bench", "-m", model, "--size", "32x32", "--iterations", "1"],
                         ["classify", "-m", model, image]):
                p = subprocess.run([harness.ARGS.ravlt, *args, "--precision", "bf16"], env=env,
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 1, args[0])
                lines = p.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn(NO_BF16, lines[0])
                self.assertIn("as AVX2", lines[0])
            # fp16 stays a CUDA-only precision on the CPU, on any CPU.
            p = harness.ravlt("run", "-m", model, "-i", x, "-o", os.path.join(tmp, "y.npy"), "--precision",
                              "fp16", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("fp16 runs on the CUDA device only", p.stderr)


if __name__ == "__main__":
    harness.main()
