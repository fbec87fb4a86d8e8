"""Mutate the compressed tiles of valid TIFFs, then read each file in a guarded child.

The header stays valid, so ``build`` succeeds and the damage meets the decoders:
flipped bytes, zeroed and truncated runs inside tiles of every codec GDAL writes
(deflate, LZW, zstd, PackBits, LZMA, JPEG, WebP, LERC). The child reads the file
with the engine and with rasterio; a case is ``wrong`` when rasterio reads it
without an error and the pixels differ, ``clear`` when ours raises a
RasteretError naming the file. The harness (subprocess, ``RLIMIT_AS``, deadline)
is :func:`hostile_fuzz.run_cases`'s.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from hostile_fuzz import Case, child_program

__all__ = ["READ_CHILD", "make_tile_cases"]

CODECS = {
    "deflate": {"dtype": "uint16", "compress": "DEFLATE", "predictor": 2},
    "lzw": {"dtype": "uint8", "compress": "LZW"},
    "zstd": {"dtype": "float32", "compress": "ZSTD", "predictor": 3},
    "packbits": {"dtype": "uint8", "compress": "PACKBITS"},
    "lzma": {"dtype": "int16", "compress": "LZMA"},
    "jpeg": {"dtype": "uint8", "count": 3, "compress": "JPEG"},
    "webp": {"dtype": "uint8", "count": 3, "compress": "WEBP"},
    "lerc": {"dtype": "float32", "compress": "LERC"},
}

READ_CHILD = child_program(
    """
    import warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import rasterio
    import xarray as xr
    """,
    """
    try:
        with rasterio.open(path) as src:
            gdal = src.read()
    except Exception:
        gdal = None
    ds = xr.open_dataset(path, engine="rasteret")
    ours = np.stack([ds[v].values[0] for v in ds.data_vars])
    if gdal is not None and not np.array_equal(ours, gdal, equal_nan=True):
        bad = int(np.count_nonzero(ours != gdal))
        res = {"outcome": "wrong", "message": f"{bad} pixels differ from GDAL's"}
    else:
        res = {"outcome": "ok"}
    """,
)
"""The child of :func:`hostile_fuzz.run_cases` that reads each file both ways."""


def _tiles(path: Path) -> list[tuple[int, int]]:
    """``(offset, size)`` of the stored tiles of band 1 (GDAL's TIFF metadata)."""
    import rasterio

    with rasterio.open(path) as src:
        rows = -(-src.height // src.block_shapes[0][0])
        cols = -(-src.width // src.block_shapes[0][1])
        out = []
        for r in range(rows):
            for c in range(cols):
                off = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1)
                size = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1)
                if off and size and int(size) > 8:
                    out.append((int(off), int(size)))
    return out


def make_tile_cases(directory: Path, per_codec: int = 12, seed: int = 0) -> list[Case]:
    """``per_codec`` damaged copies of a file of each codec, deterministic for ``seed``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cogs import write_tiff

    rng = random.Random(seed)
    cases = []
    for codec, spec in CODECS.items():
        path = directory / f"base_{codec}.tif"
        write_tiff(path, width=256, height=192, blockxsize=128, blockysize=64, **spec)
        data = path.read_bytes()
        tiles = _tiles(path)
        for i in range(per_codec):
            off, size = rng.choice(tiles)
            out = bytearray(data)
            how = ("flip", "zero", "shift")[i % 3]
            if how == "flip":  # a few random bytes
                for _ in range(rng.randint(1, 4)):
                    out[off + rng.randrange(size)] ^= rng.randrange(1, 256)
            elif how == "zero":  # a run zeroed: a truncated or sparse-written tile
                start = off + rng.randrange(size)
                out[start : off + size] = bytes(off + size - start)
            else:  # the stream's head overwritten by its tail: a misplaced tile
                cut = rng.randrange(1, size)
                out[off : off + size] = data[off + cut : off + size] + data[off : off + cut]
            cases.append(Case(codec, f"{codec}: {how} in tile at {off} ({size} bytes)", bytes(out)))
    return cases
