#!/usr/bin/python3
"""The shipped demo model (demo/): `ravlt classify` on the whole held-out set
against PyTorch (the reference model with the same checkpoint, on the
tensors torchvision makes of the same PNG files): the same top-1 class for
every image, probabilities within float rounding, and the accuracy
reported."""

import json
import os
import sys
import tempfile
import unittest

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "demo")
sys.path.insert(0, DEMO)


class DemoModel(unittest.TestCase):
    def test_engine_predictions_equal_pytorch_on_the_held_out_set(self):
        from train_digits import CONFIG, MEAN, STD, SIZE
        from ravlt_reference import Ravlt

        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "digits.rvlt")
            harness.ravlt("convert", os.path.join(DEMO, "ravlt_digits.pth"), "-o", model, "-q", "--resize",
                          str(SIZE), "--crop", str(SIZE), "--labels", os.path.join(DEMO, "digit_labels.txt"))
            out = harness.ravlt("classify", "-m", model, os.path.join(DEMO, "digits"), "--json", "--batch",
                                "32", "-k", "10").stdout
        ours = json.loads(out)
        self.assertEqual(ours["failed"], 0)
        results = ours["results"]
        self.assertEqual(len(results), 360)

        ckpt = torch.load(os.path.join(DEMO, "ravlt_digits.pth"), map_location="cpu")
        ref = Ravlt(CONFIG).eval()
        ref.load_state_dict(ckpt["model"])
        tf = T.Compose([T.Resize(SIZE, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(SIZE),
                        T.ToTensor(), T.Normalize(MEAN.flatten().tolist(), STD.flatten().tolist())])
        x = torch.stack([tf(Image.open(r["path"]).convert("RGB")) for r in results])
        with torch.no_grad():
            probs = torch.softmax(ref(x).double(), 1).numpy()
        labels = np.array([int(os.path.basename(r["path"]).split("_")[1][0]) for r in results])
        ours_top1 = np.array([int(r["labels"][0]) for r in results])
        torch_top1 = probs.argmax(1)
        np.testing.assert_array_equal(ours_top1, torch_top1)
        for r, p in zip(results, probs):
            ours_p = np.zeros(10)
            ours_p[r["indices"]] = r["probabilities"]
            np.testing.assert_allclose(ours_p, p, atol=1e-5)
        accuracy = float((ours_top1 == labels).mean())
        print(f"  demo model: {len(results)} held-out digits, engine top-1 = PyTorch top-1 for all; "
              f"accuracy {100 * accuracy:.2f}% (training script reported "
              f"{ckpt['max_accuracy']:.2f}%)")
        self.assertGreaterEqual(accuracy, 0.97)


if __name__ == "__main__":
    harness.main()
