"""Images in every format and pixel layout the engine decodes, written with
Pillow (and by hand where Pillow cannot write the layout: 16-bit RGB and
interlaced PNG), plus broken ones. Used by test_images.py; also a seed
corpus for the image fuzzer.

    image_samples.py OUTPUT_DIR
"""

import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image


def photo(width, height, seed=0):
    """Smooth colour gradients plus noise: content like a photo, so that
    JPEG's and the resampler's rounding are exercised everywhere."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
    g = 127 + 100 * np.cos((x + y) / 31.0)
    b = 255 * (x / max(width - 1, 1))
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (height, width, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_by_hand(pixels, bit_depth, color_type, interlaced=False):
    """A PNG of `pixels` (H x W x C, uint8 or big-endian-ready uint16),
    filter 0 on every row, optionally Adam7-interlaced."""
    h, w = pixels.shape[:2]
    data = pixels.astype(">u2" if bit_depth == 16 else np.uint8)

    def rows(img):
        return b"".join(b"\x00" + img[i].tobytes() for i in range(img.shape[0]))

    if interlaced:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                               (1, 0, 2, 2), (0, 1, 1, 2)):
            sub = data[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += rows(sub)
    else:
        raw = rows(data)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) +
            png_chunk(b"IEND", b""))


def save(img, path, **kw):
    img.save(path, **kw)
    return path


def write_samples(out):
    """Writes the valid samples; returns their paths."""
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)
    rgb = Image.fromarray(photo(333, 257))
    portrait = Image.fromarray(photo(201, 411, 1))
    alpha = Image.fromarray(np.random.RandomState(2).randint(0, 256, (257, 333), np.uint8))
    files = [
        save(rgb, p("rgb_420.jpg"), quality=90),
        save(rgb, p("rgb_444.jpg"), quality=95, subsampling=0),
        save(portrait, p("portrait_progressive.jpg"), quality=85, progressive=True),
        save(rgb.convert("L"), p("gray.jpg"), quality=90),
        save(Image.fromarray(photo(7, 5, 3)), p("tiny_upscaled.jpg"), quality=90),
        save(Image.fromarray(photo(1000, 750, 4)), p("large.jpg"), quality=80),
        save(rgb, p("rgb.png")),
        save(Image.merge("RGBA", (*rgb.split(), alpha)), p("rgba.png")),
        save(Image.merge("LA", (rgb.convert("L"), alpha)), p("la.png")),
        save(rgb.convert("L"), p("gray.png")),
        save(rgb.convert("P", palette=Image.ADAPTIVE, colors=200), p("palette.png")),
        save(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), p("palette_4bit.png"), bits=4),
        save(rgb.convert("1"), p("bilevel.png")),
        save(portrait, p("portrait.bmp")),
        save(rgb.convert("P", palette=Image.ADAPTIVE, colors=256), p("palette.bmp")),
        save(rgb.convert("1"), p("bilevel.bmp")),
        save(rgb.convert("L"), p("gray.bmp")),
        save(Image.merge("RGBA", (*rgb.split(), alpha)), p("rgba.bmp")),
    ]
    # EXIF orientation 6 ("rotate 90"): Pillow's open ignores it, so must we.
    exif = Image.Exif()
    exif[0x0112] = 6
    files.append(save(portrait, p("exif_rotated.jpg"), quality=90, exif=exif.tobytes()))
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=64)
    pal.info["transparency"] = 3
    files.append(save(pal, p("palette_trns.png"), transparency=3))
    # 16-bit grayscale: Pillow opens it in mode "I" and clips to 255.
    gray16 = (np.random.RandomState(5).rand(150, 170) * 700).astype(np.uint16)
    files.append(save(Image.fromarray(gray16.astype(np.int32)).convert("I;16"), p("gray16.png")))
    rgb16 = (np.random.RandomState(6).rand(160, 150, 3) * 65535).astype(np.uint16)
    for name, data in (("rgb16.png", png_by_hand(rgb16, 16, 2)),
                       ("interlaced.png", png_by_hand(photo(91, 67, 7), 8, 2, interlaced=True))):
        with open(p(name), "wb") as f:
            f.write(data)
        files.append(p(name))
    return files


def write_broken(out):
    """Broken files and what the error must say, as (path, message part)."""
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)
    buf = io.BytesIO()
    Image.fromarray(photo(120, 90)).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(photo(120, 90)).save(buf, "PNG")
    png = buf.getvalue()
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # inside IHDR's CRC
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
    cases = {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "header_only.jpg": (jpeg[:20], "corrupt JPEG"),
        "truncated.png": (png[: len(png) // 2], "corrupt PNG"),
        "bad_crc.png": (bytes(bad_crc), "corrupt PNG"),
        "bomb.png": (bomb, "exceeds the limit"),
        "zero_width.png": (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)),
                           "corrupt PNG"),
        "not_an_image.jpg": (b"hello, this is text\n", "not a JPEG, PNG or BMP"),
        "truncated.bmp": (open_bmp_prefix(), "corrupt BMP"),
        "rgb555.bmp": (bmp16(), "16-bit BMP images are not supported"),
    }
    out_cases = []
    for name, (data, message) in cases.items():
        with open(p(name), "wb") as f:
            f.write(data)
        out_cases.append((p(name), message))
    empty = p("empty.png")
    open(empty, "wb").close()
    out_cases.append((empty, "empty"))
    return out_cases


def bmp16():
    """A 16-bit (RGB555) BMP, written by hand: Pillow cannot write one."""
    w, h = 6, 4
    stride = (w * 2 + 3) // 4 * 4
    pixels = bytes(range(stride * h))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def open_bmp_prefix():
    buf = io.BytesIO()
    Image.fromarray(photo(50, 40)).save(buf, "BMP")
    return buf.getvalue()[:100]


if __name__ == "__main__":
    write_samples(sys.argv[1])
    write_broken(os.path.join(sys.argv[1], "broken"))
