#!/usr/bin/python3
"""Writes every checkpoint the test suite reads into one folder (the build
tree, never git): good ones in each layout of spec §5, and bad ones that must
be refused with a clear error.

    generate_test_checkpoints.py OUT_DIR [--quick]

--quick skips the large RAVLT-S/B/L files.
"""

import argparse
import collections
import json
import os
import struct
import subprocess
import sys
import time
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_checkpoint import write_checkpoint  # noqa: E402
from ravlt_reference import VARIANTS, Ravlt, randomize  # noqa: E402

# name: (variant, layout, dtype, legacy)
GOOD = {
    "T_training": ("T", "training", "fp32", False),
    "T_bare": ("T", "bare", "fp32", False),
    "T_module": ("T", "module", "fp32", False),
    "T_fp16": ("T", "bare", "fp16", False),
    "T_bf16": ("T", "bare", "bf16", False),
    "T_legacy_training": ("T", "training", "fp32", True),
    "custom_training": ("custom", "training", "fp32", False),
    "custom_bare": ("custom", "bare", "fp32", False),
    "custom_module": ("custom", "module", "fp32", False),
    "custom_views": ("custom", "views", "fp32", False),
    "custom_fp16_training": ("custom", "training", "fp16", False),
    "custom_bf16_module": ("custom", "module", "bf16", False),
    "custom_legacy_training": ("custom", "training", "fp32", True),
    "custom_legacy_bare": ("custom", "bare", "fp32", True),
    # Detection and segmentation checkpoints (their backbones).
    "T_mmdet": ("T", "mmdet", "fp32", False),
    "custom_mmdet": ("custom", "mmdet", "fp32", False),
    "custom_mmseg_legacy": ("custom", "mmseg", "fp32", True),
}
LARGE = {
    "S_bare": ("S", "bare", "fp32", False),
    "B_bare": ("B", "bare", "fp32", False),
    "L_bare": ("L", "bare", "fp32", False),
    "S_mmseg": ("S", "mmseg", "fp32", False),
}


class Call:
    """Pickles as a call of `fn(*args)`: what an attacker puts in a file."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def custom_state_dict(seed=0):
    return randomize(Ravlt(VARIANTS["custom"]), seed).eval().state_dict()


def zip_entries(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def rewrite_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data)


def patch_declared_size(path, entry_suffix, delta):
    """Makes the zip headers of one entry declare `delta` more bytes than it
    holds (central directory and local header alike, so the archive stays
    self-consistent and only the entry's contents betray the lie)."""
    buf = bytearray(open(path, "rb").read())
    eocd = buf.rindex(b"PK\x05\x06")
    (cd_offset,) = struct.unpack_from("<I", buf, eocd + 16)
    pos = cd_offset
    while buf[pos:pos + 4] == b"PK\x01\x02":
        comp, size, nlen, xlen, clen = struct.unpack_from("<IIHHH", buf, pos + 20)
        (local,) = struct.unpack_from("<I", buf, pos + 42)
        name = buf[pos + 46:pos + 46 + nlen].decode()
        if name.endswith(entry_suffix):
            struct.pack_into("<II", buf, pos + 20, comp + delta, size + delta)
            struct.pack_into("<II", buf, local + 18, comp + delta, size + delta)
            open(path, "wb").write(bytes(buf))
            return
        pos += 46 + nlen + xlen + clen
    raise KeyError(entry_suffix)


def write_bad(out):
    """Checkpoints that must be refused; the expected error fragment of each
    goes to bad.json."""
    expect = {}
    sd = custom_state_dict()

    def save(name, obj, fragment, **kw):
        torch.save(obj, os.path.join(out, name + ".pth"), **kw)
        expect[name] = fragment

    # Hostile globals, wherever they stand; never executed.
    save("hostile_posix_system", {"model": sd, "args": Call(os.system, ("echo owned",))},
         "posix.system")
    save("hostile_eval_stack_global", {"model": sd, "scaler": Call(eval, ("1+1",))},
         "builtins.eval", pickle_protocol=4)
    save("hostile_subprocess", {"model": sd, "optimizer": Call(subprocess.Popen, (["true"],))},
         "subprocess.Popen")
    hostile_inside = collections.OrderedDict(sd)
    hostile_inside["evil"] = Call(eval, ("1+1",))
    save("hostile_in_state_dict", hostile_inside, "eval")
    # An inert object where a tensor belongs: refused, naming key and global.
    inert_inside = collections.OrderedDict(sd)
    inert_inside["head.bias"] = argparse.Namespace(x=1)
    save("inert_in_state_dict", {"model": inert_inside}, "argparse.Namespace")
    # Keys against the config.
    missing = collections.OrderedDict(sd)
    del missing["layers.1.blocks.0.attn.lepe.weight"]
    save("missing_key", missing, "missing key 'layers.1.blocks.0.attn.lepe.weight'")
    extra = collections.OrderedDict(sd)
    extra["layers.0.blocks.0.attn.surprise"] = torch.zeros(3)
    save("extra_key", extra, "unexpected key 'layers.0.blocks.0.attn.surprise'")
    misshapen = collections.OrderedDict(sd)
    misshapen["layers.2.blocks.1.ffn.fc2.weight"] = torch.zeros(72, 215, 1, 1)
    save("misshapen_key", misshapen, "'layers.2.blocks.1.ffn.fc2.weight' has shape (72, 215, 1, 1)")
    save("no_model_entry", {"epoch": 3, "optimizer": {}}, "no entry 'model'")
    # Detection checkpoints whose backbone is broken, or not a RAVLT.
    from make_checkpoint import detector_layout
    from ravlt_reference import RavltBackbone
    dense = randomize(RavltBackbone(VARIANTS["custom"]), 0).state_dict()
    no_norm = collections.OrderedDict(dense)
    del no_norm["extra_norms.2.norm.bias"]
    save("mmdet_missing_key", detector_layout(no_norm, "mmdet", 0),
         "missing key 'extra_norms.2.norm.bias'")
    bad_shape = collections.OrderedDict(dense)
    bad_shape["layers.1.blocks.0.attn.proj.weight"] = torch.zeros(40, 41, 1, 1)
    save("mmdet_misshapen_key", detector_layout(bad_shape, "mmseg", 0),
         "'layers.1.blocks.0.attn.proj.weight' has shape (40, 41, 1, 1)")
    resnet = collections.OrderedDict(
        [("conv1.weight", torch.zeros(64, 3, 7, 7)), ("bn1.weight", torch.ones(64)),
         ("layer1.0.conv1.weight", torch.zeros(64, 64, 1, 1))])
    save("mmdet_resnet_backbone", detector_layout(resnet, "mmdet", 0),
         "the backbone is not a RAVLT (no patch_embed / layers.N.blocks keys)")
    bad_classes = detector_layout(dense, "mmdet", 0)
    bad_classes["meta"]["CLASSES"] = ("person", 3)
    save("mmdet_bad_classes", bad_classes, "meta.CLASSES holds an int among its class names")
    # Zip entries that lie about their sizes.
    base = os.path.join(out, "custom_bare.pth")
    entries = zip_entries(base)
    storage = next(n for n, _ in entries if "/data/" in n)
    short = [(n, d[:-4] if n == storage else d) for n, d in entries]
    rewrite_zip(os.path.join(out, "short_storage.pth"), short)
    expect["short_storage"] = "but its zip entry holds"
    rewrite_zip(os.path.join(out, "lying_pickle_size.pth"), entries)
    patch_declared_size(os.path.join(out, "lying_pickle_size.pth"), "data.pkl", 1000)
    expect["lying_pickle_size"] = "data.pkl"
    # Not a checkpoint at all.
    with open(os.path.join(out, "not_a_checkpoint.pth"), "wb") as f:
        f.write(b"hello, this is text\n" * 10)
    expect["not_a_checkpoint"] = "not a PyTorch checkpoint"
    with open(os.path.join(out, "bad.json"), "w") as f:
        json.dump(expect, f, indent=1)
    return len(expect)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    start = time.time()
    todo = dict(GOOD)
    if not a.quick:
        todo.update(LARGE)
    for name, (variant, layout, dtype, legacy) in todo.items():
        write_checkpoint(variant, layout, os.path.join(a.out, name + ".pth"), dtype, legacy)
    bad = write_bad(a.out)
    with open(os.path.join(a.out, "good.json"), "w") as f:
        json.dump({k: {"variant": v[0], "layout": v[1], "dtype": v[2], "legacy": v[3]}
                   for k, v in todo.items()}, f, indent=1)
    print(f"wrote {len(todo)} checkpoints and {bad} bad ones to {a.out} "
          f"in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
