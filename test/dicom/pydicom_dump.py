#!/usr/bin/python3
"""Reference values for the DICOM corpus test: for each file, pydicom's verdict and, for a
single-frame grayscale image pydicom can decode, its modality values (pixel_array through
pydicom's own apply_modality_lut) as raw little-endian float64 in OUT_DIR.

usage: pydicom_dump.py OUT_DIR FILE...   (prints one JSON object per file on stdout)
"""
import json
import os
import sys
import warnings

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut

warnings.simplefilter("ignore")

# pydicom's words for "this build has no decoder for it" (as opposed to "the data is broken").
NO_HANDLER_HINTS = ("missing required dependencies", "no available image handler", "only supported by pillow if")


def is_part10(path):
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def main():
    out_dir = sys.argv[1]
    for index, path in enumerate(sys.argv[2:]):
        rec = {"file": path, "pydicom": pydicom.__version__}
        try:
            if not is_part10(path):
                rec.update(category="other", reason="not a Part 10 file")
                continue
            try:
                ds = pydicom.dcmread(path)
            except Exception as e:  # noqa: BLE001 - any failure is a verdict here
                rec.update(category="other", reason=f"pydicom cannot read it: {type(e).__name__}: {e}")
                continue
            ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
            rec["transferSyntax"] = ts
            frames_raw = ds.get("NumberOfFrames", 1)
            try:
                frames = int(frames_raw) if frames_raw not in (None, "") else 1
            except (TypeError, ValueError):
                frames = None
            photometric = str(ds.get("PhotometricInterpretation", "")).upper()
            spp = ds.get("SamplesPerPixel", 1)
            if "PixelData" not in ds:
                rec.update(category="other", reason="no PixelData")
            elif spp != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
                rec.update(category="other", reason=f"not grayscale: {photometric} x{spp}")
            elif frames != 1:
                rec.update(category="other", reason=f"NumberOfFrames {frames_raw!r}")
            else:
                rec["category"] = "single-frame-grayscale"
                try:
                    arr = ds.pixel_array
                    values = np.asarray(apply_modality_lut(arr, ds), dtype="<f8")
                    out = os.path.join(out_dir, f"{index}.f64")
                    values.tofile(out)
                    rec.update(decoded=True, values=out, shape=list(values.shape))
                except Exception as e:  # noqa: BLE001
                    msg = f"{type(e).__name__}: {e}".replace("\n", " ")
                    no_handler = any(h in msg.lower() for h in NO_HANDLER_HINTS)
                    rec.update(decoded=False, noHandler=no_handler, error=msg[:300])
        finally:
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
