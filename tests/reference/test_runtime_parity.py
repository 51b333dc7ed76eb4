#!/usr/bin/python3
"""`ravlt run` against the PyTorch reference: the logits of every published
variant at several input sizes (odd ones included) and batch 1 and 3, and
the golden model of the authors against its stored logits and per-stage
outputs. Batch 1 runs as `ravlt run` does by default for so small a job
(the float32 weights read where the file stores them), batch 3 with
`--packing` (packed copies, as sessions run by default).

Tolerance (float32): relative L2 distance to the reference in float64 at most
1e-5, or twice the reference's own float32-vs-float64 gap where that is
larger; and the same top-5 classes wherever neighbouring logits differ by
more than 1e-4. Weights: randomize() in ravlt_reference.py (logit standard
deviation is printed per case)."""

import json
import os
import tempfile
import unittest

import numpy as np
import torch

import harness
from ravlt_reference import VARIANTS, Ravlt

CASES = {
    "custom": [(97, 75), (64, 64), (33, 47)],
    "T": [(224, 224), (256, 256), (192, 320), (225, 161)],
    "S": [(224, 224), (256, 256), (192, 320), (225, 161)],
    "B": [(224, 224), (225, 161)],
    "L": [(224, 224), (225, 161)],
}
CHECKPOINT = {"custom": "custom_bare", "T": "T_bare", "S": "S_bare", "B": "B_bare", "L": "L_bare"}


def top5_agrees(ours, ref):
    """Same top-5 indices per row wherever the reference's sorted logits
    around the top 5 are separated by more than 1e-4."""
    for o, r in zip(ours, ref):
        order = torch.argsort(r, descending=True)
        gaps = (r[order[:6]][:-1] - r[order[:6]][1:]).abs()
        if bool((gaps > 1e-4).all()) and set(torch.argsort(o, descending=True)[:5].tolist()) != set(order[:5].tolist()):
            return False
    return True


class RuntimeParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_variant(self, variant):
        ckpt = harness.data(CHECKPOINT[variant] + ".pth")
        if not os.path.exists(ckpt):
            self.skipTest(f"{ckpt} not generated (quick test run)")
        model_path = os.path.join(self.tmp.name, variant + ".rvlt")
        harness.ravlt("convert", ckpt, "-o", model_path, "-q")
        ref, ref64 = harness.reference_pair(Ravlt, VARIANTS[variant], torch.load(ckpt))
        g = torch.Generator().manual_seed(11)
        for h, w in CASES[variant]:
            for batch in (1, 3):
                x = torch.randn(batch, 3, h, w, generator=g)
                inp = os.path.join(self.tmp.name, "x.npy")
                out = os.path.join(self.tmp.name, "y.npy")
                np.save(inp, x.numpy())
                # Both weight layouts: a job this small reads the weights in place by
                # default (where oneDNN has a brgemm matmul); --packing packs them.
                extra = ["--packing"] if batch == 3 else []
                harness.ravlt("run", "-m", model_path, "-i", inp, "-o", out, *extra)
                ours = torch.from_numpy(np.load(out)).double()
                with torch.no_grad():
                    y32 = ref(x).double()
                    y64 = ref64(x.double())
                err = harness.rel_l2(ours, y64)
                gap = harness.rel_l2(y32, y64)
                bound = max(1e-5, 2 * gap)
                print(f"  {variant} batch {batch} {h}x{w}: ours {err:.2e}, PyTorch float32 {gap:.2e} "
                      f"(vs float64; logit std {float(y64.std()):.1f})")
                self.assertEqual(tuple(ours.shape), tuple(y64.shape))
                self.assertLessEqual(err, bound)
                self.assertTrue(top5_agrees(ours, y64))

    def test_custom(self):
        self.run_variant("custom")

    def test_ravlt_t(self):
        self.run_variant("T")

    def test_ravlt_s(self):
        self.run_variant("S")

    def test_ravlt_b(self):
        self.run_variant("B")

    def test_ravlt_l(self):
        self.run_variant("L")

    def test_golden_logits_and_stages(self):
        """The golden model of the authors' own code: logits, and the output of
        the patch embedding and of every stage, read from the engine's run
        with `ravlt run --capture`."""
        g = harness.ARGS.golden
        if not g or not os.path.isdir(g):
            self.skipTest("no golden data")
        model_path = os.path.join(self.tmp.name, "tiny.rvlt")
        out = os.path.join(self.tmp.name, "golden.npy")
        harness.ravlt("convert", os.path.join(g, "tiny.pth"), "-o", model_path, "-q")
        nodes = harness.ravlt("inspect", "--nodes", model_path).stdout.split()
        # Stage s < 3 ends with its downsampling; stage 3 with its last block.
        stages = {"patch_embed": "patch_embed.proj.9", "stage3": [n for n in nodes if n.startswith("layers.3.")][-1]}
        for s in range(3):
            stages[f"stage{s}"] = f"layers.{s}.downsample.reduction"
        for node in stages.values():
            self.assertIn(node, nodes)
        captures = []
        for name, node in stages.items():
            captures += ["--capture", f"{node}={os.path.join(self.tmp.name, name + '.npy')}"]
        # A job this small reads the weights in place by default; --packing packs them.
        for extra in ([], ["--packing"]):
            with self.subTest(weights=" ".join(extra) or "default"):
                self.check_golden(g, model_path, out, captures, extra)

    def check_golden(self, g, model_path, out, captures, extra):
        harness.ravlt("run", "-m", model_path, "-i", os.path.join(g, "input.npy"), "-o", out, *captures, *extra)
        how = " ".join(extra) or "default"
        for name in ["patch_embed", "stage0", "stage1", "stage2", "stage3"]:
            ours = torch.from_numpy(np.load(os.path.join(self.tmp.name, name + ".npy")))
            want = torch.from_numpy(np.load(os.path.join(g, name + ".npy")))
            self.assertEqual(ours.shape, want.shape, name)
            err = harness.rel_l2(ours, want)
            print(f"  golden {name} ({how}): ours vs the authors' float32 output {err:.2e}")
            self.assertLess(err, 1e-5, name)
        ours = torch.from_numpy(np.load(out))
        want = torch.from_numpy(np.load(os.path.join(g, "logits.npy")))
        err = harness.rel_l2(ours, want)
        with open(os.path.join(g, "golden.json")) as f:
            meta = json.load(f)
        print(f"  golden logits ({how}): ours vs the authors' float32 logits {err:.2e} "
              f"(their float32 vs float64: {meta['float32_vs_float64_rel_l2']:.1e})")
        self.assertLess(err, 1e-5)
        self.assertEqual(ours.argmax(1).tolist(), meta["top1"])

if __name__ == "__main__":
    harness.main()
