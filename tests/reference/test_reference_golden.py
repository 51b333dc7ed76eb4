#!/usr/bin/python3
"""Our reference (written from the spec) against the authors' own model, on
the golden run in shared/data/golden: a misreading of the spec shared by the
reference and the engine would show here."""

import json
import os
import unittest

import numpy as np
import torch

import harness
from ravlt_reference import Ravlt, RavltConfig


def golden_model_and_input():
    g = harness.ARGS.golden
    with open(os.path.join(g, "golden.json")) as f:
        c = json.load(f)["config"]
    cfg = RavltConfig(c["embed_dims"], c["depths"], c["num_heads"], mlp_ratio=c["mlp_ratios"][0],
                      layer_scales=c["layerscales"], projection=c["projection"],
                      num_classes=c["num_classes"])
    model = Ravlt(cfg).eval()
    model.load_state_dict(torch.load(os.path.join(g, "tiny.pth")), strict=True)
    x = torch.from_numpy(np.load(os.path.join(g, "input.npy")))
    return model, x


class ReferenceAgainstAuthors(unittest.TestCase):
    def setUp(self):
        if not harness.ARGS.golden or not os.path.isdir(harness.ARGS.golden):
            self.skipTest("no golden data (shared/data/golden) beside the repository")

    def test_every_stage_and_the_logits_match(self):
        model, x = golden_model_and_input()
        with torch.no_grad():
            logits, outs = model(x, return_stages=True)
        g = harness.ARGS.golden
        for name, out in outs.items():
            want = torch.from_numpy(np.load(os.path.join(g, name + ".npy")))
            self.assertEqual(tuple(out.shape), tuple(want.shape), name)
            err = harness.rel_l2(out, want)
            print(f"  {name}: relative L2 {err:.2e}")
            self.assertLess(err, 1e-5, name)
        want = torch.from_numpy(np.load(os.path.join(g, "logits.npy")))
        err = harness.rel_l2(logits, want)
        print(f"  logits: relative L2 {err:.2e} (authors' fp32 vs fp64: 1.3e-6)")
        self.assertLess(err, 1e-5)
        with open(os.path.join(g, "golden.json")) as f:
            self.assertEqual(logits.argmax(1).tolist(), json.load(f)["top1"])


if __name__ == "__main__":
    harness.main()
