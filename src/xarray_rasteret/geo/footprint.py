"""Footprints of images: their outline in OGC:CRS84, as the index stores it."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from affine import Affine
from pyproj.exceptions import ProjError

from .crs import transformer

__all__ = ["FootprintWarning", "footprint_crs84", "is_crs84"]


class FootprintWarning(UserWarning):
    """An image's CRS84 footprint could not be computed exactly (approximated or left out).

    The pixels still read; only selection by ``bbox`` / geometry (which uses the
    footprint) is affected, as the message says.
    """


def is_crs84(crs: str) -> bool:
    """Whether ``crs`` names WGS 84 longitude/latitude (where footprints need no transform)."""
    return crs.upper().replace(" ", "") in ("OGC:CRS84", "CRS84", "EPSG:4326", "WGS84")


def footprint_crs84(
    transform: Affine,
    width: int,
    height: int,
    crs: str | None,
    densify: int = 21,
    *,
    name: str | None = None,
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
    name
        What the image is (its href), named in warnings.

    Returns
    -------
    shapely.Polygon or None
        ``None`` without a CRS, for a CRS on another body than the Earth (Mars,
        the Moon, ...), or when no part of the image can be projected to
        longitude/latitude; the last two with a :class:`FootprintWarning`.
        When only the outline partly projects (a geostationary full disk, whose
        corners lie off the globe), the footprint is the convex hull of the
        sample points of the image that do project, also with a warning.
    """
    import shapely

    if crs is None:
        return None
    s = np.linspace(0.0, 1.0, densify)
    cols = np.concatenate([s * width, np.full(densify, width), (1 - s) * width, np.zeros(densify)])
    rows = np.concatenate(
        [np.zeros(densify), s * height, np.full(densify, height), (1 - s) * height]
    )
    prefix = f"{name}: " if name else ""
    project = _to_crs84(crs, prefix)
    if project is None:
        return None
    xs, ys = project(transform, cols, rows)
    if np.isfinite(xs).all() and np.isfinite(ys).all():
        poly = shapely.Polygon(np.column_stack([xs, ys]))
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
        if all(math.isfinite(v) for v in poly.bounds):
            return shapely.normalize(poly)
    # Part of the outline lies outside the projection's domain (off the disk of a
    # geostationary view): take what does project, over the whole image.
    grid_c, grid_r = np.meshgrid(s * width, s * height)
    xs, ys = project(transform, grid_c.ravel(), grid_r.ravel())
    ok = np.isfinite(xs) & np.isfinite(ys)
    if 0 < ok.sum() < ok.size:
        edge = _domain_edge(project, transform, grid_c, grid_r, ok.reshape(grid_c.shape))
        xs, ys = np.concatenate([xs[ok], edge[0]]), np.concatenate([ys[ok], edge[1]])
        ok = np.ones(xs.shape, dtype=bool)
    if ok.sum() < 3:
        warnings.warn(
            f"{prefix}no part of the image projects to longitude/latitude from {_short(crs)}; "
            "it has no footprint, so bbox and geometry selections will not find it",
            FootprintWarning,
            stacklevel=2,
        )
        return None
    hull = shapely.MultiPoint(np.column_stack([xs[ok], ys[ok]])).convex_hull
    warnings.warn(
        f"{prefix}part of the image lies outside the domain of {_short(crs)} (e.g. off the "
        "disk of a geostationary view); its footprint is the convex hull of the part that "
        "projects (sampled, and traced to the domain's edge)",
        FootprintWarning,
        stacklevel=2,
    )
    return shapely.normalize(hull)


def _domain_edge(
    project: Any, transform: Affine, cols: np.ndarray, rows: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat of the domain's edge, found by bisection between neighbouring samples.

    Between each pair of grid neighbours of which one projects and the other does
    not, the edge of the projection's domain (a geostationary view's limb) is
    bisected to within 2^-30 of the pair's spacing, so the hull reaches it
    instead of stopping at the last sample inside.
    """
    inside, outside = [], []
    for axis in (0, 1):
        a = np.take(ok, range(ok.shape[axis] - 1), axis=axis)
        b = np.take(ok, range(1, ok.shape[axis]), axis=axis)
        for c in (cols, rows):
            lo = np.take(c, range(c.shape[axis] - 1), axis=axis)
            hi = np.take(c, range(1, c.shape[axis]), axis=axis)
            inside.append(np.where(a, lo, hi)[a != b])
            outside.append(np.where(a, hi, lo)[a != b])
    # inside = [cols_ax0, rows_ax0, cols_ax1, rows_ax1], likewise outside.
    pc = np.concatenate([inside[0], inside[2]])
    pr = np.concatenate([inside[1], inside[3]])
    qc = np.concatenate([outside[0], outside[2]])
    qr = np.concatenate([outside[1], outside[3]])
    for _ in range(30):
        mc, mr = (pc + qc) / 2, (pr + qr) / 2
        x, y = project(transform, mc, mr)
        good = np.isfinite(x) & np.isfinite(y)
        pc, pr = np.where(good, mc, pc), np.where(good, mr, pr)
        qc, qr = np.where(good, qc, mc), np.where(good, qr, mr)
    x, y = project(transform, pc, pr)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _short(crs: str) -> str:
    return crs if len(crs) < 60 else crs[:57] + "..."


def _to_crs84(crs: str, prefix: str) -> Any:
    """A function (transform, cols, rows) -> (lon, lat), or None (with a warning) if none exists."""

    def affine(transform: Affine, cols: np.ndarray, rows: np.ndarray) -> tuple[Any, Any]:
        a, b, c = transform.a, transform.b, transform.c
        d, e, f = transform.d, transform.e, transform.f
        return a * cols + b * rows + c, d * cols + e * rows + f

    if is_crs84(crs):
        return affine
    try:
        to_lonlat = transformer(crs, "OGC:CRS84")
    except ProjError as e:
        body = "celestial body" in str(e)
        warnings.warn(
            prefix
            + (
                f"the image's CRS is not on the Earth ({_short(crs)})"
                if body
                else f"no transformation from the image's CRS ({_short(crs)}) to longitude/latitude"
            )
            + "; it has no CRS84 footprint, so bbox and geometry selections will not find it "
            "(its pixels and coordinates read as usual)",
            FootprintWarning,
            stacklevel=3,
        )
        return None

    def projected(transform: Affine, cols: np.ndarray, rows: np.ndarray) -> tuple[Any, Any]:
        xs, ys = affine(transform, cols, rows)
        with np.errstate(invalid="ignore"):
            lon, lat = to_lonlat.transform(xs, ys, errcheck=False)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    return projected
