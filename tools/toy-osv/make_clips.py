#!/usr/bin/env python3
"""Frame folders of slow camera moves (pans and zooms) over photographs, the toy
experiment's training and held-out data: OUT/<name>-<k>/frame-0001.png ...

  make_clips.py OUT --frames F --width W --height H IMAGE...

Each image gives two clips (a pan and a zoom) from a random window; with
--stills DIR the first frame of each clip is also written as DIR/<name>-<k>.png
(the conditioning image generate starts from)."""
import argparse
import os
import random

from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("images", nargs="+")
ap.add_argument("--frames", type=int, default=4)
ap.add_argument("--width", type=int, default=48)
ap.add_argument("--height", type=int, default=32)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--stills")
a = ap.parse_args()
rng = random.Random(a.seed)
os.makedirs(a.out, exist_ok=True)
for path in a.images:
    image = Image.open(path).convert("RGB")
    name = os.path.splitext(os.path.basename(path))[0]
    W, H = image.size
    for k, move in enumerate(("pan", "zoom")):
        # a window a quarter of the image wide, moving over a tenth of it
        w0 = W // 4
        h0 = w0 * a.height // a.width
        x0, y0 = rng.randrange(0, W - 2 * w0), rng.randrange(0, H - 2 * h0)
        folder = os.path.join(a.out, "%s-%d" % (name, k))
        os.makedirs(folder, exist_ok=True)
        for f in range(a.frames):
            t = f / max(1, a.frames - 1)
            if move == "pan":
                box = (x0 + t * w0 * 0.4, y0, x0 + t * w0 * 0.4 + w0, y0 + h0)
            else:
                s = 1.0 - 0.3 * t
                cx, cy = x0 + w0 / 2, y0 + h0 / 2
                box = (cx - s * w0 / 2, cy - s * h0 / 2, cx + s * w0 / 2, cy + s * h0 / 2)
            frame = image.resize((a.width, a.height), Image.BICUBIC, box=box)
            frame.save(os.path.join(folder, "frame-%04d.png" % (f + 1)))
            if f == 0 and a.stills:
                os.makedirs(a.stills, exist_ok=True)
                frame.save(os.path.join(a.stills, "%s-%d.png" % (name, k)))
