#!/usr/bin/python3
"""Every tensor in a converted .rvlt equals its source tensor, or its folded
form computed here in PyTorch from the source (BatchNorm into the conv
before it, layer scale into the projection before it, identity into the
depthwise centre tap), and every source tensor is accounted for."""

import os
import re
import tempfile
import unittest

import torch

import harness
from rvlt_interpreter import RvltFile

BN_AFTER = {f"patch_embed.proj.{i}": f"patch_embed.proj.{i + 1}" for i in (0, 3, 6, 9)}


def expected_constants(sd):
    """{name in the .rvlt: tensor} computed from the state dict, and the set
    of source keys they consume."""
    sd = {k: v.double() for k, v in sd.items() if v.is_floating_point()}
    out, used = {}, set()

    def bn_fold(conv, bn):
        w, b = sd[conv + ".weight"], sd[conv + ".bias"]
        s = sd[bn + ".weight"] / torch.sqrt(sd[bn + ".running_var"] + 1e-5)
        w = w * s.reshape(-1, *([1] * (w.dim() - 1)))
        b = (b - sd[bn + ".running_mean"]) * s + sd[bn + ".bias"]
        used.update({conv + ".weight", conv + ".bias"} |
                    {f"{bn}.{p}" for p in ("weight", "bias", "running_mean", "running_var")})
        return w, b

    convs = dict(BN_AFTER)
    for k in sd:
        m = re.match(r"layers\.(\d+)\.downsample\.reduction\.weight", k)
        if m:
            convs[f"layers.{m[1]}.downsample.reduction"] = f"layers.{m[1]}.downsample.norm"
    convs["proj"] = "norm"
    for conv, bn in convs.items():
        w, b = bn_fold(conv, bn)
        out[conv + ".weight"] = w.reshape(w.shape[0], -1) if conv == "proj" else w
        out[conv + ".bias"] = b

    for k, v in sd.items():
        if k in used:
            continue
        if k.endswith(("pos.weight", "ffn.dwconv.weight")):
            v = v.clone()
            v[:, 0, v.shape[2] // 2, v.shape[3] // 2] += 1
        elif k.endswith(("attn.proj.weight", "attn.proj.bias", "ffn.fc2.weight", "ffn.fc2.bias")):
            block = k.rsplit(".", 3)[0]  # "layers.s.blocks.j"
            gamma = block + (".gamma_1" if ".attn." in k else ".gamma_2")
            if gamma in sd:
                g = sd[gamma].flatten()
                v = v * g.reshape(-1, *([1] * (v.dim() - 1)))
                used.add(gamma)
        elif k.endswith(("gamma_1", "gamma_2")):
            continue
        if v.dim() == 4 and v.shape[2:] == (1, 1):
            v = v.reshape(v.shape[0], v.shape[1])  # 1x1 convolutions are stored as matrices
        out[k] = v
        used.add(k)
    return out, used


class RoundTrip(unittest.TestCase):
    def check(self, name, dtype="fp32", entry=None):
        src = harness.data(name + ".pth")
        obj = torch.load(src)
        sd = obj[entry] if entry else obj
        sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "m.rvlt")
            harness.ravlt("convert", src, "-o", out, "-q", "--dtype", dtype)
            got = RvltFile(out).constants()
        want, used = expected_constants(sd)
        self.assertEqual(sorted(got), sorted(want))
        unused = {k for k in sd if k not in used and not k.endswith("num_batches_tracked")}
        self.assertEqual(unused, set(), "source tensors missing from the model file")
        exact = folded = 0
        for k, v in want.items():
            g = got[k]
            self.assertEqual(tuple(g.shape), tuple(v.shape), k)
            if k.endswith("RoPE.angle"):
                v_stored = v.float().double()  # angles are always kept in float32
            elif dtype == "fp16":
                v_stored = v.float().half().double()
            elif dtype == "bf16":
                v_stored = v.float().bfloat16().double()
            else:
                v_stored = v.float().double()
            if torch.equal(g, v_stored):
                exact += 1
            else:
                # folded in double, then rounded once: at most one unit in the last place
                ulp = {"fp32": 2 ** -23, "fp16": 2 ** -10, "bf16": 2 ** -7}[dtype]
                bound = v_stored.abs() * ulp + 1e-30
                self.assertTrue(bool(((g - v_stored).abs() <= bound).all()), k)
                folded += 1
        print(f"  {name} ({dtype}): {len(want)} tensors, {exact} bit-exact, "
              f"{folded} within one rounding")

    def test_custom(self):
        self.check("custom_bare")

    def test_custom_training_entry_and_views(self):
        self.check("custom_training", entry="model")
        self.check("custom_views")

    def test_ravlt_t(self):
        self.check("T_module")

    def test_half_and_bfloat16(self):
        self.check("custom_bare", "fp16")
        self.check("custom_bare", "bf16")


if __name__ == "__main__":
    harness.main()
