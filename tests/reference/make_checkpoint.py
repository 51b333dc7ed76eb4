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
  mmdet     a detector as mmcv's save_checkpoint writes it for mmdetection:
            meta (mmdet_version, CLASSES, config, epoch, iter, env_info,
            hook_msgs), state_dict (backbone.* = the detection backbone,
            RavltBackbone, and neck.*, rpn_head.*, roi_head.* tensors),
            optimizer
  mmseg     the same for mmsegmentation: meta with mmseg_version, CLASSES and
            PALETTE; decode_head.* and auxiliary_head.* beside backbone.*
"""

import argparse
import collections
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ravlt_reference import VARIANTS, Ravlt, RavltBackbone, parameter_count, randomize  # noqa: E402

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


COCO_CLASSES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")
ADE_CLASSES = ("wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed ")
DETECTOR_PARTS = {
    "mmdet": {"neck.lateral_convs.0.conv.weight": (256, 64, 1, 1),
              "neck.lateral_convs.0.conv.bias": (256,),
              "rpn_head.rpn_conv.weight": (256, 256, 3, 3),
              "rpn_head.rpn_cls.weight": (3, 256, 1, 1),
              "roi_head.bbox_head.fc_cls.weight": (9, 1024)},
    "mmseg": {"decode_head.conv_seg.weight": (150, 512, 1, 1),
              "decode_head.conv_seg.bias": (150,),
              "auxiliary_head.conv_seg.weight": (150, 256, 1, 1)},
}


def detector_layout(backbone_sd, framework, seed):
    """mmcv's save_checkpoint of a whole detector or segmentor whose
    backbone holds `backbone_sd`: plain builtins, tuples, lists, dicts and
    tensors only."""
    g = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict(("backbone." + k, v) for k, v in backbone_sd.items())
    for k, shape in DETECTOR_PARTS[framework].items():
        sd[k] = torch.randn(shape, generator=g)
    meta = {"config": "model = dict(type='RetinaNet', backbone=dict(type='GLTA'))\n",
            "epoch": 12, "iter": 87960,
            "env_info": "sys.platform: linux\nPython: 3.8.13\nPyTorch: 1.13.1",
            "hook_msgs": {"last_ckpt": "/work_dirs/epoch_12.pth"}}
    if framework == "mmdet":
        meta.update({"mmdet_version": "2.28.2", "CLASSES": COCO_CLASSES})
    else:
        meta.update({"mmseg_version": "0.30.0", "CLASSES": ADE_CLASSES,
                     "PALETTE": [[120, 120, 120], [180, 120, 120], [6, 230, 230]]})
    optimizer = {"state": {0: {"step": 10, "exp_avg": torch.zeros(3)}},
                 "param_groups": [{"lr": 1e-4, "weight_decay": 0.05, "betas": (0.9, 0.999),
                                   "params": [0, 1, 2]}]}
    return {"meta": meta, "state_dict": sd, "optimizer": optimizer}


def expected(cfg, sd, variant, kind="classifier"):
    heads = cfg.num_heads
    return {
        "variant": f"RAVLT-{variant}" if variant in "TSBL" else "custom",
        "embed_dims": cfg.embed_dims,
        "depths": cfg.depths,
        "num_heads": heads,
        "head_dims": [c // n for c, n in zip(cfg.embed_dims, heads)],
        "ffn_hidden": [cfg.ffn_hidden(s) for s in range(4)],
        "layer_scales": cfg.layer_scales,
        "kind": kind,
        "projection": cfg.projection if kind == "classifier" else 0,
        "num_classes": cfg.num_classes if kind == "classifier" else 0,
        "parameter_count": parameter_count(sd),
        "state_dict_entries": len(sd),
    }


def write_checkpoint(variant, layout, path, dtype="fp32", legacy=False, seed=0):
    """Writes one checkpoint and its expectations (path + ".json")."""
    cfg = VARIANTS[variant]
    dense = layout in DETECTOR_PARTS
    model = randomize((RavltBackbone if dense else Ravlt)(cfg), seed).eval()
    torch_dtype = DTYPES[dtype]
    sd = cast(model.state_dict(), torch_dtype)
    if dense:
        obj = detector_layout(sd, layout, seed)
    elif layout == "bare":
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
        json.dump(expected(cfg, sd, variant, "backbone" if dense else "classifier"), f, indent=1)
    return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    ap.add_argument("--layout", choices=["bare", "module", "training", "views", "mmdet", "mmseg"],
                    default="bare")
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
