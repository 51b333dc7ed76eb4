#!/usr/bin/python3
"""Decoding and preprocessing against the authors' evaluation pipeline:
Pillow 9.4's Image.open(f).convert("RGB"), then torchvision's Resize(bicubic),
CenterCrop, ToTensor and Normalize. `ravlt preprocess` must give the same
float32 tensor, bit for bit, for every format and pixel layout of
image_samples.py; broken files must fail with a clear message."""

import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

import harness
import image_samples

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def torchvision_tensor(path, resize=256, crop=(224, 224), mean=MEAN, std=STD):
    tf = T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(crop),
                    T.ToTensor(), T.Normalize(mean, std)])
    with open(path, "rb") as f:
        img = Image.open(f).convert("RGB")
    return tf(img).unsqueeze(0).numpy()


class Images(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.samples = image_samples.write_samples(os.path.join(cls.tmp.name, "samples"))
        cls.broken = image_samples.write_broken(os.path.join(cls.tmp.name, "broken"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ours(self, path, *options):
        out = os.path.join(self.tmp.name, "x.npy")
        harness.ravlt("preprocess", path, "-o", out, *options)
        return np.load(out)

    def assert_identical(self, ours, want, what):
        self.assertEqual(ours.shape, want.shape, what)
        self.assertEqual(ours.dtype, np.float32, what)
        diff = np.abs(ours.astype(np.float64) - want).max()
        self.assertEqual(diff, 0.0, f"{what}: max |ours - torchvision| = {diff}")

    def test_every_format_matches_pillow_and_torchvision_exactly(self):
        for path in self.samples:
            with self.subTest(image=os.path.basename(path)):
                self.assert_identical(self.ours(path), torchvision_tensor(path), os.path.basename(path))
        print(f"  {len(self.samples)} images, 224x224 tensors identical to torchvision's")

    def test_decoded_pixels_match_pillow(self):
        # Resize to the shorter side itself and crop the whole image: the
        # tensor is then the decoded pixels / 255, unresampled.
        for path in self.samples:
            with Image.open(path) as im:
                w, h = im.size
                want = np.asarray(im.convert("RGB"), np.float32).transpose(2, 0, 1)[None] / np.float32(255)
            with self.subTest(image=os.path.basename(path)):
                ours = self.ours(path, "--resize", str(min(w, h)), "--crop", f"{h}x{w}", "--mean", "0", "0",
                                 "0", "--std", "1", "1", "1")
                self.assert_identical(ours, want, os.path.basename(path))

    def test_other_sizes_bilinear_free_crop_and_padding(self):
        path = self.samples[0]
        cases = [  # resize, crop: odd sizes, a crop larger than the image (torchvision pads)
            (97, (61, 89)),
            (300, (224, 224)),
            (50, (64, 80)),
        ]
        for resize, crop in cases:
            with self.subTest(resize=resize, crop=crop):
                ours = self.ours(path, "--resize", str(resize), "--crop", f"{crop[0]}x{crop[1]}")
                self.assert_identical(ours, torchvision_tensor(path, resize, crop), f"{resize} {crop}")

    def test_model_preprocessing_is_used(self):
        model = os.path.join(self.tmp.name, "custom.rvlt")
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", model, "-q", "--resize", "80",
                      "--crop", "64", "--mean", "0.5", "0.4", "0.3", "--std", "0.2", "0.25", "0.3")
        path = self.samples[1]
        want = torchvision_tensor(path, 80, (64, 64), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
        self.assert_identical(self.ours(path, "-m", model), want, "model preprocessing")

    def test_broken_images_fail_with_a_reason(self):
        for path, message in self.broken:
            with self.subTest(image=os.path.basename(path)):
                p = harness.ravlt("preprocess", path, "-o", os.path.join(self.tmp.name, "b.npy"), check=False)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(message, p.stderr)
                self.assertIn(os.path.basename(path), p.stderr)
        # The bomb limit is an option: a 200 x 150 image fails below 30000 pixels.
        path = self.samples[0]
        p = harness.ravlt("preprocess", path, "-o", os.path.join(self.tmp.name, "b.npy"), "--max-pixels", "1000",
                          check=False)
        self.assertIn("exceeds the limit of 1000", p.stderr)

    def test_classify_equals_the_authors_evaluation(self):
        """`ravlt classify` on every sample (ImageNet preprocessing 256/224)
        against the reference model on torchvision's tensors of the same
        files: same top-5 classes, probabilities to float rounding."""
        import sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from ravlt_reference import VARIANTS, Ravlt
        model = os.path.join(self.tmp.name, "custom_imagenet.rvlt")
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", model, "-q")
        folder = os.path.join(self.tmp.name, "samples")
        r = json.loads(harness.ravlt("classify", "-m", model, folder, "--json", "--batch", "5").stdout)
        self.assertEqual(r["failed"], 0)
        self.assertEqual(r["images"], len(self.samples))
        ref = Ravlt(VARIANTS["custom"]).eval()
        ref.load_state_dict(torch.load(harness.data("custom_bare.pth")))
        for item in r["results"]:
            with self.subTest(image=os.path.basename(item["path"])):
                with torch.no_grad():
                    logits = ref(torch.from_numpy(torchvision_tensor(item["path"]))).double()
                probs = torch.softmax(logits, 1)[0].numpy()
                want = np.argsort(-probs, kind="stable")[:5]
                self.assertEqual(item["indices"], want.tolist())
                np.testing.assert_allclose(item["probabilities"], probs[want], rtol=1e-5, atol=1e-7)
                self.assertEqual(item["labels"][0], f"class_{want[0]}")
        print(f"  classify: {len(r['results'])} images, top-5 and probabilities as PyTorch's evaluation")

    def test_classify_reports_broken_files_and_goes_on(self):
        model = os.path.join(self.tmp.name, "custom_small.rvlt")
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", model, "-q", "--resize", "48",
                      "--crop", "40")
        folder = os.path.join(self.tmp.name, "mixed")
        os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
        shutil.copy(self.samples[0], os.path.join(folder, "sub", "good.jpg"))
        shutil.copy(self.samples[6], os.path.join(folder, "good.png"))
        shutil.copy(self.broken[0][0], os.path.join(folder, "bad.jpg"))
        with open(os.path.join(folder, "notes.txt"), "w") as f:  # not an image name: skipped
            f.write("x")
        p = harness.ravlt("classify", "-m", model, folder, "-k", "2", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.jpg: corrupt JPEG", p.stderr)
        self.assertIn("1 of 3 images could not be classified", p.stderr)
        self.assertEqual(p.stdout.count("good"), 2)
        self.assertEqual(len(p.stdout.strip().splitlines()), 2 * 3)  # path + 2 classes, twice
        p = harness.ravlt("classify", "-m", model, folder, "--json", check=False)
        self.assertEqual(p.returncode, 1)
        doc = json.loads(p.stdout)
        self.assertEqual((doc["images"], doc["failed"]), (3, 1))
        bad = [x for x in doc["results"] if "error" in x]
        self.assertEqual(len(bad), 1)
        self.assertTrue(bad[0]["path"].endswith("bad.jpg"))
        good = [x for x in doc["results"] if "error" not in x]
        self.assertEqual([len(x["indices"]) for x in good], [5, 5])
        p = harness.ravlt("classify", "-m", model, folder, "--device", "cuda", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--device cuda", p.stderr)
        p = harness.ravlt("classify", "-m", model, os.path.join(folder, "sub", "nothing"), check=False)
        self.assertIn("cannot open", p.stderr)
        empty = os.path.join(self.tmp.name, "empty_dir")
        os.makedirs(empty, exist_ok=True)
        p = harness.ravlt("classify", "-m", model, empty, check=False)
        self.assertIn("no images found", p.stderr)


if __name__ == "__main__":
    harness.main()
