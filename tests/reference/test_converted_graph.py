#!/usr/bin/python3
"""A converted model computes what the checkpoint computes.

Each .rvlt is run by rvlt_interpreter.py (op by op, from the file alone) and
compared with the reference model loaded from the source checkpoint, both in
float64, so the only differences left are the float32 rounding of the folded
weights. This proves the graph and every conversion-time rewrite equivalent
to the original network, at odd input sizes and batch > 1."""

import os
import tempfile
import unittest

import numpy as np
import torch

import harness
from ravlt_reference import VARIANTS, Ravlt, RavltBackbone, RavltConfig
from rvlt_interpreter import RvltFile, run

SIZES = [(2, 97, 75), (3, 64, 64), (2, 33, 47)]


def reference(variant, checkpoint, attention=None, entry=None):
    cfg = VARIANTS[variant]
    if attention:
        cfg = RavltConfig(**{**cfg.__dict__, "attention": attention})
    model = Ravlt(cfg).eval()
    obj = torch.load(checkpoint)
    sd = obj[entry] if entry else obj
    sd = {k[7:] if k.startswith("module.") else k: v.float() if v.is_floating_point() else v
          for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)
    return model.double()


class ConvertedGraph(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def convert(self, checkpoint, *options):
        out = os.path.join(self.tmp.name, "m.rvlt")
        harness.ravlt("convert", checkpoint, "-o", out, "-q", *options)
        return RvltFile(out)

    def compare(self, rvlt, model, tolerance, sizes=SIZES):
        g = torch.Generator().manual_seed(7)
        for n, h, w in sizes:
            x = torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)
            with torch.no_grad():
                want = model(x)
            got = run(rvlt, x)[0]
            self.assertEqual(tuple(got.shape), tuple(want.shape))
            err = harness.rel_l2(got, want)
            print(f"    batch {n}, {h}x{w}: relative L2 {err:.2e}")
            self.assertLess(err, tolerance)

    def test_custom_config_every_layout(self):
        for name, entry in [("custom_bare", None), ("custom_views", None),
                            ("custom_module", None), ("custom_legacy_training", "model")]:
            with self.subTest(name):
                print(f"  {name}")
                path = harness.data(name + ".pth")
                self.compare(self.convert(path), reference("custom", path, entry=entry), 1e-5)

    def test_model_ema_entry(self):
        path = harness.data("custom_training.pth")
        self.compare(self.convert(path, "--state-dict", "model_ema"),
                     reference("custom", path, entry="model_ema"), 1e-5, SIZES[:1])

    def test_ravlt_t(self):
        path = harness.data("T_bare.pth")
        self.compare(self.convert(path), reference("T", path), 1e-5, [(2, 97, 75)])

    def test_attention_override(self):
        path = harness.data("custom_bare.pth")
        self.compare(self.convert(path, "--attention", "v,l,v,l"),
                     reference("custom", path, attention="vlvl"), 1e-5, SIZES[:1])

    def test_half_and_bfloat16_storage(self):
        path = harness.data("custom_bare.pth")
        model = reference("custom", path)
        for dtype, tolerance in [("fp16", 1e-2), ("bf16", 5e-2)]:
            with self.subTest(dtype):
                print(f"  {dtype} weights")
                self.compare(self.convert(path, "--dtype", dtype), model, tolerance, SIZES[:1])

    def test_backbone_of_a_detection_checkpoint(self):
        """Every output of a backbone converted from mmdetection's and
        mmsegmentation's layouts, and of one with some stages only."""
        for name, options, stages in (("custom_mmdet", (), (0, 1, 2, 3)),
                                      ("custom_mmseg_legacy", ("--out-indices", "1,2"), (1, 2))):
            ckpt = harness.data(name + ".pth")
            sd = torch.load(ckpt)["state_dict"]
            model = RavltBackbone(VARIANTS["custom"]).eval()
            model.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")})
            model = model.double()
            rvlt = self.convert(ckpt, *options)
            g = torch.Generator().manual_seed(8)
            for n, h, w in SIZES:
                x = torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)
                with torch.no_grad():
                    want = list(model(x, stages).values())
                got = run(rvlt, x)
                self.assertEqual(len(got), len(want))
                for i, (a, b) in enumerate(zip(got, want)):
                    self.assertEqual(tuple(a.shape), tuple(b.shape))
                    err = harness.rel_l2(a, b)
                    print(f"  {name} stage{stages[i] + 1} batch {n}, {h}x{w}: relative L2 {err:.2e}")
                    self.assertLess(err, 1e-6)

    def test_golden_model_of_the_authors(self):
        g = harness.ARGS.golden
        if not g or not os.path.isdir(g):
            self.skipTest("no golden data")
        rvlt = self.convert(os.path.join(g, "tiny.pth"))
        x = torch.from_numpy(np.load(os.path.join(g, "input.npy")))
        want = torch.from_numpy(np.load(os.path.join(g, "logits.npy")))
        err = harness.rel_l2(run(rvlt, x)[0], want)
        print(f"  golden logits: relative L2 {err:.2e} (authors' fp32 vs fp64: 1.3e-6)")
        self.assertLess(err, 1e-5)


if __name__ == "__main__":
    harness.main()
