#!/usr/bin/env python3
"""Mean squared distance (RGB in [0, 1]) between two frame folders, frame by
frame, and its PSNR: distance.py A B -> "MSE PSNR"."""
import glob
import math
import os
import sys

import numpy as np
from PIL import Image


def frames(folder):
    files = sorted(glob.glob(os.path.join(folder, "frame-*.png")))
    return np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255.0 for f in files])


a, b = frames(sys.argv[1]), frames(sys.argv[2])
n = min(len(a), len(b))
mse = float(((a[:n] - b[:n]) ** 2).mean())
print("%.6f %.2f" % (mse, 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")))
