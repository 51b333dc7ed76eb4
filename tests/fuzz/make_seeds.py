#!/usr/bin/python3
"""Seed corpora for the fuzz targets, made by the project's own scripts:
micro RAVLT checkpoints (every container and layout the reader takes), the
pickles inside them, .rvlt files converted from them, sample images (and
broken ones) from tests/reference/image_samples.py, and .npy files.

    make_seeds.py OUT_DIR --ravlt build/ravlt

Writes OUT_DIR/<target>/ for fuzz_checkpoint, fuzz_pickle, fuzz_model_file,
fuzz_image, fuzz_npy and fuzz_packed_weights (the packed weights `ravlt bench
--cache-dir` writes for the micro models). The models are tiny (dims 8-8-12-16, one block per
stage, about 10,000 parameters) so that each execution is fast."""

import argparse
import io
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from make_checkpoint import detector_layout, make_views, training_layout  # noqa: E402
from ravlt_reference import Ravlt, RavltBackbone, RavltConfig, randomize  # noqa: E402
import image_samples  # noqa: E402

MICRO = RavltConfig([8, 8, 12, 16], [1, 1, 1, 1], [2, 2, 3, 4], mlp_ratio=2.0,
                    layer_scales=[True, False, True, False], projection=16, num_classes=3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--ravlt", required=True)
    a = ap.parse_args()
    dirs = {t: os.path.join(a.out, t) for t in
            ("fuzz_checkpoint", "fuzz_pickle", "fuzz_model_file", "fuzz_image", "fuzz_npy",
             "fuzz_packed_weights")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)

    model = randomize(Ravlt(MICRO), 0).eval()
    ema = randomize(Ravlt(MICRO), 1).eval()
    sd = model.state_dict()
    objects = {
        "bare": sd,
        "views": make_views(sd),
        "training": training_layout(model, ema),
        "half": {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()},
        "mmdet": detector_layout(randomize(RavltBackbone(MICRO), 2).state_dict(), "mmdet", 0),
    }
    ckpt = dirs["fuzz_checkpoint"]
    for name, obj in objects.items():
        for legacy in (False, True):
            path = os.path.join(ckpt, f"{name}{'_legacy' if legacy else ''}.pth")
            torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    # The pickles: data.pkl of each zip, and a few hand-written ones.
    for name in objects:
        with zipfile.ZipFile(os.path.join(ckpt, f"{name}.pth")) as z:
            pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
            with open(os.path.join(dirs["fuzz_pickle"], f"{name}.pkl"), "wb") as f:
                f.write(z.read(pkl))
    import pickle
    for i, obj in enumerate([{"a": [1, 2.5, "x", None, True]}, (1, (2, (3,))), {b"k": bytearray(b"v")}]):
        for protocol in (0, 2, 4):
            with open(os.path.join(dirs["fuzz_pickle"], f"plain{i}_p{protocol}.pkl"), "wb") as f:
                pickle.dump(obj, f, protocol=protocol)
    # .rvlt files converted by the tool, with different attention layouts.
    for i, attention in enumerate(["l,l,v,v", "v,v,l,l"]):
        subprocess.run([a.ravlt, "convert", os.path.join(ckpt, "bare.pth"), "-o",
                        os.path.join(dirs["fuzz_model_file"], f"micro{i}.rvlt"), "-q",
                        "--attention", attention], check=True)
    subprocess.run([a.ravlt, "convert", os.path.join(ckpt, "mmdet.pth"), "-o",
                    os.path.join(dirs["fuzz_model_file"], "micro_backbone.rvlt"), "-q"], check=True)
    subprocess.run([a.ravlt, "convert", os.path.join(ckpt, "half.pth"), "-o",
                    os.path.join(dirs["fuzz_model_file"], "micro_fp16.rvlt"), "-q", "--dtype", "fp16"],
                   check=True)
    # Packed weights of the micro models, as a first plan writes them.
    for name in ("micro0.rvlt", "micro_backbone.rvlt"):
        cache = os.path.join(a.out, "cache_" + name)
        subprocess.run([a.ravlt, "bench", "-m", os.path.join(dirs["fuzz_model_file"], name),
                        "--size", "40x40", "--iterations", "1", "--warmup", "0", "--threads", "1",
                        "--cache-dir", cache], check=True, stdout=subprocess.DEVNULL)
        for f in os.listdir(cache):
            shutil.copy(os.path.join(cache, f), os.path.join(dirs["fuzz_packed_weights"], name + ".rvltpack"))
        shutil.rmtree(cache)
    # Images: small ones (the fuzzer mutates bytes; large files slow it).
    image_samples.write_samples(os.path.join(a.out, "images_all"))
    image_samples.write_broken(os.path.join(a.out, "images_broken"))
    for folder in ("images_all", "images_broken"):
        for name in os.listdir(os.path.join(a.out, folder)):
            path = os.path.join(a.out, folder, name)
            if os.path.isfile(path) and os.path.getsize(path) < 64 * 1024:
                shutil.copy(path, os.path.join(dirs["fuzz_image"], folder + "_" + name))
        shutil.rmtree(os.path.join(a.out, folder))
    from PIL import Image
    small = Image.fromarray(image_samples.photo(23, 17))
    for fmt, kw in (("JPEG", {"quality": 80}), ("JPEG", {"progressive": True}), ("PNG", {}), ("BMP", {})):
        buf = io.BytesIO()
        small.save(buf, fmt, **kw)
        with open(os.path.join(dirs["fuzz_image"], f"small{len(buf.getvalue())}.{fmt.lower()}"), "wb") as f:
            f.write(buf.getvalue())
    # .npy
    for i, arr in enumerate([np.zeros((1, 3, 4, 5), np.float32), np.arange(6, dtype=np.float32),
                             np.ones((2, 2), np.float64), np.float32(3.0)]):
        np.save(os.path.join(dirs["fuzz_npy"], f"a{i}.npy"), arr)
    for t, d in dirs.items():
        print(f"{t}: {len(os.listdir(d))} seeds")


if __name__ == "__main__":
    main()
