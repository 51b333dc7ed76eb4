#!/usr/bin/python3
"""Trains the demo model: a small RAVLT (dims 32-64-128-256, depths 1-1-2-1,
heads 2-2-4-8, so head dims 16, 32, 32, 32, projection 256) on scikit-learn's
handwritten digits, upsampled from 8x8 to 64x64 grayscale, with a fixed seed
and a fixed stratified split (1437 train, 360 held out), on the CPU in a few
minutes.

    demo/train_digits.py [--epochs 30] [--out demo]

Writes, under --out:
  ravlt_digits.pth    the checkpoint in the authors' training layout
                      ("model", "epoch", "max_accuracy", "args")
  digit_labels.txt    the class names "0" ... "9", for `ravlt convert --labels`
  digits/NNN_L.png    the held-out images (64x64 grayscale PNG, L = label)

Each image is exactly what the network was evaluated on: converted with
`--resize 64 --crop 64` (ImageNet mean and std, the defaults), ravlt's
preprocessing of a 64x64 PNG is the identity resize, the whole-image crop,
/255 and the normalization, i.e. the tensors below.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
from ravlt_reference import Ravlt, RavltConfig  # noqa: E402

CONFIG = RavltConfig([32, 64, 128, 256], [1, 1, 2, 1], [2, 2, 4, 8], projection=256, num_classes=10)
SIZE = 64
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def digit_images():
    """(images uint8 N x 64 x 64, labels) of the whole data set: 0..16
    scaled to 0..255, upsampled with Pillow's bicubic filter."""
    digits = load_digits()
    small = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(im, "L").resize((SIZE, SIZE), Image.BICUBIC)) for im in small])
    return big, digits.target.astype(np.int64)


def split():
    images, labels = digit_images()
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=0.2, random_state=0, stratify=labels)
    return images, labels, np.sort(train), np.sort(test)


def to_tensor(images_u8):
    """What ToTensor + Normalize make of these grayscale images read as RGB."""
    x = torch.from_numpy(images_u8).float().div(255).unsqueeze(1).repeat(1, 3, 1, 1)
    return x.sub(MEAN).div(STD)


def shifted(images_u8, rng):
    """Training augmentation: each image moved by up to 4 pixels."""
    out = np.zeros_like(images_u8)
    for i, im in enumerate(images_u8):
        dy, dx = rng.randint(-4, 5, 2)
        out[i] = np.roll(np.roll(im, dy, 0), dx, 1)
    return out


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 128]).argmax(1) for i in range(0, len(x), 128)])
    return float((pred == y).float().mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(ROOT, "demo"))
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.RandomState(0)
    images, labels, train, test = split()
    x_test, y_test = to_tensor(images[test]), torch.from_numpy(labels[test])
    y_train = torch.from_numpy(labels[train])
    model = Ravlt(CONFIG)
    steps_per_epoch = (len(train) + 31) // 32
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.epochs * steps_per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    start = time.time()
    for epoch in range(a.epochs):
        model.train()
        order = rng.permutation(len(train))
        x_train = to_tensor(shifted(images[train], rng))
        for i in range(0, len(order), 32):
            batch = torch.from_numpy(order[i:i + 32])
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{a.epochs}: loss {loss.item():.3f}, held-out accuracy {100 * acc:.2f}% "
              f"({time.time() - start:.0f} s)", flush=True)
    acc = evaluate(model, x_test, y_test)
    os.makedirs(os.path.join(a.out, "digits"), exist_ok=True)
    args = argparse.Namespace(model="RAVLT-digits", embed_dims=CONFIG.embed_dims, depths=CONFIG.depths,
                              num_heads=CONFIG.num_heads, projection=CONFIG.projection, epochs=a.epochs,
                              input_size=SIZE, seed=0)
    torch.save({"model": model.state_dict(), "epoch": a.epochs - 1, "max_accuracy": 100 * acc, "args": args},
               os.path.join(a.out, "ravlt_digits.pth"))
    with open(os.path.join(a.out, "digit_labels.txt"), "w") as f:
        f.write("".join(f"{d}\n" for d in range(10)))
    for i in test:
        Image.fromarray(images[i], "L").save(os.path.join(a.out, "digits", f"{i:04d}_{labels[i]}.png"))
    print(f"held-out accuracy {100 * acc:.2f}% on {len(test)} images; wrote {a.out}/ravlt_digits.pth")


if __name__ == "__main__":
    main()
