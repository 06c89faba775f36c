#!/usr/bin/env python3
"""Reference data for the Imaging tests and the colormap tables of the Imaging module.

Writes, into Tests/ImagingTests/Fixtures:
  * PNG files from encoders independent of libpng's reader path (PIL and pypng), in
    every colour type and bit depth, with pixels given by formulas the tests repeat;
  * JPEG files written by PIL, each with PIL's decoded pixels saved losslessly beside it;
  * a resize input and torch's antialiased and plain bilinear resizes of it.
and Sources/Imaging/ColormapTables.swift from matplotlib's published colormap data.

Needs numpy, pillow, torch, pypng and matplotlib. Run from the repository root:
    python3 scripts/make-image-fixtures.py
"""
import json
import os

import matplotlib
import numpy as np
import png  # pypng: a pure-Python PNG encoder, for what PIL cannot write (16-bit colour, interlacing)
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "ImagingTests", "Fixtures")


def grid(width, height):
    """Pixel coordinates x, y as integer arrays of shape (height, width)."""
    y, x = np.mgrid[0:height, 0:width]
    return x.astype(np.int64), y.astype(np.int64)


def from_array(array, mode):
    """A PIL image of the array, checking that PIL chose the intended mode."""
    image = Image.fromarray(array)
    assert image.mode == mode, (image.mode, mode)
    return image


def path(name):
    return os.path.join(FIXTURES, name)


def write_pngs():
    # The formulas below are repeated in CodecTests.swift.
    x, y = grid(23, 17)
    from_array(((x * 7 + y * 13) % 256).astype(np.uint8), "L").save(path("gray8.png"))

    x, y = grid(19, 11)
    gray16 = ((x * 3001 + y * 7919 + 12345) % 65536).astype(np.uint16)
    from_array(gray16, "I;16").save(path("gray16.png"))

    x, y = grid(13, 9)
    rgb16 = np.stack([(x * 4099 + y * 257) % 65536, (x * 1031 + y * 6007 + 999) % 65536,
                      (x * x * 37 + y * 11) % 65536], axis=-1)
    png.Writer(13, 9, greyscale=False, bitdepth=16).write(
        open(path("rgb16.png"), "wb"), rgb16.reshape(9, 13 * 3).tolist())
    rgba16 = np.concatenate([rgb16, ((x * y * 311) % 65536)[..., None]], axis=-1)
    png.Writer(13, 9, greyscale=False, alpha=True, bitdepth=16).write(
        open(path("rgba16.png"), "wb"), rgba16.reshape(9, 13 * 4).tolist())

    x, y = grid(10, 7)
    palette = [((i * 53) % 256, (i * 97) % 256, (i * 181) % 256) for i in range(16)]
    indexed = Image.frombytes("P", (10, 7), ((x + 2 * y) % 16).astype(np.uint8).tobytes())
    indexed.putpalette([c for colour in palette for c in colour])
    indexed.save(path("palette4.png"), bits=4)
    indexed.save(path("palette-alpha.png"), transparency=bytes((i * 17) % 256 for i in range(16)))

    x, y = grid(12, 8)
    gray_alpha = np.stack([(x * 9 + y * 5) % 256, (x * y * 3 + 40) % 256], axis=-1).astype(np.uint8)
    from_array(gray_alpha, "LA").save(path("gray-alpha.png"))
    rgba = np.stack([(x * 11) % 256, (y * 23) % 256, (x * y) % 256, ((x + y) * 8) % 256], axis=-1).astype(np.uint8)
    from_array(rgba, "RGBA").save(path("rgba.png"))

    x, y = grid(9, 5)
    from_array((x + y) % 2 == 1, "1").save(path("gray1.png"))  # one bit a pixel

    x, y = grid(11, 10)
    interlaced = np.stack([(x * 5 + y) % 256, (y * 17) % 256, (x * y * 7) % 256], axis=-1)
    png.Writer(11, 10, greyscale=False, bitdepth=8, interlace=True).write(
        open(path("interlaced.png"), "wb"), interlaced.reshape(10, 11 * 3).tolist())


def smooth_picture(width, height):
    """A photograph-like RGB image: gradients and a disc, no sharp noise."""
    x, y = grid(width, height)
    disc = ((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2) < (min(width, height) * 0.3) ** 2
    r = 40 + 180 * x / width
    g = 30 + 200 * y / height
    b = np.where(disc, 220, 60 + 60 * np.sin(x / 5.0))
    return np.stack([r, g, b], axis=-1).round().clip(0, 255).astype(np.uint8)


def write_jpegs():
    picture = from_array(smooth_picture(48, 40), "RGB")
    cases = {
        "photo.jpg": (picture, {"quality": 90}),
        "progressive.jpg": (picture, {"quality": 85, "progressive": True}),
        "gray.jpg": (picture.convert("L"), {"quality": 90}),
        "cmyk.jpg": (picture.convert("CMYK"), {"quality": 95}),
    }
    for name, (image, options) in cases.items():
        image.save(path(name), **options)
        decoded = Image.open(path(name))
        decoded = decoded.convert("L" if decoded.mode == "L" else "RGB")
        decoded.save(path(name + ".decoded.png"))


def write_resize_cases():
    """torch's resizes of one 8-bit RGB image; outputs as raw little-endian float32."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    pixels[10:20, :, :] = 255  # a bright band and a thin dark line, where aliasing would show
    pixels[:, 30, :] = 0
    from_array(pixels, "RGB").save(path("resize-input.png"))
    source = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255).unsqueeze(0)
    cases = []
    for height, width, antialias in [(16, 20, True), (16, 20, False), (5, 7, True), (50, 70, True),
                                     (20, 90, True), (37, 26, True)]:
        result = F.interpolate(source, size=(height, width), mode="bilinear",
                               antialias=antialias, align_corners=False)[0]
        name = f"resize-{height}x{width}{'-antialias' if antialias else ''}.f32"
        result.numpy().astype("<f4").tofile(path(name))
        cases.append({"height": height, "width": width, "antialias": antialias, "output": name})
    with open(path("resize-cases.json"), "w") as f:
        json.dump({"input": "resize-input.png", "cases": cases}, f, indent=1)


def write_colormap_tables():
    """256 RGB entries of viridis and of ColorBrewer's RdBu reversed (blue, white, red)."""
    tables = {
        "viridisTable": np.array(matplotlib.colormaps["viridis"].colors),
        "blueWhiteRedTable": matplotlib.colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3],
    }
    lines = ["// Generated by scripts/make-image-fixtures.py from matplotlib's colormap data. Do not edit.",
             "// 256 entries of red, green, blue in [0, 1].", ""]
    for name, table in tables.items():
        assert table.shape == (256, 3)
        lines.append(f"let {name}: [Float] = [")
        for row in table:
            lines.append("    " + ", ".join(f"{v:.6f}" for v in row) + ",")
        lines.append("]")
        lines.append("")
    with open(os.path.join(ROOT, "Sources", "Imaging", "ColormapTables.swift"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    os.makedirs(FIXTURES, exist_ok=True)
    write_pngs()
    write_jpegs()
    write_resize_cases()
    write_colormap_tables()
