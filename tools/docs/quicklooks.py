"""MkDocs hook: quicklook PNGs of the embedded sample, rendered by every docs build.

The pictures are read through the package itself (the engine, on the sample's
STAC items), so a docs build that succeeds has also read the sample end to end,
and the pictures can never drift from what the code returns. They are added to
the site as generated files (``img/*.png``): nothing is written into ``docs/``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import xarray as xr
from mkdocs.structure.files import File, Files

import xarray_rasteret as xrr
from xarray_rasteret.cli import sample_items_path

# NDVI colour stops: bare soil brown at 0 and below, through yellow, to dense green.
_NDVI_STOPS = np.array([-0.2, 0.0, 0.3, 0.6, 0.9])
_NDVI_RGB = np.array(
    [[120, 90, 60], [170, 140, 100], [230, 220, 120], [110, 180, 70], [20, 100, 30]]
)


def _stretch(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """8-bit grey, the 2nd to 98th percentile of the valid pixels stretched to 0..255."""
    lo, hi = np.percentile(band[valid], [2, 98]) if valid.any() else (0.0, 1.0)
    grey = np.clip((band - lo) / max(hi - lo, 1e-9), 0.0, 1.0) * 255.0
    return np.where(valid, grey, 0).astype(np.uint8)


def _ndvi_rgb(ndvi: np.ndarray) -> np.ndarray:
    rgb = np.stack(
        [np.interp(ndvi, _NDVI_STOPS, _NDVI_RGB[:, i]) for i in range(3)], axis=-1
    )
    return np.where(np.isfinite(ndvi)[..., None], rgb, 255).astype(np.uint8)


def _strip(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Images side by side on a white background, ``gap`` pixels apart."""
    height = max(i.shape[0] for i in images)
    parts: list[np.ndarray] = []
    for image in images:
        pad = np.full((height, gap, *image.shape[2:]), 255, np.uint8)
        parts += [image, pad]
    return np.concatenate(parts[:-1], axis=1)


def render() -> dict[str, bytes]:
    """The quicklooks, by site path: the B04 time series and the NDVI of every date."""
    with tempfile.TemporaryDirectory(prefix="xrr-docs-") as folder:
        parquet = Path(folder) / "sample.parquet"
        xrr.build(sample_items_path(), bands=["B04", "B08"]).to_parquet(parquet)
        with xr.open_dataset(parquet, engine="rasteret", mask_and_scale=True) as ds:
            red, nir = ds.B04.values, ds.B08.values
    valid = np.isfinite(red) & np.isfinite(nir)
    # Every second pixel: a quarter of the bytes, and still sharper than a page shows.
    red, nir, valid = red[:, ::2, ::2], nir[:, ::2, ::2], valid[:, ::2, ::2]
    greys = [_stretch(r, v) for r, v in zip(red, valid, strict=True)]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = np.where(valid, (nir - red) / (nir + red), np.nan)
    return {
        "img/sample_b04.png": imagecodecs.png_encode(_strip(greys)),
        "img/sample_ndvi.png": imagecodecs.png_encode(_strip([_ndvi_rgb(n) for n in ndvi])),
    }


def on_files(files: Files, config: Any) -> Files:
    """Add the rendered quicklooks to the site's files (so links to them validate)."""
    for path, content in render().items():
        files.append(File.generated(config, path, content=content))
    return files
