#!/usr/bin/python3
"""pydicom + numpy doing what readWindowed does: parse from memory, decode the pixels, apply
the modality LUT, the DICOM LINEAR window and the MONOCHROME1 inversion, to float32 in [0,1].

usage: dicom_window_pydicom.py FILE.dcm CENTER WIDTH ITERATIONS   (prints JSON)
"""
import io
import json
import sys
import time

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut


def window(data, c, w):
    ds = pydicom.dcmread(io.BytesIO(data))
    x = apply_modality_lut(ds.pixel_array, ds)
    # PS3.3 C.11.2.1.2.1 LINEAR: clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    y = np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0).astype(np.float32)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        y = 1.0 - y
    return y


def main():
    path, c, w, iterations = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    with open(path, "rb") as f:
        data = f.read()
    window(data, c, w)  # warm-up
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        y = window(data, c, w)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(json.dumps({"medianMs": times[len(times) // 2], "minMs": times[0], "checksum": float(y.astype(np.float64).sum()),
                      "pydicom": pydicom.__version__, "numpy": np.__version__}))


if __name__ == "__main__":
    main()
