#!/usr/bin/python3
"""Writes a RAVLT checkpoint with fresh random weights, in the layouts met in
practice (spec §5), plus a JSON file with what the converter must report.

    make_checkpoint.py --variant T --layout training -o t.pth

Layouts:
  bare      an OrderedDict state dict
  module    the same with every key prefixed "module."
  training  the authors' training dict: model, model_ema, optimizer,
            lr_scheduler (a OneCycleLR state dict, which pickles a bound method
            and the optimizer object itself), scaler, epoch, max_accuracy
            (a numpy scalar), args (an argparse.Namespace)
  views     bare, but several tensors view one storage at offsets and one is
            a non-contiguous (transposed) view
"""

import argparse
import collections
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ravlt_reference import VARIANTS, Ravlt, parameter_count, randomize  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def cast(sd, dtype):
    return collections.OrderedDict(
        (k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())


def make_views(sd):
    """Re-expresses some tensors as views of shared storages."""
    sd = collections.OrderedDict(sd)
    keys = [k for k in sd if k.endswith("attn.qkvo.bias") or k.endswith("attn.proj.bias")]
    # qkvo.bias and proj.bias of the first block share one storage.
    a, b = keys[0], keys[1]
    base = torch.cat([sd[a], sd[b]])
    sd[a] = base[: sd[a].numel()]
    sd[b] = base[sd[a].numel():]
    # fc1.weight of the first block stored transposed: strides (1, F, 1, 1).
    k = next(k for k in sd if k.endswith("ffn.fc1.weight"))
    w = sd[k]
    f, c = w.shape[0], w.shape[1]
    wt = w.reshape(f, c).t().contiguous()
    sd[k] = torch.as_strided(wt, (f, c, 1, 1), (1, f, 1, 1))
    assert torch.equal(sd[k], w) and not sd[k].is_contiguous()
    return sd


def training_layout(model, ema_model):
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    for p in params:  # the state one step would leave, without the compute
        optimizer.state[p] = {"step": torch.tensor(1.0), "exp_avg": torch.full_like(p, 1e-3),
                              "exp_avg_sq": torch.full_like(p, 1e-6)}
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=100)
    args = argparse.Namespace(model="RAVLT", batch_size=128, lr=1e-3, epochs=300,
                              data_path="/datasets/imagenet", amp=True)
    return {
        "model": model.state_dict(),
        "model_ema": ema_model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                   "growth_interval": 2000, "_growth_tracker": 0},
        "epoch": 299,
        "max_accuracy": np.float64(84.4),
        "args": args,
    }


def expected(cfg, sd, variant):
    heads = cfg.num_heads
    return {
        "variant": f"RAVLT-{variant}" if variant in "TSBL" else "custom",
        "embed_dims": cfg.embed_dims,
        "depths": cfg.depths,
        "num_heads": heads,
        "head_dims": [c // n for c, n in zip(cfg.embed_dims, heads)],
        "ffn_hidden": [cfg.ffn_hidden(s) for s in range(4)],
        "layer_scales": cfg.layer_scales,
        "projection": cfg.projection,
        "num_classes": cfg.num_classes,
        "parameter_count": parameter_count(sd),
        "state_dict_entries": len(sd),
    }


def write_checkpoint(variant, layout, path, dtype="fp32", legacy=False, seed=0):
    """Writes one checkpoint and its expectations (path + ".json")."""
    cfg = VARIANTS[variant]
    model = randomize(Ravlt(cfg), seed).eval()
    torch_dtype = DTYPES[dtype]
    sd = cast(model.state_dict(), torch_dtype)
    if layout == "bare":
        obj = sd
    elif layout == "module":
        obj = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    elif layout == "views":
        obj = make_views(sd)
    elif layout == "training":
        ema = randomize(Ravlt(cfg), seed + 1).eval()
        model.to(torch_dtype)
        ema.to(torch_dtype)
        obj = training_layout(model, ema)
    else:
        raise ValueError(layout)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    with open(path + ".json", "w") as f:
        json.dump(expected(cfg, sd, variant), f, indent=1)
    return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    ap.add_argument("--layout", choices=["bare", "module", "training", "views"], default="bare")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--legacy", action="store_true", help="legacy (non-zip) torch.save format")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    write_checkpoint(a.variant, a.layout, a.output, a.dtype, a.legacy, a.seed)
    with open(a.output + ".json") as f:
        params = json.load(f)["parameter_count"]
    print(f"wrote {a.output} ({os.path.getsize(a.output) / 1e6:.1f} MB, "
          f"{params / 1e6:.2f} M parameters)")


if __name__ == "__main__":
    main()
