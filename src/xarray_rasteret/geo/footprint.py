"""Footprints of images: their outline in OGC:CRS84, as the index stores it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from affine import Affine

from .crs import transformer

__all__ = ["footprint_crs84", "is_crs84"]


def is_crs84(crs: str) -> bool:
    """Whether ``crs`` names WGS 84 longitude/latitude (where footprints need no transform)."""
    return crs.upper().replace(" ", "") in ("OGC:CRS84", "CRS84", "EPSG:4326", "WGS84")


def footprint_crs84(
    transform: Affine, width: int, height: int, crs: str | None, densify: int = 21
) -> Any:
    """Outline an image, densified and transformed to OGC:CRS84 (None without a CRS).

    Parameters
    ----------
    transform
        Pixel-corner affine of the image.
    width, height
        Image size in pixels.
    crs
        The image CRS.
    densify
        Points per edge.

    Returns
    -------
    shapely.Polygon or None
    """
    import shapely

    if crs is None:
        return None
    s = np.linspace(0.0, 1.0, densify)
    cols = np.concatenate([s * width, np.full(densify, width), (1 - s) * width, np.zeros(densify)])
    rows = np.concatenate(
        [np.zeros(densify), s * height, np.full(densify, height), (1 - s) * height]
    )
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    xs, ys = a * cols + b * rows + c, d * cols + e * rows + f
    if not is_crs84(crs):
        xs, ys = transformer(crs, "OGC:CRS84").transform(xs, ys)
    poly = shapely.Polygon(np.column_stack([xs, ys]))
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
    if not all(math.isfinite(v) for v in poly.bounds):
        return None
    return shapely.normalize(poly)
